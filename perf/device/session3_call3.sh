# session 3, device call 3: GPU tests of the helpers' changes (carried 90a builds at HEAD)
export NPROC=12
source <(sed -n '/^export PYTHONUNBUFFERED/,/^export PYTHONPATH/p' perf/device/gpu_check.sh)
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > $OUT/gpu.txt
for t in ${TESTS:-"packages/nvfp4-quant/tests packages/mxfp4/tests packages/moe/tests packages/w4a8-mm/tests packages/nvfp4-mm/tests/test_group_mm.py packages/kernels/tests"}; do
  n=$(echo $t | tr '/' '_'); t0=$SECONDS
  timeout ${TEST_LIMIT:-200} python3 -m pytest -q -p no:cacheprovider -n $NPROC $t > $OUT/pytest_$n.log 2>&1
  echo "pytest $t rc=$? $((SECONDS-t0))s: $(tail -1 $OUT/pytest_$n.log)"; grep -E "^FAILED|^ERROR" $OUT/pytest_$n.log | head -8
done
cd $OUT && tar czf logs.tgz pytest_*.log && rm -f pytest_*.log
