"""Whole MoE forward benchmark (issue #14; docs/SPEC-MOE.md §5.11): lowbit's
quantized MoE layers against a bf16 torch MoE with the same routing.

Per model of ``lowbit.testing.shapes.MOE``, one layer of random bf16 experts
(w ~ N(0, 1/K)) is quantized to every format that runs on the device (NVFP4;
W4A8 on SM90 and the CPU; MXFP4 where lowbit-mxfp4 has a grouped GEMM); the
bf16 baseline's weights are then the NVFP4 experts dequantized. The bf16 MoE
is lowbit's device routing + gather, ``torch._grouped_mm`` (gate/up),
``silu(gate) * up`` in torch, ``torch._grouped_mm`` (down) and the combine.
Per token count: uniform random top-k routing without replacement (fixed
seed), x ~ N(0, 1) bf16; each implementation is one CUDA graph of the whole
forward (routing on the device), all timed interleaved in the same run
(``lowbit.testing.bench.time_cuda_interleaved``), so ratios come from one
run. One model's weights are alive at a time (DeepSeek-R1: 22.5 GB of bf16
experts plus the quantized copies).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from lowbit.testing.shapes import MOE, MoeShape

from ._layer import format_unavailable, fp4_expert_gemm

PACKAGE = "lowbit-moe"
FORWARD_MODELS = ("DeepSeek-R1", "Qwen3-30B-A3B", "Qwen3-235B-A22B", "Llama-4-Scout",
                  "gpt-oss-120b")
FORWARD_TOKENS = (1, 4, 16, 64, 256, 1024, 4096, 8192)
STAGE_TOKENS = (16, 4096)          # one decode and one prefill point per model
CALIBRATION_TOKENS = 64            # activation global scales and the error column
CPU_MODELS = {"tiny (CPU)": MoeShape(16, 4, 256, 128)}
CPU_TOKENS = (1, 16)
BF16 = "torch bf16"
FORMATS = ("nvfp4", "w4a8", "mxfp4")


# ----------------------------------------------------------------- the bf16 baseline
def _bf16_gate_up(a, r, w13):
    h = torch._grouped_mm(a, w13.transpose(-2, -1), offs=r.expert_offsets[1:])
    g, u = h.chunk(2, dim=-1)
    return torch.nn.functional.silu(g) * u


def bf16_moe_forward(x, topk_ids, topk_weights, w13, w2):
    """The bf16 torch MoE of the benchmark (w13 ``[E, 2I, H]``, w2 ``[E, H, I]``)."""
    from . import combine, route, shuffle_rows

    E, H, inter = w13.shape[0], x.shape[1], w2.shape[2]
    r = route(topk_ids, E, inter, H)
    y = _bf16_gate_up(shuffle_rows(x, r.input_permutation), r, w13)
    c3 = torch._grouped_mm(y, w2.transpose(-2, -1), offs=r.expert_offsets[1:])
    return combine(c3, r.output_permutation, topk_weights)


# ----------------------------------------------------------------- formats
def _quantize(fmt: str, w13, w2):
    from . import quantize_experts_mxfp4, quantize_experts_nvfp4, quantize_experts_w4a8

    q = {"nvfp4": quantize_experts_nvfp4, "w4a8": quantize_experts_w4a8,
         "mxfp4": quantize_experts_mxfp4}[fmt]
    return q(w13), q(w2)


def _dequantize_nvfp4_into(w: torch.Tensor, packed, scales, gs) -> None:
    from lowbit.testing.nvfp4 import dequantize_nvfp4

    N, K = w.shape[1], w.shape[2]
    for e in range(w.shape[0]):  # one expert at a time: no fp32 copy of all experts
        w[e] = dequantize_nvfp4(packed[e], scales[e], gs[e], N, K).to(w.dtype)


@dataclass
class Layer:
    """One model's MoE layer in every format that runs on the device."""

    name: str
    shape: MoeShape
    w13: torch.Tensor  # bf16 [E, 2I, H]: the NVFP4 experts dequantized
    w2: torch.Tensor   # bf16 [E, H, I]
    args: dict = field(default_factory=dict)     # format -> forward arguments after x, ids, w
    skipped: dict = field(default_factory=dict)  # format -> reason
    error: dict = field(default_factory=dict)    # impl -> relative error vs bf16 on w


