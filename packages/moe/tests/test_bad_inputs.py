"""Bad inputs: a RuntimeError naming the argument, what was expected and what was got."""

from __future__ import annotations

import pytest
import torch

import lowbit.moe  # noqa: F401  (loads the ops)
from lowbit.testing.checks import raises_arg

ops = torch.ops.lowbit_moe


def data_args(m=4, topk=2, E=8, **over):
    i32 = lambda *s: torch.empty(*s, dtype=torch.int32)  # noqa: E731
    a = dict(topk_ids=torch.zeros(m, topk, dtype=torch.int32), expert_offsets=i32(E + 1),
             problem_sizes1=i32(E, 3), problem_sizes2=i32(E, 3), input_permutation=i32(m * topk),
             output_permutation=i32(m * topk), num_experts=E, n=64, k=128,
             blockscale_offsets=i32(E + 1), is_gated=True, sorted_expert_ids=None)
    a.update(over)
    return a


def call_data(**over):
    a = data_args(**over)
    ops.get_cutlass_moe_mm_data(*a.values())


CASES = [
    ("ids-float", "topk_ids", ("int32", "float32"), dict(topk_ids=torch.zeros(4, 2))),
    ("ids-1d", "topk_ids", ("2-D",), dict(topk_ids=torch.zeros(8, dtype=torch.int32))),
    ("ids-noncontig", "topk_ids", ("contiguous",),
     dict(topk_ids=torch.zeros(2, 4, dtype=torch.int32).t())),
    ("offsets-shape", "expert_offsets", ("[9]", "[8]"),
     dict(expert_offsets=torch.empty(8, dtype=torch.int32))),
    ("offsets-int64", "expert_offsets", ("int32", "int64"),
     dict(expert_offsets=torch.empty(9, dtype=torch.int64))),
    ("ps1-shape", "problem_sizes1", ("[8, 3]",), dict(problem_sizes1=torch.empty(8, 2, dtype=torch.int32))),
    ("ps2-dtype", "problem_sizes2", ("int32",), dict(problem_sizes2=torch.empty(8, 3))),
    ("in-perm-size", "input_permutation", ("[8]", "[7]"),
     dict(input_permutation=torch.empty(7, dtype=torch.int32))),
    ("out-perm-size", "output_permutation", ("[8]",),
     dict(output_permutation=torch.empty(8, 1, dtype=torch.int32))),
    ("bs-shape", "blockscale_offsets", ("[9]",),
     dict(blockscale_offsets=torch.empty(3, dtype=torch.int32))),
    ("sorted-shape", "sorted_expert_ids", ("[8]",),
     dict(sorted_expert_ids=torch.empty(9, dtype=torch.int32))),
    ("experts-negative", "num_experts", ("[0, 8192]", "-1"), dict(num_experts=-1)),
    ("experts-too-many", "num_experts", ("8192",), dict(num_experts=9000)),
    ("n-zero", "n", ("[1, 2^31)", "0"), dict(n=0)),
    ("k-huge", "k", ("[1, 2^31)",), dict(k=1 << 31)),
    ("n-gated-overflow", "n", ("[1, 2^31)",), dict(n=(1 << 30) + 1)),
]


@pytest.mark.parametrize("arg,frags,over", [pytest.param(a, f, o, id=i) for i, a, f, o in CASES])
def test_moe_data_bad(arg, frags, over):
    with raises_arg(arg, *frags):
        call_data(**over)


def test_moe_data_zero_experts_with_routes():
    i32 = lambda *s: torch.empty(*s, dtype=torch.int32)  # noqa: E731
    with raises_arg("num_experts", "at least 1"):
        ops.get_cutlass_moe_mm_data(torch.zeros(2, 1, dtype=torch.int32), i32(1), i32(0, 3),
                                    i32(0, 3), i32(2), i32(2), 0, 8, 8, None, True)


def test_moe_data_mixed_devices_message():
    if not torch.cuda.is_available():
        pytest.skip("needs a GPU for a second device")
    with raises_arg("expert_offsets", "cuda"):
        call_data(topk_ids=torch.zeros(4, 2, dtype=torch.int32, device="cuda"))


def sizes(off=None, ps1=None, ps2=None, n=64, k=64, swap=False):
    off = torch.zeros(5, dtype=torch.int64) if off is None else off
    ps1 = torch.empty(4, 3, dtype=torch.int32) if ps1 is None else ps1
    ps2 = torch.empty(4, 3, dtype=torch.int32) if ps2 is None else ps2
    ops.get_cutlass_moe_mm_problem_sizes_from_expert_offsets(off, ps1, ps2, n, k, swap)


@pytest.mark.parametrize("arg,frags,kw", [
    ("expert_first_token_offset", ("int64", "float32"), dict(off=torch.zeros(5))),
    ("expert_first_token_offset", ("1-D",), dict(off=torch.zeros(5, 1, dtype=torch.int64))),
    ("problem_sizes1", ("[4, 3]",), dict(ps1=torch.empty(3, 3, dtype=torch.int32))),
    ("problem_sizes2", ("int32", "int64"), dict(ps2=torch.empty(4, 3, dtype=torch.int64))),
    ("n", ("[1, 2^31)",), dict(n=-5)),
    ("k", ("[1, 2^31)",), dict(k=0)),
])
def test_problem_sizes_bad(arg, frags, kw):
    with raises_arg(arg, *frags):
        sizes(**kw)


@pytest.mark.parametrize("arg,frags,args", [
    ("input_tensor", ("float64",), (torch.zeros(4, 8, dtype=torch.float64),
                                    torch.zeros(2, dtype=torch.int32),
                                    torch.zeros(2, 8, dtype=torch.float64))),
    ("input_tensor", ("2-D",), (torch.zeros(4), torch.zeros(2, dtype=torch.int32), torch.zeros(2))),
    ("dst2src_map", ("int32", "float32"), (torch.zeros(4, 8), torch.zeros(2), torch.zeros(2, 8))),
    ("dst2src_map", ("1-D",), (torch.zeros(4, 8), torch.zeros(2, 1, dtype=torch.int32),
                               torch.zeros(2, 8))),
    ("output_tensor", ("float32", "bfloat16"), (torch.zeros(4, 8), torch.zeros(2, dtype=torch.int32),
                                                torch.zeros(2, 8, dtype=torch.bfloat16))),
    ("output_tensor", ("[2, 8]", "[3, 8]"), (torch.zeros(4, 8), torch.zeros(2, dtype=torch.int32),
                                             torch.zeros(3, 8))),
    ("output_tensor", ("contiguous",), (torch.zeros(4, 8), torch.zeros(2, dtype=torch.int32),
                                        torch.zeros(8, 2).t())),
])
def test_shuffle_rows_bad(arg, frags, args):
    with raises_arg(arg, *frags):
        ops.shuffle_rows(*args)
