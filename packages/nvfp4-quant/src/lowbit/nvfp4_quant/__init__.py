"""lowbit.nvfp4_quant: NVFP4 activation quantization (SPEC §1.1-1.3, §2.1).

NVFP4 = e2m1 (fp4) values in blocks of 16 along the last dimension, one
float8_e4m3fn scale per block, and an fp32 global scale ``gs`` (usually
``448 * 6 / amax(|x|)``, see :func:`global_scale`). Dequantization is
``e2m1(q) * float(scale) / gs``. Packed fp4 is uint8 ``[m, n/2]`` with element
2j in the low nibble of byte j.

Ops in ``torch.ops.lowbit_nvfp4_quant`` (schemas compatible with vLLM's ``_C``
ops of the same names; kernels for CPU, SM90, SM100, SM120):

* ``scaled_fp4_quant(input, input_scale, is_sf_swizzled_layout) -> (packed, scales)``
  and ``scaled_fp4_quant.out(..., *, output, output_scale)``
* ``silu_and_mul_nvfp4_quant(result, result_block_scale, input, input_global_scale)``
* ``scaled_fp4_experts_quant(output, output_scale, input, input_global_scale,
  input_offset_by_experts, output_scale_offset_by_experts)``
* ``silu_and_mul_scaled_fp4_experts_quant(...)`` (same arguments, input ``[m, 2k]``)

The Python functions below allocate the outputs the way inference engines do
and return them.
"""

from __future__ import annotations

from pathlib import Path

import torch

from lowbit.cutlass_ext import built_targets, expert_offsets, family_build_info, load_ops_library
from lowbit.cutlass_ext import round_up as _round_up

_HERE = Path(__file__).resolve().parent
load_ops_library(_HERE)
_ops = torch.ops.lowbit_nvfp4_quant

BLOCK = 16
E4M3_MAX = 448.0
E2M1_MAX = 6.0

__all__ = [
    "OPS", "build_info", "scaled_fp4_quant", "scaled_fp4_quant_out", "silu_and_mul_nvfp4_quant",
    "scaled_fp4_experts_quant", "silu_and_mul_scaled_fp4_experts_quant", "global_scale",
    "swizzle_scales", "unswizzle_scales", "swizzled_scale_shape", "expert_offsets",
]


build_info = family_build_info(_HERE)


# Every op has a kernel for CPU and every built CUDA architecture.
OPS: dict[str, tuple[str, ...]] = dict.fromkeys(
    ("scaled_fp4_quant", "scaled_fp4_quant.out", "silu_and_mul_nvfp4_quant", "scaled_fp4_experts_quant",
     "silu_and_mul_scaled_fp4_experts_quant"),
    built_targets(_HERE))


