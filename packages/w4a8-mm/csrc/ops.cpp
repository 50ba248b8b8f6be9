// lowbit_w4a8_mm: schemas, dispatch by target, registrations (docs/SPEC.md
// §2.3; the grouped ops docs/SPEC-MOE.md §5.6-§5.7, schemas as vLLM v0.34.0).
// validation.cpp checks every argument first; the device guard for CUDA
// tensors is set here, once per op.
#include "w4a8_mm.h"

#include <lowbit/arch.h>

#include <torch/csrc/stable/ops.h>

#include <optional>
#include <string>
#include <tuple>
#include <vector>

using lowbit::ScalarType;
using lowbit::Target;
using lowbit::Tensor;
namespace w4a8 = lowbit::w4a8;

namespace {

Tensor encode_and_reorder_int4b(Tensor B) {
  const auto p = w4a8::validate_encode_and_reorder_int4b(B);
  Tensor out = torch::stable::empty_like(B);  // same shape and strides (dense)
  if (B.numel() == 0) return out;
  const auto* in = B.const_data_ptr<int32_t>();
  auto* o = out.mutable_data_ptr<int32_t>();
  if (lowbit::target_for("cutlass_encode_and_reorder_int4b", "B", B) == Target::CPU) {
    w4a8::encode_and_reorder_int4b_cpu(in, o, p);
    return out;
  }
#if LOWBIT_WITH_CUDA
  lowbit::DeviceGuard guard(B);
  w4a8::encode_and_reorder_int4b_cuda(in, o, p, B.get_device_index(), lowbit::current_stream(B));
#endif
  return out;
}

Tensor pack_scale_fp8(Tensor scales) {
  const auto p = w4a8::validate_pack_scale_fp8(scales);
  Tensor out = lowbit::empty_on(scales, {p.numel * 8}, ScalarType::Float8_e4m3fn);
  if (p.numel == 0) return out;
  const auto* in = static_cast<const uint8_t*>(scales.data_ptr());
  auto* o = static_cast<uint8_t*>(out.data_ptr());
  if (lowbit::target_for("cutlass_pack_scale_fp8", "scales", scales) == Target::CPU) {
    w4a8::pack_scale_fp8_cpu(in, o, p);
    return out;
  }
#if LOWBIT_WITH_CUDA
  lowbit::DeviceGuard guard(scales);
  w4a8::pack_scale_fp8_cuda(in, o, p, scales.get_device_index(), lowbit::current_stream(scales));
#endif
  return out;
}


Tensor w4a8_mm(Tensor A, Tensor B, Tensor group_scales, int64_t group_size,
               Tensor channel_scales, Tensor token_scales,
               std::optional<ScalarType> out_type, std::optional<std::string> maybe_schedule) {
  auto p = w4a8::validate_w4a8_mm(A, B, group_scales, group_size, channel_scales, token_scales,
                                  out_type, maybe_schedule);
  Tensor out = lowbit::empty_on(A, {p.M, p.N}, p.out_bf16 ? ScalarType::BFloat16 : ScalarType::Half);
  if (p.M == 0) return out;
  p.out = out.data_ptr();
  switch (lowbit::target_for("cutlass_w4a8_mm", "A", A)) {
    case Target::CPU:
      w4a8::w4a8_mm_cpu(p);
      break;
#if LOWBIT_BUILT_SM90
    case Target::SM90: {
      lowbit::DeviceGuard guard(A);
      w4a8::w4a8_mm_sm90(p, A);
      break;
    }
#endif
    default:
      lowbit::fail("cutlass_w4a8_mm: argument 'A': expected a CPU tensor or a tensor on an SM90 "
                   "(Hopper) GPU, got " + lowbit::device_str(A) + " (the GEMM is SM90-only)");
  }
  return out;
}

// Both outputs in one pass on b's device and current stream (no host copy, no
// synchronisation: graph-capturable).
std::tuple<Tensor, Tensor> encode_and_reorder_int4b_grouped(Tensor b) {
  const auto p = w4a8::validate_encode_and_reorder_int4b_grouped(b);
  Tensor out = torch::stable::empty_like(b);  // contiguous, as b
  Tensor desc = lowbit::empty_on(b, {p.E, 3}, ScalarType::Int);
  const auto* in = b.const_data_ptr<int32_t>();
  auto* o = out.mutable_data_ptr<int32_t>();
  auto* d = desc.mutable_data_ptr<int32_t>();
  if (lowbit::target_for("cutlass_encode_and_reorder_int4b_grouped", "b_tensors", b) == Target::CPU) {
    w4a8::encode_and_reorder_int4b_grouped_cpu(in, o, d, p);
    return {out, desc};
  }
#if LOWBIT_WITH_CUDA
  lowbit::DeviceGuard guard(b);
  w4a8::encode_and_reorder_int4b_grouped_cuda(in, o, d, p, b.get_device_index(), lowbit::current_stream(b));
#endif
  return {out, desc};
}


void w4a8_moe_mm(Tensor out, Tensor a, Tensor b, Tensor a_scales, Tensor b_scales, Tensor b_group_scales,
                 int64_t b_group_size, Tensor expert_offsets, Tensor problem_sizes, Tensor a_strides,
                 Tensor b_strides, Tensor c_strides, Tensor group_scale_strides,
                 std::optional<std::string> maybe_schedule) {
  auto p = w4a8::validate_w4a8_moe_mm(out, a, b, a_scales, b_scales, b_group_scales, b_group_size,
                                      expert_offsets, problem_sizes, a_strides, b_strides, c_strides,
                                      group_scale_strides, maybe_schedule);
  const Target target = lowbit::target_for("cutlass_w4a8_moe_mm", "a_tensors", a);
  if (p.M == 0 || p.E == 0) return;  // no rows: nothing to write
  switch (target) {
    case Target::CPU:
      w4a8::w4a8_moe_mm_cpu(p);
      return;
#if LOWBIT_BUILT_SM90
    case Target::SM90: {
      lowbit::DeviceGuard guard(a);
      w4a8::w4a8_moe_mm_sm90(p, a);
      return;
    }
#endif
    default:
      lowbit::fail("cutlass_w4a8_moe_mm: argument 'a_tensors': expected a CPU tensor or a tensor on an "
                   "SM90 (Hopper) GPU, got " + lowbit::device_str(a) + " (the GEMM is SM90-only)");
  }
}

std::vector<std::string> moe_schedule_names() { return w4a8::moe_schedule_names(); }

// Every name maybe_schedule accepts, in the order an unknown-name error lists
// them: the Python package reads its SCHEDULES from here.
std::vector<std::string> schedule_names() { return w4a8::schedule_names(); }

}  // namespace

