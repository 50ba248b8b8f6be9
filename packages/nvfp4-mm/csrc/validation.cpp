// Argument validation of every lowbit_nvfp4_mm op (docs/SPEC.md §2.2,
// docs/SPEC-MOE.md §5.2): each check names the argument, what was expected
// and what came. cutlass_fp4_group_mm's device metadata (problem_sizes,
// expert_offsets, sf_offsets) is checked for dtype, shape and device only:
// its values would need a host synchronisation; the kernels skip an expert
// whose values break the contract instead (docs/SPEC-MOE.md §5.0.3).
#include "nvfp4_mm.h"

#include <lowbit/arg_checks.h>
#include <lowbit/nvfp4_codec.h>

#include <cstdint>

namespace nvfp4_mm {
namespace {

using lowbit::ScalarType;
using lowbit::shape_str;
using lowbit::str;

// Swizzled block-scale buffer of an [rows, K] NVFP4 operand (docs/SPEC.md §1.3).
void check_scale(const char* arg, const char* short_name, const Tensor& s, int64_t rows, int64_t K,
                 const Tensor& a) {
  lowbit::check_defined(kOp, arg, s);
  lowbit::check_same_device(kOp, arg, s, "a", a);
  // ue4m3 scale bytes: float8_e4m3fn is the documented dtype; raw uint8
  // bytes of the same layout are accepted too.
  lowbit::check_dtype(kOp, arg, s, {ScalarType::Float8_e4m3fn, ScalarType::Byte});
  const int64_t rm = lowbit::nvfp4::swizzled_rows(rows);
  const int64_t rk = lowbit::nvfp4::swizzled_cols(K / lowbit::nvfp4::kBlock);
  LOWBIT_CHECK(s.dim() == 2 && s.size(0) == rm && s.size(1) == rk, kOp, ": argument '", arg, "': ", short_name,
               " must be padded and swizzled to a shape (", rm, "x", rk, "), but got a shape ", shape_str(s));
  lowbit::check_contiguous(kOp, arg, s);
}

// Packed fp4 operands (docs/SPEC.md §1.1: uint8 at op boundaries); returns K.
int64_t check_operands(const Tensor& a, const Tensor& b) {
  lowbit::check_packed_fp4(kOp, "a", a, 2);
  lowbit::check_packed_fp4(kOp, "b", b, 2);
  const int64_t N = b.size(0), K = 2 * a.size(1);
  LOWBIT_CHECK(K % 32 == 0, kOp, ": argument 'a': Expected k to be divisible by 32, but got a shape: ",
               shape_str(a), ", k: ", K, ".");
  LOWBIT_CHECK_ARG(b.size(1) == a.size(1), kOp, "b",
                   str("shape [N, ", a.size(1), "] (K/2 bytes per row, K = ", K, " from 'a')"),
                   str("shape ", shape_str(b)));
  LOWBIT_CHECK_ARG(N % 32 == 0, kOp, "b", "a row count N divisible by 32", str("shape ", shape_str(b), ", N: ", N));
  return K;
}

// Optional per-column bias: [N], the output's dtype and device, contiguous.
void check_bias(const std::optional<Tensor>& bias, const Tensor& out, const Tensor& a, int64_t N) {
  if (!bias.has_value()) return;
  lowbit::check_contiguous_on(kOp, "bias", *bias, "a", a, {out.scalar_type()});
  lowbit::check_shape(kOp, "bias", *bias, {N});
}

}  // namespace

GroupProblem validate_fp4_group_mm(Tensor out, Tensor a, Tensor b, Tensor sa, Tensor sb, Tensor alphas,
                                   Tensor problem_sizes, Tensor expert_offsets, Tensor sf_offsets) {
  // ue4m3 scale bytes (float8_e4m3fn, or raw uint8), one per 16 e2m1 values.
  const auto s = lowbit::check_fp4_group_gemm(
      kGroupOp, {out, a, b, sa, sb, problem_sizes, expert_offsets, sf_offsets},
      {16, {ScalarType::Float8_e4m3fn, ScalarType::Byte}});
  lowbit::check_contiguous_on(kGroupOp, "alphas", alphas, "a", a, {ScalarType::Float});
  lowbit::check_shape(kGroupOp, "alphas", alphas, {s.E});
  return GroupProblem{out, a, b, sa, sb, alphas, problem_sizes, expert_offsets, sf_offsets,
                      s.E, s.M, s.N, s.K, s.R, {}};
}

Problem validate_scaled_fp4_mm(Tensor out, Tensor a, Tensor b, Tensor sa, Tensor sb, Tensor alpha,
                               std::optional<Tensor> bias) {
  lowbit::check_defined(kOp, "a", a);
  lowbit::check_cpu_or_cuda(kOp, "a", a);
  lowbit::check_defined_on(kOp, {{"out", &out}, {"b", &b}, {"alpha", &alpha}}, "a", a);
  const int64_t K = check_operands(a, b);
  const int64_t M = a.size(0), N = b.size(0);
  check_scale("block_scale_a", "scale_a", sa, M, K, a);
  check_scale("block_scale_b", "scale_b", sb, N, K, a);
  lowbit::check_dtype(kOp, "alpha", alpha, {ScalarType::Float});
  lowbit::check_numel(kOp, "alpha", alpha, 1);
  lowbit::check_dtype(kOp, "out", out, {ScalarType::Half, ScalarType::BFloat16});
  lowbit::check_shape(kOp, "out", out, {M, N});
  lowbit::check_contiguous(kOp, "out", out);
  check_bias(bias, out, a, N);
  // The SM90 kernels load b, the scales and the wgmma tiles (TMA, bulk copies)
  // 16 bytes at a time and store out rows that way; torch's allocations are
  // aligned, only a view at an odd offset is not.
  lowbit::check_base_aligned(kOp, 16, {{"a", &a}, {"b", &b}, {"block_scale_a", &sa}, {"block_scale_b", &sb},
                                       {"out", &out}});
  return Problem{out, a, b, sa, sb, alpha, bias, M, N, K, false, std::string(), -1};
}

Problem validate_scaled_fp4_mm_with_kernel(Tensor out, Tensor a, Tensor b, Tensor sa, Tensor sb,
                                           Tensor alpha, std::optional<Tensor> bias, bool batch_invariant,
                                           std::optional<std::string> kernel, int64_t splits) {
  Problem p = validate_scaled_fp4_mm(out, a, b, sa, sb, alpha, bias);
  LOWBIT_CHECK_ARG(splits == -1 || (splits >= 1 && splits <= 64), kOp, "splits", "-1 (heuristic) or 1 .. 64",
                   splits);
  LOWBIT_CHECK_ARG(!(batch_invariant && splits > 1), kOp, "splits", "-1 or 1 when batch_invariant is set",
                   splits);
  LOWBIT_CHECK_ARG(!(batch_invariant && kernel.has_value()), kOp, "kernel",
                   "None when batch_invariant is set (the mode picks its own kernels)", *kernel);
  p.batch_invariant = batch_invariant;
  p.kernel = kernel.value_or(std::string());
  p.splits = splits;
  return p;
}

void check_kernel_name(const std::string& name, const std::vector<std::string>& names, const char* target,
                       const char* op) {
  lowbit::check_kernel_name(op, name, names, target);
}

}  // namespace nvfp4_mm
