"""NVFP4 reference (pure torch), written from docs/SPEC.md §1.1-1.3 and §2.1.

Independent of every kernel: e2m1 rounding is done with the SPEC's threshold
table, the e4m3 block scale with torch's own float8_e4m3fn conversion, the
swizzle with the SPEC's reshape/permute. Everything runs in float32 on the
tensors' device (CPU or CUDA); slow but obviously right.

Conventions fixed here (SPEC §1.2 plus what it leaves implicit):
* S = gs * (amax * r6) with r6 = fp32(1/6), and out_scale = 1 / (sf_f * (1 / gs)),
  0 when sf_f == 0 (vLLM v0.34.0's oracle arithmetic, SPEC §1.2): each step one
  IEEE fp32 operation, the reciprocals correctly rounded (written as tensor /
  tensor, see _quantize_blocks).
* The sign bit of a code is the sign bit of x * out_scale (IEEE: -0.1 -> -0,
  code 0b1000), what the hardware cvt.rn.satfinite.e2m1x2.f32 produces.
* A block whose scale is 0 (all-zero or underflowing block) or NaN gets every
  code 0 ("All-zero block: sf = 0 and every code 0"); a block containing NaN
  gets scale byte 0x7F and codes 0; Inf saturates (scale 448, codes +-6).
"""

from __future__ import annotations

import torch

BLOCK = 16
E4M3_MAX = 448.0
E2M1_MAX = 6.0

# Value of each 4-bit code (bit 3 = sign, bits 0..2 index the magnitudes).
E2M1_VALUES = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0,
               -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0]

# |x| thresholds of SPEC §1.1: (value, inclusive). |x| > t (or >= t when
# inclusive) moves one magnitude index up; the inclusive ones are the ties
# that round up to an even index.
_THRESHOLDS = [(0.25, False), (0.75, True), (1.25, False), (1.75, True),
               (2.5, False), (3.5, True), (5.0, False)]


def round_up(a: int, b: int) -> int:
    return (a + b - 1) // b * b


def round_to_e2m1_codes(x: torch.Tensor) -> torch.Tensor:
    """float32 -> e2m1 codes (uint8 0..15), RNE, saturating at +-6.
    NaN maps to code 0 (callers handle NaN blocks before this)."""
    x = x.float()
    a = x.abs()
    idx = torch.zeros(x.shape, dtype=torch.uint8, device=x.device)
    for t, inclusive in _THRESHOLDS:
        idx += (a >= t if inclusive else a > t).to(torch.uint8)
    sign = torch.signbit(x) & ~torch.isnan(x)
    return idx | (sign.to(torch.uint8) << 3)


def decode_e2m1(codes: torch.Tensor) -> torch.Tensor:
    table = torch.tensor(E2M1_VALUES, dtype=torch.float32, device=codes.device)
    return table[codes.long()]


def pack_fp4(codes: torch.Tensor) -> torch.Tensor:
    """codes uint8 [..., n] (0..15) -> uint8 [..., n/2]; even element in the low nibble."""
    assert codes.shape[-1] % 2 == 0
    c = codes.to(torch.uint8)
    return c[..., 0::2] | (c[..., 1::2] << 4)


def unpack_fp4(packed: torch.Tensor) -> torch.Tensor:
    """uint8 [..., n/2] -> codes uint8 [..., n]."""
    p = packed.view(torch.uint8)
    lo, hi = p & 0xF, p >> 4
    return torch.stack([lo, hi], dim=-1).reshape(*p.shape[:-1], p.shape[-1] * 2)


