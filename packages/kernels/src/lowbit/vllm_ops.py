"""vLLM v0.34.0's ``_custom_ops`` Python API, implemented with lowbit's kernels.

``from lowbit import vllm_ops as ops`` replaces ``from vllm import _custom_ops as ops``
for the NVFP4, MXFP4, W4A8, per-token FP8 and MoE routing calls below: every
function here has vLLM v0.34.0's name, parameters (names, order, kinds,
defaults), output allocation and return dtypes and shapes. Compatibility notes,
per op, are in docs/VLLM-COMPAT.md; the op contracts in docs/SPEC.md §2 and
docs/SPEC-MOE.md §5.

Kernel families are imported on first use, so this module imports with only some
of them installed; a function whose family is missing raises ImportError naming
the distribution to install.

Environment variables that change a result in vLLM are honoured the same way,
read at each call:

* ``VLLM_BATCH_INVARIANT`` (non-zero integer = on): ``cutlass_scaled_fp4_mm``
  uses the batch-invariant kernel (every row's bits independent of M).
* ``VLLM_MAX_TOKENS_PER_EXPERT_FP4_MOE`` (default 163840): rows per top-k slot
  of the scale buffer the four experts-quant functions (NVFP4 and MXFP4) allocate.

Bad arguments raise RuntimeError naming the argument (vLLM's wrappers assert).
"""

from __future__ import annotations

import importlib
import os
import sys

import torch

__all__ = [
    "create_fp4_scale_tensor",
    "create_fp4_output_tensors",
    "scaled_fp4_quant",
    "scaled_fp4_experts_quant",
    "silu_and_mul_scaled_fp4_experts_quant",
    "silu_and_mul_nvfp4_quant",
    "cutlass_scaled_mm_supports_fp4",
    "cutlass_scaled_fp4_mm",
    "cutlass_w4a8_mm",
    "cutlass_pack_scale_fp8",
    "cutlass_encode_and_reorder_int4b",
    "cutlass_w4a8_moe_mm",
    "cutlass_encode_and_reorder_int4b_grouped",
    "cutlass_fp4_moe_mm",
    "mxfp4_experts_quant_supported",
    "mxfp4_experts_quant",
    "silu_and_mul_mxfp4_experts_quant",
    "cutlass_mxfp4_moe_mm",
    "scaled_fp8_quant",
    "get_cutlass_moe_mm_data",
    "get_cutlass_moe_mm_problem_sizes_from_expert_offsets",
    "shuffle_rows",
]

VLLM_VERSION = "0.34.0"
"""The vLLM release whose Python API and op schemas this module reproduces."""

BLOCK = 16  # NVFP4 elements per e4m3 block scale
MX_BLOCK = 32  # MXFP4 elements per E8M0 block scale
_FP8 = torch.float8_e4m3fn  # vLLM's current_platform.fp8_dtype() on CUDA
_DEFAULT_MAX_TOKENS_PER_EXPERT = 163840  # vLLM's default for the env var below

# family module -> the distribution that ships it
_DISTRIBUTIONS = {
    "nvfp4_quant": "lowbit-nvfp4-quant",
    "nvfp4_mm": "lowbit-nvfp4-mm",
    "w4a8_mm": "lowbit-w4a8-mm",
    "moe": "lowbit-moe",
    "mxfp4": "lowbit-mxfp4",
}


# ----------------------------------------------------------------- plumbing
@torch.compiler.assume_constant_result
def _load_family(name: str, caller: str) -> bool:
    """Import ``lowbit.<name>`` (loads its ops and fakes). Under torch.compile this
    runs once at trace time, outside the graph, so the functions below trace with
    fullgraph=True even when the first call is the compiled one."""
    module = f"lowbit.{name}"
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name not in (module, "lowbit"):
            raise  # something the family itself needs is missing: not ours to rename
        dist = _DISTRIBUTIONS[name]
        raise ImportError(
            f"lowbit.vllm_ops.{caller}: needs the kernel family {module}, which is not "
            f"installed; install the distribution '{dist}' (pip install {dist})",
            name=module,
        ) from e
    return True


