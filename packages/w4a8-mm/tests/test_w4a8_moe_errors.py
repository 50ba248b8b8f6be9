"""Every rejected input of cutlass_w4a8_moe_mm and
cutlass_encode_and_reorder_int4b_grouped raises a RuntimeError naming the
argument, what was expected and what was given (docs/SPEC-MOE.md §5.6
validation table, §5.7)."""

import pytest
import torch

import lowbit.w4a8_mm as w4
from lowbit.testing import checks
from lowbit.testing.checks import needs_cuda, with_

E, M, N, K = 3, 10, 256, 512


def good():
    B, b_strides = w4.cutlass_encode_and_reorder_int4b_grouped(
        torch.randint(-2**31, 2**31 - 1, (E, N, K // 8), dtype=torch.int32))
    a_str, c_str, s_str = w4.moe_strides(E, N, K)
    return dict(
        out=torch.zeros(M, N, dtype=torch.bfloat16),
        a=torch.randn(M, K).to(torch.float8_e4m3fn),
        b=B,
        a_scales=torch.rand(M),
        b_scales=torch.rand(E, N),
        gs=w4.cutlass_pack_scale_fp8((torch.rand(E, K // 128, N) + 0.1).to(torch.float8_e4m3fn)),
        g=128,
        offsets=torch.tensor([0, 3, 3], dtype=torch.int64),
        sizes=torch.tensor([[N, 3, K], [N, 0, K], [N, 7, K]], dtype=torch.int32),
        a_str=a_str, b_str=b_strides, c_str=c_str, s_str=s_str,
        sched=None,
    )


def call(p):
    torch.ops.lowbit_w4a8_mm.cutlass_w4a8_moe_mm(
        p["out"], p["a"], p["b"], p["a_scales"], p["b_scales"], p["gs"], p["g"], p["offsets"],
        p["sizes"], p["a_str"], p["b_str"], p["c_str"], p["s_str"], p["sched"])


i64 = torch.int64
BAD_MOE = [
    ("out dtype", with_(out=lambda p: p["out"].half()), "out_tensors", ("bfloat16", "float16")),
    ("out shape", with_(out=lambda p: p["out"][:, :128].contiguous()), "out_tensors", ("[10, 256]", "[10, 128]")),
    ("out non-contiguous", with_(out=lambda p: torch.zeros(N, M, dtype=torch.bfloat16).t()), "out_tensors",
     ("contiguous",)),
    ("a dtype", with_(a=lambda p: p["a"].float()), "a_tensors", ("float8_e4m3fn", "float32")),
    ("a rank", with_(a=lambda p: p["a"].view(-1)), "a_tensors", ("2-D", "1-D")),
    ("b dtype", with_(b=lambda p: p["b"].to(i64)), "b_tensors", ("int32", "int64")),
    ("b rank", with_(b=lambda p: p["b"].view(E * N, -1)), "b_tensors", ("3-D", "2-D")),
    ("b vs K", with_(b=lambda p: p["b"][:, :, :32].contiguous()), "b_tensors", ("K/8 = 64", "[3, 256, 32]")),
    ("K % 128", with_(a=lambda p: p["a"][:, :64].contiguous(), b=lambda p: p["b"][:, :, :8].contiguous()),
     "a_tensors", ("multiple of 128", "K = 64")),
    ("N % 128", with_(b=lambda p: p["b"][:, :64].contiguous()), "b_tensors", ("multiple of 128", "N = 64")),
    ("E = 0 with rows", with_(b=lambda p: p["b"][:0]), "b_tensors", ("E = b_tensors.size(0) = 0", "M")),
    ("a_scales dtype", with_(a_scales=lambda p: p["a_scales"].double()), "a_scales", ("float32", "float64")),
    ("a_scales scalar", with_(a_scales=torch.rand(1)), "a_scales", ("[10] or [10, 1]", "[1]")),
    ("b_scales per-expert scalar", with_(b_scales=torch.rand(E)), "b_scales", ("[3, 256]", "[3]")),
    ("b_scales dtype", with_(b_scales=lambda p: p["b_scales"].half()), "b_scales", ("float32", "float16")),
    ("group size 64", with_(g=64), "b_group_size", ("multiple of 128", "64")),
    ("group size not dividing K", with_(g=384), "b_group_size", ("divisor of K", "384")),
    ("group scales numel", with_(gs=lambda p: p["gs"][:-8]), "b_group_scales", ("24576 elements", "24568")),
    ("group scales dtype", with_(gs=lambda p: p["gs"].view(torch.uint8)), "b_group_scales",
     ("float8_e4m3fn", "uint8")),
    ("offsets dtype", with_(offsets=lambda p: p["offsets"].int()), "expert_offsets", ("int64", "int32")),
    ("offsets length", with_(offsets=lambda p: p["offsets"][:2]), "expert_offsets", ("[3]", "[2]")),
    ("sizes dtype", with_(sizes=lambda p: p["sizes"].long()), "problem_sizes", ("int32", "int64")),
    ("sizes shape", with_(sizes=lambda p: p["sizes"][:, :2].contiguous()), "problem_sizes", ("[3, 3]", "[3, 2]")),
    ("a_strides dtype", with_(a_str=lambda p: p["a_str"].int()), "a_strides", ("int64", "int32")),
    ("a_strides shape", with_(a_str=lambda p: p["a_str"][:1]), "a_strides", ("[3]", "[1]")),
    ("b_strides dtype", with_(b_str=lambda p: p["b_str"].long()), "b_strides", ("int32", "int64")),
    ("b_strides shape", with_(b_str=lambda p: p["b_str"][:2]), "b_strides", ("[3, 3]", "[2, 3]")),
    ("c_strides dtype", with_(c_str=lambda p: p["c_str"].int()), "c_strides", ("int64", "int32")),
    ("group_scale_strides shape", with_(s_str=lambda p: p["s_str"][:, :1].contiguous()),
     "group_scale_strides", ("[3, 2]", "[3, 1]")),
    ("schedule", with_(sched="Kernel_999x1_1x1x1_Coop"), "maybe_schedule",
     ("unknown schedule string", "Kernel_999x1_1x1x1_Coop", "Kernel_128x256_2x1x1_Coop")),
]


@pytest.mark.parametrize("name,mutate,arg,frags", BAD_MOE, ids=[b[0] for b in BAD_MOE])
def test_bad_moe_mm(name, mutate, arg, frags):
    call(good())  # the unmutated problem is accepted
    with checks.raises_arg(arg, *frags):
        call(mutate(good()))


@needs_cuda
def test_bad_moe_mm_device_mismatch():
    p = good()
    p["offsets"] = p["offsets"].cuda()
    with checks.raises_arg("expert_offsets", "cpu", "cuda"):
        call(p)


BAD_PREPACK = [
    ("dtype", torch.zeros(2, 16, 4, dtype=torch.int64), ("int32", "int64")),
    ("rank", torch.zeros(16, 4, dtype=torch.int32), ("3-D", "2-D")),
    ("non-contiguous", torch.zeros(2, 4, 16, dtype=torch.int32).transpose(1, 2), ("contiguous",)),
    ("N % 16", torch.zeros(2, 24, 4, dtype=torch.int32), ("multiple of 16", "N = 24")),
    ("K % 32", torch.zeros(2, 16, 2, dtype=torch.int32), ("multiple of 32", "K = 16")),
]


@pytest.mark.parametrize("name,b,frags", BAD_PREPACK, ids=[b[0] for b in BAD_PREPACK])
def test_bad_grouped_prepack(name, b, frags):
    with checks.raises_arg("b_tensors", *frags):
        w4.cutlass_encode_and_reorder_int4b_grouped(b)


def test_no_experts_and_no_rows_is_accepted():
    # docs/SPEC-MOE.md §5.0.3: E = 0 is valid with M = 0 (a no-op).
    p = good()
    p.update(out=p["out"][:0], a=p["a"][:0], a_scales=p["a_scales"][:0], b=p["b"][:0],
             b_scales=p["b_scales"][:0], gs=p["gs"][:0], offsets=p["offsets"][:0], sizes=p["sizes"][:0],
             a_str=p["a_str"][:0], b_str=p["b_str"][:0], c_str=p["c_str"][:0], s_str=p["s_str"][:0])
    call(p)
