"""Benchmark lowbit-nvfp4-mm and write the committed results.

  python packages/nvfp4-mm/benchmarks/run.py [--quick] [--models Llama-3-8B,Llama-3-70B] [--out DIR]
  python packages/nvfp4-mm/benchmarks/run.py --group [--models DeepSeek-R1,Qwen3-30B-A3B] [--tokens 1,16,...]

Tuning sweeps (every named kernel, split counts) live in perf/nvfp4-mm/.

Writes DIR/nvfp4_mm_<gpu>.{md,json,png} (default DIR: benchmarks/results);
with --group the grouped GEMM (cutlass_fp4_group_mm, docs/SPEC-MOE.md §5.11
shapes) instead, to DIR/nvfp4_mm_group_<gpu>.{md,json,png}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

import lowbit.nvfp4_mm as mm
from lowbit.testing.bench import AFTER_KERNEL, copy_bandwidth, write_table


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name).strip("_").lower()


def summarize(rows: list[dict], bw: float) -> list[dict]:
    """One line per (shape, M): time of each impl and lowbit's ratios."""
    by = {}
    for r in rows:
        by.setdefault((r.get("model", ""), r["shape"], r["M"]), {})[r["impl"]] = r
    out = []
    for (model, shape, m), d in by.items():
        lb = d.get("lowbit")
        if lb is None:
            continue
        line = {"model": model, "shape": shape, "M": m, "lowbit us": lb["us"]}
        for name, key in (("torch.mm bf16", "bf16 us"), ("emulation (dequant+mm)", "emul us"),
                          ("torch._scaled_mm fp8", "fp8 us"), ("copy floor", "floor us")):
            if name in d:
                line[key] = d[name]["us"]
        line["TFLOP/s"] = lb["metric"]
        line["weight TB/s"] = lb.get("weight_tbps", 0.0)
        line["% copy bw"] = 100 * lb.get("weight_tbps", 0.0) * 1e12 / bw
        if "bf16 us" in line:
            line["x bf16"] = line["bf16 us"] / lb["us"]
        if "emul us" in line:
            line["x emul"] = line["emul us"] / lb["us"]
        lb_after, bf16_after = "lowbit" + AFTER_KERNEL, "torch.mm bf16" + AFTER_KERNEL
        if lb_after in d and bf16_after in d:  # each after an unrelated kernel instead of back to back
            line["x bf16" + AFTER_KERNEL] = d[bf16_after]["us"] / d[lb_after]["us"]
        out.append(line)
    return out


