# Prepared in session 7 (no device was lent that session). Grouped call (after session7_call2_decode.sh ran the
# tests of the same builds): two builds alternating by process (new, exp, new, exp), each against bf16 / fp8
# grouped GEMMs in the same process:
#   new: .carry/ab/nvfp4_mm_new (main at 4f05b25: the byte-permute e2m1 decode)
#   exp: .carry/ab/nvfp4_mm_exp + .carry/ab/mxfp4_exp (branch s7-exp; its grouped parts: K groups of warps
#        inside the small-M grouped tile's CTAs at the decode points, NOTES v10, and the wgmma kernel's
#        activation pre-pass through shared memory at the prefill points, v11)
# Then the narrow decode tile small_m_16x64 (NOTES v15) against small_m_16x128 by name.
# (MXFP4 table: session7_call4_mxfp4.sh.) Carry [".carry"]. About 9 minutes.
source <(sed -n '/^export PYTHONUNBUFFERED/,/^export PYTHONPATH/p' perf/device/gpu_check.sh)
NEWPP=$PWD/.carry/ab/nvfp4_mm_new:$PYTHONPATH
EXPPP=$PWD/.carry/ab/nvfp4_mm_exp:$PWD/.carry/ab/mxfp4_exp:$PYTHONPATH
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > $OUT/gpu.txt
for b in new exp new exp; do [ $b = new ] && export PYTHONPATH=$NEWPP || export PYTHONPATH=$EXPPP
  for m in Qwen3-30B-A3B DeepSeek-R1; do  # one process per model: a timeout loses one table, not both
    timeout 50 python3 packages/nvfp4-mm/benchmarks/run.py --group --models $m --tokens 1,4,16,64,1024,8192 \
      --out $OUT/group_${b}_${m}_$SECONDS > /dev/null 2>&1; echo "group $b $m rc=$?"
  done
done
for d in $OUT/group_*; do echo $d; grep -E "^\|" $d/*.md | cut -d'|' -f2-7,13-15; done
# The narrow decode tile (NOTES v15, exp build, by name) against the 16x128 tile with K groups, interleaved
# in one process per family.
export PYTHONPATH=$EXPPP
for f in nvfp4 mxfp4; do
  timeout 100 python3 perf/nvfp4-mm/group_kernel_sweep.py $OUT/narrow_$f.md --family $f --models DeepSeek-R1,Qwen3-30B-A3B \
    --tokens 1,4,16,64 --kernels small_m_16x128,small_m_16x64 > /dev/null 2>&1; echo "narrow $f rc=$?"; grep -E "^\|" $OUT/narrow_$f.md
done
cd $OUT && tar czf all.tgz *.txt group_* narrow_* && ls | wc -l
