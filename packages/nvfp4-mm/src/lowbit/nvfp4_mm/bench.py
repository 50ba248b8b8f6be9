"""`lowbit bench` protocol for nvfp4-mm.

Per (shape, M): lowbit's NVFP4 GEMM; bf16 cuBLAS with bf16 weights
(torch.mm); the emulation path a user would otherwise write (dequantize the
NVFP4 weight to bf16 with torch ops on every call, then torch.mm; activations
already bf16); fp8 cuBLASLt (torch._scaled_mm, tensor-wise scales); and the
memory floor (NVFP4 weight + scale bytes, activations and output, at the
measured copy bandwidth). Weight shapes [K, N] are docs/SPEC.md §4's
(lowbit.testing.shapes). The
implementations of one (shape, M) are timed interleaved, so their ratios do
not depend on clock or temperature drift between them.
"""

from __future__ import annotations

from typing import Callable

import torch

from lowbit.testing.experts import routed_counts

# The models benchmarked by default (lowbit.testing.shapes spelling).
DEFAULT_MODELS = ("Llama-3-8B", "Llama-3-70B")
QUICK_TOKENS = (1, 16, 128, 2048)


def _e2m1_table(device):
    from lowbit.testing.nvfp4 import E2M1_VALUES

    return torch.tensor(E2M1_VALUES, dtype=torch.bfloat16, device=device)


