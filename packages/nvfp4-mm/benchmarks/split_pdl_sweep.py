"""Small-M split-K count x PDL on/off, timed interleaved (docs/perf-nvfp4-mm.md v4.2).

For each weight shape and M, the heuristic's launch and the given SM90 configs
(default: config 28, tile 0 of the small-M kernel) with forced split counts, each with and
without programmatic dependent launch (LOWBIT_NVFP4_MM_PDL).

    python benchmarks/split_pdl_sweep.py OUT.md [--configs 1,14] [--splits -1,8] [--pdl 1,0] [--tokens 1,16]

--configs: SM90 configs to compare (default: 28); split -1:
the heuristic's split count for that config.
"""

import sys

import torch

from lowbit.nvfp4_mm.bench import _inputs
from lowbit.testing.bench import rotation_count, time_cuda_interleaved, with_env, write_table

SHAPES = [(8192, 10240), (8192, 8192), (4096, 6144), (4096, 4096), (14336, 4096),
          (4096, 28672), (8192, 57344), (28672, 8192)]  # (K, N)
TOKENS = [1, 16]
SPLITS = [2, 4, 8, 16]
SMALL_M_TILE = 28  # the small-M kernel's tile 0 (BM 16 x BN 128), the heuristic's choice for M <= 16


def main(out: str, configs=(SMALL_M_TILE,), splits=SPLITS, pdls=("1", "0"), tokens=TOKENS) -> int:
    dev = torch.device("cuda")
    g = torch.Generator().manual_seed(3)
    alpha = torch.ones(1, device=dev)
    rows = []
    for k, n in SHAPES:
        wbytes = n * k // 2 + n * k // 16
        for m in tokens:
            sets = [_inputs(m, n, k, dev, g) for _ in range(rotation_count(wbytes + m * k, dev))]
            outs = [torch.empty(m, n, dtype=torch.bfloat16, device=dev) for _ in sets]
            cands = {}
            # (-1, -1): the heuristic's own config and split count; (cfg, -1):
            # that config with the heuristic's split count.
            for cfg, sp in [(-1, -1)] + [(c, p) for c in configs for p in splits]:
                for pdl in pdls:
                    tag = "heuristic" if cfg == -1 else f"cfg{cfg} " + ("auto" if sp == -1 else f"s{sp}")
                    cands[f"{tag} PDL={pdl}"] = [
                        with_env({"LOWBIT_NVFP4_MM_PDL": pdl},
                                 lambda s=s, o=o, c=cfg, p=sp: torch.ops.lowbit_nvfp4_mm.
                                 _cutlass_scaled_fp4_mm_ex(o, s[0], s[2], s[1], s[3], alpha, False, c, p))
                        for s, o in zip(sets, outs)]
            us = time_cuda_interleaved(cands)
            row = {"shape": f"N={n} K={k}", "M": m, **{k_: round(v, 1) for k_, v in us.items()}}
            row["best"] = min(us, key=us.get)
            rows.append(row)
            print(row, flush=True)
            del sets, outs, cands
    text = f"# nvfp4-mm split-K x PDL sweep on {torch.cuda.get_device_name(dev)} (µs)\n\n" + write_table(rows)
    open(out, "w").write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    args = sys.argv[2:]

    def opt(name, default):
        return args[args.index(name) + 1].split(",") if name in args else default

    sys.exit(main(sys.argv[1], configs=[int(c) for c in opt("--configs", [SMALL_M_TILE])],
                  splits=[int(v) for v in opt("--splits", SPLITS)], pdls=opt("--pdl", ["1", "0"]),
                  tokens=[int(v) for v in opt("--tokens", TOKENS)]))
