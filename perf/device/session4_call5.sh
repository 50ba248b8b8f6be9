# session 4, device call 5 (after reverting the quant v7 change): the mxfp4, nvfp4-quant and MoE-forward tables
source <(sed -n '/^export PYTHONUNBUFFERED/,/^export PYTHONPATH/p' perf/device/gpu_check.sh)
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > $OUT/gpu.txt
pack() { (cd $OUT && tar czf $1.tgz $2 && rm -rf $2); }
t0=$SECONDS; timeout 45 python3 packages/mxfp4/benchmarks/run.py --out $OUT/results_mxfp4 > $OUT/bench_mxfp4.log 2>&1; echo "mxfp4 bench rc=$? $((SECONDS-t0))s"; pack mxfp4 "results_mxfp4 bench_mxfp4.log"
t0=$SECONDS; timeout 60 python3 packages/nvfp4-quant/benchmarks/run.py --out $OUT/results_quant > $OUT/bench_quant.log 2>&1; echo "quant bench rc=$? $((SECONDS-t0))s"; pack quant "results_quant bench_quant.log"
t0=$SECONDS; timeout 130 python3 packages/moe/benchmarks/run.py --out $OUT/results_moe > $OUT/bench_moe.log 2>&1; echo "moe bench rc=$? $((SECONDS-t0))s"; tail -3 $OUT/bench_moe.log; pack moe "results_moe bench_moe.log"
