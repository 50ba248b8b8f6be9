"""What every quantized MoE layer of this package shares (docs/SPEC-MOE.md
§5.9): the other families whose ops it chains (imported once, at import time,
so the forwards stay traceable by torch.compile), whether a format runs on a
device, the shape check of the gated experts, and one FP4 grouped GEMM over
the routed rows. Routing and combine are :func:`lowbit.moe.route` /
:func:`lowbit.moe.combine`."""

from __future__ import annotations

import importlib

import torch


def optional_family(module: str):
    """``(module, None)``, or ``(None, why)`` when it cannot be imported."""
    try:
        return importlib.import_module(module), None
    except Exception as e:  # not installed, or its library does not load
        return None, f"{module} cannot be imported ({type(e).__name__}: {e})"


# Per format: (family module, its grouped GEMM op, every name the layer uses).
NEEDS = {
    "nvfp4": ("lowbit.nvfp4_mm", "cutlass_fp4_group_mm", ("cutlass_fp4_group_mm",)),
    "w4a8": ("lowbit.w4a8_mm", "cutlass_w4a8_moe_mm",
             ("cutlass_w4a8_moe_mm", "quantize_experts", "moe_strides")),
    "mxfp4": ("lowbit.mxfp4", "cutlass_mxfp4_group_mm",
              ("cutlass_mxfp4_group_mm", "mxfp4_experts_quant",
               "silu_and_mul_mxfp4_experts_quant", "quantize_weights")),
}
FAMILIES = {fmt: optional_family(module) for fmt, (module, _, _) in NEEDS.items()}


def need(fmt: str, name: str, who: str):
    """``name`` of the format's family (looked up per call), or
    NotImplementedError saying that ``who`` needs it."""
    mod, why = FAMILIES[fmt]
    fn = getattr(mod, name, None) if mod is not None else None
    if fn is None:
        raise NotImplementedError(f"{who} needs {name}: " + (
            why or f"the installed {mod.__name__} does not provide it yet"))
    return fn


def target_of(device) -> str:
    """The lowbit target name of a device (the values of the families' OPS)."""
    device = torch.device(device)
    if device.type == "cpu":
        return "CPU"
    major = torch.cuda.get_device_capability(device)[0]
    return {9: "SM90", 10: "SM100", 12: "SM120"}.get(major, f"SM{major}0")


def format_unavailable(fmt: str, device, shape=None) -> str | None:
    """Why a format's layer does not run on ``device`` (None: it runs);
    ``shape``: an optional MoeShape whose dimensions the format must support."""
    module, op, names = NEEDS[fmt]
    mod, why = FAMILIES[fmt]
    if mod is None:
        return why
    missing = [n for n in names if not hasattr(mod, n)]
    if missing:
        return f"{module} lacks {', '.join(missing)}"
    if target_of(device) not in getattr(mod, "OPS", {}).get(op, ()):
        return f"no {op} kernel for {target_of(device)}"
    if shape is not None and fmt == "w4a8" and (shape.hidden % 128 or shape.intermediate % 128):
        return "K % 128 != 0 (group 128)"
    return None


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
