"""Large-size numbers of the installed build, one line per case (for comparing
builds with different tuning knobs; see nvfp4_kernels.cuh). Sizes: NVQ_VARIANT_MS,
NVQ_VARIANT_KS (comma lists; default M = 4096, 16384 and K = 7168, 14336)."""

import os
import sys

import torch

from lowbit.nvfp4_quant import bench

tag = sys.argv[1] if len(sys.argv) > 1 else "build"
ms = tuple(int(v) for v in os.environ.get("NVQ_VARIANT_MS", "4096,16384").split(","))
ks = tuple(int(v) for v in os.environ.get("NVQ_VARIANT_KS", "7168,14336").split(","))
rows = bench._gpu_cases(torch.device("cuda"), ms, ks, None)
by = {}
for r in rows:
    by.setdefault((r["op"], r["shape"], r["M"]), {})[r["impl"]] = r
for (op, shape, m), d in by.items():
    lb, cp = d["lowbit"], d["copy floor"]
    print(f"{tag:8s} {op:40s} {shape:8s} M={m:6d} {lb['us']:8.1f} us {lb['metric']:5.2f} TB/s "
          f"{100 * cp['us'] / lb['us']:5.1f}% of copy")
