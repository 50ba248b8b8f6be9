"""lowbit.vllm_ops: vLLM v0.34.0's `_custom_ops` Python API on lowbit's kernels (issue #13 item 7).

Signatures are compared with a table written from vLLM v0.34.0's
vllm/_custom_ops.py; behaviour (allocation, dtypes, shapes, env variables,
padding, bias, schedule names) is checked against the ops called directly
(their schemas are vLLM's, test_vllm_schemas.py) and the lowbit.testing
references; the family packages test the ops themselves against the SPEC oracles.
"""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest
import torch

from lowbit import vllm_ops
from lowbit.testing import nvfp4 as ref
from lowbit.testing import w4a8 as w4ref
from lowbit.testing.checks import devices, raises_arg

# function -> its signature in vLLM v0.34.0 (vllm/_custom_ops.py). silu_and_mul_nvfp4_quant
# has no wrapper there (callers call the op): its row is the op's schema.
V0340_SIGNATURES: dict[str, str] = {
    "create_fp4_scale_tensor":
        "(m: int, n: int, device: torch.device, is_sf_swizzled_layout: bool) -> torch.Tensor",
    "create_fp4_output_tensors":
        "(m: int, n: int, device: torch.device, is_sf_swizzled_layout: bool,"
        " padded_n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]",
    "scaled_fp4_quant":
        "(input: torch.Tensor, input_global_scale: torch.Tensor, is_sf_swizzled_layout: bool = True,"
        " backend: str = 'none', padded_n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]",
    "scaled_fp4_experts_quant":
        "(input_tensor: torch.Tensor, input_global_scale: torch.Tensor, expert_offsets: torch.Tensor,"
        " blockscale_offsets: torch.Tensor, topk: int) -> tuple[torch.Tensor, torch.Tensor]",
    "silu_and_mul_scaled_fp4_experts_quant":
        "(input_tensor: torch.Tensor, input_global_scale: torch.Tensor, expert_offsets: torch.Tensor,"
        " blockscale_offsets: torch.Tensor, topk: int) -> tuple[torch.Tensor, torch.Tensor]",
    "silu_and_mul_nvfp4_quant":
        "(result: torch.Tensor, result_block_scale: torch.Tensor, input: torch.Tensor,"
        " input_global_scale: torch.Tensor) -> None",
    "cutlass_scaled_mm_supports_fp4": "(cuda_device_capability: int) -> bool",
    "cutlass_scaled_fp4_mm":
        "(a: torch.Tensor, b: torch.Tensor, block_scale_a: torch.Tensor, block_scale_b: torch.Tensor,"
        " alpha: torch.Tensor, out_dtype: torch.dtype, bias: torch.Tensor | None = None) -> torch.Tensor",
    "cutlass_w4a8_mm":
        "(a: torch.Tensor, b_q: torch.Tensor, b_group_scales: torch.Tensor, b_group_size: int,"
        " b_channel_scales: torch.Tensor, a_token_scales: torch.Tensor,"
        " out_type: torch.dtype | None = None, maybe_schedule: str | None = None) -> torch.Tensor",
    "cutlass_pack_scale_fp8": "(scales: torch.Tensor) -> torch.Tensor",
    "cutlass_encode_and_reorder_int4b": "(b: torch.Tensor) -> torch.Tensor",
    "cutlass_w4a8_moe_mm":
        "(out_tensors: torch.Tensor, a_tensors: torch.Tensor, b_tensors: torch.Tensor,"
        " a_scales: torch.Tensor, b_scales: torch.Tensor, b_group_scales: torch.Tensor,"
        " b_group_size: int, expert_offsets: torch.Tensor, problem_sizes: torch.Tensor,"
        " a_strides: torch.Tensor, b_strides: torch.Tensor, c_strides: torch.Tensor,"
        " group_scale_strides: torch.Tensor, maybe_schedule: str | None = None) -> None",
    "cutlass_encode_and_reorder_int4b_grouped":
        "(b_tensors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]",
    "mxfp4_experts_quant_supported": "(cuda_device_capability: int) -> bool",
    "mxfp4_experts_quant":
        "(input_tensor: torch.Tensor, expert_offsets: torch.Tensor, blockscale_offsets: torch.Tensor,"
        " n_experts: int, topk: int, sorted_expert_ids: torch.Tensor | None = None)"
        " -> tuple[torch.Tensor, torch.Tensor]",
    "silu_and_mul_mxfp4_experts_quant":
        "(input_tensor: torch.Tensor, expert_offsets: torch.Tensor, blockscale_offsets: torch.Tensor,"
        " n_experts: int, topk: int, sorted_expert_ids: torch.Tensor | None = None)"
        " -> tuple[torch.Tensor, torch.Tensor]",
    "cutlass_mxfp4_moe_mm":
        "(out_tensors: torch.Tensor, a_tensors: torch.Tensor, b_tensors: torch.Tensor,"
        " a_scales: torch.Tensor, b_scales: torch.Tensor, problem_sizes: torch.Tensor,"
        " expert_offsets: torch.Tensor, sf_offsets: torch.Tensor)",
    "scaled_fp8_quant":
        "(input: torch.Tensor, scale: torch.Tensor | None = None, num_token_padding: int | None = None,"
        " scale_ub: torch.Tensor | None = None, use_per_token_if_dynamic: bool = False,"
        " output: torch.Tensor | None = None, group_shape: tuple[int, int] | None = None)"
        " -> tuple[torch.Tensor, torch.Tensor]",
    "cutlass_fp4_moe_mm":
        "(out_tensors: torch.Tensor, a_tensors: torch.Tensor, b_tensors: torch.Tensor,"
        " a_scales: torch.Tensor, b_scales: torch.Tensor, alphas: torch.Tensor,"
        " problem_sizes: torch.Tensor, expert_offsets: torch.Tensor, sf_offsets: torch.Tensor)",
    "get_cutlass_moe_mm_data":
        "(topk_ids: torch.Tensor, expert_offsets: torch.Tensor, problem_sizes1: torch.Tensor,"
        " problem_sizes2: torch.Tensor, input_permutation: torch.Tensor,"
        " output_permutation: torch.Tensor, num_experts: int, n: int, k: int,"
        " blockscale_offsets: torch.Tensor | None = None, is_gated: bool = True,"
        " sorted_expert_ids: torch.Tensor | None = None)",
    "get_cutlass_moe_mm_problem_sizes_from_expert_offsets":
        "(expert_first_token_offset: torch.Tensor, problem_sizes1: torch.Tensor,"
        " problem_sizes2: torch.Tensor, n: int, k: int, swap_ab: bool)",
    "shuffle_rows": "(input_tensor: torch.Tensor, dst2src_map: torch.Tensor)",
}

