"""`lowbit bench` protocol: cutlass_w4a8_mm against bf16 cuBLAS (torch.mm), fp8
cuBLASLt rowwise (torch._scaled_mm) and the memory floor (int4 weights +
packed scales over the measured copy bandwidth), on SPEC §4 shapes.

Rows are long-format dicts (docs/DEVELOPING.md). metric: weight-streaming
TB/s for M <= 64 (bytes of that implementation's weight format / time),
TFLOP/s above.
"""

from __future__ import annotations

import torch

MODELS = {
    # SPEC §4 weights [K, N] per linear layer.
    "llama3-8b": [(4096, 6144), (4096, 4096), (4096, 28672), (14336, 4096)],
    "llama3-70b": [(8192, 10240), (8192, 8192), (8192, 57344), (28672, 8192)],
}
TOKENS = [1, 16, 64, 128, 512, 2048, 8192]
QUICK_TOKENS = [16, 2048]


def _weights(N: int, K: int, copies: int, device):
    from . import cutlass_encode_and_reorder_int4b, cutlass_pack_scale_fp8, pack_int4

    sets = []
    for _ in range(copies):
        q = torch.randint(-8, 8, (N, K), dtype=torch.int8, device=device)
        s = (torch.rand(K // 128, N, device=device) * 0.05 + 0.01).to(torch.float8_e4m3fn)
        sets.append((cutlass_encode_and_reorder_int4b(pack_int4(q)), cutlass_pack_scale_fp8(s)))
    ch = torch.rand(N, device=device) + 0.5
    return sets, ch


def run(device, *, models=None, quick=False, progress=None, schedules=False) -> list[dict]:
    """Benchmark rows. schedules=True also times every named schedule (the
    sweep the heuristic was tuned from)."""
    from lowbit.testing import bench as tb

    from . import SCHEDULES, cutlass_w4a8_mm

    device = torch.device(device)
    rows: list[dict] = []
    if device.type != "cuda":
        return _run_cpu(progress)
    names = list(models or MODELS)
    tokens = QUICK_TOKENS if quick else TOKENS
    bw = tb.copy_bandwidth(device=device)
    for model in names:
        for K, N in MODELS[model]:
            shape = f"N={N} K={K}"
            w4_bytes = N * K // 2 + (K // 128) * N * 8
            copies = tb.rotation_count(w4_bytes, device)
            sets, ch = _weights(N, K, copies, device)
            w_bf16 = [torch.randn(N, K, device=device, dtype=torch.bfloat16)
                      for _ in range(tb.rotation_count(2 * N * K, device, cap=8))]
            w_fp8 = [w.to(torch.float8_e4m3fn) for w in w_bf16]
            ch_row = ch.view(1, N)
            floor_us = w4_bytes / bw * 1e6
            for M in tokens:
                x = torch.randn(M, K, device=device, dtype=torch.bfloat16)
                A = x.to(torch.float8_e4m3fn)
                tok = torch.rand(M, device=device) + 0.5
                tok_col = tok.view(M, 1)
                flops = 2.0 * M * N * K

                def row(impl, us, wbytes):
                    if M <= 64:
                        metric, name = wbytes / us * 1e-6, "TB/s"
                    else:
                        metric, name = flops / us * 1e-6, "TFLOP/s"
                    rows.append({"package": "lowbit-w4a8-mm", "op": "cutlass_w4a8_mm",
                                 "model": model, "shape": shape, "M": M, "impl": impl,
                                 "us": us, "metric": metric, "metric_name": name})
                    if progress:
                        progress(f"{model} {shape} M={M} {impl}: {us:.1f} us")

                # Every implementation of this (shape, M) is timed in one
                # interleaved measurement (same clocks, same memory state).
                cands = {}
                for sched in [None] + (list(SCHEDULES) if schedules else []):
                    if sched is not None:
                        tn, tm = (int(v) for v in sched.split("_")[0].split("x"))
                        # The sweep skips tiles that cannot be competitive here.
                        if N % tn or (tm <= 32 and M >= 2048) or (tm >= 256 and M <= 16):
                            continue
                    fns = [lambda b=b, g=g, sc=sched: cutlass_w4a8_mm(A, b, g, 128, ch, tok,
                                                                    torch.bfloat16, sc)
                           for b, g in sets]
                    try:
                        fns[0]()
                    except RuntimeError as e:  # a schedule CUTLASS rejects: report, go on
                        if progress:
                            progress(f"{model} {shape} M={M} {sched}: failed: {e}")
                        continue
                    cands["lowbit" if sched is None else f"lowbit {sched}"] = fns
                cands["torch.mm bf16"] = [lambda w=w: torch.mm(x, w.t()) for w in w_bf16]
                cands["torch._scaled_mm fp8"] = [
                    lambda w=w: torch._scaled_mm(A, w.t(), scale_a=tok_col, scale_b=ch_row,
                                                 out_dtype=torch.bfloat16) for w in w_fp8]
                for impl, us in tb.time_cuda_interleaved(cands).items():
                    row(impl, us, w4_bytes if impl.startswith("lowbit") else
                        (2 * N * K if "bf16" in impl else N * K))
                rows.append({"package": "lowbit-w4a8-mm", "op": "cutlass_w4a8_mm", "model": model,
                             "shape": shape, "M": M, "impl": "copy floor", "us": floor_us,
                             "metric": bw * 1e-12, "metric_name": "TB/s"})
            del sets, w_bf16, w_fp8
            torch.cuda.empty_cache()
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
