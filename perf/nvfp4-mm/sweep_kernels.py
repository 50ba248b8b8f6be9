"""Time named SM90 kernels (the private by-name op) and forced split counts
beside the heuristic, interleaved, to tune the built-in heuristic (NOTES.md).

    python perf/nvfp4-mm/sweep_kernels.py OUT.md [--models Llama-3-8B,Llama-3-70B]
        [--kernels small_m_16x128,wgmma_128x128:2,...] [--splits -1,2,4,8,16] [--tokens 1,16] [--bf16]

A kernel given as name:S runs with S splits only (instead of every --splits value).

Defaults: every kernel of the device, the kernel's own split count (-1), M = 1, 16,
64, 128, 512, 2048; the Llama-3-8B/70B layers.
"""

import sys

import torch

import lowbit.nvfp4_mm as mm
from lowbit.nvfp4_mm.bench import _inputs, _with_kernel
from lowbit.testing.bench import rotation_count, time_cuda_interleaved, write_table
from lowbit.testing.shapes import dense_layers

MODELS = ["Llama-3-8B", "Llama-3-70B"]
TOKENS = [1, 16, 64, 128, 512, 2048]


def main(out: str, models=MODELS, kernels=None, splits=(-1,), tokens=TOKENS, bf16=False) -> int:
    dev = torch.device("cuda")
    g = torch.Generator().manual_seed(3)
    alpha = torch.ones(1, device=dev)
    kernels = kernels or mm.kernel_names(dev)
    rows = []
    for _, k, n in dense_layers(models):
        wbytes = n * k // 2 + n * k // 16
        for m in tokens:
            sets = [_inputs(m, n, k, dev, g) for _ in range(rotation_count(wbytes + m * k, dev))]
            outs = [torch.empty(m, n, dtype=torch.bfloat16, device=dev) for _ in sets]
            cands = {"heuristic": [(lambda s=s, o=o: _with_kernel(o, s, alpha, None)) for s, o in zip(sets, outs)]}
            if bf16:  # cuBLAS on bf16 weights, rotated past L2 as well
                ws = [torch.randn(n, k, dtype=torch.bfloat16, device=dev)
                      for _ in range(rotation_count(2 * n * k + 2 * m * k, dev))]
                x = torch.randn(m, k, dtype=torch.bfloat16, device=dev)
                cands["bf16"] = [(lambda w=w: torch.mm(x, w.t())) for w in ws]
            for spec in kernels:
                name, _, forced = spec.partition(":")
                for sp in ([int(forced)] if forced else splits):
                    cands[name + ("" if sp == -1 else f" s{sp}")] = [
                        (lambda s=s, o=o, nm=name, p=sp: _with_kernel(o, s, alpha, nm, p)) for s, o in zip(sets, outs)]
            us = time_cuda_interleaved(cands)
            row = {"shape": f"N={n} K={k}", "M": m, **{k_: round(v, 1) for k_, v in us.items()}}
            row["best"] = min(us, key=us.get)
            rows.append(row)
            print(row, flush=True)
            del sets, outs, cands
            ws = None
    text = f"# nvfp4-mm SM90 kernel sweep on {torch.cuda.get_device_name(dev)} (µs)\n\n" + write_table(rows)
    open(out, "w").write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    args = sys.argv[2:]

    def opt(name, default):
        return args[args.index(name) + 1].split(",") if name in args else default

    sys.exit(main(sys.argv[1], models=opt("--models", MODELS), kernels=opt("--kernels", None),
                  splits=[int(v) for v in opt("--splits", ["-1"])], tokens=[int(v) for v in opt("--tokens", TOKENS)], bf16="--bf16" in args))