STABLE_TORCH_LIBRARY(lowbit_w4a8_mm, m) {
  m.def("cutlass_w4a8_mm(Tensor A, Tensor B, Tensor group_scales, int group_size, "
        "Tensor channel_scales, Tensor token_scales, ScalarType? out_type, "
        "str? maybe_schedule) -> Tensor");
  m.def("cutlass_pack_scale_fp8(Tensor scales) -> Tensor");
  m.def("cutlass_encode_and_reorder_int4b(Tensor B) -> Tensor");
  m.def("_schedule_names() -> str[]");
  m.def("cutlass_w4a8_moe_mm(Tensor! out_tensors, Tensor a_tensors, Tensor b_tensors, Tensor a_scales, "
        "Tensor b_scales, Tensor b_group_scales, int b_group_size, Tensor expert_offsets, "
        "Tensor problem_sizes, Tensor a_strides, Tensor b_strides, Tensor c_strides, "
        "Tensor group_scale_strides, str? maybe_schedule) -> ()");
  m.def("cutlass_encode_and_reorder_int4b_grouped(Tensor b_tensors) -> (Tensor, Tensor)");
  m.def("_moe_schedule_names() -> str[]");
}

STABLE_TORCH_LIBRARY_IMPL(lowbit_w4a8_mm, CompositeExplicitAutograd, m) {
  m.impl("cutlass_w4a8_mm", TORCH_BOX(&w4a8_mm));
  m.impl("cutlass_pack_scale_fp8", TORCH_BOX(&pack_scale_fp8));
  m.impl("cutlass_encode_and_reorder_int4b", TORCH_BOX(&encode_and_reorder_int4b));
  m.impl("cutlass_w4a8_moe_mm", TORCH_BOX(&w4a8_moe_mm));
  m.impl("cutlass_encode_and_reorder_int4b_grouped", TORCH_BOX(&encode_and_reorder_int4b_grouped));
}

// No tensor arguments: nothing to dispatch on.
STABLE_TORCH_LIBRARY_IMPL(lowbit_w4a8_mm, CompositeImplicitAutograd, m) {
  m.impl("_schedule_names", TORCH_BOX(&schedule_names));
  m.impl("_moe_schedule_names", TORCH_BOX(&moe_schedule_names));
}
