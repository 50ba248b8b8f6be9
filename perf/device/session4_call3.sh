# session 4, device call 3: persistent wgmma FP4 GEMM (grouped + dense 64 < M <= 512): smoke, grouped table, dense sweep, full suites
source <(sed -n '/^export PYTHONUNBUFFERED/,/^export PYTHONPATH/p' perf/device/gpu_check.sh)
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > $OUT/gpu.txt
t0=$SECONDS; timeout 90 python3 -m pytest -q -p no:cacheprovider -x packages/nvfp4-mm/tests/test_group_mm.py packages/mxfp4/tests/test_group_mm.py packages/nvfp4-mm/tests/test_nvfp4_mm.py -k "cuda_batch_invariant or cuda_batch_of_empty or cuda_bad_metadata or every_kernel_with_bias" > $OUT/smoke.log 2>&1; rc=$?
echo "smoke rc=$rc $((SECONDS-t0))s"; tail -5 $OUT/smoke.log
if [ $rc -eq 0 ]; then
  t0=$SECONDS; timeout 130 python3 packages/nvfp4-mm/benchmarks/run.py --group --out $OUT/results_nvgroup > $OUT/bench_nvgroup.log 2>&1; echo "nvgroup bench rc=$? $((SECONDS-t0))s"; grep -E "^\| (DeepSeek|Qwen)" $OUT/results_nvgroup/*.md | awk -F'|' '{print $2,$3,$4,$6,$7,$8,$13,$14,$15}'
  t0=$SECONDS; timeout 40 python3 perf/nvfp4-mm/group_kernel_sweep.py $OUT/dense.md --dense --models Llama-3-70B,Llama-3-8B --tokens 64,128,256,512 --kernels none > $OUT/dense.log 2>&1; echo "dense rc=$? $((SECONDS-t0))s"; cat $OUT/dense.md
fi
t0=$SECONDS; timeout 330 python3 -m pytest -q -p no:cacheprovider -n 15 packages/nvfp4-mm/tests packages/mxfp4/tests > $OUT/pytest_mm.log 2>&1; echo "suites rc=$? $((SECONDS-t0))s: $(tail -1 $OUT/pytest_mm.log)"; grep -E "^FAILED|^ERROR" $OUT/pytest_mm.log | head -12
