# Prepared in session 7 (no device was lent that session): the grouped FP4 GEMMs, two builds alternating by
# process (new, exp, new, exp), each against bf16 / fp8 grouped GEMMs in the same process:
#   new: .carry/ab/nvfp4_mm_new (main at 4f05b25: the byte-permute e2m1 decode) + .carry/mxfp4 (unchanged)
#   exp: .carry/ab/nvfp4_mm_exp + .carry/ab/mxfp4_exp (branch s7-exp = s7-kgroups + s7-prepass: K groups of
#        warps inside the small-M grouped tile's CTAs (decode points), and the wgmma kernel's activation
#        pre-pass through shared memory (prefill points); perf/nvfp4-mm/NOTES.md v10, v11)
# Built here by `/tmp/build_ab.sh PKG DEST` (uv build --wheel with LOWBIT_CUDA_ARCHS=90a in a worktree at the
# commit; the package's src/lowbit plus _C.so). First the grouped suites of both packages and the nvfp4-mm
# dense suite (the pre-pass serves 64 < M <= 512) on exp with the branch's tests, then the A/B.
# Carry [".carry"]. About 9 minutes.
source <(sed -n '/^export PYTHONUNBUFFERED/,/^export PYTHONPATH/p' perf/device/gpu_check.sh)
NEWPP=$PWD/.carry/ab/nvfp4_mm_new:$PYTHONPATH
EXPPP=$PWD/.carry/ab/nvfp4_mm_exp:$PWD/.carry/ab/mxfp4_exp:$PYTHONPATH
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > $OUT/gpu.txt
export PYTHONPATH=$EXPPP
cp .carry/ab/testing_split/group_mm.py shared/src/lowbit/testing/group_mm.py  # s7-exp's shared tests
t0=$SECONDS; timeout 220 python3 -m pytest -q -p no:cacheprovider -n 16 packages/nvfp4-mm/tests packages/mxfp4/tests/test_group_mm.py > $OUT/pytest_exp.log 2>&1
echo "suites (exp) rc=$? $((SECONDS-t0))s: $(tail -1 $OUT/pytest_exp.log)"; grep -E "^FAILED|^ERROR" $OUT/pytest_exp.log | head -12
for b in new exp new exp; do [ $b = new ] && export PYTHONPATH=$NEWPP || export PYTHONPATH=$EXPPP
  for m in Qwen3-30B-A3B DeepSeek-R1; do  # one process per model: a timeout loses one table, not both
    timeout 45 python3 packages/nvfp4-mm/benchmarks/run.py --group --models $m --tokens 1,4,16,64,1024,8192 \
      --out $OUT/group_${b}_${m}_$SECONDS > /dev/null 2>&1; echo "group $b $m rc=$?"
  done
done
for d in $OUT/group_*; do echo $d; grep -E "^\|" $d/*.md | cut -d'|' -f2-7,13-15; done
cd $OUT && tar czf all.tgz *.txt *.log group_* && ls | wc -l
