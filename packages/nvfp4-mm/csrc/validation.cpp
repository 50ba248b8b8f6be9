// Argument validation of every lowbit_nvfp4_mm op (docs/SPEC.md §2.2,
// docs/SPEC-MOE.md §5.2): each check names the argument, what was expected
// and what came. cutlass_fp4_group_mm's device metadata (problem_sizes,
// expert_offsets, sf_offsets) is checked for dtype, shape and device only:
// its values would need a host synchronisation; the kernels skip an expert
// whose values break the contract instead (docs/SPEC-MOE.md §5.0.3).
#include "nvfp4_mm.h"

#include <lowbit/torch_utils.h>

#include <array>
#include <cstdint>
#include <tuple>

namespace nvfp4_mm {
namespace {

using lowbit::ScalarType;
using lowbit::round_up;
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
  const int64_t rm = round_up<int64_t>(rows, 128);
  const int64_t rk = round_up<int64_t>(K / 16, 4);
  LOWBIT_CHECK(s.dim() == 2 && s.size(0) == rm && s.size(1) == rk, kOp, ": argument '", arg, "': ", short_name,
               " must be padded and swizzled to a shape (", rm, "x", rk, "), but got a shape ", shape_str(s));
  lowbit::check_contiguous(kOp, arg, s);
}

// Packed fp4 operands (docs/SPEC.md §1.1: uint8 at op boundaries); returns K.
int64_t check_operands(const Tensor& a, const Tensor& b) {
  lowbit::check_dtype(kOp, "a", a, {ScalarType::Byte});
  lowbit::check_dtype(kOp, "b", b, {ScalarType::Byte});
  lowbit::check_dim(kOp, "a", a, 2);
  lowbit::check_dim(kOp, "b", b, 2);
  lowbit::check_contiguous(kOp, "a", a);
  lowbit::check_contiguous(kOp, "b", b);
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
  lowbit::check_defined(kOp, "bias", *bias);
  lowbit::check_same_device(kOp, "bias", *bias, "a", a);
  lowbit::check_dtype(kOp, "bias", *bias, {out.scalar_type()});
  lowbit::check_shape(kOp, "bias", *bias, {N});
  lowbit::check_contiguous(kOp, "bias", *bias);
}

// ------------------------------------------------ cutlass_fp4_group_mm

// The GPU kernels load a, b and out in 16-byte and the scale tiles in
// 128-byte pieces from the tensors' base addresses (docs/SPEC-MOE.md §5.2).
void check_aligned(const char* arg, const Tensor& t, int64_t bytes) {
  if (!t.is_cuda() || t.numel() == 0) return;
  const auto addr = reinterpret_cast<uintptr_t>(t.data_ptr());
  LOWBIT_CHECK_ARG(addr % bytes == 0, kGroupOp, arg, str("a base address aligned to ", bytes, " bytes"),
                   str("address 0x", std::hex, addr));
}

// int32 metadata: [E] (rank 1) or [E, 3] (problem_sizes), contiguous.
void check_metadata(const char* arg, const Tensor& t, std::initializer_list<int64_t> shape, const Tensor& a) {
  lowbit::check_defined(kGroupOp, arg, t);
  lowbit::check_same_device(kGroupOp, arg, t, "a", a);
  lowbit::check_dtype(kGroupOp, arg, t, {ScalarType::Int});
  lowbit::check_shape(kGroupOp, arg, t, shape);
  lowbit::check_contiguous(kGroupOp, arg, t);
}

// a [M, K/2] and b [E, N, K/2] packed e2m1; returns (E, N, K).
std::array<int64_t, 3> check_group_operands(const Tensor& a, const Tensor& b) {
  lowbit::check_dtype(kGroupOp, "a", a, {ScalarType::Byte});
  lowbit::check_dtype(kGroupOp, "b", b, {ScalarType::Byte});
  lowbit::check_dim(kGroupOp, "a", a, 2);
  lowbit::check_dim(kGroupOp, "b", b, 3);
  lowbit::check_contiguous(kGroupOp, "a", a);
  lowbit::check_contiguous(kGroupOp, "b", b);
  const int64_t E = b.size(0), N = b.size(1), K = 2 * b.size(2);
  LOWBIT_CHECK_ARG(a.size(1) == b.size(2), kGroupOp, "a",
                   str("shape [M, ", b.size(2), "] (K/2 bytes per row, K = ", K, " from 'b')"),
                   str("shape ", shape_str(a)));
  LOWBIT_CHECK_ARG(K % 32 == 0, kGroupOp, "b", "K = 2 * b.size(2) divisible by 32",
                   str("shape ", shape_str(b), ", K: ", K));
  LOWBIT_CHECK_ARG(N % 32 == 0, kGroupOp, "b", "N = b.size(1) divisible by 32",
                   str("shape ", shape_str(b), ", N: ", N));
  LOWBIT_CHECK_ARG(E < 65535, kGroupOp, "b", "fewer than 65535 experts (b.size(0))", E);
  return {E, N, K};
}

// a_blockscale [R, Kp] (any R: the experts' regions lie inside it) and
// b_blockscales [E, Np, Kp], ue4m3 bytes (float8_e4m3fn, or raw uint8).
int64_t check_group_scales(const Tensor& sa, const Tensor& sb, int64_t E, int64_t N, int64_t K, const Tensor& a) {
  const int64_t Kp = round_up<int64_t>(K / 16, 4), Np = round_up<int64_t>(N, 128);
  for (auto [name, t] : {std::pair<const char*, const Tensor*>{"a_blockscale", &sa}, {"b_blockscales", &sb}}) {
    lowbit::check_defined(kGroupOp, name, *t);
    lowbit::check_same_device(kGroupOp, name, *t, "a", a);
    lowbit::check_dtype(kGroupOp, name, *t, {ScalarType::Float8_e4m3fn, ScalarType::Byte});
    lowbit::check_contiguous(kGroupOp, name, *t);
  }
  LOWBIT_CHECK_ARG(sa.dim() == 2 && sa.size(1) == Kp, kGroupOp, "a_blockscale",
                   str("shape [R, ", Kp, "] (R scale rows of round_up(K/16, 4) bytes, K = ", K, ")"),
                   str("shape ", shape_str(sa)));
  lowbit::check_shape(kGroupOp, "b_blockscales", sb, {E, Np, Kp});
  return sa.size(0);
}

}  // namespace

