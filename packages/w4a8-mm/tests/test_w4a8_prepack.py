"""Prepack ops against the SPEC §1.5 reference, on CPU and (if present) GPU."""

import pytest
import torch

import lowbit.w4a8_mm as w4
from lowbit.testing import checks
from lowbit.testing import w4a8 as ref
from lowbit.testing.checks import needs_sm90


def opcheck(op, args):
    """torch.library.opcheck; test_schema only for int32 inputs: its mutation
    check multiplies the inputs and torch has no fp8 mul kernel."""
    fp8 = any(torch.is_tensor(a) and a.dtype == torch.float8_e4m3fn for a in args)
    tests = ("test_autograd_registration", "test_faketensor", "test_aot_dispatch_dynamic")
    torch.library.opcheck(op, args, test_utils=tests if fp8 else ("test_schema",) + tests)



DEVICES = checks.devices()


def random_words(N, K, device):
    # Every bit pattern: random int32 words, column-major [K/8, N].
    w = torch.randint(-2**31, 2**31 - 1, (N, K // 8), dtype=torch.int32)
    return w.to(device).t()


def test_reference_pack_roundtrip():
    q = torch.randint(-8, 8, (48, 160), dtype=torch.int8)
    b = ref.pack_int4(q)
    assert b.shape == (20, 48) and b.stride() == (1, 20)
    assert torch.equal(ref.unpack_int4(b), q)
    assert torch.equal(w4.pack_int4(q), b)  # package helper = reference


def test_reference_offsets_are_a_permutation():
    for N, K in [(16, 32), (48, 160), (128, 256)]:
        off = ref.reorder_offsets(N, K).reshape(-1)
        assert torch.equal(off.sort().values, torch.arange(N * K))


def test_reference_atom_examples():
    # Hand-evaluated SPEC §1.5 formula points inside and across atoms (N = 32).
    off = ref.reorder_offsets(32, 64)
    assert off[0, 0] == 0 and off[0, 1] == 1 and off[0, 4] == 16 and off[0, 16] == 8
    assert off[8, 0] == 4 and off[1, 0] == 64 and off[16, 0] == 512 and off[0, 32] == 1024


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("N,K", [(16, 32), (128, 256), (48, 160)])
def test_encode_and_reorder_row_major(device, N, K):
    # vLLM reads B's memory as B.size(1) rows of 8 * B.size(0) nibbles
    # whatever its strides: a row-major contiguous tensor with the same shape
    # and bytes as the column-major one gives the same output bytes, with the
    # input's (row-major) strides.
    col = random_words(N, K, device)
    row = col.t().contiguous().view(col.shape)  # same memory, strides (N, 1)
    assert row.stride() == (N, 1)
    out_col = w4.cutlass_encode_and_reorder_int4b(col)
    out_row = w4.cutlass_encode_and_reorder_int4b(row)
    assert out_row.shape == row.shape and out_row.stride() == row.stride()
    assert torch.equal(out_row.reshape(-1).cpu(), out_col.t().contiguous().reshape(-1).cpu())
    assert torch.equal(out_row.cpu(), ref.encode_and_reorder(row.cpu()))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("N,K", [(16, 32), (16, 128), (128, 128), (64, 256), (48, 160),
                                 (4096, 4096), (8192, 1024)])
def test_encode_and_reorder(device, N, K):
    b = random_words(N, K, device)
    out = w4.cutlass_encode_and_reorder_int4b(b)
    assert out.shape == b.shape and out.stride() == b.stride() and out.dtype == torch.int32
    assert torch.equal(out.cpu(), ref.encode_and_reorder(b.cpu()))


@pytest.mark.parametrize("device", DEVICES)
def test_encode_values(device):
    # Every nibble value through the encoding at a known position: (n, k) = (0, 0..15).
    q = torch.zeros(16, 32, dtype=torch.int8)
    q[0, :16] = torch.arange(-8, 8, dtype=torch.int8)
    out = w4.cutlass_encode_and_reorder_int4b(ref.pack_int4(q).to(device)).cpu()
    words = out.t().contiguous().view(-1).to(torch.int64) & 0xFFFFFFFF
    nib = ((words.unsqueeze(-1) >> (4 * torch.arange(8))) & 0xF).view(-1)
    off = ref.reorder_offsets(16, 32)[0, :16]
    expected = [8, 9, 10, 11, 12, 13, 14, 15, 0, 7, 6, 5, 4, 3, 2, 1]  # -8..7 encoded
    assert nib[off].tolist() == expected


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(1,), (32, 4096), (3, 7, 5), (0, 128)])
def test_pack_scale(device, shape):
    s = (torch.randn(shape) * 4).to(torch.float8_e4m3fn).to(device)
    out = w4.cutlass_pack_scale_fp8(s)
    assert out.dtype == torch.float8_e4m3fn and out.shape == (s.numel() * 8,)
    assert torch.equal(out.view(torch.uint8).cpu(), ref.pack_scales(s.cpu()).view(torch.uint8))


