"""MXFP4 reference (pure torch), written from docs/SPEC-MOE.md §5.1.1-5.1.3,
§5.3-5.5 and the oracles R2-R5 of §5.10.1.

MXFP4: e2m1 codes (SPEC.md §1.1 rounding, shared with NVFP4), one E8M0 scale
byte per 32 elements, no global scale. The scale rule is computed from the
fp32 bit pattern of the block amax exactly as §5.1.1 states it; the codes are
e2m1(ldexp(x, 127 - s)). Independent of every kernel; slow but obviously right.

lowbit's rules for special blocks (§5.1.1): a block containing NaN gets scale
byte 0xFF and all codes 0; Inf follows vLLM (amax = Inf -> byte 253, Inf codes
saturate to +-6); s = 0 (amax < 1.75 * 2^-125, zeros included) gives all codes 0.
"""

from __future__ import annotations

import torch

from .experts import byte_filler, group_metadata
from .nvfp4 import decode_e2m1, pack_fp4, round_to_e2m1_codes, round_up, silu_and_mul_ref, unpack_fp4

BLOCK = 32
NAN_SCALE = 0xFF

__all__ = [
    "BLOCK", "NAN_SCALE", "scale_bytes", "quantize_mxfp4", "swizzle", "unswizzle", "scale_values",
    "dequantize_mxfp4", "quantize_mxfp4_experts", "group_mm_ref", "random_group_problem", "silu_and_mul_ref", "pack_fp4", "unpack_fp4",
]


def scale_bytes(amax: torch.Tensor) -> torch.Tensor:
    """E8M0 scale byte of blocks with fp32 maxima ``amax`` (finite or Inf, >= 0):
    E_r = ((bits + 2^21) >> 23) & 0xFF, s = E_r - 2 if E_r > 2 else 0 (§5.1.1 steps 1-2)."""
    bits = amax.float().contiguous().view(torch.int32).to(torch.int64)
    er = ((bits + (1 << 21)) >> 23) & 0xFF
    return torch.where(er > 2, er - 2, torch.zeros_like(er)).clamp(max=254).to(torch.uint8)


