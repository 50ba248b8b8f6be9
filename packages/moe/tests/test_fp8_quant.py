"""Per-token fp8 quantization (the W4A8 layer's activations, docs/SPEC-MOE.md
§5.9.3): dynamic_per_token_scaled_fp8_quant (vLLM's schema) and the fused
silu_and_mul_per_token_fp8_quant, bit-exact against the pure-torch reference
(lowbit.testing.moe.per_token_fp8_ref) on every device; poisoned outputs,
the vector and scalar load paths, NaN/Inf, zero rows, scale_ub, bad inputs,
opcheck, compile."""

from __future__ import annotations

import pytest
import torch

import lowbit.moe as moe
from lowbit.testing import moe as ref
from lowbit.testing.checks import devices, poisoned_empty, raises_arg
from lowbit.testing.nvfp4 import silu_and_mul_ref

ops = torch.ops.lowbit_moe
DEVICES = devices()
DTYPES = [torch.bfloat16, torch.float16, torch.float32]


def _bytes(t):
    return t.cpu().contiguous().view(torch.uint8)


def _data(shape, dtype, device, seed=0, specials=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g) * torch.rand(*shape[:-1], 1, generator=g) * 20
    if specials and shape[0] >= 4 and shape[1] >= 3:
        x[0] = 0                               # all-zero row: the scale floor
        x[1, 1] = float("nan")                 # NaN ignored by amax, coded +448
        x[2, 2] = float("inf")                 # amax = Inf
        x[3] = 1e-30                           # below the floor
    return x.to(dtype).to(device)


def _run(op, x, d, ub=None):
    rows = x.numel() // x.shape[-1]
    out = poisoned_empty(*x.shape[:-1], d, dtype=torch.float8_e4m3fn, device=x.device)
    scale = poisoned_empty(rows, 1, dtype=torch.float32, device=x.device)
    op(out, x, scale, ub) if ub is not None or op is ops.dynamic_per_token_scaled_fp8_quant \
        else op(out, x, scale)
    return out, scale


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7, 64), (33, 7168), (5, 2880), (3, 13), (1, 8), (0, 64)])
def test_per_token_fp8_quant(device, dtype, shape):
    x = _data(shape, dtype, device, seed=shape[1])
    out, scale = _run(ops.dynamic_per_token_scaled_fp8_quant, x, shape[1])
    want, want_scale = ref.per_token_fp8_ref(x.cpu())
    assert torch.equal(_bytes(scale), _bytes(want_scale))
    assert torch.equal(_bytes(out), _bytes(want))


@pytest.mark.parametrize("device", DEVICES)
def test_scale_ub_and_3d_input(device):
    x = _data((2, 5, 256), torch.bfloat16, device, specials=False)
    ub = torch.tensor([0.5], device=device)
    out, scale = moe.per_token_fp8_quant(x, ub)
    want, want_scale = ref.per_token_fp8_ref(x.cpu(), ub.cpu())
    assert out.shape == x.shape and scale.shape == (10, 1)
    assert torch.equal(_bytes(scale), _bytes(want_scale))
    assert torch.equal(_bytes(out), _bytes(want))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(9, 2 * 64), (65, 2 * 2048), (3, 2 * 13)])
def test_silu_and_mul_per_token_fp8_quant(device, dtype, shape):
    x = _data(shape, dtype, device, seed=shape[1], specials=False) / 4
    out, scale = moe.silu_and_mul_per_token_fp8_quant(x)
    y = silu_and_mul_ref(x.cpu()).to(dtype)   # fp32 product rounded to x's dtype
    want, want_scale = ref.per_token_fp8_ref(y)
    if device == "cpu":
        assert torch.equal(_bytes(scale), _bytes(want_scale))
        assert torch.equal(_bytes(out), _bytes(want))
    else:  # expf may differ from the host's exp in the last bit: a rare one-code step
        torch.testing.assert_close(scale.cpu(), want_scale, rtol=1e-2, atol=0)
        diff = (out.cpu().float() - want.float()).abs() > want.float().abs() * 0.13 + 1e-6
        assert diff.float().mean() < 1e-3