def emulate_dequant_bf16(b: torch.Tensor, sb: torch.Tensor, n: int, k: int, table) -> torch.Tensor:
    """What a user without an NVFP4 kernel writes: unpack nibbles, look up
    e2m1 values, un-swizzle the block scales, multiply, all with torch ops."""
    lo = table[(b & 0xF).int()]
    hi = table[(b >> 4).int()]
    vals = torch.stack([lo, hi], dim=-1).reshape(n, k // 16, 16)
    mp, kp = sb.shape
    sf = sb.view(torch.uint8).reshape(mp // 128, kp // 4, 32, 4, 4).permute(0, 3, 2, 1, 4)
    sf = sf.reshape(mp, kp)[:n, : k // 16].view(torch.float8_e4m3fn).to(torch.bfloat16)
    return (vals * sf.unsqueeze(-1)).reshape(n, k)


def _inputs(m, n, k, device, g):
    from lowbit.testing.nvfp4_gemm import random_operand

    a, sa = random_operand(m, k, device, g)
    b, sb = random_operand(n, k, device, g)
    return a, sa, b, sb


def _time(fns, est_us: float) -> float:
    from lowbit.testing.bench import time_cuda

    # Keep each timing near half a second whatever the problem size.
    reps = max(1, min(64, int(4000 / max(est_us, 1.0)) // len(fns)))
    iters = max(5, min(30, int(400000 / max(est_us * reps * len(fns), 1.0))))
    return time_cuda(fns, warmup=3, iters=iters, use_graph=True, replays_per_sample=reps)


# SM90 kernels timed beside the heuristic's choice (impl "lowbit <name>"),
# so a heuristic change can be judged on the same run: up to M = 16 the
# multistage tile the small-M kernel replaced; for 16 < M <= 512 (the wgmma
# kernel) the multistage and dequantize paths it replaced; above, both tiles
# of the dequantize + CUTLASS path (the heuristic picks one) and the largest
# wgmma tile.
SM90_ALTERNATIVES = {(1, 16): ["multistage_16x128"],
                     (17, 512): ["multistage_64x128", "dequant_cutlass_128x256"],
                     (513, 1 << 30): ["dequant_cutlass_128x256", "dequant_cutlass_128x128", "wgmma_128x256"]}


def _with_kernel(out, s, alpha, name, splits=-1):
    """One call of the private by-name op on an input set s = (a, sa, b, sb)."""
    torch.ops.lowbit_nvfp4_mm._cutlass_scaled_fp4_mm_with_kernel(out, s[0], s[2], s[1], s[3], alpha, None, False,
                                                                 name, splits)


def _lowbit_candidates(m, n, k, device, g, alternatives) -> tuple[dict, list]:
    """The op (heuristic) and the alternative kernels for this M on the same
    rotating inputs: name -> (closures, weight bytes per call); the tensors."""
    from lowbit.testing.bench import rotation_count

    wbytes = n * k // 2 + n * k // 16
    alpha = torch.ones(1, device=device)
    sets = [_inputs(m, n, k, device, g) for _ in range(rotation_count(wbytes + m * k, device))]
    outs = [torch.empty(m, n, dtype=torch.bfloat16, device=device) for _ in sets]
    op = torch.ops.lowbit_nvfp4_mm.cutlass_scaled_fp4_mm
    cands = {"lowbit": ([(lambda s=s, o=o: op(o, s[0], s[2], s[1], s[3], alpha)) for s, o in zip(sets, outs)],
                        wbytes)}
    for (lo, hi), names in (alternatives or {}).items():
        if lo <= m <= hi:
            for name in names:
                cands[f"lowbit {name}"] = ([(lambda s=s, o=o, nm=name: _with_kernel(o, s, alpha, nm))
                                            for s, o in zip(sets, outs)], wbytes)
    return cands, [sets, outs, alpha]


def _baseline_candidates(want, m, n, k, device, g, say) -> tuple[dict, list]:
    """cuBLAS bf16, the dequantize-then-mm emulation and fp8 cuBLASLt, as
    _lowbit_candidates (weight bytes None where not meaningful)."""
    from lowbit.testing.bench import rotation_count

    cands, keep = {}, []
    one = torch.ones((), device=device)
    nrot16 = rotation_count(2 * n * k + 2 * m * k, device)
    xs = [torch.randn(m, k, device=device, dtype=torch.bfloat16) for _ in range(nrot16)]
    keep.append(xs)
    if "torch.mm bf16" in want:
        ws = [torch.randn(n, k, device=device, dtype=torch.bfloat16) for _ in range(nrot16)]
        keep.append(ws)
        cands["torch.mm bf16"] = ([(lambda x=x, w=w: torch.mm(x, w.t())) for x, w in zip(xs, ws)], 2 * n * k)
    if "emulation (dequant+mm)" in want:
        table = _e2m1_table(device)
        bq = [_inputs(1, n, k, device, g)[2:] for _ in range(rotation_count(n * k, device, cap=4))]
        keep.append(bq)
        cands["emulation (dequant+mm)"] = (
            [(lambda x=x, q=q: torch.mm(x, emulate_dequant_bf16(q[0], q[1], n, k, table).t()))
             for x, q in zip(xs * len(bq), bq)], None)
    if "torch._scaled_mm fp8" in want:
        nrot8 = rotation_count(n * k + m * k, device)
        x8 = [torch.randn(m, k, device=device).to(torch.float8_e4m3fn) for _ in range(nrot8)]
        w8 = [torch.randn(n, k, device=device).to(torch.float8_e4m3fn) for _ in range(nrot8)]
        keep += [x8, w8]
        fns = [(lambda x=x, w=w: torch._scaled_mm(x, w.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16))
               for x, w in zip(x8, w8)]
        try:
            fns[0]()
            cands["torch._scaled_mm fp8"] = (fns, n * k)
        except RuntimeError as e:  # e.g. M not a multiple of 16 on some torch builds
            say(f"fp8 skipped at M={m}: {str(e).splitlines()[0]}")
    return cands, keep


def _run_cpu(row, g) -> None:
    from lowbit.testing.bench import time_cpu

    from . import scaled_fp4_mm

    for m, n, k in [(1, 256, 512), (64, 512, 512)]:
        a, sa, b, sb = _inputs(m, n, k, "cpu", g)
        alpha = torch.ones(1)
        us = time_cpu(lambda: scaled_fp4_mm(a, b, sa, sb, alpha))
        row("cutlass_scaled_fp4_mm", f"N={n} K={k}", m, "lowbit", us, 2 * m * n * k / us / 1e6, "TFLOP/s")
    from . import cutlass_fp4_group_mm

    counts, n, k = [3, 0, 9, 4], 256, 512
    x = group_inputs(counts, n, k, "cpu", g)
    out = torch.empty(sum(counts), n, dtype=torch.bfloat16)
    args = [x[key] for key in ("a", "b", "a_blockscale", "b_blockscales", "alphas", "problem_sizes",
                               "expert_offsets", "sf_offsets")]
    us = time_cpu(lambda: cutlass_fp4_group_mm(out, *args))
    m = sum(counts)
    row("cutlass_fp4_group_mm", f"E={len(counts)} N={n} K={k}", m, "lowbit", us, 2 * m * n * k / us / 1e6, "TFLOP/s")


def run(device, *, models=None, quick: bool = False, progress: Callable[[str], None] | None = None,
        impls=None, tokens=None, alternatives: dict | None = None) -> list[dict]:
    from lowbit.testing.bench import copy_bandwidth, time_cuda_after_kernel, time_cuda_interleaved
    from lowbit.testing.shapes import TOKENS, dense_layers

    device = torch.device(device)
    rows: list[dict] = []
    g = torch.Generator().manual_seed(0)
    say = progress or (lambda s: None)

    def row(op, shape, m, impl, us, metric, name, **extra):
        r = {"package": "lowbit-nvfp4-mm", "op": op, "shape": shape, "M": m, "impl": impl,
             "us": float(us), "metric": float(metric), "metric_name": name}
        r.update(extra)
        rows.append(r)

    if device.type != "cuda":
        _run_cpu(row, g)
        return rows

    from lowbit.testing.shapes import MOE, canonical_model

    names = [canonical_model(m) or m for m in models] if models else None
    group_models = [m for m in names if m in MOE] if names else list(GROUP_MODELS)
    models = [m for m in names if m not in MOE] if names else None
    if group_models:  # the grouped GEMM (cutlass_fp4_group_mm) for the MoE models asked for
        rows += run_group(device, models=group_models, tokens=GROUP_QUICK_TOKENS if quick else None,
                          progress=progress)
    if names and not models:
        return rows
    bw = copy_bandwidth(device=device)
    say(f"copy bandwidth {bw / 1e12:.2f} TB/s")
    want = impls or ["lowbit", "torch.mm bf16", "emulation (dequant+mm)", "torch._scaled_mm fp8", "copy floor"]
    for model, k, n in dense_layers(models or DEFAULT_MODELS):
        shape = f"N={n} K={k}"
        wbytes = n * k // 2 + n * k // 16
        for m in tokens or (QUICK_TOKENS if quick else TOKENS):
            if "copy floor" in want:
                floor_bytes = wbytes + m * k * 9 // 16 + 2 * m * n
                us = floor_bytes / bw * 1e6
                row("cutlass_scaled_fp4_mm", shape, m, "copy floor", us, floor_bytes / us / 1e6, "TB/s",
                    weight_bytes=wbytes, model=model)
            # Every implementation of this (shape, M) is timed interleaved
            # (lowbit.testing.bench.time_cuda_interleaved): clock and
            # temperature drift fall on all of them alike, so the ratios
            # hold even where absolute times move between runs.
            cands, keep = _baseline_candidates(want, m, n, k, device, g, say)
            if "lowbit" in want:
                mine, more = _lowbit_candidates(m, n, k, device, g, alternatives)
                cands.update(mine)
                keep += more
            times = time_cuda_interleaved({name: fns for name, (fns, _) in cands.items()})
            for name, us in times.items():
                wb = cands[name][1]
                tbps = {"weight_tbps": wb / us / 1e6} if wb else {}
                row("cutlass_scaled_fp4_mm", shape, m, name, us, 2.0 * m * n * k / us / 1e6, "TFLOP/s", **tbps,
                    model=model)
            # The same call after an unrelated kernel (no overlap with a
            # previous call of its own, operands not in L2), lowbit and bf16.
            after = {nm: cands[nm][0] for nm in ("lowbit", "torch.mm bf16") if nm in cands}
            for name, us in time_cuda_after_kernel(after, device=device).items():
                row("cutlass_scaled_fp4_mm", shape, m, name, us, 2.0 * m * n * k / us / 1e6,
                    "TFLOP/s", model=model)
            say(f"{model} {shape} M={m} " + " ".join(f"{nm}={us:.1f}" for nm, us in times.items()))
            del cands, keep, times
            torch.cuda.empty_cache()
    return rows


# ------------------------------------------------------------ grouped (MoE)
# docs/SPEC-MOE.md §5.11's token counts for two models, both GEMMs (the whole
# grid, baselines included, runs in well under 3 minutes on an H200).
GROUP_MODELS = ("DeepSeek-R1", "Qwen3-30B-A3B")
GROUP_TOKENS = (1, 4, 16, 64, 256, 1024, 4096, 8192)
GROUP_QUICK_TOKENS = (1, 1024)
NAIVE_MAX_TOKENS = 16  # the dequantize + grouped mm baseline (slow) only up to here


def group_inputs(counts: list[int], n: int, k: int, device, g: torch.Generator) -> dict:
    """cutlass_fp4_group_mm arguments made on the device (random codes,
    random finite scale bytes in [2^-6, 2^6]): the weights of E experts are
    too large to build on the host."""
    from lowbit.testing.experts import group_metadata
    from lowbit.testing.nvfp4 import round_up

    E, kp, np_ = len(counts), round_up(k // 16, 4), round_up(n, 128)
    meta, rows = group_metadata(counts, n, k)
    dg = torch.Generator(device=device).manual_seed(int(torch.randint(0, 1 << 30, (1,), generator=g)))

    def scales(*shape):
        return torch.randint(0x08, 0x70, shape, dtype=torch.uint8, device=device, generator=dg).view(
            torch.float8_e4m3fn)

    return {
        "a": torch.randint(0, 256, (sum(counts), k // 2), dtype=torch.uint8, device=device, generator=dg),
        "b": torch.randint(0, 256, (E, n, k // 2), dtype=torch.uint8, device=device, generator=dg),
        "a_blockscale": scales(max(rows, 128), kp),
        "b_blockscales": scales(E, np_, kp),
        "alphas": torch.ones(E, device=device),
        **{key: v.to(device) for key, v in meta.items()},
    }


def _scaled_grouped_mm_supported(device) -> bool:
    """torch._scaled_grouped_mm (fp8 e4m3, rowwise fp32 scales) exists in this
    torch and has a CUDA kernel for this device: torch builds it for SM90
    (H100/H200) and SM100 only."""
    return hasattr(torch, "_scaled_grouped_mm") and torch.cuda.get_device_capability(device)[0] in (9, 10)


def _group_fp8(a16, w16, ends, device, say) -> dict:
    """fp8 grouped GEMM baseline: torch._scaled_grouped_mm(A [m, k] fp8 row-major,
    B [E, k, n] fp8 column-major, scale_a [m] fp32 (per row), scale_b [E, n]
    fp32 (per expert and column), offs = cumulative row ends int32 [E],
    out_dtype=bf16) -- the torch 2.11 signature."""
    if not _scaled_grouped_mm_supported(device):
        return {}
    fp8 = torch.float8_e4m3fn
    a8, w8 = a16.to(fp8), w16.to(fp8)
    sa = torch.rand(a8.shape[0], device=device) + 0.5
    sb = torch.rand(w8.shape[0], w8.shape[1], device=device) + 0.5

    def fn():
        return torch._scaled_grouped_mm(a8, w8.transpose(-2, -1), sa, sb, offs=ends, out_dtype=torch.bfloat16)

    try:
        fn()
    except RuntimeError as e:  # e.g. a shape this torch's fp8 grouped kernel rejects
        say(f"torch._scaled_grouped_mm skipped: {str(e).splitlines()[0]}")
        return {}
    return {"torch._scaled_grouped_mm fp8": [fn]}


def _group_baselines(x: dict, counts: list[int], n: int, k: int, tokens: int, device, say) -> dict:
    """bf16 torch._grouped_mm and fp8 torch._scaled_grouped_mm (rowwise) where
    this torch and device have them, and the naive path (dequantize the touched
    experts to bf16, then the same grouped mm)."""
    cands = {}
    if not hasattr(torch, "_grouped_mm"):
        return cands
    E, m = len(counts), sum(counts)
    ends = torch.tensor(counts, device=device).cumsum(0).to(torch.int32)
    a16 = torch.randn(m, k, device=device, dtype=torch.bfloat16)
    w16 = torch.randn(E, n, k, device=device, dtype=torch.bfloat16)
    fn = lambda: torch._grouped_mm(a16, w16.transpose(-2, -1), offs=ends)  # noqa: E731
    try:
        fn()
        cands["torch._grouped_mm bf16"] = [fn]
    except RuntimeError:
        return cands
    cands.update(_group_fp8(a16, w16, ends, device, say))
    if tokens <= NAIVE_MAX_TOKENS:
        table = _e2m1_table(device)
        touched = [e for e, c in enumerate(counts) if c]
        ends_t = torch.tensor([counts[e] for e in touched], device=device).cumsum(0).to(torch.int32)

        def naive():
            w = torch.stack([emulate_dequant_bf16(x["b"][e], x["b_blockscales"][e], n, k, table) for e in touched])
            return torch._grouped_mm(a16, w.transpose(-2, -1), offs=ends_t)

        cands["naive (dequant+grouped mm)"] = [naive]
    return cands


def run_group(device, *, models=None, tokens=None, progress: Callable[[str], None] | None = None) -> list[dict]:
    """One row per (model, GEMM, tokens, impl): lowbit's grouped GEMM, the
    baselines and the copy floor of the touched experts' weight bytes."""
    from lowbit.testing.bench import copy_bandwidth, time_cuda_interleaved
    from lowbit.testing.shapes import MOE

    from . import cutlass_fp4_group_mm

    device = torch.device(device)
    say = progress or (lambda s: None)
    g = torch.Generator().manual_seed(0)
    bw = copy_bandwidth(device=device)
    rows = []
    names = ("a", "b", "a_blockscale", "b_blockscales", "alphas", "problem_sizes", "expert_offsets", "sf_offsets")
    for model in models or GROUP_MODELS:
        cfg = MOE[model]
        for gemm, (n, k) in (("gemm1", cfg.gemm1), ("gemm2", cfg.gemm2)):
            for t in tokens or GROUP_TOKENS:
                counts = routed_counts(t, cfg.experts, cfg.topk, g)
                x = group_inputs(counts, n, k, device, g)
                out = torch.empty(sum(counts), n, dtype=torch.bfloat16, device=device)
                args = [x[key] for key in names]
                cands = {"lowbit": [lambda: cutlass_fp4_group_mm(out, *args)]}
                cands.update(_group_baselines(x, counts, n, k, t, device, say))
                times = time_cuda_interleaved(cands)
                active = sum(1 for c in counts if c)
                wbytes = active * (n * k // 2 + n * k // 16)
                times["copy floor"] = wbytes / bw * 1e6
                m = sum(counts)
                for impl, us in times.items():
                    rows.append({"package": "lowbit-nvfp4-mm", "op": "cutlass_fp4_group_mm", "model": model,
                                 "shape": f"{gemm} N={n} K={k}", "tokens": t, "M": m, "experts": active,
                                 "impl": impl, "us": float(us), "metric": 2.0 * m * n * k / us / 1e6,
                                 "metric_name": "TFLOP/s", "weight_tbps": wbytes / us / 1e6})
                say(f"{model} {gemm} T={t} experts={active} " + " ".join(f"{nm}={us:.1f}" for nm, us in times.items()))
                del x, out, args, cands
                torch.cuda.empty_cache()
    return rows
