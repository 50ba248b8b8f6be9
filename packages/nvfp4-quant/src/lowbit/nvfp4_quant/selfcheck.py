"""`lowbit check` protocol: run every op on a realistic problem with random
data and compare with the pure-torch reference of docs/SPEC.md (lowbit.testing.nvfp4)."""

from __future__ import annotations

import torch

from lowbit.testing.selfcheck import row as _row
from lowbit.testing.shapes import dense_layers


def _mismatch(a: torch.Tensor, b: torch.Tensor) -> int:
    return int((a.view(torch.uint8) != b.view(torch.uint8)).sum())


def run(device: torch.device) -> list[dict]:
    from lowbit.testing import nvfp4 as ref

    from . import (expert_offsets, scaled_fp4_experts_quant, scaled_fp4_quant,
                   silu_and_mul_nvfp4_quant, silu_and_mul_scaled_fp4_experts_quant)

    device = torch.device(device)
    g = torch.Generator(device="cpu").manual_seed(0)
    cuda = device.type == "cuda"
    # Llama-3-8B: hidden size K of the QKV layer, MLP width d of the down
    # projection (gate||up 2d); CPU: a smaller layer.
    ks = [k_ for _, k_, _ in dense_layers(["Llama-3-8B"])]
    hidden, mlp = min(ks), max(ks)
    m, k, d = (300, hidden, mlp) if cuda else (37, 512, 256)
    rows = []
    x = torch.randn(m, k, generator=g).to(torch.bfloat16).to(device)
    gs = ref.global_scale_for(x)
    for swz in (True, False):
        p, s = scaled_fp4_quant(x, gs, swz)
        rp, rs = ref.quantize_nvfp4(x, gs, swizzled=swz)
        bad = _mismatch(p, rp) + _mismatch(s, rs)
        rows.append(_row("scaled_fp4_quant", f"M={m} K={k} bf16 {'swizzled' if swz else 'linear'}",
                         bad, 0, "mismatched bytes"))
    # the .out overload into an int32 scale buffer, as vLLM allocates it
    rp, rs = ref.quantize_nvfp4(x, gs, swizzled=True)
    out = torch.empty(m, k // 2, dtype=torch.uint8, device=device)
    sf32 = torch.empty(rs.shape[0], rs.shape[1] // 4, dtype=torch.int32, device=device)
    torch.ops.lowbit_nvfp4_quant.scaled_fp4_quant.out(x, gs, True, output=out, output_scale=sf32)
    rows.append(_row("scaled_fp4_quant.out", f"M={m} K={k} bf16 swizzled, int32 scale buffer",
                     _mismatch(out, rp) + _mismatch(sf32, rs), 0, "mismatched bytes"))
    gu = torch.randn(m, 2 * d, generator=g).to(torch.bfloat16).to(device)
    y = ref.silu_and_mul_ref(gu)
    gsy = ref.global_scale_for(y)
    p, s = silu_and_mul_nvfp4_quant(gu, gsy)
    rp, rs = ref.quantize_nvfp4(y, gsy)
    # fused SiLU: exp may differ by an ulp from torch's, so allow rare one-step
    # differences (SPEC §3); the metric is the fraction of differing codes.
    frac = float((ref.unpack_fp4(p) != ref.unpack_fp4(rp)).float().mean())
    rows.append(_row("silu_and_mul_nvfp4_quant", f"M={m} d={d} bf16", frac, 1e-3,
                     "fraction of differing codes"))
    E = 8 if cuda else 4
    counts = torch.randint(0, 2 * m // E, (E,), generator=g)
    counts[1] = 0
    off, sfo = expert_offsets(counts)
    mt = int(off[-1]) + 3  # 3 orphan rows
    for silu in (False, True):
        cols = 2 * k if silu else k
        xe = torch.randn(mt, cols, generator=g).to(torch.bfloat16).to(device)
        src = ref.silu_and_mul_ref(xe) if silu else xe.float()
        gse = torch.rand(E, generator=g).add(0.5).mul(float(ref.global_scale_for(src))).to(device)
        fn = silu_and_mul_scaled_fp4_experts_quant if silu else scaled_fp4_experts_quant
        p, s = fn(xe, gse, off.to(device), sfo.to(device))
        rp, rs, written = ref.quantize_nvfp4_experts(src, gse, off, sfo, scale_rows=s.shape[0])
        used = int(sfo[-1])
        if silu:
            value = float((ref.unpack_fp4(p[written]) != ref.unpack_fp4(rp[written])).float().mean())
            limit, metric = 1e-3, "fraction of differing codes"
        else:
            value = _mismatch(p[written], rp[written]) + _mismatch(s[:used], rs[:used])
            limit, metric = 0, "mismatched bytes"
        name = "silu_and_mul_scaled_fp4_experts_quant" if silu else "scaled_fp4_experts_quant"
        rows.append(_row(name, f"E={E} rows={mt} K={k} bf16", value, limit, metric))
    return rows