def swizzled_scale_shape(m: int, n: int) -> tuple[int, int]:
    """[Mp, Kp] of the swizzled 128x4 scale buffer of an [m, n] input."""
    return round_up(m, 128), round_up(n // BLOCK, 4)


def swizzle_scales(linear: torch.Tensor) -> torch.Tensor:
    """Linear scales [m, n/16] (float8_e4m3fn or uint8) -> swizzled
    [round_up(m,128), round_up(n/16,4)] of the same dtype; padding is 0x00."""
    m, k = linear.shape
    mp, kp = round_up(m, 128), round_up(k, 4)
    b = linear.view(torch.uint8)
    padded = torch.zeros(mp, kp, dtype=torch.uint8, device=linear.device)
    padded[:m, :k] = b
    swz = padded.reshape(mp // 128, 4, 32, kp // 4, 4).permute(0, 3, 2, 1, 4)
    return swz.contiguous().reshape(mp, kp).view(linear.dtype)


def unswizzle_scales(swz: torch.Tensor, m: int, n: int) -> torch.Tensor:
    """Swizzled [Mp, Kp] (any dtype of 1 byte, or int32 [Mp, Kp/4]) -> linear
    [m, n/16] float8_e4m3fn. `n` is the number of input elements per row."""
    mp, kp = swizzled_scale_shape(m, n)
    b = swz.contiguous().view(torch.uint8).reshape(-1)
    assert b.numel() == mp * kp, (tuple(swz.shape), mp, kp)
    lin = b.reshape(mp // 128, kp // 4, 32, 4, 4).permute(0, 3, 2, 1, 4)
    lin = lin.reshape(mp, kp)[:m, : n // BLOCK]
    return lin.contiguous().view(torch.float8_e4m3fn)


def swizzled_offset(r: int, c: int, kp: int) -> int:
    """Byte offset of (row r, scale column c) in a swizzled buffer of Kp columns."""
    return ((r // 128) * (kp // 4) + c // 4) * 512 + (r % 32) * 16 + ((r // 32) % 4) * 4 + c % 4


def global_scale_for(x: torch.Tensor) -> torch.Tensor:
    """The usual global scale 448*6/amax(|x|), fp32 one-element tensor on x's device."""
    amax = x.float().abs().max().reshape(1)
    return (E4M3_MAX * E2M1_MAX) / amax


def _quantize_blocks(y: torch.Tensor, gs: torch.Tensor):
    """y float32 [m, n]; gs float32 scalar or [m, 1]. Returns (codes [m, n],
    scale bytes uint8 [m, n/16])."""
    m, n = y.shape
    b = y.reshape(m, n // BLOCK, BLOCK)
    has_nan = torch.isnan(b).any(dim=-1)
    amax = torch.where(torch.isnan(b), torch.zeros_like(b), b.abs()).amax(dim=-1)
    gs = gs.float().reshape(-1, 1) if gs.numel() > 1 else gs.float().reshape(())
    one = torch.ones((), dtype=torch.float32, device=y.device)
    # fp32 tensors only, tensor / tensor: torch on CUDA turns "tensor / python
    # scalar" into a multiplication by an approximate reciprocal.
    r6 = one / torch.full((), 6.0, dtype=torch.float32, device=y.device)  # fp32(1/6)
    s = gs * (amax * r6)
    sf = s.clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn)
    sf_f = sf.float()
    t = sf_f * (one / gs)
    out_scale = torch.where(sf_f != 0, one / t, torch.zeros_like(sf_f))
    codes = round_to_e2m1_codes(b * out_scale.unsqueeze(-1))
    zero_codes = has_nan | (sf_f == 0) | torch.isnan(sf_f)
    codes = torch.where(zero_codes.unsqueeze(-1), torch.zeros_like(codes), codes)
    sf_bytes = sf.view(torch.uint8)
    sf_bytes = torch.where(has_nan, torch.full_like(sf_bytes, 0x7F), sf_bytes)
    return codes.reshape(m, n), sf_bytes


def quantize_nvfp4(x: torch.Tensor, global_scale, swizzled: bool = True):
    """x [..., n] (any float dtype) -> (packed uint8 [m, n/2], scales
    float8_e4m3fn: swizzled [Mp, Kp] or linear [m, n/16]). SPEC §1.2."""
    n = x.shape[-1]
    assert n % BLOCK == 0
    y = x.reshape(-1, n).float()
    gs = torch.as_tensor(global_scale, dtype=torch.float32, device=x.device).reshape(())
    codes, sf = _quantize_blocks(y, gs)
    sf = sf.view(torch.float8_e4m3fn)
    return pack_fp4(codes), (swizzle_scales(sf) if swizzled else sf)


def dequantize_nvfp4(packed, scales, global_scale, m: int, n: int, swizzled: bool = True):
    """Inverse of quantize_nvfp4 up to rounding: float32 [m, n]."""
    codes = unpack_fp4(packed.reshape(m, n // 2))
    lin = unswizzle_scales(scales, m, n) if swizzled else scales.view(torch.float8_e4m3fn).reshape(m, n // BLOCK)
    gs = torch.as_tensor(global_scale, dtype=torch.float32, device=packed.device).reshape(())
    vals = decode_e2m1(codes).reshape(m, n // BLOCK, BLOCK)
    return (vals * (lin.float() / gs).unsqueeze(-1)).reshape(m, n)


def silu_and_mul_ref(x: torch.Tensor) -> torch.Tensor:
    """x [..., 2d] = gate || up -> silu(gate) * up computed in float32, then
    rounded to x's dtype (bf16/fp16, nearest even) as vLLM does before
    quantizing (SPEC §2.1); returned as float32."""
    d = x.shape[-1] // 2
    g, u = x[..., :d].float(), x[..., d:].float()
    return (g / (1.0 + torch.exp(-g)) * u).to(x.dtype).float()


def quantize_nvfp4_experts(x, global_scales, offsets, sf_offsets, scale_rows: int | None = None):
    """MoE reference (SPEC §2.1 scaled_fp4_experts_quant). x [m_topk, k];
    global_scales fp32 [E]; offsets / sf_offsets int [E+1] (any device).
    Returns (packed uint8 [m_topk, k/2], swizzled scale bytes float8_e4m3fn
    [scale_rows, Kp], rows_written bool [m_topk]). Entries the op must not
    write (orphan rows, rows past sf_offsets[E]) are left 0 here; callers
    compare only what the op writes."""
    m_topk, k = x.shape
    kp = round_up(k // BLOCK, 4)
    off = [int(v) for v in offsets.cpu()]
    sfo = [int(v) for v in sf_offsets.cpu()]
    E = len(off) - 1
    rows = scale_rows if scale_rows is not None else sfo[-1]
    packed = torch.zeros(m_topk, k // 2, dtype=torch.uint8, device=x.device)
    scales = torch.zeros(rows * kp, dtype=torch.uint8, device=x.device)
    written = torch.zeros(m_topk, dtype=torch.bool, device=x.device)
    for e in range(E):
        lo, hi = off[e], off[e + 1]
        if hi <= lo:
            continue
        p, s = quantize_nvfp4(x[lo:hi], global_scales[e], swizzled=True)
        packed[lo:hi] = p
        written[lo:hi] = True
        start = sfo[e] * kp
        region = s.view(torch.uint8).reshape(-1)
        scales[start:start + region.numel()] = region
    return packed, scales.reshape(rows, kp).view(torch.float8_e4m3fn), written


def as_bytes(t: torch.Tensor) -> torch.Tensor:
    """Any tensor's storage as contiguous uint8 (scale buffers of any dtype)."""
    return t.contiguous().view(torch.uint8)


def assert_bytes_equal(got: torch.Tensor, want: torch.Tensor, what: str) -> None:
    """Bit-exact comparison of two tensors' bytes (on the CPU), naming the first
    differing positions."""
    g, w = as_bytes(got).cpu(), as_bytes(want).cpu()
    assert g.shape == w.shape, (what, g.shape, w.shape)
    bad = (g != w).nonzero()
    assert bad.numel() == 0, f"{what}: {bad.shape[0]} bytes differ, first at {bad[:4].tolist()}"
