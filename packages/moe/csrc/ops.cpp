// lowbit_moe: schemas (vLLM v0.34.0 names and arguments, docs/SPEC-MOE.md
// §5.9.3-5.9.4; moe_combine and silu_and_mul_per_token_fp8_quant are
// lowbit's), thin op bodies (validate, then run on the tensors' own device
// with the device guard set here, once) and impl registrations.
#include <optional>

#include "moe.h"

namespace {

using lowbit::Target;
using lowbit::Tensor;
namespace moe = lowbit::moe;

#if LOWBIT_WITH_CUDA
#define LOWBIT_MOE_CUDA(fn) &moe::fn
#else
#define LOWBIT_MOE_CUDA(fn) nullptr
#endif

[[noreturn]] void no_kernel(const char* op, Target t) {
  lowbit::fail(lowbit::str(op, ": no kernel for ", lowbit::target_name(t), " in this build"));
}

[[maybe_unused]] bool is_cuda_target(Target t) {
  return t == Target::SM90 || t == Target::SM100 || t == Target::SM120;
}

// Runs the validated problem on the target of `t` (named `arg`): the CPU
// kernel, or the CUDA kernel on t's current stream under t's device guard
// (cuda is null in a CPU-only build).
template <class P>
struct CudaEntry {  // a non-deduced parameter type, so that nullptr is accepted
  using type = void (*)(const P&, void*);
};

template <class P>
void run_on(const char* op, const char* arg, const Tensor& t, const P& p,
            void (*cpu)(const P&), [[maybe_unused]] typename CudaEntry<P>::type cuda) {
  const Target target = lowbit::target_for(op, arg, t);
  if (target == Target::CPU) return cpu(p);
#if LOWBIT_WITH_CUDA
  if (is_cuda_target(target) && cuda) {
    lowbit::DeviceGuard guard(t);
    return cuda(p, lowbit::current_stream(t));
  }
#endif
  no_kernel(op, target);
}

void get_cutlass_moe_mm_data(Tensor topk_ids, Tensor expert_offsets, Tensor problem_sizes1,
                             Tensor problem_sizes2, Tensor input_permutation,
                             Tensor output_permutation, int64_t num_experts, int64_t n, int64_t k,
                             std::optional<Tensor> blockscale_offsets, bool is_gated,
                             std::optional<Tensor> sorted_expert_ids) {
  constexpr const char* op = "get_cutlass_moe_mm_data";
  auto p = moe::validate_moe_data(
      topk_ids, expert_offsets, problem_sizes1, problem_sizes2, input_permutation,
      output_permutation, num_experts, n, k, blockscale_offsets ? &*blockscale_offsets : nullptr,
      is_gated, sorted_expert_ids ? &*sorted_expert_ids : nullptr);
  const Target t = lowbit::target_for(op, "topk_ids", topk_ids);
  if (t == Target::CPU) return moe::moe_data_cpu(p);
#if LOWBIT_WITH_CUDA
  if (is_cuda_target(t)) {  // the one op with a workspace from torch
    lowbit::DeviceGuard guard(topk_ids);
    Tensor ws = lowbit::empty_on(topk_ids, {moe::moe_data_workspace_elems(p)},
                                 lowbit::ScalarType::Int);
    return moe::moe_data_cuda(p, static_cast<int32_t*>(ws.data_ptr()),
                              lowbit::current_stream(topk_ids));
  }
#endif
  no_kernel(op, t);
}

void get_cutlass_moe_mm_problem_sizes_from_expert_offsets(Tensor expert_first_token_offset,
                                                          Tensor problem_sizes1,
                                                          Tensor problem_sizes2, int64_t n,
                                                          int64_t k, bool swap_ab) {
  auto p = moe::validate_problem_sizes(expert_first_token_offset, problem_sizes1, problem_sizes2,
                                       n, k, swap_ab);
  run_on("get_cutlass_moe_mm_problem_sizes_from_expert_offsets", "expert_first_token_offset",
         expert_first_token_offset, p, &moe::problem_sizes_cpu,
         LOWBIT_MOE_CUDA(problem_sizes_cuda));
}

void shuffle_rows(Tensor input_tensor, Tensor dst2src_map, Tensor output_tensor) {
  auto p = moe::validate_shuffle_rows(input_tensor, dst2src_map, output_tensor);
  run_on("shuffle_rows", "output_tensor", output_tensor, p, &moe::shuffle_rows_cpu,
         LOWBIT_MOE_CUDA(shuffle_rows_cuda));
}

void moe_combine(Tensor input, Tensor output_permutation, std::optional<Tensor> topk_weights,
                 Tensor output) {
  auto p = moe::validate_combine(input, output_permutation,
                                 topk_weights ? &*topk_weights : nullptr, output);
  run_on("moe_combine", "input", input, p, &moe::combine_cpu, LOWBIT_MOE_CUDA(combine_cuda));
}

// Per-token fp8 quantization, plain (vLLM's schema) or of silu(gate) * up.
void fp8_quant(const char* op, bool gated, const Tensor& result, const Tensor& input,
               const Tensor& scale, const Tensor* scale_ub) {
  auto p = moe::validate_fp8_quant(op, gated, result, input, scale, scale_ub);
  run_on(op, "input", input, p, &moe::fp8_quant_cpu, LOWBIT_MOE_CUDA(fp8_quant_cuda));
}

void dynamic_per_token_scaled_fp8_quant(Tensor result, Tensor input, Tensor scale,
                                        std::optional<Tensor> scale_ub) {
  fp8_quant("dynamic_per_token_scaled_fp8_quant", false, result, input, scale,
            scale_ub ? &*scale_ub : nullptr);
}

void silu_and_mul_per_token_fp8_quant(Tensor result, Tensor input, Tensor scale) {
  fp8_quant("silu_and_mul_per_token_fp8_quant", true, result, input, scale, nullptr);
}

}  // namespace

