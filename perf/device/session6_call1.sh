# Prepared at the end of session 5 for the next session's first device call: the producer-side activation
# decode of branch s5-fold (0c17069: no pre-pass at all; 128-row tiles one row per producer thread, 64-row
# tiles one stage per producer warp) against main (1fb20c5).
# Build first (90a): `git -C /tmp/wt_dev checkout --detach s5-fold && bash build nvfp4-mm mxfp4` into .carry/
# (nvfp4-mm, mxfp4 = the fold), with the main builds unpacked under .carry/ab/{nvfp4_mm,mxfp4}_base/lowbit/.
# The fold changes only C++ (the Python sources of both builds are main's). Carry [".carry"] (49 MB; the
# limit is 64 MiB).
source <(sed -n '/^export PYTHONUNBUFFERED/,/^export PYTHONPATH/p' perf/device/gpu_check.sh)
NEWPP=$PYTHONPATH; BASEPP=$PWD/.carry/ab/nvfp4_mm_base:$PWD/.carry/ab/mxfp4_base:$PYTHONPATH
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > $OUT/gpu.txt
t0=$SECONDS; timeout 280 python3 -m pytest -q -p no:cacheprovider -n 16 packages/nvfp4-mm/tests/test_group_mm.py packages/mxfp4/tests/test_group_mm.py packages/nvfp4-mm/tests/test_nvfp4_mm.py > $OUT/pytest_fold.log 2>&1; echo "suites rc=$? $((SECONDS-t0))s: $(tail -1 $OUT/pytest_fold.log)"; grep -E "^FAILED|^ERROR" $OUT/pytest_fold.log | head -12
P=perf/nvfp4-mm/profile_group.py; K='regex:tile_table|prepass_x|wgmma_group'
for b in base fold; do [ $b = base ] && export PYTHONPATH=$BASEPP || export PYTHONPATH=$NEWPP
  for pt in "Qwen3-30B-A3B gemm1 8192" "Qwen3-30B-A3B gemm2 8192" "DeepSeek-R1 gemm1 8192" "DeepSeek-R1 gemm2 1024"; do
    f=$OUT/ncu_times_${b}_$(echo $pt | tr ' ' _).txt
    timeout 60 ncu --clock-control none --metrics gpu__time_duration.sum -k "$K" python3 $P $pt wgmma_128x256 > $f 2>&1
    echo "$b $pt (3 calls): $(grep -E 'gpu__time_duration' $f | awk '{print $(NF-1)=="ms" ? $NF*1000 : $NF}' | tr '\n' ' ')"
  done
done
for b in base fold base fold; do [ $b = base ] && export PYTHONPATH=$BASEPP || export PYTHONPATH=$NEWPP
  timeout 120 python3 perf/nvfp4-mm/group_kernel_sweep.py $OUT/sweep_${b}_$SECONDS.md --models Qwen3-30B-A3B,DeepSeek-R1,Llama-4-Scout --tokens 256,1024,8192 --family nvfp4,mxfp4 --kernels wgmma_64x128,wgmma_128x256 > /dev/null 2>&1
  echo "sweep $b rc=$?"
  timeout 60 python3 perf/nvfp4-mm/group_kernel_sweep.py $OUT/dense_${b}_$SECONDS.md --dense --models Llama-3-70B,Llama-3-8B --tokens 128,256,512 --kernels none > /dev/null 2>&1
done
for f in $OUT/sweep_*.md; do echo $f; grep wgmma $f | cut -d'|' -f2-8 | sed 's/ N=[0-9]* K=[0-9]*//'; done
for f in $OUT/dense_*.md; do echo $f; grep heuristic $f | cut -d'|' -f2-8; done
cd $OUT && tar czf all.tgz *.txt *.md *.log && ls | wc -l
