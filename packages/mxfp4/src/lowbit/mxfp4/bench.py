"""`lowbit bench` protocol for lowbit-mxfp4 (docs/SPEC-MOE.md §5.11 shapes,
lowbit.testing.shapes.MOE).

Quantization (mxfp4_experts_quant, silu_and_mul_mxfp4_experts_quant): logical
bandwidth (input read + codes and every scale byte written, region padding
included) against a device-to-device copy of the same byte count in the same
run; rows M = tokens · top-k routed uniformly at random over the experts.

Grouped GEMM (cutlass_mxfp4_group_mm) per (model, GEMM, tokens): lowbit,
bf16 torch._grouped_mm on bf16 weights, the NVFP4 grouped GEMM
(lowbit.nvfp4_mm.cutlass_fp4_group_mm, when installed) and the copy floor of
the touched experts' MXFP4 weight + scale bytes; timed interleaved (same
conditions). Every closure set rotates the routing (hence the touched
experts) until the weight bytes touched exceed 3x the L2 cache.
"""

from __future__ import annotations

from typing import Callable

import torch

from lowbit.cutlass_ext import round_up as _round_up
from lowbit.testing.experts import group_metadata, routed_counts
from lowbit.testing.shapes import MOE, canonical_model

PACKAGE = "lowbit-mxfp4"
DEFAULT_MODELS = ("gpt-oss-120b", "DeepSeek-R1")
GROUP_TOKENS = (1, 16, 64, 1024, 4096)
QUANT_TOKENS = (1, 64, 4096)
QUICK_TOKENS = (1, 1024)
NAMES = ("a", "b", "a_blockscale", "b_blockscales", "problem_sizes", "expert_offsets", "sf_offsets")


def _models(models) -> list[str]:
    out = []
    for name in models or DEFAULT_MODELS:
        model = canonical_model(name)
        if model not in MOE:
            raise ValueError(f"unknown MoE model {name!r}; known: {list(MOE)}")
        out.append(model)
    return out


def _offsets(counts: list[int], device):
    from . import expert_offsets

    off, sfo = expert_offsets(torch.tensor(counts))
    return off.to(device), sfo.to(device)


