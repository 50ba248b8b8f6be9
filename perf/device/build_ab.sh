#!/bin/bash
# Builds one package at a commit for the lent H200 (sm_90a) and stages it for an A/B call:
#   bash perf/device/build_ab.sh REV PKG DEST
# e.g. `bash perf/device/build_ab.sh s7-exp nvfp4-mm nvfp4_mm_exp` -> .carry/ab/nvfp4_mm_exp/lowbit/nvfp4_mm/
# (the package's Python at REV plus the wheel's _C.so and _C_build_info.json). A device script puts
# .carry/ab/DEST first on PYTHONPATH to run that build. The build runs in a git worktree at /tmp/wt_ab
# (kept, so ninja and ccache make the next build of a nearby commit fast: ~30 s for a header change,
# ~15 min cold on 2 cores).
set -e
REV=$1; PKG=$2; DEST=$3
ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
WT=/tmp/wt_ab
[ -d $WT ] || git -C $ROOT worktree add -q --detach $WT $REV
git -C $WT checkout -q --detach $REV
export PATH=/usr/local/cuda/bin:$HOME/.local/bin:$PATH CCACHE_BASEDIR=/ CCACHE_NOHASHDIR=1 LOWBIT_BUILD_JOBS=2 \
  LOWBIT_CUDA_ARCHS=90a
rm -rf $WT/dist_$PKG
t0=$SECONDS
(cd $WT && uv build --wheel --package lowbit-$PKG -o $WT/dist_$PKG > /tmp/build_ab_$PKG.log 2>&1) ||
  { echo "build of lowbit-$PKG at $REV failed: /tmp/build_ab_$PKG.log"; tail -20 /tmp/build_ab_$PKG.log; exit 1; }
D=$ROOT/.carry/ab/$DEST; MOD=${PKG//-/_}
rm -rf $D && mkdir -p $D && cp -r $WT/packages/$PKG/src/lowbit $D/
unzip -o -j -q $WT/dist_$PKG/*.whl '*/_C.so' '*/_C_build_info.json' -d $D/lowbit/$MOD
echo "lowbit-$PKG at $(git -C $WT rev-parse --short HEAD) -> .carry/ab/$DEST in $((SECONDS - t0)) s"
