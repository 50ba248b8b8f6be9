"""Issue #17's W4A8 accuracy table: every schedule's relative error against the
exact (float64) result at N x K = 8192 x 28672, M = 1 and 64 (nn.Linear-like
data as the package tests make it), beside cuBLASLt's fp8 GEMM on the same fp8
operands with and without fast accumulation (fp32 promotion off / on).

    python perf/w4a8-mm/accuracy_long_k.py OUT.md

Run it with each build on PYTHONPATH (e.g. main vs branch s5-w4a8-promote) and
compare the tables; the errors are deterministic for the fixed seed.
"""
import sys

import torch

import lowbit.w4a8_mm as w4
from lowbit.testing import w4a8 as ref


def main(path):
    torch.manual_seed(0)
    N, K = 8192, 28672
    lines = [f"# W4A8 relative error at N={N} K={K} ({torch.cuda.get_device_name()})", "",
             "| M | implementation | relative error vs exact |", "|---|---|---|"]
    for M in (1, 64):
        w = torch.randn(N, K, device="cuda") / K**0.5
        q, s, ch = ref.quantize_weight(w, 128)
        A, tok = ref.quantize_activation(torch.randn(M, K, device="cuda"))
        B = w4.cutlass_encode_and_reorder_int4b(ref.pack_int4(q))
        gs = w4.cutlass_pack_scale_fp8(s)
        exact = ref.w4a8_mm(A, q, s, ch, tok, torch.float64)
        w8 = ref.dequantize_weight(q, s)
        for fast in (False, True):
            out = torch._scaled_mm(A, w8.t(), scale_a=tok.view(M, 1), scale_b=ch.view(1, N),
                                   out_dtype=torch.bfloat16, use_fast_accum=fast)
            lines.append(f"| {M} | cuBLASLt fp8, use_fast_accum={fast} | {ref.rel_err(out, exact):.3e} |")
        lines.append(f"| {M} | exact, rounded to bf16 | {ref.rel_err(exact.to(torch.bfloat16), exact):.3e} |")
        for name in [None] + list(w4.SCHEDULES):
            if name and N % int(name.split("x")[0]):
                continue
            out = w4.cutlass_w4a8_mm(A, B, gs, 128, ch, tok, torch.bfloat16, name)
            lines.append(f"| {M} | lowbit {name or 'heuristic'} | {ref.rel_err(out, exact):.3e} |")
        print("\n".join(lines[-4:]), flush=True)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
