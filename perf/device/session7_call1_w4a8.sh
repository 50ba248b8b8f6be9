# Session 7, call 1 (prepared; it replaces session 6's call 5, which lost its machine before any output): W4A8
# accumulator promotion v8 (branch s5-w4a8-promote, 1f393e3: steady tiles with compile-time flags, a drain at every multiple of
# 8 tiles) + the H200 heuristic (881e6dd), built into .carry/ab/w4a8_mm_promote (its python + _C.so), against
# .carry/w4a8-mm (main's build from before 881e6dd: CUTLASS's loop, the H100 heuristic). The branch's test file
# is carried in .carry/ab/w4a8_tests and copied over the working tree's for this call. Then the package table
# with the new build. Carry [".carry"]. About 9 minutes.
cp .carry/ab/w4a8_tests/test_w4a8_mm.py packages/w4a8-mm/tests/test_w4a8_mm.py
source <(sed -n '/^export PYTHONUNBUFFERED/,/^export PYTHONPATH/p' perf/device/gpu_check.sh)
BASEPP=$PYTHONPATH; NEWPP=$PWD/.carry/ab/w4a8_mm_promote:$PYTHONPATH
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > $OUT/gpu.txt
export PYTHONPATH=$NEWPP
t0=$SECONDS; timeout 150 python3 -m pytest -q -p no:cacheprovider -n 16 packages/w4a8-mm/tests/test_w4a8_mm.py packages/w4a8-mm/tests/test_w4a8_moe.py > $OUT/pytest_v8.log 2>&1; echo "w4a8 tests rc=$? $((SECONDS-t0))s: $(tail -1 $OUT/pytest_v8.log)"; grep -E "^FAILED|^ERROR" $OUT/pytest_v8.log | head -12
timeout 60 python3 perf/w4a8-mm/accuracy_long_k.py $OUT/accuracy_v8.md > /dev/null 2>&1; echo "accuracy rc=$?"; grep -E "cuBLASLt fp8, use_fast_accum=False|heuristic|128x16_1x1x1 |64x16|256x16" $OUT/accuracy_v8.md
for b in base v8; do [ $b = base ] && export PYTHONPATH=$BASEPP || export PYTHONPATH=$NEWPP
  timeout 90 python3 perf/w4a8-mm/schedule_sweep.py $OUT/sweep_${b}.md --models Llama-3-70B Llama-3-8B --m 1,16,64,128,256 > /dev/null 2>&1; echo "sweep $b rc=$?"
done
timeout 40 python3 perf/w4a8-mm/moe_schedule_sweep.py --tokens 1 16 64 > $OUT/moe_v8.md 2>&1; echo "moe sweep rc=$?"; cut -d'|' -f2-5 $OUT/moe_v8.md | head -20
export PYTHONPATH=$NEWPP
t0=$SECONDS; timeout 150 python3 packages/w4a8-mm/benchmarks/run.py --models Llama-3-8B Llama-3-70B --out $OUT/w4a8 > $OUT/w4a8_bench.log 2>&1; echo "w4a8 bench rc=$? $((SECONDS-t0))s"
cd $OUT && tar czf all.tgz *.md *.json *.log *.txt w4a8 && ls | wc -l
