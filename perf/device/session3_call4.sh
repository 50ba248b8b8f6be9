# session 3, device call 4: benchmarks (grouped GEMMs, mxfp4, quant A/B), kernels tests; results as tarballs
source <(sed -n '/^export PYTHONUNBUFFERED/,/^export PYTHONPATH/p' perf/device/gpu_check.sh)
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > $OUT/gpu.txt
pack() { (cd $OUT && tar czf $1.tgz $2 && rm -rf $2); }
t0=$SECONDS; timeout 100 python3 packages/mxfp4/benchmarks/run.py --out $OUT/results_mxfp4 > $OUT/results_mxfp4.log 2>&1; echo "mxfp4 rc=$? $((SECONDS-t0))s"; pack mxfp4 "results_mxfp4 results_mxfp4.log"
t0=$SECONDS; timeout 100 python3 packages/w4a8-mm/benchmarks/run.py --models Llama-4-Scout Qwen3-30B-A3B DeepSeek-R1 --out $OUT/results_w4a8 > $OUT/results_w4a8.log 2>&1; echo "w4a8 rc=$? $((SECONDS-t0))s"; pack w4a8 "results_w4a8 results_w4a8.log"
t0=$SECONDS; timeout 100 python3 packages/nvfp4-mm/benchmarks/run.py --group --out $OUT/results_nvgroup > $OUT/results_nvgroup.log 2>&1; echo "nvgroup rc=$? $((SECONDS-t0))s"; pack nvgroup "results_nvgroup results_nvgroup.log"
t0=$SECONDS; timeout 80 python3 -m pytest -q -p no:cacheprovider -n 12 packages/kernels/tests/test_vllm_ops.py packages/kernels/tests/test_vllm_schemas.py > $OUT/pytest_kernels.log 2>&1; echo "kernels rc=$? $((SECONDS-t0))s: $(tail -1 $OUT/pytest_kernels.log)"; grep -E "^FAILED" $OUT/pytest_kernels.log | head -5
mkdir -p /tmp/nvnew/lowbit && cp -r packages/nvfp4-quant/src/lowbit/nvfp4_quant /tmp/nvnew/lowbit/
t0=$SECONDS; timeout 90 python3 perf/nvfp4-quant/ab_time.py --base /tmp/nvnew --rounds 1 --out $OUT/ab_new_vs_new.txt > $OUT/ab_nn.log 2>&1; echo "ab new-vs-new rc=$? $((SECONDS-t0))s"; grep -E "bytes|DIFF" $OUT/ab_nn.log | head
t0=$SECONDS; timeout 120 python3 perf/nvfp4-quant/ab_time.py --base .carry/ab/nvfp4_quant_base --rounds 1 --out $OUT/ab_base_vs_new.txt > $OUT/ab_bn.log 2>&1; echo "ab base-vs-new rc=$? $((SECONDS-t0))s"; head -30 $OUT/ab_bn.log
