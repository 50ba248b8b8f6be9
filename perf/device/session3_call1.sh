set -x
export NPROC=12
# install .so's and set PYTHONPATH the same way gpu_check does (PKGS empty: no tests)
source <(sed -n '/^export PYTHONUNBUFFERED/,/^export PYTHONPATH/p' perf/device/gpu_check.sh)
timeout 120 python3 perf/moe/debug_w4a8_forward.py > $OUT/debug_w4a8.log 2>&1; echo debug rc=$?
cat $OUT/debug_w4a8.log | head -120
TEST_LIMIT=430 bash perf/device/gpu_check.sh "nvfp4-mm" ""
