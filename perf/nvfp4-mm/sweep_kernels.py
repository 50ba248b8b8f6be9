"""Time every named SM90 kernel (the private by-name op) beside the heuristic
on one weight shape, to tune the built-in heuristic (NOTES.md).

    python perf/nvfp4-mm/sweep_kernels.py OUT.md [--shape K,N] [--tokens 1,16,64]
"""

import sys

import torch

import lowbit.nvfp4_mm as mm
from lowbit.nvfp4_mm.bench import _inputs, _with_kernel
from lowbit.testing.bench import rotation_count, time_cuda_interleaved, write_table

TOKENS = [1, 16, 64, 128, 512, 2048, 8192]


def main(out: str, k: int = 8192, n: int = 8192, tokens=TOKENS) -> int:
    dev = torch.device("cuda")
    g = torch.Generator().manual_seed(1)
    alpha = torch.ones(1, device=dev)
    names = mm.kernel_names(dev)
    wbytes = n * k // 2 + n * k // 16
    rows = []
    for m in tokens:
        sets = [_inputs(m, n, k, dev, g) for _ in range(rotation_count(wbytes + m * k, dev))]
        outs = [torch.empty(m, n, dtype=torch.bfloat16, device=dev) for _ in sets]
        cands = {}
        for name in [None] + names:
            cands[name or "heuristic"] = [(lambda s=s, o=o, nm=name: _with_kernel(o, s, alpha, nm))
                                          for s, o in zip(sets, outs)]
        us = time_cuda_interleaved(cands)
        row = {"shape": f"N={n} K={k}", "M": m, **{k_: round(v, 1) for k_, v in us.items()}}
        row["best"] = min(us, key=us.get)
        rows.append(row)
        print(row, flush=True)
        del sets, outs, cands
    text = f"# nvfp4-mm SM90 kernel sweep on {torch.cuda.get_device_name(dev)} (µs)\n\n" + write_table(rows)
    open(out, "w").write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    args = sys.argv[2:]

    def opt(name, default):
        return args[args.index(name) + 1].split(",") if name in args else default

    k, n = (int(v) for v in opt("--shape", ["8192", "8192"]))
    sys.exit(main(sys.argv[1], k, n, tokens=[int(v) for v in opt("--tokens", TOKENS)]))
