"""Every rejected input raises a RuntimeError naming the argument, what was
expected and what was given (checks.raises_arg). BAD_MM / BAD_PREPACK / the
GPU cases below are the list reported in the README."""

import pytest
import torch

import lowbit.w4a8_mm as w4
from lowbit.testing import checks
from lowbit.testing import w4a8 as ref
from lowbit.testing.checks import needs_sm90, with_


M, N, K = 4, 256, 512


def good(device="cpu"):
    q = torch.randint(-8, 8, (N, K), dtype=torch.int8)
    s = (torch.rand(K // 128, N) * 10 + 1).to(torch.float8_e4m3fn)
    return dict(
        A=torch.randn(M, K).to(torch.float8_e4m3fn).to(device),
        B=w4.cutlass_encode_and_reorder_int4b(ref.pack_int4(q)).to(device),
        gs=w4.cutlass_pack_scale_fp8(s).to(device),
        g=128,
        ch=torch.rand(N).to(device),
        tok=torch.rand(M).to(device),
        out_type=torch.bfloat16,
        sched=None,
    )


def call(p):
    return torch.ops.lowbit_w4a8_mm.cutlass_w4a8_mm(p["A"], p["B"], p["gs"], p["g"], p["ch"],
                                                    p["tok"], p["out_type"], p["sched"])


# (id, mutation of a good problem, argument named, message fragments)
BAD_MM = [
    ("A dtype", with_(A=lambda p: p["A"].float()), "A", ("float8_e4m3fn", "float32")),
    ("A rank", with_(A=lambda p: p["A"].view(-1)), "A", ("2-D", "1-D")),
    ("A non-contiguous", with_(A=lambda p: p["A"].t().contiguous().t()), "A", ("contiguous",)),
    ("B dtype", with_(B=lambda p: p["B"].to(torch.int64)), "B", ("int32", "int64")),
    ("B shape vs K", with_(B=lambda p: p["B"][:32]), "B", ("[64, N]", "[32, 256]")),
    ("B strided", with_(B=lambda p: torch.zeros(N, K // 8 + 4, dtype=torch.int32)[:, :K // 8].t()),
     "B", ("column-major", "row-major contiguous", "strides (1, 68)")),
    ("K % 128", with_(A=lambda p: p["A"][:, :64].contiguous(),
                      B=ref.pack_int4(torch.zeros(N, 64, dtype=torch.int8))), "A",
     ("multiple of 128", "K = 64")),
    ("N % 128", with_(B=lambda p: ref.pack_int4(torch.zeros(64, K, dtype=torch.int8)),
                      ch=torch.rand(64)), "B", ("multiple of 128", "N = 64")),
    ("group_size 64", with_(g=64), "group_size", ("128 or K", "64")),
    ("group_scales dtype", with_(gs=lambda p: p["gs"].view(torch.uint8)), "group_scales",
     ("float8_e4m3fn", "uint8")),
    ("group_scales unpacked", with_(gs=lambda p: p["gs"][: (K // 128) * N]), "group_scales",
     ("8192 elements", "1024 elements")),
    ("channel_scales dtype", with_(ch=lambda p: p["ch"].bfloat16()), "channel_scales",
     ("float32", "bfloat16")),
    ("channel_scales length", with_(ch=lambda p: p["ch"][:100]), "channel_scales",
     ("[256]", "[100]")),
    ("token_scales length", with_(tok=lambda p: p["tok"][:3]), "token_scales", ("[4]", "[3]")),
    ("token_scales [M, 2]", with_(tok=torch.rand(M, 2)), "token_scales", ("[4, 1]", "[4, 2]")),
    ("out_type float32", with_(out_type=torch.float32), "out_type", ("bfloat16", "float32")),
    ("unknown schedule", with_(sched="64x8_1x1x1"), "maybe_schedule",
     ("128x16_1x1x1", "256x128_2x1x1", "256x16_1x1x1", "'64x8_1x1x1'")),
    ("schedule tile vs N", with_(B=lambda p: ref.pack_int4(torch.zeros(384, K, dtype=torch.int8)),
                                 gs=lambda p: w4.cutlass_pack_scale_fp8(
                                     torch.ones(K // 128, 384).to(torch.float8_e4m3fn)),
                                 ch=torch.rand(384), sched="256x16_1x1x1"),
     "maybe_schedule", ("N % 256 == 0", "N = 384")),
]


@pytest.mark.parametrize("name,mutate,arg,frags", BAD_MM, ids=[b[0] for b in BAD_MM])
def test_bad_mm(name, mutate, arg, frags):
    p = mutate(good())
    with checks.raises_arg(arg, *frags):
        call(p)


BAD_PREPACK = [
    ("encode B dtype", lambda: w4.cutlass_encode_and_reorder_int4b(torch.zeros(4, 16, dtype=torch.uint8)),
     "B", ("int32", "uint8")),
    ("encode B rank", lambda: w4.cutlass_encode_and_reorder_int4b(torch.zeros(4, 16, 1, dtype=torch.int32)),
     "B", ("2-D", "3-D")),
    ("encode N % 16", lambda: w4.cutlass_encode_and_reorder_int4b(torch.zeros(24, 4, dtype=torch.int32).t()),
     "B", ("multiple of 16", "N = 24")),
    ("encode K % 32", lambda: w4.cutlass_encode_and_reorder_int4b(torch.zeros(16, 3, dtype=torch.int32).t()),
     "B", ("multiple of 32", "K = 24")),
    ("encode strided", lambda: w4.cutlass_encode_and_reorder_int4b(
        torch.zeros(16, 8, dtype=torch.int32)[:, :4].t()), "B", ("column-major", "strides (1, 8)")),
    ("pack dtype", lambda: w4.cutlass_pack_scale_fp8(torch.rand(4, 16)), "scales",
     ("float8_e4m3fn", "float32")),
    ("pack non-contiguous", lambda: w4.cutlass_pack_scale_fp8(
        torch.rand(16, 4).to(torch.float8_e4m3fn).t()), "scales", ("contiguous",)),
]


@pytest.mark.parametrize("name,fn,arg,frags", BAD_PREPACK, ids=[b[0] for b in BAD_PREPACK])
def test_bad_prepack(name, fn, arg, frags):
    with checks.raises_arg(arg, *frags):
        fn()


@needs_sm90
def test_bad_device_mismatch():
    p = good("cuda")
    p["ch"] = p["ch"].cpu()
    with checks.raises_arg("channel_scales", "cuda:0", "cpu"):
        call(p)


@needs_sm90
def test_bad_misaligned_a():
    p = good("cuda")
    buf = torch.empty(M * K + 1, dtype=torch.uint8, device="cuda")
    A = buf[1:].view(torch.float8_e4m3fn).view(M, K)
    A.copy_(p["A"])
    p["A"] = A
    with checks.raises_arg("A", "aligned to 16 bytes"):
        call(p)


def test_bad_input_count():
    # Keep the README's count honest.
    assert len(BAD_MM) + len(BAD_PREPACK) + 2 == 27
