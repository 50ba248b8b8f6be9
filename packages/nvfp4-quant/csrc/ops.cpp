// lowbit_nvfp4_quant: op schemas (docs/SPEC.md §2.1), thin op bodies
// (validate, then run on the input's own device) and impl registrations.
#include <tuple>

#include "nvfp4_quant.h"

#include <lowbit/nvfp4_codec.h>

namespace {

using lowbit::ScalarType;
using lowbit::Tensor;
using lowbit::nvfp4::QuantProblem;
namespace nv = lowbit::nvfp4;

// Dispatch a validated problem; the device guard is set here, once.
void run(const char* op, const Tensor& input, const QuantProblem& p) {
  const lowbit::Target target = lowbit::target_for(op, "input", input);
  if (target == lowbit::Target::CPU) return nv::quant_cpu(p);
#if LOWBIT_WITH_CUDA
  lowbit::DeviceGuard guard(input);
  void* stream = lowbit::current_stream(input);
  const int sms = lowbit::device_sm_count(input.get_device_index());
  switch (target) {
#if LOWBIT_BUILT_SM90
    case lowbit::Target::SM90: return nv::quant_sm90(p, stream, sms);
#endif
#if LOWBIT_BUILT_SM100
    case lowbit::Target::SM100: return nv::quant_sm100(p, stream, sms);
#endif
#if LOWBIT_BUILT_SM120
    case lowbit::Target::SM120: return nv::quant_sm120(p, stream, sms);
#endif
    default: break;
  }
#endif
  lowbit::fail(lowbit::str(op, ": no kernel for ", lowbit::target_name(target), " in this build"));
}

void scaled_fp4_quant_out(Tensor input, Tensor input_scale, bool is_sf_swizzled_layout,
                          Tensor output, Tensor output_scale) {
  auto p = nv::validate_quant(input, input_scale, is_sf_swizzled_layout, output, output_scale);
  run("scaled_fp4_quant", input, p);
}

// vLLM's dtypes (SPEC §2.1): swizzled scales int32 [Mp, Kp/4], linear uint8 [m, n/16].
std::tuple<Tensor, Tensor> scaled_fp4_quant(Tensor input, Tensor input_scale,
                                            bool is_sf_swizzled_layout) {
  nv::validate_quant_input(input);
  const int64_t n = input.size(input.dim() - 1), m = input.numel() / n;
  Tensor out = lowbit::empty_on(input, {m, n / 2}, ScalarType::Byte);
  Tensor sf = is_sf_swizzled_layout
                  ? lowbit::empty_on(input, {lowbit::nvfp4::swizzled_rows(m),
                                             lowbit::nvfp4::swizzled_cols(n / lowbit::nvfp4::kBlock) / 4},
                                     ScalarType::Int)
                  : lowbit::empty_on(input, {m, n / 16}, ScalarType::Byte);
  scaled_fp4_quant_out(input, input_scale, is_sf_swizzled_layout, out, sf);
  return {out, sf};
}

void silu_and_mul_nvfp4_quant(Tensor result, Tensor result_block_scale, Tensor input,
                              Tensor input_global_scale) {
  auto p = nv::validate_silu_quant(result, result_block_scale, input, input_global_scale);
  run("silu_and_mul_nvfp4_quant", input, p);
}

template <bool SILU>
void experts_quant(Tensor output, Tensor output_scale, Tensor input, Tensor input_global_scale,
                   Tensor input_offset_by_experts, Tensor output_scale_offset_by_experts) {
  const char* op = SILU ? "silu_and_mul_scaled_fp4_experts_quant" : "scaled_fp4_experts_quant";
  auto p = nv::validate_experts_quant(op, SILU, output, output_scale, input, input_global_scale,
                                      input_offset_by_experts, output_scale_offset_by_experts);
  run(op, input, p);
}

std::string built_archs() { return LOWBIT_CUDA_ARCHS; }

}  // namespace

STABLE_TORCH_LIBRARY(lowbit_nvfp4_quant, m) {
  m.def("scaled_fp4_quant(Tensor input, Tensor input_scale, bool is_sf_swizzled_layout) "
        "-> (Tensor, Tensor)");
  m.def("scaled_fp4_quant.out(Tensor input, Tensor input_scale, bool is_sf_swizzled_layout, *, "
        "Tensor(a!) output, Tensor(b!) output_scale) -> ()");
  m.def("silu_and_mul_nvfp4_quant(Tensor(a!) result, Tensor(b!) result_block_scale, "
        "Tensor input, Tensor input_global_scale) -> ()");
  m.def("scaled_fp4_experts_quant(Tensor(a!) output, Tensor(b!) output_scale, Tensor input, "
        "Tensor input_global_scale, Tensor input_offset_by_experts, "
        "Tensor output_scale_offset_by_experts) -> ()");
  m.def("silu_and_mul_scaled_fp4_experts_quant(Tensor(a!) output, Tensor(b!) output_scale, "
        "Tensor input, Tensor input_global_scale, Tensor input_offset_by_experts, "
        "Tensor output_scale_offset_by_experts) -> ()");
  m.def("built_archs() -> str");
}

// Same entry points for both keys: each validates devices and dispatches on
// the input's device (a CPU-only build still gives a clear error for CUDA).
#define LOWBIT_NVFP4_IMPLS(m)                                                        \
  m.impl("scaled_fp4_quant", TORCH_BOX(&scaled_fp4_quant));                          \
  m.impl("scaled_fp4_quant.out", TORCH_BOX(&scaled_fp4_quant_out));                  \
  m.impl("silu_and_mul_nvfp4_quant", TORCH_BOX(&silu_and_mul_nvfp4_quant));          \
  m.impl("scaled_fp4_experts_quant", TORCH_BOX(&experts_quant<false>));              \
  m.impl("silu_and_mul_scaled_fp4_experts_quant", TORCH_BOX(&experts_quant<true>));

STABLE_TORCH_LIBRARY_IMPL(lowbit_nvfp4_quant, CPU, m) { LOWBIT_NVFP4_IMPLS(m) }
STABLE_TORCH_LIBRARY_IMPL(lowbit_nvfp4_quant, CUDA, m) { LOWBIT_NVFP4_IMPLS(m) }
STABLE_TORCH_LIBRARY_IMPL(lowbit_nvfp4_quant, CompositeImplicitAutograd, m) {
  m.impl("built_archs", TORCH_BOX(&built_archs));
}
