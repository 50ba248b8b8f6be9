"""cutlass_fp4_group_mm against the pure-torch reference R5 (docs/SPEC-MOE.md
§5.2, §5.10): the FP4 grouped GEMMs' shared tests
(lowbit.testing.group_mm.GroupMmTests: expert counts up to E = 1100, zero-row
experts, alignment edges, poisoned outputs, garbage in padded scale regions,
batch invariance, bad metadata, bad inputs, opcheck, compile; on CUDA every
named kernel and graphs with changing routing) plus NVFP4's own: the alphas
argument, agreement with the dense op."""

from __future__ import annotations

import pytest
import torch

import lowbit.nvfp4_mm as mm
from lowbit.testing.checks import cuda_sm, with_
from lowbit.testing.group_mm import GroupMmTests, bad_cases
from lowbit.testing.nvfp4_gemm import group_gemm_ref, random_group_problem

OPS = torch.ops.lowbit_nvfp4_mm


class TestNvfp4GroupMm(GroupMmTests):
    op = OPS.cutlass_fp4_group_mm
    op_with_kernel = OPS._cutlass_fp4_group_mm_with_kernel
    wrapper = staticmethod(mm.cutlass_fp4_group_mm)
    ARGS = ("a", "b", "a_blockscale", "b_blockscales", "alphas", "problem_sizes", "expert_offsets", "sf_offsets")
    BAD = {
        **bad_cases(ARGS, GroupMmTests.GOOD_K, "divisible by 32"),
        "a_blockscale dtype": (with_(a_blockscale=lambda x: x["a_blockscale"].float()),
                               ("a_blockscale", "float8_e4m3fn", "float32")),
        "alphas shape": (with_(alphas=lambda x: torch.ones(3)), ("alphas", "[2]", "[3]")),
        "alphas dtype": (with_(alphas=lambda x: x["alphas"].double()), ("alphas", "float32", "float64")),
    }

    def random_problem(self, counts, n, k, device, generator=None, gap_rows=0):
        return random_group_problem(counts, n, k, device, generator, gap_rows=gap_rows)

    def reference(self, x):
        return group_gemm_ref(*self.args(x))[0]

    def kernel_names(self, device):
        return mm.group_kernel_names(device)

    def test_matches_dense_op(self):
        """Per expert within 1e-2 of cutlass_scaled_fp4_mm on the same operands
        (here: bitwise, the CPU kernels share their arithmetic)."""
        x = self.random_problem([20], 96, 160, "cpu", torch.Generator().manual_seed(5))
        got = self.run(x, torch.bfloat16)
        dense = torch.empty(20, 96, dtype=torch.bfloat16)
        kp = x["a_blockscale"].shape[1]
        OPS.cutlass_scaled_fp4_mm(dense, x["a"], x["b"][0], x["a_blockscale"][:128].contiguous(),
                                  x["b_blockscales"][0][:, :kp].contiguous(), x["alphas"][:1])
        assert torch.equal(got, dense)

    @pytest.mark.skipif(cuda_sm() is None or cuda_sm() // 10 != 9, reason="needs an SM90 GPU")
    @pytest.mark.parametrize("rows,kernel", [(8, "small_m_16x128"), (40, "wgmma_64x128"), (200, "wgmma_128x256")])
    def test_sm90_heuristic_picks_documented_kernel(self, rows, kernel):
        """The SM90 heuristic's choice by mean rows per expert (README: <= 16 the
        decode tile, <= 64 the 64-row wgmma tile, above the 128x256 one): the
        same bits as that kernel by name (each kernel is deterministic)."""
        x = self.random_problem([rows, rows], 256, 512, "cuda", torch.Generator().manual_seed(rows))
        assert torch.equal(self.run(x, torch.bfloat16), self.run(x, torch.bfloat16, kernel))
