"""NVFP4 GEMM reference (pure torch), written from SPEC.md §1.3-1.4 and §3.

D[m, n] = alpha * sum_k (e2m1(A[m,k]) * sA[m,k/16]) * (e2m1(B[n,k]) * sB[n,k/16]) + bias[n]

Both operands are dequantized exactly (each e2m1 * e4m3 product is exact in
float32) with lowbit.testing.nvfp4, multiplied in float64 (stricter than the
SPEC's fp32, so the oracle's own rounding is negligible) and returned in fp32.
"""

from __future__ import annotations

import torch

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
