"""`lowbit bench` protocol: logical bandwidth of every op against a
device-to-device copy of the same byte count measured in the same run.

Logical bytes = bytes read (the activation) + bytes written (packed fp4 and
every scale byte the op writes, padding included). GPU timing is CUDA-graph
replay (lowbit.testing.bench.time_cuda) over rotating input sets larger than
L2; CPU rows report GB/s of input per core against the pure-torch reference.
"""

from __future__ import annotations

import torch

from lowbit.cutlass_ext import round_up as _round_up
from lowbit.testing.shapes import MODELS, MOE, canonical_model, dense_layers

PACKAGE = "lowbit-nvfp4-quant"
GPU_MS = (1, 16, 128, 1024, 4096, 16384)
GPU_KS = (4096, 7168, 8192, 14336)
NUM_EXPERTS = MOE["DeepSeek-R1"].experts  # routed experts (docs/SPEC.md §4)


def model_ks(models) -> tuple[int, ...]:
    """Quant input widths K of `models` (any spelling): the K of every dense
    layer, or an MoE model's hidden and intermediate sizes (the fused SiLU's d
    is the same K)."""
    ks = set()
    for name in models:
        model = canonical_model(name)
        if model is None:
            raise ValueError(f"unknown model {name!r}; known: {list(MODELS)}")
        if model in MOE:
            ks |= {MOE[model].hidden, MOE[model].intermediate}
        else:
            ks |= {k for _, k, _ in dense_layers([model])}
    return tuple(sorted(ks))


def _row(op, k, m, impl, us, nbytes, metric_name="TB/s", scale=1e-12):
    return {"package": PACKAGE, "op": op, "shape": f"K={k}", "M": m, "impl": impl, "us": us,
            "metric": nbytes / (us * 1e-6) * scale, "metric_name": metric_name}


def _expert_counts(m, E, g):
    # m rows spread over E experts at random (multinomial), some experts empty
    idx = torch.randint(0, E, (m,), generator=g)
    return torch.bincount(idx, minlength=E)


