"""lowbit.mxfp4: MXFP4 MoE ops (docs/SPEC-MOE.md §5.1.1, §5.3-5.5).

MXFP4: e2m1 values (two per byte, element 2j in the low nibble), one E8M0
(power-of-two, uint8) scale per 32 elements along K, no global scale.

Ops in ``torch.ops.lowbit_mxfp4`` (vLLM v0.34.0 schemas):

* ``mxfp4_experts_quant(output, output_scale, input, input_offset_by_experts,
  output_scale_offset_by_experts, n_experts, sorted_expert_ids=None)``: quantize
  expert-grouped rows; each expert's scales go to its 128x4-swizzled region.
* ``silu_and_mul_mxfp4_experts_quant(...)``: the same on ``silu(gate) * up`` of
  ``input = gate || up``.
* ``cutlass_mxfp4_group_mm(out, a, b, a_blockscale, b_blockscales,
  problem_sizes, expert_offsets, sf_offsets)``: one GEMM per expert.
* ``mxfp4_experts_quant_supported(capability) -> bool``.

Kernels: CPU reference for every op; the quantization on every built CUDA
architecture; the grouped GEMM on SM90 and SM100.
"""

from __future__ import annotations

from pathlib import Path

import torch

from lowbit.cutlass_ext import expert_offsets, family_build_info, kernel_names_query, load_ops_library, targets_where
from lowbit.cutlass_ext import round_up as _round_up

_HERE = Path(__file__).resolve().parent
load_ops_library(_HERE)

_ops = torch.ops.lowbit_mxfp4

BLOCK = 32  # elements per E8M0 scale


build_info = family_build_info(_HERE)


OPS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("mxfp4_experts_quant", "silu_and_mul_mxfp4_experts_quant"),
                    targets_where(_ops.mxfp4_experts_quant_supported)),
    "cutlass_mxfp4_group_mm": targets_where(_ops._group_kernel_names),
}


# ----------------------------------------------------------------- fakes
@torch.library.register_fake("lowbit_mxfp4::mxfp4_experts_quant")
def _fake_quant(output, output_scale, input, input_offset_by_experts, output_scale_offset_by_experts, n_experts,
                sorted_expert_ids=None):
    return None


@torch.library.register_fake("lowbit_mxfp4::silu_and_mul_mxfp4_experts_quant")
def _fake_silu_quant(output, output_scale, input, input_offset_by_experts, output_scale_offset_by_experts,
                     n_experts, sorted_expert_ids=None):
    return None


@torch.library.register_fake("lowbit_mxfp4::cutlass_mxfp4_group_mm")
def _fake_group_mm(out, a, b, a_blockscale, b_blockscales, problem_sizes, expert_offsets, sf_offsets):
    return None


@torch.library.register_fake("lowbit_mxfp4::_cutlass_mxfp4_group_mm_with_kernel")
def _fake_group_mm_with_kernel(out, a, b, a_blockscale, b_blockscales, problem_sizes, expert_offsets, sf_offsets,
                               kernel):
    return None


# ----------------------------------------------------------------- helpers
def scale_rows_for(m: int, n_experts: int) -> int:
    """Scale rows that hold the canonical regions of any split of m rows over
    n_experts experts: sum(round_up(m_e, 128)) <= m + 127 * min(E, m), in whole
    128-row tiles (docs/SPEC-MOE.md §5.8 item 12)."""
    return _round_up(m + 127 * min(n_experts, m), 128)