@pytest.mark.parametrize("arg,frags,kw", [
    ("input", ("float64",), dict(x=torch.zeros(4, 8, dtype=torch.float64))),
    ("input", ("contiguous",), dict(x=torch.zeros(8, 4).t())),
    ("result", ("float8_e4m3fn", "bfloat16"), dict(out=torch.zeros(4, 8, dtype=torch.bfloat16))),
    ("result", ("last dimension 8",), dict(out=torch.zeros(4, 6, dtype=torch.float8_e4m3fn))),
    ("result", ("at least 4 rows",), dict(out=torch.zeros(3, 8, dtype=torch.float8_e4m3fn))),
    ("scale", ("at least 4 element",), dict(scale=torch.zeros(3))),
    ("scale", ("float32", "float16"), dict(scale=torch.zeros(4, 1, dtype=torch.float16))),
    ("scale_ub", ("1 element",), dict(ub=torch.zeros(2))),
])
def test_bad_inputs(arg, frags, kw):
    x = kw.get("x", torch.zeros(4, 8))
    out = kw.get("out", torch.empty(4, 8, dtype=torch.float8_e4m3fn))
    with raises_arg(arg, *frags):
        ops.dynamic_per_token_scaled_fp8_quant(out, x, kw.get("scale", torch.empty(4, 1)),
                                               kw.get("ub"))


@pytest.mark.parametrize("device", DEVICES)
def test_padded_outputs_keep_their_padding(device):
    # vLLM's scaled_fp8_quant(num_token_padding=...) passes more rows than the input has
    x = _data((5, 64), torch.bfloat16, device, specials=False)
    out = poisoned_empty(8, 64, dtype=torch.float8_e4m3fn, device=device)
    scale = poisoned_empty(8, 1, dtype=torch.float32, device=device)
    ops.dynamic_per_token_scaled_fp8_quant(out, x, scale, None)
    want, want_scale = ref.per_token_fp8_ref(x.cpu())
    assert torch.equal(_bytes(out[:5]), _bytes(want)) and torch.equal(scale[:5].cpu(), want_scale)
    assert (_bytes(out[5:]) == 0xA5).all() and (_bytes(scale[5:]) == 0xA5).all()


def test_silu_bad_width():
    with raises_arg("input", "even"):
        ops.silu_and_mul_per_token_fp8_quant(torch.empty(4, 3, dtype=torch.float8_e4m3fn),
                                             torch.zeros(4, 7), torch.empty(4))


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck(device):
    # without test_schema: its mutation check multiplies the fp8 output, and
    # torch has no fp8 mul kernel
    tests = ("test_autograd_registration", "test_faketensor", "test_aot_dispatch_dynamic")
    x = torch.randn(6, 64, device=device, dtype=torch.bfloat16)
    f8 = lambda *s: torch.empty(*s, dtype=torch.float8_e4m3fn, device=device)  # noqa: E731
    torch.library.opcheck(ops.dynamic_per_token_scaled_fp8_quant,
                          (f8(6, 64), x, torch.empty(6, 1, device=device), None),
                          test_utils=tests)
    torch.library.opcheck(ops.silu_and_mul_per_token_fp8_quant,
                          (f8(6, 32), x, torch.empty(6, 1, device=device)), test_utils=tests)


@pytest.mark.parametrize("device", DEVICES)
def test_compile_fullgraph(device):
    torch._dynamo.reset()
    x = torch.randn(6, 128, device=device, dtype=torch.bfloat16)

    def f(v):
        q, s = moe.silu_and_mul_per_token_fp8_quant(v)
        return moe.per_token_fp8_quant(q.float() * s)

    want = f(x)
    got = torch.compile(f, fullgraph=True)(x)
    assert torch.equal(_bytes(got[0]), _bytes(want[0])) and torch.equal(got[1], want[1])
