"""lowbit-nvfp4-quant against the pure-torch SPEC reference (lowbit.testing.nvfp4).

CPU tests always run; CUDA tests run where a GPU is visible."""

from __future__ import annotations

import random

import pytest
import torch

import lowbit.nvfp4_quant as q
from lowbit.testing import nvfp4 as ref
from lowbit.testing.checks import POISON_BYTE, devices, needs_cuda, poison_, poisoned_empty, raises_arg

ops = torch.ops.lowbit_nvfp4_quant
DEVICES = devices()
DTYPES = [torch.float16, torch.bfloat16]
SPEC_SHAPES = [(90, 64), (150, 64), (128, 48), (128, 80), (150, 80), (90, 48), (90, 128),
               (150, 128), (150, 48), (90, 80), (64, 7152), (32, 14336), (1, 64), (127, 1024)]
# vLLM v0.34.0's tests/kernels/quantization/test_nvfp4_quant.py shapes.
VLLM_SHAPES = [(128, 64), (128, 128), (256, 64), (256, 128), (128, 512), (128, 1024),
               (128, 2048), (64, 7168), (32, 4096), (256, 16384)]


u8 = ref.as_bytes
assert_bytes_equal = ref.assert_bytes_equal


def quant_out(x, gs, swizzled):
    """Run the .out op into poisoned buffers; returns (packed, scales)."""
    n = x.shape[-1]
    m = x.numel() // n
    out = poisoned_empty(m, n // 2, dtype=torch.uint8, device=x.device)
    shape = ref.swizzled_scale_shape(m, n) if swizzled else (m, n // 16)
    sf = poisoned_empty(*shape, dtype=torch.float8_e4m3fn, device=x.device)
    ops.scaled_fp4_quant.out(x, gs, swizzled, output=out, output_scale=sf)
    return out, sf


def check_quant_out(x, gs, swizzled):
    """The .out op bit for bit against the reference; returns the reference's
    (packed, scales)."""
    rp, rs = ref.quantize_nvfp4(x, gs, swizzled=swizzled)
    p, s = quant_out(x, gs, swizzled)
    assert_bytes_equal(p, rp, "packed")
    assert_bytes_equal(s, rs, "scales")
    return rp, rs


def rand_input(m, n, dtype, device, seed, spread=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(m, n, generator=g)
    if spread:  # blocks of very different magnitudes (e4m3 range, underflow, saturation)
        x = x * torch.exp2(torch.randint(-10, 8, (m, n // 16, 1), generator=g).float()).repeat_interleave(16, 1).reshape(m, n) if n else x
    return x.to(dtype).to(device)


# ------------------------------------------------------------------ reference sanity
def test_reference_e2m1_table():
    vals = torch.tensor(ref.E2M1_VALUES)
    codes = ref.round_to_e2m1_codes(vals)
    assert codes.tolist() == list(range(16))
    assert ref.decode_e2m1(codes).tolist() == [abs(v) if v == 0 else v for v in ref.E2M1_VALUES]


def test_swizzle_helpers_match_reference_and_formula():
    m, n = 150, 80
    lin = torch.randint(1, 255, (m, n // 16), dtype=torch.uint8).view(torch.float8_e4m3fn)
    swz = q.swizzle_scales(lin)
    assert_bytes_equal(swz, ref.swizzle_scales(lin), "swizzle")
    kp = ref.round_up(n // 16, 4)
    flat = u8(swz).reshape(-1)
    for r, c in [(0, 0), (31, 3), (32, 1), (127, 4), (128, 0), (149, 4)]:
        assert flat[ref.swizzled_offset(r, c, kp)] == u8(lin)[r, c]
    assert_bytes_equal(q.unswizzle_scales(swz, m, n), lin, "unswizzle")
    assert_bytes_equal(q.unswizzle_scales(swz.view(torch.int32), m, n), lin, "unswizzle int32")


def test_helpers_global_scale_and_offsets():
    x = torch.randn(7, 32)
    assert torch.allclose(q.global_scale(x), ref.global_scale_for(x))
    off, sfo = q.expert_offsets(torch.tensor([3, 0, 130, 1]))
    assert off.tolist() == [0, 3, 3, 133, 134] and sfo.tolist() == [0, 128, 128, 384, 512]
    assert off.dtype == sfo.dtype == torch.int32


# ------------------------------------------------------------------ dense quant
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("swizzled", [True, False])
@pytest.mark.parametrize("shape", SPEC_SHAPES + VLLM_SHAPES)
def test_quant_shapes(device, dtype, swizzled, shape):
    m, n = shape
    x = torch.randn(m, n, dtype=dtype, device=device)
    gs = ref.global_scale_for(x)
    rp, rs = ref.quantize_nvfp4(x, gs, swizzled=swizzled)
    p, s = quant_out(x, gs, swizzled)
    assert_bytes_equal(p, rp, "packed")
    assert_bytes_equal(s, rs, "scales")
    fp, fs = q.scaled_fp4_quant(x, gs, swizzled)
    assert fp.dtype == torch.uint8 and fs.dtype == torch.float8_e4m3fn  # the wrapper's view
    op_p, op_s = ops.scaled_fp4_quant(x, gs, swizzled)  # the op: vLLM's int32 [Mp, Kp/4] / uint8 [m, n/16]
    mp, kp = ref.swizzled_scale_shape(m, n)
    assert (op_s.dtype, tuple(op_s.shape)) == ((torch.int32, (mp, kp // 4)) if swizzled else
                                               (torch.uint8, (m, n // 16)))
    assert_bytes_equal(op_p, rp, "packed (op)")
    assert_bytes_equal(op_s, rs, "scales (op)")
    assert_bytes_equal(fp, rp, "packed (functional)")
    assert_bytes_equal(fs, rs, "scales (functional)")
    if swizzled:  # every padded entry is exactly zero
        mask = torch.ones(ref.swizzled_scale_shape(m, n), dtype=torch.uint8)
        mask[:m, : n // 16] = 0
        pad = u8(ref.swizzle_scales(mask.view(torch.float8_e4m3fn))).bool()
        assert int(pad.sum()) == mask.sum()
        assert (u8(s).cpu()[pad] == 0).all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("seed", range(12))
def test_quant_random_shapes(device, seed):
    rnd = random.Random(seed)
    dtype = DTYPES[seed % 2]
    lead = [rnd.randint(1, 5) for _ in range(rnd.randint(0, 2))]
    m0 = rnd.choice([1, 3, 17, 129, 255, 300])
    n = 16 * rnd.randint(1, 90)
    rows = m0
    for v in lead:
        rows *= v
    x = rand_input(rows, n, dtype, device, seed).reshape(*lead, m0, n)
    # global scales around the usual one and far from it (saturation / underflow)
    gs = ref.global_scale_for(x) * (2.0 ** rnd.randint(-12, 6))
    for swizzled in (True, False):
        check_quant_out(x, gs, swizzled)


def _all_values(dtype):
    """Every finite fp16/bf16 value with |v| <= 6, in blocks of 15 plus a 6.0
    that pins the block scale so x * out_scale == x (gs = 1: S = 1, sf = 1)."""
    bits = torch.arange(0, 1 << 16, dtype=torch.int32).to(torch.int16)
    v = bits.view(dtype).float()
    v = v[torch.isfinite(v) & (v.abs() <= 6.0)]
    pad = (-v.numel()) % 15
    v = torch.cat([v, torch.zeros(pad)]).reshape(-1, 15)
    v = torch.cat([v, torch.full((v.shape[0], 1), 6.0)], dim=1)
    return v.reshape(-1, 16 * 16 if v.shape[0] % 16 == 0 else 16).to(dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_e2m1_rounding_every_input_value(device, dtype):
    """Each e2m1 threshold, tie and their neighbours, for every representable input."""
    x = _all_values(dtype).to(device)
    gs = torch.ones(1, device=device)
    _, rs = check_quant_out(x, gs, False)
    assert (u8(rs) == 0x38).all()  # scale exactly 1.0: codes are e2m1(x) itself


@pytest.mark.parametrize("device", DEVICES)
def test_e4m3_scale_rounding_sweep(device):
    """Block amax log-uniform over 2^-30..2^30 (e4m3 subnormals, ties, 448 saturation)."""
    g = torch.Generator().manual_seed(1)
    m, n = 64, 16 * 256
    x = torch.randn(m, n, generator=g)
    scale = torch.exp2(torch.rand(m, n // 16, 1, generator=g) * 60 - 30)
    x = (x.reshape(m, n // 16, 16) * scale).reshape(m, n).to(torch.bfloat16).to(device)
    for gs in (torch.ones(1), torch.tensor([6.0]), torch.tensor([0.37])):
        check_quant_out(x, gs.to(device), False)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_inf_and_zero_blocks(device, dtype):
    m, n = 6, 64
    x = torch.randn(m, n).to(dtype)
    x[0, 3] = float("nan")          # block 0 of row 0: NaN
    x[1, 20] = float("inf")         # block 1 of row 1: +Inf
    x[2, 40] = float("-inf")        # block 2 of row 2: -Inf
    x[3, 16:32] = 0.0               # all-zero block
    x[3, 32:48] = -0.0              # all-negative-zero block
    x[4, 0] = float("nan")
    x[4, 1] = float("inf")          # NaN and Inf in one block: NaN wins
    x = x.to(device)
    gs = torch.tensor([100.0], device=device)
    rp, rs = ref.quantize_nvfp4(x, gs, swizzled=False)
    for swizzled in (False, True):
        p, s = quant_out(x, gs, swizzled)
        lin = s if not swizzled else q.unswizzle_scales(s, m, n)
        assert_bytes_equal(lin, rs, "scales")
        assert_bytes_equal(p, rp, "packed")
    sb, codes = u8(rs), ref.unpack_fp4(rp)
    assert sb[0, 0] == 0x7F and (codes[0, :16] == 0).all()
    assert sb[4, 0] == 0x7F and (codes[4, :16] == 0).all()
    assert sb[1, 1] == 0x7E and codes[1, 20] == 7        # 448, +6
    assert sb[2, 2] == 0x7E and codes[2, 40] == 15       # 448, -6
    assert sb[3, 1] == 0 and sb[3, 2] == 0 and (codes[3, 16:48] == 0).all()
    # other blocks of the same rows are unaffected
    clean = x.clone()
    clean[0, :16] = 1.0
    cp, cs = ref.quantize_nvfp4(clean, gs, swizzled=False)
    assert_bytes_equal(rs[0, 1:], cs[0, 1:], "row 0, other blocks")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("swizzled", [True, False])
def test_m_zero(device, swizzled):
    x = torch.empty(0, 64, dtype=torch.bfloat16, device=device)
    gs = torch.ones(1, device=device)
    p, s = q.scaled_fp4_quant(x, gs, swizzled)
    assert p.shape == (0, 32) and s.shape == ((0, 4) if swizzled else (0, 4))
    x3 = torch.empty(2, 0, 48, dtype=torch.float16, device=device)
    p, s = q.scaled_fp4_quant(x3, gs, swizzled)
    assert p.shape == (0, 24) and s.shape == (0, 4 if swizzled else 3)
    r, rs = q.silu_and_mul_nvfp4_quant(torch.empty(0, 64, dtype=torch.bfloat16, device=device), gs)
    assert r.shape == (0, 16) and rs.shape == (0, 4)


def test_fake_matches_real_shapes():
    from torch._subclasses.fake_tensor import FakeTensorMode

    for shape in [(0, 64), (1, 48), (3, 5, 80), (129, 16)]:
        for swz in (True, False):
            x = torch.randn(shape, dtype=torch.bfloat16)
            gs = torch.ones(1)
            real = ops.scaled_fp4_quant(x, gs, swz)
            with FakeTensorMode() as mode:
                fx, fg = mode.from_tensor(x), mode.from_tensor(gs)
                fake = ops.scaled_fp4_quant(fx, fg, swz)
            for r, f in zip(real, fake):
                assert r.shape == f.shape and r.dtype == f.dtype and r.stride() == f.stride()


# ------------------------------------------------------------------ fused SiLU
def assert_close_codes(p, s, rp, rs, m, n, what, max_frac=1e-3):
    """Fused-SiLU oracle (SPEC §3): equal to quantizing the fp32 product except
    rare one-step differences where exp() rounds differently."""
    codes, rcodes = ref.unpack_fp4(p).cpu(), ref.unpack_fp4(rp).cpu()
    diff = codes != rcodes
    if codes.numel() == 0:
        assert rcodes.numel() == 0 and u8(s).numel() == u8(rs).numel() == 0
        return
    assert diff.float().mean() <= max_frac, f"{what}: {int(diff.sum())} codes differ"
    sdiff = u8(s).cpu() != u8(rs).cpu()
    assert sdiff.float().mean() <= max_frac, f"{what}: {int(sdiff.sum())} scales differ"
    # where the block scale agrees, a differing code is one e2m1 step away
    both = diff & (codes & 8 == rcodes & 8)
    if both.any():
        steps = ((codes & 7).int() - (rcodes & 7).int()).abs()[both]
        assert (steps <= 1).float().mean() >= 1 - max_frac, steps.max()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,d", [(1, 64), (90, 48), (150, 128), (33, 1024), (7, 7168)])
def test_silu_and_mul(device, dtype, m, d):
    x = (torch.randn(m, 2 * d) * 3).to(dtype).to(device)
    y = ref.silu_and_mul_ref(x)
    gs = ref.global_scale_for(y)
    rp, rs = ref.quantize_nvfp4(y, gs, swizzled=True)
    out = poisoned_empty(m, d // 2, dtype=torch.uint8, device=device)
    sf = poisoned_empty(*ref.swizzled_scale_shape(m, d), dtype=torch.float8_e4m3fn, device=device)
    ops.silu_and_mul_nvfp4_quant(out, sf, x, gs)
    assert_close_codes(out, sf, rp, rs, m, d, "silu")
    # padded scale entries zeroed (SPEC §1.3 lowbit rule)
    full = u8(sf).cpu().clone()
    lin = u8(q.unswizzle_scales(sf, m, d)).cpu()
    zeroed = u8(q.swizzle_scales(torch.zeros_like(lin).view(torch.float8_e4m3fn)))
    mask = torch.ones(m, d // 16, dtype=torch.uint8)
    pad = u8(q.swizzle_scales(mask.view(torch.float8_e4m3fn))) == 0
    assert (full[pad] == zeroed[pad]).all()
    # int32 scale buffer (how vLLM allocates it) gives the same bytes
    sf32 = poison_(torch.empty(sf.shape[0], sf.shape[1] // 4, dtype=torch.int32, device=device))
    ops.silu_and_mul_nvfp4_quant(out, sf32, x, gs)
    assert_bytes_equal(sf32, sf, "int32 scale buffer")


@pytest.mark.parametrize("device", DEVICES)
def test_silu_nan_inf(device):
    x = torch.randn(4, 128)
    x[0, 2] = float("nan")      # gate NaN
    x[1, 64 + 20] = float("inf")  # up Inf
    x = x.to(torch.bfloat16).to(device)
    gs = torch.tensor([50.0], device=device)
    rp, rs = ref.quantize_nvfp4(ref.silu_and_mul_ref(x), gs, swizzled=True)
    r, s = q.silu_and_mul_nvfp4_quant(x, gs)
    lin = u8(q.unswizzle_scales(s, 4, 64))
    assert lin[0, 0] == 0x7F and lin[1, 1] == 0x7E
    assert_close_codes(r, s, rp, rs, 4, 64, "silu nan/inf", max_frac=0.05)


# ------------------------------------------------------------------ experts
def make_experts(counts, orphans, k, dtype, device, seed, silu=False):
    g = torch.Generator().manual_seed(seed)
    counts = torch.tensor(counts)
    off, sfo = q.expert_offsets(counts)
    mt = int(off[-1]) + orphans
    x = torch.randn(mt, 2 * k if silu else k, generator=g).to(dtype).to(device)
    src = ref.silu_and_mul_ref(x) if silu else x.float()
    amax = src.abs().amax().clamp_min(1e-3).float()
    gs = (torch.rand(len(counts), generator=g).to(device) + 0.5) * 2688.0 / amax
    return x, src, gs, off, sfo, mt


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("silu", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [
    ([5, 0, 130, 1], 0, 64),       # an empty expert, a region spanning 2 tiles
    ([0, 0, 3], 7, 80),            # leading empty experts, orphan rows, n/16 % 4 != 0
    ([128, 1, 0, 0], 5, 48),       # trailing empty experts, orphans
    ([17] * 8, 0, 1024),
    ([0, 0], 4, 64),               # no rows at all, only orphans
    # tiles of 1..160 real rows (padding chunk rows split among a column
    # group's threads differently below and above 32), n/16 % 4 != 0
    ([4, 31, 32, 33, 1, 96, 127, 160, 2], 3, 112),
    ([4] * 5, 1, 7168),            # the M=1024, E=256 shape's tiles (4 rows per expert)
])
def test_experts(device, silu, dtype, case):
    counts, orphans, k = case
    x, src, gs, off, sfo, mt = make_experts(counts, orphans, k, dtype, device, sum(counts) + k, silu)
    kp = ref.round_up(k // 16, 4)
    rows = int(sfo[-1]) + 128  # over-allocated like vLLM; the tail must stay untouched
    out = poisoned_empty(mt, k // 2, dtype=torch.uint8, device=device)
    sf = poisoned_empty(rows, kp, dtype=torch.float8_e4m3fn, device=device)
    op = ops.silu_and_mul_scaled_fp4_experts_quant if silu else ops.scaled_fp4_experts_quant
    op(out, sf, x, gs, off.to(device), sfo.to(device))
    rp, rs, written = ref.quantize_nvfp4_experts(src, gs, off, sfo, scale_rows=rows)
    used = int(sfo[-1])
    w = written.cpu()
    if silu:
        assert_close_codes(out[w], sf[:used], rp[w], rs[:used], 0, k, "silu experts")
    else:
        assert_bytes_equal(out.cpu()[w], rp.cpu()[w], "packed")
        assert_bytes_equal(sf[:used], rs[:used], "scales (incl. zeroed padding)")
    # orphan rows and the unused tail of the scale buffer are never written
    assert (u8(out).cpu()[~w] == POISON_BYTE).all()
    assert (u8(sf).cpu()[used:] == POISON_BYTE).all()
    # padded rows / columns of every region are zero
    for e, c in enumerate(counts):
        region = u8(sf).cpu()[int(sfo[e]):int(sfo[e + 1])]
        if region.numel():
            lin = q.unswizzle_scales(region, region.shape[0], k)
            mask = torch.zeros(region.shape[0], k // 16, dtype=torch.uint8)
            mask[:c] = 1
            real = u8(q.swizzle_scales(mask.view(torch.float8_e4m3fn))).bool()
            assert (region[~real] == 0).all()
            del lin


@pytest.mark.parametrize("device", DEVICES)
def test_experts_match_dense_per_expert(device):
    """SPEC §3: per-expert equality with the dense op."""
    counts = [3, 0, 200, 64]
    x, src, gs, off, sfo, mt = make_experts(counts, 2, 96, torch.bfloat16, device, 3)
    p, s = q.scaled_fp4_experts_quant(x, gs, off.to(device), sfo.to(device))
    for e, c in enumerate(counts):
        lo, hi = int(off[e]), int(off[e + 1])
        if c == 0:
            continue
        dp, ds = q.scaled_fp4_quant(x[lo:hi], gs[e:e + 1], True)
        assert_bytes_equal(p[lo:hi], dp, f"expert {e} packed")
        assert_bytes_equal(s[int(sfo[e]):int(sfo[e]) + ds.shape[0]], ds, f"expert {e} scales")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("silu", [False, True])
def test_experts_extreme_global_scales(device, silu):
    """Per-expert gs from 2^-101 to 2^120, rows scaled by 2^-40..2^40 so the
    block scales cover zero, subnormal, normal and saturated e4m3 bytes."""
    g = torch.Generator().manual_seed(11)
    gs = torch.tensor([2.0**-101, 2.0**-100, 2.0**-60, 1.0, 300.0, 2.0**40, 2.0**100,
                       2.0**101, 2.0**120])
    counts = torch.tensor([6, 3, 9, 5, 7, 2, 4, 3, 5])
    off, sfo = q.expert_offsets(counts)
    mt, k = int(off[-1]), 64
    x = torch.randn(mt, 2 * k if silu else k, generator=g)
    x = x * torch.exp2(torch.randint(-40, 41, (mt, 1), generator=g).float())
    x = x.to(torch.bfloat16).to(device)
    gs = gs.to(device)
    op = ops.silu_and_mul_scaled_fp4_experts_quant if silu else ops.scaled_fp4_experts_quant
    out = poisoned_empty(mt, k // 2, dtype=torch.uint8, device=device)
    sf = poisoned_empty(int(sfo[-1]), k // 16, dtype=torch.uint8, device=device)
    op(out, sf, x, gs, off.to(device), sfo.to(device))
    src = ref.silu_and_mul_ref(x) if silu else x.float()
    rp, rs, _ = ref.quantize_nvfp4_experts(src, gs, off, sfo)
    if silu:
        assert_close_codes(out, sf, rp, rs, 0, k, "silu experts, extreme gs")
    else:
        assert_bytes_equal(out, rp, "packed")
        assert_bytes_equal(sf, rs, "scales")


@pytest.mark.parametrize("device", DEVICES)
def test_experts_int32_scale_buffer_and_many_experts(device):
    E = 1500  # more than the kernel stages in shared memory
    g = torch.Generator().manual_seed(5)
    counts = torch.randint(0, 3, (E,), generator=g)
    off, sfo = q.expert_offsets(counts)
    mt = int(off[-1])
    x = torch.randn(mt, 32, generator=g).to(torch.float16).to(device)
    gs = torch.rand(E, generator=g).to(device) * 100 + 1
    out = poisoned_empty(mt, 16, dtype=torch.uint8, device=device)
    sf = poison_(torch.empty(int(sfo[-1]), 1, dtype=torch.int32, device=device))
    ops.scaled_fp4_experts_quant(out, sf, x, gs, off.to(device), sfo.to(device))
    rp, rs, _ = ref.quantize_nvfp4_experts(x, gs, off, sfo)
    assert_bytes_equal(out, rp, "packed")
    assert_bytes_equal(sf, rs, "scales")


# ------------------------------------------------------------------ torch integration
def _opcheck_args(device):
    # mutated scale buffers are uint8 here: opcheck's schema check cannot
    # compare float8 tensors on the CPU (the ops accept both)
    x = torch.randn(130, 96, dtype=torch.bfloat16, device=device)
    gs = torch.tensor([20.0], device=device)
    off, sfo = q.expert_offsets(torch.tensor([100, 0, 27]))
    off, sfo = off.to(device), sfo.to(device)
    gse = torch.tensor([20.0, 30.0, 40.0], device=device)
    m = 130
    return [
        (ops.scaled_fp4_quant.default, (x, gs, True), {}),
        (ops.scaled_fp4_quant.default, (x, gs, False), {}),
        (ops.scaled_fp4_quant.out, (x, gs, True),
         {"output": torch.empty(m, 48, dtype=torch.uint8, device=device),
          "output_scale": torch.empty(256, 8, dtype=torch.uint8, device=device)}),
        (ops.silu_and_mul_nvfp4_quant.default,
         (torch.empty(m, 24, dtype=torch.uint8, device=device),
          torch.empty(256, 4, dtype=torch.uint8, device=device), x, gs), {}),
        (ops.scaled_fp4_experts_quant.default,
         (torch.empty(m, 48, dtype=torch.uint8, device=device),
          torch.empty(int(sfo[-1]), 8, dtype=torch.uint8, device=device), x[:127], gse, off, sfo), {}),
        (ops.silu_and_mul_scaled_fp4_experts_quant.default,
         (torch.empty(m, 24, dtype=torch.uint8, device=device),
          torch.empty(int(sfo[-1]), 4, dtype=torch.uint8, device=device), x, gse, off, sfo), {}),
    ]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("idx", range(6))
def test_opcheck(device, idx):
    op, args, kwargs = _opcheck_args(device)[idx]
    if idx == 4:  # experts: output rows must match input rows
        args = (args[0][:127],) + args[1:]
    torch.library.opcheck(op, args, kwargs)


@pytest.mark.parametrize("device", DEVICES)
def test_torch_compile_fullgraph(device):
    torch._dynamo.reset()

    @torch.compile(fullgraph=True)
    def f(x, gs, r, rs):
        p, s = ops.scaled_fp4_quant(x, gs, True)
        ops.silu_and_mul_nvfp4_quant(r, rs, x, gs)
        return p, s

    x = torch.randn(40, 64, dtype=torch.bfloat16, device=device)
    gs = ref.global_scale_for(x)
    r = torch.empty(40, 16, dtype=torch.uint8, device=device)
    rs = torch.empty(128, 4, dtype=torch.float8_e4m3fn, device=device)
    p, s = f(x, gs, r, rs)
    rp, rsc = ref.quantize_nvfp4(x, gs)
    assert_bytes_equal(p, rp, "compiled packed")
    assert_bytes_equal(s, rsc, "compiled scales")
    wp, ws = q.silu_and_mul_nvfp4_quant(x, gs)
    assert_bytes_equal(r, wp, "compiled silu")
    assert_bytes_equal(rs, ws, "compiled silu scales")


@needs_cuda
def test_cuda_graph_capture_replay():
    dev = "cuda"
    m, k = 200, 512
    x = torch.randn(m, k, dtype=torch.bfloat16, device=dev)
    xs = torch.randn(m, 2 * k, dtype=torch.bfloat16, device=dev)
    gs = torch.tensor([300.0], device=dev)
    out = torch.empty(m, k // 2, dtype=torch.uint8, device=dev)
    sf = torch.empty(*ref.swizzled_scale_shape(m, k), dtype=torch.float8_e4m3fn, device=dev)
    r = torch.empty(m, k // 2, dtype=torch.uint8, device=dev)
    rsf = torch.empty_like(sf)
    counts = torch.tensor([50, 0, 120, 20])
    off, sfo = (t.to(dev) for t in q.expert_offsets(counts))
    gse = torch.tensor([100.0, 200.0, 300.0, 400.0], device=dev)
    eo = torch.empty(m, k // 2, dtype=torch.uint8, device=dev)
    esf = torch.empty(512, k // 16, dtype=torch.float8_e4m3fn, device=dev)

    def work():
        ops.scaled_fp4_quant.out(x, gs, True, output=out, output_scale=sf)
        ops.silu_and_mul_nvfp4_quant(r, rsf, xs, gs)
        ops.scaled_fp4_experts_quant(eo, esf, x, gse, off, sfo)

    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        work()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        work()
    for it in range(3):
        x.copy_(torch.randn(m, k, device=dev) * (it + 1))
        xs.copy_(torch.randn(m, 2 * k, device=dev))
        for t in (out, sf, r, rsf, eo, esf):
            poison_(t)
        g.replay()
        torch.cuda.synchronize()
        rp, rs = ref.quantize_nvfp4(x, gs)
        assert_bytes_equal(out, rp, "graph packed")
        assert_bytes_equal(sf, rs, "graph scales")
        wp, ws = ref.quantize_nvfp4(ref.silu_and_mul_ref(xs), gs)
        assert_close_codes(r, rsf, wp, ws, m, k, "graph silu")
        ep, es, w = ref.quantize_nvfp4_experts(x, gse, off, sfo, scale_rows=512)
        assert_bytes_equal(eo[w], ep[w], "graph experts packed")
        assert_bytes_equal(esf[:int(sfo[-1])], es[:int(sfo[-1])], "graph experts scales")


@needs_cuda
def test_non_default_stream():
    x = torch.randn(300, 1024, dtype=torch.float16, device="cuda")
    gs = ref.global_scale_for(x)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        big = torch.randn(4096, 4096, device="cuda")
        for _ in range(4):
            big = big @ big / 64  # keep the side stream busy: ordering matters
        p, sf = q.scaled_fp4_quant(x, gs)
    s.synchronize()
    rp, rs = ref.quantize_nvfp4(x, gs)
    assert_bytes_equal(p, rp, "packed")
    assert_bytes_equal(sf, rs, "scales")


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_second_device():
    x = torch.randn(130, 256, dtype=torch.bfloat16, device="cuda:1")
    gs = ref.global_scale_for(x)
    with torch.cuda.device(0):
        p, s = q.scaled_fp4_quant(x, gs)
    assert p.device == x.device and s.device == x.device
    rp, rs = ref.quantize_nvfp4(x, gs)
    assert_bytes_equal(p, rp, "packed")
    assert_bytes_equal(s, rs, "scales")


def test_selfcheck_cpu():
    rows = q.selfcheck.run(torch.device("cpu"))
    assert rows and all(r["passed"] for r in rows), rows


def test_protocol():
    assert set(q.OPS) >= {"scaled_fp4_quant", "silu_and_mul_nvfp4_quant", "scaled_fp4_experts_quant",
                          "silu_and_mul_scaled_fp4_experts_quant"}
    assert all("CPU" in t for t in q.OPS.values())
    assert "cuda_archs" in q.build_info()


def test_bench_protocol_cpu():
    seen = []
    rows = q.bench.run(torch.device("cpu"), quick=True, progress=seen.append)
    keys = {"package", "op", "shape", "M", "impl", "us", "metric", "metric_name"}
    assert rows and all(keys <= set(r) for r in rows)
    assert all(r["us"] > 0 and r["metric"] > 0 for r in rows)
    assert seen and {r["M"] for r in rows} == {1, 16, 128}
    with pytest.raises(ValueError, match="unknown model"):
        q.bench.run(torch.device("cpu"), models=["no-such-model"])
