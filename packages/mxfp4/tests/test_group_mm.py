"""cutlass_mxfp4_group_mm against the pure-torch oracle R5 (lowbit.testing.mxfp4;
docs/SPEC-MOE.md §5.3, §5.10.3): the FP4 grouped GEMMs' shared tests
(lowbit.testing.group_mm.GroupMmTests: expert counts up to E = 1100, zero-row
experts, alignment edges, poisoned outputs, garbage in padded scale regions,
batch invariance, bad metadata, bad inputs, opcheck, compile; on CUDA every
named kernel and graphs with changing routing) plus MXFP4's own: NaN scale
bytes, fp16 output on SM100, the package's quantizers end to end."""

from __future__ import annotations

import torch

import lowbit.mxfp4 as mx
from lowbit.testing import mxfp4 as ref
from lowbit.testing.checks import with_
from lowbit.testing.group_mm import GroupMmTests, bad_cases

OPS = torch.ops.lowbit_mxfp4


class TestMxfp4GroupMm(GroupMmTests):
    op = OPS.cutlass_mxfp4_group_mm
    op_with_kernel = OPS._cutlass_mxfp4_group_mm_with_kernel
    wrapper = staticmethod(mx.cutlass_mxfp4_group_mm)
    ARGS = ("a", "b", "a_blockscale", "b_blockscales", "problem_sizes", "expert_offsets", "sf_offsets")
    KERNEL_CAPABILITIES = range(90, 120)  # no SM120 kernel yet
    GOOD_K = 128
    BAD = {
        **bad_cases(ARGS, GOOD_K, "multiple of 32"),
        "a_blockscale dtype": (with_(a_blockscale=lambda x: x["a_blockscale"].view(torch.float8_e4m3fn)),
                               ("a_blockscale", "uint8", "float8_e4m3fn")),
    }

    def random_problem(self, counts, n, k, device, generator=None, gap_rows=0):
        return ref.random_group_problem(counts, n, k, device, generator, gap_rows=gap_rows)

    def reference(self, x):
        return ref.group_mm_ref(*self.args(x), torch.float64)

    def kernel_names(self, device):
        return mx.group_kernel_names(device)

    def dtype_supported(self, dtype, device):
        """The SM100 CUTLASS grouped kernel is built for bf16 output only."""
        return not (dtype == torch.float16 and torch.device(device).type == "cuda"
                    and torch.cuda.get_device_capability(device)[0] in (10, 11))

    def test_nan_scale_propagates(self, device):
        """E8M0 byte 0xFF is NaN (§5.3): its block's products, hence the row, are NaN."""
        x = self.random_problem([2], 32, 64, device, torch.Generator().manual_seed(2))
        x["a_blockscale"][0, 0] = 0xFF  # row 0, block 0 of expert 0
        out = self.run(x, torch.bfloat16).float().cpu()
        assert torch.isnan(out[0]).all() and torch.isfinite(out[1]).all()


def test_quantized_pipeline_close_to_bf16():
    """Operands from the package's own quantizers: close to the unquantized
    product in vLLM's metric 1 - 2·Σxy / Σ(x² + y²) (§5.10.2; < 0.15 there)."""
    g = torch.Generator().manual_seed(5)
    counts = torch.tensor([7, 0, 33])
    x = torch.randn(40, 256, generator=g).bfloat16()
    w = torch.randn(3, 64, 256, generator=g).bfloat16()
    off, sfo = mx.expert_offsets(counts)
    a, sa = mx.mxfp4_experts_quant(x, off, sfo)
    b, sb = mx.quantize_weights(w)
    ps = torch.tensor([[int(c), 64, 256] for c in counts], dtype=torch.int32)
    out = torch.empty(40, 64, dtype=torch.bfloat16)
    mx.cutlass_mxfp4_group_mm(out, a, b, sa, sb, ps, off[:-1].contiguous(), sfo[:-1].contiguous())
    for e, (lo, hi) in enumerate([(0, 7), (7, 7), (7, 40)]):
        if hi > lo:
            got, want = out[lo:hi].double(), x[lo:hi].double() @ w[e].double().T
            assert 1 - 2 * (got * want).sum() / (got * got + want * want).sum() < 0.05

