"""lowbit.nvfp4_mm: NVFP4 x NVFP4 scaled GEMM (docs/SPEC.md §1.4, §2.2).

Ops in ``torch.ops.lowbit_nvfp4_mm``:

* ``cutlass_scaled_fp4_mm(out, a, b, block_scale_a, block_scale_b, alpha, bias=None)``
  writes ``out = alpha * dequant(a) @ dequant(b).T + bias`` (fp32
  accumulation and epilogue, one rounding to out's dtype).
* ``cutlass_fp4_group_mm(out, a, b, a_blockscale, b_blockscales, alphas,
  problem_sizes, expert_offsets, sf_offsets)``: the grouped (MoE) form,
  one GEMM per expert over its rows (docs/SPEC-MOE.md §5.2).
* ``cutlass_scaled_mm_supports_fp4(capability) -> bool``: true exactly where
  this build has a kernel for that compute capability (90 = Hopper included).

Kernels: CPU reference, SM90 (in-kernel dequant to fp16 + tensor cores, exact
products, fp32 accumulation), SM100/SM120 (CUTLASS block-scaled FP4 GEMMs).
"""

from __future__ import annotations

from pathlib import Path

import torch

from lowbit.cutlass_ext import family_build_info, kernel_names_query, load_ops_library, targets_where

_HERE = Path(__file__).resolve().parent
load_ops_library(_HERE)

_ops = torch.ops.lowbit_nvfp4_mm

build_info = family_build_info(_HERE)


OPS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("cutlass_scaled_fp4_mm", "cutlass_scaled_mm_supports_fp4"),
                    targets_where(_ops.cutlass_scaled_mm_supports_fp4)),
    "cutlass_fp4_group_mm": targets_where(_ops._group_kernel_names),
}


# ----------------------------------------------------------------- fakes
@torch.library.register_fake("lowbit_nvfp4_mm::cutlass_scaled_fp4_mm")
def _fake_mm(out, a, b, block_scale_a, block_scale_b, alpha, bias=None):
    return None


@torch.library.register_fake("lowbit_nvfp4_mm::_cutlass_scaled_fp4_mm_with_kernel")
def _fake_mm_with_kernel(out, a, b, block_scale_a, block_scale_b, alpha, bias, batch_invariant, kernel, splits):
    return None


@torch.library.register_fake("lowbit_nvfp4_mm::cutlass_fp4_group_mm")
def _fake_group_mm(out, a, b, a_blockscale, b_blockscales, alphas, problem_sizes, expert_offsets, sf_offsets):
    return None


@torch.library.register_fake("lowbit_nvfp4_mm::_cutlass_fp4_group_mm_with_kernel")
def _fake_group_mm_with_kernel(out, a, b, a_blockscale, b_blockscales, alphas, problem_sizes, expert_offsets,
                               sf_offsets, kernel):
    return None


# ----------------------------------------------------------------- wrappers
def cutlass_scaled_fp4_mm(out, a, b, block_scale_a, block_scale_b, alpha, bias=None) -> None:
    """In-place op with vLLM v0.34.0's schema (docs/SPEC.md §2.2)."""
    _ops.cutlass_scaled_fp4_mm(out, a, b, block_scale_a, block_scale_b, alpha, bias)


def cutlass_scaled_mm_supports_fp4(cuda_device_capability: int) -> bool:
    return bool(_ops.cutlass_scaled_mm_supports_fp4(int(cuda_device_capability)))


