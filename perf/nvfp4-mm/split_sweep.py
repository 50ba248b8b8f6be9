"""Small-M split-K count sweep, timed interleaved (NOTES.md v4.2, v5).

For each weight shape and M, the heuristic's launch and the given SM90 kernels
(default: small_m_16x128, the heuristic's choice for M <= 16) with forced
split counts (-1: the kernel's own split heuristic).

    python perf/nvfp4-mm/split_sweep.py OUT.md [--kernels a,b] [--splits -1,8] [--tokens 1,16]
"""

import sys

import torch

from lowbit.nvfp4_mm.bench import _inputs, _with_kernel
from lowbit.testing.bench import rotation_count, time_cuda_interleaved, write_table
from lowbit.testing.shapes import dense_layers

TOKENS = [1, 16]
SPLITS = [2, 4, 8, 16]
KERNELS = ["small_m_16x128"]


def main(out: str, kernels=KERNELS, splits=SPLITS, tokens=TOKENS) -> int:
    dev = torch.device("cuda")
    g = torch.Generator().manual_seed(3)
    alpha = torch.ones(1, device=dev)
    rows = []
    for _, k, n in dense_layers(["Llama-3-8B", "Llama-3-70B"]):
        wbytes = n * k // 2 + n * k // 16
        for m in tokens:
            sets = [_inputs(m, n, k, dev, g) for _ in range(rotation_count(wbytes + m * k, dev))]
            outs = [torch.empty(m, n, dtype=torch.bfloat16, device=dev) for _ in sets]
            cands = {"heuristic": [(lambda s=s, o=o: _with_kernel(o, s, alpha, None)) for s, o in zip(sets, outs)]}
            for name in kernels:
                for sp in splits:
                    cands[f"{name} " + ("auto" if sp == -1 else f"s{sp}")] = [
                        (lambda s=s, o=o, nm=name, p=sp: _with_kernel(o, s, alpha, nm, p)) for s, o in zip(sets, outs)]
            us = time_cuda_interleaved(cands)
            row = {"shape": f"N={n} K={k}", "M": m, **{k_: round(v, 1) for k_, v in us.items()}}
            row["best"] = min(us, key=us.get)
            rows.append(row)
            print(row, flush=True)
            del sets, outs, cands
    text = f"# nvfp4-mm split-K sweep on {torch.cuda.get_device_name(dev)} (µs)\n\n" + write_table(rows)
    open(out, "w").write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    args = sys.argv[2:]

    def opt(name, default):
        return args[args.index(name) + 1].split(",") if name in args else default

    sys.exit(main(sys.argv[1], kernels=opt("--kernels", KERNELS), splits=[int(v) for v in opt("--splits", SPLITS)],
                  tokens=[int(v) for v in opt("--tokens", TOKENS)]))
