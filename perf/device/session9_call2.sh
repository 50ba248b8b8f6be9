# Session 9, call 2: what the heuristics should pick where the tables fall short, and the other tables.
# 1. Dense NVFP4 at M = 32-256 by kernel name and split count, bf16 cuBLAS in the same
#    run (NOTES v14: the split-K heuristic; v13: whether 32 < M <= 64 should leave the small-M kernel),
#    Llama-3-8B/70B. 2. (moved to call 3: the grouped table) 3. The W4A8 package table
#    (the H200 heuristic re-tune, 881e6dd, never ran on a GPU). 4. The narrow decode tile (s9-narrow).
#    Carry [".carry"]. ~9 min.
source <(sed -n '/^export PYTHONUNBUFFERED/,/^export PYTHONPATH/p' perf/device/gpu_check.sh)
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > $OUT/gpu.txt
t0=$SECONDS
timeout 170 python3 perf/nvfp4-mm/sweep_kernels.py $OUT/dense_sweep.md --tokens 32,64,128,256 --bf16 \
  --kernels small_m_64x128,wgmma_64x128,wgmma_64x128:2,wgmma_64x128:4,wgmma_128x128,wgmma_128x128:2,wgmma_128x128:4,wgmma_128x256:4 \
  > $OUT/dense_sweep.log 2>&1
echo "dense sweep rc=$? $((SECONDS-t0))s"; grep -E "^\|" $OUT/dense_sweep.md || grep "^{" $OUT/dense_sweep.log
t0=$SECONDS
timeout 150 python3 packages/w4a8-mm/benchmarks/run.py --out $OUT/results_w4a8 > $OUT/bench_w4a8.log 2>&1
echo "w4a8 bench rc=$? $((SECONDS-t0))s"; grep -E "^\|" $OUT/bench_w4a8.log | cut -c1-220 | head -80
# 4. The narrow decode tile small_m_16x64 (branch s9-narrow, twice the CTAs of small_m_16x128: NOTES v15) by name
#    against small_m_16x128, both families, 1-64 tokens, bf16 grouped in the same run.
t0=$SECONDS
PYTHONPATH=$PWD/.carry/ab/nvfp4_mm_narrow:$PWD/.carry/ab/mxfp4_narrow:$PYTHONPATH timeout 100 python3 \
  perf/nvfp4-mm/group_kernel_sweep.py $OUT/narrow_sweep.md --models DeepSeek-R1,Qwen3-30B-A3B,Llama-4-Scout \
  --tokens 1,4,16,64 --family nvfp4,mxfp4 --kernels small_m_16x128,small_m_16x64 > $OUT/narrow_sweep.log 2>&1
echo "narrow sweep rc=$? $((SECONDS-t0))s"; cat $OUT/narrow_sweep.md 2>/dev/null | head -120
# 5. The same tile on the dense op at decode (more loads in flight per SM: twice the CTAs, depth 4), with the
#    split counts around the heuristic's.
t0=$SECONDS
PYTHONPATH=$PWD/.carry/ab/nvfp4_mm_narrow:$PYTHONPATH timeout 80 python3 perf/nvfp4-mm/sweep_kernels.py \
  $OUT/narrow_dense.md --tokens 1,16 --bf16 \
  --kernels small_m_16x128,small_m_16x64,small_m_16x64:2,small_m_16x64:4,small_m_16x64:8 > $OUT/narrow_dense.log 2>&1
echo "narrow dense rc=$? $((SECONDS-t0))s"; grep -E "^\|" $OUT/narrow_dense.md || grep "^{" $OUT/narrow_dense.log