# vLLM v0.34.0's W4A8 schedule names (csrc/quantization/cutlass_w4a8/w4a8_mm_entry.cu)
V0340_W4A8_SCHEDULES = (
    "128x16_1x1x1", "128x32_1x1x1", "128x64_1x1x1", "128x128_1x1x1", "128x256_1x1x1",
    "128x256_2x1x1", "256x16_1x1x1", "256x32_1x1x1", "256x64_1x1x1", "256x128_1x1x1",
)

# vLLM v0.34.0's W4A8 MoE schedule names (csrc/quantization/cutlass_w4a8/w4a8_grouped_mm_entry.cu)
V0340_W4A8_MOE_SCHEDULES = tuple(
    f"Kernel_{tile}_{cluster}_Coop" for tile, cluster in (
        ("128x16", "1x1x1"), ("128x16", "2x1x1"), ("256x16", "1x1x1"), ("256x16", "2x1x1"),
        ("256x32", "1x1x1"), ("256x32", "2x1x1"), ("256x64", "1x1x1"), ("256x64", "2x1x1"),
        ("256x128", "1x1x1"), ("256x128", "2x1x1"), ("128x256", "2x1x1")))

DEVICES = devices()
BLOCK = 16


def _signature(text: str) -> inspect.Signature:
    scope: dict = {}
    exec(f"from __future__ import annotations\ndef f{text}: pass", scope)
    return inspect.signature(scope["f"])


def _parts(sig: inspect.Signature):
    params = [(p.name, p.kind, p.default, p.annotation) for p in sig.parameters.values()]
    return params, sig.return_annotation


# ----------------------------------------------------------------- API surface
@pytest.mark.parametrize("name", sorted(V0340_SIGNATURES))
def test_signature_is_vllm_v0340(name):
    want_params, want_ret = _parts(_signature(V0340_SIGNATURES[name]))
    got_params, got_ret = _parts(inspect.signature(getattr(vllm_ops, name)))
    assert got_params == want_params
    assert got_ret == want_ret


def test_exports_exactly_the_table():
    assert sorted(vllm_ops.__all__) == sorted(V0340_SIGNATURES)
    assert vllm_ops.VLLM_VERSION == "0.34.0"


FRESH_PROCESS = """
import sys
import torch
from lowbit import vllm_ops as ops
from lowbit.testing.nvfp4_gemm import quantized_operand

families = ("lowbit.nvfp4_quant", "lowbit.nvfp4_mm", "lowbit.w4a8_mm", "lowbit.mxfp4", "lowbit.moe")
assert not [f for f in families if f in sys.modules], "importing vllm_ops loaded a family"

x = torch.randn(8, 64, dtype=torch.bfloat16)
quant = torch.compile(lambda x, gs: ops.scaled_fp4_quant(x, gs, padded_n=96), fullgraph=True)
packed, sf = quant(x, torch.tensor([100.0]))
assert packed.shape == (8, 48) and sf.shape == (128, 8), (packed.shape, sf.shape)
a, sa, ga = quantized_operand(5, 128, "cpu")
b, sb, gb = quantized_operand(64, 128, "cpu")
mm = torch.compile(lambda *t: ops.cutlass_scaled_fp4_mm(*t, torch.float16), fullgraph=True)
out = mm(a, b, sa, sb, (1 / (ga * gb)).float())
assert out.shape == (5, 64) and out.dtype == torch.float16
off = torch.tensor([0, 3, 8], dtype=torch.int32)
sf_off = torch.tensor([0, 128, 256], dtype=torch.int32)
mxq = torch.compile(lambda x: ops.mxfp4_experts_quant(x, off, sf_off, 2, 1), fullgraph=True)
codes, sf = mxq(torch.randn(8, 64, dtype=torch.bfloat16))
assert codes.shape == (8, 32) and sf.dtype == torch.uint8, (codes.shape, sf.dtype)
fp8 = torch.compile(lambda x: ops.scaled_fp8_quant(x, use_per_token_if_dynamic=True), fullgraph=True)
q, s = fp8(torch.randn(6, 32, dtype=torch.bfloat16))
assert q.dtype == torch.float8_e4m3fn and s.shape == (6, 1)
print("ok")
"""


def test_lazy_families_and_compiled_first_call():
    """In a fresh process: importing the module loads no family, and a family first
    loaded inside a call traced by torch.compile(fullgraph=True) (vLLM compiles its
    forward that way) does not break the graph."""
    for family in ("nvfp4_quant", "nvfp4_mm", "mxfp4", "moe"):
        pytest.importorskip(f"lowbit.{family}")
    out = subprocess.run([sys.executable, "-c", FRESH_PROCESS], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]


