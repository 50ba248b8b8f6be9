# Session 5, call 3: the run-based activation pre-pass (new, 01f0214) against 8d887f7 (base): ncu times of
# the three kernels on Qwen3-30B-A3B at 8192 tokens, the kernel sweep on both builds (NVFP4; MXFP4 new
# only, against bf16), then the GPU suites of the new build.
source <(sed -n '/^export PYTHONUNBUFFERED/,/^export PYTHONPATH/p' perf/device/gpu_check.sh)
NEWPP=$PYTHONPATH; BASEPP=$PWD/.carry/ab/nvfp4_mm_base:$PYTHONPATH
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > $OUT/gpu.txt
P=perf/nvfp4-mm/profile_group.py; K='regex:tile_table|prepass_x|wgmma_group'
for b in base new; do [ $b = base ] && export PYTHONPATH=$BASEPP || export PYTHONPATH=$NEWPP
  for pt in "Qwen3-30B-A3B gemm1 8192" "Qwen3-30B-A3B gemm2 8192"; do
    f=$OUT/ncu_times_${b}_$(echo $pt | tr ' ' _).txt
    timeout 60 ncu --clock-control none --metrics gpu__time_duration.sum -k "$K" -s 3 -c 3 python3 $P $pt wgmma_128x256 > $f 2>&1
    echo "$b $pt: $(grep -E 'gpu__time_duration' $f | awk '{print $NF}' | tr '\n' ' ')"
  done
done
t0=$SECONDS
for b in base new base new; do [ $b = base ] && export PYTHONPATH=$BASEPP || export PYTHONPATH=$NEWPP
  timeout 120 python3 perf/nvfp4-mm/group_kernel_sweep.py $OUT/sweep_${b}_$SECONDS.md --models Qwen3-30B-A3B,DeepSeek-R1,Llama-4-Scout --tokens 256,1024,8192 --family nvfp4 --kernels wgmma_64x128,wgmma_128x256 > /dev/null 2>&1
  echo "sweep $b rc=$?"
done; echo "sweeps $((SECONDS-t0))s"
for f in $OUT/sweep_*.md; do echo $f; grep wgmma $f | cut -d'|' -f2-8 | sed 's/ N=[0-9]* K=[0-9]*//'; done
export PYTHONPATH=$NEWPP
timeout 100 python3 perf/nvfp4-mm/group_kernel_sweep.py $OUT/sweep_mxfp4_new.md --models gpt-oss-120b,DeepSeek-R1 --tokens 1024,4096 --family mxfp4 --kernels wgmma_64x128,wgmma_128x256 > /dev/null 2>&1; grep wgmma $OUT/sweep_mxfp4_new.md | cut -d'|' -f2-8
t0=$SECONDS; timeout 330 python3 -m pytest -q -p no:cacheprovider -n 15 packages/nvfp4-mm/tests/test_group_mm.py packages/mxfp4/tests/test_group_mm.py packages/nvfp4-mm/tests/test_nvfp4_mm.py > $OUT/pytest_new.log 2>&1; echo "suites rc=$? $((SECONDS-t0))s: $(tail -1 $OUT/pytest_new.log)"; grep -E "^FAILED|^ERROR" $OUT/pytest_new.log | head -12
cd $OUT && tar czf all.tgz *.txt *.md *.log && ls | wc -l
