# Prepared in session 7 (no device was lent that session): the byte-permute e2m1 -> fp16 decode
# (4f05b25, lowbit/fp4_gemm/e2m1_bits.h: same bits, 25% fewer decode instructions, small-M loop
# 1823 -> 1594 SASS instructions per window) against the build before it.
#   base: .carry/nvfp4-mm (main before 4f05b25; the decode's only change is in the SM90 TUs)
#   new:  .carry/ab/nvfp4_mm_new (bash /tmp/build_ab.sh nvfp4-mm nvfp4_mm_new from main: uv build --wheel
#         --package lowbit-nvfp4-mm with LOWBIT_CUDA_ARCHS=90a, the package's src/lowbit plus _C.so)
# The MoE and MXFP4 kernels use the same headers (MXFP4's SASS is byte-identical, so it is not timed).
# This call: the nvfp4-mm tests on the new build, then the dense A/B (`bash perf/device/session7_call2_decode.sh
# dense`, about 6 minutes); the grouped A/B is in session7_call3_group.sh (with branch s7-group-split).
# Carry [".carry"].
source <(sed -n '/^export PYTHONUNBUFFERED/,/^export PYTHONPATH/p' perf/device/gpu_check.sh)
BASEPP=$PYTHONPATH; NEWPP=$PWD/.carry/ab/nvfp4_mm_new:$PYTHONPATH
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > $OUT/gpu.txt
MODE=${1:-dense}
export PYTHONPATH=$NEWPP
python3 -c "import lowbit.nvfp4_mm as m, os; print('new build from', os.path.dirname(m.__file__))"
[ $MODE = dense ] && { t0=$SECONDS; timeout 200 python3 -m pytest -q -p no:cacheprovider -n 16 packages/nvfp4-mm/tests > $OUT/pytest_new.log 2>&1
echo "nvfp4-mm tests (new) rc=$? $((SECONDS-t0))s: $(tail -1 $OUT/pytest_new.log)"; grep -E "^FAILED|^ERROR" $OUT/pytest_new.log | head -12; }
# A/B, builds alternating by process (base, new, base, new), each against bf16 in the same process
# (weights rotated past L2, CUDA graphs): dense decode + mid M through the package benchmark, grouped
# decode (small-M kernel) and prefill (wgmma kernel) through the grouped benchmark.
for b in base new base new; do [ $b = base ] && export PYTHONPATH=$BASEPP || export PYTHONPATH=$NEWPP
  [ $MODE = dense ] && { timeout 80 python3 packages/nvfp4-mm/benchmarks/run.py --models Llama-3-70B,Llama-3-8B --tokens 1,16,64,128,256 \
    --impls "lowbit,torch.mm bf16" --alternatives "" --out $OUT/dense_${b}_$SECONDS > /dev/null 2>&1; echo "dense $b rc=$?"; }
  [ $MODE = group ] && { timeout 120 python3 packages/nvfp4-mm/benchmarks/run.py --group --models DeepSeek-R1,Qwen3-30B-A3B --tokens 1,16,64,1024,8192 \
    --out $OUT/group_${b}_$SECONDS > /dev/null 2>&1; echo "group $b rc=$?"; }
done
for d in $OUT/${MODE}_*; do echo $d; grep -E "^\|" $d/*.md | head -60; done
cd $OUT && tar czf all.tgz *.txt ${MODE}_* $(ls *.log 2>/dev/null) && ls | wc -l
