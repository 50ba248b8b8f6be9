#!/bin/bash
# One device call (from the repo root): tests + benchmark of a carried build.
#   bash packages/nvfp4-mm/benchmarks/gpu_run.sh CARRY_DIR [run.py args...]
# CARRY_DIR holds _C.so + _C_build_info.json built here for sm_90a.
# Logs and results go to $OUT (pytest.log, bench.log, results/).
# BREAKDOWN=1: first the large-M kernel breakdown (benchmarks/breakdown.py -> $OUT/breakdown.md).
CARRY=${1:-.carry/nvmm}; shift
cd "$(dirname "$0")/../../.."
export PYTHONUNBUFFERED=1
export PYTHONPATH=$PWD/packages/cutlass-ext/src:$PWD/packages/nvfp4-mm/src:$PWD/packages/nvfp4-quant/src:$PWD/shared/src
cp "$CARRY"/_C.so "$CARRY"/_C_build_info.json packages/nvfp4-mm/src/lowbit/nvfp4_mm/ || exit 1
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv
if [ "${BREAKDOWN:-0}" = 1 ]; then
  timeout ${BREAKDOWN_LIMIT:-90} python3 packages/nvfp4-mm/benchmarks/breakdown.py "$OUT/breakdown.md" \
    > /tmp/breakdown.log 2>&1; echo "breakdown rc=$?"; tail -12 /tmp/breakdown.log
fi
timeout ${TEST_LIMIT:-150} python3 -m pytest packages/nvfp4-mm/tests -q -p no:cacheprovider -rs -x \
  > "$OUT/pytest.log" 2>&1
echo "pytest rc=$?"; tail -8 "$OUT/pytest.log"
timeout ${BENCH_LIMIT:-170} python3 packages/nvfp4-mm/benchmarks/run.py --out "$OUT/results" "$@" \
  > "$OUT/bench.log" 2>&1
echo "bench rc=$?"; grep -E "^\|" "$OUT/bench.log" | tail -70
