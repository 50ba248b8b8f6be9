"""lowbit-nvfp4-mm against the pure-torch reference (docs/SPEC.md §1.4, §2.2, §3)."""

from __future__ import annotations

import pytest
import torch

import lowbit.nvfp4_mm as mm
from lowbit.testing.checks import check_bad_input, cuda_sm, devices, needs_cuda, poison_, raises_arg, with_
from lowbit.testing.nvfp4_gemm import (
    nvfp4_gemm_ref,
    quantized_operand,
    random_operand,
    relative_error,
    swizzled_shape,
)

OPS = torch.ops.lowbit_nvfp4_mm
LIMIT = 1e-2
MS = [1, 7, 128, 150, 1000]
# (N, K): K and N include 32-multiples that are not 64/128-multiples.
NKS = [(32, 32), (96, 160), (256, 4096 + 32), (160, 224)]
HAS_SM90 = cuda_sm() is not None and cuda_sm() // 10 == 9


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _problem(m, n, k, device, seed, quantized=True):
    g = _gen(seed)
    if quantized:
        a, sa, gsa = quantized_operand(m, k, device, g)
        b, sb, gsb = quantized_operand(n, k, device, g)
        alpha = (1.0 / (gsa * gsb)).float().reshape(1)
    else:
        a, sa = random_operand(m, k, device, g)
        b, sb = random_operand(n, k, device, g)
        alpha = torch.tensor([0.37], device=device)
    return a, b, sa, sb, alpha


def _run(a, b, sa, sb, alpha, dtype, bias=None, **ex):
    """ex: kernel (a name of mm.kernel_names), splits, bi (batch-invariant)."""
    out = poison_(torch.empty(a.shape[0], b.shape[0], dtype=dtype, device=a.device))
    if ex:
        OPS._cutlass_scaled_fp4_mm_with_kernel(out, a, b, sa, sb, alpha, bias, ex.get("bi", False),
                                               ex.get("kernel"), ex.get("splits", -1))
    else:
        OPS.cutlass_scaled_fp4_mm(out, a, b, sa, sb, alpha, bias)
    return out


def _bias(n, dtype, device, seed):
    """A bias of the size of the products' sums (so both terms matter)."""
    return (torch.randn(n, generator=_gen(seed)) * 4).to(dtype).to(device)


def _sm90_kernels():
    return mm.kernel_names("cuda") if HAS_SM90 else []


# ------------------------------------------------------------------ numerics
@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("m", MS)
@pytest.mark.parametrize("n,k", NKS)
def test_matches_reference(device, dtype, m, n, k):
    if device == "cpu" and m == 1000 and k > 1000:
        pytest.skip("large CPU case covered by smaller K")
    a, b, sa, sb, alpha = _problem(m, n, k, device, seed=m * 1000 + n + k)
    out = _run(a, b, sa, sb, alpha, dtype)
    ref = nvfp4_gemm_ref(a, b, sa, sb, alpha)
    err = relative_error(out.float(), ref)
    assert err <= LIMIT, f"relative error {err:.3g} > {LIMIT} (M={m} N={n} K={k})"
    # The output rounding bounds the error: far tighter than the limit.
    assert err <= 4e-3


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("m", [1, 7, 150])
def test_bias(device, dtype, m):
    """out = to_out(alpha * A·Bᵀ + bias): fp32 epilogue, one rounding."""
    n, k = 96, 160
    a, b, sa, sb, alpha = _problem(m, n, k, device, seed=m + 40)
    bias = _bias(n, dtype, device, seed=m)
    out = _run(a, b, sa, sb, alpha, dtype, bias=bias)
    ref = nvfp4_gemm_ref(a, b, sa, sb, alpha, bias)
    assert relative_error(out.float(), ref) <= 4e-3
    # The bias is not ignored: without it the result is far from ref.
    assert relative_error(_run(a, b, sa, sb, alpha, dtype).float(), ref) > 1e-2
    wrapped = mm.scaled_fp4_mm(a, b, sa, sb, alpha, dtype, bias=bias)
    assert torch.equal(wrapped, out)


