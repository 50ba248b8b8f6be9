"""`lowbit bench` protocol: cutlass_w4a8_mm against bf16 cuBLAS (torch.mm), fp8
cuBLASLt rowwise (torch._scaled_mm) and the memory floor (int4 weights +
packed scales over the measured copy bandwidth), on SPEC §4 shapes
(lowbit.testing.shapes).

Rows are long-format dicts (docs/DEVELOPING.md). metric: weight-streaming
TB/s for M <= 64 (bytes of that implementation's weight format / time),
TFLOP/s above.
"""

from __future__ import annotations

import torch

from lowbit.testing.shapes import DENSE

# Models this bench can time (the `lowbit bench --models` protocol), and the
# ones timed when none are named (the committed table's).
MODELS: tuple[str, ...] = tuple(DENSE)
DEFAULT_MODELS = ("Llama-3-8B", "Llama-3-70B")
QUICK_TOKENS = (16, 2048)


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
    """Benchmark rows (docs/DEVELOPING.md): per dense layer of `models`
    (default DEFAULT_MODELS) and M in lowbit.testing.shapes.TOKENS."""
    device = torch.device(device)
    if device.type != "cuda":
        return _run_cpu(progress)
    from lowbit.testing import bench as tb
    from lowbit.testing.shapes import TOKENS, dense_layers

    rows: list[dict] = []
    bw = tb.copy_bandwidth(device=device)
    for model, K, N in dense_layers(models or DEFAULT_MODELS):
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
    rows.append(_row(model, shape, M, "copy floor", w4_bytes / bw * 1e6, bw * 1e-12, "TB/s"))
    return rows


def _run_cpu(progress) -> list[dict]:
    """Small CPU problem: the reference kernel's time (not a performance claim)."""
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
    return rows
