"""lowbit.w4a8_mm: int4-weight x fp8-activation GEMM for Hopper (SPEC §1.5, §2.3).

Ops (``torch.ops.lowbit_w4a8_mm``), schema-compatible with the CUTLASS W4A8
ops of vLLM v0.34.0:

* ``cutlass_w4a8_mm(A, B, group_scales, group_size, channel_scales,
  token_scales, out_type=None, maybe_schedule=None) -> Tensor``
* ``cutlass_pack_scale_fp8(scales) -> Tensor``
* ``cutlass_encode_and_reorder_int4b(B) -> Tensor``
* ``cutlass_w4a8_moe_mm(out_tensors, a_tensors, b_tensors, a_scales, b_scales,
  b_group_scales, b_group_size, expert_offsets, problem_sizes, a_strides,
  b_strides, c_strides, group_scale_strides, maybe_schedule=None) -> None``
  (the grouped MoE form, docs/SPEC-MOE.md §5.6)
* ``cutlass_encode_and_reorder_int4b_grouped(b_tensors) -> (Tensor, Tensor)``
  (docs/SPEC-MOE.md §5.7)

Each has a CPU reference kernel (same bytes / same function), prepack ops run
on any built CUDA architecture, the GEMMs on SM90 (sm_90a). From a dense weight
to a prepacked one in one call: :func:`quantize_weight`; for the experts of a
MoE layer: :func:`quantize_experts`.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch

from lowbit.cutlass_ext import built_targets, family_build_info, load_ops_library

_HERE = Path(__file__).resolve().parent
load_ops_library(_HERE)

_ops = torch.ops.lowbit_w4a8_mm

# Every name maybe_schedule accepts, "{weight rows}x{tokens}_{cluster}", read
# from the op (csrc/schedules.def + aliases): written once, in C++.
SCHEDULES: tuple[str, ...] = tuple(_ops._schedule_names())
# The same for cutlass_w4a8_moe_mm: vLLM v0.34.0's names, then lowbit's own.
MOE_SCHEDULES: tuple[str, ...] = tuple(_ops._moe_schedule_names())
GROUP_SIZE = 128
E4M3_MAX = 448.0


build_info = family_build_info(_HERE)


def _ops_table() -> dict[str, tuple[str, ...]]:
    built = built_targets(_HERE)
    gemm = tuple(t for t in built if t in ("CPU", "SM90"))
    return {
        "cutlass_w4a8_mm": gemm,
        "cutlass_pack_scale_fp8": built,
        "cutlass_encode_and_reorder_int4b": built,
        "cutlass_w4a8_moe_mm": gemm,
        "cutlass_encode_and_reorder_int4b_grouped": built,
    }


OPS: dict[str, tuple[str, ...]] = _ops_table()


# ---------------------------------------------------------------- fakes
@torch.library.register_fake("lowbit_w4a8_mm::cutlass_w4a8_mm")
def _mm_fake(A, B, group_scales, group_size, channel_scales, token_scales,
             out_type=None, maybe_schedule=None):
    return A.new_empty((A.shape[0], B.shape[1]), dtype=out_type or torch.bfloat16)


@torch.library.register_fake("lowbit_w4a8_mm::cutlass_pack_scale_fp8")
def _pack_fake(scales):
    return scales.new_empty((scales.numel() * 8,), dtype=torch.float8_e4m3fn)


@torch.library.register_fake("lowbit_w4a8_mm::cutlass_encode_and_reorder_int4b")
def _reorder_fake(B):
    return torch.empty_strided(B.shape, B.stride(), dtype=B.dtype, device=B.device)


@torch.library.register_fake("lowbit_w4a8_mm::cutlass_w4a8_moe_mm")
def _moe_mm_fake(out_tensors, a_tensors, b_tensors, a_scales, b_scales, b_group_scales,
                 b_group_size, expert_offsets, problem_sizes, a_strides, b_strides, c_strides,
                 group_scale_strides, maybe_schedule=None):
    return None


@torch.library.register_fake("lowbit_w4a8_mm::cutlass_encode_and_reorder_int4b_grouped")
def _reorder_grouped_fake(b_tensors):
    # Two outputs, as the op (vLLM's fake returns one: docs/SPEC-MOE.md §5.8 item 1).
    return (torch.empty_like(b_tensors, memory_format=torch.contiguous_format),
            b_tensors.new_empty((b_tensors.shape[0], 3), dtype=torch.int32))


# ---------------------------------------------------------------- op wrappers
def cutlass_w4a8_mm(A, B, group_scales, group_size, channel_scales, token_scales,
                    out_type=None, maybe_schedule=None) -> torch.Tensor:
    """D[m, n] = out_type(ch[n] * (tok[m] * sum_k A[m, k] * w[n, k])).

    A: float8_e4m3fn [M, K] row-major. B: int32 [K/8, N] from
    :func:`cutlass_encode_and_reorder_int4b`. group_scales: output of
    :func:`cutlass_pack_scale_fp8` for fp8 [K/group_size, N]. group_size: 128
    or K. channel_scales: fp32 [N] or one element; token_scales: fp32 [M],
    [M, 1] or one element. out_type: torch.bfloat16 (default) or
    torch.float16. maybe_schedule: one of :data:`SCHEDULES`, None = heuristic.
    K % 128 == 0 and N % 128 == 0.
    """
    return _ops.cutlass_w4a8_mm(A, B, group_scales, group_size, channel_scales,
                                token_scales, out_type, maybe_schedule)


def cutlass_pack_scale_fp8(scales: torch.Tensor) -> torch.Tensor:
    """fp8 scales (any shape, contiguous) -> fp8 1-D of numel*8: per scale s
    the lookup table [e4m3(-8s), ..., e4m3(-2s), -s]. Runs on the scales'
    device, on the current stream, no synchronisation."""
    return _ops.cutlass_pack_scale_fp8(scales)


def cutlass_encode_and_reorder_int4b(B: torch.Tensor) -> torch.Tensor:
    """int32 [K/8, N] column-major (nibble i of word (j, n) = q[n, 8j+i]) ->
    unified-encoded, Hopper-reordered copy with B's shape and strides
    (SPEC §1.5). N % 16 == 0, K % 32 == 0. A row-major contiguous B of the
    same shape is accepted too: as in vLLM, B's memory is read as N =
    B.size(1) rows of K = 8 * B.size(0) nibbles whatever its strides. On B's
    device, current stream."""
    return _ops.cutlass_encode_and_reorder_int4b(B)


def cutlass_w4a8_moe_mm(out_tensors, a_tensors, b_tensors, a_scales, b_scales, b_group_scales,
                        b_group_size, expert_offsets, problem_sizes, a_strides, b_strides,
                        c_strides, group_scale_strides, maybe_schedule=None) -> None:
    """Grouped W4A8 GEMM over E experts, written into out_tensors (docs/SPEC-MOE.md §5.6):
    for expert e with rows [off[e], off[e] + m_e) of a_tensors,
    out[r, n] = bf16(b_scales[e, n] * (a_scales[r] * sum_k a[r, k] * w_e[n, k])).

    out_tensors bf16 [M, N]; a_tensors float8_e4m3fn [M, K] (rows grouped by
    expert); b_tensors int32 [E, N, K/8] and b_strides int32 [E, 3] from
    :func:`cutlass_encode_and_reorder_int4b_grouped`; a_scales fp32 [M] or
    [M, 1]; b_scales fp32 [E, N] or [E, N, 1]; b_group_scales:
    :func:`cutlass_pack_scale_fp8` of fp8 [E, K/g, N]; b_group_size g (128 or
    K); expert_offsets int64 [E] (off[e]); problem_sizes int32 [E, 3], rows
    (N, m_e, K); a_strides int64 [E] (all K), c_strides int64 [E] (all N),
    group_scale_strides int64 [E, 2] (all (N, 0)): checked for dtype and
    shape, their contents implied by the shapes. maybe_schedule: one of
    :data:`MOE_SCHEDULES`, None = heuristic. K % 128 == 0, N % 128 == 0.
    Rows of no expert are left untouched. Current stream, no synchronisation.
    """
    _ops.cutlass_w4a8_moe_mm(out_tensors, a_tensors, b_tensors, a_scales, b_scales,
                             b_group_scales, b_group_size, expert_offsets, problem_sizes,
                             a_strides, b_strides, c_strides, group_scale_strides, maybe_schedule)


def cutlass_encode_and_reorder_int4b_grouped(b_tensors: torch.Tensor):
    """int32 [E, N, K/8] contiguous (expert e: N rows of K int4, K contiguous)
    -> (encoded + reordered int32 [E, N, K/8], each expert byte-identical to
    :func:`cutlass_encode_and_reorder_int4b` of that expert; int32 [E, 3]
    layout rows (N/16, K/32, 32*N), vLLM's b_strides). N % 16 == 0,
    K % 32 == 0. On b_tensors' device and current stream, no synchronisation."""
    return _ops.cutlass_encode_and_reorder_int4b_grouped(b_tensors)


# ---------------------------------------------------------------- quantization
class PackedWeight(NamedTuple):
    """A prepacked W4A8 linear weight: the B, group_scales, group_size and
    channel_scales arguments of cutlass_w4a8_mm."""

    B: torch.Tensor  # int32 [K/8, N], encoded + reordered
    group_scales: torch.Tensor  # fp8 [(K/group_size) * N * 8], packed tables
    group_size: int
    channel_scales: torch.Tensor  # fp32 [N]


def _div(x: torch.Tensor, d: float) -> torch.Tensor:
    """x / d rounded once, the same bits on every device: CUDA turns a
    division by a Python scalar into a multiplication by its fp32 reciprocal,
    which moves int4 rounding ties (0.15% of codes on random bf16 weights)
    and would make a checkpoint quantized on the GPU differ from the CPU's."""
    return x / torch.full((), d, dtype=x.dtype, device=x.device)


def quantize_int4(w: torch.Tensor, group_size: int = GROUP_SIZE):
    """Dense w [N, K] (nn.Linear.weight layout, any float dtype) -> (q int8
    [N, K] in [-8, 7], s float8_e4m3fn [K/group_size, N], ch float32 [N]).

    Symmetric per-group int4 (group scale amax/7), the group scale split into a
    per-channel fp32 factor and an fp8 group scale no larger than 448/8 = 56
    so the kernel's table entries e4m3(-8s) never saturate; the factor 8 is
    moved into the channel scale (the ÷8/×8 convention). w ≈ e4m3(q*s) * ch.
    """
    if w.dim() != 2:
        raise ValueError(f"quantize_int4: argument 'w': expected a 2-D [N, K] weight, got shape {tuple(w.shape)}")
    N, K = w.shape
    if group_size not in (GROUP_SIZE, K) or K % group_size:
        raise ValueError(f"quantize_int4: argument 'group_size': expected 128 or K (= {K}) "
                         f"with K % 128 == 0, got {group_size}")
    wf = w.float().view(N, K // group_size, group_size)
    s_f = _div(wf.abs().amax(-1), 7.0)  # [N, G]
    c = _div(s_f.amax(-1), E4M3_MAX).clamp_min(1e-12)
    s8 = s_f / c.unsqueeze(-1) / 8.0
    s = torch.where(torch.isnan(s8), s8, s8.clamp(-E4M3_MAX, E4M3_MAX)).to(torch.float8_e4m3fn)
    ch = c * 8.0
    step = (s.float() * ch.unsqueeze(-1)).unsqueeze(-1)
    q = torch.where(step > 0, torch.round(wf / step), torch.zeros_like(wf)).clamp(-8, 7)
    return q.reshape(N, K).to(torch.int8), s.t().contiguous(), ch.contiguous()


def pack_int4(q: torch.Tensor) -> torch.Tensor:
    """int4 values q [N, K] in [-8, 7] -> the unpacked prepack input int32
    [K/8, N] column-major (nibble i of word (j, n) = q[n, 8j+i])."""
    N, K = q.shape
    nib = (q.to(torch.int32) & 0xF).view(N, K // 8, 8)
    words = torch.zeros((N, K // 8), dtype=torch.int32, device=q.device)
    for i in range(8):  # int32 shifts wrap like two's complement
        words |= nib[..., i] << (4 * i)
    return words.t()


def quantize_weight(w: torch.Tensor, group_size: int = GROUP_SIZE) -> PackedWeight:
    """Dense [N, K] weight -> prepacked :class:`PackedWeight` in one call
    (quantize, pack nibbles, encode + reorder, pack scale tables), on w's device."""
    q, s, ch = quantize_int4(w, group_size)
    B = cutlass_encode_and_reorder_int4b(pack_int4(q))
    return PackedWeight(B, cutlass_pack_scale_fp8(s), group_size, ch)


def quantize_activation(x: torch.Tensor):
    """Per-token fp8: x [M, K] -> (A float8_e4m3fn [M, K], token_scales fp32 [M])."""
    xf = x.float()
    tok = _div(xf.abs().amax(-1), E4M3_MAX).clamp_min(1e-12)
    return (xf / tok.unsqueeze(-1)).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn), tok


def linear(x: torch.Tensor, w: PackedWeight, out_type=None, schedule=None) -> torch.Tensor:
    """y = x @ W^T for a bf16/fp16 x [M, K]: per-token fp8 quantization of x,
    then cutlass_w4a8_mm. Output dtype defaults to x's dtype."""
    A, tok = quantize_activation(x)
    return cutlass_w4a8_mm(A, w.B, w.group_scales, w.group_size, w.channel_scales, tok,
                           out_type or x.dtype, schedule)


class PackedExperts(NamedTuple):
    """The prepacked experts of one MoE GEMM: the b_tensors, b_strides,
    b_group_scales, b_group_size and b_scales arguments of cutlass_w4a8_moe_mm."""

    B: torch.Tensor  # int32 [E, N, K/8], encoded + reordered
    b_strides: torch.Tensor  # int32 [E, 3] layout rows
    group_scales: torch.Tensor  # fp8 [E * (K/group_size) * N * 8], packed tables
    group_size: int
    channel_scales: torch.Tensor  # fp32 [E, N]


def quantize_experts(w: torch.Tensor, group_size: int = GROUP_SIZE) -> PackedExperts:
    """Dense expert weights w [E, N, K] -> :class:`PackedExperts` (each expert
    quantized as :func:`quantize_int4`), on w's device."""
    if w.dim() != 3 or w.shape[0] == 0:
        raise ValueError("quantize_experts: argument 'w': expected a 3-D [E, N, K] weight with "
                         f"E >= 1, got shape {tuple(w.shape)}")
    q, s, ch = (torch.stack(t) for t in zip(*(quantize_int4(x, group_size) for x in w)))
    words = torch.stack([pack_int4(x).t() for x in q]).contiguous()  # [E, N, K/8]
    B, b_strides = cutlass_encode_and_reorder_int4b_grouped(words)
    return PackedExperts(B, b_strides, cutlass_pack_scale_fp8(s.contiguous()), group_size, ch)


def moe_strides(E: int, N: int, K: int, device=None):
    """(a_strides, c_strides, group_scale_strides) of cutlass_w4a8_moe_mm for E
    experts of N x K (all K; all N; all (N, 0)), as vLLM's MoE layer builds them."""
    a = torch.full((E,), K, dtype=torch.int64, device=device)
    c = torch.full((E,), N, dtype=torch.int64, device=device)
    s = torch.tensor([N, 0], dtype=torch.int64, device=device).repeat(E, 1)
    return a, c, s


from . import bench, selfcheck  # noqa: E402  (CLI protocol)

__all__ = [
    "OPS", "SCHEDULES", "MOE_SCHEDULES", "PackedWeight", "PackedExperts", "build_info",
    "cutlass_w4a8_mm", "cutlass_pack_scale_fp8", "cutlass_encode_and_reorder_int4b",
    "cutlass_w4a8_moe_mm", "cutlass_encode_and_reorder_int4b_grouped", "quantize_int4",
    "pack_int4", "quantize_weight", "quantize_experts", "moe_strides", "quantize_activation",
    "linear", "bench", "selfcheck",
]
