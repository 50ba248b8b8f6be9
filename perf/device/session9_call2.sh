# Session 9, call 2 (~9 min): W4A8 accumulator promotion v8, rebuilt on branch s9-w4a8-promote (NOTES v8
# rebuilt), built into .carry/ab/w4a8_mm_promote, its test file in .carry/ab/w4a8_tests, against main's build
# (.carry/w4a8-mm): the branch's tests, the long-K accuracy table on both, every schedule timed on Llama-3-70B
# at M = 1, 16, 64 (base, v8, base, v8: separate processes, two runs each), the grouped schedules at 1-64 tokens
# (base, v8). Then the W4A8 package table with main's build. Carry [".carry"].
cp .carry/ab/w4a8_tests/test_w4a8_mm.py packages/w4a8-mm/tests/test_w4a8_mm.py
source <(sed -n '/^export PYTHONUNBUFFERED/,/^export PYTHONPATH/p' perf/device/gpu_check.sh)
BASEPP=$PYTHONPATH; NEWPP=$PWD/.carry/ab/w4a8_mm_promote:$PYTHONPATH
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > $OUT/gpu.txt
t0=$SECONDS
PYTHONPATH=$NEWPP timeout 120 python3 -m pytest -q -p no:cacheprovider -rs -n 16 packages/w4a8-mm/tests > $OUT/pytest_v8.log 2>&1
echo "w4a8 tests (v8) rc=$? $((SECONDS-t0))s: $(tail -1 $OUT/pytest_v8.log)"; grep -E "^FAILED|^ERROR" $OUT/pytest_v8.log | head -12
for b in base v8; do [ $b = base ] && export PYTHONPATH=$BASEPP || export PYTHONPATH=$NEWPP
  timeout 50 python3 perf/w4a8-mm/accuracy_long_k.py $OUT/accuracy_$b.md > /dev/null 2>&1; echo "accuracy $b rc=$?"
done
paste -d'|' $OUT/accuracy_base.md $OUT/accuracy_v8.md | head -60
for r in 1 2; do for b in base v8; do [ $b = base ] && export PYTHONPATH=$BASEPP || export PYTHONPATH=$NEWPP
  timeout 45 python3 perf/w4a8-mm/schedule_sweep.py $OUT/sweep_${b}_$r.md --models Llama-3-70B --m 1,16,64 > /dev/null 2>&1
  echo "sweep $b $r rc=$?"
done; done
for b in base v8; do [ $b = base ] && export PYTHONPATH=$BASEPP || export PYTHONPATH=$NEWPP
  timeout 40 python3 perf/w4a8-mm/moe_schedule_sweep.py --tokens 1 16 64 > $OUT/moe_$b.md 2>&1; echo "moe sweep $b rc=$?"
done
export PYTHONPATH=$BASEPP
t0=$SECONDS; timeout 120 python3 packages/w4a8-mm/benchmarks/run.py --out $OUT/results_w4a8 > $OUT/bench_w4a8.log 2>&1
echo "w4a8 bench rc=$? $((SECONDS-t0))s"
