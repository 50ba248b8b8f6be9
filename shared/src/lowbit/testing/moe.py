"""MoE reference math (pure torch), written from docs/SPEC-MOE.md §5.9 and
§5.10.1: routing (stable sort of the flat routes by expert), the problem
sizes, shuffle_rows, the weighted combine and a bf16 torch MoE on
dequantized weights (the NVFP4 grouped GEMM's R5 is
lowbit.testing.nvfp4_gemm.group_gemm_ref)."""

from __future__ import annotations

import torch

from .nvfp4 import dequantize_nvfp4


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


def nvfp4_moe_ref(x, topk_ids, topk_weights, deq13, deq2, a1_gscale, a2_gscale) -> torch.Tensor:
    """The NVFP4 MoE forward of SPEC-MOE §5.9.1 computed route by route in
    torch: activations quantized to NVFP4 with the expert's global scale (SPEC
    §1.2) and dequantized, GEMMs in float64 on the dequantized weights deq13
    [E, 2I, H], deq2 [E, H, I] rounded to x's dtype, silu(gate) * up rounded to
    x's dtype, weighted sum in x's dtype. Returns [m, H] in x's dtype."""
    from .nvfp4 import quantize_nvfp4, silu_and_mul_ref

    m, topk = topk_ids.shape
    rows = torch.zeros(m, topk, x.shape[1], dtype=x.dtype)

    def qdq(v, gs):
        p, s = quantize_nvfp4(v, gs)
        return dequantize_nvfp4(p, s, gs, v.shape[0], v.shape[1]).double()

    for e in range(deq13.shape[0]):
        tok, slot = torch.nonzero(topk_ids.cpu() == e, as_tuple=True)
        if tok.numel() == 0:
            continue
        h = (qdq(x.cpu()[tok], a1_gscale[e].cpu()) @ deq13[e].double().T).to(x.dtype)
        y = silu_and_mul_ref(h)
        c3 = (qdq(y, a2_gscale[e].cpu()) @ deq2[e].double().T).to(x.dtype)
        rows[tok, slot] = c3
    return (rows * topk_weights.cpu().to(x.dtype).unsqueeze(-1)).sum(dim=1)
