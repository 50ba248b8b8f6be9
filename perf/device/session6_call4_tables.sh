# Session 6, call 4: the package tables on the H200 with this session's builds (.carry: nvfp4-mm = main,
# w4a8-mm = the build being committed), each written straight into the package's results/ under $OUT.
source <(sed -n '/^export PYTHONUNBUFFERED/,/^export PYTHONPATH/p' perf/device/gpu_check.sh)
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > $OUT/gpu.txt
t0=$SECONDS; timeout 200 python3 packages/w4a8-mm/benchmarks/run.py --out $OUT/w4a8 > $OUT/w4a8_bench.log 2>&1; echo "w4a8 bench rc=$? $((SECONDS-t0))s"; tail -n 5 $OUT/w4a8_bench.log
t0=$SECONDS; timeout 330 python3 packages/nvfp4-mm/benchmarks/run.py --out $OUT/nvfp4mm > $OUT/nvfp4mm_bench.log 2>&1; echo "nvfp4-mm bench rc=$? $((SECONDS-t0))s"; tail -n 5 $OUT/nvfp4mm_bench.log
cd $OUT && tar czf all.tgz w4a8 nvfp4mm *.log *.txt && ls | wc -l