@pytest.mark.parametrize("module, dist, call", [
    ("lowbit.nvfp4_quant", "lowbit-nvfp4-quant",
     lambda: vllm_ops.scaled_fp4_quant(torch.zeros(2, 16, dtype=torch.bfloat16), torch.ones(1))),
    ("lowbit.nvfp4_mm", "lowbit-nvfp4-mm", lambda: vllm_ops.cutlass_scaled_mm_supports_fp4(100)),
    ("lowbit.w4a8_mm", "lowbit-w4a8-mm",
     lambda: vllm_ops.cutlass_pack_scale_fp8(torch.ones(1, 16).to(torch.float8_e4m3fn))),
    ("lowbit.w4a8_mm", "lowbit-w4a8-mm",
     lambda: vllm_ops.cutlass_encode_and_reorder_int4b_grouped(torch.zeros(1, 16, 4, dtype=torch.int32))),
    ("lowbit.mxfp4", "lowbit-mxfp4",
     lambda: vllm_ops.mxfp4_experts_quant(torch.zeros(2, 32, dtype=torch.bfloat16),
                                          torch.tensor([0, 2], dtype=torch.int32),
                                          torch.tensor([0, 128], dtype=torch.int32), 1, 2)),
    ("lowbit.moe", "lowbit-moe",
     lambda: vllm_ops.scaled_fp8_quant(torch.zeros(2, 16), use_per_token_if_dynamic=True)),
])
def test_missing_family_names_its_distribution(monkeypatch, module, dist, call):
    monkeypatch.setitem(sys.modules, module, None)  # import of it now fails as if absent
    with pytest.raises(ImportError, match=f"'{dist}'"):
        call()


# ----------------------------------------------------------------- helpers
def test_create_fp4_output_tensors_allocates_as_vllm():
    out, sf = vllm_ops.create_fp4_output_tensors(130, 48, torch.device("cpu"), True)
    assert (out.shape, out.dtype, sf.shape, sf.dtype) == ((130, 24), torch.uint8, (256, 1), torch.int32)
    out, sf = vllm_ops.create_fp4_output_tensors(130, 48, torch.device("cpu"), False, padded_n=64)
    assert (out.shape, out.dtype, sf.shape, sf.dtype) == ((130, 32), torch.uint8, (130, 4), torch.uint8)
    sf = vllm_ops.create_fp4_scale_tensor(5, 112, torch.device("cpu"), True)
    assert (sf.shape, sf.dtype) == ((128, 2), torch.int32)


# ----------------------------------------------------------------- scaled_fp4_quant
def _nq():
    """The NVFP4 quant ops (torch.ops.lowbit_nvfp4_quant), or skip."""
    pytest.importorskip("lowbit.nvfp4_quant")
    return torch.ops.lowbit_nvfp4_quant


def _bytes(t: torch.Tensor) -> torch.Tensor:
    """The bytes of t, last dimension in bytes (int32 [r, c] -> uint8 [r, 4c])."""
    return t.contiguous().view(torch.uint8)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("swizzled", [True, False])
