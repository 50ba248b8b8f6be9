# Session 5, call 4 (the last of the session's device budget): the chunk-per-thread pre-pass (1fb20c5):
# GPU suites, ncu times of the three kernels against 8d887f7 (base), then the nvfp4-mm grouped, mxfp4 and
# MoE-forward tables.
source <(sed -n '/^export PYTHONUNBUFFERED/,/^export PYTHONPATH/p' perf/device/gpu_check.sh)
NEWPP=$PYTHONPATH; BASEPP=$PWD/.carry/ab/nvfp4_mm_base:$PYTHONPATH
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > $OUT/gpu.txt
pack() { (cd $OUT && tar czf $1.tgz $2 && rm -rf $2); }
t0=$SECONDS; timeout 280 python3 -m pytest -q -p no:cacheprovider -n 16 packages/nvfp4-mm/tests/test_group_mm.py packages/mxfp4/tests/test_group_mm.py packages/nvfp4-mm/tests/test_nvfp4_mm.py > $OUT/pytest_new.log 2>&1; echo "suites rc=$? $((SECONDS-t0))s: $(tail -1 $OUT/pytest_new.log)"; grep -E "^FAILED|^ERROR" $OUT/pytest_new.log | head -12
P=perf/nvfp4-mm/profile_group.py; K='regex:tile_table|prepass_x|wgmma_group'
for b in base new; do [ $b = base ] && export PYTHONPATH=$BASEPP || export PYTHONPATH=$NEWPP
  f=$OUT/ncu_times_${b}_qwen3_gemm1_8192.txt
  timeout 40 ncu --clock-control none --metrics gpu__time_duration.sum -k "$K" -s 3 -c 3 python3 $P > $f 2>&1
  echo "$b Qwen3-30B-A3B gemm1 8192: $(grep -E 'gpu__time_duration' $f | awk '{print $NF}' | tr '\n' ' ')"
done
export PYTHONPATH=$NEWPP
t0=$SECONDS; timeout 130 python3 packages/nvfp4-mm/benchmarks/run.py --group --out $OUT/results_nvgroup > $OUT/bench_nvgroup.log 2>&1; echo "nvgroup bench rc=$? $((SECONDS-t0))s"; pack nvgroup "results_nvgroup bench_nvgroup.log"
t0=$SECONDS; timeout 50 python3 packages/mxfp4/benchmarks/run.py --out $OUT/results_mxfp4 > $OUT/bench_mxfp4.log 2>&1; echo "mxfp4 bench rc=$? $((SECONDS-t0))s"; pack mxfp4 "results_mxfp4 bench_mxfp4.log"
t0=$SECONDS; timeout $((545 - SECONDS)) python3 packages/moe/benchmarks/run.py --out $OUT/results_moe > $OUT/bench_moe.log 2>&1; echo "moe bench rc=$? $((SECONDS-t0))s"; pack moe "results_moe bench_moe.log"
cd $OUT && tar czf logs.tgz *.txt *.log; ls