def scaled_fp4_mm(
    a: torch.Tensor,
    b: torch.Tensor,
    block_scale_a: torch.Tensor,
    block_scale_b: torch.Tensor,
    alpha: torch.Tensor,
    out_dtype: torch.dtype = torch.bfloat16,
    *,
    bias: torch.Tensor | None = None,
    batch_invariant: bool = False,
) -> torch.Tensor:
    """out = alpha * dequant(a) @ dequant(b).T + bias, returned as a new [M, N] tensor.

    a: uint8 [M, K/2] packed e2m1; b: uint8 [N, K/2] (weight, row-major);
    block_scale_a / block_scale_b: float8_e4m3fn 128x4-swizzled block scales
    ([round_up(M,128), round_up(K/16,4)] and the same for N); alpha: fp32
    one-element tensor on the device (normally 1/(gs_a*gs_b)).
    out_dtype: torch.bfloat16 or torch.float16.
    bias: optional [N] tensor of out_dtype, added in fp32 before the one
    rounding to out_dtype.
    batch_invariant: every output row is bitwise the same whatever M is (the
    row computed alone gives the same bits); costs speed at small M on SM90
    (no split-K).
    """
    if out_dtype not in (torch.bfloat16, torch.float16):
        raise RuntimeError(
            f"scaled_fp4_mm: argument 'out_dtype': expected torch.bfloat16 or torch.float16, got {out_dtype}"
        )
    if a.dim() != 2 or b.dim() != 2:
        raise RuntimeError(
            f"scaled_fp4_mm: arguments 'a' and 'b': expected 2-D tensors, got shapes {tuple(a.shape)} and {tuple(b.shape)}"
        )
    out = torch.empty((a.shape[0], b.shape[0]), dtype=out_dtype, device=a.device)
    if batch_invariant:
        _ops._cutlass_scaled_fp4_mm_with_kernel(
            out, a, b, block_scale_a, block_scale_b, alpha, bias, True, None, -1
        )
    else:
        _ops.cutlass_scaled_fp4_mm(out, a, b, block_scale_a, block_scale_b, alpha, bias)
    return out


def cutlass_fp4_group_mm(
    out: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    a_blockscale: torch.Tensor,
    b_blockscales: torch.Tensor,
    alphas: torch.Tensor,
    problem_sizes: torch.Tensor,
    expert_offsets: torch.Tensor,
    sf_offsets: torch.Tensor,
) -> None:
    """NVFP4 grouped GEMM with vLLM v0.34.0's schema (docs/SPEC-MOE.md §5.2).

    For every expert e with m_e = problem_sizes[e, 0] > 0 rows starting at row
    off = expert_offsets[e]:
    ``out[off:off+m_e] = alphas[e] * dequant(a[off:off+m_e]) @ dequant(b[e]).T``
    (fp32 accumulation, one rounding to out's dtype). Rows of out outside
    every expert are not written.

    out: bf16/fp16 [M, N]; a: uint8 [M, K/2] packed e2m1 (rows grouped by
    expert); b: uint8 [E, N, K/2]; a_blockscale: float8_e4m3fn [R, Kp]
    (Kp = round_up(K/16, 4)) with expert e's 128x4-swizzled region at scale
    row sf_offsets[e] (a multiple of 128), as the experts-quant ops write it;
    b_blockscales: float8_e4m3fn [E, round_up(N, 128), Kp]; alphas: fp32 [E];
    problem_sizes: int32 [E, 3] rows (m_e, N, K); expert_offsets and
    sf_offsets: int32 [E]. K % 32 == 0 and N % 32 == 0 (vLLM additionally
    needs K % 64 and N % 128; lowbit reads the padded scale strides).
    The metadata stays on the device (no synchronisation; CUDA-graph safe):
    an expert whose metadata breaks the contract is not computed (on the CPU
    its in-bounds rows are set to NaN; the CUDA kernels leave them untouched).
    """
    _ops.cutlass_fp4_group_mm(
        out, a, b, a_blockscale, b_blockscales, alphas, problem_sizes, expert_offsets, sf_offsets
    )


kernel_names = kernel_names_query(_ops._kernel_names, "_cutlass_scaled_fp4_mm_with_kernel")
group_kernel_names = kernel_names_query(_ops._group_kernel_names, "_cutlass_fp4_group_mm_with_kernel")


from . import bench, selfcheck  # noqa: E402  (protocol modules for the lowbit CLI)

__all__ = [
    "OPS",
    "build_info",
    "cutlass_scaled_fp4_mm",
    "cutlass_scaled_mm_supports_fp4",
    "cutlass_fp4_group_mm",
    "group_kernel_names",
    "scaled_fp4_mm",
    "kernel_names",
    "bench",
    "selfcheck",
]
