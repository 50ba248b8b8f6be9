"""The MXFP4 MoE layer (docs/SPEC-MOE.md §5.9.2): expert-weight quantizer and
the forward that chains lowbit.mxfp4's experts quantization with its grouped
GEMM. MXFP4 has no global scales and no alphas: one E8M0 scale per 32
values."""

from __future__ import annotations

import torch

from ._layer import check_gated, fp4_expert_gemm, need

# Above this many experts the routing writes sorted_expert_ids and the quant
# ops get them as their lookup hint (vLLM's rule, SPEC-MOE §5.9.2).
SORTED_IDS_MIN_EXPERTS = 17


def quantize_experts_mxfp4(w: torch.Tensor):
    """Dense experts ``w [E, N, K]`` (bf16/fp16, K % 32 == 0) -> MXFP4:
    ``(packed uint8 [E, N, K/2], scales uint8 E8M0 [E, round_up(N,128),
    round_up(K/32,4)])`` (each expert 128x4-swizzled, padding zero), with the
    activation quantizer's scale rule (SPEC-MOE §5.1.1). Dequantized:
    e2m1 * 2^(scale - 127). On w's device, no host sync."""
    return need("mxfp4", "quantize_weights", "quantize_experts_mxfp4")(w)


def mxfp4_moe_forward(x: torch.Tensor, topk_ids: torch.Tensor, topk_weights: torch.Tensor,
                      w13: torch.Tensor, w13_scales: torch.Tensor, w2: torch.Tensor,
                      w2_scales: torch.Tensor) -> torch.Tensor:
    """MXFP4 x MXFP4 MoE forward, SiLU-gated (vLLM ``run_cutlass_moe_mxfp4``,
    SPEC-MOE §5.9.2).

    x ``[m, H]`` bf16/fp16 (also the output dtype), H % 32 == 0; topk_ids
    ``[m, topk]`` int32/int64 (ids outside [0, E) contribute nothing);
    topk_weights ``[m, topk]``; w13 uint8 ``[E, 2I, H/2]`` (gate || up) with
    E8M0 scales ``[E, round_up(2I,128), round_up(H/32,4)]``; w2 uint8
    ``[E, H, I/2]`` with ``[E, round_up(H,128), round_up(I/32,4)]``
    (:func:`quantize_experts_mxfp4`). Returns ``[m, H]``.
    """
    from . import combine, route, shuffle_rows

    who = "mxfp4_moe_forward"
    quant = need("mxfp4", "mxfp4_experts_quant", who)
    silu_quant = need("mxfp4", "silu_and_mul_mxfp4_experts_quant", who)
    group_mm = need("mxfp4", "cutlass_mxfp4_group_mm", who)
    E, H, inter = w13.shape[0], x.shape[1], w2.shape[2] * 2
    check_gated(who, w13.shape[1], inter, w13.shape)
    r = route(topk_ids, E, inter, H, sorted_ids=E >= SORTED_IDS_MIN_EXPERTS)
    off, sf_off, ids = r.expert_offsets, r.blockscale_offsets, r.sorted_expert_ids
    a_codes, a_sf = quant(shuffle_rows(x, r.input_permutation), off, sf_off, ids)
    c1 = fp4_expert_gemm(group_mm, a_codes, a_sf, w13, w13_scales, r.problem_sizes1, r, x.dtype)
    h_codes, h_sf = silu_quant(c1, off, sf_off, ids)
    c3 = fp4_expert_gemm(group_mm, h_codes, h_sf, w2, w2_scales, r.problem_sizes2, r, x.dtype)
    return combine(c3, r.output_permutation, topk_weights)
