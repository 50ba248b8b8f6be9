# Prepared in session 7 (no device was lent that session): lowbit-moe's decode helpers, branch s7-moe
# (989385b): moe_combine by (token, column slice) blocks with the routes staged in shared memory, and
# get_cutlass_moe_mm_data in one launch for <= 512 routes (perf/moe/NOTES.md, session 7).
#   base: .carry/moe (main)      exp: .carry/ab/moe_exp (bash perf/device/build_ab.sh 989385b moe moe_exp)
# First the moe suite on exp (its routing and combine tests compare with the CPU kernels bit for bit), then
# route / combine alone, base and exp alternating, each with its outputs' CRC (must match between builds).
# Carry [".carry"]. About 6 minutes.
source <(sed -n '/^export PYTHONUNBUFFERED/,/^export PYTHONPATH/p' perf/device/gpu_check.sh)
BASEPP=$PYTHONPATH; EXPPP=$PWD/.carry/ab/moe_exp:$PYTHONPATH
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > $OUT/gpu.txt
export PYTHONPATH=$EXPPP
t0=$SECONDS; timeout 240 python3 -m pytest -q -p no:cacheprovider -n 16 packages/moe/tests > $OUT/pytest_moe_exp.log 2>&1
echo "moe tests (exp) rc=$? $((SECONDS-t0))s: $(tail -1 $OUT/pytest_moe_exp.log)"; grep -E "^FAILED|^ERROR" $OUT/pytest_moe_exp.log | head -12
for b in base exp base exp; do [ $b = base ] && export PYTHONPATH=$BASEPP || export PYTHONPATH=$EXPPP
  timeout 60 python3 perf/moe/route_combine_time.py $OUT/rc_${b}_$SECONDS.md > /dev/null 2>&1; echo "route/combine $b rc=$?"
done
for f in $OUT/rc_*.md; do echo $f; grep -E "^\| [A-Z]" $f; done
cd $OUT && tar czf all.tgz *.txt *.log rc_* && ls | wc -l