# ----------------------------------------------------------------- fakes
@torch.library.register_fake("lowbit_nvfp4_quant::scaled_fp4_quant")
def _fake_quant(input, input_scale, is_sf_swizzled_layout):
    # vLLM's dtypes (SPEC §2.1): swizzled int32 [Mp, Kp/4], linear uint8 [m, n/16]
    n = input.shape[-1]
    m = input.numel() // n
    packed = input.new_empty((m, n // 2), dtype=torch.uint8)
    if is_sf_swizzled_layout:
        shape = (_round_up(m, 128), _round_up(n // BLOCK, 4) // 4)
        return packed, input.new_empty(shape, dtype=torch.int32)
    return packed, input.new_empty((m, n // BLOCK), dtype=torch.uint8)


@torch.library.register_fake("lowbit_nvfp4_quant::scaled_fp4_quant.out")
def _fake_quant_out(input, input_scale, is_sf_swizzled_layout, *, output, output_scale):
    return None


@torch.library.register_fake("lowbit_nvfp4_quant::silu_and_mul_nvfp4_quant")
def _fake_silu(result, result_block_scale, input, input_global_scale):
    return None


@torch.library.register_fake("lowbit_nvfp4_quant::scaled_fp4_experts_quant")
def _fake_experts(output, output_scale, input, input_global_scale, input_offset_by_experts,
                  output_scale_offset_by_experts):
    return None


@torch.library.register_fake("lowbit_nvfp4_quant::silu_and_mul_scaled_fp4_experts_quant")
def _fake_silu_experts(output, output_scale, input, input_global_scale, input_offset_by_experts,
                       output_scale_offset_by_experts):
    return None


# ----------------------------------------------------------------- helpers
def global_scale(x: torch.Tensor) -> torch.Tensor:
    """The usual global scale ``448 * 6 / amax(|x|)`` as an fp32 one-element
    tensor on x's device (computed on the device, no host sync)."""
    return ((E4M3_MAX * E2M1_MAX) / x.abs().amax().float()).reshape(1)


def swizzled_scale_shape(m: int, n: int) -> tuple[int, int]:
    """``[round_up(m, 128), round_up(n/16, 4)]``: the swizzled scale buffer of an [m, n] input."""
    return _round_up(m, 128), _round_up(n // BLOCK, 4)


def swizzle_scales(scales: torch.Tensor) -> torch.Tensor:
    """Linear block scales ``[m, n/16]`` -> the swizzled 128x4 layout
    ``[round_up(m,128), round_up(n/16,4)]`` (SPEC §1.3), padding zero. Same dtype."""
    m, k = scales.shape
    mp, kp = _round_up(m, 128), _round_up(k, 4)
    b = torch.zeros(mp, kp, dtype=torch.uint8, device=scales.device)
    b[:m, :k] = scales.view(torch.uint8)
    b = b.reshape(mp // 128, 4, 32, kp // 4, 4).permute(0, 3, 2, 1, 4).contiguous()
    return b.reshape(mp, kp).view(scales.dtype)


def unswizzle_scales(scales: torch.Tensor, m: int, n: int) -> torch.Tensor:
    """Swizzled scales of an [m, n] input (float8/uint8 ``[Mp, Kp]`` or int32
    ``[Mp, Kp/4]``) -> linear float8_e4m3fn ``[m, n/16]``."""
    mp, kp = swizzled_scale_shape(m, n)
    b = scales.contiguous().view(torch.uint8).reshape(mp // 128, kp // 4, 32, 4, 4)
    b = b.permute(0, 3, 2, 1, 4).reshape(mp, kp)[:m, : n // BLOCK]
    return b.contiguous().view(torch.float8_e4m3fn)


def _as_2d(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(1, -1) if x.dim() == 1 else x


# ----------------------------------------------------------------- wrappers
def _scale_buffer(m: int, pn: int, swizzled: bool, device) -> torch.Tensor:
    """The scale buffer vLLM allocates for m rows of pn values (int32 words
    when swizzled, bytes when linear)."""
    if swizzled:
        return torch.empty(_round_up(m, 128), _round_up(pn // BLOCK, 4) // 4, dtype=torch.int32,
                           device=device)
    return torch.empty(m, pn // BLOCK, dtype=torch.uint8, device=device)


def scaled_fp4_quant(input: torch.Tensor, global_scale: torch.Tensor,
                     is_sf_swizzled_layout: bool = True,
                     padded_n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantize ``input`` (fp16/bf16 ``[..., n]``, n % 16 == 0, contiguous) to NVFP4.

    ``global_scale``: fp32 one-element tensor on input's device (see
    :func:`global_scale`). Returns ``(packed, scales)``: packed uint8
    ``[m, pn/2]`` (m = input.numel() // n, pn = ``padded_n`` or n; columns
    >= n are zero codes) and float8_e4m3fn block scales, swizzled 128x4
    ``[round_up(m,128), round_up(pn/16,4)]`` with zeroed padding (what
    block-scaled GEMMs read) or linear ``[m, pn/16]``. Like vLLM's Python
    wrapper this returns the float8 view; the op itself
    (``torch.ops.lowbit_nvfp4_quant.scaled_fp4_quant``) returns vLLM's int32 /
    uint8 scale tensors holding the same bytes. Usage::

        gs = global_scale(x)
        x_fp4, x_sf = scaled_fp4_quant(x, gs)                  # GEMM input
        x_fp4, x_sf = scaled_fp4_quant(x, gs, is_sf_swizzled_layout=False)
    """
    n = input.shape[-1]
    m = input.numel() // n if n else 0
    pn = n if padded_n is None else padded_n
    out = torch.empty(m, pn // 2, dtype=torch.uint8, device=input.device)
    sf = _scale_buffer(m, pn, is_sf_swizzled_layout, input.device)
    _ops.scaled_fp4_quant.out(input, global_scale, is_sf_swizzled_layout, output=out, output_scale=sf)
    return out, sf.view(torch.float8_e4m3fn)


def scaled_fp4_quant_out(input: torch.Tensor, global_scale: torch.Tensor, output: torch.Tensor,
                         output_scale: torch.Tensor, is_sf_swizzled_layout: bool = True) -> None:
    """In-place form: writes ``output`` (uint8 ``[m, pn/2]``, pn >= n a multiple
    of 16: padded columns get zero codes) and ``output_scale`` for pn/16 blocks
    (swizzled: float8/uint8 ``[Mp, round_up(pn/16,4)]`` or int32 words; linear:
    ``[m, pn/16]``), padding zeroed. Graph-capturable; allocates nothing."""
    _ops.scaled_fp4_quant.out(input, global_scale, is_sf_swizzled_layout, output=output,
                              output_scale=output_scale)


def silu_and_mul_nvfp4_quant(input: torch.Tensor, global_scale: torch.Tensor,
                             result: torch.Tensor | None = None,
                             result_block_scale: torch.Tensor | None = None,
                             padded_n: int | None = None):
    """Fused ``silu(gate) * up`` + NVFP4 quantization of ``input = gate || up``
    (fp16/bf16 ``[m, 2d]``, d % 16 == 0): the product is computed in fp32,
    rounded to the input dtype (as vLLM does) and quantized. Returns ``(packed
    uint8 [m, pn/2], swizzled float8_e4m3fn scales [Mp, round_up(pn/16, 4)])``
    with pn = ``padded_n`` or d; pass ``result`` / ``result_block_scale`` to
    write into existing buffers (their width sets pn)."""
    m, d = input.shape[0], input.shape[-1] // 2
    pn = d if padded_n is None else padded_n
    if result is None:
        result = torch.empty(m, pn // 2, dtype=torch.uint8, device=input.device)
    if result_block_scale is None:
        result_block_scale = _scale_buffer(m, 2 * result.shape[-1], True, input.device)
    _ops.silu_and_mul_nvfp4_quant(result, result_block_scale, input, global_scale)
    return result, result_block_scale.view(torch.float8_e4m3fn)


def _experts(op, input, global_scales, expert_offsets, blockscale_offsets, k, scale_rows):
    m = input.shape[0]
    E = global_scales.numel()
    if scale_rows is None:
        # upper bound of sum(round_up(m_e, 128)) known without reading the offsets
        scale_rows = _round_up(m, 128) + 128 * E
    out = torch.empty(m, k // 2, dtype=torch.uint8, device=input.device)
    sf = torch.empty(scale_rows, _round_up(k // BLOCK, 4), dtype=torch.float8_e4m3fn,
                     device=input.device)
    op(out, sf, input, global_scales, expert_offsets, blockscale_offsets)
    return out, sf


def scaled_fp4_experts_quant(input: torch.Tensor, global_scales: torch.Tensor,
                             expert_offsets: torch.Tensor, blockscale_offsets: torch.Tensor,
                             scale_rows: int | None = None):
    """MoE quantization: ``input [m_topk, k]`` with each expert's rows contiguous,
    ``global_scales`` fp32 ``[E]``, ``expert_offsets`` int32 ``[E+1]`` (row starts
    plus total), ``blockscale_offsets`` int32 ``[E+1]`` (cumsum of round_up(m_e, 128);
    see :func:`expert_offsets`). Returns ``(packed [m_topk, k/2], scales
    [scale_rows, Kp])``: expert e's swizzled scales start at row blockscale_offsets[e];
    its padding is zeroed; rows past expert_offsets[E] are not written."""
    return _experts(_ops.scaled_fp4_experts_quant, input, global_scales, expert_offsets,
                    blockscale_offsets, input.shape[-1], scale_rows)


def silu_and_mul_scaled_fp4_experts_quant(input: torch.Tensor, global_scales: torch.Tensor,
                                          expert_offsets: torch.Tensor,
                                          blockscale_offsets: torch.Tensor,
                                          scale_rows: int | None = None):
    """As :func:`scaled_fp4_experts_quant` on ``silu(gate) * up`` of ``input [m_topk, 2k]``."""
    return _experts(_ops.silu_and_mul_scaled_fp4_experts_quant, input, global_scales,
                    expert_offsets, blockscale_offsets, input.shape[-1] // 2, scale_rows)


from . import bench, selfcheck  # noqa: E402  (protocol modules; need the ops above)
