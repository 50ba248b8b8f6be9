// lowbit_nvfp4_mm: schemas, per-target dispatch and registrations.
//
// cutlass_scaled_fp4_mm and cutlass_scaled_mm_supports_fp4 keep vLLM
// v0.34.0's schemas (docs/SPEC.md §2.2). _cutlass_scaled_fp4_mm_with_kernel is
// the same GEMM with what the Python wrapper, the tests and the benchmarks
// need: batch-invariant mode, a kernel picked by name (_kernel_names), a
// forced split count. cutlass_fp4_group_mm keeps vLLM v0.34.0's schema
// (docs/SPEC-MOE.md §5.2); _cutlass_fp4_group_mm_with_kernel picks one of
// _group_kernel_names by name.
#include "nvfp4_mm.h"

#include <lowbit/arch.h>
#include <lowbit/torch_utils.h>

#include <torch/csrc/stable/ops.h>
#if LOWBIT_WITH_CUDA
#include <lowbit/cuda_utils.h>
#endif

namespace nvfp4_mm {
namespace {

// K = 0: the empty reduction, out = to_out(0 + bias) (bias is in out's dtype).
void empty_reduction(const Problem& p) {
  Tensor out = p.out;  // a handle to the same storage
  if (p.bias.has_value())
    torch::stable::copy_(out, *p.bias);  // broadcast over the rows
  else
    torch::stable::zero_(out);
}

void dispatch(const Problem& p) {
  using lowbit::Target;
  const Target target = lowbit::target_for(kOp, "a", p.a);
  if (p.M == 0 || p.N == 0) return;
  if (p.K == 0) return empty_reduction(p);
  if (target == Target::CPU) return scaled_fp4_mm_cpu(p);
#if LOWBIT_WITH_CUDA
  lowbit::DeviceGuard guard(p.a);  // once, for every CUDA target
  switch (target) {
#if LOWBIT_BUILT_SM90
    case Target::SM90: return scaled_fp4_mm_sm90(p);
#endif
#if LOWBIT_BUILT_SM100
    case Target::SM100: return scaled_fp4_mm_sm100(p);
#endif
#if LOWBIT_BUILT_SM120
    case Target::SM120: return scaled_fp4_mm_sm120(p);
#endif
    default: break;
  }
#endif
  lowbit::fail(lowbit::str(kOp, ": no kernel for target ", lowbit::target_name(target)));
}

void scaled_fp4_mm(Tensor out, Tensor a, Tensor b, Tensor sa, Tensor sb, Tensor alpha,
                   std::optional<Tensor> bias) {
  dispatch(validate_scaled_fp4_mm(out, a, b, sa, sb, alpha, bias));
}

void scaled_fp4_mm_with_kernel(Tensor out, Tensor a, Tensor b, Tensor sa, Tensor sb, Tensor alpha,
                               std::optional<Tensor> bias, bool batch_invariant, std::optional<std::string> kernel,
                               int64_t splits) {
  dispatch(validate_scaled_fp4_mm_with_kernel(out, a, b, sa, sb, alpha, bias, batch_invariant, kernel, splits));
}

// cutlass_fp4_group_mm: every expert empty or E = 0 is a no-op; nothing is
// read from the device metadata here (no host synchronisation).
void group_dispatch(const GroupProblem& p) {
  using lowbit::Target;
  const Target target = lowbit::target_for(kGroupOp, "a", p.a);
  if (p.M == 0 || p.E == 0) return;
  if (target == Target::CPU) return fp4_group_mm_cpu(p);
#if LOWBIT_WITH_CUDA
  lowbit::DeviceGuard guard(p.a);
  switch (target) {
#if LOWBIT_BUILT_SM90
    case Target::SM90: return fp4_group_mm_sm90(p);
#endif
#if LOWBIT_BUILT_SM100
    case Target::SM100: return fp4_group_mm_sm100(p);
#endif
#if LOWBIT_BUILT_SM120
    case Target::SM120: return fp4_group_mm_sm120(p);
#endif
    default: break;
  }
#endif
  lowbit::fail(lowbit::str(kGroupOp, ": no kernel for target ", lowbit::target_name(target)));
}

void fp4_group_mm(Tensor out, Tensor a, Tensor b, Tensor sa, Tensor sb, Tensor alphas, Tensor problem_sizes,
                  Tensor expert_offsets, Tensor sf_offsets) {
  group_dispatch(validate_fp4_group_mm(out, a, b, sa, sb, alphas, problem_sizes, expert_offsets, sf_offsets));
}

void fp4_group_mm_with_kernel(Tensor out, Tensor a, Tensor b, Tensor sa, Tensor sb, Tensor alphas,
                              Tensor problem_sizes, Tensor expert_offsets, Tensor sf_offsets,
                              std::optional<std::string> kernel) {
  GroupProblem p = validate_fp4_group_mm(out, a, b, sa, sb, alphas, problem_sizes, expert_offsets, sf_offsets);
  p.kernel = kernel.value_or(std::string());
  group_dispatch(p);
}

// True exactly where this build has a kernel for the capability (major*10+minor).
bool supports_fp4(int64_t cap) {
  const bool built = lowbit::arch_built(static_cast<int>(cap));
  if (cap >= 90 && cap < 100) return LOWBIT_BUILT_SM90 && built;
  if (cap >= 100 && cap < 120) return LOWBIT_BUILT_SM100 && built;
  if (cap >= 120 && cap < 130) return LOWBIT_BUILT_SM120 && built;
  return false;
}

// The kernels selectable by name for a capability (0: the CPU).
std::vector<std::string> kernel_names(int64_t cap) {
  if (cap == 0) return cpu_kernel_names();
  if (!supports_fp4(cap)) return {};
#if LOWBIT_BUILT_SM90
  if (cap < 100) return sm90_kernel_names();
#endif
#if LOWBIT_BUILT_SM100
  if (cap < 120) return sm100_kernel_names();
#endif
#if LOWBIT_BUILT_SM120
  return sm120_kernel_names();
#endif
  return {};
}

// The grouped GEMM's kernels selectable by name for a capability (0: the CPU).
std::vector<std::string> group_kernel_names(int64_t cap) {
  if (cap == 0) return cpu_kernel_names();
  if (!supports_fp4(cap)) return {};
#if LOWBIT_BUILT_SM90
  if (cap < 100) return sm90_group_kernel_names();
#endif
#if LOWBIT_BUILT_SM100
  if (cap < 120) return sm100_group_kernel_names();
#endif
#if LOWBIT_BUILT_SM120
  return sm120_group_kernel_names();
#endif
  return {};
}

}  // namespace
}  // namespace nvfp4_mm