def _routing(T: int, s: MoeShape, device, seed: int = 0):
    g = torch.Generator(device=device).manual_seed(seed + T)
    ids = torch.rand(T, s.experts, generator=g, device=device).topk(s.topk, dim=1).indices
    w = torch.softmax(torch.randn(T, s.topk, generator=g, device=device), dim=-1)
    x = torch.randn(T, s.hidden, generator=g, device=device).to(torch.bfloat16)
    return x, ids.to(torch.int32), w


def _nvfp4_args(q13, q2, x, ids, w13, device):
    """NVFP4 forward arguments; activation global scales from a calibration
    batch (448 * 6 / amax of x and of silu(gate) * up)."""
    from . import route, shuffle_rows

    E = w13.shape[0]
    r = route(ids, E, w13.shape[1] // 2, x.shape[1])
    y = _bf16_gate_up(shuffle_rows(x, r.input_permutation), r, w13)
    valid = r.expert_offsets[-1:]  # rows past the valid routes are not computed
    rows = torch.arange(y.shape[0], device=device).unsqueeze(1) < valid
    a1 = torch.full((E,), 448 * 6.0, device=device) / x.float().abs().amax()
    a2 = torch.full((E,), 448 * 6.0, device=device) / (y.float().abs() * rows).amax()
    (p13, s13, g13), (p2, s2, g2) = q13, q2
    return (p13, s13, 1 / (a1 * g13), p2, s2, 1 / (a2 * g2), a1, a2)


def build_layer(name: str, s: MoeShape, device, progress=None) -> Layer:
    """Random experts, every format's weights, the bf16 (dequantized NVFP4)
    weights, and each format's relative error at the calibration batch
    against the bf16 MoE on the original experts."""
    say = progress or (lambda _: None)
    g = torch.Generator(device=device).manual_seed(1)
    E, H, inter = s.experts, s.hidden, s.intermediate
    bf16 = dict(generator=g, device=device, dtype=torch.bfloat16)  # no fp32 copy (30 GB)
    w13 = torch.randn(E, 2 * inter, H, **bf16).mul_(H**-0.5)
    w2 = torch.randn(E, H, inter, **bf16).mul_(inter**-0.5)
    layer = Layer(name, s, w13, w2)
    x, ids, w = _routing(CALIBRATION_TOKENS, s, device, seed=7)
    exact = bf16_moe_forward(x, ids, w, w13, w2).float()
    quantized = {}
    for fmt in FORMATS:
        why = format_unavailable(fmt, device, s)
        if why:
            layer.skipped[fmt] = why
            continue
        say(f"{name}: quantizing the experts to {fmt}")
        quantized[fmt] = _quantize(fmt, w13, w2)
    if "nvfp4" not in quantized:
        raise RuntimeError(f"{name}: the NVFP4 layer does not run here ({layer.skipped['nvfp4']})")
    for fmt, (q13, q2) in quantized.items():
        layer.args[fmt] = (_nvfp4_args(q13, q2, x, ids, w13, device) if fmt == "nvfp4" else
                           (q13, q2) if fmt == "w4a8" else (*q13, *q2))
    _dequantize_nvfp4_into(w13, *quantized["nvfp4"][0])
    _dequantize_nvfp4_into(w2, *quantized["nvfp4"][1])
    for impl in (BF16, *layer.args):
        out = forward_fn(layer, impl, x, ids, w)().float()
        layer.error[impl] = float((out - exact).norm() / exact.norm())
    return layer


def forward_fn(layer: Layer, impl: str, x, ids, w) -> Callable[[], torch.Tensor]:
    """A closure running one implementation's whole forward."""
    from . import mxfp4_moe_forward, nvfp4_moe_forward, w4a8_moe_forward

    if impl == BF16:
        return lambda: bf16_moe_forward(x, ids, w, layer.w13, layer.w2)
    fwd = {"nvfp4": nvfp4_moe_forward, "w4a8": w4a8_moe_forward,
           "mxfp4": mxfp4_moe_forward}[impl]
    args = layer.args[impl]
    return lambda: fwd(x, ids, w, *args)


# ----------------------------------------------------------------- per-stage closures
def _stages_bf16(layer, x, ids, w):
    from . import combine, route, shuffle_rows

    s = layer.shape
    r = route(ids, s.experts, s.intermediate, s.hidden)
    a = shuffle_rows(x, r.input_permutation)
    h = torch._grouped_mm(a, layer.w13.transpose(-2, -1), offs=r.expert_offsets[1:])
    y = _bf16_gate_up(a, r, layer.w13)
    c3 = torch._grouped_mm(y, layer.w2.transpose(-2, -1), offs=r.expert_offsets[1:])

    def silu_mul():
        g, u = h.chunk(2, dim=-1)
        return torch.nn.functional.silu(g) * u

    return {"route": lambda: route(ids, s.experts, s.intermediate, s.hidden),
            "gather": lambda: shuffle_rows(x, r.input_permutation),
            "gemm1": lambda: torch._grouped_mm(a, layer.w13.transpose(-2, -1),
                                               offs=r.expert_offsets[1:]),
            "silu-mul": silu_mul,
            "gemm2": lambda: torch._grouped_mm(y, layer.w2.transpose(-2, -1),
                                               offs=r.expert_offsets[1:]),
            "combine": lambda: combine(c3, r.output_permutation, w)}


def _stages_nvfp4(layer, x, ids, w):
    from lowbit.nvfp4_mm import cutlass_fp4_group_mm as mm
    from lowbit.nvfp4_quant import (scaled_fp4_experts_quant as quant,
                                    silu_and_mul_scaled_fp4_experts_quant as silu_quant)

    from . import combine, route, shuffle_rows

    s = layer.shape
    q13, s13, al13, q2, s2, al2, a1, a2 = layer.args["nvfp4"]
    r = route(ids, s.experts, s.intermediate, s.hidden)
    off, sf_off = r.expert_offsets, r.blockscale_offsets
    a = shuffle_rows(x, r.input_permutation)
    codes, sf = quant(a, a1, off, sf_off)
    c1 = fp4_expert_gemm(mm, codes, sf, q13, s13, r.problem_sizes1, r, x.dtype, al13)
    hc, hs = silu_quant(c1, a2, off, sf_off)
    c3 = fp4_expert_gemm(mm, hc, hs, q2, s2, r.problem_sizes2, r, x.dtype, al2)
    return {"route": lambda: route(ids, s.experts, s.intermediate, s.hidden),
            "gather": lambda: shuffle_rows(x, r.input_permutation),
            "quant": lambda: quant(a, a1, off, sf_off),
            "gemm1": lambda: fp4_expert_gemm(mm, codes, sf, q13, s13, r.problem_sizes1, r,
                                             x.dtype, al13),
            "silu-quant": lambda: silu_quant(c1, a2, off, sf_off),
            "gemm2": lambda: fp4_expert_gemm(mm, hc, hs, q2, s2, r.problem_sizes2, r, x.dtype,
                                             al2),
            "combine": lambda: combine(c3, r.output_permutation, w)}


def _stages_w4a8(layer, x, ids, w):
    from lowbit.w4a8_mm import cutlass_w4a8_moe_mm as mm

    from . import (combine, per_token_fp8_quant, route, shuffle_rows,
                   silu_and_mul_per_token_fp8_quant)
    from .w4a8 import w4a8_expert_gemm, w4a8_problem_sizes

    s = layer.shape
    w13, w2 = layer.args["w4a8"]
    r = route(ids, s.experts, s.intermediate, s.hidden)
    off64, ps1, ps2 = w4a8_problem_sizes(r, s.experts, s.intermediate, s.hidden)
    aq, asc = per_token_fp8_quant(x)
    aq_p, as_p = shuffle_rows(aq, r.input_permutation), shuffle_rows(asc, r.input_permutation)
    c1 = w4a8_expert_gemm(mm, aq_p, as_p, w13, off64, ps1)
    hq, hs = silu_and_mul_per_token_fp8_quant(c1)
    c3 = w4a8_expert_gemm(mm, hq, hs, w2, off64, ps2)
    return {"route": lambda: route(ids, s.experts, s.intermediate, s.hidden),
            "problem sizes": lambda: w4a8_problem_sizes(r, s.experts, s.intermediate, s.hidden),
            "quant": lambda: per_token_fp8_quant(x),
            "gather": lambda: (shuffle_rows(aq, r.input_permutation),
                               shuffle_rows(asc, r.input_permutation)),
            "gemm1": lambda: w4a8_expert_gemm(mm, aq_p, as_p, w13, off64, ps1),
            "silu-quant": lambda: silu_and_mul_per_token_fp8_quant(c1),
            "gemm2": lambda: w4a8_expert_gemm(mm, hq, hs, w2, off64, ps2),
            "combine": lambda: combine(c3, r.output_permutation, w)}


STAGES = {BF16: _stages_bf16, "nvfp4": _stages_nvfp4, "w4a8": _stages_w4a8}


# ----------------------------------------------------------------- timing and rows
def _time(device, candidates: dict, budget_us: float = 150e3) -> dict[str, float]:
    from lowbit.testing.bench import time_cpu, time_cuda_interleaved

    if device.type == "cuda":
        return time_cuda_interleaved({k: [f] for k, f in candidates.items()}, budget_us=budget_us,
                                     warmup_us=min(20e3, budget_us / 5))
    return {k: time_cpu(f, warmup=1, iters=3) for k, f in candidates.items()}


def _row(op, layer, T, impl, us, metric, metric_name, **extra):
    s = layer.shape
    return {"package": PACKAGE, "op": op, "model": layer.name,
            "shape": f"E={s.experts} topk={s.topk} H={s.hidden} I={s.intermediate}", "M": T,
            "impl": impl, "us": us, "metric": metric, "metric_name": metric_name, **extra}


def forward_rows(layer: Layer, T: int, device) -> list[dict]:
    """Every implementation's whole forward at T tokens; metric: speed-up over bf16."""
    x, ids, w = _routing(T, layer.shape, device)
    touched = int(torch.unique(ids).numel())
    us = _time(device, {impl: forward_fn(layer, impl, x, ids, w)
                        for impl in (BF16, *layer.args)})
    return [_row("moe_forward", layer, T, impl_name(impl), t, us[BF16] / t, "x bf16",
                 experts=touched, rel_err=layer.error[impl]) for impl, t in us.items()]


def impl_name(impl: str) -> str:
    """A row's implementation: ``torch bf16`` or ``lowbit <format>``."""
    return impl if impl == BF16 else f"lowbit {impl}"


def stage_rows(layer: Layer, T: int, device) -> list[dict]:
    """Each stage of the bf16, NVFP4 and W4A8 forwards alone (metric: share of
    the sum of that implementation's stages)."""
    x, ids, w = _routing(T, layer.shape, device)
    rows = []
    for impl, build in STAGES.items():
        if impl != BF16 and impl not in layer.args:
            continue
        us = _time(device, build(layer, x, ids, w), budget_us=30e3)
        total = sum(us.values())
        rows += [_row("moe_forward stage", layer, T, f"{impl}: {st}", t, t / total,
                      "share") for st, t in us.items()]
    return rows


def run_forward(device, *, models=None, tokens=None, stages=True, progress=None) -> list[dict]:
    """Rows of every (model, tokens, implementation) forward and, with
    ``stages``, the per-stage rows at STAGE_TOKENS. CPU: a tiny layer."""
    device = torch.device(device)
    say = progress or (lambda _: None)
    if device.type == "cuda":
        shapes = {m: MOE[m] for m in (models or FORWARD_MODELS) if m in MOE}
        tokens = tokens or FORWARD_TOKENS
    else:
        shapes, tokens = CPU_MODELS, tokens or CPU_TOKENS
    rows = []
    for name, s in shapes.items():
        say(f"{name}: building the layer")
        layer = build_layer(name, s, device, say)
        for T in tokens:
            say(f"{name}: forward at {T} tokens")
            rows += forward_rows(layer, T, device)
        for T in (STAGE_TOKENS if stages else ()):
            if T in tokens:
                say(f"{name}: stages at {T} tokens")
                rows += stage_rows(layer, T, device)
        del layer
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows
