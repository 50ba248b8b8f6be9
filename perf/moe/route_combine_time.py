"""Times lowbit-moe's routing (`route`: get_cutlass_moe_mm_data) and weighted
combine (`combine`: moe_combine) alone, on MoE shapes and token counts, as
CUDA graphs with the two ops interleaved (lowbit.testing.bench), and writes
the output bits' CRC so two builds can be compared for identical results.

    python perf/moe/route_combine_time.py OUT.md [--models DeepSeek-R1,Qwen3-30B-A3B] [--tokens 1,16,4096]

Builds are compared by running this once per build (PYTHONPATH first entry:
the build's lowbit/moe), alternating, as perf/device scripts do.
"""
from __future__ import annotations

import sys
import zlib

import torch

from lowbit.moe import combine, route
from lowbit.testing.bench import time_cuda_interleaved
from lowbit.testing.shapes import MOE


def routing_inputs(tokens: int, experts: int, topk: int, dev, g: torch.Generator):
    ids = torch.stack([torch.randperm(experts, generator=g)[:topk] for _ in range(tokens)]).to(torch.int32)
    weights = torch.rand(tokens, topk, generator=g)
    return ids.to(dev), weights.to(dev)


def main(path: str, models: list[str], tokens: list[int]) -> int:
    dev = torch.device("cuda")
    g = torch.Generator().manual_seed(0)
    lines = [f"# lowbit-moe route / combine alone, {torch.cuda.get_device_name(dev)}", "",
             "| model | tokens | op | us | output crc32 |", "|---|---|---|---|---|"]
    for model in models:
        s = MOE[model]
        for t in tokens:
            ids, w = routing_inputs(t, s.experts, s.topk, dev, g)
            r = route(ids, s.experts, s.intermediate, s.hidden)
            c3 = torch.randn(t * s.topk, s.hidden, generator=g).to(dev, torch.bfloat16)
            times = time_cuda_interleaved({
                "route": [lambda: route(ids, s.experts, s.intermediate, s.hidden)],
                "combine": [lambda: combine(c3, r.output_permutation, w)],
            })
            out = combine(c3, r.output_permutation, w)
            crc = {"route": zlib.crc32(torch.cat([r.expert_offsets, r.input_permutation,
                                                  r.output_permutation]).cpu().numpy().tobytes()),
                   "combine": zlib.crc32(out.view(torch.int16).cpu().numpy().tobytes())}
            for op, us in times.items():
                lines.append(f"| {model} | {t} | {op} | {us:.2f} | {crc[op]:08x} |")
            print("\n".join(lines[-2:]), flush=True)
            with open(path, "w") as f:
                f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    def opt(name, default):
        return sys.argv[sys.argv.index(name) + 1].split(",") if name in sys.argv else default

    sys.exit(main(sys.argv[1], opt("--models", ["DeepSeek-R1", "Qwen3-30B-A3B", "Llama-4-Scout"]),
                  [int(x) for x in opt("--tokens", ["1", "4", "16", "64", "1024", "4096"])]))