STABLE_TORCH_LIBRARY(lowbit_nvfp4_mm, m) {
  m.def("cutlass_scaled_fp4_mm(Tensor(a!) out, Tensor a, Tensor b, Tensor block_scale_a, "
        "Tensor block_scale_b, Tensor alpha, Tensor? bias=None) -> ()");
  m.def("cutlass_scaled_mm_supports_fp4(int cuda_device_capability) -> bool");
  m.def("_cutlass_scaled_fp4_mm_with_kernel(Tensor(a!) out, Tensor a, Tensor b, Tensor block_scale_a, "
        "Tensor block_scale_b, Tensor alpha, Tensor? bias, bool batch_invariant, str? kernel, int splits) -> ()");
  m.def("_kernel_names(int cuda_device_capability) -> str[]");
  m.def("cutlass_fp4_group_mm(Tensor(a!) out, Tensor a, Tensor b, Tensor a_blockscale, Tensor b_blockscales, "
        "Tensor alphas, Tensor problem_sizes, Tensor expert_offsets, Tensor sf_offsets) -> ()");
  m.def("_cutlass_fp4_group_mm_with_kernel(Tensor(a!) out, Tensor a, Tensor b, Tensor a_blockscale, "
        "Tensor b_blockscales, Tensor alphas, Tensor problem_sizes, Tensor expert_offsets, Tensor sf_offsets, "
        "str? kernel) -> ()");
  m.def("_group_kernel_names(int cuda_device_capability) -> str[]");
}

STABLE_TORCH_LIBRARY_IMPL(lowbit_nvfp4_mm, CPU, m) {
  m.impl("cutlass_scaled_fp4_mm", TORCH_BOX(&nvfp4_mm::scaled_fp4_mm));
  m.impl("_cutlass_scaled_fp4_mm_with_kernel", TORCH_BOX(&nvfp4_mm::scaled_fp4_mm_with_kernel));
  m.impl("cutlass_fp4_group_mm", TORCH_BOX(&nvfp4_mm::fp4_group_mm));
  m.impl("_cutlass_fp4_group_mm_with_kernel", TORCH_BOX(&nvfp4_mm::fp4_group_mm_with_kernel));
}

STABLE_TORCH_LIBRARY_IMPL(lowbit_nvfp4_mm, CUDA, m) {
  m.impl("cutlass_scaled_fp4_mm", TORCH_BOX(&nvfp4_mm::scaled_fp4_mm));
  m.impl("_cutlass_scaled_fp4_mm_with_kernel", TORCH_BOX(&nvfp4_mm::scaled_fp4_mm_with_kernel));
  m.impl("cutlass_fp4_group_mm", TORCH_BOX(&nvfp4_mm::fp4_group_mm));
  m.impl("_cutlass_fp4_group_mm_with_kernel", TORCH_BOX(&nvfp4_mm::fp4_group_mm_with_kernel));
}

STABLE_TORCH_LIBRARY_IMPL(lowbit_nvfp4_mm, CompositeImplicitAutograd, m) {
  m.impl("cutlass_scaled_mm_supports_fp4", TORCH_BOX(&nvfp4_mm::supports_fp4));
  m.impl("_kernel_names", TORCH_BOX(&nvfp4_mm::kernel_names));
  m.impl("_group_kernel_names", TORCH_BOX(&nvfp4_mm::group_kernel_names));
}