# ------------------------------------------------------------------ quantization
def _quant_case(device, model, silu, tokens, g):
    """(op name, shape, logical bytes, closures over rotating inputs)."""
    from lowbit.testing.bench import rotation_count

    from . import _ops, scale_rows_for

    cfg = MOE[model]
    k = cfg.intermediate if silu else cfg.hidden
    m, kp = tokens * cfg.topk, _round_up((cfg.intermediate if silu else cfg.hidden) // 32, 4)
    counts = routed_counts(tokens, cfg.experts, cfg.topk, g)
    off, sfo = _offsets(counts, device)
    nbytes = m * (2 * k if silu else k) * 2 + m * k // 2 + sum(_round_up(c, 128) for c in counts) * kp
    op = _ops.silu_and_mul_mxfp4_experts_quant if silu else _ops.mxfp4_experts_quant

    def make():
        x = torch.randn(m, 2 * k if silu else k, device=device, dtype=torch.bfloat16)
        out = torch.empty(m, k // 2, dtype=torch.uint8, device=device)
        sf = torch.empty(scale_rows_for(m, cfg.experts), kp, dtype=torch.uint8, device=device)
        return lambda: op(out, sf, x, off, sfo, cfg.experts)

    name = "silu_and_mul_mxfp4_experts_quant" if silu else "mxfp4_experts_quant"
    return name, f"K={k} E={cfg.experts}", nbytes, [make() for _ in range(rotation_count(nbytes, device))]


def _copy_closures(nbytes, device):
    from lowbit.testing.bench import rotation_count

    half = max(nbytes // 2, 16)
    bufs = [(torch.empty(half, dtype=torch.uint8, device=device).random_(),
             torch.empty(half, dtype=torch.uint8, device=device)) for _ in range(rotation_count(nbytes, device))]
    return [lambda s=s, d=d: d.copy_(s) for s, d in bufs], 2 * half


def _quant_rows(device, models, tokens, say) -> list[dict]:
    from lowbit.testing.bench import time_cuda_interleaved

    g = torch.Generator().manual_seed(0)
    rows = []
    for model in models:
        for silu in (False, True):
            for t in tokens:
                name, shape, nbytes, fns = _quant_case(device, model, silu, t, g)
                copies, cbytes = _copy_closures(nbytes, device)
                times = time_cuda_interleaved({"lowbit": fns, "copy floor": copies})
                for impl, b in (("lowbit", nbytes), ("copy floor", cbytes)):
                    rows.append({"package": PACKAGE, "op": name, "model": model, "shape": shape, "tokens": t,
                                 "M": t * MOE[model].topk, "impl": impl, "us": times[impl],
                                 "metric": b / times[impl] / 1e6, "metric_name": "TB/s"})
                say(f"{name} {model} T={t} ({nbytes / 2**20:.0f} MiB) lowbit={times['lowbit']:.1f} us "
                    f"copy={times['copy floor']:.1f} us")
                del fns, copies
                torch.cuda.empty_cache()
    return rows


# ------------------------------------------------------------------ grouped GEMM
def group_inputs(counts: list[int], n: int, k: int, device, g: torch.Generator, b=None, sb=None) -> dict:
    """cutlass_mxfp4_group_mm arguments made on the device: random codes and
    E8M0 bytes in [116, 128] (the weights of E experts are too large to build on
    the host); pass b / sb to share one weight set between routings."""
    E, kp, np_ = len(counts), _round_up(k // 32, 4), _round_up(n, 128)
    meta, rows = group_metadata(counts, n, k)
    dg = torch.Generator(device=device).manual_seed(int(torch.randint(0, 1 << 30, (1,), generator=g)))
    bytes_ = lambda lo, hi, *shape: torch.randint(lo, hi, shape, dtype=torch.uint8, device=device, generator=dg)  # noqa: E731
    return {
        "a": bytes_(0, 256, sum(counts), k // 2),
        "b": bytes_(0, 256, E, n, k // 2) if b is None else b,
        "a_blockscale": bytes_(116, 129, max(rows, 128), kp),
        "b_blockscales": bytes_(116, 129, E, np_, kp) if sb is None else sb,
        **{key: v.to(device) for key, v in meta.items()},
    }


def _routings(cfg, t, n, k, g, l2) -> list[list[int]]:
    """Routings of t tokens until the touched experts' weight bytes exceed 3x L2."""
    per_expert = n * k // 2 + n * k // 32
    out, touched = [], 0
    while touched < 3 * l2 and len(out) < 16:
        counts = routed_counts(t, cfg.experts, cfg.topk, g)
        out.append(counts)
        touched += per_expert * sum(1 for c in counts if c)
    return out


def _group_candidates(device, routings, n, k, g) -> dict[str, list[Callable]]:
    from . import cutlass_mxfp4_group_mm

    E = len(routings[0])
    first = group_inputs(routings[0], n, k, device, g)
    sets = [first] + [group_inputs(c, n, k, device, g, first["b"], first["b_blockscales"]) for c in routings[1:]]
    outs = [torch.empty(sum(c), n, dtype=torch.bfloat16, device=device) for c in routings]
    cands = {"lowbit": [lambda x=x, o=o: cutlass_mxfp4_group_mm(o, *[x[key] for key in NAMES])
                        for x, o in zip(sets, outs)]}
    if hasattr(torch, "_grouped_mm"):
        w16 = torch.randn(E, n, k, device=device, dtype=torch.bfloat16)
        a16 = [torch.randn(sum(c), k, device=device, dtype=torch.bfloat16) for c in routings]
        ends = [torch.tensor(c, device=device).cumsum(0).to(torch.int32) for c in routings]
        cands["torch._grouped_mm bf16"] = [lambda a=a, e=e: torch._grouped_mm(a, w16.transpose(-2, -1), offs=e)
                                           for a, e in zip(a16, ends)]
    cands.update(_nvfp4_candidates(device, routings, n, k, g))
    return cands


def _nvfp4_candidates(device, routings, n, k, g) -> dict[str, list[Callable]]:
    """lowbit's NVFP4 grouped GEMM on the same routings and shapes (one weight set)."""
    try:
        from lowbit.nvfp4_mm import cutlass_fp4_group_mm, group_kernel_names
        from lowbit.nvfp4_mm.bench import group_inputs as nvfp4_inputs
    except ImportError:
        return {}
    if not group_kernel_names(device):
        return {}
    first = nvfp4_inputs(routings[0], n, k, device, g)
    sets = [first]
    for c in routings[1:]:  # this package's metadata and codes; NVFP4 activation scales (Kp = K/16 rounded)
        x = group_inputs(c, n, k, device, g, first["b"], first["b_blockscales"])
        rows = x["a_blockscale"].shape[0]
        x["a_blockscale"] = torch.full((rows, first["a_blockscale"].shape[1]), 0x38, dtype=torch.uint8,
                                       device=device).view(torch.float8_e4m3fn)
        x["alphas"] = first["alphas"]
        sets.append(x)
    names = NAMES[:4] + ("alphas",) + NAMES[4:]
    outs = [torch.empty(sum(c), n, dtype=torch.bfloat16, device=device) for c in routings]
    return {"nvfp4 group mm (lowbit)": [lambda x=x, o=o: cutlass_fp4_group_mm(o, *[x[key] for key in names])
                                        for x, o in zip(sets, outs)]}


def _group_rows(device, models, tokens, say) -> list[dict]:
    from lowbit.testing.bench import copy_bandwidth, l2_bytes, time_cuda_interleaved

    g = torch.Generator().manual_seed(0)
    bw, l2 = copy_bandwidth(device=device), l2_bytes(device)
    rows = []
    for model in models:
        cfg = MOE[model]
        for gemm, (n, k) in (("gemm1", cfg.gemm1), ("gemm2", cfg.gemm2)):
            for t in tokens:
                routings = _routings(cfg, t, n, k, g, l2)
                times = time_cuda_interleaved(_group_candidates(device, routings, n, k, g))
                active = sum(1 for c in routings[0] if c)
                wbytes = active * (n * k // 2 + n * k // 32)
                times["copy floor"] = wbytes / bw * 1e6
                m = t * cfg.topk
                for impl, us in times.items():
                    rows.append({"package": PACKAGE, "op": "cutlass_mxfp4_group_mm", "model": model,
                                 "shape": f"{gemm} N={n} K={k}", "tokens": t, "M": m, "experts": active,
                                 "impl": impl, "us": float(us), "metric": 2.0 * m * n * k / us / 1e6,
                                 "metric_name": "TFLOP/s", "weight_tbps": wbytes / us / 1e6})
                say(f"{model} {gemm} T={t} experts={active} " + " ".join(f"{nm}={us:.1f}" for nm, us in times.items()))
                torch.cuda.empty_cache()
    return rows


# ------------------------------------------------------------------ CPU
def _cpu_rows(say) -> list[dict]:
    """Small CPU problems: the reference kernels' speed (not a target)."""
    from lowbit.testing.bench import time_cpu

    from . import cutlass_mxfp4_group_mm, expert_offsets, mxfp4_experts_quant

    g = torch.Generator().manual_seed(0)
    counts = routed_counts(64, 16, 4, g)
    off, sfo = expert_offsets(torch.tensor(counts))
    x = torch.randn(256, 2880, generator=g).bfloat16()
    us = time_cpu(lambda: mxfp4_experts_quant(x, off, sfo))
    rows = [{"package": PACKAGE, "op": "mxfp4_experts_quant", "shape": "K=2880 E=16", "M": 256, "impl": "lowbit",
             "us": us, "metric": x.numel() * 2 / us / 1e3, "metric_name": "GB/s"}]
    say(f"cpu mxfp4_experts_quant M=256 K=2880: {us:.0f} us")
    xg = group_inputs(counts, 256, 256, "cpu", g)
    out = torch.empty(256, 256, dtype=torch.bfloat16)
    us = time_cpu(lambda: cutlass_mxfp4_group_mm(out, *[xg[key] for key in NAMES]))
    rows.append({"package": PACKAGE, "op": "cutlass_mxfp4_group_mm", "shape": "N=256 K=256 E=16", "M": 256,
                 "impl": "lowbit", "us": us, "metric": 2.0 * 256 * 256 * 256 / us / 1e6, "metric_name": "TFLOP/s"})
    say(f"cpu cutlass_mxfp4_group_mm M=256 N=K=256: {us:.0f} us")
    return rows


def run(device, *, models=None, quick: bool = False, progress: Callable[[str], None] | None = None) -> list[dict]:
    """Long-format benchmark rows (docs/DEVELOPING.md protocol)."""
    from . import group_kernel_names

    device = torch.device(device)
    say = progress or (lambda s: None)
    if device.type != "cuda":
        return _cpu_rows(say)
    names = _models(models)
    with torch.cuda.device(device):
        rows = _quant_rows(device, names, QUICK_TOKENS if quick else QUANT_TOKENS, say)
        if group_kernel_names(device):
            rows += _group_rows(device, names, QUICK_TOKENS if quick else GROUP_TOKENS, say)
        else:
            say("cutlass_mxfp4_group_mm: no kernel for this GPU in this build; skipped")
    return rows