def _family(name: str, caller: str):
    """The family's Python module."""
    _load_family(name, caller)
    return sys.modules[f"lowbit.{name}"]


def _ops(name: str, caller: str):
    """The family's op namespace ``torch.ops.lowbit_<name>``."""
    _load_family(name, caller)
    return getattr(torch.ops, f"lowbit_{name}")


def _fail(fn: str, arg: str, expected: str, got) -> None:
    raise RuntimeError(f"{fn}: argument '{arg}': expected {expected}, got {got}")


def _round_up(a: int, b: int) -> int:
    return (a + b - 1) // b * b


def _env_int(name: str, default: int) -> int:
    """An integer environment variable read like C's atoi (optional sign and
    leading digits after blanks, anything else 0), as vLLM's C++ reads
    VLLM_BATCH_INVARIANT."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    text = raw.lstrip(" \t\n\v\f\r")
    sign = -1 if text.startswith("-") else 1
    if text.startswith(("+", "-")):
        text = text[1:]
    digits = len(text) - len(text.lstrip("0123456789"))
    return sign * int(text[:digits]) if digits else 0


def _batch_invariant() -> bool:
    return _env_int("VLLM_BATCH_INVARIANT", 0) != 0


def _max_tokens_per_expert() -> int:
    # parsed by Python's int(), as vLLM's envs module does (a malformed value raises)
    return int(os.environ.get("VLLM_MAX_TOKENS_PER_EXPERT_FP4_MOE",
                              str(_DEFAULT_MAX_TOKENS_PER_EXPERT)))


# ----------------------------------------------------------------- NVFP4 allocation helpers
def create_fp4_scale_tensor(
    m: int,
    n: int,
    device: torch.device,
    is_sf_swizzled_layout: bool,
) -> torch.Tensor:
    """The scale buffer ``scaled_fp4_quant`` writes for an ``[m, n]`` input, in
    the op's dtypes (SPEC §1.3): swizzled int32 ``[round_up(m, 128),
    round_up(n/16, 4)/4]`` (four e4m3 bytes per word), or linear uint8
    ``[m, n/16]``. Uninitialised: the quant ops write every byte of it."""
    if is_sf_swizzled_layout:
        rows, cols = _round_up(m, 128), _round_up(n // BLOCK, 4)
        return torch.empty((rows, cols // 4), device=device, dtype=torch.int32)
    return torch.empty((m, n // BLOCK), device=device, dtype=torch.uint8)


def create_fp4_output_tensors(
    m: int,
    n: int,
    device: torch.device,
    is_sf_swizzled_layout: bool,
    padded_n: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(packed uint8 [m, pn/2], scale buffer for pn)`` with pn = padded_n or n:
    the two outputs of ``scaled_fp4_quant.out`` (padded width pn >= n: codes and
    scales past n are written as zero by the op)."""
    width = n if padded_n is None else padded_n
    output = torch.empty((m, width // 2), device=device, dtype=torch.uint8)
    return output, create_fp4_scale_tensor(m, width, device, is_sf_swizzled_layout)


# ----------------------------------------------------------------- NVFP4 quantization
def _check_quant_args(fn: str, input: torch.Tensor, n: int, padded_n: int | None) -> None:
    if n % BLOCK != 0:
        _fail(fn, "input", "a last dimension that is a multiple of 16",
              f"shape {tuple(input.shape)}")
    if input.dtype not in (torch.float16, torch.bfloat16):
        _fail(fn, "input", "dtype torch.float16 or torch.bfloat16", input.dtype)
    if padded_n is not None and (padded_n < n or padded_n % BLOCK != 0):
        _fail(fn, "padded_n", f"a multiple of 16 that is >= n = {n}", padded_n)


def scaled_fp4_quant(
    input: torch.Tensor,
    input_global_scale: torch.Tensor,
    is_sf_swizzled_layout: bool = True,
    backend: str = "none",
    padded_n: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantize the last dimension of ``input`` (fp16/bf16 ``[..., n]``, n % 16 == 0)
    to NVFP4 with the fp32 one-element ``input_global_scale``.

    Returns ``(packed uint8 [m, pn/2], scales float8_e4m3fn)`` with m the product
    of the leading dimensions and pn = ``padded_n`` or n (``padded_n``: a multiple
    of 16, >= n; columns past n are zero codes with zero scales). Scales are the
    128x4-swizzled ``[round_up(m, 128), round_up(pn/16, 4)]`` or, with
    ``is_sf_swizzled_layout=False``, linear ``[m, pn/16]``.

    ``backend`` containing "trtllm" with m <= 32 selects FlashInfer's 8x4 scale
    layout in vLLM; lowbit does not implement that layout and raises
    NotImplementedError (ValueError first if ``padded_n`` != n, as vLLM).
    """
    fn = "scaled_fp4_quant"
    if input.dim() < 1:
        _fail(fn, "input", "a tensor with at least 1 dimension", "a 0-D tensor")
    n = input.shape[-1]
    input = input.reshape(1 if input.dim() == 1 else -1, n)
    m = input.shape[0]
    _check_quant_args(fn, input, n, padded_n)
    if "trtllm" in backend and m <= 32:
        if padded_n is not None and padded_n != n:
            raise ValueError("padded_n is not supported with TRTLLM 8x4 scale layout.")
        raise NotImplementedError(
            f"{fn}: backend={backend!r} with m = {m} <= 32 selects FlashInfer's 8x4 scale-factor "
            "layout, which lowbit does not implement; use backend='none' (128x4 layout)")
    ops = _ops("nvfp4_quant", fn)
    output, output_scale = create_fp4_output_tensors(
        m, n, input.device, is_sf_swizzled_layout, padded_n=padded_n)
    ops.scaled_fp4_quant.out(input, input_global_scale, is_sf_swizzled_layout,
                             output=output, output_scale=output_scale)
    return output, output_scale.view(torch.float8_e4m3fn)


def _experts_buffers(fn: str, input_tensor: torch.Tensor, topk: int, gated: bool, block: int):
    """vLLM's experts-quant wrappers (NVFP4 and MXFP4) up to the op call: the
    checks they assert and their two outputs, codes uint8 ``[m_topk, k/2]`` and
    the int32 scale buffer ``[VLLM_MAX_TOKENS_PER_EXPERT_FP4_MOE * topk,
    ceil(k / block / 4)]`` (four scale bytes per word), uninitialised."""
    if input_tensor.dim() != 2:
        _fail(fn, "input_tensor", "a 2-D tensor", f"{input_tensor.dim()}-D")
    m_topk, width = input_tensor.shape
    if gated and width % 2 != 0:
        _fail(fn, "input_tensor", "an even last dimension (gate || up)", width)
    k = width // 2 if gated else width
    max_tokens = _max_tokens_per_expert()
    if m_topk > max_tokens * topk:
        _fail(fn, "input_tensor",
              f"at most VLLM_MAX_TOKENS_PER_EXPERT_FP4_MOE * topk = {max_tokens} * {topk} rows",
              m_topk)
    output = torch.empty(m_topk, k // 2, device=input_tensor.device, dtype=torch.uint8)
    words = (k // block + 3) // 4
    output_scales = torch.empty(max_tokens * topk, words, device=input_tensor.device,
                                dtype=torch.int32)
    return output, output_scales


def _experts_quant(fn: str, input_tensor, input_global_scale, expert_offsets,
                   blockscale_offsets, topk: int, gated: bool):
    """vLLM's NVFP4 experts-quant wrapper for the op named ``fn`` (same name as the function)."""
    output, output_scales = _experts_buffers(fn, input_tensor, topk, gated, BLOCK)
    getattr(_ops("nvfp4_quant", fn), fn)(output, output_scales, input_tensor, input_global_scale,
                                         expert_offsets, blockscale_offsets)
    return output, output_scales.view(torch.float8_e4m3fn)


def scaled_fp4_experts_quant(
    input_tensor: torch.Tensor,
    input_global_scale: torch.Tensor,
    expert_offsets: torch.Tensor,
    blockscale_offsets: torch.Tensor,
    topk: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """NVFP4 quantization of expert-grouped rows ``input_tensor [m_topk, k]``
    (fp16/bf16; expert e's rows are expert_offsets[e]..expert_offsets[e+1]) with
    per-expert fp32 ``input_global_scale [E]``; ``blockscale_offsets [E+1]``: the
    first scale row of each expert (multiples of 128).

    Returns ``(packed uint8 [m_topk, k/2], scales float8_e4m3fn [R, round_up(k/16, 4)])``
    with R = VLLM_MAX_TOKENS_PER_EXPERT_FP4_MOE * topk, as vLLM allocates
    (scale rows outside the experts' regions are left unwritten).
    """
    return _experts_quant("scaled_fp4_experts_quant", input_tensor, input_global_scale,
                          expert_offsets, blockscale_offsets, topk, gated=False)


def silu_and_mul_scaled_fp4_experts_quant(
    input_tensor: torch.Tensor,
    input_global_scale: torch.Tensor,
    expert_offsets: torch.Tensor,
    blockscale_offsets: torch.Tensor,
    topk: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """As :func:`scaled_fp4_experts_quant` on ``silu(gate) * up`` (rounded to the
    input dtype) of ``input_tensor [m_topk, 2k] = gate || up``; returns packed
    ``[m_topk, k/2]`` and the scales for k."""
    return _experts_quant("silu_and_mul_scaled_fp4_experts_quant", input_tensor,
                          input_global_scale, expert_offsets, blockscale_offsets, topk,
                          gated=True)


def silu_and_mul_nvfp4_quant(
    result: torch.Tensor,
    result_block_scale: torch.Tensor,
    input: torch.Tensor,
    input_global_scale: torch.Tensor,
) -> None:
    """The op ``silu_and_mul_nvfp4_quant`` itself (vLLM v0.34.0 has no Python
    wrapper: its callers call ``torch.ops._C.silu_and_mul_nvfp4_quant`` with these
    arguments). Writes NVFP4 of ``silu(gate) * up`` of ``input [m, 2d]`` into
    ``result`` (uint8 ``[m, pn/2]``, pn >= d) and the swizzled
    ``result_block_scale`` (int32 ``[Mp, Kp/4]`` or a byte view ``[Mp, Kp]``)."""
    ops = _ops("nvfp4_quant", "silu_and_mul_nvfp4_quant")
    ops.silu_and_mul_nvfp4_quant(result, result_block_scale, input, input_global_scale)


# ----------------------------------------------------------------- NVFP4 GEMM
def cutlass_scaled_mm_supports_fp4(cuda_device_capability: int) -> bool:
    """True where lowbit has an NVFP4 GEMM kernel for that compute capability
    (e.g. 90, 100, 120) in this build (vLLM: only 100-129)."""
    ops = _ops("nvfp4_mm", "cutlass_scaled_mm_supports_fp4")
    return bool(ops.cutlass_scaled_mm_supports_fp4(cuda_device_capability))


def cutlass_scaled_fp4_mm(
    a: torch.Tensor,
    b: torch.Tensor,
    block_scale_a: torch.Tensor,
    block_scale_b: torch.Tensor,
    alpha: torch.Tensor,
    out_dtype: torch.dtype,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """``out_dtype(alpha * A @ B^T + bias)`` as a new ``[M, N]`` tensor.

    a: uint8 ``[M, K/2]``; b: uint8 ``[N, K/2]``; block scales float8_e4m3fn
    swizzled ``[round_up(rows, 128), round_up(K/16, 4)]``; alpha fp32 one element;
    bias: optional ``[N]`` in out_dtype. With VLLM_BATCH_INVARIANT set the
    batch-invariant kernel is used (each row's bits independent of M).
    """
    fn = "cutlass_scaled_fp4_mm"
    if a.dim() != 2 or b.dim() != 2:
        _fail(fn, "a, b", "2-D tensors", f"shapes {tuple(a.shape)} and {tuple(b.shape)}")
    if _batch_invariant():
        mm = _family("nvfp4_mm", fn)
        return mm.scaled_fp4_mm(a, b, block_scale_a, block_scale_b, alpha, out_dtype,
                                bias=bias, batch_invariant=True)
    ops = _ops("nvfp4_mm", fn)
    out = torch.empty((a.shape[0], b.shape[0]), dtype=out_dtype, device=a.device)
    ops.cutlass_scaled_fp4_mm(out, a, b, block_scale_a, block_scale_b, alpha, bias)
    return out


# ----------------------------------------------------------------- W4A8
def cutlass_w4a8_mm(
    a: torch.Tensor,
    b_q: torch.Tensor,
    b_group_scales: torch.Tensor,
    b_group_size: int,
    b_channel_scales: torch.Tensor,
    a_token_scales: torch.Tensor,
    out_type: torch.dtype | None = None,
    maybe_schedule: str | None = None,
) -> torch.Tensor:
    """``out[m, n] = ch[n] * tok[m] * sum_k a[m, k] * w[n, k]`` (int4 weights x fp8
    activations). b_q: from :func:`cutlass_encode_and_reorder_int4b`;
    b_group_scales: from :func:`cutlass_pack_scale_fp8`. out_type bf16 (None) or
    fp16, honoured (vLLM v0.34.0 always returns bf16). maybe_schedule: one of
    vLLM's schedule names, None = lowbit's heuristic."""
    ops = _ops("w4a8_mm", "cutlass_w4a8_mm")
    return ops.cutlass_w4a8_mm(a, b_q, b_group_scales, b_group_size, b_channel_scales,
                               a_token_scales, out_type, maybe_schedule)


def cutlass_pack_scale_fp8(scales: torch.Tensor) -> torch.Tensor:
    """fp8 group scales -> the packed lookup tables ``cutlass_w4a8_mm`` reads
    (fp8, numel * 8 elements)."""
    return _ops("w4a8_mm", "cutlass_pack_scale_fp8").cutlass_pack_scale_fp8(scales)


def cutlass_encode_and_reorder_int4b(b: torch.Tensor) -> torch.Tensor:
    """int32 ``[K/8, N]`` int4 weights -> the encoded, reordered copy
    ``cutlass_w4a8_mm`` reads (same shape and strides)."""
    ops = _ops("w4a8_mm", "cutlass_encode_and_reorder_int4b")
    return ops.cutlass_encode_and_reorder_int4b(b)


def cutlass_w4a8_moe_mm(
    out_tensors: torch.Tensor,
    a_tensors: torch.Tensor,
    b_tensors: torch.Tensor,
    a_scales: torch.Tensor,
    b_scales: torch.Tensor,
    b_group_scales: torch.Tensor,
    b_group_size: int,
    expert_offsets: torch.Tensor,
    problem_sizes: torch.Tensor,
    a_strides: torch.Tensor,
    b_strides: torch.Tensor,
    c_strides: torch.Tensor,
    group_scale_strides: torch.Tensor,
    maybe_schedule: str | None = None,
) -> None:
    """Grouped W4A8 GEMM of an MoE layer (docs/SPEC-MOE.md §5.6): for expert e,
    rows ``expert_offsets[e] ..+ m_e`` of ``out_tensors`` (bf16 ``[M, N]``) =
    ``b_scales[e] * a_scales[row] * a_tensors[rows] @ w_e^T``. b_tensors and
    b_strides: :func:`cutlass_encode_and_reorder_int4b_grouped`; b_group_scales:
    :func:`cutlass_pack_scale_fp8` of fp8 ``[E, K/g, N]``; problem_sizes int32
    ``[E, 3]`` rows (N, m_e, K). lowbit needs N % 128 == 0 and K % 128 == 0;
    the stride tensors are checked for dtype and shape, their contents are
    implied by the shapes; an expert whose device metadata breaks the contract
    gets NaN rows. maybe_schedule: one of vLLM's names, None = lowbit's
    heuristic. Writes in place; returns None as vLLM."""
    _ops("w4a8_mm", "cutlass_w4a8_moe_mm").cutlass_w4a8_moe_mm(
        out_tensors, a_tensors, b_tensors, a_scales, b_scales, b_group_scales, b_group_size,
        expert_offsets, problem_sizes, a_strides, b_strides, c_strides, group_scale_strides,
        maybe_schedule)


def cutlass_encode_and_reorder_int4b_grouped(
    b_tensors: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """int32 ``[E, N, K/8]`` int4 expert weights -> ``(encoded + reordered copy
    [E, N, K/8], layout descriptor int32 [E, 3])``, vLLM's two outputs: the
    descriptor rows (N/16, K/32, 32*N) are the bytes vLLM writes, the
    ``b_strides`` argument of :func:`cutlass_w4a8_moe_mm`. On b_tensors'
    device and current stream, without a host synchronisation."""
    ops = _ops("w4a8_mm", "cutlass_encode_and_reorder_int4b_grouped")
    return ops.cutlass_encode_and_reorder_int4b_grouped(b_tensors)


# ----------------------------------------------------------------- NVFP4 MoE
def cutlass_fp4_moe_mm(
    out_tensors: torch.Tensor,
    a_tensors: torch.Tensor,
    b_tensors: torch.Tensor,
    a_scales: torch.Tensor,
    b_scales: torch.Tensor,
    alphas: torch.Tensor,
    problem_sizes: torch.Tensor,
    expert_offsets: torch.Tensor,
    sf_offsets: torch.Tensor,
):
    """NVFP4 grouped GEMM (op ``cutlass_fp4_group_mm``, docs/SPEC-MOE.md §5.2): writes
    ``out_tensors`` expert by expert; returns None as vLLM's wrapper does."""
    _ops("nvfp4_mm", "cutlass_fp4_moe_mm").cutlass_fp4_group_mm(
        out_tensors, a_tensors, b_tensors, a_scales, b_scales, alphas, problem_sizes,
        expert_offsets, sf_offsets)


# ----------------------------------------------------------------- MXFP4 MoE
def mxfp4_experts_quant_supported(cuda_device_capability: int) -> bool:
    """True where lowbit-mxfp4's build has the MXFP4 experts-quant kernels for
    that compute capability (90, 100 and 120 families; vLLM: 100-119 only).
    False when lowbit-mxfp4 is not installed, as vLLM answers False on builds
    without the op."""
    try:
        ops = _ops("mxfp4", "mxfp4_experts_quant_supported")
    except ImportError as e:
        if e.name != "lowbit.mxfp4":
            raise
        return False
    return bool(ops.mxfp4_experts_quant_supported(cuda_device_capability))


def _mx_experts_quant(fn: str, input_tensor, expert_offsets, blockscale_offsets, n_experts: int,
                      topk: int, sorted_expert_ids, gated: bool):
    """vLLM's MXFP4 experts-quant wrapper for the op named ``fn`` (same name as the function)."""
    output, output_scales = _experts_buffers(fn, input_tensor, topk, gated, MX_BLOCK)
    getattr(_ops("mxfp4", fn), fn)(output, output_scales, input_tensor, expert_offsets,
                                   blockscale_offsets, n_experts, sorted_expert_ids)
    return output, output_scales.view(torch.uint8)


def mxfp4_experts_quant(
    input_tensor: torch.Tensor,
    expert_offsets: torch.Tensor,
    blockscale_offsets: torch.Tensor,
    n_experts: int,
    topk: int,
    sorted_expert_ids: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """MXFP4 quantization of expert-grouped rows (docs/SPEC-MOE.md §5.4):
    ``input_tensor`` fp16/bf16 ``[m_topk, k]`` (k % 32 == 0), expert e's rows
    expert_offsets[e] .. expert_offsets[e+1]; ``blockscale_offsets [E+1]``: the
    first scale row of each expert (multiples of 128); ``sorted_expert_ids``:
    optional expert of each row (a hint: lowbit checks it and takes the result
    from the offsets).

    Returns ``(packed e2m1 uint8 [m_topk, k/2], E8M0 scales uint8 [R, round_up(k/32, 4)])``
    with R = VLLM_MAX_TOKENS_PER_EXPERT_FP4_MOE * topk, as vLLM allocates;
    each expert's region 128x4-swizzled (its padding written as zero; rows
    outside every region are left unwritten).
    """
    return _mx_experts_quant("mxfp4_experts_quant", input_tensor, expert_offsets,
                             blockscale_offsets, n_experts, topk, sorted_expert_ids, gated=False)


def silu_and_mul_mxfp4_experts_quant(
    input_tensor: torch.Tensor,
    expert_offsets: torch.Tensor,
    blockscale_offsets: torch.Tensor,
    n_experts: int,
    topk: int,
    sorted_expert_ids: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """As :func:`mxfp4_experts_quant` on ``silu(gate) * up`` (fp32, rounded to
    the input dtype) of ``input_tensor [m_topk, 2k] = gate || up``; returns
    packed ``[m_topk, k/2]`` and the scales for k (docs/SPEC-MOE.md §5.5)."""
    return _mx_experts_quant("silu_and_mul_mxfp4_experts_quant", input_tensor, expert_offsets,
                             blockscale_offsets, n_experts, topk, sorted_expert_ids, gated=True)


def cutlass_mxfp4_moe_mm(
    out_tensors: torch.Tensor,
    a_tensors: torch.Tensor,
    b_tensors: torch.Tensor,
    a_scales: torch.Tensor,
    b_scales: torch.Tensor,
    problem_sizes: torch.Tensor,
    expert_offsets: torch.Tensor,
    sf_offsets: torch.Tensor,
):
    """MXFP4 grouped GEMM (op ``cutlass_mxfp4_group_mm``, docs/SPEC-MOE.md §5.3):
    writes ``out_tensors`` expert by expert (no alpha); returns None as vLLM's
    wrapper does."""
    _ops("mxfp4", "cutlass_mxfp4_moe_mm").cutlass_mxfp4_group_mm(
        out_tensors, a_tensors, b_tensors, a_scales, b_scales, problem_sizes, expert_offsets,
        sf_offsets)


# ----------------------------------------------------------------- FP8 (per token)
def _fp8_unsupported(scale, use_per_token_if_dynamic: bool, group_shape) -> str | None:
    """Why lowbit cannot run this scaled_fp8_quant call, or None: lowbit has the
    dynamic per-token kernel only (the one vLLM's W4A8 MoE calls)."""
    have = "lowbit implements only dynamic per-token quantization (scale=None, " \
           "use_per_token_if_dynamic=True)"
    if scale is not None:
        shape = tuple(scale.shape)
        return (f"scaled_fp8_quant: static quantization (a 'scale' of shape {shape} given, "
                f"group_shape={group_shape}) is not implemented in lowbit; {have}")
    if not use_per_token_if_dynamic:
        return ("scaled_fp8_quant: dynamic per-tensor quantization (scale=None, "
                f"use_per_token_if_dynamic=False) is not implemented in lowbit; {have}")
    return None


def scaled_fp8_quant(
    input: torch.Tensor,
    scale: torch.Tensor | None = None,
    num_token_padding: int | None = None,
    scale_ub: torch.Tensor | None = None,
    use_per_token_if_dynamic: bool = False,
    output: torch.Tensor | None = None,
    group_shape: tuple[int, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dynamic per-token FP8 quantization of ``input`` (2-D ``[M, N]``, fp32/fp16/
    bf16): ``(float8_e4m3fn [Mp, N], fp32 scales [Mp, 1])`` with per row scale =
    max(min(amax, scale_ub) / 448, 1 / (448 * 512)) (op
    ``dynamic_per_token_scaled_fp8_quant``). Mp = max(num_token_padding, M)
    when num_token_padding is set (rows past M are allocated, not written), else
    M. ``output``: an fp8 tensor to write instead of allocating (then
    num_token_padding must be None), returned as the first result.

    Only ``scale=None, use_per_token_if_dynamic=True`` is implemented (the call
    vLLM's W4A8 MoE makes): static (``scale`` given, any ``group_shape``) and
    dynamic per-tensor quantization raise NotImplementedError. A row-strided
    input is copied to a contiguous one first; ``output`` must be contiguous.
    """
    fn = "scaled_fp8_quant"
    if input.dim() != 2:
        _fail(fn, "input", "a 2-D tensor [M, N]", f"shape {tuple(input.shape)}")
    why = _fp8_unsupported(scale, use_per_token_if_dynamic, group_shape)
    if why:
        raise NotImplementedError(why)
    rows, cols = input.shape
    if num_token_padding:
        rows = max(num_token_padding, rows)
    if output is None:
        output = torch.empty((rows, cols), device=input.device, dtype=_FP8)
    elif num_token_padding is not None:
        _fail(fn, "num_token_padding", "None when 'output' is given (no padding of a given output)",
              num_token_padding)
    elif output.dtype != _FP8:
        _fail(fn, "output", f"dtype {_FP8}", output.dtype)
    ops = _ops("moe", fn)
    token_scale = torch.empty((rows, 1), device=input.device, dtype=torch.float32)
    ops.dynamic_per_token_scaled_fp8_quant(output, input.contiguous(), token_scale, scale_ub)
    return output, token_scale


# ----------------------------------------------------------------- MoE routing
def get_cutlass_moe_mm_data(
    topk_ids: torch.Tensor,
    expert_offsets: torch.Tensor,
    problem_sizes1: torch.Tensor,
    problem_sizes2: torch.Tensor,
    input_permutation: torch.Tensor,
    output_permutation: torch.Tensor,
    num_experts: int,
    n: int,
    k: int,
    blockscale_offsets: torch.Tensor | None = None,
    is_gated: bool = True,
    sorted_expert_ids: torch.Tensor | None = None,
):
    """Routing metadata of a CUTLASS MoE layer from ``topk_ids`` (SPEC-MOE §5.9.4;
    lowbit: deterministic positions, on the device, no host sync)."""
    _ops("moe", "get_cutlass_moe_mm_data").get_cutlass_moe_mm_data(
        topk_ids, expert_offsets, problem_sizes1, problem_sizes2, input_permutation,
        output_permutation, num_experts, n, k, blockscale_offsets, is_gated, sorted_expert_ids)


def get_cutlass_moe_mm_problem_sizes_from_expert_offsets(
    expert_first_token_offset: torch.Tensor,
    problem_sizes1: torch.Tensor,
    problem_sizes2: torch.Tensor,
    n: int,
    k: int,
    swap_ab: bool,
):
    """Both GEMMs' problem sizes from expert row offsets ``[E+1]`` (SPEC-MOE §5.9.4)."""
    return _ops("moe", "get_cutlass_moe_mm_problem_sizes_from_expert_offsets") \
        .get_cutlass_moe_mm_problem_sizes_from_expert_offsets(
            expert_first_token_offset, problem_sizes1, problem_sizes2, n, k, swap_ab)


def shuffle_rows(input_tensor: torch.Tensor, dst2src_map: torch.Tensor):
    """``out[d] = input_tensor[dst2src_map[d]]`` as a new ``[map rows, cols]`` tensor
    (zero rows where the map entry is not a row of the input)."""
    out = torch.empty((dst2src_map.shape[0], input_tensor.shape[1]), device=input_tensor.device,
                      dtype=input_tensor.dtype)
    _ops("moe", "shuffle_rows").shuffle_rows(input_tensor, dst2src_map, out)
    return out
