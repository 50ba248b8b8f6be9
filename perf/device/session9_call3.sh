# Session 9, call 3 (~8 min): the package tables with the heuristics as they stand after calls 1-2: the dense
# NVFP4 GEMM (Llama-3-8B/70B, every M), the grouped NVFP4 GEMM (DeepSeek-R1, Qwen3-30B-A3B); then the narrow
# decode tile (branch s9-narrow, NOTES v15) on the grouped op, both families, 1-64 tokens, against
# small_m_16x128 and bf16 grouped. Carry [".carry"].
source <(sed -n '/^export PYTHONUNBUFFERED/,/^export PYTHONPATH/p' perf/device/gpu_check.sh)
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > $OUT/gpu.txt
t0=$SECONDS
timeout 200 python3 packages/nvfp4-mm/benchmarks/run.py --out $OUT/results_nvfp4-mm > $OUT/bench_nvfp4-mm.log 2>&1
echo "dense bench rc=$? $((SECONDS-t0))s"
t0=$SECONDS
timeout 120 python3 packages/nvfp4-mm/benchmarks/run.py --group --models DeepSeek-R1,Qwen3-30B-A3B --out $OUT/results_group > $OUT/bench_group.log 2>&1
echo "group bench rc=$? $((SECONDS-t0))s"
t0=$SECONDS
PYTHONPATH=$PWD/.carry/ab/nvfp4_mm_narrow:$PWD/.carry/ab/mxfp4_narrow:$PYTHONPATH timeout 100 python3 \
  perf/nvfp4-mm/group_kernel_sweep.py $OUT/narrow_sweep.md --models DeepSeek-R1,Qwen3-30B-A3B,Llama-4-Scout \
  --tokens 1,4,16,64 --family nvfp4,mxfp4 --kernels small_m_16x128,small_m_16x64 > $OUT/narrow_sweep.log 2>&1
echo "narrow sweep rc=$? $((SECONDS-t0))s"
