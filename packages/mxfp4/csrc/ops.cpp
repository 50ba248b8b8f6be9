// lowbit_mxfp4: schemas, per-target dispatch and registrations.
//
// mxfp4_experts_quant, silu_and_mul_mxfp4_experts_quant and
// cutlass_mxfp4_group_mm keep vLLM v0.34.0's schemas (docs/SPEC-MOE.md
// §5.3-5.5; the written arguments are declared Tensor(a!)/(b!), the same
// annotation as vLLM's Tensor!); mxfp4_experts_quant_supported is vLLM's
// capability query (§5.0.3). _cutlass_mxfp4_group_mm_with_kernel runs one of
// _group_kernel_names by name (tests, benchmarks).
#include "mxfp4.h"

#include <lowbit/arch.h>
#include <lowbit/torch_utils.h>
#if LOWBIT_WITH_CUDA
#include <lowbit/cuda_utils.h>
#endif

namespace mxfp4 {
namespace {

using lowbit::Target;

template <bool SILU>
void experts_quant(Tensor output, Tensor output_scale, Tensor input, Tensor input_offset_by_experts,
                   Tensor output_scale_offset_by_experts, int64_t n_experts, std::optional<Tensor> sorted_expert_ids) {
  const char* op = SILU ? kSiluQuantOp : kQuantOp;
  const QuantProblem p = validate_experts_quant(op, SILU, output, output_scale, input, input_offset_by_experts,
                                                output_scale_offset_by_experts, n_experts, sorted_expert_ids);
  const Target target = lowbit::target_for(op, "input", input);
  if (p.m == 0) return;
  if (target == Target::CPU) return experts_quant_cpu(p);
#if LOWBIT_WITH_CUDA
  lowbit::DeviceGuard guard(input);
  return experts_quant_cuda(p, lowbit::current_stream(input), lowbit::device_sm_count(input.get_device_index()));
#endif
  lowbit::fail(lowbit::str(op, ": no kernel for target ", lowbit::target_name(target)));
}

// The grouped GEMM's kernels selectable by name on a target (CPU included).
std::vector<std::string> names_for(Target target) {
  switch (target) {
    case Target::CPU: return cpu_group_kernel_names();
#if LOWBIT_BUILT_SM90
    case Target::SM90: return sm90_group_kernel_names();
#endif
#if LOWBIT_BUILT_SM100
    case Target::SM100: return sm100_group_kernel_names();
#endif
    default: return {};
  }
}

// Every expert empty or E = 0 is a no-op; device metadata is never read here.
void group_dispatch(const GroupProblem& p) {
  const Target target = lowbit::target_for(kGroupOp, "a", p.a);
  if (!p.kernel.empty()) check_kernel_name(p.kernel, names_for(target), lowbit::target_name(target));
  if (p.M == 0 || p.E == 0) return;
  if (target == Target::CPU) return mxfp4_group_mm_cpu(p);
#if LOWBIT_WITH_CUDA
  lowbit::DeviceGuard guard(p.a);  // once, for every CUDA target
  switch (target) {
#if LOWBIT_BUILT_SM90
    case Target::SM90: return mxfp4_group_mm_sm90(p);
#endif
#if LOWBIT_BUILT_SM100
    case Target::SM100: return mxfp4_group_mm_sm100(p);
#endif
    default: break;
  }
#endif
  lowbit::fail(lowbit::str(kGroupOp, ": no kernel for target ", lowbit::target_name(target), " in this build"));
}

void group_mm(Tensor out, Tensor a, Tensor b, Tensor sa, Tensor sb, Tensor problem_sizes, Tensor expert_offsets,
              Tensor sf_offsets) {
  group_dispatch(validate_mxfp4_group_mm(out, a, b, sa, sb, problem_sizes, expert_offsets, sf_offsets));
}

void group_mm_with_kernel(Tensor out, Tensor a, Tensor b, Tensor sa, Tensor sb, Tensor problem_sizes,
                          Tensor expert_offsets, Tensor sf_offsets, std::optional<std::string> kernel) {
  GroupProblem p = validate_mxfp4_group_mm(out, a, b, sa, sb, problem_sizes, expert_offsets, sf_offsets);
  p.kernel = kernel.value_or(std::string());
  group_dispatch(p);
}

// The target family of a compute capability (major*10+minor; 0 = the CPU),
// or nullopt when this build has no device code for it.
std::optional<Target> target_of(int64_t cap) {
  if (cap == 0) return Target::CPU;
  if (!lowbit::arch_built(static_cast<int>(cap))) return std::nullopt;
  if (cap >= 90 && cap < 100) return Target::SM90;
  if (cap >= 100 && cap < 120) return Target::SM100;
  if (cap >= 120 && cap < 130) return Target::SM120;
  return std::nullopt;
}

// True exactly where this build has quant kernels for the capability (every
// built CUDA architecture runs csrc/cuda/).
bool quant_supported(int64_t cap) { return cap != 0 && target_of(cap).has_value(); }

std::vector<std::string> group_kernel_names(int64_t cap) {
  const auto t = target_of(cap);
  return t ? names_for(*t) : std::vector<std::string>{};
}

}  // namespace
}  // namespace mxfp4

