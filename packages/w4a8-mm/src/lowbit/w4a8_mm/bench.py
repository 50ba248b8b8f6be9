"""`lowbit bench` protocol: cutlass_w4a8_mm against bf16 cuBLAS (torch.mm), fp8
cuBLASLt rowwise (torch._scaled_mm) and the memory floor (int4 weights +
packed scales over the measured copy bandwidth), on SPEC §4 shapes; and
cutlass_w4a8_moe_mm on the MoE models of docs/SPEC-MOE.md §5.11 against fp8
grouped (torch._scaled_grouped_mm rowwise), bf16 grouped (torch._grouped_mm)
and a copy of the weight bytes the call touches (lowbit.testing.shapes).

Rows are long-format dicts (docs/DEVELOPING.md). metric: weight-streaming
TB/s for M <= 64 (bytes of that implementation's weight format / time),
TFLOP/s above.
"""

from __future__ import annotations

import torch

from lowbit.testing.experts import routed_counts
from lowbit.testing.shapes import DENSE, MOE

# MoE models whose GEMMs fit W4A8 (K % 128, N % 128; gpt-oss-120b does not).
MOE_MODELS = tuple(m for m, c in MOE.items() if all(x % 128 == 0 for x in c.gemm1 + c.gemm2))
# Models this bench can time (the `lowbit bench --models` protocol), and the
# ones timed when none are named (the committed table's).
MODELS: tuple[str, ...] = tuple(DENSE) + MOE_MODELS
DEFAULT_MODELS = ("Llama-3-8B", "Llama-3-70B")
DEFAULT_MOE_MODELS = ("Llama-4-Scout", "Qwen3-30B-A3B", "DeepSeek-R1")
QUICK_TOKENS = (16, 2048)
MOE_TOKENS = (1, 16, 64, 1024, 4096)
MOE_QUICK_TOKENS = (16, 1024)