@pytest.mark.parametrize("shape", [(64,), (3, 5, 64), (130, 48), (0, 32)])
def test_scaled_fp4_quant_outputs(device, dtype, swizzled, shape):
    ops = _nq()
    x = torch.randn(shape, dtype=dtype, device=device)
    gs = ref.global_scale_for(x) if x.numel() else torch.ones(1, device=device)
    packed, sf = vllm_ops.scaled_fp4_quant(x, gs, swizzled)
    n = shape[-1]
    m = x.numel() // n
    want_sf = ref.swizzled_scale_shape(m, n) if swizzled else (m, n // BLOCK)
    assert (packed.shape, packed.dtype) == ((m, n // 2), torch.uint8)
    assert (tuple(sf.shape), sf.dtype) == (want_sf, torch.float8_e4m3fn)
    ref_packed, ref_sf = ops.scaled_fp4_quant(x.reshape(m, n), gs, swizzled)
    assert torch.equal(packed, ref_packed)
    assert torch.equal(_bytes(sf), _bytes(ref_sf))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("swizzled", [True, False])
@pytest.mark.parametrize("m, n, padded_n", [(5, 48, 64), (130, 48, 112), (7, 32, 32)])
def test_scaled_fp4_quant_padded_n(device, swizzled, m, n, padded_n):
    ops = _nq()
    x = torch.randn(m, n, dtype=torch.bfloat16, device=device)
    gs = ref.global_scale_for(x)
    packed, sf = vllm_ops.scaled_fp4_quant(x, gs, swizzled, padded_n=padded_n)
    ref_packed, ref_sf = ops.scaled_fp4_quant(x, gs, swizzled)
    assert packed.shape == (m, padded_n // 2)
    assert torch.equal(packed[:, : n // 2], ref_packed)
    assert not packed[:, n // 2:].any(), "padding codes must be zero"
    if swizzled:
        # the whole buffer: the input's scales, every other byte zero
        lin = torch.zeros(m, padded_n // BLOCK, dtype=torch.uint8, device=device)
        lin[:, : n // BLOCK] = _bytes(ref.unswizzle_scales(ref_sf, m, n))
        want = ref.swizzle_scales(lin.view(torch.float8_e4m3fn))
        assert tuple(sf.shape) == tuple(want.shape)
        assert torch.equal(_bytes(sf), _bytes(want))
    else:
        assert sf.shape == (m, padded_n // BLOCK)
        assert torch.equal(_bytes(sf[:, : n // BLOCK]), _bytes(ref_sf))
        assert not _bytes(sf[:, n // BLOCK:]).any()


def test_scaled_fp4_quant_trtllm_small_m_is_out_of_scope():
    x = torch.randn(32, 64, dtype=torch.bfloat16)
    gs = torch.ones(1)
    with pytest.raises(NotImplementedError, match="8x4"):
        vllm_ops.scaled_fp4_quant(x, gs, backend="flashinfer-trtllm")
    with pytest.raises(ValueError, match="padded_n"):
        vllm_ops.scaled_fp4_quant(x, gs, backend="trtllm", padded_n=96)


def test_scaled_fp4_quant_trtllm_large_m_is_the_128x4_path():
    ops = _nq()
    x = torch.randn(33, 64, dtype=torch.bfloat16)
    gs = ref.global_scale_for(x)
    packed, sf = vllm_ops.scaled_fp4_quant(x, gs, backend="trtllm")
    ref_packed, ref_sf = ops.scaled_fp4_quant(x, gs, True)
    assert torch.equal(packed, ref_packed) and torch.equal(_bytes(sf), _bytes(ref_sf))


def test_scaled_fp4_quant_bad_arguments():
    gs = torch.ones(1)
    with raises_arg("input", "multiple of 16"):
        vllm_ops.scaled_fp4_quant(torch.zeros(4, 40, dtype=torch.bfloat16), gs)
    with raises_arg("input", "torch.float16"):
        vllm_ops.scaled_fp4_quant(torch.zeros(4, 32), gs)
    with raises_arg("padded_n", ">= n = 48"):
        vllm_ops.scaled_fp4_quant(torch.zeros(4, 48, dtype=torch.bfloat16), gs, padded_n=32)
    with raises_arg("padded_n", "multiple of 16"):
        vllm_ops.scaled_fp4_quant(torch.zeros(4, 48, dtype=torch.bfloat16), gs, padded_n=56)


# ----------------------------------------------------------------- experts quant
def _experts_problem(device, counts=(3, 0, 5), k=64, gated=False):
    _nq()
    m = sum(counts)
    x = torch.randn(m, 2 * k if gated else k, dtype=torch.bfloat16, device=device)
    gs = torch.rand(len(counts), device=device) * 100 + 50
    rows = [0] + [ref.round_up(c, 128) for c in counts]
    off = torch.tensor([0, *counts], device=device).cumsum(0).to(torch.int32)
    sf_off = torch.tensor(rows, device=device).cumsum(0).to(torch.int32)
    return x, gs, off, sf_off


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("gated", [False, True], ids=["plain", "silu"])
def test_experts_quant_allocates_max_tokens_times_topk(monkeypatch, device, gated):
    ops = _nq()
    monkeypatch.setenv("VLLM_MAX_TOKENS_PER_EXPERT_FP4_MOE", "128")
    topk, k = 3, 64
    x, gs, off, sf_off = _experts_problem(device, k=k, gated=gated)
    fn = "silu_and_mul_scaled_fp4_experts_quant" if gated else "scaled_fp4_experts_quant"
    packed, sf = getattr(vllm_ops, fn)(x, gs, off, sf_off, topk)
    assert (packed.shape, packed.dtype) == ((x.shape[0], k // 2), torch.uint8)
    assert (tuple(sf.shape), sf.dtype) == ((128 * topk, 4), torch.float8_e4m3fn)
    rows = int(sf_off[-1])  # the experts' regions; vLLM leaves the rest unwritten
    ref_packed = torch.empty_like(packed)
    ref_sf = torch.empty(rows, sf.shape[1] // 4, dtype=torch.int32, device=device)
    getattr(ops, fn)(ref_packed, ref_sf, x, gs, off, sf_off)
    assert torch.equal(packed, ref_packed)
    assert torch.equal(_bytes(sf)[:rows], _bytes(ref_sf))


def test_experts_quant_default_buffer_rows():
    _nq()
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():  # 163840 * topk rows: shapes only, no memory
        x, gs, off, sf_off = _experts_problem("cpu", k=256)
        _, sf = vllm_ops.scaled_fp4_experts_quant(x, gs, off, sf_off, 8)
        assert tuple(sf.shape) == (163840 * 8, 16)


def test_experts_quant_bad_arguments(monkeypatch):
    _nq()
    monkeypatch.setenv("VLLM_MAX_TOKENS_PER_EXPERT_FP4_MOE", "2")
    x, gs, off, sf_off = _experts_problem("cpu")
    with raises_arg("input_tensor", "VLLM_MAX_TOKENS_PER_EXPERT_FP4_MOE"):
        vllm_ops.scaled_fp4_experts_quant(x, gs, off, sf_off, 2)
    with raises_arg("input_tensor", "2-D"):
        vllm_ops.scaled_fp4_experts_quant(x[None], gs, off, sf_off, 8)
    with raises_arg("input_tensor", "even"):
        vllm_ops.silu_and_mul_scaled_fp4_experts_quant(x[:, :63], gs, off, sf_off, 8)


# ----------------------------------------------------------------- fused SiLU op
@pytest.mark.parametrize("device", DEVICES)
def test_silu_and_mul_nvfp4_quant_is_the_op(device):
    ops = _nq()
    m, d = 5, 64
    x = torch.randn(m, 2 * d, dtype=torch.bfloat16, device=device)
    gs = torch.tensor([300.0], device=device)
    mp, kp = ref.swizzled_scale_shape(m, d)
    result = torch.empty(m, d // 2, dtype=torch.uint8, device=device)
    scale = torch.empty(mp, kp // 4, dtype=torch.int32, device=device)  # vLLM's allocation
    assert vllm_ops.silu_and_mul_nvfp4_quant(result, scale, x, gs) is None
    ref_result = torch.empty_like(result)
    ref_scale = torch.empty(mp, kp, dtype=torch.uint8, device=device)  # the byte view
    ops.silu_and_mul_nvfp4_quant(ref_result, ref_scale, x, gs)
    assert torch.equal(result, ref_result)
    assert torch.equal(_bytes(scale), ref_scale)


# ----------------------------------------------------------------- NVFP4 GEMM
def _mm():
    return pytest.importorskip("lowbit.nvfp4_mm")


def _gemm_problem(device, m=5, n=64, k=128):
    from lowbit.testing.nvfp4_gemm import quantized_operand

    g = torch.Generator().manual_seed(13)
    a, sa, ga = quantized_operand(m, k, device, g)
    b, sb, gb = quantized_operand(n, k, device, g)
    return a, b, sa, sb, (1.0 / (ga * gb)).float()


def _gemm_devices():
    mm = _mm()
    out = ["cpu"]
    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability()
        if mm.cutlass_scaled_mm_supports_fp4(10 * major + minor):
            out.append("cuda")
    return out


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("out_dtype", [torch.bfloat16, torch.float16])
def test_cutlass_scaled_fp4_mm_allocates_out(monkeypatch, device, out_dtype):
    if device not in _gemm_devices():
        pytest.skip("no NVFP4 GEMM kernel for this device in this build")
    monkeypatch.delenv("VLLM_BATCH_INVARIANT", raising=False)
    a, b, sa, sb, alpha = _gemm_problem(device)
    out = vllm_ops.cutlass_scaled_fp4_mm(a, b, sa, sb, alpha, out_dtype)
    assert (out.shape, out.dtype, out.device.type) == ((5, 64), out_dtype, torch.device(device).type)
    assert torch.equal(out, _mm().scaled_fp4_mm(a, b, sa, sb, alpha, out_dtype))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("batch_invariant", ["0", "1"])
@pytest.mark.parametrize("out_dtype", [torch.bfloat16, torch.float16])
def test_cutlass_scaled_fp4_mm_bias(monkeypatch, device, batch_invariant, out_dtype):
    if device not in _gemm_devices():
        pytest.skip("no NVFP4 GEMM kernel for this device in this build")
    from lowbit.testing.nvfp4_gemm import nvfp4_gemm_ref, relative_error

    monkeypatch.setenv("VLLM_BATCH_INVARIANT", batch_invariant)
    a, b, sa, sb, alpha = _gemm_problem(device)
    bias = torch.randn(64, device=device).to(out_dtype)
    out = vllm_ops.cutlass_scaled_fp4_mm(a, b, sa, sb, alpha, out_dtype, bias)
    ref = nvfp4_gemm_ref(a, b, sa, sb, alpha) + bias.float()
    assert out.dtype == out_dtype
    assert relative_error(out.float(), ref) < 1e-2


@pytest.mark.parametrize("value, on", [("1", True), ("0", False), ("", False), ("2", True),
                                       ("yes", False), (None, False)])
def test_batch_invariant_env_is_honoured(monkeypatch, value, on):
    mm = _mm()
    if value is None:
        monkeypatch.delenv("VLLM_BATCH_INVARIANT", raising=False)
    else:
        monkeypatch.setenv("VLLM_BATCH_INVARIANT", value)
    calls = []
    real = mm.scaled_fp4_mm

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(mm, "scaled_fp4_mm", spy)
    a, b, sa, sb, alpha = _gemm_problem("cpu")
    out = vllm_ops.cutlass_scaled_fp4_mm(a, b, sa, sb, alpha, torch.bfloat16)
    assert [c.get("batch_invariant") for c in calls] == ([True] if on else [])
    assert out.shape == (5, 64) and out.dtype == torch.bfloat16


@pytest.mark.parametrize("device", DEVICES)
def test_batch_invariant_rows_do_not_depend_on_m(monkeypatch, device):
    if device not in _gemm_devices():
        pytest.skip("no NVFP4 GEMM kernel for this device in this build")
    monkeypatch.setenv("VLLM_BATCH_INVARIANT", "1")
    a, b, sa, sb, alpha = _gemm_problem(device, m=200, n=256, k=512)
    full = vllm_ops.cutlass_scaled_fp4_mm(a, b, sa, sb, alpha, torch.bfloat16)
    for r in (0, 77, 199):  # row r alone, with its scales re-laid for a 1-row operand
        lin = ref.unswizzle_scales(sa, 200, 512)[r: r + 1]
        one = vllm_ops.cutlass_scaled_fp4_mm(a[r: r + 1], b, ref.swizzle_scales(lin), sb, alpha,
                                             torch.bfloat16)
        assert torch.equal(one[0], full[r])


def test_cutlass_scaled_fp4_mm_bad_rank():
    _mm()
    a, b, sa, sb, alpha = _gemm_problem("cpu")
    with raises_arg("a, b", "2-D"):
        vllm_ops.cutlass_scaled_fp4_mm(a[None], b, sa, sb, alpha, torch.bfloat16)


@pytest.mark.parametrize("capability", [75, 80, 89, 90, 100, 103, 110, 120, 121])
def test_supports_fp4_is_the_family_answer(capability):
    mm = _mm()
    got = vllm_ops.cutlass_scaled_mm_supports_fp4(capability)
    assert type(got) is bool and got == mm.cutlass_scaled_mm_supports_fp4(capability)


# ----------------------------------------------------------------- W4A8
def _w4():
    """The W4A8 ops (torch.ops.lowbit_w4a8_mm), or skip."""
    pytest.importorskip("lowbit.w4a8_mm")
    return torch.ops.lowbit_w4a8_mm


def _w4a8_devices():
    out = ["cpu"]
    if torch.cuda.is_available() and torch.cuda.get_device_capability() == (9, 0):
        out.append("cuda")
    return out


def _w4a8_problem(device, m=8, n=256, k=512):
    _w4()
    g = torch.Generator().manual_seed(7)
    q, s, ch = w4ref.quantize_weight(torch.randn(n, k, generator=g).to(device))
    a, tok = w4ref.quantize_activation(torch.randn(m, k, generator=g).to(device))
    return dict(a=a, b_q=vllm_ops.cutlass_encode_and_reorder_int4b(w4ref.pack_int4(q)),
                b_group_scales=vllm_ops.cutlass_pack_scale_fp8(s), b_group_size=128,
                b_channel_scales=ch, a_token_scales=tok)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("out_type", [None, torch.bfloat16, torch.float16])
def test_cutlass_w4a8_mm_keywords_and_dtype(device, out_type):
    if device not in _w4a8_devices():
        pytest.skip("the W4A8 GEMM has CPU and SM90 kernels only")
    kw = _w4a8_problem(device)
    out = vllm_ops.cutlass_w4a8_mm(**kw, out_type=out_type)
    assert out.shape == (8, 256) and out.dtype == (out_type or torch.bfloat16)
    want = _w4().cutlass_w4a8_mm(*kw.values(), out_type, None)
    assert torch.equal(out, want)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("schedule", V0340_W4A8_SCHEDULES)
def test_cutlass_w4a8_mm_accepts_every_vllm_schedule(device, schedule):
    if device not in _w4a8_devices():
        pytest.skip("the W4A8 GEMM has CPU and SM90 kernels only")
    kw = _w4a8_problem(device)
    out = vllm_ops.cutlass_w4a8_mm(**kw, maybe_schedule=schedule)
    heuristic = vllm_ops.cutlass_w4a8_mm(**kw)
    assert out.shape == heuristic.shape and out.dtype == torch.bfloat16
    assert w4ref.rel_err(out, heuristic) < 1e-2


def test_cutlass_w4a8_mm_unknown_schedule():
    kw = _w4a8_problem("cpu")
    with pytest.raises(RuntimeError, match="schedule"):
        vllm_ops.cutlass_w4a8_mm(**kw, maybe_schedule="64x64_1x1x1_nonexistent")


@pytest.mark.parametrize("device", DEVICES)
def test_w4a8_prepack_helpers(device):
    _w4()
    s = (torch.rand(4, 256, device=device) + 0.5).to(torch.float8_e4m3fn)
    packed = vllm_ops.cutlass_pack_scale_fp8(s)
    assert packed.shape == (s.numel() * 8,) and packed.dtype == torch.float8_e4m3fn
    assert torch.equal(w4ref.fp8_bytes(packed), w4ref.fp8_bytes(w4ref.pack_scales(s)))
    q = torch.randint(-8, 8, (256, 512), dtype=torch.int8, device=device)
    b = w4ref.pack_int4(q)  # int32 [K/8, N], column-major as vLLM's callers pass it
    enc = vllm_ops.cutlass_encode_and_reorder_int4b(b)
    assert (enc.shape, enc.stride(), enc.dtype) == (b.shape, b.stride(), torch.int32)
    assert torch.equal(enc, w4ref.encode_and_reorder(b))


def test_moe_wrappers_match_the_ops():
    """The MoE functions reach lowbit-moe / lowbit-nvfp4-mm and give the bytes of
    the pure-torch routing reference."""
    pytest.importorskip("lowbit.moe")
    ids = torch.tensor([[1, 0], [2, 1], [-1, 1]], dtype=torch.int32)
    E, n, k = 3, 32, 64
    off = torch.zeros(E + 1, dtype=torch.int32)
    ps1, ps2 = torch.zeros(E, 3, dtype=torch.int32), torch.zeros(E, 3, dtype=torch.int32)
    a_map, c_map = torch.empty(6, dtype=torch.int32), torch.empty(6, dtype=torch.int32)
    vllm_ops.get_cutlass_moe_mm_data(ids, off, ps1, ps2, a_map, c_map, E, n, k)
    assert off.tolist() == [0, 1, 4, 5]
    # m*topk <= 64 with no blockscale_offsets: written swapped (n1, m_e, k), as vLLM
    assert ps1[:, 1].tolist() == [1, 3, 1] and ps1[0, 0].item() == 2 * n and ps1[0, 2].item() == k
    x = torch.randn(3, 16)
    y = vllm_ops.shuffle_rows(x, a_map)
    for p, t in enumerate(a_map.tolist()):
        assert torch.equal(y[p], x[t] if t >= 0 else torch.zeros(16))
    eo = torch.tensor([0, 1, 4, 5], dtype=torch.int64)
    q1, q2 = torch.zeros(E, 3, dtype=torch.int32), torch.zeros(E, 3, dtype=torch.int32)
    vllm_ops.get_cutlass_moe_mm_problem_sizes_from_expert_offsets(eo, q1, q2, n, k, True)
    assert q1.tolist() == ps1.tolist()


# ----------------------------------------------------------------- targets
_TARGET_OF_MAJOR = {9: "SM90", 10: "SM100", 12: "SM120"}


def _runs_on(family, op: str, device: str) -> bool:
    """Whether the family's build has a kernel of `op` for `device` (its OPS table)."""
    if device == "cpu":
        return "CPU" in family.OPS[op]
    major, minor = torch.cuda.get_device_capability()
    if major == 9 and minor != 0:
        return False
    return _TARGET_OF_MAJOR.get(major) in family.OPS[op]


def _skip_unless_runs(family, op: str, device: str) -> None:
    if not _runs_on(family, op, device):
        pytest.skip(f"no {op} kernel for {device} in this build")


# ----------------------------------------------------------------- W4A8 MoE
def _w4a8_moe_problem(device, n=128, k=256):
    """Three experts (one empty) and two rows no expert covers."""
    _w4()
    from lowbit.testing import w4a8_moe

    torch.manual_seed(11)
    return w4a8_moe.random_moe_problem([3, 0, 5], n, k, device, extra_rows=2)


@pytest.mark.parametrize("device", DEVICES)
def test_w4a8_grouped_prepack_returns_vllms_pair(device):
    ops = _w4()
    from lowbit import w4a8_mm
    from lowbit.testing import w4a8_moe

    _skip_unless_runs(w4a8_mm, "cutlass_encode_and_reorder_int4b_grouped", device)
    words = _w4a8_moe_problem(device)["words"]
    got = vllm_ops.cutlass_encode_and_reorder_int4b_grouped(words)
    assert isinstance(got, tuple) and len(got) == 2
    b, desc = got
    assert (b.shape, b.dtype, desc.shape, desc.dtype) == (words.shape, torch.int32, (3, 3), torch.int32)
    assert desc.device == words.device
    ref_b, ref_desc = ops.cutlass_encode_and_reorder_int4b_grouped(words)
    assert torch.equal(b, ref_b) and torch.equal(desc, ref_desc)
    want_b, want_desc = w4a8_moe.encode_and_reorder_grouped(words)  # R7, vLLM's descriptor
    assert torch.equal(b, want_b) and torch.equal(desc, want_desc)


def _w4a8_moe_args(p):
    """The arguments of cutlass_w4a8_moe_mm after out_tensors, prepacked through vllm_ops."""
    b, desc = vllm_ops.cutlass_encode_and_reorder_int4b_grouped(p["words"])
    return (p["A"], b, p["tok"], p["ch"], vllm_ops.cutlass_pack_scale_fp8(p["s"]), p["group_size"],
            p["expert_offsets"], p["problem_sizes"], p["a_strides"], desc, p["c_strides"],
            p["group_scale_strides"])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("schedule", (None,) + V0340_W4A8_MOE_SCHEDULES)
def test_cutlass_w4a8_moe_mm_is_the_op(device, schedule):
    ops = _w4()
    from lowbit import w4a8_mm
    from lowbit.testing import w4a8_moe

    _skip_unless_runs(w4a8_mm, "cutlass_w4a8_moe_mm", device)
    p = _w4a8_moe_problem(device)
    args = _w4a8_moe_args(p)
    out = torch.full((p["M"], p["N"]), 7.0, dtype=torch.bfloat16, device=device)
    assert vllm_ops.cutlass_w4a8_moe_mm(out, *args, maybe_schedule=schedule) is None
    ref = torch.full_like(out, 7.0)
    ops.cutlass_w4a8_moe_mm(ref, *args, schedule)
    assert torch.equal(out, ref)
    assert (out[-2:] == 7.0).all(), "rows of no expert are left as they were"
    want = w4a8_moe.moe_mm_ref(torch.full_like(out, 7.0), p["A"], p["q"], p["s"], p["ch"], p["tok"],
                               p["expert_offsets"], p["problem_sizes"])
    assert w4ref.rel_err(out, want) < 1e-2


def test_cutlass_w4a8_moe_mm_needs_n_multiple_of_128():
    p = _w4a8_moe_problem("cpu", n=144)
    out = torch.zeros(p["M"], p["N"], dtype=torch.bfloat16)
    with raises_arg("b_tensors", "128"):
        vllm_ops.cutlass_w4a8_moe_mm(out, *_w4a8_moe_args(p))


# ----------------------------------------------------------------- MXFP4 MoE
def _mx():
    """The MXFP4 family module, or skip."""
    return pytest.importorskip("lowbit.mxfp4")


def _mx_experts_problem(device, counts=(3, 0, 5), k=64, gated=False):
    _mx()
    m = sum(counts)
    x = torch.randn(m, 2 * k if gated else k, dtype=torch.bfloat16, device=device)
    off = torch.tensor([0, *counts], device=device).cumsum(0).to(torch.int32)
    sf_off = torch.tensor([0, *(ref.round_up(c, 128) for c in counts)], device=device).cumsum(0)
    ids = torch.tensor([e for e, c in enumerate(counts) for _ in range(c)], dtype=torch.int32,
                       device=device)
    return x, off, sf_off.to(torch.int32), ids


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("gated", [False, True], ids=["plain", "silu"])
@pytest.mark.parametrize("with_ids", [False, True], ids=["offsets", "ids"])
def test_mxfp4_experts_quant_allocates_max_tokens_times_topk(monkeypatch, device, gated, with_ids):
    mx = _mx()
    fn = "silu_and_mul_mxfp4_experts_quant" if gated else "mxfp4_experts_quant"
    _skip_unless_runs(mx, fn, device)
    monkeypatch.setenv("VLLM_MAX_TOKENS_PER_EXPERT_FP4_MOE", "128")
    topk, k = 3, 96  # K/32 = 3 scale columns, padded to 4
    x, off, sf_off, ids = _mx_experts_problem(device, k=k, gated=gated)
    ids = ids if with_ids else None
    packed, sf = getattr(vllm_ops, fn)(x, off, sf_off, 3, topk, ids)
    assert (packed.shape, packed.dtype) == ((x.shape[0], k // 2), torch.uint8)
    assert (tuple(sf.shape), sf.dtype) == ((128 * topk, 4), torch.uint8)
    rows = int(sf_off[-1])  # the experts' regions; vLLM leaves the rest unwritten
    ref_packed = torch.empty_like(packed)
    ref_sf = torch.empty(rows, 1, dtype=torch.int32, device=device)
    getattr(torch.ops.lowbit_mxfp4, fn)(ref_packed, ref_sf, x, off, sf_off, 3, ids)
    assert torch.equal(packed, ref_packed)
    assert torch.equal(sf[:rows], _bytes(ref_sf))
    if not gated:  # and the SPEC-MOE R4 oracle
        from lowbit.testing.mxfp4 import quantize_mxfp4_experts

        want_packed, want_sf, _, written = quantize_mxfp4_experts(x, off, sf_off)
        assert torch.equal(packed.cpu(), want_packed)
        assert torch.equal(sf[:rows].cpu()[written], want_sf[written])


def test_mxfp4_experts_quant_default_buffer_rows():
    _mx()
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():  # 163840 * topk rows: shapes only, no memory
        x, off, sf_off, _ = _mx_experts_problem("cpu", k=2880)
        _, sf = vllm_ops.mxfp4_experts_quant(x, off, sf_off, 3, 4)
        assert tuple(sf.shape) == (163840 * 4, 92)  # round_up(2880/32 = 90, 4)


def test_mxfp4_experts_quant_bad_arguments(monkeypatch):
    _mx()
    monkeypatch.setenv("VLLM_MAX_TOKENS_PER_EXPERT_FP4_MOE", "2")
    x, off, sf_off, _ = _mx_experts_problem("cpu")
    with raises_arg("input_tensor", "VLLM_MAX_TOKENS_PER_EXPERT_FP4_MOE"):
        vllm_ops.mxfp4_experts_quant(x, off, sf_off, 3, 2)
    with raises_arg("input_tensor", "2-D"):
        vllm_ops.mxfp4_experts_quant(x[None], off, sf_off, 3, 8)
    with raises_arg("input_tensor", "even"):
        vllm_ops.silu_and_mul_mxfp4_experts_quant(x[:, :63], off, sf_off, 3, 8)


@pytest.mark.parametrize("capability", [75, 80, 89, 90, 100, 103, 110, 120, 121])
def test_mxfp4_supported_is_the_family_answer(capability):
    mx = _mx()
    got = vllm_ops.mxfp4_experts_quant_supported(capability)
    assert type(got) is bool and got == mx.mxfp4_experts_quant_supported(capability)


def test_mxfp4_supported_is_false_without_the_family(monkeypatch):
    """vLLM answers False on builds without the op; so does lowbit without lowbit-mxfp4."""
    monkeypatch.setitem(sys.modules, "lowbit.mxfp4", None)
    assert vllm_ops.mxfp4_experts_quant_supported(100) is False


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("out_dtype", [torch.bfloat16, torch.float16])
def test_cutlass_mxfp4_moe_mm_is_the_op(device, out_dtype):
    mx = _mx()
    from lowbit.testing.mxfp4 import group_mm_ref, random_group_problem

    _skip_unless_runs(mx, "cutlass_mxfp4_group_mm", device)
    g = torch.Generator().manual_seed(5)
    p = random_group_problem([3, 0, 5], 64, 128, device, generator=g)
    args = (p["a"], p["b"], p["a_blockscale"], p["b_blockscales"], p["problem_sizes"],
            p["expert_offsets"], p["sf_offsets"])
    out = torch.full((8, 64), 7.0, dtype=out_dtype, device=device)
    assert vllm_ops.cutlass_mxfp4_moe_mm(out, *args) is None
    want = torch.full_like(out, 7.0)
    torch.ops.lowbit_mxfp4.cutlass_mxfp4_group_mm(want, *args)
    assert torch.equal(out, want)
    want = group_mm_ref(*args, out_dtype)  # the SPEC-MOE R5 oracle
    assert w4ref.rel_err(out.cpu(), want) < 1e-2


# ----------------------------------------------------------------- per-token FP8
def _moe():
    """The MoE ops (torch.ops.lowbit_moe), or skip."""
    pytest.importorskip("lowbit.moe")
    return torch.ops.lowbit_moe


def _fp8_op(x, rows, scale_ub=None):
    """The op called directly: (fp8 [rows, N], scales [rows, 1])."""
    out = torch.empty(rows, x.shape[1], dtype=torch.float8_e4m3fn, device=x.device)
    scale = torch.empty(rows, 1, dtype=torch.float32, device=x.device)
    _moe().dynamic_per_token_scaled_fp8_quant(out, x.contiguous(), scale, scale_ub)
    return out, scale


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("with_ub", [False, True], ids=["no_ub", "scale_ub"])
def test_scaled_fp8_quant_per_token(device, dtype, with_ub):
    from lowbit.testing.moe import per_token_fp8_ref

    _moe()
    x = (torch.randn(7, 96, device=device) * 3).to(dtype)
    ub = torch.tensor([2.0], device=device) if with_ub else None
    q, s = vllm_ops.scaled_fp8_quant(x, scale_ub=ub, use_per_token_if_dynamic=True)
    assert (q.shape, q.dtype, s.shape, s.dtype) == ((7, 96), torch.float8_e4m3fn, (7, 1), torch.float32)
    want_q, want_s = _fp8_op(x, 7, ub)
    assert torch.equal(w4ref.fp8_bytes(q), w4ref.fp8_bytes(want_q)) and torch.equal(s, want_s)
    ref_q, ref_s = per_token_fp8_ref(x.cpu(), ub.cpu() if with_ub else None)
    assert torch.equal(w4ref.fp8_bytes(q.cpu()), w4ref.fp8_bytes(ref_q)) and torch.equal(s.cpu(), ref_s)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("padding, rows", [(8, 8), (3, 5), (0, 5)])
def test_scaled_fp8_quant_num_token_padding(device, padding, rows):
    _moe()
    x = torch.randn(5, 64, dtype=torch.bfloat16, device=device)
    q, s = vllm_ops.scaled_fp8_quant(x, num_token_padding=padding, use_per_token_if_dynamic=True)
    assert q.shape == (rows, 64) and s.shape == (rows, 1)  # vLLM: max(padding, M) rows
    want_q, want_s = _fp8_op(x, 5)
    assert torch.equal(w4ref.fp8_bytes(q[:5]), w4ref.fp8_bytes(want_q)) and torch.equal(s[:5], want_s)


@pytest.mark.parametrize("device", DEVICES)
def test_scaled_fp8_quant_into_output(device):
    _moe()
    x = torch.randn(6, 64, dtype=torch.bfloat16, device=device)
    output = torch.empty(6, 64, dtype=torch.float8_e4m3fn, device=device)
    q, s = vllm_ops.scaled_fp8_quant(x, use_per_token_if_dynamic=True, output=output)
    assert q is output and s.shape == (6, 1)
    want_q, want_s = _fp8_op(x, 6)
    assert torch.equal(w4ref.fp8_bytes(output), w4ref.fp8_bytes(want_q)) and torch.equal(s, want_s)


def test_scaled_fp8_quant_row_strided_input():
    _moe()
    wide = torch.randn(4, 128, dtype=torch.bfloat16)
    q, s = vllm_ops.scaled_fp8_quant(wide[:, 32:96], use_per_token_if_dynamic=True)
    want_q, want_s = _fp8_op(wide[:, 32:96].contiguous(), 4)
    assert torch.equal(w4ref.fp8_bytes(q), w4ref.fp8_bytes(want_q)) and torch.equal(s, want_s)


def test_scaled_fp8_quant_unsupported_modes_and_bad_arguments():
    _moe()
    x = torch.randn(4, 32, dtype=torch.bfloat16)
    with pytest.raises(NotImplementedError, match="static quantization"):
        vllm_ops.scaled_fp8_quant(x, torch.ones(1))
    with pytest.raises(NotImplementedError, match=r"group_shape=\(1, -1\)"):
        vllm_ops.scaled_fp8_quant(x, torch.ones(4), group_shape=(1, -1))
    with pytest.raises(NotImplementedError, match="dynamic per-tensor"):
        vllm_ops.scaled_fp8_quant(x)
    with raises_arg("input", "2-D"):
        vllm_ops.scaled_fp8_quant(x[None], use_per_token_if_dynamic=True)
    out = torch.empty(4, 32, dtype=torch.float8_e4m3fn)
    with raises_arg("num_token_padding", "None"):
        vllm_ops.scaled_fp8_quant(x, num_token_padding=8, use_per_token_if_dynamic=True, output=out)
    with raises_arg("output", "float8_e4m3fn"):
        vllm_ops.scaled_fp8_quant(x, use_per_token_if_dynamic=True, output=out.view(torch.uint8))