def _quantize_blocks(y: torch.Tensor):
    """y float32 [m, k] -> (codes uint8 [m, k], scale bytes uint8 [m, k/32])."""
    m, k = y.shape
    b = y.reshape(m, k // BLOCK, BLOCK)
    nan = torch.isnan(b)
    has_nan = nan.any(dim=-1)
    amax = torch.where(nan, torch.zeros_like(b), b.abs()).amax(dim=-1)
    s = scale_bytes(amax)
    codes = round_to_e2m1_codes(torch.ldexp(b, (127 - s.to(torch.int32)).unsqueeze(-1).float()))
    zero = has_nan | (s == 0)
    codes = torch.where(zero.unsqueeze(-1), torch.zeros_like(codes), codes)
    s = torch.where(has_nan, torch.full_like(s, NAN_SCALE), s)
    return codes.reshape(m, k), s


def quantize_mxfp4(x: torch.Tensor, swizzled: bool = True):
    """x [m, k] (any float dtype; values taken exactly in fp32) -> (packed uint8
    [m, k/2], scale bytes uint8: swizzled [round_up(m,128), round_up(k/32,4)]
    with zero padding, or linear [m, k/32])."""
    m, k = x.shape
    assert k % BLOCK == 0
    codes, s = _quantize_blocks(x.float())
    return pack_fp4(codes), (swizzle(s) if swizzled else s)


def swizzle(linear: torch.Tensor) -> torch.Tensor:
    """Linear scale bytes [rows, cols] -> the 128x4 swizzled layout
    [round_up(rows,128), round_up(cols,4)] uint8, padding 0 (§5.1.2, R3)."""
    rows, cols = linear.shape
    padded = torch.zeros(round_up(rows, 128), round_up(cols, 4), dtype=torch.uint8, device=linear.device)
    padded[:rows, :cols] = linear.view(torch.uint8)
    return _swizzle_whole(padded)


def unswizzle(swz: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """Inverse of :func:`swizzle` (any 1-byte or int32 view of the bytes of
    round_up(rows,128) x round_up(cols,4)): linear uint8 [rows, cols]."""
    rp, cp = round_up(rows, 128), round_up(cols, 4)
    b = swz.contiguous().view(torch.uint8).reshape(-1)
    assert b.numel() == rp * cp, (tuple(swz.shape), rp, cp)
    lin = b.reshape(rp // 128, cp // 4, 32, 4, 4).permute(0, 3, 2, 1, 4).reshape(rp, cp)
    return lin[:rows, :cols].contiguous()


def scale_values(s: torch.Tensor) -> torch.Tensor:
    """E8M0 bytes -> float64 2^(b - 127); 0xFF -> NaN."""
    v = torch.ldexp(torch.ones(s.shape, dtype=torch.float64, device=s.device), s.to(torch.float64) - 127)
    return torch.where(s == NAN_SCALE, torch.full_like(v, float("nan")), v)


def dequantize_mxfp4(packed: torch.Tensor, scales_linear: torch.Tensor) -> torch.Tensor:
    """packed uint8 [m, k/2] + linear scale bytes [m, k/32] -> float64 [m, k]."""
    m = packed.shape[0]
    vals = decode_e2m1(unpack_fp4(packed)).double().reshape(m, -1, BLOCK)
    return (vals * scale_values(scales_linear).unsqueeze(-1)).reshape(m, -1)


def quantize_mxfp4_experts(x: torch.Tensor, offsets, sf_offsets, scale_rows: int | None = None):
    """R4 (§5.4): x [m, k] (already the quantized values: apply
    :func:`silu_and_mul_ref` first for the fused op); offsets / sf_offsets
    [E+1]. Returns (packed uint8 [m, k/2], scale bytes uint8 [scale_rows, Kp],
    rows_written bool [m], scale_written bool [scale_rows]). Entries the op must
    not write are 0 here; compare only where the masks say written."""
    m, k = x.shape
    kp = round_up(k // BLOCK, 4)
    off = [int(v) for v in torch.as_tensor(offsets).cpu()]
    sfo = [int(v) for v in torch.as_tensor(sf_offsets).cpu()]
    rows = scale_rows if scale_rows is not None else (sfo[-1] if sfo else 0)
    packed = torch.zeros(m, k // 2, dtype=torch.uint8)
    scales = torch.zeros(rows, kp, dtype=torch.uint8)
    written = torch.zeros(m, dtype=torch.bool)
    sf_written = torch.zeros(rows, dtype=torch.bool)
    xc = x.cpu()
    for e in range(len(off) - 1):
        lo, hi = off[e], off[e + 1]
        if hi <= lo:
            continue
        p, s = quantize_mxfp4(xc[lo:hi], swizzled=True)
        packed[lo:hi] = p
        written[lo:hi] = True
        scales[sfo[e]:sfo[e] + s.shape[0]] = s
        sf_written[sfo[e]:sfo[e] + s.shape[0]] = True
    return packed, scales, written, sf_written


def group_mm_ref(a, b, a_blockscale, b_blockscales, problem_sizes, expert_offsets, sf_offsets, out_dtype,
                 sentinel: float = float("nan")):
    """R5 (§5.3): out [M, N] of out_dtype on the CPU, rows outside every expert =
    sentinel. Per expert: dequantized A rows (scales from the region at scale
    row sf_offsets[e], Kp bytes per row) times dequantized B[e] (scales at
    [e, :N]) in float64, then cast."""
    M, E, N, K = a.shape[0], b.shape[0], b.shape[1], 2 * b.shape[2]
    kp = round_up(K // BLOCK, 4)
    a, b = a.cpu(), b.cpu()
    sa = a_blockscale.cpu().contiguous().view(torch.uint8).reshape(-1)
    sb = b_blockscales.cpu().contiguous().view(torch.uint8).reshape(E, -1)
    ps, off, sfo = problem_sizes.cpu().tolist(), expert_offsets.cpu().tolist(), sf_offsets.cpu().tolist()
    out = torch.full((M, N), sentinel, dtype=torch.float64)
    for e in range(E):
        m = ps[e][0]
        if m <= 0:
            continue
        mp = round_up(m, 128)
        sa_e = unswizzle(sa[sfo[e] * kp:(sfo[e] + mp) * kp], m, K // BLOCK)
        sb_e = unswizzle(sb[e], N, K // BLOCK)
        A = dequantize_mxfp4(a[off[e]:off[e] + m], sa_e)
        B = dequantize_mxfp4(b[e], sb_e)
        out[off[e]:off[e] + m] = A @ B.T
    return out.to(out_dtype)


def random_group_problem(counts, n: int, k: int, device, generator: torch.Generator | None = None,
                         garbage_padding: bool = True, gap_rows: int = 0):
    """Random cutlass_mxfp4_group_mm operands for expert row counts `counts`
    (zeros allowed): random code bytes (every code, both signs) and random E8M0
    bytes in [116, 128] (scales 2^-11 .. 2^1: fp16 outputs stay finite). Scale regions at canonical
    sf_offsets plus `gap_rows` unused rows between regions; the padding
    rows/columns of every region and of b_blockscales hold random bytes (0xFF
    included) when garbage_padding: the op must ignore them. Returns a dict keyed
    by the op's argument names (no out)."""
    g = generator
    E, kp, np_, nb = len(counts), round_up(k // BLOCK, 4), round_up(n, 128), k // BLOCK
    meta, s = group_metadata(counts, n, k, gap_rows)
    o, sfs = sum(counts), meta["sf_offsets"].tolist()
    fill = byte_filler(g, garbage_padding)
    real_scales = lambda rows: torch.randint(116, 129, (rows, nb), dtype=torch.uint8, generator=g)  # noqa: E731
    a = torch.randint(0, 256, (o, k // 2), dtype=torch.uint8, generator=g)
    a_scale = fill((max(s, 128), kp))
    for c, s0 in zip(counts, sfs):
        region = fill((round_up(c, 128), kp))
        region[:c, :nb] = real_scales(c)
        a_scale[s0:s0 + region.shape[0]] = _swizzle_whole(region)
    b = torch.randint(0, 256, (E, n, k // 2), dtype=torch.uint8, generator=g)
    b_scale = torch.empty(E, np_, kp, dtype=torch.uint8)
    for e in range(E):
        block = fill((np_, kp))
        block[:n, :nb] = real_scales(n)
        b_scale[e] = _swizzle_whole(block)
    args = {"a": a, "b": b, "a_blockscale": a_scale, "b_blockscales": b_scale, **meta}
    return {key: v.to(device) for key, v in args.items()}


def _swizzle_whole(block: torch.Tensor) -> torch.Tensor:
    """Swizzle a [128·t, 4·u] byte matrix including its (garbage) padding."""
    rp, cp = block.shape
    return block.reshape(rp // 128, 4, 32, cp // 4, 4).permute(0, 3, 2, 1, 4).contiguous().reshape(rp, cp)
