"""The whole MoE layer forward (lowbit.moe.bench_forward: every format beside the
bf16 torch MoE, CUDA graphs, interleaved) on a few models and token counts,
for A/B runs of two builds (run once per build, alternating; PYTHONPATH's
first entries select the build).

    python perf/moe/forward_time.py OUT.md [--models Qwen3-30B-A3B,Llama-4-Scout] [--tokens 1,4,16]
"""
from __future__ import annotations

import sys

import torch

from lowbit.moe.bench_forward import run_forward


def main(path: str, models: list[str], tokens: list[int]) -> int:
    rows = run_forward(torch.device("cuda"), models=models, tokens=tokens, stages=False,
                       progress=lambda s: print(s, file=sys.stderr, flush=True))
    lines = [f"# MoE forward, {torch.cuda.get_device_name()}", "", "| model | tokens | impl | us |", "|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['M']} | {r['impl']} | {r['us']:.1f} |" for r in rows if r["op"] == "moe_forward"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    def opt(name, default):
        return sys.argv[sys.argv.index(name) + 1].split(",") if name in sys.argv else default

    sys.exit(main(sys.argv[1], opt("--models", ["Qwen3-30B-A3B", "Llama-4-Scout"]),
                  [int(x) for x in opt("--tokens", ["1", "4", "16"])]))
