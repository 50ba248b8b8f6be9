"""The NVFP4 MoE layer (docs/SPEC-MOE.md §5.9.1): expert-weight quantizer and
the forward that chains lowbit.nvfp4_quant's experts quantization with
lowbit.nvfp4_mm's grouped GEMM."""

from __future__ import annotations

import torch

E4M3_MAX = 448.0
E2M1_MAX = 6.0


def quantize_experts_nvfp4(w: torch.Tensor):
    """Dense experts ``w [E, N, K]`` (bf16/fp16, K % 16 == 0) -> NVFP4:
    ``(packed uint8 [E, N, K/2], scales float8_e4m3fn [E, round_up(N,128),
    round_up(K/16,4)]`` (each expert 128x4-swizzled, padding zero),
    ``global_scales fp32 [E])`` with gs[e] = 448*6 / amax|w[e]| (an all-zero
    expert gets the scale of amax = 1). Dequantized: e2m1 * scale / gs[e].
    Computed on w's device without a host sync."""
    from lowbit.nvfp4_quant import scaled_fp4_quant

    E = w.shape[0]
    amax = w.reshape(E, -1).abs().amax(dim=1).float() if w.numel() else torch.ones(E)
    amax = torch.where(amax > 0, amax, torch.ones_like(amax))
    gs = (E4M3_MAX * E2M1_MAX) / amax
    parts = [scaled_fp4_quant(w[e].contiguous(), gs[e:e + 1]) for e in range(E)]
    packed = torch.stack([p for p, _ in parts]) if E else w.new_empty(
        (0, w.shape[1], w.shape[2] // 2), dtype=torch.uint8)
    scales = torch.stack([s for _, s in parts]) if E else w.new_empty(
        (0, 0, 0), dtype=torch.float8_e4m3fn)
    return packed, scales, gs


def _group_mm():
    import lowbit.nvfp4_mm as mm

    fn = getattr(mm, "cutlass_fp4_group_mm", None)
    if fn is None:
        raise NotImplementedError(
            "nvfp4_moe_forward needs lowbit.nvfp4_mm.cutlass_fp4_group_mm (SPEC-MOE §5.2), "
            "which this installed lowbit-nvfp4-mm does not provide yet")
    return fn


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
    E, n1, H = w13.shape[0], w13.shape[1], x.shape[1]
    inter = w2.shape[2] * 2
    if n1 != 2 * inter:
        raise ValueError(f"nvfp4_moe_forward: argument 'w13': expected [E, 2I = {2 * inter}, H/2] "
                         f"(gate || up, I from w2), got shape {list(w13.shape)}")
    r = route(topk_ids, E, inter, H)
    off, sf_off = r.expert_offsets, r.blockscale_offsets
    a_perm = shuffle_rows(x, r.input_permutation)
    a_codes, a_sf = scaled_fp4_experts_quant(a_perm, a1_gscale, off, sf_off)
    c1 = torch.empty(a_perm.shape[0], n1, dtype=x.dtype, device=x.device)
    group_mm(c1, a_codes, w13, a_sf, w13_scales, w13_alphas, r.problem_sizes1, off[:-1],
             sf_off[:-1])
    h_codes, h_sf = silu_and_mul_scaled_fp4_experts_quant(c1, a2_gscale, off, sf_off)
    c3 = torch.empty(a_perm.shape[0], H, dtype=x.dtype, device=x.device)
    group_mm(c3, h_codes, w2, h_sf, w2_scales, w2_alphas, r.problem_sizes2, off[:-1],
             sf_off[:-1])
    return combine(c3, r.output_permutation, topk_weights)
