#!/bin/bash
# One device call: tests (GPU + CPU), the CUTLASS reorder cross-check and the
# benchmark. Expects the .so files in .carry/w4a8/ (built on the CPU machine
# for sm_90a) and $OUT. Options (environment):
#   SMALLM=1    first the small-M PDL / tile sweep (benchmarks/small_m_sweep.py)
#   SWEEP=1     also the decomposition sweep and every schedule in the benchmark
#   QUICK=1     benchmark M in {16, 2048} only
#   *_LIMIT     seconds per step (timeouts, so the call ends inside its limit)
cd "$(dirname "$0")/../../.."
export PYTHONUNBUFFERED=1
cp .carry/w4a8/_C.so .carry/w4a8/_C_build_info.json packages/w4a8-mm/src/lowbit/w4a8_mm/
export PYTHONPATH=$PWD/packages/cutlass-ext/src:$PWD/packages/w4a8-mm/src:$PWD/shared/src
export LOWBIT_W4A8_CUTLASS_REF=$PWD/.carry/w4a8/_w4a8_cutlass_ref.so
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > "$OUT/info.txt" 2>&1
if [ "${SMALLM:-0}" = 1 ]; then
  timeout ${SMALLM_LIMIT:-90} python3 packages/w4a8-mm/benchmarks/small_m_sweep.py "$OUT/small_m.md" \
    > /tmp/small_m.log 2>&1; echo "small_m rc=$?"; tail -5 /tmp/small_m.log
fi
timeout ${TEST_LIMIT:-150} python3 -m pytest packages/w4a8-mm/tests -q -p no:cacheprovider -rs \
  --durations=8 > "$OUT/pytest.log" 2>&1
echo "pytest rc=$?"; tail -25 "$OUT/pytest.log"
if [ "${SWEEP:-0}" = 1 ]; then
  timeout ${DECOMP_LIMIT:-90} python3 packages/w4a8-mm/benchmarks/decomp_sweep.py "$OUT/decomp.md" \
    > "$OUT/bench.log" 2>&1; echo "decomp rc=$?"
fi
ARGS=""; [ "${SWEEP:-0}" = 1 ] && ARGS="--schedules"; [ "${QUICK:-0}" = 1 ] && ARGS="$ARGS --quick"
timeout ${BENCH_LIMIT:-150} python3 packages/w4a8-mm/benchmarks/run.py $ARGS --out "$OUT/results" \
  >> "$OUT/bench.log" 2>&1
echo "bench rc=$?"; tail -62 "$OUT/bench.log"
# Registers, spills, local memory per kernel (at most 8 files come back: into info.txt).
if command -v cuobjdump >/dev/null; then
  { cuobjdump -res-usage packages/w4a8-mm/src/lowbit/w4a8_mm/_C.so 2>&1 | grep -E "REG|STACK" | sort | uniq -c | head -20;
    cuobjdump -sass packages/w4a8-mm/src/lowbit/w4a8_mm/_C.so 2>&1 | awk '/Function/{f=substr($0,1,60)} /CALL|LDL|STL/{c[f" "$2]++} END{for(k in c) print c[k], k}' | head -20;
  } >> "$OUT/info.txt" 2>&1
fi