def test_cpu_bias_exact():
    """alpha * acc + bias in fp32 then one rounding: 144 + 0.5 is exact in
    fp16 and bf16 rounds it to 144 (ties to even), as to_out(fp32) does."""
    k = 32
    a = torch.full((1, k // 2), 0x12, dtype=torch.uint8)
    b = torch.full((32, k // 2), 0x77, dtype=torch.uint8)
    from lowbit.testing.nvfp4 import swizzle_scales

    sa = swizzle_scales(torch.full((1, 2), 2.0).to(torch.float8_e4m3fn))
    sb = swizzle_scales(torch.full((32, 2), 1.0).to(torch.float8_e4m3fn))
    for dtype in (torch.float16, torch.bfloat16):
        bias = torch.full((32,), 0.5, dtype=dtype)
        out = _run(a, b, sa, sb, torch.tensor([0.5]), dtype, bias=bias)
        assert torch.equal(out, torch.full((1, 32), 144.5).to(dtype)), dtype


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_random_codes_and_scales(device, dtype):
    """Every code and a wide scale range (not only what a quantizer emits);
    fp16 output stays in range: |D| <= 6*64*6*64*K*0.37."""
    a, b, sa, sb, alpha = _problem(37, 64, 96, device, seed=5, quantized=False)
    alpha = alpha * 1e-4
    out = _run(a, b, sa, sb, alpha, dtype)
    ref = nvfp4_gemm_ref(a, b, sa, sb, alpha)
    assert relative_error(out.float(), ref) <= 4e-3


def test_cpu_exact_small():
    """Hand-checkable: A = [1, 0.5, ...] with scale 2, B codes 6.0 with scale 1."""
    k = 32
    a = torch.full((1, k // 2), 0x12, dtype=torch.uint8)  # low nibble 2 (1.0), high 1 (0.5)
    b = torch.full((32, k // 2), 0x77, dtype=torch.uint8)  # 6.0, 6.0
    from lowbit.testing.nvfp4 import swizzle_scales

    sa = swizzle_scales(torch.full((1, 2), 2.0).to(torch.float8_e4m3fn))
    sb = swizzle_scales(torch.full((32, 2), 1.0).to(torch.float8_e4m3fn))
    out = _run(a, b, sa, sb, torch.tensor([0.5]), torch.float32 if False else torch.bfloat16)
    # sum_k = 16 * (1*2*6) + 16 * (0.5*2*6) = 192 + 96 = 288; * 0.5 = 144
    assert torch.equal(out.float(), torch.full((1, 32), 144.0))


@pytest.mark.parametrize("device", devices())
def test_nan_scale_propagates(device):
    a, b, sa, sb, alpha = _problem(3, 32, 64, device, seed=9)
    from lowbit.testing.nvfp4 import swizzled_offset

    sa = sa.clone()
    sa.view(torch.uint8).reshape(-1)[swizzled_offset(1, 2, sa.shape[1])] = 0x7F  # NaN scale, row 1
    out = _run(a, b, sa, sb, alpha, torch.bfloat16)
    ref = nvfp4_gemm_ref(a, b, sa, sb, alpha)
    assert torch.isnan(out[1]).all() and torch.isnan(ref[1]).all()
    assert not torch.isnan(out[[0, 2]]).any()


@pytest.mark.parametrize("device", devices())
def test_padding_garbage_ignored(device):
    """Stale (even NaN) bytes in the scale padding must not leak into D."""
    m, n, k = 5, 32, 96  # K/16 = 6 -> 2 padded scale columns; rows padded to 128
    a, b, sa, sb, alpha = _problem(m, n, k, device, seed=11)
    ref = nvfp4_gemm_ref(a, b, sa, sb, alpha)
    from lowbit.testing.nvfp4 import unswizzle_scales, swizzle_scales

    def poison_pad(s, rows):
        lin = unswizzle_scales(s, rows, k)
        full = torch.full(s.shape, 0x7F, dtype=torch.uint8, device=s.device)
        swz = swizzle_scales(lin).view(torch.uint8)
        mask = swizzle_scales(torch.ones_like(lin.view(torch.uint8))).view(torch.uint8) == 1
        return torch.where(mask, swz, full).view(torch.float8_e4m3fn)

    psa, psb = poison_pad(sa, m), poison_pad(sb, n)
    out = _run(a, b, psa, psb, alpha, torch.bfloat16)
    assert relative_error(out.float(), ref) <= 4e-3
    if device == "cuda":  # every kernel reads (some of) the padding differently
        for name in mm.kernel_names(device):
            out = _run(a, b, psa, psb, alpha, torch.bfloat16, kernel=name)
            assert relative_error(out.float(), ref) <= 4e-3, name


@pytest.mark.parametrize("device", devices())
def test_empty_shapes(device):
    # M = 0: nothing written, no error.
    a, b, sa, sb, alpha = _problem(0, 32, 64, device, seed=1)
    out = _run(a, b, sa, sb, alpha, torch.bfloat16)
    assert out.shape == (0, 32)
    # K = 0: D = 0 (empty reduction), every element written.
    a = torch.empty(4, 0, dtype=torch.uint8, device=device)
    b = torch.empty(32, 0, dtype=torch.uint8, device=device)
    sa = torch.empty(128, 0, dtype=torch.float8_e4m3fn, device=device)
    sb = torch.empty(128, 0, dtype=torch.float8_e4m3fn, device=device)
    out = _run(a, b, sa, sb, torch.ones(1, device=device), torch.float16)
    assert torch.equal(out, torch.zeros(4, 32, dtype=torch.float16, device=device))
    # K = 0 with a bias: every row is the bias.
    bias = _bias(32, torch.float16, device, seed=3)
    out = _run(a, b, sa, sb, torch.ones(1, device=device), torch.float16, bias=bias)
    assert torch.equal(out, bias.expand(4, 32))


# ------------------------------------------------------------------ modes
@pytest.mark.parametrize("device", devices())
def test_batch_invariant(device):
    n, k = 96, 4096 + 32
    big = 300 if device == "cuda" else 40
    a, b, sa, sb, alpha = _problem(big, n, k, device, seed=3, quantized=False)
    bias = _bias(n, torch.bfloat16, device, seed=3)
    bi = dict(bias=bias, batch_invariant=True)
    full = mm.scaled_fp4_mm(a, b, sa, sb, alpha, torch.bfloat16, **bi)
    from lowbit.testing.nvfp4 import swizzle_scales, unswizzle_scales

    lin = unswizzle_scales(sa, big, k)
    for r in [0, 1, 17, big - 1]:
        ar, sar = a[r : r + 1].contiguous(), swizzle_scales(lin[r : r + 1].contiguous())
        one = mm.scaled_fp4_mm(ar, b, sar, sb, alpha, torch.bfloat16, **bi)
        assert torch.equal(one.view(torch.int16), full[r : r + 1].view(torch.int16)), f"row {r}"
        # and of any sub-batch that contains the row
        r0 = max(0, r - 5)
        sub = swizzle_scales(lin[r0 : r + 1].contiguous())
        part = mm.scaled_fp4_mm(a[r0 : r + 1].contiguous(), b, sub, sb, alpha, torch.bfloat16, **bi)
        assert torch.equal(part[-1].view(torch.int16), full[r].view(torch.int16))


def test_wrapper_dtypes_and_errors():
    a, b, sa, sb, alpha = _problem(3, 32, 64, "cpu", seed=2)
    for dt in (torch.bfloat16, torch.float16):
        out = mm.scaled_fp4_mm(a, b, sa, sb, alpha, dt)
        assert out.dtype == dt and out.shape == (3, 32)
    with raises_arg("out_dtype", "float32"):
        mm.scaled_fp4_mm(a, b, sa, sb, alpha, torch.float32)


def test_supports_fp4_and_protocol():
    archs = mm.build_info().get("cuda_archs", [])
    for cap, arch in ((90, "90a"), (100, "100a"), (120, "120a")):
        assert mm.cutlass_scaled_mm_supports_fp4(cap) == (arch in archs)
    assert not mm.cutlass_scaled_mm_supports_fp4(80)
    assert not mm.cutlass_scaled_mm_supports_fp4(0)
    assert "CPU" in mm.OPS["cutlass_scaled_fp4_mm"]
    assert ("SM90" in mm.OPS["cutlass_scaled_fp4_mm"]) == ("90a" in archs)


def test_selfcheck_cpu():
    rows = mm.selfcheck.run(torch.device("cpu"))
    assert rows and all(r["passed"] for r in rows), rows


def test_bench_cpu():
    rows = mm.bench.run(torch.device("cpu"), quick=True)
    assert rows and all(r["us"] > 0 for r in rows)


# ------------------------------------------------------------------ torch integration
@pytest.mark.parametrize("device", devices())
def test_opcheck(device):
    a, b, sa, sb, alpha = _problem(7, 64, 96, device, seed=4)
    out = torch.empty(7, 64, dtype=torch.bfloat16, device=device)
    # Scales as uint8 bytes (accepted, same layout): opcheck's schema test
    # runs torch arithmetic on every input, which fp8 tensors do not support.
    sa, sb = sa.view(torch.uint8), sb.view(torch.uint8)
    bias = _bias(64, torch.bfloat16, device, seed=4)
    torch.library.opcheck(OPS.cutlass_scaled_fp4_mm, (out, a, b, sa, sb, alpha))
    torch.library.opcheck(OPS.cutlass_scaled_fp4_mm, (out, a, b, sa, sb, alpha, bias))
    torch.library.opcheck(OPS._cutlass_scaled_fp4_mm_with_kernel, (out, a, b, sa, sb, alpha, None, True, None, -1))
    name = mm.kernel_names(device)[0]
    torch.library.opcheck(OPS._cutlass_scaled_fp4_mm_with_kernel, (out, a, b, sa, sb, alpha, bias, False, name, -1))


@pytest.mark.parametrize("device", devices())
def test_torch_compile(device):
    a, b, sa, sb, alpha = _problem(9, 64, 96, device, seed=6)

    def f(a, b, sa, sb, alpha):
        out = torch.empty(a.shape[0], b.shape[0], dtype=torch.float16, device=a.device)
        OPS.cutlass_scaled_fp4_mm(out, a, b, sa, sb, alpha)
        return out * 2

    got = torch.compile(f, fullgraph=True)(a, b, sa, sb, alpha)
    assert torch.equal(got, f(a, b, sa, sb, alpha))


@needs_cuda
def test_cuda_graph_and_device_alpha():
    """Graph capture + replay; alpha read on the device at run time (changing
    it between replays changes the result, no host sync)."""
    a, b, sa, sb, alpha = _problem(16, 256, 512, "cuda", seed=8)
    out = torch.empty(16, 256, dtype=torch.bfloat16, device="cuda")
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        OPS.cutlass_scaled_fp4_mm(out, a, b, sa, sb, alpha)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        OPS.cutlass_scaled_fp4_mm(out, a, b, sa, sb, alpha)
    poison_(out)
    g.replay()
    torch.cuda.synchronize()
    ref = nvfp4_gemm_ref(a, b, sa, sb, alpha)
    assert relative_error(out.float(), ref) <= 4e-3
    alpha.mul_(2.0)
    g.replay()
    torch.cuda.synchronize()
    assert relative_error(out.float(), 2 * ref) <= 4e-3


@pytest.mark.skipif(not HAS_SM90, reason="needs an SM90 GPU")
@pytest.mark.parametrize("m", [1, 16, 64, 150, 1000])
@pytest.mark.parametrize("with_bias", [False, True])
def test_sm90_every_kernel_and_split(m, with_bias):
    """Every named SM90 kernel and split count computes the same function
    (split-K: the bias is added once, in the reduce)."""
    n, k = 160, 1024 + 32 * 3
    a, b, sa, sb, alpha = _problem(m, n, k, "cuda", seed=m)
    bias = _bias(n, torch.float16, "cuda", seed=m) if with_bias else None
    ref = nvfp4_gemm_ref(a, b, sa, sb, alpha, bias)
    for name in _sm90_kernels():
        for splits in (-1, 1, 3, 7):
            out = _run(a, b, sa, sb, alpha, torch.float16, bias=bias, kernel=name, splits=splits)
            err = relative_error(out.float(), ref)
            assert err <= 4e-3, (name, splits, err)


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("m", [1, 64, 300])
def test_cuda_every_kernel_with_bias(dtype, m):
    """Every kernel built for this device's target (SM90, SM100 or SM120),
    with a bias, against the reference."""
    n, k = 256, 1024 + 64
    a, b, sa, sb, alpha = _problem(m, n, k, "cuda", seed=m + 7)
    bias = _bias(n, dtype, "cuda", seed=m + 7)
    ref = nvfp4_gemm_ref(a, b, sa, sb, alpha, bias)
    for name in mm.kernel_names("cuda"):
        out = _run(a, b, sa, sb, alpha, dtype, bias=bias, kernel=name)
        assert relative_error(out.float(), ref) <= 4e-3, name


def _dequant_cutlass_kernels():
    return [x for x in _sm90_kernels() if x.startswith("dequant_cutlass_")]


@pytest.mark.skipif(not HAS_SM90, reason="needs an SM90 GPU")
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_sm90_dequant_cutlass_chunks(dtype):
    """The dequantize + CUTLASS kernels in row and column chunks (splits = 8:
    M=1000 runs as 8 A chunks (last one 104 rows), N=800 as 4 B chunks (last
    one 32 columns), the bias sliced with them)."""
    m, n, k = 1000, 800, 1120
    a, b, sa, sb, alpha = _problem(m, n, k, "cuda", seed=77)
    bias = _bias(n, dtype, "cuda", seed=77)
    for bb in (None, bias):
        ref = nvfp4_gemm_ref(a, b, sa, sb, alpha, bb)
        for splits in (-1, 8):
            for name in _dequant_cutlass_kernels():
                out = _run(a, b, sa, sb, alpha, dtype, bias=bb, kernel=name, splits=splits)
                assert relative_error(out.float(), ref) <= 4e-3, (splits, name, bb is None)


def _identity_operand(k, device):
    """NVFP4 K x K identity: code 2 (1.0) on the diagonal, scales 1.0."""
    from lowbit.testing.nvfp4 import pack_fp4, swizzle_scales

    codes = torch.diag(torch.full((k,), 2, dtype=torch.uint8))
    ones = torch.full((k, k // 16), 0x38, dtype=torch.uint8).view(torch.float8_e4m3fn)
    return pack_fp4(codes).to(device), swizzle_scales(ones).to(device)


@pytest.mark.skipif(not HAS_SM90, reason="needs an SM90 GPU")
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_sm90_dequant_cutlass_exact(dtype):
    """Bitwise: with the other operand the identity, the dequantize + CUTLASS
    path returns alpha * dequant(operand) exactly (every e2m1 * e4m3 value and
    alpha = 0.5 are exact in bf16/fp16), so every element of both dequantized
    operands is checked, not only a norm. K = 4640: two row slices of the
    dequant kernel, the last partial; K/16 = 290 blocks (scale padding 2);
    with 3 chunks also row offsets and B column chunks."""
    from lowbit.testing.nvfp4_gemm import dequantize_operand

    k, rows = 4640, 352  # rows: N of the second call (a multiple of 32, not of 128)
    eye, seye = _identity_operand(k, "cuda")
    x, sx = random_operand(rows, k, "cuda", _gen(5))
    want = 0.5 * dequantize_operand(x, sx, rows, k)
    alpha = torch.tensor([0.5], device="cuda")
    for splits in (-1, 3):
        for name in _dequant_cutlass_kernels():
            as_a = _run(x, eye, sx, seye, alpha, dtype, kernel=name, splits=splits)  # [rows, K] = alpha * A
            as_b = _run(eye, x, seye, sx, alpha, dtype, kernel=name, splits=splits)  # [K, rows] = alpha * B^T
            assert torch.equal(as_a.float(), want), (splits, name, "a")
            assert torch.equal(as_b.float(), want.T), (splits, name, "b")


@pytest.mark.skipif(not HAS_SM90, reason="needs an SM90 GPU")
@pytest.mark.parametrize("m", [1, 64, 1000])  # split-K + reduce, mma.sync, dequant + CUTLASS
def test_sm90_pdl_chain(m):
    """Programmatic dependent launch: back-to-back calls in one stream, each
    one's operands written by the two kernels right before it (copies into
    reused buffers) and every output checked. A kernel reading its inputs
    before griddepcontrol.wait, or writing early, would mix up the calls.
    Eager and as a CUDA graph."""
    # N = 4096: 32 N-tiles x 16 splits = 512 CTAs at M = 1 and 64, enough
    # (>= 3 per SM on an H100) for the main kernel's own PDL launch.
    n, k = 4096, 4096 + 32
    probs = [_problem(m, n, k, "cuda", seed=300 + i) for i in range(4)]
    refs = [nvfp4_gemm_ref(*p) for p in probs]
    bufs = [torch.empty_like(t) for t in probs[0][:4]]  # a, b, sa, sb
    outs = [torch.empty(m, n, dtype=torch.bfloat16, device="cuda") for _ in probs]

    def chain():
        for p, o in zip(probs, outs):
            for buf, src in zip(bufs, p[:4]):
                buf.copy_(src)
            OPS.cutlass_scaled_fp4_mm(o, bufs[0], bufs[1], bufs[2], bufs[3], p[4])

    def check(where):
        torch.cuda.synchronize()
        for i, (o, ref) in enumerate(zip(outs, refs)):
            assert relative_error(o.float(), ref) <= 4e-3, (where, i)
            poison_(o)

    for o in outs:
        poison_(o)
    chain()
    check("eager")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        chain()
    torch.cuda.current_stream().wait_stream(side)
    check("warm-up")
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        chain()
    graph.replay()
    check("graph")


@pytest.mark.skipif(not HAS_SM90, reason="needs an SM90 GPU")
def test_sm90_large():
    m, n, k = 1000, 4096, 4096
    a, b, sa, sb, alpha = _problem(m, n, k, "cuda", seed=21)
    out = _run(a, b, sa, sb, alpha, torch.bfloat16)
    assert relative_error(out.float(), nvfp4_gemm_ref(a, b, sa, sb, alpha)) <= 4e-3


@needs_cuda
def test_cuda_matches_cpu_kernel():
    a, b, sa, sb, alpha = _problem(33, 96, 224, "cpu", seed=12, quantized=False)
    alpha = alpha * 1e-3  # keep |D| inside fp16 range with these random scales
    cpu = _run(a, b, sa, sb, alpha, torch.float16)
    gpu = _run(a.cuda(), b.cuda(), sa.cuda(), sb.cuda(), alpha.cuda(), torch.float16)
    assert relative_error(gpu.float().cpu(), cpu.float()) <= 2e-3


# ------------------------------------------------------------------ bad inputs
def _good(device="cpu", m=5, n=64, k=96):
    a, b, sa, sb, alpha = _problem(m, n, k, device, seed=0)
    out = torch.empty(m, n, dtype=torch.bfloat16, device=device)
    return dict(out=out, a=a, b=b, block_scale_a=sa, block_scale_b=sb, alpha=alpha)


def _call(args):
    OPS.cutlass_scaled_fp4_mm(args["out"], args["a"], args["b"], args["block_scale_a"],
                              args["block_scale_b"], args["alpha"], args.get("bias"))


BAD = {
    "a dtype": (with_(a=lambda x: x["a"].view(torch.int8)), ("a", "uint8", "int8")),
    "a rank": (with_(a=lambda x: x["a"].reshape(-1)), ("a", "2-D")),
    "a non-contiguous": (with_(a=lambda x: torch.cat([x["a"], x["a"]], 1)[:, ::2]), ("a", "contiguous")),
    "k not /32": (with_(a=lambda x: x["a"][:, :40].contiguous()), ("a", "divisible by 32", "k: 80")),
    "b dtype": (with_(b=lambda x: x["b"].float()), ("b", "uint8", "float32")),
    "b rank": (with_(b=lambda x: x["b"].unsqueeze(0)), ("b", "2-D")),
    "b K mismatch": (with_(b=lambda x: torch.cat([x["b"], x["b"]], 1)), ("b", "K/2 bytes")),
    "b non-contiguous": (with_(b=lambda x: x["b"].t().contiguous().t()), ("b", "contiguous")),
    "n not /32": (with_(b=lambda x: x["b"][:48].contiguous()), ("b", "divisible by 32", "N: 48")),
    "scale_a dtype": (with_(block_scale_a=lambda x: x["block_scale_a"].float()),
                      ("block_scale_a", "float8_e4m3fn", "float32")),
    "scale_a unpadded": (with_(block_scale_a=lambda x: x["block_scale_a"][:5].contiguous()),
                         ("block_scale_a", "padded and swizzled", "128x8", "[5, 8]")),
    "scale_a rank": (with_(block_scale_a=lambda x: x["block_scale_a"].reshape(-1)),
                     ("block_scale_a", "padded and swizzled")),
    "scale_b shape": (with_(block_scale_b=lambda x: x["block_scale_b"][:, :4].contiguous()),
                      ("block_scale_b", "scale_b", "128x8", "[128, 4]")),
    "scale_b non-contiguous": (with_(block_scale_b=lambda x: x["block_scale_b"].t().contiguous().t()),
                               ("block_scale_b", "contiguous")),
    "alpha dtype": (with_(alpha=lambda x: x["alpha"].double()), ("alpha", "float32", "float64")),
    "alpha numel": (with_(alpha=lambda x: torch.ones(2)), ("alpha", "1 element", "2 element")),
    "out dtype": (with_(out=lambda x: x["out"].float()), ("out", "float16", "float32")),
    "out shape": (with_(out=lambda x: x["out"][:, :32].contiguous()), ("out", "[5, 64]", "[5, 32]")),
    "out non-contiguous": (with_(out=lambda x: x["out"].t().contiguous().t()), ("out", "contiguous")),
    "bias dtype": (with_(bias=lambda x: torch.zeros(64, dtype=torch.float16)), ("bias", "bfloat16", "float16")),
    "bias fp32": (with_(bias=lambda x: torch.zeros(64)), ("bias", "bfloat16", "float32")),
    "bias shape": (with_(bias=lambda x: torch.zeros(32, dtype=torch.bfloat16)), ("bias", "[64]", "[32]")),
    "bias rank": (with_(bias=lambda x: torch.zeros(1, 64, dtype=torch.bfloat16)), ("bias", "[64]", "[1, 64]")),
    "bias non-contiguous": (with_(bias=lambda x: torch.zeros(128, dtype=torch.bfloat16)[::2]),
                            ("bias", "contiguous")),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input(case):
    check_bad_input(_call, _good, BAD[case])


def test_bad_with_kernel_arguments():
    x = _good()
    args = (x["out"], x["a"], x["b"], x["block_scale_a"], x["block_scale_b"], x["alpha"], None)
    with raises_arg("kernel", "reference", "multistage_64x128"):
        OPS._cutlass_scaled_fp4_mm_with_kernel(*args, False, "multistage_64x128", -1)
    with raises_arg("splits", "1 .. 64"):
        OPS._cutlass_scaled_fp4_mm_with_kernel(*args, False, None, 0)
    with raises_arg("splits", "batch_invariant"):
        OPS._cutlass_scaled_fp4_mm_with_kernel(*args, True, None, 4)
    with raises_arg("kernel", "batch_invariant"):
        OPS._cutlass_scaled_fp4_mm_with_kernel(*args, True, "reference", -1)


def test_kernel_names():
    assert mm.kernel_names("cpu") == ["reference"]
    assert OPS._kernel_names(80) == []
    x = _good()
    out = _run(x["a"], x["b"], x["block_scale_a"], x["block_scale_b"], x["alpha"], torch.bfloat16, kernel="reference")
    assert relative_error(out.float(), nvfp4_gemm_ref(x["a"], x["b"], x["block_scale_a"], x["block_scale_b"],
                                                      x["alpha"])) <= 4e-3
    if HAS_SM90:
        assert len(mm.kernel_names("cuda")) == 9


@needs_cuda
@pytest.mark.parametrize("arg", ["a", "b", "block_scale_a", "block_scale_b", "out"])
def test_misaligned_base(arg):
    """A view at an 8-byte offset: a clear error, not a misaligned 16-byte access."""
    x = _good("cuda", m=128)
    t = x[arg]
    buf = torch.empty(t.numel() * t.element_size() + 8, dtype=torch.uint8, device="cuda")
    x[arg] = buf[8:].view(t.dtype).view(t.shape)
    with raises_arg(arg, "aligned to 16 bytes"):
        _call(x)


@needs_cuda
@pytest.mark.parametrize("arg", ["out", "b", "block_scale_a", "block_scale_b", "alpha", "bias"])
def test_bad_device_mix(arg):
    x = _good("cuda")
    x["bias"] = torch.zeros(64, dtype=torch.bfloat16, device="cuda")
    x[arg] = x[arg].cpu()
    with raises_arg(arg, "cuda:0", "cpu"):
        _call(x)


def test_cuda_tensor_on_cpu_only_build_or_missing_arch():
    if torch.cuda.is_available():
        pytest.skip("covered by the CUDA tests")
    assert mm.build_info() is not None
