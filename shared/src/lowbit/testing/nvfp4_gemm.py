"""NVFP4 GEMM reference (pure torch), written from SPEC.md §1.3-1.4 and §3.

D[m, n] = alpha * sum_k (e2m1(A[m,k]) * sA[m,k/16]) * (e2m1(B[n,k]) * sB[n,k/16]) + bias[n]

Both operands are dequantized exactly (each e2m1 * e4m3 product is exact in
float32) with lowbit.testing.nvfp4, multiplied in float64 (stricter than the
SPEC's fp32, so the oracle's own rounding is negligible) and returned in fp32.
"""

from __future__ import annotations

import torch

from .experts import byte_filler, group_metadata
from .nvfp4 import (
    decode_e2m1,
    quantize_nvfp4,
    round_up,
    swizzle_scales,
    unpack_fp4,
    unswizzle_scales,
)


def dequantize_operand(packed: torch.Tensor, scales: torch.Tensor, rows: int, k: int) -> torch.Tensor:
    """packed uint8 [rows, k/2] + swizzled e4m3 scales -> float32 [rows, k]
    (no global scale: e2m1 * sf exactly)."""
    if rows == 0 or k == 0:
        return torch.zeros(rows, k, dtype=torch.float32, device=packed.device)
    vals = decode_e2m1(unpack_fp4(packed.reshape(rows, k // 2))).reshape(rows, k // 16, 16)
    sf = unswizzle_scales(scales, rows, k).float()
    return (vals * sf.unsqueeze(-1)).reshape(rows, k)


def nvfp4_gemm_ref(a, b, block_scale_a, block_scale_b, alpha, bias=None) -> torch.Tensor:
    """Reference of cutlass_scaled_fp4_mm (SPEC §1.4): float32 [M, N] before
    the output rounding; bias: optional [N] (the output dtype's values)."""
    m, k = a.shape[0], a.shape[1] * 2
    n = b.shape[0]
    da = dequantize_operand(a, block_scale_a, m, k).double()
    db = dequantize_operand(b, block_scale_b, n, k).double()
    d = alpha.double().reshape(()) * (da @ db.T)
    if bias is not None:
        d = d + bias.double().reshape(1, n)
    return d.float()


def relative_error(d: torch.Tensor, ref: torch.Tensor) -> float:
    """||D - ref|| / ||ref|| in float64 (SPEC §3 metric); NaN anywhere -> inf."""
    d64, r64 = d.double(), ref.double()
    if not torch.isfinite(d64).all():
        return float("inf")
    den = r64.norm().item()
    num = (d64 - r64).norm().item()
    return num / den if den > 0 else num


def random_operand(rows: int, k: int, device, generator: torch.Generator | None = None):
    """Random valid NVFP4 operand: random packed bytes (every code, both
    signs) and random positive e4m3 scale bytes in [2^-6, 2^6]. Swizzled scale
    padding is 0x00. Returns (packed uint8 [rows, k/2], scales fp8 swizzled)."""
    g = generator
    packed = torch.randint(0, 256, (rows, k // 2), dtype=torch.uint8, generator=g).to(device)
    # e4m3 byte = (exp << 3) | man; exp 1..13 keeps scales in [2^-6, 2^6].
    exp = torch.randint(1, 14, (rows, k // 16), dtype=torch.uint8, generator=g)
    man = torch.randint(0, 8, (rows, k // 16), dtype=torch.uint8, generator=g)
    lin = ((exp << 3) | man).view(torch.float8_e4m3fn)
    return packed, swizzle_scales(lin).to(device)


def quantized_operand(rows: int, k: int, device, generator: torch.Generator | None = None):
    """Operand from quantizing random normal data (SPEC §1.2), as a model sees
    it. Returns (packed, swizzled scales, global scale)."""
    x = torch.randn(rows, k, generator=generator).to(device)
    amax = x.abs().amax().clamp_min(1e-6) if x.numel() else torch.ones((), device=device)
    gs = torch.tensor([448.0 * 6.0], device=device) / amax
    packed, sf = quantize_nvfp4(x, gs)
    return packed, sf, gs


def swizzled_shape(rows: int, k: int) -> tuple[int, int]:
    return round_up(rows, 128), round_up(k // 16, 4)


# ------------------------------------------------------------ grouped (MoE)
def group_gemm_ref(a, b, a_blockscale, b_blockscales, alphas, problem_sizes, expert_offsets, sf_offsets):
    """R5 of docs/SPEC-MOE.md §5.10.1 for cutlass_fp4_group_mm's arguments.

    Per expert e (metadata copied to the host): its rows [off, off + m_e) of
    a dequantized with the swizzled region at scale row sf_off[e] (byte
    sf_off[e] * Kp, Kp = round_up(K/16, 4)), b[e] with its [Np, Kp] block;
    alpha[e] * A @ B.T in float64. Returns (float64 [M, N], bool [M] rows
    covered by an expert); uncovered rows are 0 in the first tensor."""
    m_total, k = a.shape[0], a.shape[1] * 2
    n = b.shape[1]
    kp = round_up(k // 16, 4)
    sa = a_blockscale.cpu().reshape(-1).view(torch.uint8)
    ps, off, sfo = problem_sizes.cpu().long(), expert_offsets.cpu().long(), sf_offsets.cpu().long()
    ref = torch.zeros(m_total, n, dtype=torch.float64)
    covered = torch.zeros(m_total, dtype=torch.bool)
    for e in range(b.shape[0]):
        m_e, lo, s0 = int(ps[e, 0]), int(off[e]), int(sfo[e])
        if m_e == 0:
            continue
        region = sa[s0 * kp:(s0 + round_up(m_e, 128)) * kp].view(torch.float8_e4m3fn).reshape(-1, kp)
        da = dequantize_operand(a[lo:lo + m_e].cpu(), region, m_e, k).double()
        db = dequantize_operand(b[e].cpu(), b_blockscales[e].cpu(), n, k).double()
        ref[lo:lo + m_e] = float(alphas[e]) * (da @ db.T)
        covered[lo:lo + m_e] = True
    return ref, covered


def random_group_problem(counts, n: int, k: int, device, generator: torch.Generator | None = None,
                         garbage_padding: bool = True, gap_rows: int = 0):
    """Random cutlass_fp4_group_mm operands for expert row counts `counts`
    (zeros allowed). Scale regions at canonical sf_offsets (plus `gap_rows`
    unused scale rows between regions); padding rows/columns of every region
    and of b_blockscales hold random bytes when garbage_padding (the op must
    ignore them). Returns a dict keyed by the op's argument names (no out)."""
    g = generator
    E, kp, np_ = len(counts), round_up(k // 16, 4), round_up(n, 128)
    m_total = sum(counts)
    meta, rows = group_metadata(counts, n, k, gap_rows)
    offs, sfs = meta["expert_offsets"].tolist(), meta["sf_offsets"].tolist()
    fill = byte_filler(g, garbage_padding)
    a_scale = fill((max(rows, 128), kp))
    a = torch.empty(m_total, k // 2, dtype=torch.uint8)
    for c, lo, s0 in zip(counts, offs, sfs):
        if c == 0:
            continue
        packed, sf = random_operand(c, k, "cpu", g)
        a[lo:lo + c] = packed
        real = unswizzle_scales(sf, c, k).view(torch.uint8)  # [c, k/16]
        region = fill((round_up(c, 128), kp))
        region[:c, :k // 16] = real
        a_scale[s0:s0 + round_up(c, 128)] = swizzle_scales(region.view(torch.float8_e4m3fn)).view(torch.uint8)
    b = torch.empty(E, n, k // 2, dtype=torch.uint8)
    b_scale = torch.empty(E, np_, kp, dtype=torch.uint8)
    for e in range(E):
        packed, sf = random_operand(n, k, "cpu", g)
        b[e] = packed
        block = fill((np_, kp))
        block[:n, :k // 16] = unswizzle_scales(sf, n, k).view(torch.uint8)
        b_scale[e] = swizzle_scales(block.view(torch.float8_e4m3fn)).view(torch.uint8)
    alphas = torch.rand(E, generator=g) * 2 ** -8 + 2 ** -9
    args = {"a": a, "b": b, "a_blockscale": a_scale.view(torch.float8_e4m3fn),
            "b_blockscales": b_scale.view(torch.float8_e4m3fn), "alphas": alphas, **meta}
    return {key: v.to(device) for key, v in args.items()}
