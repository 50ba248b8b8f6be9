"""Schemas of lowbit's vLLM-compatible ops against vLLM v0.34.0's (issue #13 item 8).

The table below was written from vLLM v0.34.0's csrc/torch_bindings.cpp (the
stable-ABI registrations of the `_C` namespace; the W4A8 impls are registered
from csrc/quantization/cutlass_w4a8/, their schemas are in the same file;
`mxfp4_experts_quant_supported` is defined in
csrc/quantization/fp4/mxfp4_experts_quant.cu) and csrc/moe/torch_bindings.cpp
(`_moe_C::shuffle_rows`).
Both sides are parsed by torch and compared argument by argument: name, type,
keyword-only, default and alias annotation, then the returns. The namespace
differs by design (`lowbit_<family>` instead of `_C`); the overload name must
match. Alias sets are compared after renaming them in order of appearance, so
vLLM's `Tensor!` (an anonymous set) equals lowbit's `Tensor(a!)`.
"""

from __future__ import annotations

import importlib

import pytest
import torch

# op (with overload) -> (lowbit family, schema in vLLM v0.34.0)
V0340_SCHEMAS: dict[str, tuple[str, str]] = {
    "scaled_fp4_quant": (
        "nvfp4_quant",
        "scaled_fp4_quant(Tensor input, Tensor input_scale, bool is_sf_swizzled_layout)"
        " -> (Tensor, Tensor)"),
    "scaled_fp4_quant.out": (
        "nvfp4_quant",
        "scaled_fp4_quant.out(Tensor input, Tensor input_scale, bool is_sf_swizzled_layout, *,"
        " Tensor(a!) output, Tensor(b!) output_scale) -> ()"),
    "silu_and_mul_nvfp4_quant": (
        "nvfp4_quant",
        "silu_and_mul_nvfp4_quant(Tensor! result, Tensor! result_block_scale, Tensor input,"
        " Tensor input_global_scale) -> ()"),
    "scaled_fp4_experts_quant": (
        "nvfp4_quant",
        "scaled_fp4_experts_quant(Tensor! output, Tensor! output_scale, Tensor input,"
        " Tensor input_global_scale, Tensor input_offset_by_experts,"
        " Tensor output_scale_offset_by_experts) -> ()"),
    "silu_and_mul_scaled_fp4_experts_quant": (
        "nvfp4_quant",
        "silu_and_mul_scaled_fp4_experts_quant(Tensor! output, Tensor! output_scale,"
        " Tensor input, Tensor input_global_scale, Tensor input_offset_by_experts,"
        " Tensor output_scale_offset_by_experts) -> ()"),
    "cutlass_scaled_fp4_mm": (
        "nvfp4_mm",
        "cutlass_scaled_fp4_mm(Tensor! out, Tensor a, Tensor b, Tensor block_scale_a,"
        " Tensor block_scale_b, Tensor alpha, Tensor? bias=None) -> ()"),
    "cutlass_scaled_mm_supports_fp4": (
        "nvfp4_mm",
        "cutlass_scaled_mm_supports_fp4(int cuda_device_capability) -> bool"),
    "cutlass_w4a8_mm": (
        "w4a8_mm",
        "cutlass_w4a8_mm(Tensor A, Tensor B, Tensor group_scales, int group_size,"
        " Tensor channel_scales, Tensor token_scales, ScalarType? out_type,"
        " str? maybe_schedule) -> Tensor"),
    "cutlass_pack_scale_fp8": (
        "w4a8_mm",
        "cutlass_pack_scale_fp8(Tensor scales) -> Tensor"),
    "cutlass_encode_and_reorder_int4b": (
        "w4a8_mm",
        "cutlass_encode_and_reorder_int4b(Tensor B) -> Tensor"),
    "cutlass_w4a8_moe_mm": (
        "w4a8_mm",
        "cutlass_w4a8_moe_mm(Tensor! out_tensors, Tensor a_tensors, Tensor b_tensors,"
        " Tensor a_scales, Tensor b_scales, Tensor b_group_scales, int b_group_size,"
        " Tensor expert_offsets, Tensor problem_sizes, Tensor a_strides, Tensor b_strides,"
        " Tensor c_strides, Tensor group_scale_strides, str? maybe_schedule) -> ()"),
    "cutlass_encode_and_reorder_int4b_grouped": (
        "w4a8_mm",
        "cutlass_encode_and_reorder_int4b_grouped(Tensor b_tensors) -> (Tensor, Tensor)"),
    # vLLM: csrc/torch_bindings.cpp (the two quant ops) and
    # csrc/quantization/fp4/mxfp4_experts_quant.cu (the capability query).
    "mxfp4_experts_quant": (
        "mxfp4",
        "mxfp4_experts_quant(Tensor! output, Tensor! output_scale, Tensor input,"
        " Tensor input_offset_by_experts, Tensor output_scale_offset_by_experts, int n_experts,"
        " Tensor? sorted_expert_ids=None) -> ()"),
    "silu_and_mul_mxfp4_experts_quant": (
        "mxfp4",
        "silu_and_mul_mxfp4_experts_quant(Tensor! output, Tensor! output_scale, Tensor input,"
        " Tensor input_offset_by_experts, Tensor output_scale_offset_by_experts, int n_experts,"
        " Tensor? sorted_expert_ids=None) -> ()"),
    "mxfp4_experts_quant_supported": (
        "mxfp4",
        "mxfp4_experts_quant_supported(int cuda_device_capability) -> bool"),
    "cutlass_mxfp4_group_mm": (
        "mxfp4",
        "cutlass_mxfp4_group_mm(Tensor! out, Tensor a, Tensor b, Tensor a_blockscale,"
        " Tensor b_blockscales, Tensor problem_sizes, Tensor expert_offsets,"
        " Tensor sf_offsets) -> ()"),
    "dynamic_per_token_scaled_fp8_quant": (
        "moe",
        "dynamic_per_token_scaled_fp8_quant(Tensor! result, Tensor input, Tensor! scale,"
        " Tensor? scale_ub) -> ()"),
    "cutlass_fp4_group_mm": (
        "nvfp4_mm",
        "cutlass_fp4_group_mm(Tensor! out, Tensor a, Tensor b, Tensor a_blockscale,"
        " Tensor b_blockscales, Tensor alphas, Tensor problem_sizes, Tensor expert_offsets,"
        " Tensor sf_offsets) -> ()"),
    # One deliberate difference: v0.34.0 declares `Tensor? blockscale_offsets` although
    # the op writes it; lowbit declares the write (`Tensor!?`) so torch.compile's
    # functionalization and opcheck see it (docs/VLLM-COMPAT.md). Callers are unaffected.
    "get_cutlass_moe_mm_data": (
        "moe",
        "get_cutlass_moe_mm_data(Tensor topk_ids, Tensor! expert_offsets,"
        " Tensor! problem_sizes1, Tensor! problem_sizes2, Tensor! input_permutation,"
        " Tensor! output_permutation, int num_experts, int n, int k,"
        " Tensor!? blockscale_offsets, bool is_gated, Tensor!? sorted_expert_ids=None) -> ()"),
    "get_cutlass_moe_mm_problem_sizes_from_expert_offsets": (
        "moe",
        "get_cutlass_moe_mm_problem_sizes_from_expert_offsets(Tensor expert_first_token_offset,"
        " Tensor! problem_sizes1, Tensor! problem_sizes2, int n, int k, bool swap_ab) -> ()"),
    "shuffle_rows": (  # vLLM: _moe_C
        "moe",
        "shuffle_rows(Tensor input_tensor, Tensor dst2src_map, Tensor! output_tensor) -> ()"),
}

