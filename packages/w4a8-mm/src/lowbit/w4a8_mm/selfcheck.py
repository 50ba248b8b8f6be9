"""`lowbit check` protocol: every op on an embedded realistic problem with
random data, compared with the pure-torch reference (lowbit.testing.w4a8)."""

from __future__ import annotations

import torch


def run(device: torch.device) -> list[dict]:
    from lowbit.testing import w4a8 as ref
    from lowbit.testing.shapes import DENSE

    from . import (cutlass_encode_and_reorder_int4b, cutlass_pack_scale_fp8,
                   cutlass_w4a8_mm)

    device = torch.device(device)
    gen = torch.Generator(device="cpu").manual_seed(0)
    # Llama-3-8B attention output projection on the GPU; a smaller layer on CPU.
    K, N = DENSE["Llama-3-8B"][1]
    M, N, K = (16, N, K) if device.type == "cuda" else (4, 256, 512)
    problem = f"M={M} N={N} K={K} group=128"
    w = torch.randn(N, K, generator=gen).to(device)
    q, s, ch = ref.quantize_weight(w, 128)
    unpacked = ref.pack_int4(q)
    rows = []

    got = cutlass_encode_and_reorder_int4b(unpacked)
    bad = int((got != ref.encode_and_reorder(unpacked)).sum())
    rows.append({"op": "cutlass_encode_and_reorder_int4b", "problem": f"N={N} K={K}",
                 "passed": bad == 0, "metric": "mismatched words", "value": float(bad), "limit": 0.0})

    packed = cutlass_pack_scale_fp8(s)
    bad = int((packed.view(torch.uint8) != ref.pack_scales(s).view(torch.uint8)).sum())
    rows.append({"op": "cutlass_pack_scale_fp8", "problem": f"scales [{K // 128}, {N}]",
                 "passed": bad == 0, "metric": "mismatched bytes", "value": float(bad), "limit": 0.0})

    x = torch.randn(M, K, generator=gen).to(device)
    A, tok = ref.quantize_activation(x)
    out = cutlass_w4a8_mm(A, got, packed, 128, ch, tok, torch.bfloat16, None)
    err = ref.rel_err(out, ref.w4a8_mm(A, q, s, ch, tok, torch.bfloat16))
    rows.append({"op": "cutlass_w4a8_mm", "problem": problem, "passed": err <= 1e-2,
                 "metric": "relative error", "value": err, "limit": 1e-2})
    return rows