GroupProblem validate_fp4_group_mm(Tensor out, Tensor a, Tensor b, Tensor sa, Tensor sb, Tensor alphas,
                                   Tensor problem_sizes, Tensor expert_offsets, Tensor sf_offsets) {
  lowbit::check_defined(kGroupOp, "a", a);
  lowbit::check_cpu_or_cuda(kGroupOp, "a", a);
  for (auto [name, t] : {std::pair<const char*, const Tensor*>{"out", &out}, {"b", &b}, {"alphas", &alphas}}) {
    lowbit::check_defined(kGroupOp, name, *t);
    lowbit::check_same_device(kGroupOp, name, *t, "a", a);
  }
  const auto [E, N, K] = check_group_operands(a, b);
  const int64_t M = a.size(0);
  const int64_t R = check_group_scales(sa, sb, E, N, K, a);
  lowbit::check_dtype(kGroupOp, "alphas", alphas, {ScalarType::Float});
  lowbit::check_shape(kGroupOp, "alphas", alphas, {E});
  lowbit::check_contiguous(kGroupOp, "alphas", alphas);
  check_metadata("problem_sizes", problem_sizes, {E, 3}, a);
  check_metadata("expert_offsets", expert_offsets, {E}, a);
  check_metadata("sf_offsets", sf_offsets, {E}, a);
  lowbit::check_dtype(kGroupOp, "out", out, {ScalarType::Half, ScalarType::BFloat16});
  lowbit::check_shape(kGroupOp, "out", out, {M, N});
  lowbit::check_contiguous(kGroupOp, "out", out);
  LOWBIT_CHECK_ARG(E > 0 || M == 0, kGroupOp, "b", "at least one expert when a has rows", str("E = 0, M = ", M));
  for (auto [name, t, bytes] : {std::tuple<const char*, const Tensor*, int64_t>{"a", &a, 16}, {"b", &b, 16},
                                {"out", &out, 16}, {"a_blockscale", &sa, 128}, {"b_blockscales", &sb, 128}})
    check_aligned(name, *t, bytes);
  return GroupProblem{out, a, b, sa, sb, alphas, problem_sizes, expert_offsets, sf_offsets, E, M, N, K, R, {}};
}

Problem validate_scaled_fp4_mm(Tensor out, Tensor a, Tensor b, Tensor sa, Tensor sb, Tensor alpha,
                               std::optional<Tensor> bias) {
  lowbit::check_defined(kOp, "a", a);
  lowbit::check_cpu_or_cuda(kOp, "a", a);
  for (auto [name, t] : {std::pair<const char*, const Tensor*>{"out", &out}, {"b", &b}, {"alpha", &alpha}}) {
    lowbit::check_defined(kOp, name, *t);
    lowbit::check_same_device(kOp, name, *t, "a", a);
  }
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
  for (const auto& n : names)
    if (n == name) return;
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  lowbit::fail(str(op, ": argument 'kernel': expected one of the ", target, " kernels (", list, "), got '", name,
                   "'"));
}

}  // namespace nvfp4_mm
