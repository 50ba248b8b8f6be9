# session 4, device call 1: the wgmma grouped FP4 kernel (nvfp4-mm + mxfp4): smoke, sweep by kernel name, grouped suites
source <(sed -n '/^export PYTHONUNBUFFERED/,/^export PYTHONPATH/p' perf/device/gpu_check.sh)
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > $OUT/gpu.txt
t0=$SECONDS; timeout 100 python3 -m pytest -q -p no:cacheprovider -x packages/nvfp4-mm/tests/test_group_mm.py packages/mxfp4/tests/test_group_mm.py -k "cuda_batch_invariant or cuda_batch_of_empty" > $OUT/smoke.log 2>&1; rc=$?
echo "smoke rc=$rc $((SECONDS-t0))s"; tail -25 $OUT/smoke.log
if [ $rc -eq 0 ]; then
  t0=$SECONDS; timeout 230 python3 perf/nvfp4-mm/group_kernel_sweep.py $OUT/sweep.md --tokens 256,1024,4096,8192 > $OUT/sweep.log 2>&1; echo "sweep rc=$? $((SECONDS-t0))s"; cat $OUT/sweep.md
fi
t0=$SECONDS; timeout 170 python3 -m pytest -q -p no:cacheprovider -n 14 packages/nvfp4-mm/tests/test_group_mm.py > $OUT/pytest_nvgroup.log 2>&1; echo "nvgroup rc=$? $((SECONDS-t0))s: $(tail -1 $OUT/pytest_nvgroup.log)"; grep -E "^FAILED|^ERROR" $OUT/pytest_nvgroup.log | head -12
t0=$SECONDS; timeout 150 python3 -m pytest -q -p no:cacheprovider -n 14 packages/mxfp4/tests > $OUT/pytest_mxfp4.log 2>&1; echo "mxfp4 rc=$? $((SECONDS-t0))s: $(tail -1 $OUT/pytest_mxfp4.log)"; grep -E "^FAILED|^ERROR" $OUT/pytest_mxfp4.log | head -12