@pytest.mark.parametrize("device", DEVICES)
def test_pack_scale_every_byte(device):
    # All 256 fp8 bytes: saturation (8 * 448), subnormals, +-0, NaN.
    s = torch.arange(256, dtype=torch.int32).to(torch.uint8).view(torch.float8_e4m3fn).to(device)
    got = w4.cutlass_pack_scale_fp8(s).view(torch.uint8).cpu().view(256, 8)
    want = ref.pack_scales(s.cpu()).view(torch.uint8).view(256, 8)
    assert torch.equal(got, want)
    assert got[0x38].tolist() == [0xD0, 0xCE, 0xCC, 0xCA, 0xC8, 0xC4, 0xC0, 0xB8]  # s = 1
    assert got[0x7E, 0] == 0xFE  # -8 * 448 saturates to -448
    assert got[0x7F].tolist() == [0x7F] * 8  # NaN


@pytest.mark.parametrize("device", DEVICES)
def test_prepack_opcheck(device):
    b = random_words(64, 256, device)
    s = torch.randn(2, 64).to(torch.float8_e4m3fn).to(device)
    opcheck(torch.ops.lowbit_w4a8_mm.cutlass_encode_and_reorder_int4b, (b,))
    opcheck(torch.ops.lowbit_w4a8_mm.cutlass_pack_scale_fp8, (s,))


@needs_sm90
def test_prepack_cuda_graph():
    b = random_words(256, 512, "cuda")
    s = torch.randn(4, 256).to(torch.float8_e4m3fn).cuda()
    w4.cutlass_encode_and_reorder_int4b(b), w4.cutlass_pack_scale_fp8(s)  # warm
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        ob = w4.cutlass_encode_and_reorder_int4b(b)
        os_ = w4.cutlass_pack_scale_fp8(s)
    checks.poison_(ob.t()), checks.poison_(os_)  # ob is column-major: poison its contiguous view
    b.copy_(random_words(256, 512, "cuda"))
    s.copy_(torch.randn(4, 256).to(torch.float8_e4m3fn))
    g.replay()
    torch.cuda.synchronize()
    assert torch.equal(ob.cpu(), ref.encode_and_reorder(b.cpu()))
    assert torch.equal(os_.view(torch.uint8).cpu(), ref.pack_scales(s.cpu()).view(torch.uint8))


@needs_sm90
def test_prepack_current_stream():
    b = random_words(128, 256, "cuda")
    s = torch.randn(2, 128).to(torch.float8_e4m3fn).cuda()
    st = torch.cuda.Stream()
    st.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(st):
        ob = w4.cutlass_encode_and_reorder_int4b(b)
        os_ = w4.cutlass_pack_scale_fp8(s)
    st.synchronize()
    assert torch.equal(ob.cpu(), ref.encode_and_reorder(b.cpu()))
    assert torch.equal(os_.view(torch.uint8).cpu(), ref.pack_scales(s.cpu()).view(torch.uint8))


@pytest.mark.parametrize("device", DEVICES)
def test_quantize_int4_same_bits_on_every_device(device):
    # Random bf16 weights hit exact int4 rounding ties often; a reciprocal
    # multiply instead of a division (CUDA's x / python_scalar) moves them.
    w = (torch.randn(256, 512, generator=torch.Generator().manual_seed(6)) / 16).to(torch.bfloat16)
    q, s, ch = w4.quantize_int4(w.to(device))
    rq, rs, rch = ref.quantize_weight(w)  # the CPU reference
    assert torch.equal(q.cpu(), rq)
    assert torch.equal(s.cpu().view(torch.uint8), rs.view(torch.uint8))
    assert torch.equal(ch.cpu(), rch)
    if device != "cpu":  # the device reference gives the same bits too
        dq, ds, dch = ref.quantize_weight(w.to(device))
        assert torch.equal(dq.cpu(), rq) and torch.equal(dch.cpu(), rch)
