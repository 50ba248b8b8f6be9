"""`lowbit check` protocol: every op on an embedded realistic problem with
random data, compared with the pure-torch reference (lowbit.testing.w4a8)."""

from __future__ import annotations

import torch

from lowbit.testing.selfcheck import row


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
    rows.append(row("cutlass_encode_and_reorder_int4b", f"N={N} K={K}", bad, 0, "mismatched words"))

    packed = cutlass_pack_scale_fp8(s)
    bad = int((packed.view(torch.uint8) != ref.pack_scales(s).view(torch.uint8)).sum())
    rows.append(row("cutlass_pack_scale_fp8", f"scales [{K // 128}, {N}]", bad, 0, "mismatched bytes"))

    x = torch.randn(M, K, generator=gen).to(device)
    A, tok = ref.quantize_activation(x)
    out = cutlass_w4a8_mm(A, got, packed, 128, ch, tok, torch.bfloat16, None)
    err = ref.rel_err(out, ref.w4a8_mm(A, q, s, ch, tok, torch.bfloat16))
    rows.append(row("cutlass_w4a8_mm", problem, err, 1e-2))
    return rows + _grouped_rows(device)


def _grouped_rows(device: torch.device) -> list[dict]:
    """The two grouped ops on a Qwen3-30B-A3B down projection (E = 128 experts,
    16 tokens routed top-8, one expert empty) on the GPU; 4 small experts on
    the CPU."""
    from lowbit.testing import w4a8_moe as ref
    from lowbit.testing.shapes import MOE

    from . import cutlass_encode_and_reorder_int4b_grouped, cutlass_pack_scale_fp8, cutlass_w4a8_moe_mm

    torch.manual_seed(0)
    cfg = MOE["Qwen3-30B-A3B"]
    if device.type == "cuda":
        (N, K), E = cfg.gemm2, cfg.experts
        counts = ref.split_rows(16 * cfg.topk, E, empty=1)
    else:
        (N, K), counts = (256, 512), [3, 0, 5, 2]
    E = len(counts)
    p = ref.random_moe_problem(counts, N, K, device)
    B, b_strides = cutlass_encode_and_reorder_int4b_grouped(p["words"])
    want, want_desc = ref.encode_and_reorder_grouped(p["words"])
    bad = int((B != want).sum()) + int((b_strides != want_desc).sum())
    rows = [row("cutlass_encode_and_reorder_int4b_grouped", f"E={E} N={N} K={K}", bad, 0, "mismatched words")]
    out = torch.zeros(p["M"], N, dtype=torch.bfloat16, device=device)
    cutlass_w4a8_moe_mm(out, p["A"], B, p["tok"], p["ch"], cutlass_pack_scale_fp8(p["s"]), 128,
                        p["expert_offsets"], p["problem_sizes"], p["a_strides"], b_strides,
                        p["c_strides"], p["group_scale_strides"])
    err = ref.dense.rel_err(out, ref.moe_mm_ref(torch.zeros_like(out), p["A"], p["q"], p["s"], p["ch"],
                                                 p["tok"], p["expert_offsets"], p["problem_sizes"]))
    rows.append(row("cutlass_w4a8_moe_mm", f"E={E} M={p['M']} N={N} K={K} group=128", err, 1e-2))
    return rows
