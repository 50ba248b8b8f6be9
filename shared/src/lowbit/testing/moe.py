"""MoE reference math (pure torch), written from docs/SPEC-MOE.md §5.9 and
§5.10.1: routing (stable sort of the flat routes by expert), the problem
sizes, shuffle_rows, the weighted combine, a bf16 torch MoE on dequantized
weights, the per-token fp8 activation quantization of the W4A8 layer
(§5.9.3), MXFP4 block quantization (R2) and weight dequantization, and the
quantized MoE forwards computed route by route (the NVFP4 grouped GEMM's R5
is lowbit.testing.nvfp4_gemm.group_gemm_ref)."""

from __future__ import annotations

import torch

from .nvfp4 import dequantize_nvfp4
from .w4a8 import div_exact


def moe_mm_data_ref(topk_ids: torch.Tensor, num_experts: int, n: int, k: int,
                    is_gated: bool = True, with_blockscale: bool = True) -> dict:
    """get_cutlass_moe_mm_data (SPEC-MOE §5.9.4, lowbit semantics) on the host:
    every output as int32 CPU tensors, keyed by the op's argument names."""
    ids = topk_ids.reshape(-1).cpu().to(torch.int64)
    routes, E = ids.numel(), num_experts
    topk = topk_ids.shape[1] if topk_ids.dim() == 2 else 1
    valid = (ids >= 0) & (ids < E)
    bins = torch.where(valid, ids, torch.full_like(ids, E))
    order = torch.sort(bins, stable=True).indices           # position -> route
    counts = torch.bincount(bins, minlength=E + 1)[:E]
    z = torch.zeros(1, dtype=torch.int64)
    offsets = torch.cat([z, counts.cumsum(0)])
    n1 = 2 * n if is_gated else n
    swap = not with_blockscale and routes <= 64
    cols1 = [torch.full_like(counts, n1), counts] if swap else [counts, torch.full_like(counts, n1)]
    cols2 = [torch.full_like(counts, k), counts] if swap else [counts, torch.full_like(counts, k)]
    ps1 = torch.stack([*cols1, torch.full_like(counts, k)], 1)
    ps2 = torch.stack([*cols2, torch.full_like(counts, n)], 1)
    out_perm = torch.empty(routes, dtype=torch.int64)
    out_perm[order] = torch.arange(routes)
    sorted_valid = valid[order]
    in_perm = torch.where(sorted_valid, order // max(topk, 1), torch.full_like(order, -1))
    out_perm = torch.where(valid, out_perm, torch.full_like(out_perm, routes))
    res = {
        "expert_offsets": offsets, "problem_sizes1": ps1, "problem_sizes2": ps2,
        "input_permutation": in_perm, "output_permutation": out_perm,
        "sorted_expert_ids": torch.where(sorted_valid, bins[order], torch.full_like(order, -1)),
    }
    if with_blockscale:
        res["blockscale_offsets"] = torch.cat([z, ((counts + 127) // 128 * 128).cumsum(0)])
    return {key: v.to(torch.int32) for key, v in res.items()}


def problem_sizes_from_offsets_ref(offsets: torch.Tensor, n: int, k: int, swap_ab: bool):
    """get_cutlass_moe_mm_problem_sizes_from_expert_offsets: (ps1, ps2) int32 [E, 3]."""
    m = (offsets[1:] - offsets[:-1]).cpu().to(torch.int64)
    n2, kk, nn = (torch.full_like(m, v) for v in (2 * n, k, n))
    ps1 = torch.stack([n2, m, kk] if swap_ab else [m, n2, kk], 1)
    ps2 = torch.stack([kk, m, nn] if swap_ab else [m, kk, nn], 1)
    return ps1.to(torch.int32), ps2.to(torch.int32)


def shuffle_rows_ref(x: torch.Tensor, dst2src_map: torch.Tensor) -> torch.Tensor:
    """out[d] = x[map[d]]; a zero row where map[d] is not a row of x."""
    idx = dst2src_map.to(torch.int64)
    ok = (idx >= 0) & (idx < x.shape[0])
    out = torch.zeros(idx.numel(), x.shape[1], dtype=x.dtype, device=x.device)
    out.view(torch.uint8)[ok] = x.view(torch.uint8)[idx[ok]]
    return out


def combine_ref(c3: torch.Tensor, output_permutation: torch.Tensor,
                topk_weights: torch.Tensor) -> torch.Tensor:
    """SPEC-MOE §5.9.1 steps 7-8: gather each route's row (zero for invalid
    routes), then out[t] = sum_j row[t*topk + j] * w[t, j] in c3's dtype."""
    m, topk = topk_weights.shape
    rows = shuffle_rows_ref(c3, output_permutation).reshape(m, topk, -1)
    return (rows * topk_weights.to(c3.dtype).unsqueeze(-1)).sum(dim=1)


def dequantize_experts(packed: torch.Tensor, scales: torch.Tensor,
                       global_scales: torch.Tensor) -> torch.Tensor:
    """NVFP4 experts (uint8 [E, N, K/2], swizzled fp8 [E, Np, Kp], fp32 [E]) ->
    float32 [E, N, K]."""
    E, N, K = packed.shape[0], packed.shape[1], packed.shape[2] * 2
    return torch.stack([dequantize_nvfp4(packed[e], scales[e], global_scales[e], N, K)
                        for e in range(E)]) if E else torch.zeros(0, N, K)


def torch_moe_ref(x, topk_ids, topk_weights, w13, w2, is_gated: bool = True) -> torch.Tensor:
    """A plain torch MoE (float32 math, result in x's dtype): per route,
    silu(gate) * up through w13 [E, n1, H] and w2 [E, H, I]; invalid ids
    contribute nothing."""
    m, topk = topk_ids.shape
    E = w13.shape[0]
    out = torch.zeros(m, x.shape[1], dtype=torch.float32, device=x.device)
    for e in range(E):
        tok, slot = torch.nonzero(topk_ids == e, as_tuple=True)
        if tok.numel() == 0:
            continue
        h = x[tok].float() @ w13[e].float().T
        if is_gated:
            i = h.shape[1] // 2
            h = torch.nn.functional.silu(h[:, :i]) * h[:, i:]
        y = h @ w2[e].float().T
        out.index_add_(0, tok, y * topk_weights[tok, slot].float().unsqueeze(1))
    return out.to(x.dtype)


def quantized_moe_ref(x, topk_ids, topk_weights, deq13, deq2, qdq1, qdq2) -> torch.Tensor:
    """A quantized MoE forward (SPEC-MOE §5.9) computed route by route in
    torch: per expert e, its tokens' activations quantized and dequantized by
    ``qdq1(e, rows)`` (float64 result), GEMM1 in float64 on the dequantized
    weights deq13 [E, 2I, H] rounded to x's dtype, silu(gate) * up rounded to
    x's dtype, ``qdq2(e, y)``, GEMM2 on deq2 [E, H, I] rounded to x's dtype,
    weighted sum in x's dtype. Returns [m, H] in x's dtype (CPU)."""
    from .nvfp4 import silu_and_mul_ref

    m, topk = topk_ids.shape
    rows = torch.zeros(m, topk, x.shape[1], dtype=x.dtype)
    for e in range(deq13.shape[0]):
        tok, slot = torch.nonzero(topk_ids.cpu() == e, as_tuple=True)
        if tok.numel() == 0:
            continue
        h = (qdq1(e, x.cpu()[tok]) @ deq13[e].double().T).to(x.dtype)
        y = silu_and_mul_ref(h).to(x.dtype)
        rows[tok, slot] = (qdq2(e, y) @ deq2[e].double().T).to(x.dtype)
    return (rows * topk_weights.cpu().to(x.dtype).unsqueeze(-1)).sum(dim=1)


def nvfp4_moe_ref(x, topk_ids, topk_weights, deq13, deq2, a1_gscale, a2_gscale) -> torch.Tensor:
    """The NVFP4 MoE forward of SPEC-MOE §5.9.1 by :func:`quantized_moe_ref`:
    activations quantized to NVFP4 with the expert's global scale (SPEC
    §1.2)."""
    from .nvfp4 import quantize_nvfp4

    def qdq(gs):
        def f(e, v):
            p, s = quantize_nvfp4(v, gs[e].cpu())
            return dequantize_nvfp4(p, s, gs[e].cpu(), v.shape[0], v.shape[1]).double()
        return f

    return quantized_moe_ref(x, topk_ids, topk_weights, deq13, deq2, qdq(a1_gscale),
                             qdq(a2_gscale))


# ----------------------------------------------------------------- W4A8 activations
FP8_MAX = 448.0
FP8_MIN_SCALE = 1.0 / (448.0 * 512.0)


def per_token_fp8_ref(x: torch.Tensor, scale_ub: torch.Tensor | None = None):
    """vLLM's dynamic per-token fp8 quantization (SPEC-MOE §5.9.3 steps 1, 5):
    per row amax = max |x| ignoring NaN (min(amax, scale_ub) when given),
    scale = max(amax / 448, 1 / (448 * 512)), code = e4m3(clamp(x / scale,
    -448, 448)) with NaN -> +448 (the fminf/fmaxf clamp). Returns
    (float8_e4m3fn of x's shape, fp32 scales [rows, 1])."""
    xf = x.float().reshape(-1, x.shape[-1])
    amax = torch.where(torch.isnan(xf), 0.0, xf.abs()).amax(-1) if xf.shape[1] else \
        torch.zeros(xf.shape[0])
    if scale_ub is not None:
        amax = torch.minimum(amax, scale_ub.float().reshape(()).to(amax.device))
    scale = torch.clamp_min(div_exact(amax, FP8_MAX), FP8_MIN_SCALE)
    y = xf / scale.unsqueeze(1)
    y = torch.where(torch.isnan(y), FP8_MAX, y).clamp(-FP8_MAX, FP8_MAX)
    return y.to(torch.float8_e4m3fn).reshape(x.shape), scale.reshape(-1, 1)


def per_token_fp8_qdq(e, v: torch.Tensor) -> torch.Tensor:
    """Quantize-dequantize of :func:`per_token_fp8_ref` (float64), for
    :func:`quantized_moe_ref`."""
    q, s = per_token_fp8_ref(v)
    return q.double() * s.double()


# ----------------------------------------------------------------- MXFP4
MX_BLOCK = 32


def mx_qdq(x: torch.Tensor) -> torch.Tensor:
    """R2 (SPEC-MOE §5.1.1, §5.10.1) quantize-dequantize of finite rows whose
    length is a multiple of 32: per block amax (fp32 of the input dtype),
    E_r = ((bits(amax) + 2^21) >> 23) & 0xFF, s = E_r - 2 (0 when E_r <= 2:
    the block is zero), values e2m1(x * 2^(127 - s)) * 2^(s - 127). float64."""
    from .nvfp4 import decode_e2m1, round_to_e2m1_codes

    xf = x.float().reshape(x.shape[0], -1, MX_BLOCK)
    amax = xf.abs().amax(-1, keepdim=True)
    e_r = ((amax.view(torch.int32).long() + (1 << 21)) >> 23) & 0xFF
    s = torch.where(e_r > 2, e_r - 2, 0)
    codes = round_to_e2m1_codes(torch.ldexp(xf, (127 - s).float()))
    vals = torch.ldexp(decode_e2m1(codes).double(), (s - 127).double())
    return torch.where(s > 0, vals, 0.0).reshape(x.shape[0], -1)


def dequantize_experts_mxfp4(packed: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """MXFP4 experts (uint8 [E, N, K/2], swizzled E8M0 uint8 [E, Np, Kp]) ->
    float32 [E, N, K]: e2m1 * 2^(b - 127) with R3 unswizzling (V = 32)."""
    from .nvfp4 import decode_e2m1, unpack_fp4

    E, N, K = packed.shape[0], packed.shape[1], packed.shape[2] * 2
    packed, scales = packed.cpu(), scales.cpu()
    out = torch.empty(E, N, K)
    for e in range(E):
        b = scales[e].view(torch.uint8)
        mp, kp = b.shape
        lin = b.reshape(mp // 128, kp // 4, 32, 4, 4).permute(0, 3, 2, 1, 4).reshape(mp, kp)
        lin = lin[:N, :K // MX_BLOCK].long()
        vals = decode_e2m1(unpack_fp4(packed[e])).reshape(N, K // MX_BLOCK, MX_BLOCK)
        out[e] = torch.ldexp(vals, (lin - 127).float().unsqueeze(-1)).reshape(N, K)
    return out
