# Session 5, call 1: the GPU re-run of the changes made after the last GPU run (contract refactor,
# Blackwell/CPU NaN rows, dense alignment check), then ncu of the wgmma grouped kernel on its worst
# prefill point (Qwen3-30B-A3B gemm1, 8192 tokens) beside the bf16 baseline, and of the small-M decode
# kernel. Build first: nvfp4-mm, mxfp4 (90a) into .carry/.
source <(sed -n '/^export PYTHONUNBUFFERED/,/^export PYTHONPATH/p' perf/device/gpu_check.sh)
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > $OUT/gpu.txt
t0=$SECONDS; timeout 300 python3 -m pytest -q -p no:cacheprovider -n 15 packages/nvfp4-mm/tests/test_group_mm.py packages/mxfp4/tests/test_group_mm.py "packages/nvfp4-mm/tests/test_nvfp4_mm.py::test_misaligned_base" > $OUT/pytest_group.log 2>&1; echo "group suites rc=$? $((SECONDS-t0))s: $(tail -1 $OUT/pytest_group.log)"; grep -E "^FAILED|^ERROR" $OUT/pytest_group.log | head -12
P=perf/nvfp4-mm/profile_group.py; T="--metrics gpu__time_duration.sum,sm__throughput.avg.pct_of_peak_sustained_elapsed,dram__throughput.avg.pct_of_peak_sustained_elapsed"
t0=$SECONDS
for g in gemm1 gemm2; do timeout 60 ncu $T -s 3 -c 3 python3 $P Qwen3-30B-A3B $g 8192 wgmma_128x256 > $OUT/ncu_times_qwen3_${g}.txt 2>&1; timeout 60 ncu $T -s 2 -c 4 python3 $P Qwen3-30B-A3B $g 8192 bf16 > $OUT/ncu_times_bf16_qwen3_${g}.txt 2>&1; done
echo "times $((SECONDS-t0))s"; grep -hE "^  [a-zA-Z_].*\(|gpu__time_duration|sm__throughput|dram__" $OUT/ncu_times_*.txt | cut -c1-150
t0=$SECONDS; timeout 150 ncu --set full --import-source no -k regex:wgmma_group_kernel -s 1 -c 1 python3 $P > $OUT/ncu_full_wgmma_qwen3_gemm1_8192.txt 2>&1; echo "ncu full rc=$? $((SECONDS-t0))s"
grep -E "Duration|Compute \(SM\) Throughput|Memory Throughput|Issue Slots Busy|No Eligible|Eligible Warps|Registers Per|Achieved Occupancy|L1/TEX Hit|L2 Hit|Stall|Warp Cycles Per Issued" $OUT/ncu_full_wgmma_qwen3_gemm1_8192.txt | head -40
t0=$SECONDS; timeout 100 ncu --set full --import-source no -s 2 -c 1 python3 $P Qwen3-30B-A3B gemm1 8192 bf16 > $OUT/ncu_full_bf16_qwen3_gemm1_8192.txt 2>&1; echo "ncu bf16 rc=$? $((SECONDS-t0))s"; grep -E "^  [a-zA-Z_].*\(|Duration|Compute \(SM\) Throughput|Issue Slots Busy|Registers Per|Block Size|Grid Size" $OUT/ncu_full_bf16_qwen3_gemm1_8192.txt | head -12
t0=$SECONDS; timeout 100 ncu --set full --import-source no -k regex:small_m -s 1 -c 1 python3 $P DeepSeek-R1 gemm1 16 small_m_16x128 > $OUT/ncu_full_smallm_dsr1_gemm1_16.txt 2>&1; echo "ncu small_m rc=$? $((SECONDS-t0))s"
grep -E "Duration|Compute \(SM\) Throughput|Memory Throughput|DRAM Throughput|Issue Slots Busy|No Eligible|Eligible Warps|Registers Per|Achieved Occupancy|Warp Cycles Per Issued" $OUT/ncu_full_smallm_dsr1_gemm1_16.txt | head -20
cd $OUT && tar czf ncu.tgz *.txt && ls