def plot(summary: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shapes = sorted({(s["model"], s["shape"]) for s in summary})
    cols = 4
    rows = (len(shapes) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax, (model, shape) in zip(axes.flat, shapes):
        pts = sorted((s for s in summary if (s["model"], s["shape"]) == (model, shape)), key=lambda s: s["M"])
        ms = [p["M"] for p in pts]
        for key, label in (("lowbit us", "lowbit nvfp4"), ("bf16 us", "cuBLAS bf16"),
                           ("emul us", "emulation"), ("fp8 us", "cuBLASLt fp8"), ("floor us", "memory floor")):
            if all(key in p for p in pts):
                ax.plot(ms, [p[key] for p in pts], marker="o", label=label,
                        linestyle="--" if key == "floor us" else "-")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(f"{model} {shape}", fontsize=9)
        ax.set_xlabel("M (tokens)")
        ax.set_ylabel("us")
        ax.grid(True, which="both", alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    for ax in list(axes.flat)[len(shapes):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_outputs(rows, bw, meta, name, stem):
    summary = summarize(rows, bw)
    Path(f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows, "summary": summary}, indent=1))
    md = [f"# nvfp4-mm benchmark on {name}", "",
          f"torch {meta.get('torch', torch.__version__)}; measured copy bandwidth {bw / 1e12:.2f} TB/s (read+write); "
          f"times are medians of CUDA-graph replays over rotating inputs, all implementations of one "
          f"(shape, M) timed interleaved in rotating order (lowbit.testing.bench.time_cuda_interleaved).", "",
          "`x bf16` / `x emul`: speed-up of lowbit over cuBLAS bf16 (bf16 weights) and over the "
          "dequantize-then-mm emulation, calls back to back; `x bf16 after a kernel`: the same ratio with "
          "each call following an unrelated kernel that flushes L2 (lowbit.testing.bench.time_cuda_after_kernel); `weight TB/s`: NVFP4 weight+scale bytes / time; "
          "`% copy bw`: that over the measured copy bandwidth.", "",
          f"Command: `{meta.get('command', '')}`", "",
          write_table(summary)]
    Path(f"{stem}.md").write_text("\n".join(md))
    if name != "cpu":
        plot(summary, Path(f"{stem}.png"), f"nvfp4-mm on {name}")
    print("\n".join(md))


def _alternatives(spec: str | None, dev: torch.device):
    """SM90 kernels timed beside the heuristic: 'lo-hi:name1+name2,...'."""
    if dev.type != "cuda" or torch.cuda.get_device_capability(dev)[0] != 9:
        return None
    if spec is None:
        return mm.bench.SM90_ALTERNATIVES
    alts = {}
    for part in filter(None, spec.split(",")):
        rng, names = part.split(":")
        lo, hi = (int(x) for x in rng.split("-"))
        alts[(lo, hi)] = names.split("+")
    return alts


def group_summary(rows: list[dict]) -> list[dict]:
    """One line per (model, GEMM, tokens): lowbit's time and its ratios."""
    by = {}
    for r in rows:
        by.setdefault((r["model"], r["shape"], r["tokens"]), {})[r["impl"]] = r
    out = []
    for (model, shape, t), d in by.items():
        lb = d["lowbit"]
        line = {"model": model, "shape": shape, "tokens": t, "M": lb["M"], "experts": lb["experts"],
                "lowbit us": lb["us"]}
        for impl, key in (("torch._grouped_mm bf16", "bf16 us"), ("torch._scaled_grouped_mm fp8", "fp8 us"),
                          ("naive (dequant+grouped mm)", "naive us"), ("copy floor", "floor us")):
            if impl in d:
                line[key] = d[impl]["us"]
        line["TFLOP/s"] = lb["metric"]
        line["% copy bw"] = 100 * d["copy floor"]["us"] / lb["us"] if "copy floor" in d else 0.0
        for key, ratio in (("bf16 us", "x bf16"), ("fp8 us", "x fp8")):
            if key in line:
                line[ratio] = line[key] / lb["us"]
        out.append(line)
    return out


def plot_group(summary: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({(s["model"], s["shape"]) for s in summary})
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4), squeeze=False)
    for ax, (model, shape) in zip(axes.flat, keys):
        pts = sorted((s for s in summary if (s["model"], s["shape"]) == (model, shape)), key=lambda s: s["tokens"])
        for key, label in (("lowbit us", "lowbit nvfp4"), ("bf16 us", "torch._grouped_mm bf16"),
                           ("fp8 us", "torch._scaled_grouped_mm fp8"), ("floor us", "copy floor (touched weights)")):
            xs = [p["tokens"] for p in pts if key in p]
            if xs:
                ax.plot(xs, [p[key] for p in pts if key in p], marker="o", label=label,
                        linestyle="--" if key == "floor us" else "-")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(f"{model} {shape}", fontsize=9)
        ax.set_xlabel("tokens")
        ax.set_ylabel("us")
        ax.grid(True, which="both", alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def run_group(args, dev, name, out) -> int:
    if dev.type != "cuda":
        print("--group needs a GPU")
        return 1
    t0 = time.time()
    models = args.models.split(",") if args.models else None
    tokens = [int(t) for t in args.tokens.split(",")] if args.tokens else None
    rows = mm.bench.run_group(dev, models=models, tokens=tokens, progress=lambda s: print(s, flush=True))
    summary = group_summary(rows)
    bw = copy_bandwidth(device=dev)
    meta = {"device": name, "torch": torch.__version__, "copy_bandwidth_TBps": bw / 1e12, "build": mm.build_info(),
            "seconds": time.time() - t0,
            "command": "python packages/nvfp4-mm/benchmarks/run.py " + " ".join(sys.argv[1:])}
    stem = out / f"nvfp4_mm_group_{_slug(name)}"
    Path(f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows, "summary": summary}, indent=1))
    md = [f"# cutlass_fp4_group_mm benchmark on {name}", "",
          f"torch {torch.__version__}; copy bandwidth {bw / 1e12:.2f} TB/s. Uniform random top-k routing "
          "(docs/SPEC-MOE.md §5.11 (a)), bf16 output, M = tokens x top-k rows; `experts`: experts with rows; "
          "`copy floor`: the touched experts' NVFP4 weight + scale bytes at the copy bandwidth; `% copy bw`: "
          "floor / lowbit; `x bf16` / `x fp8`: speed-up over torch._grouped_mm with bf16 weights and over "
          "torch._scaled_grouped_mm with fp8 e4m3 activations and weights (rowwise fp32 scales, bf16 out; "
          "SM90/SM100 only); the naive path "
          f"(dequantize the touched experts to bf16 with torch ops, then grouped mm) up to "
          f"{mm.bench.NAIVE_MAX_TOKENS} tokens. Medians of CUDA-graph replays, implementations interleaved.", "",
          f"Command: `{meta['command']}`", "", write_table(summary)]
    Path(f"{stem}.md").write_text("\n".join(md))
    plot_group(summary, Path(f"{stem}.png"), f"cutlass_fp4_group_mm on {name}")
    print("\n".join(md))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--group", action="store_true", help="the grouped GEMM grid instead of the dense one")
    ap.add_argument("--models", default=None, help="comma-separated (lowbit.testing.shapes names)")
    ap.add_argument("--tokens", default=None, help="comma-separated M values (default: all)")
    ap.add_argument("--impls", default=None, help="comma-separated subset of the timed implementations")
    ap.add_argument("--alternatives", default=None,
                    help="SM90 kernels timed beside the heuristic: 'lo-hi:name1+name2,...' "
                         "(default: bench.SM90_ALTERNATIVES)")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    if args.group:
        return run_group(args, dev, name, out)
    stem = out / f"nvfp4_mm_{_slug(name)}"
    say = lambda s: print(s, flush=True)  # noqa: E731
    t0 = time.time()
    models = args.models.split(",") if args.models else list(mm.bench.DEFAULT_MODELS)
    alts = _alternatives(args.alternatives, dev)
    tokens = [int(t) for t in args.tokens.split(",")] if args.tokens else None
    impls = args.impls.split(",") if args.impls else None
    bw = copy_bandwidth(device=dev) if dev.type == "cuda" else 1.0
    rows = []
    for model in models:  # outputs rewritten after each model
        rows += mm.bench.run(dev, models=[model], quick=args.quick, progress=say, alternatives=alts,
                             tokens=tokens, impls=impls)
        meta = {"device": name, "torch": torch.__version__, "copy_bandwidth_TBps": bw / 1e12,
                "build": mm.build_info(), "seconds": time.time() - t0,
                "command": "python packages/nvfp4-mm/benchmarks/run.py " + " ".join(sys.argv[1:])}
        write_outputs(rows, bw, meta, name, stem)
        if dev.type != "cuda":
            break  # the CPU run has one small set of shapes
    return 0


if __name__ == "__main__":
    sys.exit(main())
