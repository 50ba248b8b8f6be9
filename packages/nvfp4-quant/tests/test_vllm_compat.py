"""vLLM v0.34.0 compatibility of the quant ops (issue #13, docs/SPEC.md §1.2, §2.1, §3):
the block-scale arithmetic bit for bit, padded outputs, dirty output buffers, the fused
SiLU rounding and experts scale buffers of any row count (the functional op's vLLM
dtypes and shapes on vLLM's test shapes: test_nvfp4_quant.test_quant_shapes). Every
case runs on CPU and, where a GPU is visible, on CUDA."""

from __future__ import annotations

import pytest
import torch

from lowbit.testing import nvfp4 as ref
from lowbit.testing.checks import devices

import lowbit.nvfp4_quant as q  # noqa: F401  (loads the ops)

ops = torch.ops.lowbit_nvfp4_quant
DEVICES = devices()
DTYPES = [torch.float16, torch.bfloat16]
PADDED = [(128, 48, 64), (128, 80, 96), (150, 48, 64), (150, 80, 96), (64, 7152, 7168),
          (90, 48, 64)]
DIRTY_CODES = 0xFF
DIRTY_WORD = 0x7F7F7F7F


u8 = ref.as_bytes
assert_bytes_equal = ref.assert_bytes_equal


def dirty_outputs(m, pn, swizzled, device):
    """vLLM-style buffers for m rows of pn values, filled with garbage."""
    out = torch.full((m, pn // 2), DIRTY_CODES, dtype=torch.uint8, device=device)
    if swizzled:
        mp, kp = ref.round_up(m, 128), ref.round_up(pn // 16, 4)
        sf = torch.full((mp, kp // 4), DIRTY_WORD, dtype=torch.int32, device=device)
    else:
        sf = torch.full((m, pn // 16), 0x7F, dtype=torch.uint8, device=device)
    return out, sf


def padded_reference(y, gs, pn, swizzled):
    """Oracle for a padded output: the unpadded result widened with zero codes
    and zero scales (SPEC §2.1 "Padded outputs")."""
    m, n = y.shape
    p, s = ref.quantize_nvfp4(y, gs, swizzled=False)
    rp = torch.zeros(m, pn // 2, dtype=torch.uint8, device=y.device)
    rp[:, : n // 2] = p
    rs = torch.zeros(m, pn // 16, dtype=torch.uint8, device=y.device)
    rs[:, : n // 16] = u8(s)
    return rp, (ref.swizzle_scales(rs) if swizzled else rs)


# ------------------------------------------------------------------ §1.2 arithmetic
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_issue_example_rounds_like_vllm(device, dtype):
    """x = 0.478515625, gs = 702.171387, sf = 192: vLLM's arithmetic gives
    x * out_scale = 1.75 exactly, a tie that rounds to 2.0 (exact division gave
    1.74999976 -> 1.5)."""
    x = torch.zeros(1, 16)
    x[0, 0] = 0.478515625
    x[0, 1] = 1.640625  # the block's amax: S = gs * amax / 6 rounds to e4m3 192
    x = x.to(dtype).to(device)
    gs = torch.tensor([702.171387], device=device)
    for p, s in (ref.quantize_nvfp4(x, gs, swizzled=False),
                 ops.scaled_fp4_quant(x, gs, False)):
        assert u8(s).cpu()[0, 0].item() == 0x74  # e4m3 192.0
        codes = ref.unpack_fp4(p).cpu()[0]
        assert ref.E2M1_VALUES[codes[0].item()] == 2.0


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("swizzled", [True, False])
def test_dirty_buffers(device, swizzled):
    m, n = 150, 80
    x = torch.randn(m, n, dtype=torch.bfloat16, device=device)
    gs = ref.global_scale_for(x)
    out, sf = dirty_outputs(m, n, swizzled, device)
    ops.scaled_fp4_quant.out(x, gs, swizzled, output=out, output_scale=sf)
    rp, rs = ref.quantize_nvfp4(x, gs, swizzled=swizzled)
    assert_bytes_equal(out, rp, "packed")
    assert_bytes_equal(sf, rs, "scales (padding zero)")


# ------------------------------------------------------------------ padded outputs
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("swizzled", [True, False])
@pytest.mark.parametrize("m,n,pn", PADDED)
def test_padded_output(device, dtype, swizzled, m, n, pn):
    x = torch.randn(m, n, dtype=dtype, device=device)
    gs = ref.global_scale_for(x)
    out, sf = dirty_outputs(m, pn, swizzled, device)
    ops.scaled_fp4_quant.out(x, gs, swizzled, output=out, output_scale=sf)
    rp, rs = padded_reference(x.float(), gs, pn, swizzled)
    assert_bytes_equal(out, rp, "packed (padded)")
    assert_bytes_equal(sf, rs, "scales (padded)")
    wp, ws = q.scaled_fp4_quant(x, gs, swizzled, padded_n=pn)
    assert_bytes_equal(wp, rp, "wrapper packed")
    assert_bytes_equal(ws, rs, "wrapper scales")


@pytest.mark.parametrize("device", DEVICES)
def test_padded_output_rejects_narrow_or_unaligned(device):
    x = torch.randn(4, 64, dtype=torch.bfloat16, device=device)
    gs = torch.ones(1, device=device)
    for width in (16, 36):  # pn = 32 < n; pn = 72 not a multiple of 16
        out, sf = dirty_outputs(4, 2 * width, True, device)
        with pytest.raises(RuntimeError, match="'output'"):
            ops.scaled_fp4_quant.out(x, gs, True, output=out, output_scale=sf)


# ------------------------------------------------------------------ fused SiLU
SILU_SHAPES = [(128, 256), (128, 128), (256, 256), (256, 128), (1, 256), (64, 256), (1, 96),
               (5, 96), (130, 96), (130, 160), (2, 7392), (90, 160)]


def assert_silu_matches(out, sf, rp, rs, what, max_frac=2e-3):
    """Bit-exact except where exp() rounds differently in the last fp32 bit
    (then the bf16/fp16 product, rarely, differs by one step)."""
    codes, rcodes = ref.unpack_fp4(out).cpu(), ref.unpack_fp4(rp).cpu()
    assert codes.shape == rcodes.shape
    assert (codes != rcodes).float().mean() <= max_frac, what
    assert (u8(sf).cpu() != u8(rs).cpu()).float().mean() <= max_frac, what


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,two_d", SILU_SHAPES)
def test_silu_rounds_to_input_dtype_and_pads(device, dtype, m, two_d):
    d = two_d // 2
    pn = ref.round_up(d, 32)
    x = (torch.randn(m, two_d) * 3).to(dtype).to(device)
    y = ref.silu_and_mul_ref(x)  # fp32 product rounded to dtype
    assert torch.equal(y, y.to(dtype).float())
    gs = ref.global_scale_for(y)
    out, sf = dirty_outputs(m, pn, True, device)
    ops.silu_and_mul_nvfp4_quant(out, sf, x, gs)
    rp, rs = padded_reference(y, gs, pn, True)
    assert_silu_matches(out, sf, rp, rs, "silu padded")
    # K-padding codes and scale padding exactly zero
    assert (u8(out).cpu()[:, d // 2:] == 0).all()
    pad = u8(padded_reference(torch.ones(m, d, device=device), torch.ones(1, device=device),
                              pn, True)[1]).cpu() == 0
    assert (u8(sf).cpu()[pad.reshape(u8(sf).shape)] == 0).all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_silu_rounding_matters(device, dtype):
    """Quantizing the fp32 product and the product rounded to the input dtype
    give different codes on random data; the op gives the latter's."""
    x = (torch.randn(64, 1024, generator=torch.Generator().manual_seed(3)) * 3).to(dtype)
    g, u = x[:, :512].float(), x[:, 512:].float()
    y32 = g / (1.0 + torch.exp(-g)) * u
    y = ref.silu_and_mul_ref(x)
    gs = ref.global_scale_for(y)
    rp, rs = ref.quantize_nvfp4(y, gs, swizzled=True)
    p32, _ = ref.quantize_nvfp4(y32, gs, swizzled=True)
    assert (ref.unpack_fp4(p32) != ref.unpack_fp4(rp)).sum() > 0
    out, sf = dirty_outputs(64, 512, True, device)
    ops.silu_and_mul_nvfp4_quant(out, sf, x.to(device), gs.to(device))
    assert_silu_matches(out, sf, rp, rs, "silu rounded", max_frac=1e-4)


# ------------------------------------------------------------------ experts
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("silu", [False, True])
def test_experts_scale_rows_not_multiple_of_128(device, silu):
    """vLLM allocates max_tokens * topk scale rows; any count is accepted and
    only whole 128-row tiles are written (the tail stays untouched)."""
    k = 64
    off, sfo = q.expert_offsets(torch.tensor([100, 0, 27]))
    m = int(off[-1])
    x = torch.randn(m, 2 * k if silu else k).to(torch.bfloat16).to(device)
    src = ref.silu_and_mul_ref(x) if silu else x.float()
    gs = torch.tensor([20.0, 30.0, 40.0], device=device)
    rows = int(sfo[-1]) + 70
    out = torch.full((m, k // 2), DIRTY_CODES, dtype=torch.uint8, device=device)
    sf = torch.full((rows, 1), DIRTY_WORD, dtype=torch.int32, device=device)
    op = ops.silu_and_mul_scaled_fp4_experts_quant if silu else ops.scaled_fp4_experts_quant
    op(out, sf, x, gs, off.to(device), sfo.to(device))
    rp, rs, _ = ref.quantize_nvfp4_experts(src, gs, off, sfo)
    whole = int(sfo[-1]) * 4
    assert_bytes_equal(out, rp, "experts packed")
    assert_bytes_equal(u8(sf).reshape(-1)[:whole], u8(rs).reshape(-1), "experts scales")
    assert (u8(sf).reshape(-1)[whole:].cpu() == 0x7F).all()
