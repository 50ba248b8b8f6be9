# session 4, device call 4: experts-quant per-unit work (helper branch s4-quant): bytes + timing A/B against main 2018e3f,
# quant suites, then the mxfp4 and nvfp4-quant tables
source <(sed -n '/^export PYTHONUNBUFFERED/,/^export PYTHONPATH/p' perf/device/gpu_check.sh)
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > $OUT/gpu.txt
t0=$SECONDS; timeout 130 python3 perf/nvfp4-quant/ab_time.py --base .carry/ab/nvfp4_quant_base --rounds 1 --out $OUT/ab_base_vs_new.txt > $OUT/ab.log 2>&1; echo "ab rc=$? $((SECONDS-t0))s"; head -40 $OUT/ab.log
t0=$SECONDS; timeout 150 python3 -m pytest -q -p no:cacheprovider -n 15 packages/nvfp4-quant/tests packages/mxfp4/tests/test_experts_quant.py packages/mxfp4/tests/test_bad_inputs.py > $OUT/pytest_quant.log 2>&1; echo "quant suites rc=$? $((SECONDS-t0))s: $(tail -1 $OUT/pytest_quant.log)"; grep -E "^FAILED|^ERROR" $OUT/pytest_quant.log | head -12
t0=$SECONDS; timeout 120 python3 packages/mxfp4/benchmarks/run.py --out $OUT/results_mxfp4 > $OUT/bench_mxfp4.log 2>&1; echo "mxfp4 bench rc=$? $((SECONDS-t0))s"; cat $OUT/results_mxfp4/*.md | grep -E "^\|" | head -80
t0=$SECONDS; timeout 90 python3 packages/nvfp4-quant/benchmarks/run.py --out $OUT/results_quant > $OUT/bench_quant.log 2>&1; echo "quant bench rc=$? $((SECONDS-t0))s"; cat $OUT/results_quant/*.md | grep -E "16384|4096 \|" | head -40
