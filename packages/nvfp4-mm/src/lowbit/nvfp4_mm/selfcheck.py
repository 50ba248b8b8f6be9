"""`lowbit check` protocol: run the GEMM on an embedded realistic problem and
compare with the pure-torch reference (docs/SPEC.md §3: relative error <=
1e-2). The larger problem adds a bias. The grouped GEMM runs a small MoE
routing (uneven and empty experts) against R5 (docs/SPEC-MOE.md §5.10)."""

from __future__ import annotations

import torch

from lowbit.testing.selfcheck import row

LIMIT = 1e-2


def run(device: torch.device) -> list[dict]:
    from lowbit.testing.nvfp4_gemm import nvfp4_gemm_ref, quantized_operand, relative_error

    from . import scaled_fp4_mm

    device = torch.device(device)
    g = torch.Generator().manual_seed(0)
    if device.type == "cuda":
        # Llama-3-8B attention output projection (N = K = 4096) at 16 and 300 tokens.
        problems = [(16, 4096, 4096), (300, 4096, 4096)]
    else:
        problems = [(7, 256, 512), (130, 96, 160)]
    rows = []
    for m, n, k in problems:
        a, sa, gsa = quantized_operand(m, k, device, g)
        b, sb, gsb = quantized_operand(n, k, device, g)
        alpha = (1.0 / (gsa * gsb)).float()
        with_bias = m > 100
        for dt in (torch.bfloat16, torch.float16):
            bias = torch.randn(n, generator=g).to(dt).to(device) if with_bias else None
            ref = nvfp4_gemm_ref(a, b, sa, sb, alpha, bias)
            out = scaled_fp4_mm(a, b, sa, sb, alpha, dt, bias=bias)
            err = relative_error(out.float(), ref)
            problem = f"M={m} N={n} K={k} out={str(dt).replace('torch.', '')}" + (" bias" if with_bias else "")
            rows.append(row("cutlass_scaled_fp4_mm", problem, err, LIMIT))
    return rows + _group_rows(device) + [_supports_row()]


def _group_rows(device: torch.device) -> list[dict]:
    from lowbit.testing.nvfp4_gemm import group_gemm_ref, random_group_problem, relative_error

    from . import cutlass_fp4_group_mm

    # Qwen3-30B-A3B's GEMM2 shape (N = 2048, K = 768) on the GPU, small on the CPU.
    counts, n, k = ([0, 37, 1, 0, 130, 9, 0, 64], 2048, 768) if device.type == "cuda" else ([0, 5, 1, 9], 64, 96)
    x = random_group_problem(counts, n, k, device, torch.Generator().manual_seed(1))
    names = ("a", "b", "a_blockscale", "b_blockscales", "alphas", "problem_sizes", "expert_offsets", "sf_offsets")
    ref, covered = group_gemm_ref(*[x[key] for key in names])
    rows = []
    for dt in (torch.bfloat16, torch.float16):
        out = torch.empty(sum(counts), n, dtype=dt, device=device)
        cutlass_fp4_group_mm(out, *[x[key] for key in names])
        err = relative_error(out.float().cpu()[covered], ref[covered])
        problem = f"E={len(counts)} M={sum(counts)} N={n} K={k} out={str(dt).replace('torch.', '')}"
        rows.append(row("cutlass_fp4_group_mm", problem, err, LIMIT))
    return rows


def _supports_row() -> dict:
    """cutlass_scaled_mm_supports_fp4 answers from the build: true exactly for the
    capabilities whose architecture was compiled (sm_80 never)."""
    from . import build_info, cutlass_scaled_mm_supports_fp4

    archs = {str(a).rstrip("af") for a in build_info().get("cuda_archs", [])}
    caps = (80, 90, 100, 120)
    wrong = [c for c in caps if cutlass_scaled_mm_supports_fp4(c) != (c != 80 and str(c) in archs)]
    return row("cutlass_scaled_mm_supports_fp4", "capabilities 8.0, 9.0, 10.0, 12.0", len(wrong), 0,
               "capabilities answered wrongly")
