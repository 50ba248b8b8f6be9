# Session 9, call 1: main as it stands plus the dense wgmma split-K (83ab88c) (every change since session 6 landed untimed: the byte-permute
# e2m1 decode, the H200 W4A8 heuristic, the CPU/Blackwell refactors) on the H200. Every kernel package's
# GPU tests in one pytest (16 workers), then the dense NVFP4 package table.
# Builds: .carry/<pkg>/_C.so (LOWBIT_CUDA_ARCHS=90a uv build --wheel of main). Carry [".carry"]. ~8 min.
source <(sed -n '/^export PYTHONUNBUFFERED/,/^export PYTHONPATH/p' perf/device/gpu_check.sh)
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > $OUT/gpu.txt
t0=$SECONDS
timeout 300 python3 -m pytest -q -p no:cacheprovider -rs -n 16 --durations=15 packages/nvfp4-quant/tests \
  packages/nvfp4-mm/tests packages/w4a8-mm/tests packages/moe/tests packages/mxfp4/tests \
  packages/kernels/tests/test_vllm_ops.py packages/kernels/tests/test_vllm_schemas.py > $OUT/pytest_all.log 2>&1
echo "tests rc=$? $((SECONDS-t0))s: $(tail -1 $OUT/pytest_all.log)"; grep -E "^FAILED|^ERROR" $OUT/pytest_all.log | head -30
t0=$SECONDS
timeout 200 python3 packages/nvfp4-mm/benchmarks/run.py --out $OUT/results_nvfp4-mm > $OUT/bench_nvfp4-mm.log 2>&1
echo "dense bench rc=$? $((SECONDS-t0))s"; grep -E "^\|" $OUT/bench_nvfp4-mm.log | cut -c1-200 | head -100
