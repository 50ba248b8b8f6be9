# Prepared in session 7 (no device was lent that session). Dense call: the tests of every new kernel path,
# then the dense A/B. Three builds alternating by process (base, new, exp, base, new, exp), each against
# bf16 cuBLAS in the same process (weights rotated past L2, CUDA graphs):
#   base: .carry/nvfp4-mm (main before 4f05b25)
#   new:  .carry/ab/nvfp4_mm_new (main at 4f05b25: the byte-permute e2m1 decode, NOTES v9)
#   exp:  .carry/ab/nvfp4_mm_exp + .carry/ab/mxfp4_exp (branch s7-exp: new + K groups in the grouped decode
#         tile (v10) + the wgmma pre-pass through shared memory (v11) + the dense small-M split-K reduced in
#         the main kernel (v12) + dense 16 < M <= 64 on the wgmma kernel where the small-M CTAs spill into a
#         partial wave (v13) + split-K for the dense wgmma kernel where its tiles leave SMs idle (v14); MXFP4's
#         one-multiply decode path (perf/mxfp4/NOTES.md v0.4))
# Built here by `bash perf/device/build_ab.sh REV PKG DEST` (uv build --wheel with LOWBIT_CUDA_ARCHS=90a in a worktree at the
# commit; the package's src/lowbit plus _C.so); s7-exp's shared tests are carried in .carry/ab/testing_split.
# Dense points: M = 1 / 16 run the small-M kernel (decode: new vs base; fused reduce: exp vs new), M = 64 the
# small-M kernel or (exp, v13) the wgmma kernel, M = 128 / 256 the wgmma kernel (pre-pass and, at M = 128 on the
# narrow layers, split-K: exp vs new).
# Carry [".carry"]. About 8 minutes.
source <(sed -n '/^export PYTHONUNBUFFERED/,/^export PYTHONPATH/p' perf/device/gpu_check.sh)
BASEPP=$PYTHONPATH; NEWPP=$PWD/.carry/ab/nvfp4_mm_new:$PYTHONPATH
EXPPP=$PWD/.carry/ab/nvfp4_mm_exp:$PWD/.carry/ab/mxfp4_exp:$PYTHONPATH
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv > $OUT/gpu.txt
# Main's kernels first: do mma.sync (decode tile) and wgmma give the same bits? (perf/nvfp4-mm/NOTES.md
# v10 amendment: this decides whether K groups can merge.)
PYTHONPATH=$NEWPP timeout 60 python3 -m pytest -q -p no:cacheprovider -k across_kernel_choice \
  packages/nvfp4-mm/tests/test_group_mm.py packages/mxfp4/tests/test_group_mm.py > $OUT/pytest_new_xkernel.log 2>&1
echo "cross-kernel invariance on main (new): rc=$? $(tail -1 $OUT/pytest_new_xkernel.log)"
export PYTHONPATH=$EXPPP
cp .carry/ab/testing_split/group_mm.py shared/src/lowbit/testing/group_mm.py  # s7-exp's shared tests
t0=$SECONDS; timeout 230 python3 -m pytest -q -p no:cacheprovider -n 16 packages/nvfp4-mm/tests packages/mxfp4/tests/test_group_mm.py > $OUT/pytest_exp.log 2>&1
echo "nvfp4-mm + mxfp4 grouped tests (exp) rc=$? $((SECONDS-t0))s: $(tail -1 $OUT/pytest_exp.log)"; grep -E "^FAILED|^ERROR" $OUT/pytest_exp.log | head -12
for b in base new exp base new exp; do
  case $b in base) export PYTHONPATH=$BASEPP;; new) export PYTHONPATH=$NEWPP;; exp) export PYTHONPATH=$EXPPP;; esac
  timeout 50 python3 packages/nvfp4-mm/benchmarks/run.py --models Llama-3-70B,Llama-3-8B --tokens 1,16,64,128,256 \
    --impls "lowbit,torch.mm bf16" --alternatives "" --out $OUT/dense_${b}_$SECONDS > /dev/null 2>&1; echo "dense $b rc=$?"
done
for d in $OUT/dense_*; do echo $d; grep -E "^\|" $d/*.md | head -50; done
cd $OUT && tar czf all.tgz *.txt *.log dense_* && ls | wc -l
