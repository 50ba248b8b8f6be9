# Prepared in session 7 (no device was lent that session): the MoE layer's decode helpers, branch s7-moe
# (911ddb1): moe_combine by (token, column slice) blocks with the routes staged in shared memory,
# get_cutlass_moe_mm_data in one launch for <= 512 routes, and programmatic dependent launch for moe's
# kernels and the FP4 quant kernels (perf/moe/NOTES.md, session 7).
#   base: .carry/moe, .carry/nvfp4-quant (main)
#   exp:  .carry/ab/moe_exp + .carry/ab/nvfp4_quant_moe (bash perf/device/build_ab.sh s7-moe moe moe_exp, and
#         ... nvfp4-quant nvfp4_quant_moe). s7-moe's mxfp4 build (the same PDL change) is not carried (the
#         carry limit): MXFP4 runs main's build here, consistently (its kernels then launch without PDL).
# First the moe and nvfp4-quant suites on exp (bit-exact against the CPU kernels), then route / combine alone
# and the whole layer forward at decode, base and exp alternating. Carry [".carry"]. About 9 minutes.
source <(sed -n '/^export PYTHONUNBUFFERED/,/^export PYTHONPATH/p' perf/device/gpu_check.sh)
BASEPP=$PYTHONPATH; EXPPP=$PWD/.carry/ab/moe_exp:$PWD/.carry/ab/nvfp4_quant_moe:$PYTHONPATH
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > $OUT/gpu.txt
export PYTHONPATH=$EXPPP
t0=$SECONDS; timeout 240 python3 -m pytest -q -p no:cacheprovider -n 16 packages/moe/tests packages/nvfp4-quant/tests > $OUT/pytest_moe_exp.log 2>&1
echo "moe + nvfp4-quant tests (exp) rc=$? $((SECONDS-t0))s: $(tail -1 $OUT/pytest_moe_exp.log)"; grep -E "^FAILED|^ERROR" $OUT/pytest_moe_exp.log | head -12
for b in base exp base exp; do [ $b = base ] && export PYTHONPATH=$BASEPP || export PYTHONPATH=$EXPPP
  timeout 40 python3 perf/moe/route_combine_time.py $OUT/rc_${b}_$SECONDS.md --tokens 1,16,64,4096 > /dev/null 2>&1; echo "route/combine $b rc=$?"
done
for b in base exp; do [ $b = base ] && export PYTHONPATH=$BASEPP || export PYTHONPATH=$EXPPP
  timeout 90 python3 perf/moe/forward_time.py $OUT/fwd_${b}.md > /dev/null 2>&1; echo "forward $b rc=$?"
done
for f in $OUT/rc_*.md $OUT/fwd_*.md; do echo $f; grep -E "^\| [A-Z]" $f; done
cd $OUT && tar czf all.tgz *.txt *.log rc_* fwd_* && ls | wc -l