def _experts(op, input, k, expert_offsets, blockscale_offsets, sorted_expert_ids, scale_rows):
    m, E = input.shape[0], expert_offsets.numel() - 1
    rows = scale_rows_for(m, E) if scale_rows is None else scale_rows
    out = torch.empty(m, k // 2, dtype=torch.uint8, device=input.device)
    sf = torch.empty(rows, _round_up(k // BLOCK, 4), dtype=torch.uint8, device=input.device)
    op(out, sf, input, expert_offsets, blockscale_offsets, E, sorted_expert_ids)
    return out, sf


# ----------------------------------------------------------------- wrappers
def mxfp4_experts_quant(input: torch.Tensor, expert_offsets: torch.Tensor, blockscale_offsets: torch.Tensor,
                        sorted_expert_ids: torch.Tensor | None = None, scale_rows: int | None = None):
    """MXFP4 quantization of expert-grouped rows (docs/SPEC-MOE.md §5.4).

    input: fp16/bf16 ``[m, k]``, k % 32 == 0, expert e's rows
    expert_offsets[e] .. expert_offsets[e+1] (int32 ``[E+1]``);
    blockscale_offsets: int32 ``[E+1]``, expert e's first scale row (multiples of
    128, regions of round_up(m_e, 128) rows; see :func:`expert_offsets`);
    sorted_expert_ids: optional int32 ``[m]`` expert of each row (vLLM's lookup
    hint; lowbit validates it and takes the result from the offsets).
    Returns ``(codes uint8 [m, k/2], scales uint8 [scale_rows, round_up(k/32, 4)])``:
    E8M0 bytes, expert e's 128x4-swizzled region at row blockscale_offsets[e],
    its padding 0x00; rows outside [offsets[0], offsets[E]) and scale rows
    outside every region are not written. scale_rows defaults to
    :func:`scale_rows_for` (enough for canonical offsets).
    """
    return _experts(_ops.mxfp4_experts_quant, input, input.shape[-1], expert_offsets, blockscale_offsets,
                    sorted_expert_ids, scale_rows)


def silu_and_mul_mxfp4_experts_quant(input: torch.Tensor, expert_offsets: torch.Tensor,
                                     blockscale_offsets: torch.Tensor, sorted_expert_ids: torch.Tensor | None = None,
                                     scale_rows: int | None = None):
    """As :func:`mxfp4_experts_quant` on ``silu(gate) * up`` of ``input = gate || up``
    (``[m, 2k]``): the product is computed in fp32 and rounded to the input
    dtype before quantizing, as vLLM does (docs/SPEC-MOE.md §5.5)."""
    return _experts(_ops.silu_and_mul_mxfp4_experts_quant, input, input.shape[-1] // 2, expert_offsets,
                    blockscale_offsets, sorted_expert_ids, scale_rows)


def mxfp4_experts_quant_supported(cuda_device_capability: int) -> bool:
    """True exactly where this build has the quant kernels for that capability."""
    return bool(_ops.mxfp4_experts_quant_supported(int(cuda_device_capability)))


def quantize_weights(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """MXFP4 expert weights for :func:`cutlass_mxfp4_group_mm`: ``w`` fp16/bf16
    ``[E, N, K]`` (K % 32 == 0) -> ``(b uint8 [E, N, K/2], b_blockscales uint8
    [E, round_up(N, 128), round_up(K/32, 4)])``, each expert's scales 128x4
    swizzled with zero padding. Uses the activation quantizer's scale rule
    (docs/SPEC-MOE.md §5.1.1); checkpoints may carry any E8M0 bytes instead."""
    E, N, K = w.shape
    n_p = _round_up(N, 128)
    off = torch.arange(E + 1, dtype=torch.int32, device=w.device) * N
    sf_off = torch.arange(E + 1, dtype=torch.int32, device=w.device) * n_p
    codes, sf = mxfp4_experts_quant(w.reshape(E * N, K).contiguous(), off, sf_off, scale_rows=E * n_p)
    return codes.reshape(E, N, K // 2), sf.reshape(E, n_p, -1)


def cutlass_mxfp4_group_mm(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor, a_blockscale: torch.Tensor,
                           b_blockscales: torch.Tensor, problem_sizes: torch.Tensor, expert_offsets: torch.Tensor,
                           sf_offsets: torch.Tensor) -> None:
    """MXFP4 grouped GEMM with vLLM v0.34.0's schema (docs/SPEC-MOE.md §5.3).

    For every expert e with m_e = problem_sizes[e, 0] > 0 rows starting at row
    off = expert_offsets[e]: ``out[off:off+m_e] = dequant(a[off:off+m_e]) @
    dequant(b[e]).T`` (fp32 accumulation, one rounding to out's dtype; no
    alpha). Rows of out outside every expert are not written.

    out: bf16/fp16 ``[M, N]``; a: uint8 ``[M, K/2]`` packed e2m1 (rows grouped by
    expert); b: uint8 ``[E, N, K/2]``; a_blockscale: uint8 E8M0 ``[R, Kp]``
    (Kp = round_up(K/32, 4)), expert e's 128x4-swizzled region at scale row
    sf_offsets[e] (a multiple of 128), as :func:`mxfp4_experts_quant` writes it;
    b_blockscales: uint8 ``[E, round_up(N, 128), Kp]`` (:func:`quantize_weights`);
    problem_sizes int32 ``[E, 3]`` rows (m_e, N, K); expert_offsets and
    sf_offsets int32 ``[E]``. K % 32 == 0 and N % 32 == 0 (vLLM needs K % 128 and
    N % 128; lowbit reads the padded strides). The metadata stays on the device
    (no synchronisation; CUDA-graph safe): an expert whose metadata breaks the
    contract is not computed (its in-bounds rows become NaN on the CPU).
    """
    _ops.cutlass_mxfp4_group_mm(out, a, b, a_blockscale, b_blockscales, problem_sizes, expert_offsets, sf_offsets)


group_kernel_names = kernel_names_query(_ops._group_kernel_names, "_cutlass_mxfp4_group_mm_with_kernel")


from . import bench, selfcheck  # noqa: E402  (protocol modules for the lowbit CLI)

__all__ = [
    "BLOCK",
    "OPS",
    "build_info",
    "cutlass_mxfp4_group_mm",
    "expert_offsets",
    "group_kernel_names",
    "mxfp4_experts_quant",
    "mxfp4_experts_quant_supported",
    "quantize_weights",
    "scale_rows_for",
    "silu_and_mul_mxfp4_experts_quant",
    "bench",
    "selfcheck",
]
