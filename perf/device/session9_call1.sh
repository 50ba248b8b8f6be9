# Session 9, call 1 (~9 min): main as it stands plus the dense wgmma split-K (83ab88c), on the H200. Every
# change since session 6 landed untimed (the byte-permute e2m1 decode, the H200 W4A8 heuristic, the CPU and
# Blackwell refactors), so first every kernel package's GPU tests in one pytest (16 workers). Then:
#  - dense NVFP4 at M = 32-256 by kernel name and split count beside the heuristic and bf16 cuBLAS, interleaved
#    (NOTES v14: the split-K choice; v13: whether 32 < M <= 64 should leave the small-M kernel), Llama-3-8B/70B;
#  - the narrow decode tile small_m_16x64 (branch s9-narrow: twice the CTAs of small_m_16x128, depth 4, NOTES
#    v15) on the dense op at M = 1 and 16, beside main's heuristic and bf16.
# Builds: .carry/<pkg>/_C.so (LOWBIT_CUDA_ARCHS=90a uv build --wheel of main), .carry/ab/nvfp4_mm_narrow
# (perf/device/build_ab.sh). Carry [".carry"].
source <(sed -n '/^export PYTHONUNBUFFERED/,/^export PYTHONPATH/p' perf/device/gpu_check.sh)
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > $OUT/gpu.txt
t0=$SECONDS
timeout 280 python3 -m pytest -q -p no:cacheprovider -rs -n 16 --durations=15 packages/nvfp4-quant/tests \
  packages/nvfp4-mm/tests packages/w4a8-mm/tests packages/moe/tests packages/mxfp4/tests \
  packages/kernels/tests/test_vllm_ops.py packages/kernels/tests/test_vllm_schemas.py > $OUT/pytest_all.log 2>&1
echo "tests rc=$? $((SECONDS-t0))s: $(tail -1 $OUT/pytest_all.log)"; grep -E "^FAILED|^ERROR" $OUT/pytest_all.log | head -30
t0=$SECONDS
timeout 150 python3 perf/nvfp4-mm/sweep_kernels.py $OUT/dense_sweep.md --tokens 32,64,128,256 --bf16 \
  --kernels small_m_64x128,wgmma_64x128,wgmma_64x128:2,wgmma_64x128:4,wgmma_128x128,wgmma_128x128:2,wgmma_128x128:4,wgmma_128x256:4 \
  > $OUT/dense_sweep.log 2>&1
echo "dense sweep rc=$? $((SECONDS-t0))s"; grep -E "^\|" $OUT/dense_sweep.md || grep "^{" $OUT/dense_sweep.log
t0=$SECONDS
PYTHONPATH=$PWD/.carry/ab/nvfp4_mm_narrow:$PYTHONPATH timeout 75 python3 perf/nvfp4-mm/sweep_kernels.py \
  $OUT/narrow_dense.md --tokens 1,16 --bf16 \
  --kernels small_m_16x128,small_m_16x64,small_m_16x64:2,small_m_16x64:4,small_m_16x64:8 > $OUT/narrow_dense.log 2>&1
echo "narrow dense rc=$? $((SECONDS-t0))s"; grep -E "^\|" $OUT/narrow_dense.md || grep "^{" $OUT/narrow_dense.log
