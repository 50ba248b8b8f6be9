"""`lowbit check` protocol: every op on a realistic routing problem with random
data against the pure-torch reference (lowbit.testing.moe)."""

from __future__ import annotations

import torch


def _row(op, problem, value, limit, metric):
    return {"op": op, "problem": problem, "passed": bool(value <= limit), "metric": metric,
            "value": float(value), "limit": float(limit)}


def _random_ids(m, topk, E, g):
    ids = torch.randint(0, E, (m, topk), generator=g, dtype=torch.int32)
    ids[:: max(m // 7, 1), -1] = -1  # a few invalid routes (expert parallelism)
    return ids


def run(device: torch.device) -> list[dict]:
    from lowbit.testing import moe as ref

    from . import _ops, route, shuffle_rows

    device = torch.device(device)
    g = torch.Generator(device="cpu").manual_seed(0)
    # DeepSeek-R1 routing (E=256, top-8, H=7168, I=2048); CPU: fewer tokens, smaller H.
    m, E, topk, H, inter = (4096, 256, 8, 7168, 2048) if device.type == "cuda" else (
        300, 256, 8, 512, 256)
    ids = _random_ids(m, topk, E, g)
    r = route(ids.to(device), E, inter, H)
    want = ref.moe_mm_data_ref(ids, E, inter, H)
    bad = sum(int((getattr(r, key).cpu() != want[key]).sum()) for key in
              ("expert_offsets", "blockscale_offsets", "problem_sizes1", "problem_sizes2",
               "input_permutation", "output_permutation"))
    rows = [_row("get_cutlass_moe_mm_data", f"m={m} topk={topk} E={E} int32 ids", bad, 0,
                 "mismatched entries")]
    off = torch.cat([torch.zeros(1, dtype=torch.int64),
                     torch.randint(0, 64, (E,), generator=g).cumsum(0)])
    ps1 = torch.empty(E, 3, dtype=torch.int32, device=device)
    ps2 = torch.empty_like(ps1)
    _ops.get_cutlass_moe_mm_problem_sizes_from_expert_offsets(off.to(device), ps1, ps2, inter, H,
                                                             True)
    w1, w2 = ref.problem_sizes_from_offsets_ref(off, inter, H, True)
    bad = int((ps1.cpu() != w1).sum() + (ps2.cpu() != w2).sum())
    rows.append(_row("get_cutlass_moe_mm_problem_sizes_from_expert_offsets",
                     f"E={E} int64 offsets swap_ab", bad, 0, "mismatched entries"))
    x = torch.randn(m, H, generator=g).to(torch.bfloat16).to(device)
    got = shuffle_rows(x, r.input_permutation)
    bad = int((got.cpu().view(torch.int16) !=
               ref.shuffle_rows_ref(x.cpu(), r.input_permutation.cpu()).view(torch.int16)).sum())
    rows.append(_row("shuffle_rows", f"[{m}, {H}] bf16 -> {m * topk} rows", bad, 0,
                     "mismatched elements"))
    return rows
