"""The NVFP4 MoE layer (docs/SPEC-MOE.md §5.9.1): expert-weight quantizer and
the forward that chains lowbit.nvfp4_quant's experts quantization with
lowbit.nvfp4_mm's grouped GEMM."""

from __future__ import annotations

import torch

from ._layer import check_gated, fp4_expert_gemm, need

E4M3_MAX = 448.0
E2M1_MAX = 6.0


def quantize_experts_nvfp4(w: torch.Tensor):
    """Dense experts ``w [E, N, K]`` (bf16/fp16, K % 16 == 0) -> NVFP4:
    ``(packed uint8 [E, N, K/2], scales float8_e4m3fn [E, round_up(N,128),
    round_up(K/16,4)]`` (each expert 128x4-swizzled, padding zero),
    ``global_scales fp32 [E])`` with gs[e] = 448*6 / amax|w[e]| (an all-zero
    expert gets the scale of amax = 1). Dequantized: e2m1 * scale / gs[e].
    Computed on w's device without a host sync."""
    from lowbit.nvfp4_quant import scaled_fp4_quant, swizzled_scale_shape

    E, N, K = w.shape
    flat = w.reshape(E, -1)
    # max |w| without an |w| temporary (15 GB for DeepSeek-R1's gate/up experts)
    amax = torch.maximum(flat.amax(1), -flat.amin(1)).float() if w.numel() else torch.ones(E)
    amax = torch.where(amax > 0, amax, torch.ones_like(amax))
    gs = (E4M3_MAX * E2M1_MAX) / amax
    packed = torch.empty(E, N, K // 2, dtype=torch.uint8, device=w.device)
    scales = torch.empty(E, *swizzled_scale_shape(N, K), dtype=torch.float8_e4m3fn,
                         device=w.device)
    for e in range(E):
        packed[e], scales[e] = scaled_fp4_quant(w[e].contiguous(), gs[e:e + 1])
    return packed, scales, gs


def _group_mm():
    return need("nvfp4", "cutlass_fp4_group_mm", "nvfp4_moe_forward (SPEC-MOE §5.2)")


def nvfp4_moe_forward(x: torch.Tensor, topk_ids: torch.Tensor, topk_weights: torch.Tensor,
                      w13: torch.Tensor, w13_scales: torch.Tensor, w13_alphas: torch.Tensor,
                      w2: torch.Tensor, w2_scales: torch.Tensor, w2_alphas: torch.Tensor,
                      a1_gscale: torch.Tensor, a2_gscale: torch.Tensor) -> torch.Tensor:
    """NVFP4 MoE forward, SiLU-gated (vLLM ``run_cutlass_moe_fp4``, SPEC-MOE §5.9.1).

    x ``[m, H]`` bf16/fp16 (also the output dtype); topk_ids ``[m, topk]`` int32/
    int64 (ids outside [0, E) contribute nothing); topk_weights ``[m, topk]``;
    w13 uint8 ``[E, 2I, H/2]`` (gate || up) with swizzled scales
    ``[E, round_up(2I,128), round_up(H/16,4)]``; w2 uint8 ``[E, H, I/2]`` with its
    scales; alphas fp32 ``[E]`` = 1 / (activation gs * weight gs); a1_gscale,
    a2_gscale fp32 ``[E]``: global scales of the activations quantized for
    GEMM1 and GEMM2. Returns ``[m, H]``.
    """
    from lowbit.nvfp4_quant import (scaled_fp4_experts_quant,
                                    silu_and_mul_scaled_fp4_experts_quant)

    from . import combine, route, shuffle_rows

    group_mm = _group_mm()
    E, H, inter = w13.shape[0], x.shape[1], w2.shape[2] * 2
    check_gated("nvfp4_moe_forward", w13.shape[1], inter, w13.shape)
    r = route(topk_ids, E, inter, H)
    off, sf_off = r.expert_offsets, r.blockscale_offsets
    a_codes, a_sf = scaled_fp4_experts_quant(shuffle_rows(x, r.input_permutation), a1_gscale,
                                             off, sf_off)
    c1 = fp4_expert_gemm(group_mm, a_codes, a_sf, w13, w13_scales, r.problem_sizes1, r, x.dtype,
                         w13_alphas)
    h_codes, h_sf = silu_and_mul_scaled_fp4_experts_quant(c1, a2_gscale, off, sf_off)
    c3 = fp4_expert_gemm(group_mm, h_codes, h_sf, w2, w2_scales, r.problem_sizes2, r, x.dtype,
                         w2_alphas)
    return combine(c3, r.output_permutation, topk_weights)