def _gpu_cases(device, ms, ks, progress):
    from lowbit.testing.bench import rotation_count, time_cuda

    from . import _ops, expert_offsets, swizzled_scale_shape

    g = torch.Generator().manual_seed(0)
    rows = []
    for k in ks:
        for m in ms:
            kp = _round_up(k // 16, 4)
            cases = []
            # scaled_fp4_quant, swizzled
            nbytes = m * k * 2 + m * k // 2 + _round_up(m, 128) * kp

            def mk_quant():
                x = torch.randn(m, k, device=device, dtype=torch.bfloat16)
                gs = torch.tensor([448 * 6 / 4.0], device=device)
                out = torch.empty(m, k // 2, dtype=torch.uint8, device=device)
                sf = torch.empty(swizzled_scale_shape(m, k), dtype=torch.float8_e4m3fn, device=device)
                return lambda: _ops.scaled_fp4_quant.out(x, gs, True, output=out, output_scale=sf)

            cases.append(("scaled_fp4_quant", nbytes, mk_quant))
            nbytes_silu = m * 2 * k * 2 + m * k // 2 + _round_up(m, 128) * kp

            def mk_silu():
                x = torch.randn(m, 2 * k, device=device, dtype=torch.bfloat16)
                gs = torch.tensor([448 * 6 / 4.0], device=device)
                out = torch.empty(m, k // 2, dtype=torch.uint8, device=device)
                sf = torch.empty(swizzled_scale_shape(m, k), dtype=torch.float8_e4m3fn, device=device)
                return lambda: _ops.silu_and_mul_nvfp4_quant(out, sf, x, gs)

            cases.append(("silu_and_mul_nvfp4_quant", nbytes_silu, mk_silu))
            counts = _expert_counts(m, NUM_EXPERTS, g)
            off, sfo = expert_offsets(counts)
            sf_rows = int(sfo[-1])
            for silu in (False, True):
                cols = 2 * k if silu else k
                eb = m * cols * 2 + m * k // 2 + sf_rows * kp

                def mk_exp(silu=silu, cols=cols):
                    x = torch.randn(m, cols, device=device, dtype=torch.bfloat16)
                    gs = torch.full((NUM_EXPERTS,), 448 * 6 / 4.0, device=device)
                    out = torch.empty(m, k // 2, dtype=torch.uint8, device=device)
                    sf = torch.empty(_round_up(m, 128) + 128 * NUM_EXPERTS, kp,
                                     dtype=torch.float8_e4m3fn, device=device)
                    o, s = off.to(device), sfo.to(device)
                    op = (_ops.silu_and_mul_scaled_fp4_experts_quant if silu
                          else _ops.scaled_fp4_experts_quant)
                    return lambda: op(out, sf, x, gs, o, s)

                name = "silu_and_mul_scaled_fp4_experts_quant" if silu else "scaled_fp4_experts_quant"
                cases.append((name, eb, mk_exp))
            for name, nb, make in cases:
                if progress:
                    progress(f"{name} M={m} K={k}")
                fns = [make() for _ in range(rotation_count(nb, device))]
                us = time_cuda(fns)
                rows.append(_row(name, k, m, "lowbit", us, nb))
                # the copy floor: a D2D copy moving the same bytes (read + write)
                half = max(nb // 2, 16)
                bufs = [(torch.empty(half, dtype=torch.uint8, device=device),
                         torch.empty(half, dtype=torch.uint8, device=device))
                        for _ in range(rotation_count(nb, device))]
                for s, _ in bufs:
                    s.random_()
                cus = time_cuda([lambda s=s, d=d: d.copy_(s) for s, d in bufs])
                rows.append(_row(name, k, m, "copy floor", cus, 2 * half))
                del fns, bufs
            torch.cuda.empty_cache()
    return rows


def _cpu_cases(ms, ks, progress):
    """GB/s of input per core: lowbit on one thread, and on all threads (total
    over the thread count), against the pure-torch reference on all threads."""
    from lowbit.testing import nvfp4 as ref
    from lowbit.testing.bench import time_cpu

    from . import scaled_fp4_quant

    threads = torch.get_num_threads()
    rows = []
    for k in ks:
        for m in ms:
            if progress:
                progress(f"cpu scaled_fp4_quant M={m} K={k}")
            x = torch.randn(m, k, dtype=torch.bfloat16)
            gs = ref.global_scale_for(x)
            nbytes = m * k * 2
            rus = time_cpu(lambda: ref.quantize_nvfp4(x, gs, swizzled=True), iters=3)
            us = time_cpu(lambda: scaled_fp4_quant(x, gs, True), iters=7)
            torch.set_num_threads(1)
            try:
                us1 = time_cpu(lambda: scaled_fp4_quant(x, gs, True), iters=7)
            finally:
                torch.set_num_threads(threads)
            rows.append(_row("scaled_fp4_quant", k, m, "lowbit (1 thread)", us1, nbytes,
                             "GB/s per core", 1e-9))
            rows.append(_row("scaled_fp4_quant", k, m, f"lowbit ({threads} threads)", us,
                             nbytes / threads, "GB/s per core", 1e-9))
            rows.append(_row("scaled_fp4_quant", k, m, f"torch reference ({threads} threads)", rus,
                             nbytes / threads, "GB/s per core", 1e-9))
    return rows


def run(device, *, models=None, quick=False, progress=None) -> list[dict]:
    """Long-format benchmark rows (see docs/DEVELOPING.md)."""
    device = torch.device(device)
    ks = GPU_KS
    if models:
        ks = model_ks(models)
    if device.type == "cuda":
        ms = (1, 128, 4096) if quick else GPU_MS
        if quick and not models:
            ks = (4096,)
        with torch.cuda.device(device):
            return _gpu_cases(device, ms, ks, progress)
    ms = (1, 16, 128) if quick else (1, 16, 128, 1024)
    return _cpu_cases(ms, (4096,) if quick else (4096, 14336), progress)
