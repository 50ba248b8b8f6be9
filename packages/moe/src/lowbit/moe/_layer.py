"""What every quantized MoE layer of this package shares (docs/SPEC-MOE.md
§5.9): the lookup of another family's op, the shape check of the gated
experts, and one grouped GEMM over the routed rows. Routing and combine are
:func:`lowbit.moe.route` / :func:`lowbit.moe.combine`."""

from __future__ import annotations

import importlib

import torch


def need(module: str, name: str, who: str):
    """``module.name`` of another lowbit family, or NotImplementedError saying
    that ``who`` needs it (family not installed, or a version without it)."""
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise NotImplementedError(f"{who} needs {module}.{name}, and {module} cannot be "
                                  f"imported ({e})") from e
    fn = getattr(mod, name, None)
    if fn is None:
        raise NotImplementedError(f"{who} needs {module}.{name}, which the installed {module} "
                                  "does not provide yet")
    return fn


def check_gated(op: str, n1: int, inter: int, w13_shape) -> None:
    """GEMM1 must be gate || up: N = 2I with I taken from GEMM2's K."""
    if n1 != 2 * inter:
        raise ValueError(f"{op}: argument 'w13': expected [E, 2I = {2 * inter}, ...] "
                         f"(gate || up, I from w2), got shape {list(w13_shape)}")


def fp4_expert_gemm(group_mm, codes, codes_sf, w, w_sf, problem_sizes, routing, dtype,
                    *alphas) -> torch.Tensor:
    """One FP4 grouped GEMM over the routed rows (NVFP4 passes its alphas):
    a new ``[rows, N]`` output; rows past the valid routes stay unwritten."""
    out = torch.empty(codes.shape[0], w.shape[1], dtype=dtype, device=codes.device)
    group_mm(out, codes, w, codes_sf, w_sf, *alphas, problem_sizes,
             routing.expert_offsets[:-1], routing.blockscale_offsets[:-1])
    return out
