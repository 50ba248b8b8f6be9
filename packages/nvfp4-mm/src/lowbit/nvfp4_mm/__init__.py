"""lowbit.nvfp4_mm: NVFP4 x NVFP4 scaled GEMM (docs/SPEC.md §1.4, §2.2).

Ops in ``torch.ops.lowbit_nvfp4_mm``:

* ``cutlass_scaled_fp4_mm(out, a, b, block_scale_a, block_scale_b, alpha, bias=None)``
  writes ``out = alpha * dequant(a) @ dequant(b).T + bias`` (fp32
  accumulation and epilogue, one rounding to out's dtype).
* ``cutlass_scaled_mm_supports_fp4(capability) -> bool``: true exactly where
  this build has a kernel for that compute capability (90 = Hopper included).

Kernels: CPU reference, SM90 (in-kernel dequant to fp16 + tensor cores, exact
products, fp32 accumulation), SM100/SM120 (CUTLASS block-scaled FP4 GEMMs).
"""

from __future__ import annotations

from pathlib import Path

import torch

from lowbit.cutlass_ext import build_info as _build_info
from lowbit.cutlass_ext import load_ops_library

_HERE = Path(__file__).resolve().parent
load_ops_library(_HERE)

_ops = torch.ops.lowbit_nvfp4_mm

OPS: dict[str, tuple[str, ...]] = {}


def build_info() -> dict:
    """What this build contains (written by the CMake module)."""
    return _build_info(_HERE)


def _targets() -> tuple[str, ...]:
    t = ["CPU"]
    for cap, name in ((90, "SM90"), (100, "SM100"), (120, "SM120")):
        if _ops.cutlass_scaled_mm_supports_fp4(cap):
            t.append(name)
    return tuple(t)


OPS.update({"cutlass_scaled_fp4_mm": _targets(), "cutlass_scaled_mm_supports_fp4": _targets()})


# ----------------------------------------------------------------- fakes
@torch.library.register_fake("lowbit_nvfp4_mm::cutlass_scaled_fp4_mm")
def _fake_mm(out, a, b, block_scale_a, block_scale_b, alpha, bias=None):
    return None


@torch.library.register_fake("lowbit_nvfp4_mm::_cutlass_scaled_fp4_mm_with_kernel")
def _fake_mm_with_kernel(out, a, b, block_scale_a, block_scale_b, alpha, bias, batch_invariant, kernel, splits):
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


def _device_capability(device: torch.device | str) -> int:
    device = torch.device(device)
    if device.type == "cpu":
        return 0
    major, minor = torch.cuda.get_device_capability(device)
    return 10 * major + minor


def kernel_names(device: torch.device | str = "cpu") -> list[str]:
    """Names of the kernels this build has for the device's target (tests and
    benchmarks pass one to the private op ``_cutlass_scaled_fp4_mm_with_kernel``)."""
    return list(_ops._kernel_names(_device_capability(device)))


from . import bench, selfcheck  # noqa: E402  (protocol modules for the lowbit CLI)

__all__ = [
    "OPS",
    "build_info",
    "cutlass_scaled_fp4_mm",
    "cutlass_scaled_mm_supports_fp4",
    "scaled_fp4_mm",
    "kernel_names",
    "bench",
    "selfcheck",
]
