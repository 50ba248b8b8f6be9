"""Bad arguments of the MXFP4 quant ops raise RuntimeError naming the argument,
what was expected and what came (docs/SPEC-MOE.md §5.4 validation table);
CPU offsets are host memory, so their values are checked too."""

from __future__ import annotations

import pytest
import torch

import lowbit.mxfp4  # noqa: F401  (loads the ops)
from lowbit.testing.checks import check_bad_input, needs_cuda, raises_arg, with_

ops = torch.ops.lowbit_mxfp4


def _good(silu=False):
    k = 64
    x = torch.randn(20, 2 * k if silu else k, dtype=torch.bfloat16)
    return {
        "output": torch.empty(20, k // 2, dtype=torch.uint8),
        "output_scale": torch.empty(256, 1, dtype=torch.int32),
        "input": x,
        "input_offset_by_experts": torch.tensor([0, 12, 20], dtype=torch.int32),
        "output_scale_offset_by_experts": torch.tensor([0, 128, 256], dtype=torch.int32),
        "n_experts": 2,
        "sorted_expert_ids": None,
    }


def _call(a, silu=False):
    op = ops.silu_and_mul_mxfp4_experts_quant if silu else ops.mxfp4_experts_quant
    op(*a.values())


def _offsets(*rows):
    return with_(input_offset_by_experts=torch.tensor(rows, dtype=torch.int32))


def _scale_offsets(*rows):
    return with_(output_scale_offset_by_experts=torch.tensor(rows, dtype=torch.int32))


BAD = {
    "input dtype": (with_(input=lambda a: a["input"].float()), ("input", "bfloat16", "float32")),
    "input rank": (with_(input=lambda a: a["input"][None]), ("input", "2")),
    "input K % 32": (with_(input=lambda a: a["input"][:, :48].contiguous()), ("input", "multiple of 32")),
    "input non-contiguous": (with_(input=lambda a: a["input"].t().contiguous().t()), ("input", "contiguous")),
    "output dtype": (with_(output=lambda a: a["output"].to(torch.int8)), ("output", "uint8", "int8")),
    "output shape": (with_(output=lambda a: a["output"][:, :16].contiguous()), ("output", "[20, 32]")),
    "output_scale dtype": (with_(output_scale=lambda a: a["output_scale"].float()),
                           ("output_scale", "int32", "float32")),
    "output_scale cols": (with_(output_scale=lambda a: torch.empty(256, 2, dtype=torch.int32)),
                          ("output_scale", "[R, 1]", "[256, 2]")),
    "output_scale too few rows": (with_(output_scale=lambda a: torch.empty(200, 4, dtype=torch.uint8)),
                                  ("output_scale", "at least 256 scale rows")),
    "offsets dtype": (with_(input_offset_by_experts=lambda a: a["input_offset_by_experts"].long()),
                      ("input_offset_by_experts", "int32", "int64")),
    "offsets shape": (_offsets(0, 0, 0, 0), ("input_offset_by_experts", "[3]", "[4]")),
    "scale offsets shape": (_scale_offsets(0, 0), ("output_scale_offset_by_experts", "[3]", "[2]")),
    "n_experts 0 with rows": (with_(n_experts=0, input_offset_by_experts=torch.zeros(1, dtype=torch.int32),
                                    output_scale_offset_by_experts=torch.zeros(1, dtype=torch.int32)),
                              ("n_experts", "at least 1", "0")),
    "ids dtype": (with_(sorted_expert_ids=lambda a: torch.zeros(20, dtype=torch.int64)),
                  ("sorted_expert_ids", "int32", "int64")),
    "ids shape": (with_(sorted_expert_ids=lambda a: torch.zeros(19, dtype=torch.int32)),
                  ("sorted_expert_ids", "[20]", "[19]")),
    "offsets past the input (CPU)": (_offsets(0, 12, 21), ("input_offset_by_experts", "[0, 20]", "last 21")),
    "offsets decreasing (CPU)": (_offsets(0, 12, 5), ("input_offset_by_experts", "non-decreasing")),
    "scale offset not a multiple of 128 (CPU)": (_scale_offsets(0, 64, 256),
                                                 ("output_scale_offset_by_experts", "multiples of 128", "64")),
    "overlapping regions (CPU)": (_scale_offsets(0, 0, 128), ("output_scale_offset_by_experts",
                                                              "round_up(m_e, 128) = 128 rows for expert 0")),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input(case):
    check_bad_input(_call, _good, BAD[case])


def test_silu_width():
    a = _good(silu=True)
    a["input"] = a["input"][:, :96].contiguous()
    with raises_arg("input", "gate || up"):
        _call(a, silu=True)


@needs_cuda
@pytest.mark.parametrize("arg", ["output", "output_scale", "input_offset_by_experts",
                                 "output_scale_offset_by_experts", "sorted_expert_ids"])
def test_bad_device_mix(arg):
    a = {k: (v.cuda() if isinstance(v, torch.Tensor) else v) for k, v in _good().items()}
    a["sorted_expert_ids"] = torch.zeros(20, dtype=torch.int32, device="cuda")
    a[arg] = a[arg].cpu()
    with raises_arg(arg, "cuda:0", "cpu"):
        _call(a)


@needs_cuda
def test_misaligned_input():
    a = {k: (v.cuda() if isinstance(v, torch.Tensor) else v) for k, v in _good().items()}
    buf = torch.empty(a["input"].numel() + 4, dtype=torch.bfloat16, device="cuda")
    a["input"] = buf[4:].view(a["input"].shape)
    with raises_arg("input", "aligned to 16 bytes"):
        _call(a)
