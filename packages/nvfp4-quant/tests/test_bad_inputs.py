"""Bad inputs: each a RuntimeError naming the argument, never a crash."""

from __future__ import annotations

import pytest
import torch

import lowbit.nvfp4_quant as q
from lowbit.testing.checks import devices, needs_cuda, raises_arg

ops = torch.ops.lowbit_nvfp4_quant
DEVICES = devices()


def dense(device, m=130, n=64, dtype=torch.bfloat16):
    x = torch.randn(m, n, dtype=dtype, device=device)
    gs = torch.ones(1, device=device)
    out = torch.empty(m, n // 2, dtype=torch.uint8, device=device)
    sf = torch.empty(*q.swizzled_scale_shape(m, n), dtype=torch.float8_e4m3fn, device=device)
    return x, gs, out, sf


def quant_out(x, gs, out, sf, swz=True):
    ops.scaled_fp4_quant.out(x, gs, swz, output=out, output_scale=sf)


# (case id, callable(device), argument named, message fragments)
def _cases():
    c = []

    def add(name, arg, frags, fn):
        c.append(pytest.param(fn, arg, frags, id=name))

    add("quant-input-dtype-fp32", "input", ("float16", "float32"),
        lambda d: ops.scaled_fp4_quant(torch.randn(4, 64, device=d), torch.ones(1, device=d), True))
    add("quant-input-dtype-fp8", "input", ("bfloat16",),
        lambda d: ops.scaled_fp4_quant(torch.randn(4, 64, device=d).to(torch.float8_e4m3fn),
                                       torch.ones(1, device=d), True))
    add("quant-input-rank0", "input", ("0-D",),
        lambda d: ops.scaled_fp4_quant(torch.tensor(1.0, dtype=torch.half, device=d),
                                       torch.ones(1, device=d), True))
    add("quant-n-not-multiple-of-16", "input", ("multiple of 16", "[4, 40]"),
        lambda d: ops.scaled_fp4_quant(torch.randn(4, 40, dtype=torch.half, device=d),
                                       torch.ones(1, device=d), True))
    add("quant-non-contiguous-input", "input", ("contiguous",),
        lambda d: ops.scaled_fp4_quant(torch.randn(64, 32, dtype=torch.half, device=d).t(),
                                       torch.ones(1, device=d), False))
    add("quant-scale-dtype", "input_scale", ("float32", "float64"),
        lambda d: ops.scaled_fp4_quant(torch.randn(4, 64, dtype=torch.half, device=d),
                                       torch.ones(1, dtype=torch.float64, device=d), True))
    add("quant-scale-numel", "input_scale", ("1 element", "2 element"),
        lambda d: ops.scaled_fp4_quant(torch.randn(4, 64, dtype=torch.half, device=d),
                                       torch.ones(2, device=d), True))

    def out_shape(d):
        x, gs, out, sf = dense(d)
        quant_out(x, gs, out[:, :16], sf)
    add("quant-out-wrong-shape", "output", ("[130, 32]", "[130, 16]"), out_shape)

    def out_dtype(d):
        x, gs, out, sf = dense(d)
        quant_out(x, gs, out.view(torch.int8), sf)
    add("quant-out-wrong-dtype", "output", ("uint8", "int8"), out_dtype)

    def out_noncontig(d):
        x, gs, out, sf = dense(d)
        quant_out(x, gs, torch.empty(32, 130, dtype=torch.uint8, device=d).t(), sf)
    add("quant-out-non-contiguous", "output", ("contiguous",), out_noncontig)

    def sf_rows(d):
        x, gs, out, sf = dense(d)
        quant_out(x, gs, out, torch.empty(130, 4, dtype=torch.float8_e4m3fn, device=d))
    add("quant-scale-buffer-unpadded-rows", "output_scale", ("[256, 4]", "[130, 4]"), sf_rows)

    def sf_dtype(d):
        x, gs, out, sf = dense(d)
        quant_out(x, gs, out, torch.empty(256, 4, dtype=torch.half, device=d))
    add("quant-scale-buffer-dtype", "output_scale", ("float8_e4m3fn", "float16"), sf_dtype)

    def sf_linear_shape(d):
        x, gs, out, sf = dense(d)
        quant_out(x, gs, out, sf, swz=False)
    add("quant-linear-scale-given-swizzled-buffer", "output_scale", ("[130, 4]", "[256, 4]"), sf_linear_shape)

    def sf_int32_cols(d):
        x, gs, out, _ = dense(d, n=48)
        quant_out(x, gs, out, torch.empty(130, 1, dtype=torch.int32, device=d), swz=False)
    add("quant-linear-int32-scale-n16-not-multiple-of-4", "output_scale", ("uint8", "int32"), sf_int32_cols)

    def sf_noncontig(d):
        x, gs, out, sf = dense(d)
        quant_out(x, gs, out, torch.empty(4, 256, dtype=torch.uint8, device=d).t())
    add("quant-scale-buffer-non-contiguous", "output_scale", ("contiguous",), sf_noncontig)

    # fused SiLU
    def silu(d, m=8, cols=64, r=None, rs=None, gs=None, x=None, dtype=torch.bfloat16):
        x = torch.randn(m, cols, dtype=dtype, device=d) if x is None else x
        r = torch.empty(m, cols // 4, dtype=torch.uint8, device=d) if r is None else r
        rs = torch.empty(128, 4, dtype=torch.float8_e4m3fn, device=d) if rs is None else rs
        gs = torch.ones(1, device=d) if gs is None else gs
        ops.silu_and_mul_nvfp4_quant(r, rs, x, gs)

    add("silu-input-3d", "input", ("2-D", "3-D"),
        lambda d: silu(d, x=torch.randn(2, 8, 64, dtype=torch.bfloat16, device=d)))
    add("silu-d-not-multiple-of-16", "input", ("2d", "[8, 48]"), lambda d: silu(d, cols=48))
    add("silu-input-dtype", "input", ("float16",),
        lambda d: silu(d, x=torch.randn(8, 64, device=d)))
    add("silu-result-shape", "result", ("[8, 16]", "[8, 8]"),
        lambda d: silu(d, r=torch.empty(8, 8, dtype=torch.uint8, device=d)))
    add("silu-block-scale-shape", "result_block_scale", ("[128, 4]", "[8, 4]"),
        lambda d: silu(d, rs=torch.empty(8, 4, dtype=torch.float8_e4m3fn, device=d)))
    add("silu-block-scale-dtype", "result_block_scale", ("float8_e4m3fn", "float32"),
        lambda d: silu(d, rs=torch.empty(128, 4, dtype=torch.float32, device=d)))
    add("silu-global-scale-dtype", "input_global_scale", ("float32", "float16"),
        lambda d: silu(d, gs=torch.ones(1, dtype=torch.half, device=d)))

    # experts
    def experts(d, m=10, k=64, E=3, off=None, sfo=None, gs=None, out=None, sf=None, silu=False):
        counts = torch.tensor([4, 0, 6][:E] + [0] * max(0, E - 3))
        o, s = q.expert_offsets(counts)
        off = o.to(d) if off is None else off
        sfo = s.to(d) if sfo is None else sfo
        x = torch.randn(m, 2 * k if silu else k, dtype=torch.half, device=d)
        gs = torch.ones(E, device=d) if gs is None else gs
        out = torch.empty(m, k // 2, dtype=torch.uint8, device=d) if out is None else out
        sf = torch.empty(256, 4, dtype=torch.float8_e4m3fn, device=d) if sf is None else sf
        op = ops.silu_and_mul_scaled_fp4_experts_quant if silu else ops.scaled_fp4_experts_quant
        op(out, sf, x, gs, off, sfo)

    add("experts-offsets-wrong-length", "input_offset_by_experts", ("[4]", "[3]"),
        lambda d: experts(d, off=torch.tensor([0, 4, 4], dtype=torch.int32, device=d)))
    add("experts-offsets-int64", "input_offset_by_experts", ("int32", "int64"),
        lambda d: experts(d, off=torch.tensor([0, 4, 4, 10], device=d)))
    add("experts-sf-offsets-wrong-length", "output_scale_offset_by_experts", ("[4]", "[5]"),
        lambda d: experts(d, sfo=torch.zeros(5, dtype=torch.int32, device=d)))
    add("experts-sf-offsets-wrong-dtype", "output_scale_offset_by_experts", ("int32", "float32"),
        lambda d: experts(d, sfo=torch.zeros(4, device=d)))
    add("experts-global-scale-2d", "input_global_scale", ("1-D", "[3, 1]"),
        lambda d: experts(d, gs=torch.ones(3, 1, device=d)))
    add("experts-output-rows", "output", ("[10, 32]", "[9, 32]"),
        lambda d: experts(d, out=torch.empty(9, 32, dtype=torch.uint8, device=d)))
    add("experts-scale-cols", "output_scale", ("[*, 4]", "[256, 8]"),
        lambda d: experts(d, sf=torch.empty(256, 8, dtype=torch.float8_e4m3fn, device=d)))
    add("experts-silu-odd-d", "input", ("2d",), lambda d: experts(d, k=8, silu=True))
    # Needs the offsets' values: checked on the host for CPU tensors only (a
    # CUDA check would be a host sync; the GPU kernels clamp their scale writes
    # to the buffer's whole tiles instead, test_experts_short_scale_buffer_gpu).
    c.append(pytest.param(
        lambda d: experts(d, sf=torch.empty(200, 4, dtype=torch.float8_e4m3fn, device=d)),
        "output_scale", ("256 scale rows", "[200, 4]"), id="experts-scale-rows-short-of-offsets",
        marks=pytest.mark.cpu_only))
    return c


CASES = _cases()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fn,arg,frags", CASES)
def test_bad_input(request, device, fn, arg, frags):
    if device != "cpu" and request.node.get_closest_marker("cpu_only"):
        pytest.skip("device metadata: checked on the host for CPU tensors only (no host sync)")
    with raises_arg(arg, *frags):
        fn(device)
    # the op still works afterwards (no corrupted state)
    x = torch.randn(3, 32, dtype=torch.half, device=device)
    q.scaled_fp4_quant(x, torch.ones(1, device=device))


# Offsets' values can only be validated where they are host memory (CPU); on a
# GPU that would need a host sync, and the kernels clamp instead (no OOB).
CPU_VALUE_CASES = [
    pytest.param([0, 4, 4, 10], [0, 128, 128, 200], "output_scale_offset_by_experts",
                 ("multiples of 128", "200"), id="sf-offsets-not-multiple-of-128"),
    pytest.param([0, 4, 4, 10], [0, 128, 128, 128], "output_scale_offset_by_experts",
                 ("at least round_up(m_e, 128) = 128", "expert 2"), id="sf-region-too-small"),
    pytest.param([0, 6, 4, 10], [0, 128, 256, 384], "input_offset_by_experts",
                 ("non-decreasing",), id="offsets-decreasing"),
    pytest.param([0, 4, 4, 11], [0, 128, 128, 256], "input_offset_by_experts",
                 ("[0, 10]", "last 11"), id="offsets-past-input-rows"),
    pytest.param([0, 4, 4, 10], [0, 128, 128, 384], "output_scale",
                 ("at least 384 scale rows", "256 rows"), id="scale-buffer-too-few-rows"),
]


@pytest.mark.parametrize("off,sfo,arg,frags", CPU_VALUE_CASES)
def test_bad_offsets_cpu(off, sfo, arg, frags):
    x = torch.randn(10, 64, dtype=torch.half)
    out = torch.empty(10, 32, dtype=torch.uint8)
    sf = torch.empty(256, 4, dtype=torch.float8_e4m3fn)
    with raises_arg(arg, *frags):
        ops.scaled_fp4_experts_quant(out, sf, x, torch.ones(3), torch.tensor(off, dtype=torch.int32),
                                     torch.tensor(sfo, dtype=torch.int32))


@needs_cuda
@pytest.mark.parametrize("which", ["input_scale", "output", "output_scale"])
def test_wrong_device_dense(which):
    x, gs, out, sf = dense("cuda")
    args = {"input_scale": gs, "output": out, "output_scale": sf}
    args[which] = args[which].cpu()
    with raises_arg(which, "cuda:0", "cpu"):
        ops.scaled_fp4_quant.out(x, args["input_scale"], True, output=args["output"],
                                 output_scale=args["output_scale"])


@needs_cuda
def test_wrong_device_global_scale_functional_and_offsets():
    x = torch.randn(4, 64, dtype=torch.half, device="cuda")
    with raises_arg("input_scale", "cuda:0", "cpu"):
        ops.scaled_fp4_quant(x, torch.ones(1), True)
    off, sfo = q.expert_offsets(torch.tensor([4]))
    with raises_arg("input_offset_by_experts", "cuda:0", "cpu"):
        ops.scaled_fp4_experts_quant(torch.empty(4, 32, dtype=torch.uint8, device="cuda"),
                                     torch.empty(128, 4, dtype=torch.uint8, device="cuda"), x,
                                     torch.ones(1, device="cuda"), off, sfo.cuda())
    with raises_arg("input_global_scale", "cuda:0", "cpu"):
        ops.silu_and_mul_nvfp4_quant(torch.empty(4, 16, dtype=torch.uint8, device="cuda"),
                                     torch.empty(128, 4, dtype=torch.uint8, device="cuda"), x,
                                     torch.ones(1))


@needs_cuda
def test_experts_short_scale_buffer_gpu():
    # Offsets ask for 256 scale rows, the buffer has 200 (one whole tile): the
    # GPU cannot check this without a host sync, so it writes only the tiles the
    # buffer holds, and everything it writes equals a run on a full buffer.
    d = "cuda"
    o, s = q.expert_offsets(torch.tensor([4, 0, 6]))
    x = torch.randn(10, 64, dtype=torch.half, device=d)
    gs = torch.ones(3, device=d)
    outs = []
    for rows in (256, 200):
        out = torch.zeros(10, 32, dtype=torch.uint8, device=d)
        sf = torch.full((rows, 4), 0x7F, dtype=torch.uint8, device=d)
        ops.scaled_fp4_experts_quant(out, sf.view(torch.float8_e4m3fn), x, gs, o.to(d), s.to(d))
        torch.cuda.synchronize()
        outs.append((out, sf))
    assert torch.equal(outs[0][0], outs[1][0])
    assert torch.equal(outs[0][1][:128], outs[1][1][:128])
    assert bool((outs[1][1][128:] == 0x7F).all())  # the partial tile is never written
