"""W4A8 reference (pure torch), written from SPEC.md §1.5, §2.3 and §3.

Independent of the kernels: bytes are built with plain integer arithmetic on
the SPEC's formulas (unified encoding, the 16 x 32 reorder atom, the 8-entry
fp8 scale table) and the GEMM oracle is SPEC §3's
`torch._scaled_mm(A, w_ref, scale_a=tok, scale_b=ch)` with
w_ref = e4m3(q * e4m3(s)) (an fp32 matmul of the same operands on the CPU,
where _scaled_mm is unavailable).

Quantization convention (the "divide by 8 / multiply by 8" rule of §1.5):
symmetric int4 per group of `group_size` consecutive k, q in [-8, 7];
the fp32 group scale s_f = amax / 7 is split into a per-channel fp32 factor
and an fp8 group scale s = e4m3(s_f / c / 8) whose largest value per channel
is 448 / 8 = 56, so every table entry 8·|s| fits e4m3; the channel scale is
then ch = 8 · c. Dequantized weight: w ≈ e4m3(q · s) · ch.
"""

from __future__ import annotations

import torch

E4M3_MAX = 448.0
GROUP = 128


# ---------------------------------------------------------------- fp8 helpers
def div_exact(x: torch.Tensor, d: float) -> torch.Tensor:
    """x / d rounded once on every device (CUDA multiplies by the fp32
    reciprocal when d is a Python scalar: other rounding ties than the CPU)."""
    return x / torch.full((), d, dtype=x.dtype, device=x.device)


def e4m3(x: torch.Tensor) -> torch.Tensor:
    """float -> float8_e4m3fn, round-to-nearest-even, saturating to +-448
    (cvt.rn.satfinite); NaN stays NaN."""
    x = x.float()
    return torch.where(torch.isnan(x), x, x.clamp(-E4M3_MAX, E4M3_MAX)).to(torch.float8_e4m3fn)


def fp8_bytes(x: torch.Tensor) -> torch.Tensor:
    """uint8 view of a float8 tensor with every NaN canonicalised to 0x7F."""
    b = x.view(torch.uint8).clone()
    nan = (b & 0x7F) == 0x7F
    b[nan] = 0x7F
    return b