STABLE_TORCH_LIBRARY(lowbit_mxfp4, m) {
  m.def("mxfp4_experts_quant(Tensor(a!) output, Tensor(b!) output_scale, Tensor input, "
        "Tensor input_offset_by_experts, Tensor output_scale_offset_by_experts, int n_experts, "
        "Tensor? sorted_expert_ids=None) -> ()");
  m.def("silu_and_mul_mxfp4_experts_quant(Tensor(a!) output, Tensor(b!) output_scale, Tensor input, "
        "Tensor input_offset_by_experts, Tensor output_scale_offset_by_experts, int n_experts, "
        "Tensor? sorted_expert_ids=None) -> ()");
  m.def("mxfp4_experts_quant_supported(int cuda_device_capability) -> bool");
  m.def("cutlass_mxfp4_group_mm(Tensor(a!) out, Tensor a, Tensor b, Tensor a_blockscale, Tensor b_blockscales, "
        "Tensor problem_sizes, Tensor expert_offsets, Tensor sf_offsets) -> ()");
  m.def("_cutlass_mxfp4_group_mm_with_kernel(Tensor(a!) out, Tensor a, Tensor b, Tensor a_blockscale, "
        "Tensor b_blockscales, Tensor problem_sizes, Tensor expert_offsets, Tensor sf_offsets, str? kernel) -> ()");
  m.def("_group_kernel_names(int cuda_device_capability) -> str[]");
}

// Same entry points for both keys: each validates devices and dispatches on
// the tensors' device (a CPU-only build still gives a clear error for CUDA).
#define LOWBIT_MXFP4_IMPLS(m)                                                                  \
  m.impl("mxfp4_experts_quant", TORCH_BOX(&mxfp4::experts_quant<false>));                      \
  m.impl("silu_and_mul_mxfp4_experts_quant", TORCH_BOX(&mxfp4::experts_quant<true>));          \
  m.impl("cutlass_mxfp4_group_mm", TORCH_BOX(&mxfp4::group_mm));                               \
  m.impl("_cutlass_mxfp4_group_mm_with_kernel", TORCH_BOX(&mxfp4::group_mm_with_kernel));

STABLE_TORCH_LIBRARY_IMPL(lowbit_mxfp4, CPU, m) { LOWBIT_MXFP4_IMPLS(m) }
STABLE_TORCH_LIBRARY_IMPL(lowbit_mxfp4, CUDA, m) { LOWBIT_MXFP4_IMPLS(m) }
STABLE_TORCH_LIBRARY_IMPL(lowbit_mxfp4, CompositeExplicitAutograd, m) {
  m.impl("mxfp4_experts_quant_supported", TORCH_BOX(&mxfp4::quant_supported));
  m.impl("_group_kernel_names", TORCH_BOX(&mxfp4::group_kernel_names));
}
