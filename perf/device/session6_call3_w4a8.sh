# Session 6, call 3: the W4A8 promotion every 8 K tiles (branch s5-w4a8-promote at b32222e: promoting_mainloop.cuh
# with CUTLASS's issue order, one drain per 1024 K) against main's W4A8 build. The branch's test file is copied into
# the working tree for this call (test_gpu_long_k_error_matches_promoted_fp8). Promoted build: .carry/ab/w4a8_mm_promote.
source <(sed -n '/^export PYTHONUNBUFFERED/,/^export PYTHONPATH/p' perf/device/gpu_check.sh)
BASEPP=$PYTHONPATH; NEWPP=$PWD/.carry/ab/w4a8_mm_promote:$PYTHONPATH
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > $OUT/gpu.txt
export PYTHONPATH=$NEWPP
t0=$SECONDS; timeout 200 python3 -m pytest -q -p no:cacheprovider -n 16 packages/w4a8-mm/tests/test_w4a8_mm.py packages/w4a8-mm/tests/test_w4a8_moe.py > $OUT/pytest_promote.log 2>&1; echo "w4a8 tests rc=$? $((SECONDS-t0))s: $(tail -1 $OUT/pytest_promote.log)"; grep -E "^FAILED|^ERROR" $OUT/pytest_promote.log | head -12
for b in base promote; do [ $b = base ] && export PYTHONPATH=$BASEPP || export PYTHONPATH=$NEWPP
  timeout 90 python3 perf/w4a8-mm/accuracy_long_k.py $OUT/accuracy_$b.md > /dev/null 2>&1; echo "accuracy $b rc=$?"
done
paste -d' ' <(cut -d'|' -f2-4 $OUT/accuracy_base.md) <(cut -d'|' -f4 $OUT/accuracy_promote.md) | head -50
for b in base promote base promote; do [ $b = base ] && export PYTHONPATH=$BASEPP || export PYTHONPATH=$NEWPP
  timeout 100 python3 perf/w4a8-mm/schedule_sweep.py $OUT/sweep_${b}_$SECONDS.md --models Llama-3-70B Llama-3-8B --m 1,16,64,128,256 > /dev/null 2>&1; echo "sweep $b rc=$?"
  timeout 60 python3 perf/w4a8-mm/moe_schedule_sweep.py --tokens 1 16 64 > $OUT/moe_${b}_$SECONDS.md 2>&1; echo "moe sweep $b rc=$?"
done
# the benchmark scripts' after-a-kernel rows have not run on a GPU yet: a quick pass of each (main's builds)
export PYTHONPATH=$BASEPP
timeout 60 python3 packages/nvfp4-mm/benchmarks/run.py --quick --models Llama-3-8B --tokens 1,256 --out $OUT/q_nvfp4 > $OUT/q_nvfp4.log 2>&1; echo "nvfp4-mm quick bench rc=$?"; tail -n 12 $OUT/q_nvfp4.log
timeout 60 python3 packages/w4a8-mm/benchmarks/run.py --quick --models Llama-3-8B --out $OUT/q_w4a8 > $OUT/q_w4a8.log 2>&1; echo "w4a8-mm quick bench rc=$?"; tail -n 12 $OUT/q_w4a8.log
cd $OUT && tar czf all.tgz *.md *.json *.log *.txt q_* && ls | wc -l
