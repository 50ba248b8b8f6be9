#!/bin/bash
# One device call for lowbit-w4a8-mm: GPU + CPU tests, the CUTLASS layout
# check and the benchmark (writes $OUT/results: the README table + plot).
# Expects the package .so built on the CPU machine for sm_90a in .carry/w4a8/
# (_C.so, _C_build_info.json) and, for the layout check, .carry/w4a8/_w4a8_cutlass_ref.so
# (layout_check/build.py). Options (environment):
#   SWEEP=1     also every schedule against the heuristic (schedule_sweep.py)
#   QUICK=1     benchmark M in {16, 2048} only
#   *_LIMIT     seconds per step (timeouts, so the call ends inside its limit)
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1
cp .carry/w4a8/_C.so .carry/w4a8/_C_build_info.json packages/w4a8-mm/src/lowbit/w4a8_mm/
export PYTHONPATH=$PWD/packages/cutlass-ext/src:$PWD/packages/w4a8-mm/src:$PWD/shared/src
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > "$OUT/info.txt" 2>&1
timeout ${TEST_LIMIT:-150} python3 -m pytest packages/w4a8-mm/tests -q -p no:cacheprovider -rs \
  --durations=8 > "$OUT/pytest.log" 2>&1
echo "pytest rc=$?"; tail -25 "$OUT/pytest.log"
if [ -f .carry/w4a8/_w4a8_cutlass_ref.so ]; then
  timeout ${LAYOUT_LIMIT:-60} python3 -m pytest perf/w4a8-mm/layout_check/check_layout.py -q \
    -p no:cacheprovider --cutlass-ref .carry/w4a8/_w4a8_cutlass_ref.so > "$OUT/layout.log" 2>&1
  echo "layout check rc=$?"; tail -3 "$OUT/layout.log"
fi
if [ "${SWEEP:-0}" = 1 ]; then
  timeout ${SWEEP_LIMIT:-150} python3 perf/w4a8-mm/schedule_sweep.py "$OUT/schedule_sweep.md" \
    > "$OUT/sweep.log" 2>&1; echo "sweep rc=$?"
fi
ARGS=""; [ "${QUICK:-0}" = 1 ] && ARGS="--quick"
timeout ${BENCH_LIMIT:-150} python3 packages/w4a8-mm/benchmarks/run.py $ARGS --out "$OUT/results" \
  > "$OUT/bench.log" 2>&1
echo "bench rc=$?"; tail -62 "$OUT/bench.log"
# Registers, spills, local memory per kernel.
if command -v cuobjdump >/dev/null; then
  { cuobjdump -res-usage packages/w4a8-mm/src/lowbit/w4a8_mm/_C.so 2>&1 | grep -E "REG|STACK" | sort | uniq -c | head -20;
    cuobjdump -sass packages/w4a8-mm/src/lowbit/w4a8_mm/_C.so 2>&1 | awk '/Function/{f=substr($0,1,60)} /CALL|LDL|STL/{c[f" "$2]++} END{for(k in c) print c[k], k}' | head -20;
  } >> "$OUT/info.txt" 2>&1
fi