STABLE_TORCH_LIBRARY(lowbit_moe, m) {
  m.def("get_cutlass_moe_mm_data(Tensor topk_ids, Tensor(a!) expert_offsets, "
        "Tensor(b!) problem_sizes1, Tensor(c!) problem_sizes2, Tensor(d!) input_permutation, "
        "Tensor(e!) output_permutation, int num_experts, int n, int k, "
        "Tensor(f!)? blockscale_offsets, bool is_gated, Tensor(g!)? sorted_expert_ids=None) -> ()");
  m.def("get_cutlass_moe_mm_problem_sizes_from_expert_offsets(Tensor expert_first_token_offset, "
        "Tensor(a!) problem_sizes1, Tensor(b!) problem_sizes2, int n, int k, bool swap_ab) -> ()");
  m.def("shuffle_rows(Tensor input_tensor, Tensor dst2src_map, Tensor(a!) output_tensor) -> ()");
  m.def("moe_combine(Tensor input, Tensor output_permutation, Tensor? topk_weights, "
        "Tensor(a!) output) -> ()");
  m.def("dynamic_per_token_scaled_fp8_quant(Tensor(a!) result, Tensor input, Tensor(b!) scale, "
        "Tensor? scale_ub) -> ()");
  m.def("silu_and_mul_per_token_fp8_quant(Tensor(a!) result, Tensor input, Tensor(b!) scale) "
        "-> ()");
}

// One entry per op for both keys: each validates devices and dispatches on
// the tensors' device (a CPU-only build still gives a clear error for CUDA).
#define LOWBIT_MOE_IMPLS(m)                                                                 \
  m.impl("get_cutlass_moe_mm_data", TORCH_BOX(&get_cutlass_moe_mm_data));                   \
  m.impl("get_cutlass_moe_mm_problem_sizes_from_expert_offsets",                            \
         TORCH_BOX(&get_cutlass_moe_mm_problem_sizes_from_expert_offsets));                 \
  m.impl("shuffle_rows", TORCH_BOX(&shuffle_rows));                                        \
  m.impl("moe_combine", TORCH_BOX(&moe_combine));                                          \
  m.impl("dynamic_per_token_scaled_fp8_quant", TORCH_BOX(&dynamic_per_token_scaled_fp8_quant)); \
  m.impl("silu_and_mul_per_token_fp8_quant", TORCH_BOX(&silu_and_mul_per_token_fp8_quant));

STABLE_TORCH_LIBRARY_IMPL(lowbit_moe, CPU, m) { LOWBIT_MOE_IMPLS(m) }
STABLE_TORCH_LIBRARY_IMPL(lowbit_moe, CUDA, m) { LOWBIT_MOE_IMPLS(m) }