def _weights(N: int, K: int, copies: int, device):
    from . import cutlass_encode_and_reorder_int4b, cutlass_pack_scale_fp8, pack_int4

    sets = []
    for _ in range(copies):
        q = torch.randint(-8, 8, (N, K), dtype=torch.int8, device=device)
        s = (torch.rand(K // 128, N, device=device) * 0.05 + 0.01).to(torch.float8_e4m3fn)
        sets.append((cutlass_encode_and_reorder_int4b(pack_int4(q)), cutlass_pack_scale_fp8(s)))
    ch = torch.rand(N, device=device) + 0.5
    return sets, ch


def run(device, *, models=None, quick=False, progress=None) -> list[dict]:
    """Benchmark rows (docs/DEVELOPING.md): per dense layer of the dense
    `models` and M in lowbit.testing.shapes.TOKENS, then the grouped GEMM for
    the MoE `models` (default: DEFAULT_MODELS and DEFAULT_MOE_MODELS)."""
    device = torch.device(device)
    if device.type != "cuda":
        return _run_cpu(progress)
    from lowbit.testing.shapes import canonical_model

    names = [canonical_model(m) or m for m in models] if models else None
    dense = [m for m in names if m in DENSE] if names else list(DEFAULT_MODELS)
    moe = [m for m in names if m in MOE_MODELS] if names else list(DEFAULT_MOE_MODELS)
    rows = run_dense(device, dense, quick, progress) if dense else []
    if moe:
        rows += run_moe(device, models=moe, tokens=MOE_QUICK_TOKENS if quick else MOE_TOKENS,
                        progress=progress)
    return rows


def run_dense(device, models, quick=False, progress=None) -> list[dict]:
    """cutlass_w4a8_mm rows for every dense layer of `models`."""
    from lowbit.testing import bench as tb
    from lowbit.testing.shapes import TOKENS, dense_layers

    rows: list[dict] = []
    bw = tb.copy_bandwidth(device=device)
    for model, K, N in dense_layers(models):
        weights = _layer_weights(N, K, device)
        for M in QUICK_TOKENS if quick else TOKENS:
            rows += _time_layer(model, K, N, M, weights, bw, progress)
        del weights
        torch.cuda.empty_cache()
    return rows


def _row(model, shape, M, impl, us, metric, name):
    return {"package": "lowbit-w4a8-mm", "op": "cutlass_w4a8_mm", "model": model, "shape": shape,
            "M": M, "impl": impl, "us": us, "metric": metric, "metric_name": name}


def _w4_bytes(N: int, K: int) -> int:
    return N * K // 2 + (K // 128) * N * 8  # int4 weight + packed scale tables


def _layer_weights(N: int, K: int, device):
    """Rotating copies (more than the L2 holds) of the layer in each format."""
    from lowbit.testing import bench as tb

    sets, ch = _weights(N, K, tb.rotation_count(_w4_bytes(N, K), device), device)
    w_bf16 = [torch.randn(N, K, device=device, dtype=torch.bfloat16)
              for _ in range(tb.rotation_count(2 * N * K, device, cap=8))]
    return sets, ch, w_bf16, [w.to(torch.float8_e4m3fn) for w in w_bf16]


def _time_layer(model, K, N, M, weights, bw, progress) -> list[dict]:
    """lowbit, fp8 cuBLASLt and bf16 cuBLAS on one (layer, M), timed in one
    interleaved measurement (same clocks, same memory state), plus the floor.
    metric: weight TB/s for M <= 64 (that implementation's weight bytes), else TFLOP/s."""
    from lowbit.testing import bench as tb

    from . import cutlass_w4a8_mm

    shape, w4_bytes = f"N={N} K={K}", _w4_bytes(N, K)
    sets, ch, w_bf16, w_fp8 = weights
    device = ch.device
    x = torch.randn(M, K, device=device, dtype=torch.bfloat16)
    A = x.to(torch.float8_e4m3fn)
    tok = torch.rand(M, device=device) + 0.5
    cands = {
        "lowbit": [lambda b=b, g=g: cutlass_w4a8_mm(A, b, g, 128, ch, tok, torch.bfloat16, None)
                   for b, g in sets],
        "torch.mm bf16": [lambda w=w: torch.mm(x, w.t()) for w in w_bf16],
        "torch._scaled_mm fp8": [
            lambda w=w: torch._scaled_mm(A, w.t(), scale_a=tok.view(M, 1), scale_b=ch.view(1, N),
                                         out_dtype=torch.bfloat16) for w in w_fp8],
    }
    wbytes = {"lowbit": w4_bytes, "torch.mm bf16": 2 * N * K, "torch._scaled_mm fp8": N * K}
    rows = []
    for impl, us in tb.time_cuda_interleaved(cands).items():
        if M <= 64:
            rows.append(_row(model, shape, M, impl, us, wbytes[impl] / us * 1e-6, "TB/s"))
        else:
            rows.append(_row(model, shape, M, impl, us, 2.0 * M * N * K / us * 1e-6, "TFLOP/s"))
        if progress:
            progress(f"{model} {shape} M={M} {impl}: {us:.1f} us")
    # The same calls after an unrelated kernel (no overlap with a previous
    # call of their own, operands not in L2): lowbit and fp8.
    after = {impl: cands[impl] for impl in ("lowbit", "torch._scaled_mm fp8")}
    for impl, us in tb.time_cuda_after_kernel(after, device=device).items():
        rows.append(_row(model, shape, M, impl, us, 2.0 * M * N * K / us * 1e-6, "TFLOP/s"))
    rows.append(_row(model, shape, M, "copy floor", w4_bytes / bw * 1e6, bw * 1e-12, "TB/s"))
    return rows


def _run_cpu(progress) -> list[dict]:
    """Small CPU problems: the reference kernels' time (not a performance claim)."""
    from lowbit.testing import bench as tb

    from . import cutlass_w4a8_mm, quantize_activation, quantize_weight

    rows = []
    for M, N, K in [(1, 256, 512), (16, 256, 512)]:
        w = quantize_weight(torch.randn(N, K))
        A, tok = quantize_activation(torch.randn(M, K))
        us = tb.time_cpu(lambda: cutlass_w4a8_mm(A, w.B, w.group_scales, 128,
                                                 w.channel_scales, tok))
        rows.append({"package": "lowbit-w4a8-mm", "op": "cutlass_w4a8_mm", "shape": f"N={N} K={K}",
                     "M": M, "impl": "lowbit (CPU reference)", "us": us,
                     "metric": 2.0 * M * N * K / us * 1e-6, "metric_name": "TFLOP/s"})
        if progress:
            progress(f"cpu N={N} K={K} M={M}: {us:.0f} us")
    rows.append(_run_cpu_moe(progress))
    return rows


def _run_cpu_moe(progress) -> dict:
    """One small grouped problem on the CPU reference kernel."""
    from lowbit.testing import bench as tb

    from . import cutlass_w4a8_moe_mm, moe_strides, quantize_activation, quantize_experts

    counts, N, K = [3, 0, 5, 8], 256, 512
    E, M = len(counts), sum(counts)
    w = quantize_experts(torch.randn(E, N, K))
    A, tok = quantize_activation(torch.randn(M, K))
    r = _moe_routing(counts, N, K, "cpu")
    a_str, c_str, s_str = moe_strides(E, N, K)
    out = torch.empty(M, N, dtype=torch.bfloat16)
    us = tb.time_cpu(lambda: cutlass_w4a8_moe_mm(out, A, w.B, tok, w.channel_scales, w.group_scales, 128,
                                                 r["offsets"], r["sizes"], a_str, w.b_strides, c_str, s_str))
    if progress:
        progress(f"cpu grouped E={E} N={N} K={K} M={M}: {us:.0f} us")
    return {"package": "lowbit-w4a8-mm", "op": "cutlass_w4a8_moe_mm", "model": "small (CPU)",
            "shape": f"E={E} N={N} K={K}", "tokens": M, "M": M, "experts": float(E - counts.count(0)),
            "impl": "lowbit (CPU reference)", "us": us,
            "metric": 2.0 * M * N * K / us * 1e-6, "metric_name": "TFLOP/s"}


# ---------------------------------------------------------------- grouped (MoE)
def _moe_weights(E: int, N: int, K: int, device) -> dict:
    """One set of every format's expert weights, made on the device (random
    int4 values and fp8 group scales through lowbit's prepack ops)."""
    from . import cutlass_encode_and_reorder_int4b_grouped, cutlass_pack_scale_fp8

    words = torch.randint(-2**31, 2**31 - 1, (E, N, K // 8), dtype=torch.int32, device=device)
    B, b_strides = cutlass_encode_and_reorder_int4b_grouped(words)
    del words
    s = (torch.rand(E, K // 128, N, device=device) * 0.05 + 0.01).to(torch.float8_e4m3fn)
    w16 = torch.randn(E, N, K, device=device, dtype=torch.bfloat16) / K**0.5
    return {"B": B, "b_strides": b_strides, "gs": cutlass_pack_scale_fp8(s),
            "ch": torch.rand(E, N, device=device) + 0.5, "w16": w16, "w8": w16.to(torch.float8_e4m3fn),
            "w8_scale": torch.rand(E, N, device=device) + 0.5}


def _moe_routing(counts: list[int], N: int, K: int, device) -> dict:
    """The metadata of one routing: cutlass_w4a8_moe_mm's offsets / sizes and
    torch's grouped-mm offs (cumulative ends, int32)."""
    E = len(counts)
    ends = torch.tensor(counts, dtype=torch.int64).cumsum(0)
    return {"offsets": (ends - torch.tensor(counts)).to(device),
            "sizes": torch.tensor([[N, c, K] for c in counts], dtype=torch.int32).reshape(E, 3).to(device),
            "offs": ends.to(torch.int32).to(device),
            "active": torch.tensor([e for e, c in enumerate(counts) if c], dtype=torch.int64, device=device)}


def _moe_candidates(w: dict, routings: list[dict], M: int, N: int, K: int, device) -> dict:
    """Closures (one per rotating routing) of lowbit and the baselines."""
    from . import cutlass_w4a8_moe_mm, moe_strides

    E = w["B"].shape[0]
    a8 = torch.randn(M, K, device=device).to(torch.float8_e4m3fn)
    a16 = torch.randn(M, K, device=device, dtype=torch.bfloat16)
    tok = torch.rand(M, device=device) + 0.5
    out = torch.empty(M, N, device=device, dtype=torch.bfloat16)
    a_str, c_str, s_str = moe_strides(E, N, K, device)
    wflat, sflat = w["B"].view(E, -1), w["gs"].view(torch.uint8).view(E, -1)
    cands = {
        "lowbit": [lambda r=r: cutlass_w4a8_moe_mm(out, a8, w["B"], tok, w["ch"], w["gs"], 128, r["offsets"],
                                                   r["sizes"], a_str, w["b_strides"], c_str, s_str)
                   for r in routings],
        # The weight bytes the call reads (touched experts' int4 + scale
        # tables), copied: a read plus a write of the same bytes.
        "clone (touched weights)": [lambda r=r: (wflat.index_select(0, r["active"]),
                                                 sflat.index_select(0, r["active"])) for r in routings],
    }
    baselines = {
        "torch._scaled_grouped_mm fp8": lambda r: torch._scaled_grouped_mm(
            a8, w["w8"].transpose(-2, -1), tok, w["w8_scale"], offs=r["offs"], out_dtype=torch.bfloat16),
        "torch._grouped_mm bf16": lambda r: torch._grouped_mm(a16, w["w16"].transpose(-2, -1), offs=r["offs"]),
    }
    for name, fn in baselines.items():
        if _capturable(lambda fn=fn: fn(routings[0])):  # this torch / GPU may not have it
            cands[name] = [lambda r=r, fn=fn: fn(r) for r in routings]
    return cands


def _capturable(fn) -> bool:
    """Whether fn runs eagerly and inside a CUDA graph capture (the timing
    captures every candidate)."""
    try:
        fn()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream), torch.cuda.graph(torch.cuda.CUDAGraph()):
            fn()
        torch.cuda.current_stream().wait_stream(stream)
        return True
    except (AttributeError, NotImplementedError, RuntimeError, TypeError):
        torch.cuda.synchronize()
        return False


def _moe_case(model, gemm, N, K, t, w, cfg, bw, g, device) -> list[dict]:
    """Every implementation on one (model, GEMM, tokens), over rotating routings."""
    from lowbit.testing import bench as tb

    per_expert = N * K // 2 + (K // 128) * N * 8
    first = routed_counts(t, cfg.experts, cfg.topk, g)
    n_active = sum(1 for c in first if c)
    count = tb.rotation_count(n_active * per_expert, device, cap=16 if t <= 64 else 2)
    all_counts = [first] + [routed_counts(t, cfg.experts, cfg.topk, g) for _ in range(count - 1)]
    routings = [_moe_routing(c, N, K, device) for c in all_counts]
    M = t * cfg.topk
    times = tb.time_cuda_interleaved(_moe_candidates(w, routings, M, N, K, device))
    active = sum(sum(1 for c in cs if c) for cs in all_counts) / len(all_counts)
    wbytes = active * per_expert
    times["copy floor"] = wbytes / bw * 1e6
    rows = []
    for impl, us in times.items():
        decode = t <= 64
        rows.append({"package": "lowbit-w4a8-mm", "op": "cutlass_w4a8_moe_mm", "model": model,
                     "shape": f"{gemm} N={N} K={K}", "tokens": t, "M": M, "experts": active,
                     "impl": impl, "us": float(us),
                     "metric": wbytes / us * 1e-6 if decode else 2.0 * M * N * K / us * 1e-6,
                     "metric_name": "TB/s" if decode else "TFLOP/s"})
    return rows


def run_moe(device, *, models=None, tokens=MOE_TOKENS, progress=None) -> list[dict]:
    """cutlass_w4a8_moe_mm rows per (MoE model, GEMM, tokens): lowbit, the
    grouped baselines, a copy of the touched weight bytes and the copy floor.
    metric: weight TB/s (lowbit's int4 bytes / time) for tokens <= 64, else TFLOP/s."""
    from lowbit.testing import bench as tb

    device = torch.device(device)
    g = torch.Generator().manual_seed(0)
    bw = tb.copy_bandwidth(device=device)
    rows: list[dict] = []
    for model in models or DEFAULT_MOE_MODELS:
        cfg = MOE[model]
        for gemm, (N, K) in (("gemm1", cfg.gemm1), ("gemm2", cfg.gemm2)):
            w = _moe_weights(cfg.experts, N, K, device)
            for t in tokens:
                case = _moe_case(model, gemm, N, K, t, w, cfg, bw, g, device)
                rows += case
                if progress:
                    progress(f"{model} {gemm} T={t} " + " ".join(f"{r['impl']}={r['us']:.1f}" for r in case))
            del w
            torch.cuda.empty_cache()
    return rows
