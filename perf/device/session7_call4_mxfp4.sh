# Prepared in session 7 (no device was lent that session), lowest priority of the session-7 calls: the MXFP4
# package table (quantization and grouped GEMM against bf16 / the NVFP4 grouped GEMM, weights rotated past L2),
# two builds alternating by process (base, exp, base, exp):
#   base: .carry/mxfp4 (main)
#   exp:  .carry/ab/mxfp4_exp (+ .carry/ab/nvfp4_mm_exp, whose grouped GEMM the table times beside it): branch
#         s7-exp's MXFP4 parts: the decode tile's K groups (NOTES v10), one bf16 multiply per weight pair where
#         the warp's scales allow it, and the wgmma pre-pass (v11). Its tests ran in session7_call2_decode.sh.
# Carry [".carry"]. About 5 minutes.
source <(sed -n '/^export PYTHONUNBUFFERED/,/^export PYTHONPATH/p' perf/device/gpu_check.sh)
BASEPP=$PYTHONPATH; EXPPP=$PWD/.carry/ab/nvfp4_mm_exp:$PWD/.carry/ab/mxfp4_exp:$PYTHONPATH
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > $OUT/gpu.txt
for b in base exp base exp; do [ $b = base ] && export PYTHONPATH=$BASEPP || export PYTHONPATH=$EXPPP
  t0=$SECONDS; timeout 100 python3 packages/mxfp4/benchmarks/run.py --out $OUT/mxfp4_${b}_$SECONDS > /dev/null 2>&1
  echo "mxfp4 $b rc=$? $((SECONDS-t0))s"
done
for d in $OUT/mxfp4_*; do echo $d; grep -E "group_mm" $d/*.md | head -24; done
cd $OUT && tar czf all.tgz *.txt mxfp4_* && ls | wc -l
