"""What every quantized MoE layer of this package shares (docs/SPEC-MOE.md
§5.9): the lookup of another family's op, the shape check of the gated
experts, and one grouped GEMM over the routed rows. Routing and combine are
:func:`lowbit.moe.route` / :func:`lowbit.moe.combine`."""

from __future__ import annotations

import importlib

import torch


def optional_family(module: str):
    """Import another lowbit family once (at import time, so the forwards stay
    traceable by torch.compile): ``(module, None)``, or ``(None, why)`` when it
    cannot be imported."""
    try:
        return importlib.import_module(module), None
    except Exception as e:  # not installed, or its library does not load
        return None, f"{module} cannot be imported ({type(e).__name__}: {e})"


def need(family, name: str, who: str):
    """``name`` of a family from :func:`optional_family` (looked up per call),
    or NotImplementedError saying that ``who`` needs it."""
    mod, why = family
    fn = getattr(mod, name, None) if mod is not None else None
    if fn is None:
        raise NotImplementedError(f"{who} needs {name}: " + (
            why or f"the installed {mod.__name__} does not provide it yet"))
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
