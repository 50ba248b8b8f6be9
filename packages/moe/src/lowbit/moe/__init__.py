"""lowbit.moe: MoE layers around the formats' grouped GEMMs
(docs/SPEC-MOE.md §5.9): device routing helpers, the weighted combine,
per-token fp8 activation quantization, and the NVFP4, W4A8 and MXFP4 layers
(expert-weight quantizer and forward each: :mod:`lowbit.moe.nvfp4`,
:mod:`lowbit.moe.w4a8`, :mod:`lowbit.moe.mxfp4`).

Ops in ``torch.ops.lowbit_moe`` (vLLM v0.34.0 schemas; kernels for CPU and
every built CUDA architecture; deterministic, no host synchronisation,
CUDA-graph capturable, current stream of the tensors' device):

* ``get_cutlass_moe_mm_data(topk_ids, expert_offsets, problem_sizes1,
  problem_sizes2, input_permutation, output_permutation, num_experts, n, k,
  blockscale_offsets, is_gated, sorted_expert_ids=None)``
* ``get_cutlass_moe_mm_problem_sizes_from_expert_offsets(expert_first_token_offset,
  problem_sizes1, problem_sizes2, n, k, swap_ab)``
* ``shuffle_rows(input_tensor, dst2src_map, output_tensor)``
* ``moe_combine(input, output_permutation, topk_weights, output)``: lowbit's
  weighted gather-and-sum of the routed rows (:func:`combine`)
* ``dynamic_per_token_scaled_fp8_quant(result, input, scale, scale_ub)`` and
  lowbit's fused ``silu_and_mul_per_token_fp8_quant(result, input, scale)``

Routing semantics (SPEC-MOE §5.9.4): the flat routes ``topk_ids.view(-1)``
(int32 or int64) are sorted by expert, stably (increasing route index inside
each expert); routes with an invalid id (< 0, e.g. -1 for another rank's
expert, or >= E) sort after the last expert, get ``input_permutation = -1``
and ``output_permutation = m * topk``, which :func:`shuffle_rows` turns into
zero rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from lowbit.cutlass_ext import built_targets, family_build_info, load_ops_library

_HERE = Path(__file__).resolve().parent
load_ops_library(_HERE)
_ops = torch.ops.lowbit_moe

__all__ = [
    "OPS", "build_info", "get_cutlass_moe_mm_data",
    "get_cutlass_moe_mm_problem_sizes_from_expert_offsets", "shuffle_rows", "Routing", "route",
    "combine", "per_token_fp8_quant", "silu_and_mul_per_token_fp8_quant",
    "quantize_experts_nvfp4", "nvfp4_moe_forward", "W4A8Experts", "quantize_experts_w4a8",
    "w4a8_moe_forward", "quantize_experts_mxfp4", "mxfp4_moe_forward",
]


build_info = family_build_info(_HERE)


# Every op has a kernel for CPU and every built CUDA architecture.
OPS: dict[str, tuple[str, ...]] = dict.fromkeys(
    ("get_cutlass_moe_mm_data", "get_cutlass_moe_mm_problem_sizes_from_expert_offsets", "shuffle_rows",
     "moe_combine", "dynamic_per_token_scaled_fp8_quant", "silu_and_mul_per_token_fp8_quant"),
    built_targets(_HERE))


# ----------------------------------------------------------------- fakes
@torch.library.register_fake("lowbit_moe::get_cutlass_moe_mm_data")
def _fake_moe_data(topk_ids, expert_offsets, problem_sizes1, problem_sizes2, input_permutation,
                   output_permutation, num_experts, n, k, blockscale_offsets, is_gated,
                   sorted_expert_ids=None):
    return None


@torch.library.register_fake("lowbit_moe::get_cutlass_moe_mm_problem_sizes_from_expert_offsets")
def _fake_problem_sizes(expert_first_token_offset, problem_sizes1, problem_sizes2, n, k, swap_ab):
    return None


@torch.library.register_fake("lowbit_moe::shuffle_rows")
def _fake_shuffle_rows(input_tensor, dst2src_map, output_tensor):
    return None


@torch.library.register_fake("lowbit_moe::moe_combine")
def _fake_combine(input, output_permutation, topk_weights, output):
    return None


@torch.library.register_fake("lowbit_moe::dynamic_per_token_scaled_fp8_quant")
def _fake_fp8_quant(result, input, scale, scale_ub):
    return None


@torch.library.register_fake("lowbit_moe::silu_and_mul_per_token_fp8_quant")
def _fake_silu_fp8_quant(result, input, scale):
    return None


# ----------------------------------------------------------------- vLLM-compatible wrappers
def get_cutlass_moe_mm_data(topk_ids: torch.Tensor, expert_offsets: torch.Tensor,
                            problem_sizes1: torch.Tensor, problem_sizes2: torch.Tensor,
                            input_permutation: torch.Tensor, output_permutation: torch.Tensor,
                            num_experts: int, n: int, k: int,
                            blockscale_offsets: torch.Tensor | None = None,
                            is_gated: bool = True,
                            sorted_expert_ids: torch.Tensor | None = None) -> None:
    """Routing tables for the two grouped GEMMs of an MoE layer from ``topk_ids``
    ``[m, topk]`` (int32/int64). Writes (all int32): ``expert_offsets [E+1]``
    (row starts, then the number of valid routes), ``problem_sizes1/2 [E, 3]``
    ((m_e, n1, k) and (m_e, k, n), n1 = 2n if ``is_gated``; swapped to
    (n1, m_e, k), (k, m_e, n) only without ``blockscale_offsets`` and for
    m*topk <= 64, as vLLM), ``input_permutation [m*topk]`` (sorted row -> token),
    ``output_permutation [m*topk]`` (route -> sorted row), optionally
    ``blockscale_offsets [E+1]`` (cumsum of round_up(m_e, 128)) and
    ``sorted_expert_ids [m*topk]`` (expert of each sorted row, -1 past the valid
    rows)."""
    _ops.get_cutlass_moe_mm_data(topk_ids, expert_offsets, problem_sizes1, problem_sizes2,
                                 input_permutation, output_permutation, num_experts, n, k,
                                 blockscale_offsets, is_gated, sorted_expert_ids)


def get_cutlass_moe_mm_problem_sizes_from_expert_offsets(
        expert_first_token_offset: torch.Tensor, problem_sizes1: torch.Tensor,
        problem_sizes2: torch.Tensor, n: int, k: int, swap_ab: bool) -> None:
    """Problem sizes from expert row offsets ``[E+1]`` (int64 as vLLM, or int32):
    rows (m_e, 2n, k) and (m_e, k, n), or with ``swap_ab`` (2n, m_e, k), (k, m_e, n)."""
    _ops.get_cutlass_moe_mm_problem_sizes_from_expert_offsets(
        expert_first_token_offset, problem_sizes1, problem_sizes2, n, k, swap_ab)


def shuffle_rows(input_tensor: torch.Tensor, dst2src_map: torch.Tensor) -> torch.Tensor:
    """``out[d] = input_tensor[dst2src_map[d]]`` (a zero row where the map entry is
    not a row of the input); returns a new ``[map.numel(), cols]`` tensor."""
    out = torch.empty((dst2src_map.shape[0], input_tensor.shape[1]), dtype=input_tensor.dtype,
                      device=input_tensor.device)
    _ops.shuffle_rows(input_tensor, dst2src_map, out)
    return out


def per_token_fp8_quant(x: torch.Tensor, scale_ub: torch.Tensor | None = None):
    """Dynamic per-token fp8 quantization (vLLM's ``scaled_fp8_quant`` with
    ``use_per_token_if_dynamic=True``, op ``dynamic_per_token_scaled_fp8_quant``):
    x ``[..., K]`` fp32/fp16/bf16 contiguous -> ``(float8_e4m3fn [..., K],
    scales fp32 [rows, 1])`` with per row scale = max(min(amax, scale_ub) / 448,
    1 / (448 * 512)) and codes e4m3(x / scale) (RNE, saturating; NaN -> 448)."""
    rows = x.numel() // x.shape[-1] if x.shape[-1] else 0
    out = torch.empty(x.shape, dtype=torch.float8_e4m3fn, device=x.device)
    scale = torch.empty(rows, 1, dtype=torch.float32, device=x.device)
    _ops.dynamic_per_token_scaled_fp8_quant(out, x, scale, scale_ub)
    return out, scale


def silu_and_mul_per_token_fp8_quant(x: torch.Tensor):
    """Fused ``silu(gate) * up`` (fp32, rounded to x's dtype) + per-token fp8
    quantization of ``x = gate || up`` ``[..., 2d]``: ``(float8_e4m3fn [..., d],
    scales fp32 [rows, 1])``, the same bytes as :func:`per_token_fp8_quant` of
    the rounded product."""
    d = x.shape[-1] // 2
    rows = x.numel() // x.shape[-1] if x.shape[-1] else 0
    out = torch.empty((*x.shape[:-1], d), dtype=torch.float8_e4m3fn, device=x.device)
    scale = torch.empty(rows, 1, dtype=torch.float32, device=x.device)
    _ops.silu_and_mul_per_token_fp8_quant(out, x, scale)
    return out, scale


# ----------------------------------------------------------------- routing and combine
@dataclass
class Routing:
    """The routing of one MoE call (int32 tensors on topk_ids' device)."""

    expert_offsets: torch.Tensor      # [E+1]: row starts of each expert, then the valid total
    blockscale_offsets: torch.Tensor  # [E+1]: scale-row starts (cumsum of round_up(m_e, 128))
    problem_sizes1: torch.Tensor      # [E, 3]: (m_e, n1, k) of the gate/up GEMM
    problem_sizes2: torch.Tensor      # [E, 3]: (m_e, k, n) of the down GEMM
    input_permutation: torch.Tensor   # [m*topk]: sorted row -> token (-1: orphan row)
    output_permutation: torch.Tensor  # [m*topk]: route -> sorted row (m*topk: invalid route)
    topk: int
    sorted_expert_ids: torch.Tensor | None = None  # [m*topk]: expert of each sorted row (-1 past)


def route(topk_ids: torch.Tensor, num_experts: int, n: int, k: int,
          is_gated: bool = True, sorted_ids: bool = False) -> Routing:
    """Allocate and fill the routing tables of ``topk_ids [m, topk]`` for
    ``num_experts`` experts whose gate/up GEMM is (n1 = 2n or n) x k and down
    GEMM k x n (n = intermediate size I, k = hidden size H); with
    ``sorted_ids`` also ``sorted_expert_ids`` (the MXFP4 quant ops' hint)."""
    routes, dev = topk_ids.numel(), topk_ids.device

    def i32(*shape):
        return torch.empty(shape, dtype=torch.int32, device=dev)

    r = Routing(i32(num_experts + 1), i32(num_experts + 1), i32(num_experts, 3),
                i32(num_experts, 3), i32(routes), i32(routes), topk_ids.shape[1],
                i32(routes) if sorted_ids else None)
    get_cutlass_moe_mm_data(topk_ids, r.expert_offsets, r.problem_sizes1, r.problem_sizes2,
                            r.input_permutation, r.output_permutation, num_experts, n, k,
                            r.blockscale_offsets, is_gated, r.sorted_expert_ids)
    return r


def combine(c3: torch.Tensor, output_permutation: torch.Tensor,
            topk_weights: torch.Tensor | None = None, topk: int | None = None) -> torch.Tensor:
    """SPEC-MOE §5.9.1 steps 7-8 in one op (``moe_combine``): the expert outputs
    ``c3 [m*topk, H]`` (sorted by expert) back to route order (invalid routes
    read zero rows), then ``out[t] = sum_j row[t*topk + j] * topk_weights[t, j]``
    in c3's dtype (each product rounded to it, fp32 sum, the same bits as
    gather + torch multiply + sum); a plain sum when ``topk_weights`` is None
    (the router weights were applied to the input; pass ``topk`` then).
    Returns ``[m, H]``."""
    routes = output_permutation.shape[0]
    m = topk_weights.shape[0] if topk_weights is not None else routes // (topk or 1)
    out = torch.empty((m, c3.shape[1]), dtype=c3.dtype, device=c3.device)
    _ops.moe_combine(c3, output_permutation, topk_weights, out)
    return out


from .nvfp4 import nvfp4_moe_forward, quantize_experts_nvfp4  # noqa: E402
from .w4a8 import W4A8Experts, quantize_experts_w4a8, w4a8_moe_forward  # noqa: E402
from .mxfp4 import mxfp4_moe_forward, quantize_experts_mxfp4  # noqa: E402
from . import bench, selfcheck  # noqa: E402  (protocol modules; need the ops above)
