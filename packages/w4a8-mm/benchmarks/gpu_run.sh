#!/bin/bash
# One device call: tests (GPU + CPU), the CUTLASS reorder cross-check and the
# benchmark (with the schedule sweep when SWEEP=1). Expects the .so files in
# .carry/w4a8/ (built on the CPU machine for sm_90a) and $OUT.
cd "$(dirname "$0")/../../.."
export PYTHONUNBUFFERED=1
cp .carry/w4a8/_C.so .carry/w4a8/_C_build_info.json packages/w4a8-mm/src/lowbit/w4a8_mm/
export PYTHONPATH=$PWD/packages/cutlass-ext/src:$PWD/packages/w4a8-mm/src:$PWD/shared/src
export LOWBIT_W4A8_CUTLASS_REF=$PWD/.carry/w4a8/_w4a8_cutlass_ref.so
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv > "$OUT/gpu.txt" 2>&1
timeout ${TEST_LIMIT:-200} python3 -m pytest packages/w4a8-mm/tests -q -p no:cacheprovider -rs \
  > "$OUT/pytest.log" 2>&1
echo "pytest rc=$?"; tail -15 "$OUT/pytest.log"
ARGS=""; [ "${SWEEP:-0}" = 1 ] && ARGS="--schedules"
timeout ${BENCH_LIMIT:-300} python3 packages/w4a8-mm/benchmarks/run.py $ARGS --out "$OUT/results" \
  > "$OUT/bench.log" 2>&1
echo "bench rc=$?"; tail -62 "$OUT/bench.log"
