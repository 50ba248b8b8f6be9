#!/bin/bash
# One device call (from the repo root, nvfp4-mm built for sm_90a and installed
# in the environment): tests, then the committed benchmark.
#   bash perf/nvfp4-mm/gpu_run.sh [run.py args...]
# Logs and results go to $OUT (pytest.log, bench.log, results/).
# BREAKDOWN=1: first the large-M kernel breakdown (perf/nvfp4-mm/breakdown.py -> $OUT/breakdown.md).
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv
if [ "${BREAKDOWN:-0}" = 1 ]; then
  timeout ${BREAKDOWN_LIMIT:-90} python3 perf/nvfp4-mm/breakdown.py "$OUT/breakdown.md" \
    > /tmp/breakdown.log 2>&1; echo "breakdown rc=$?"; tail -12 /tmp/breakdown.log
fi
timeout ${TEST_LIMIT:-150} python3 -m pytest packages/nvfp4-mm/tests -q -p no:cacheprovider -rs -x \
  > "$OUT/pytest.log" 2>&1
echo "pytest rc=$?"; tail -8 "$OUT/pytest.log"
timeout ${BENCH_LIMIT:-170} python3 packages/nvfp4-mm/benchmarks/run.py --out "$OUT/results" "$@" \
  > "$OUT/bench.log" 2>&1
echo "bench rc=$?"; grep -E "^\|" "$OUT/bench.log" | tail -70
