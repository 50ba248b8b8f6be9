"""The W4A8 MoE layer (docs/SPEC-MOE.md §5.9.3, vLLM's CutlassExpertsW4A8Fp8):
int4 experts in group-128 fp8 scales with fp32 channel scales, fp8 activations
with per-token scales, lowbit.w4a8_mm's grouped GEMM."""

from __future__ import annotations

from typing import NamedTuple

import torch

from ._layer import check_gated, need


class W4A8Experts(NamedTuple):
    """One prepacked W4A8 expert GEMM (N x K per expert) with the stride
    tensors cutlass_w4a8_moe_mm takes (built once, so the forward allocates
    nothing from the host and stays CUDA-graph capturable)."""

    weight: torch.Tensor               # int32 [E, N, K/8], encoded + reordered
    b_strides: torch.Tensor            # int32 [E, 3] layout rows (N/16, K/32, 32N)
    group_scales: torch.Tensor         # fp8 [E * (K/g) * N * 8], packed tables
    group_size: int                    # g = 128
    channel_scales: torch.Tensor       # fp32 [E, N]
    a_strides: torch.Tensor            # int64 [E], all K
    c_strides: torch.Tensor            # int64 [E], all N
    group_scale_strides: torch.Tensor  # int64 [E, 2], all (N, 0)


def quantize_experts_w4a8(w: torch.Tensor, group_size: int = 128) -> W4A8Experts:
    """Dense experts ``w [E, N, K]`` (bf16/fp16/fp32; N % 16 == 0, K % 128 == 0)
    -> :class:`W4A8Experts`: symmetric int4 per group of ``group_size`` k with
    the group scale split into an fp8 group scale (<= 448/8) and an fp32
    channel scale x 8 (vLLM's ÷8/×8 rule, SPEC-MOE §5.9.3), prepacked with
    ``cutlass_encode_and_reorder_int4b_grouped`` and ``cutlass_pack_scale_fp8``.
    Dequantized: e4m3(q * s) * ch. On w's device."""
    who = "quantize_experts_w4a8"
    quantize = need("w4a8", "quantize_experts", who)
    strides = need("w4a8", "moe_strides", who)
    p = quantize(w, group_size)
    E, N, K = w.shape
    return W4A8Experts(p.B, p.b_strides, p.group_scales, p.group_size, p.channel_scales,
                       *strides(E, N, K, w.device))


def w4a8_expert_gemm(group_mm, a, a_scales, w: W4A8Experts, offsets64, problem_sizes,
                     maybe_schedule=None) -> torch.Tensor:
    """One W4A8 grouped GEMM over the routed fp8 rows: a new bf16 ``[rows, N]``
    output; rows past the valid routes stay unwritten."""
    out = torch.empty(a.shape[0], w.weight.shape[1], dtype=torch.bfloat16, device=a.device)
    group_mm(out, a, w.weight, a_scales, w.channel_scales, w.group_scales, w.group_size,
             offsets64[:-1], problem_sizes, w.a_strides, w.b_strides, w.c_strides,
             w.group_scale_strides, maybe_schedule)
    return out


def w4a8_problem_sizes(routing, E: int, inter: int, hidden: int):
    """int64 expert offsets [E+1] and the swapped problem sizes (N, m_e, K) of
    both GEMMs, from the routing's offsets on the device."""
    from . import get_cutlass_moe_mm_problem_sizes_from_expert_offsets

    off64 = routing.expert_offsets.to(torch.int64)
    ps1 = torch.empty(E, 3, dtype=torch.int32, device=off64.device)
    ps2 = torch.empty_like(ps1)
    get_cutlass_moe_mm_problem_sizes_from_expert_offsets(off64, ps1, ps2, inter, hidden, True)
    return off64, ps1, ps2


def w4a8_moe_forward(x: torch.Tensor, topk_ids: torch.Tensor, topk_weights: torch.Tensor,
                     w13: W4A8Experts, w2: W4A8Experts,
                     maybe_schedule: str | None = None) -> torch.Tensor:
    """W4A8 MoE forward, SiLU-gated (vLLM ``run_cutlass_moe_w4a8_fp8``,
    SPEC-MOE §5.9.3): per-token fp8 quantization of x, routed rows ->
    ``cutlass_w4a8_moe_mm`` (gate/up) -> SiLU-and-mul fused with the per-token
    fp8 quantization -> ``cutlass_w4a8_moe_mm`` (down) -> weighted combine.

    x ``[m, H]`` bf16 (the GEMMs write bf16, as vLLM); topk_ids ``[m, topk]``
    int32/int64 (ids outside [0, E) contribute nothing); topk_weights
    ``[m, topk]``; w13 ``[E, 2I, H]`` (gate || up) and w2 ``[E, H, I]`` from
    :func:`quantize_experts_w4a8`; maybe_schedule: a name of
    ``lowbit.w4a8_mm.MOE_SCHEDULES`` for both GEMMs (None: the heuristic).
    Returns bf16 ``[m, H]``.
    """
    from . import (combine, per_token_fp8_quant, route, shuffle_rows,
                   silu_and_mul_per_token_fp8_quant)

    who = "w4a8_moe_forward"
    group_mm = need("w4a8", "cutlass_w4a8_moe_mm", who)
    if x.dtype != torch.bfloat16:
        raise ValueError(f"{who}: argument 'x': expected dtype torch.bfloat16 (the grouped "
                         f"GEMM writes bf16), got {x.dtype}")
    E, H, inter = w13.weight.shape[0], x.shape[1], w2.weight.shape[2] * 8
    check_gated(who, w13.weight.shape[1], inter, w13.weight.shape)
    r = route(topk_ids, E, inter, H)
    off64, ps1, ps2 = w4a8_problem_sizes(r, E, inter, H)
    # quantize the m tokens, then gather codes and scales (half the bytes of
    # gathering bf16 rows; per-token scales make the two orders equal)
    a_q, a_s = per_token_fp8_quant(x)
    perm = r.input_permutation
    c1 = w4a8_expert_gemm(group_mm, shuffle_rows(a_q, perm), shuffle_rows(a_s, perm), w13, off64,
                          ps1, maybe_schedule)
    h_q, h_s = silu_and_mul_per_token_fp8_quant(c1)
    c3 = w4a8_expert_gemm(group_mm, h_q, h_s, w2, off64, ps2, maybe_schedule)
    return combine(c3, r.output_permutation, topk_weights)