# Ops whose lowbit schema is still being brought to the v0.34.0 form by another
# change; the reason says which. Empty when every schema matches.
PENDING: dict[str, str] = {}


def _alias(info, names: dict[str, str]):
    """Alias annotation in canonical form: (sets renamed by first appearance, is_write)."""
    if info is None:
        return None
    sets = []
    for s in sorted(info.before_set):
        names.setdefault(s, "abcdefghijklmnopqrstuvwxyz"[len(names)])
        sets.append(names[s])
    return tuple(sets), bool(info.is_write)


def normalized(schema) -> dict:
    """The parts of a FunctionSchema that must agree (not the namespace)."""
    names: dict[str, str] = {}
    args = [(a.name, str(a.type), a.kwarg_only,
             repr(a.default_value) if a.has_default_value() else "-",
             _alias(a.alias_info, names)) for a in schema.arguments]
    rets = [(str(r.type), _alias(r.alias_info, names)) for r in schema.returns]
    return {"overload": schema.overload_name, "arguments": args, "returns": rets}


def _lowbit_schema(family: str, op: str):
    pytest.importorskip(f"lowbit.{family}")
    importlib.import_module(f"lowbit.{family}")
    name, _, overload = op.partition(".")
    packet = getattr(getattr(torch.ops, f"lowbit_{family}"), name)
    return getattr(packet, overload or "default")._schema


def _cases():
    for op, (family, text) in V0340_SCHEMAS.items():
        marks = [pytest.mark.xfail(reason=PENDING[op], strict=True)] if op in PENDING else []
        yield pytest.param(op, family, text, id=op, marks=marks)


@pytest.mark.parametrize("op, family, text", list(_cases()))
def test_schema_matches_vllm_v0340(op, family, text):
    want = normalized(torch._C.parse_schema(text))
    got = normalized(_lowbit_schema(family, op))
    where = f"lowbit_{family}::{op} vs vLLM v0.34.0's _C::{op}"
    assert got["overload"] == want["overload"], where
    for i, (g, w) in enumerate(zip(got["arguments"], want["arguments"])):
        assert g == w, f"{where}: argument {i} (name, type, kwarg-only, default, alias)"
    assert len(got["arguments"]) == len(want["arguments"]), f"{where}: {got['arguments']}"
    assert got["returns"] == want["returns"], where


def test_alias_normal_form_treats_anonymous_and_named_sets_alike():
    anonymous = torch._C.parse_schema("f(Tensor! x, Tensor! y, Tensor z) -> ()")
    named = torch._C.parse_schema("f(Tensor(a!) x, Tensor(b!) y, Tensor z) -> ()")
    shared = torch._C.parse_schema("f(Tensor(a!) x, Tensor(a!) y, Tensor z) -> ()")
    assert normalized(anonymous) == normalized(named)
    assert normalized(shared) != normalized(named)


def test_normal_form_sees_defaults_and_keyword_only():
    base = torch._C.parse_schema("f(Tensor a, str? s) -> Tensor")
    assert normalized(base) != normalized(torch._C.parse_schema("f(Tensor a, str? s=None) -> Tensor"))
    assert normalized(base) != normalized(torch._C.parse_schema("f(Tensor a, *, str? s) -> Tensor"))
    assert normalized(base) != normalized(torch._C.parse_schema("f(Tensor a, str? t) -> Tensor"))
