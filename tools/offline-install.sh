#!/usr/bin/env bash
# Offline install of lowbit packages into an existing Python environment that
# already has torch (e.g. a GPU cluster node without internet).
#
#   tools/offline-install.sh WHEEL_DIR [PACKAGE_DIR ...]
#
# WHEEL_DIR holds the build-time wheels fetched elsewhere with
#   pip download --no-deps -d WHEEL_DIR hatchling pathspec pluggy trove-classifiers nvidia-cutlass==4.2.0.0
# (plus optionally prebuilt lowbit wheels). PACKAGE_DIRs default to every
# package folder under packages/ (cutlass-ext is always installed first). Builds use the environment as is (--no-build-isolation) and
# LOWBIT_CUDA_ARCHS (unset: the visible GPUs).
set -euo pipefail
wheels=$(cd "${1:?usage: tools/offline-install.sh WHEEL_DIR [PACKAGE_DIR ...]}" && pwd)
shift
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python3}
pkgs=("$@")
if [ ${#pkgs[@]} -eq 0 ]; then
  for d in "$root"/packages/*/; do
    [ "$(basename "$d")" = cutlass-ext ] || pkgs+=("${d%/}")
  done
fi
pip_offline=("$py" -m pip install --no-index --no-deps --no-build-isolation --find-links "$wheels")
# 1. build tools + CUTLASS headers, then the shared build package (pure Python).
"${pip_offline[@]}" hatchling pathspec pluggy trove-classifiers nvidia-cutlass==4.2.0.0
"${pip_offline[@]}" "$root/packages/cutlass-ext" "$root/shared"
# 2. the kernel packages, each built against the torch already installed.
for p in "${pkgs[@]}"; do
  echo "== building $p"
  "${pip_offline[@]}" "$p"
done
"$py" -c "import torch; print('torch', torch.__version__)"
