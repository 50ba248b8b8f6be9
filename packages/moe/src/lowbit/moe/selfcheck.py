"""`lowbit check` protocol: every op on a realistic routing problem with random
data against the pure-torch reference (lowbit.testing.moe)."""

from __future__ import annotations

import torch

from lowbit.testing.selfcheck import row as _row


def _random_ids(m, topk, E, g):
    ids = torch.randint(0, E, (m, topk), generator=g, dtype=torch.int32)
    ids[:: max(m // 7, 1), -1] = -1  # a few invalid routes (expert parallelism)
    return ids


def run(device: torch.device) -> list[dict]:
    from lowbit.testing import moe as ref

    from . import _ops, route, shuffle_rows

    device = torch.device(device)
    g = torch.Generator(device="cpu").manual_seed(0)
    # DeepSeek-R1 routing (E=256, top-8, H=7168, I=2048); CPU: fewer tokens, smaller H.
    m, E, topk, H, inter = (4096, 256, 8, 7168, 2048) if device.type == "cuda" else (
        300, 256, 8, 512, 256)
    ids = _random_ids(m, topk, E, g)
    r = route(ids.to(device), E, inter, H)
    want = ref.moe_mm_data_ref(ids, E, inter, H)
    bad = sum(int((getattr(r, key).cpu() != want[key]).sum()) for key in
              ("expert_offsets", "blockscale_offsets", "problem_sizes1", "problem_sizes2",
               "input_permutation", "output_permutation"))
    rows = [_row("get_cutlass_moe_mm_data", f"m={m} topk={topk} E={E} int32 ids", bad, 0,
                 "mismatched entries")]
    off = torch.cat([torch.zeros(1, dtype=torch.int64),
                     torch.randint(0, 64, (E,), generator=g).cumsum(0)])
    ps1 = torch.empty(E, 3, dtype=torch.int32, device=device)
    ps2 = torch.empty_like(ps1)
    _ops.get_cutlass_moe_mm_problem_sizes_from_expert_offsets(off.to(device), ps1, ps2, inter, H,
                                                             True)
    w1, w2 = ref.problem_sizes_from_offsets_ref(off, inter, H, True)
    bad = int((ps1.cpu() != w1).sum() + (ps2.cpu() != w2).sum())
    rows.append(_row("get_cutlass_moe_mm_problem_sizes_from_expert_offsets",
                     f"E={E} int64 offsets swap_ab", bad, 0, "mismatched entries"))
    x = torch.randn(m, H, generator=g).to(torch.bfloat16).to(device)
    got = shuffle_rows(x, r.input_permutation)
    bad = int((got.cpu().view(torch.int16) !=
               ref.shuffle_rows_ref(x.cpu(), r.input_permutation.cpu()).view(torch.int16)).sum())
    rows.append(_row("shuffle_rows", f"[{m}, {H}] bf16 -> {m * topk} rows", bad, 0,
                     "mismatched elements"))
    from . import combine
    w = torch.rand(m, topk, generator=g).to(device)
    c3 = torch.randn(m * topk, H, generator=g).to(torch.bfloat16).to(device)
    back = ref.shuffle_rows_ref(c3.cpu(), r.output_permutation.cpu()).float().reshape(m, topk, H)
    want = (back * w.cpu().unsqueeze(-1)).sum(dim=1)
    rows.append(_row("moe_combine", f"[{m * topk}, {H}] bf16 -> [{m}, {H}]",
                     _rel(combine(c3, r.output_permutation, w).cpu(), want), 1e-2, "relative error"))
    return rows + _fp8_rows(device, g) + _forward_rows(device, g) + _layer_rows(device, g)


def _fp8_rows(device, g) -> list[dict]:
    """The per-token fp8 quantization ops on DeepSeek-R1's hidden size (CPU:
    fewer rows) against lowbit.testing.moe.per_token_fp8_ref, byte for byte
    (the fused SiLU form: a code may move one step where the GPU's expf and
    the host's exp differ in the last bit)."""
    from lowbit.testing import moe as ref
    from lowbit.testing.nvfp4 import silu_and_mul_ref

    from . import per_token_fp8_quant, silu_and_mul_per_token_fp8_quant

    m = 4096 if device.type == "cuda" else 64
    x = (torch.randn(m, 7168, generator=g) * 3).to(torch.bfloat16)
    x[0] = 0
    q, s = per_token_fp8_quant(x.to(device))
    wq, ws = ref.per_token_fp8_ref(x)
    bad = int((q.cpu().view(torch.uint8) != wq.view(torch.uint8)).sum() + (s.cpu() != ws).sum())
    rows = [_row("dynamic_per_token_scaled_fp8_quant", f"[{m}, 7168] bf16", bad, 0,
                 "mismatched bytes")]
    h = torch.randn(m, 2 * 2048, generator=g).to(torch.bfloat16)
    q, s = silu_and_mul_per_token_fp8_quant(h.to(device))
    wq, ws = ref.per_token_fp8_ref(silu_and_mul_ref(h).to(torch.bfloat16))
    off = (q.cpu().float() - wq.float()).abs() > wq.float().abs() * 0.13 + 1e-6
    rows.append(_row("silu_and_mul_per_token_fp8_quant", f"[{m}, 2x2048] bf16",
                     float(off.float().mean()), 1e-3, "share of codes more than 13 % off (one e4m3 step)"))
    return rows


def _layer_rows(device, g) -> list[dict]:
    """w4a8_moe_forward and mxfp4_moe_forward on a small layer against the
    same steps done route by route in torch (where the format runs)."""
    from lowbit.testing import moe as ref
    from lowbit.testing import w4a8 as w4a8_ref

    from . import (mxfp4_moe_forward, quantize_experts_mxfp4, quantize_experts_w4a8,
                   w4a8_moe_forward)
    from ._layer import format_unavailable

    m, E, topk, H, inter = 64, 16, 4, 256, 128
    w13 = (torch.randn(E, 2 * inter, H, generator=g) / 16).to(torch.bfloat16)
    w2 = (torch.randn(E, H, inter, generator=g) / 11).to(torch.bfloat16)
    x = torch.randn(m, H, generator=g).to(torch.bfloat16)
    ids = _random_ids(m, topk, E, g)
    w = torch.softmax(torch.randn(m, topk, generator=g), -1)
    dev = [t.to(device) for t in (x, ids, w, w13, w2)]
    problem = f"m={m} E={E} topk={topk} H={H} I={inter} bf16"
    rows = []
    if format_unavailable("w4a8", device) is None:
        out = w4a8_moe_forward(*dev[:3], quantize_experts_w4a8(dev[3]),
                               quantize_experts_w4a8(dev[4]))

        def deq(wt):
            parts = [w4a8_ref.quantize_weight(v) for v in wt]
            return torch.stack([w4a8_ref.dequantize_weight(q, s).float() * ch.unsqueeze(1)
                                for q, s, ch in parts])

        want = ref.quantized_moe_ref(x, ids, w, deq(w13), deq(w2), ref.per_token_fp8_qdq,
                                     ref.per_token_fp8_qdq)
        rows.append(_row("w4a8_moe_forward", problem, _rel(out, want), 1e-2,
                         "relative error vs route-by-route W4A8 math"))
    if format_unavailable("mxfp4", device) is None:
        (q13, s13), (q2, s2) = quantize_experts_mxfp4(dev[3]), quantize_experts_mxfp4(dev[4])
        out = mxfp4_moe_forward(*dev[:3], q13, s13, q2, s2)

        def mx(e, v):
            return ref.mx_qdq(v)

        want = ref.quantized_moe_ref(x, ids, w, ref.dequantize_experts_mxfp4(q13, s13),
                                     ref.dequantize_experts_mxfp4(q2, s2), mx, mx)
        rows.append(_row("mxfp4_moe_forward", problem, _rel(out, want), 1e-2,
                         "relative error vs route-by-route MXFP4 math"))
    return rows


def _rel(out, want) -> float:
    out, want = out.cpu().float(), want.float()
    return float((out - want).norm() / want.norm())


def _forward_rows(device, g) -> list[dict]:
    """nvfp4_moe_forward on a small layer against the same NVFP4 steps done
    route by route in torch (only when lowbit-nvfp4-mm has the grouped GEMM)."""
    import lowbit.nvfp4_mm as mm
    from lowbit.testing import moe as ref

    from . import nvfp4_moe_forward, quantize_experts_nvfp4

    if not hasattr(mm, "cutlass_fp4_group_mm"):
        return []
    m, E, topk, H, inter = 64, 16, 4, 256, 128
    w13 = (torch.randn(E, 2 * inter, H, generator=g) / 10).to(torch.bfloat16).to(device)
    w2 = (torch.randn(E, H, inter, generator=g) / 10).to(torch.bfloat16).to(device)
    x = (torch.randn(m, H, generator=g) / 10).to(torch.bfloat16).to(device)
    ids = _random_ids(m, topk, E, g)
    w = torch.softmax(torch.randn(m, topk, generator=g), -1)
    q13, s13, gs13 = quantize_experts_nvfp4(w13)
    q2, s2, gs2 = quantize_experts_nvfp4(w2)
    a1 = torch.full((E,), 448 * 6 / float(x.float().abs().max()), device=device)
    a2 = torch.full((E,), 448 * 6 / 2.0, device=device)
    out = nvfp4_moe_forward(x, ids.to(device), w.to(device), q13, s13, 1 / (a1 * gs13), q2, s2,
                            1 / (a2 * gs2), a1, a2).cpu().float()
    deq13 = ref.dequantize_experts(q13.cpu(), s13.cpu(), gs13.cpu())
    deq2 = ref.dequantize_experts(q2.cpu(), s2.cpu(), gs2.cpu())
    want = ref.nvfp4_moe_ref(x.cpu(), ids, w, deq13, deq2, a1.cpu(), a2.cpu()).float()
    rel = float((out - want).norm() / want.norm())
    return [_row("nvfp4_moe_forward", f"m={m} E={E} topk={topk} H={H} I={inter} bf16", rel, 1e-2,
                 "relative error vs route-by-route NVFP4 math")]
