// Argument validation of every lowbit_mxfp4 op (docs/SPEC-MOE.md §5.3-5.5):
// device, dtype, rank, shape, contiguity and base-address alignment of every
// argument; each failure names the argument, what was expected and what came.
// Device metadata (offsets, problem sizes, sorted_expert_ids) is checked for
// dtype, shape and device only on CUDA: its values would need a host
// synchronisation, so the kernels stay in bounds whatever it holds (§5.0.3).
// On the CPU the offsets are host memory and their values are checked here.
#include "mxfp4.h"

#include <lowbit/arg_checks.h>
#include <lowbit/mxfp4_codec.h>

#include <cstdint>

namespace mxfp4 {
namespace {

using lowbit::ScalarType;
using lowbit::shape_str;
using lowbit::str;

// ------------------------------------------------ experts quant (§5.4-5.5)

// input fp16/bf16 [m, k] (silu: [m, 2k]), k a positive multiple of 32.
void check_quant_input(const char* op, bool silu, const Tensor& x) {
  lowbit::check_defined(op, "input", x);
  lowbit::check_cpu_or_cuda(op, "input", x);
  lowbit::check_dtype(op, "input", x, {ScalarType::Half, ScalarType::BFloat16});
  lowbit::check_dim(op, "input", x, 2);
  const int64_t cols = x.size(1);
  LOWBIT_CHECK_ARG(cols > 0 && cols % (silu ? 64 : 32) == 0, op, "input",
                   silu ? "a width 2k (gate || up) with k a positive multiple of 32"
                        : "a width k that is a positive multiple of 32",
                   str("shape ", shape_str(x)));
  lowbit::check_contiguous(op, "input", x);
  lowbit::check_base_aligned(op, 16, {{"input", &x}});
}

// Scale buffer: int32 [R, kp/4] (vLLM's allocation) or uint8 [R, kp]; any R.
void check_quant_scales(const char* op, const Tensor& sf, const Tensor& x, int64_t kp) {
  lowbit::check_defined(op, "output_scale", sf);
  lowbit::check_same_device(op, "output_scale", sf, "input", x);
  lowbit::check_dtype(op, "output_scale", sf, {ScalarType::Int, ScalarType::Byte});
  const bool words = sf.scalar_type() == ScalarType::Int;
  const int64_t cols = words ? kp / 4 : kp;
  LOWBIT_CHECK_ARG(sf.dim() == 2 && sf.size(1) == cols, op, "output_scale",
                   str("shape [R, ", cols, "] (", words ? "int32 words of 4" : "", " E8M0 scale bytes, ",
                       kp, " per scale row)"),
                   str("shape ", shape_str(sf), " of dtype ", lowbit::dtype_of(sf)));
  lowbit::check_contiguous(op, "output_scale", sf);
  lowbit::check_base_aligned(op, 4, {{"output_scale", &sf}});
}

// sorted_expert_ids: int32 [m] on the input's device (a hint; never trusted).
void check_ids(const char* op, const std::optional<Tensor>& ids, const Tensor& x) {
  if (!ids.has_value()) return;
  lowbit::check_int32_metadata(op, "sorted_expert_ids", *ids, {x.size(0)}, "input", x);
}

}  // namespace

QuantProblem validate_experts_quant(const char* op, bool silu, const Tensor& output, const Tensor& output_scale,
                                    const Tensor& input, const Tensor& off, const Tensor& sf_off,
                                    int64_t n_experts, const std::optional<Tensor>& ids) {
  check_quant_input(op, silu, input);
  QuantProblem p;
  p.m = input.size(0);
  p.k = silu ? input.size(1) / 2 : input.size(1);
  p.kp = lowbit::mxfp4::swizzled_cols(p.k / lowbit::mxfp4::kBlock);
  LOWBIT_CHECK_ARG(n_experts >= 1 || (n_experts == 0 && p.m == 0), op, "n_experts",
                   "at least 1 (0 only for an input without rows)", n_experts);
  LOWBIT_CHECK_ARG(n_experts < (int64_t(1) << 30), op, "n_experts", "fewer than 2^30 experts", n_experts);
  lowbit::check_int32_metadata(op, "input_offset_by_experts", off, {n_experts + 1}, "input", input);
  lowbit::check_int32_metadata(op, "output_scale_offset_by_experts", sf_off, {n_experts + 1}, "input", input);
  lowbit::check_contiguous_on(op, "output", output, "input", input, {ScalarType::Byte});
  lowbit::check_shape(op, "output", output, {p.m, p.k / 2});
  lowbit::check_base_aligned(op, 16, {{"output", &output}});
  check_quant_scales(op, output_scale, input, p.kp);
  check_ids(op, ids, input);
  p.sf_rows = lowbit::whole_tile_scale_rows(output_scale, p.kp);
  p.in = input.data_ptr();
  p.out = static_cast<uint8_t*>(output.data_ptr());
  p.sf = static_cast<uint8_t*>(output_scale.data_ptr());
  p.off = static_cast<const int32_t*>(off.data_ptr());
  p.sf_off = static_cast<const int32_t*>(sf_off.data_ptr());
  p.num_experts = static_cast<int32_t>(n_experts);
  p.bf16 = input.scalar_type() == ScalarType::BFloat16;
  p.silu = silu;
  if (input.is_cpu() && n_experts > 0)
    lowbit::check_host_expert_offsets(op, p.off, p.sf_off, n_experts, p.m, p.sf_rows, output_scale);
  return p;
}

GroupProblem validate_mxfp4_group_mm(Tensor out, Tensor a, Tensor b, Tensor sa, Tensor sb, Tensor problem_sizes,
                                     Tensor expert_offsets, Tensor sf_offsets) {
  // E8M0 scale bytes, one per 32 e2m1 values (docs/SPEC-MOE.md §5.1.1).
  const auto s = lowbit::check_fp4_group_gemm(
      kGroupOp, {out, a, b, sa, sb, problem_sizes, expert_offsets, sf_offsets}, {32, {ScalarType::Byte}});
  return GroupProblem{out, a, b, sa, sb, problem_sizes, expert_offsets, sf_offsets, s.E, s.M, s.N, s.K, s.R, {}};
}

void check_kernel_name(const std::string& name, const std::vector<std::string>& names, const char* target,
                       const char* op) {
  lowbit::check_kernel_name(op, name, names, target);
}

}  // namespace mxfp4
