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
if [ "${SWEEP:-0}" = 1 ]; then
  timeout ${DECOMP_LIMIT:-90} python3 packages/w4a8-mm/benchmarks/decomp_sweep.py "$OUT/decomp.md" \
    > "$OUT/bench.log" 2>&1; echo "decomp rc=$?"
fi
ARGS=""; [ "${SWEEP:-0}" = 1 ] || [ "${SCHEDULES:-0}" = 1 ] && ARGS="--schedules"
timeout ${BENCH_LIMIT:-300} python3 packages/w4a8-mm/benchmarks/run.py $ARGS --out "$OUT/results" \
  >> "$OUT/bench.log" 2>&1
echo "bench rc=$?"; tail -62 "$OUT/bench.log"
# Resource usage and SASS facts per kernel (registers, spills, calls, local memory).
if command -v cuobjdump >/dev/null; then
  { cuobjdump -res-usage packages/w4a8-mm/src/lowbit/w4a8_mm/_C.so 2>&1 | grep -E "Function|REG" | \
      sed 's/Function _ZN7cutlass13device_kernel.*GemmUniversal.*MMA_\([0-9x]*\)_.*ILi\([0-9]*\)EEENSA_ILi\([0-9]*\)EEESF.*/GEMM mma=\1/' ;
    cuobjdump -sass packages/w4a8-mm/src/lowbit/w4a8_mm/_C.so 2>&1 | awk '/Function/{f=substr($0,1,60)} /CALL|LDL|STL/{c[f" "$2]++} END{for(k in c) print c[k], k}' | head -40;
  } > "$OUT/sass.txt" 2>&1
fi
