"""Benchmark the whole MoE forward (NVFP4, W4A8, MXFP4 vs a bf16 torch MoE)
and write results/<device>.{md,json,png}; the per-stage timings go to the log.

    python packages/moe/benchmarks/run.py [--device cuda] [--quick] [--out DIR]
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from lowbit.moe.bench_forward import BF16, CALIBRATION_TOKENS, FORMATS, impl_name, run_forward
from lowbit.testing.bench import bench_main, write_table

NOTE = (f"Whole MoE layer forward (routing on the device, quantization, both grouped GEMMs, "
        f"SiLU-and-mul, weighted combine), bf16 activations, uniform random top-k routing; "
        f"on a GPU each implementation is one CUDA graph, medians of interleaved replays "
        f"(lowbit.testing.bench.time_cuda_interleaved; CPU: median wall time). `{BF16}`: lowbit's routing + "
        f"torch._grouped_mm + torch SiLU-and-mul on the NVFP4 experts dequantized to bf16. "
        f"`x bf16`: speed-up over it. `experts`: experts with rows. Error: relative Frobenius "
        f"error at {CALIBRATION_TOKENS} tokens against the bf16 MoE on the original (unquantized) "
        f"experts.\n\n")


def wide_table(rows: list[dict]) -> list[dict]:
    """One line per (model, tokens): bf16 us, then each format's us and speed-up."""
    by: dict = {}
    for r in rows:
        if r["op"] == "moe_forward":
            by.setdefault((r["model"], r["M"]), {})[r["impl"]] = r
    impls = [f for f in FORMATS if any(impl_name(f) in d for d in by.values())]
    out = []
    for (model, m), d in by.items():
        line = {"model": model, "tokens": m, "experts": d[BF16]["experts"],
                "bf16 us": d[BF16]["us"]}
        for f in impls:
            r = d.get(impl_name(f))
            line[f"{f} us"] = r["us"] if r else ""
            line[f"{f} x bf16"] = r["metric"] if r else ""
        out.append(line)
    return out


def error_lines(rows: list[dict]) -> str:
    seen: dict = {}
    for r in rows:
        if r["op"] == "moe_forward":
            seen.setdefault(r["model"], {})[r["impl"]] = r["rel_err"]
    return "".join(f"- {model}: " + ", ".join(f"{i} {e:.3f}" for i, e in errs.items()) + "\n"
                   for model, errs in seen.items())


def stage_table(rows: list[dict]) -> str:
    st = [{"model": r["model"], "tokens": r["M"], "stage": r["impl"], "us": r["us"],
           "share": r["metric"]} for r in rows if r["op"] == "moe_forward stage"]
    return write_table(st) if st else ""


def plot(rows: list[dict], path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fwd = [r for r in rows if r["op"] == "moe_forward" and r["impl"] != BF16]
    models = list(dict.fromkeys(r["model"] for r in fwd))
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.8), squeeze=False)
    for ax, model in zip(axes[0], models):
        for fmt in FORMATS:
            pts = sorted((r["M"], r["metric"]) for r in fwd if r["model"] == model and
                         r["impl"] == impl_name(fmt))
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=fmt)
        ax.axhline(1.0, color="gray", linewidth=0.8, linestyle="--")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("tokens")
        ax.set_ylabel("speed-up over bf16 MoE")
        ax.set_title(model, fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def run(device, *, quick=False, progress=None):
    tokens = ((1, 64, 1024) if device.type == "cuda" else (1,)) if quick else None
    return run_forward(device, tokens=tokens, stages=True, progress=progress)


def main() -> None:
    rows, dev, out, header, tag = bench_main(run, "lowbit-moe: MoE layer forward",
                                             Path(__file__).parent / "results")
    torch_note = f"torch {torch.__version__}. "
    table = (header + torch_note + NOTE + write_table(wide_table(rows)) +
             "\nRelative error vs the bf16 MoE on the original experts:\n\n" + error_lines(rows) +
             "\nCommand: `python packages/moe/benchmarks/run.py`\n")
    (out / f"{tag}.json").write_text(json.dumps(rows, indent=1))
    (out / f"{tag}.md").write_text(table)
    print(table)
    print("\nPer-stage timings (each stage alone):\n\n" + stage_table(rows))
    plot(rows, out / f"{tag}.png")


if __name__ == "__main__":
    main()