# ---------------------------------------------------------------- int4 packing
def pack_int4(q: torch.Tensor) -> torch.Tensor:
    """Signed int4 values q [N, K] (any int dtype, in [-8, 7]) -> the unpacked
    prepack input: int32 [K/8, N], column-major, nibble i of word (j, n) =
    element k = 8j + i of channel n (two's complement)."""
    N, K = q.shape
    assert K % 8 == 0
    nib = (q.to(torch.int64) & 0xF).view(N, K // 8, 8)
    shifts = torch.arange(8, device=q.device, dtype=torch.int64) * 4
    words = (nib << shifts).sum(-1)  # [N, K/8], < 2^32
    words = torch.where(words >= 2**31, words - 2**32, words).to(torch.int32)
    return words.t()  # [K/8, N] with strides (1, K/8)


def unpack_int4(b: torch.Tensor) -> torch.Tensor:
    """Inverse of pack_int4: int32 [K/8, N] column-major -> int8 q [N, K]."""
    words = b.t().to(torch.int64) & 0xFFFFFFFF  # [N, K/8]
    shifts = torch.arange(8, device=b.device, dtype=torch.int64) * 4
    nib = (words.unsqueeze(-1) >> shifts) & 0xF  # [N, K/8, 8]
    q = torch.where(nib >= 8, nib - 16, nib)
    return q.reshape(words.shape[0], -1).to(torch.int8)


def reorder_offsets(N: int, K: int, device=None) -> torch.Tensor:
    """int64 [N, K]: position (in int4 elements) of logical (n, k) in the
    reordered buffer (SPEC §1.5: 16 x 32 atoms, column-major over (N/16, K/32))."""
    n = torch.arange(N, device=device, dtype=torch.int64).view(N, 1)
    k = torch.arange(K, device=device, dtype=torch.int64).view(1, K)
    atom = (n // 16) + (N // 16) * (k // 32)
    nn, kk = n % 16, k % 32
    inner = 64 * (nn % 8) + 16 * ((kk % 16) // 4) + 8 * (kk // 16) + 4 * (nn // 8) + (kk % 4)
    return atom * 512 + inner


def encode_nibbles(nib: torch.Tensor) -> torch.Tensor:
    """Unified encoding: v in 1..7 -> 8 - v; 0 and 8..15 unchanged."""
    return torch.where((nib >= 1) & (nib <= 7), 8 - nib, nib)


def memory_words(b: torch.Tensor) -> torch.Tensor:
    """The dense int32 memory of a [K/8, N] prepack operand as the contiguous
    [N, K/8] it is read as: column-major (SPEC §1.5) or row-major contiguous
    (vLLM reads B's memory as N = b.size(1) rows of K = 8 * b.size(0)
    nibbles whatever its strides)."""
    Kw, N = b.shape
    if b.is_contiguous():  # row-major: the same bytes, reinterpreted
        return b.reshape(-1).view(N, Kw)
    return b.t().contiguous()


def encode_and_reorder(b: torch.Tensor) -> torch.Tensor:
    """Reference for cutlass_encode_and_reorder_int4b: int32 [K/8, N]
    (column-major or row-major contiguous, see memory_words) in, same shape
    and strides out."""
    Kw, N = b.shape
    K = Kw * 8
    nib = unpack_int4(memory_words(b).t()).to(torch.int64) & 0xF  # [N, K] raw nibbles
    enc = encode_nibbles(nib)
    flat = torch.zeros(N * K, dtype=torch.int64, device=b.device)
    flat[reorder_offsets(N, K, b.device).reshape(-1)] = enc.reshape(-1)
    shifts = torch.arange(8, device=b.device, dtype=torch.int64) * 4
    words = (flat.view(-1, 8) << shifts).sum(-1)
    words = torch.where(words >= 2**31, words - 2**32, words).to(torch.int32)
    out = words.view(N, Kw)  # memory: N rows of K/8 words
    return out.reshape(-1).view(Kw, N) if b.is_contiguous() else out.t()


def pack_scales(s: torch.Tensor) -> torch.Tensor:
    """Reference for cutlass_pack_scale_fp8: fp8 scales (any shape) -> fp8
    1-D of numel*8: per scale [e4m3(-8s), e4m3(-7s), ..., e4m3(-2s), -s]."""
    sf = s.float().reshape(-1, 1)
    mult = -torch.arange(8, 0, -1, device=s.device, dtype=torch.float32).view(1, 8)
    table = e4m3(sf * mult)
    return fp8_bytes(table).reshape(-1).view(torch.float8_e4m3fn)


# ---------------------------------------------------------------- quantization
def quantize_weight(w: torch.Tensor, group_size: int = GROUP):
    """Dense weight w [N, K] (nn.Linear layout) -> (q int8 [N, K] in [-8, 7],
    s float8_e4m3fn [K/group_size, N], ch float32 [N]) with the ÷8/×8 convention."""
    N, K = w.shape
    assert K % group_size == 0
    wf = w.float().view(N, K // group_size, group_size)
    amax = wf.abs().amax(-1)  # [N, G]
    s_f = div_exact(amax, 7.0)
    c = div_exact(s_f.amax(-1), E4M3_MAX).clamp_min(1e-12)  # [N]: largest s_f / c == 448
    s = e4m3(s_f / c.view(N, 1) / 8.0)  # largest is 56, so 8 * s <= 448
    ch = c * 8.0
    step = (s.float() * ch.view(N, 1)).unsqueeze(-1)  # dequant step per group
    q = torch.where(step > 0, torch.round(wf / step), torch.zeros_like(wf)).clamp(-8, 7)
    return q.reshape(N, K).to(torch.int8), s.t().contiguous(), ch.contiguous()


def dequantize_weight(q: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """w_ref = e4m3(q * e4m3(s)) as float8_e4m3fn [N, K] (SPEC §3), without
    the channel scale. s is [K/g, N]."""
    N, K = q.shape
    G = s.shape[0]
    sf = s.float().t().repeat_interleave(K // G, dim=1)  # [N, K]
    return e4m3(q.float() * sf)


def quantize_activation(x: torch.Tensor):
    """Per-token fp8: x [M, K] -> (A float8_e4m3fn [M, K], tok float32 [M])."""
    xf = x.float()
    tok = div_exact(xf.abs().amax(-1), E4M3_MAX).clamp_min(1e-12)
    return e4m3(xf / tok.unsqueeze(-1)), tok


# ---------------------------------------------------------------- oracle
def w4a8_mm(A, q, s, ch, tok, out_dtype=torch.bfloat16) -> torch.Tensor:
    """SPEC §3 oracle: D = to_out(ch[n] * tok[m] * sum_k A[m,k] * w_ref[n,k])
    with w_ref = e4m3(q * e4m3(s)). ch/tok may be scalars (one element)."""
    M, K = A.shape
    N = q.shape[0]
    w_ref = dequantize_weight(q, s)  # [N, K] fp8
    tok_v = tok.float().reshape(-1).expand(M).reshape(M, 1).contiguous()
    ch_v = ch.float().reshape(-1).expand(N).reshape(1, N).contiguous()
    # Exact on every device: fp8 x fp8 products and their sums are exact in
    # fp64 at any K used here (cuBLASLt's fp8 GEMM is not the oracle: its
    # accumulator is not full fp32 over long K, and it needs M % 16 == 0).
    acc = A.double() @ w_ref.double().t()
    return (acc * tok_v.double() * ch_v.double()).to(out_dtype)


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    """||out - ref|| / ||ref|| in float64 (NaN if out has NaN)."""
    o, r = out.double(), ref.double()
    return float((o - r).norm() / r.norm().clamp_min(1e-30))
