# Prepared in session 7 (no device was lent that session): the grouped FP4 GEMMs' decode, three builds
# alternating by process (base, new, split, ...), each against bf16 / fp8 grouped GEMMs in the same process:
#   base:  .carry/nvfp4-mm, .carry/mxfp4 (main before 4f05b25)
#   new:   .carry/ab/nvfp4_mm_new (main: the byte-permute e2m1 decode, 4f05b25; MXFP4 unchanged)
#   split: .carry/ab/nvfp4_mm_split + .carry/ab/mxfp4_split (branch s7-group-split, de32eab: the decode plus
#          split-K of the small-M grouped tile by N, K and the SM count)
# Built here by `/tmp/build_ab.sh PKG DEST` (uv build --wheel with LOWBIT_CUDA_ARCHS=90a in a worktree at
# the commit, the package's src/lowbit plus _C.so). First the grouped suites of both packages on the split
# build (the new CUDA test test_cuda_split_k_uneven included), then the A/B. Carry [".carry"]. About 9 min.
source <(sed -n '/^export PYTHONUNBUFFERED/,/^export PYTHONPATH/p' perf/device/gpu_check.sh)
BASEPP=$PYTHONPATH; NEWPP=$PWD/.carry/ab/nvfp4_mm_new:$PYTHONPATH
SPLITPP=$PWD/.carry/ab/nvfp4_mm_split:$PWD/.carry/ab/mxfp4_split:$PYTHONPATH
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > $OUT/gpu.txt
export PYTHONPATH=$SPLITPP
cp .carry/ab/testing_split/group_mm.py shared/src/lowbit/testing/group_mm.py  # the branch's tests (git show s7-group-split:...)
t0=$SECONDS; timeout 200 python3 -m pytest -q -p no:cacheprovider -n 16 packages/nvfp4-mm/tests/test_group_mm.py packages/mxfp4/tests/test_group_mm.py > $OUT/pytest_split.log 2>&1
echo "grouped suites (split) rc=$? $((SECONDS-t0))s: $(tail -1 $OUT/pytest_split.log)"; grep -E "^FAILED|^ERROR" $OUT/pytest_split.log | head -12
for b in base new split base new split; do
  case $b in base) export PYTHONPATH=$BASEPP;; new) export PYTHONPATH=$NEWPP;; split) export PYTHONPATH=$SPLITPP;; esac
  timeout 75 python3 packages/nvfp4-mm/benchmarks/run.py --group --models DeepSeek-R1,Qwen3-30B-A3B,Qwen3-235B-A22B \
    --tokens 1,4,16,64,1024 --out $OUT/group_${b}_$SECONDS > /dev/null 2>&1; echo "group $b rc=$?"
done
for d in $OUT/group_*; do echo $d; grep -E "^\|" $d/*.md | cut -d'|' -f2-7,13-15; done
cd $OUT && tar czf all.tgz *.txt *.log group_* && ls | wc -l
