# session 3, device call 4: benchmarks (grouped GEMMs, mxfp4, quant A/B base-vs-new and new-vs-new)
source <(sed -n '/^export PYTHONUNBUFFERED/,/^export PYTHONPATH/p' perf/device/gpu_check.sh)
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > $OUT/gpu.txt
t0=$SECONDS; timeout 120 python3 packages/mxfp4/benchmarks/run.py --out $OUT/results_mxfp4 > $OUT/bench_mxfp4.log 2>&1; echo "mxfp4 rc=$? $((SECONDS-t0))s"
t0=$SECONDS; timeout 150 python3 packages/w4a8-mm/benchmarks/run.py --models Llama-4-Scout Qwen3-30B-A3B DeepSeek-R1 --out $OUT/results_w4a8 > $OUT/bench_w4a8.log 2>&1; echo "w4a8 rc=$? $((SECONDS-t0))s"
t0=$SECONDS; timeout 150 python3 packages/nvfp4-mm/benchmarks/run.py --group --out $OUT/results_nvgroup > $OUT/bench_nvgroup.log 2>&1; echo "nvgroup rc=$? $((SECONDS-t0))s"
# new-vs-new: the current build as "base" too
mkdir -p /tmp/nvnew/lowbit && cp -r packages/nvfp4-quant/src/lowbit/nvfp4_quant /tmp/nvnew/lowbit/
t0=$SECONDS; timeout 120 python3 perf/nvfp4-quant/ab_time.py --base /tmp/nvnew --rounds 1 --out $OUT/ab_new_vs_new.txt > $OUT/ab_nn.log 2>&1; echo "ab new-vs-new rc=$? $((SECONDS-t0))s"; grep -E "bytes|DIFF" $OUT/ab_nn.log | head
t0=$SECONDS; timeout 150 python3 perf/nvfp4-quant/ab_time.py --base .carry/ab/nvfp4_quant_base --rounds 2 --out $OUT/ab_base_vs_new.txt > $OUT/ab_bn.log 2>&1; echo "ab base-vs-new rc=$? $((SECONDS-t0))s"; cat $OUT/ab_base_vs_new.txt | head -40
cd $OUT && tar czf results.tgz results_* bench_*.log ab_*.txt ab_*.log && rm -rf results_* bench_*.log ab_*
