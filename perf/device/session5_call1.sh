# Prepared at the end of session 4 for the next device call: the GPU re-run of the changes made after the
# last GPU run (contract refactor, Blackwell/CPU NaN rows, dense alignment check), then ncu of the wgmma
# grouped kernel on its worst prefill point. Build first: nvfp4-mm, mxfp4 (90a) into .carry/.
source <(sed -n '/^export PYTHONUNBUFFERED/,/^export PYTHONPATH/p' perf/device/gpu_check.sh)
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > $OUT/gpu.txt
t0=$SECONDS; timeout 300 python3 -m pytest -q -p no:cacheprovider -n 15 packages/nvfp4-mm/tests/test_group_mm.py packages/mxfp4/tests/test_group_mm.py "packages/nvfp4-mm/tests/test_nvfp4_mm.py::test_misaligned_base" > $OUT/pytest_group.log 2>&1; echo "group suites rc=$? $((SECONDS-t0))s: $(tail -1 $OUT/pytest_group.log)"; grep -E "^FAILED|^ERROR" $OUT/pytest_group.log | head -12
t0=$SECONDS; timeout 200 ncu --section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats --section SchedulerStats -k regex:wgmma_group_kernel -s 1 -c 1 python3 perf/nvfp4-mm/profile_group.py > $OUT/ncu_wgmma_qwen3_gemm1_8192.txt 2>&1; echo "ncu rc=$? $((SECONDS-t0))s"; grep -E "Duration|Throughput|Issue Slots|Eligible|No Eligible|L2 Cache|DRAM" $OUT/ncu_wgmma_qwen3_gemm1_8192.txt | head -30
