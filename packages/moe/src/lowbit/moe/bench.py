"""`lowbit bench` protocol: the whole MoE forward of every format against a
bf16 torch MoE (:mod:`lowbit.moe.bench_forward`, op ``moe_forward``, metric:
speed-up over bf16), and the routing helpers against the pure-torch path an
MoE layer would otherwise run (stable argsort of the flat ids, bincount,
cumsum, scatter of the inverse permutation; and an index_select gather).

Routing rows per (model, tokens): ``get_cutlass_moe_mm_data`` (metric:
routes/s) and ``shuffle_rows`` of the hidden states to m*topk rows (metric:
TB/s of bytes read + written). GPU timing: CUDA-graph replay
(lowbit.testing.bench.time_cuda); CPU: a few small cases, median wall time.
"""

from __future__ import annotations

import torch

PACKAGE = "lowbit-moe"


def torch_route(ids: torch.Tensor, E: int, n: int, k: int):
    """The same tables as get_cutlass_moe_mm_data, from torch ops on the device."""
    flat = ids.reshape(-1).long()
    routes, topk = flat.numel(), ids.shape[1]
    valid = (flat >= 0) & (flat < E)
    bins = torch.where(valid, flat, E)
    order = torch.sort(bins, stable=True).indices
    # scatter_add, not bincount: CUDA bincount reads its max on the host (no graph capture)
    counts = torch.zeros(E + 1, dtype=torch.int64, device=ids.device)
    counts = counts.scatter_add_(0, bins, torch.ones_like(bins))[:E]
    z = counts.new_zeros(1)
    off = torch.cat([z, counts.cumsum(0)]).int()
    sf_off = torch.cat([z, ((counts + 127) // 128 * 128).cumsum(0)]).int()
    ps1 = torch.stack([counts, torch.full_like(counts, 2 * n), torch.full_like(counts, k)], 1).int()
    ps2 = torch.stack([counts, torch.full_like(counts, k), torch.full_like(counts, n)], 1).int()
    out_perm = torch.empty_like(order)
    out_perm[order] = torch.arange(routes, device=ids.device)
    out_perm = torch.where(valid, out_perm, routes).int()
    in_perm = torch.where(valid[order], order // topk, -1).int()
    return off, sf_off, ps1, ps2, in_perm, out_perm


def torch_shuffle(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    ok = (idx >= 0) & (idx < x.shape[0])
    return x.index_select(0, torch.where(ok, idx, 0)) * ok.unsqueeze(1).to(x.dtype)


def _row(op, model, shape, m, impl, us, metric, metric_name):
    return {"package": PACKAGE, "op": op, "model": model, "shape": shape, "M": m, "impl": impl,
            "us": us, "metric": metric, "metric_name": metric_name}


def _timer(device):
    from lowbit.testing.bench import time_cpu, time_cuda

    if device.type == "cuda":
        return lambda fn: time_cuda([fn])
    return lambda fn: time_cpu(fn, warmup=1, iters=5)


def _case(device, model, shape, m, progress):
    from . import route, shuffle_rows

    E, topk, H, inter = shape
    time = _timer(device)
    g = torch.Generator().manual_seed(m)
    ids = torch.randint(0, E, (m, topk), generator=g, dtype=torch.int32).to(device)
    x = torch.randn(m, H, generator=g).to(torch.bfloat16).to(device)
    desc = f"E={E} topk={topk} H={H}"
    routes = m * topk
    if progress:
        progress(f"{model} m={m}")
    rows = []
    for impl, fn in (("lowbit", lambda: route(ids, E, inter, H)),
                     ("torch argsort", lambda: torch_route(ids, E, inter, H))):
        us = time(fn)
        rows.append(_row("get_cutlass_moe_mm_data", model, desc, m, impl, us, routes / us * 1e-3,
                         "Groutes/s"))
    perm = route(ids, E, inter, H).input_permutation
    nbytes = 2 * routes * H * x.element_size() + routes * 4
    for impl, fn in (("lowbit", lambda: shuffle_rows(x, perm)),
                     ("torch index_select", lambda: torch_shuffle(x, perm.long()))):
        us = time(fn)
        rows.append(_row("shuffle_rows", model, desc, m, impl, us, nbytes / us * 1e-6, "TB/s"))
    return rows


def run(device: torch.device, *, models=None, quick: bool = False, progress=None) -> list[dict]:
    from lowbit.testing.shapes import MOE, canonical_model

    from .bench_forward import run_forward

    device = torch.device(device)
    names = [canonical_model(m) or m for m in (models or MOE)]
    names = [n for n in names if n in MOE]
    quick_tokens = (1, 64, 1024) if device.type == "cuda" else (1,)
    return run_forward(device, models=names, tokens=quick_tokens if quick else None,
                       stages=False, progress=progress) + run_routing(
        device, models=names, quick=quick, progress=progress)


def run_routing(device: torch.device, *, models=None, quick: bool = False,
                progress=None) -> list[dict]:
    """The routing helpers' rows (``models``: canonical MoE model names)."""
    from lowbit.testing.shapes import MOE, MOE_TOKENS

    names = list(models or MOE)
    if device.type == "cuda":
        tokens = (1, 64, 1024, 8192) if quick else MOE_TOKENS
    else:
        names, tokens = names[:1], ((1, 64) if quick else (1, 16, 256))
    rows = []
    for name in names:
        s = MOE[name]
        for m in tokens:
            rows += _case(device, name, (s.experts, s.topk, s.hidden, s.intermediate), m, progress)
    return rows
