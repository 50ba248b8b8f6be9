# session 4, device call 2: wgmma grouped tiles (64x128, 128x128, 128x256): smoke, sweep, grouped suites of nvfp4-mm + mxfp4
source <(sed -n '/^export PYTHONUNBUFFERED/,/^export PYTHONPATH/p' perf/device/gpu_check.sh)
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > $OUT/gpu.txt
t0=$SECONDS; timeout 80 python3 -m pytest -q -p no:cacheprovider -x packages/nvfp4-mm/tests/test_group_mm.py packages/mxfp4/tests/test_group_mm.py -k "cuda_batch_invariant or cuda_batch_of_empty or cuda_bad_metadata" > $OUT/smoke.log 2>&1; rc=$?
echo "smoke rc=$rc $((SECONDS-t0))s"; tail -5 $OUT/smoke.log
if [ $rc -eq 0 ]; then
  t0=$SECONDS; timeout 170 python3 perf/nvfp4-mm/group_kernel_sweep.py $OUT/sweep.md --tokens 256,1024,4096,8192 --kernels small_m_16x128,wgmma_64x128,wgmma_128x128,wgmma_128x256 > $OUT/sweep.log 2>&1; echo "sweep rc=$? $((SECONDS-t0))s"; grep -E "nvfp4|bf16" $OUT/sweep.md
fi
t0=$SECONDS; timeout 250 python3 -m pytest -q -p no:cacheprovider -n 15 --durations=12 packages/nvfp4-mm/tests/test_group_mm.py packages/mxfp4/tests > $OUT/pytest_group.log 2>&1; echo "group suites rc=$? $((SECONDS-t0))s: $(tail -1 $OUT/pytest_group.log)"; grep -E "^FAILED|^ERROR" $OUT/pytest_group.log | head -12; grep -A14 "slowest" $OUT/pytest_group.log | head -16
t0=$SECONDS; timeout 60 python3 perf/nvfp4-mm/group_kernel_sweep.py $OUT/dense.md --dense --models Llama-3-70B --tokens 64,128,256,512,1024,2048 --kernels wgmma_64x128,wgmma_128x128,wgmma_128x256 > $OUT/dense.log 2>&1; echo "dense rc=$? $((SECONDS-t0))s"; cat $OUT/dense.md; tail -3 $OUT/dense.log
