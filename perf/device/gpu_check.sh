#!/bin/bash
# One device call (repo root): GPU tests of the carried builds, then benchmarks.
#   [NPROC=N TEST_LIMIT=S BENCH_LIMIT=S] bash perf/device/gpu_check.sh "PKGS" "BENCH_PKGS"
# .carry/<pkg>/ holds _C.so + _C_build_info.json built on the CPU machine for
# sm_90a (tools: LOWBIT_CUDA_ARCHS=90a uv build --wheel; unzip the .so).
# Logs go to $OUT (pytest_<pkg>.log, bench_<pkg>.log, results_<pkg>/).
PKGS=${1:-"nvfp4-quant nvfp4-mm w4a8-mm"}; BENCH=${2:-""}
cd "$(dirname "$0")/../.."
# A carried snapshot of the sources (.carry/tree) replaces the working tree's packages/ and shared/.
[ -d .carry/tree ] && rm -rf packages shared && cp -r .carry/tree/packages .carry/tree/shared .
export PYTHONUNBUFFERED=1 TORCHINDUCTOR_FORCE_DISABLE_CACHES=1
pp=$PWD/packages/cutlass-ext/src:$PWD/shared/src:$PWD/packages/kernels/src
for d in packages/*/; do p=$(basename "$d")
  [ -f ".carry/$p/_C.so" ] && cp ".carry/$p"/_C.so ".carry/$p"/_C_build_info.json "$d"src/lowbit/*/
  pp=$pp:$PWD/${d}src
done
export PYTHONPATH=$pp
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv | tee "$OUT/gpu.txt"
for p in $PKGS; do
  t=packages/$p/tests; [ "$p" = kernels ] && t="packages/kernels/tests/test_vllm_ops.py packages/kernels/tests/test_vllm_schemas.py"
  timeout ${TEST_LIMIT:-240} python3 -m pytest $t -q -p no:cacheprovider -rs -n ${NPROC:-4} > "$OUT/pytest_$p.log" 2>&1
  echo "pytest $p rc=$?"; grep -E "passed|failed" "$OUT/pytest_$p.log" | tail -3; grep -E "^FAILED|^ERROR" "$OUT/pytest_$p.log" | head -15
done
for p in $BENCH; do
  timeout ${BENCH_LIMIT:-200} python3 packages/$p/benchmarks/run.py --out "$OUT/results_$p" > "$OUT/bench_$p.log" 2>&1
  echo "bench $p rc=$?"; grep -E "^\|" "$OUT/bench_$p.log" | tail -${BENCH_LINES:-40}
done
