# session 3, device call 2: moe/w4a8 fixes on the GPU, then the grouped benchmarks
export NPROC=8
source <(sed -n '/^export PYTHONUNBUFFERED/,/^export PYTHONPATH/p' perf/device/gpu_check.sh)
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > $OUT/gpu.txt
timeout 150 python3 -m pytest -q -p no:cacheprovider -n 8 packages/moe/tests/test_layers.py packages/w4a8-mm/tests/test_w4a8_prepack.py > $OUT/pytest_fix.log 2>&1; echo "pytest fix rc=$?"; tail -3 $OUT/pytest_fix.log; grep -E "^FAILED" $OUT/pytest_fix.log | head
t0=$SECONDS; timeout 170 python3 packages/w4a8-mm/benchmarks/run.py --models Llama-4-Scout Qwen3-30B-A3B DeepSeek-R1 --out $OUT/results_w4a8 > $OUT/bench_w4a8.log 2>&1; echo "w4a8 rc=$? $((SECONDS-t0))s"
t0=$SECONDS; timeout 150 python3 packages/mxfp4/benchmarks/run.py --out $OUT/results_mxfp4 > $OUT/bench_mxfp4.log 2>&1; echo "mxfp4 rc=$? $((SECONDS-t0))s"
t0=$SECONDS; timeout 170 python3 packages/nvfp4-mm/benchmarks/run.py --group --out $OUT/results_nvgroup > $OUT/bench_nvgroup.log 2>&1; echo "nvgroup rc=$? $((SECONDS-t0))s"
for f in $OUT/results_*/*.md; do echo "== $f"; cat $f | head -60; done
