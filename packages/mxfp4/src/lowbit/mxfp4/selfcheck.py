"""`lowbit check` protocol: every op on a realistic problem with random data
against the pure-torch oracles of docs/SPEC-MOE.md §5.10.1 (lowbit.testing.mxfp4).
GPU: gpt-oss-120b's hidden size K = 2880 (K % 128 != 0) over E = 32 experts;
CPU: a smaller problem."""

from __future__ import annotations

import torch

from lowbit.testing.selfcheck import row as _row


def _counts(m, E, g):
    c = torch.bincount(torch.randint(0, E, (m,), generator=g), minlength=E)
    c[1] = 0  # an empty expert
    return c


def _quant_rows(device, m, k, E, g) -> list[dict]:
    from lowbit.testing import mxfp4 as ref

    from . import expert_offsets, mxfp4_experts_quant, silu_and_mul_mxfp4_experts_quant

    rows = []
    counts = _counts(m, E, g)
    off, sfo = expert_offsets(counts)
    mt = int(off[-1]) + 3  # 3 orphan rows
    for silu in (False, True):
        x = (torch.randn(mt, 2 * k if silu else k, generator=g) * 4).to(torch.bfloat16)
        fn = silu_and_mul_mxfp4_experts_quant if silu else mxfp4_experts_quant
        p, s = fn(x.to(device), off.to(device), sfo.to(device))
        src = ref.silu_and_mul_ref(x) if silu else x.float()
        rp, rs, w, sw = ref.quantize_mxfp4_experts(src, off, sfo, s.shape[0])
        codes_bad = (ref.unpack_fp4(p.cpu()[w]) != ref.unpack_fp4(rp[w])).sum()
        scales_bad = (s.cpu()[sw] != rs[sw]).sum()
        name = "silu_and_mul_mxfp4_experts_quant" if silu else "mxfp4_experts_quant"
        problem = f"E={E} rows={mt} K={k} bf16"
        if silu:  # exp may differ by an ulp from torch's: rare one-step differences (§5.5)
            total = int(w.sum()) * k + int(sw.sum()) * s.shape[1]
            rows.append(_row(name, problem, float(codes_bad + scales_bad) / max(total, 1), 1e-3,
                             "fraction of differing codes and scales"))
        else:
            rows.append(_row(name, problem, int(codes_bad + scales_bad), 0, "mismatched codes and scale bytes"))
    return rows


def _group_row(device, m, n, k, E, g) -> dict:
    from lowbit.testing import mxfp4 as ref
    from lowbit.testing.nvfp4_gemm import relative_error

    from . import cutlass_mxfp4_group_mm

    counts = _counts(m, E, g).tolist()
    x = ref.random_group_problem(counts, n, k, device, g)
    names = ("a", "b", "a_blockscale", "b_blockscales", "problem_sizes", "expert_offsets", "sf_offsets")
    out = torch.empty(sum(counts), n, dtype=torch.bfloat16, device=device)
    cutlass_mxfp4_group_mm(out, *[x[key] for key in names])
    want = ref.group_mm_ref(*[x[key] for key in names], torch.float64)
    worst, lo = 0.0, 0
    for c in counts:
        if c:
            worst = max(worst, relative_error(out[lo:lo + c].cpu().double(), want[lo:lo + c]))
        lo += c
    return _row("cutlass_mxfp4_group_mm", f"E={E} M={sum(counts)} N={n} K={k} bf16", worst, 1e-2,
                "worst per-expert relative Frobenius error")


def run(device: torch.device) -> list[dict]:
    from . import group_kernel_names

    device = torch.device(device)
    g = torch.Generator().manual_seed(0)
    cuda = device.type == "cuda"
    rows = _quant_rows(device, *((256, 2880, 32) if cuda else (40, 256, 4)), g)
    if group_kernel_names(device):  # a build without this target's GEMM has no row to check
        rows.append(_group_row(device, *((256, 1024, 2880, 32) if cuda else (37, 128, 256, 4)), g))
    return rows
