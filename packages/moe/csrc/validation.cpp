// Argument validation of every lowbit-moe op (docs/SPEC-MOE.md §5.9.4,
// §5.0.3): device, dtype, rank, shape and contiguity of every argument, and
// the cross-argument sizes. Device-resident values (ids, offsets) are not
// read here: the kernels handle any value (invalid ids become orphan routes).
// Messages: "<op>: argument '<arg>': expected <x>, got <y>".
#include <limits>

#include <lowbit/arg_checks.h>

#include "moe.h"

namespace lowbit::moe {
namespace {

constexpr const char* kData = "get_cutlass_moe_mm_data";
constexpr const char* kSizes = "get_cutlass_moe_mm_problem_sizes_from_expert_offsets";
constexpr const char* kShuffle = "shuffle_rows";
constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();

// An int32 output (or optional input) of exactly `shape`, on `ref`'s device.
int32_t* int32_buffer(const char* op, const char* arg, const Tensor& t, const char* ref_arg,
                      const Tensor& ref, std::initializer_list<int64_t> shape) {
  check_int32_metadata(op, arg, t, shape, ref_arg, ref);
  return static_cast<int32_t*>(t.data_ptr());
}

void check_gemm_dim(const char* op, const char* arg, int64_t v) {
  LOWBIT_CHECK_ARG(v > 0 && v <= kInt32Max, op, arg, "a value in [1, 2^31)", v);
}

// An index tensor (ids, map, offsets): int32 or int64, contiguous; returns
// whether it is int64.
bool check_index(const char* op, const char* arg, const Tensor& t) {
  check_defined(op, arg, t);
  check_cpu_or_cuda(op, arg, t);
  check_dtype(op, arg, t, {ScalarType::Int, ScalarType::Long});
  check_contiguous(op, arg, t);
  return t.scalar_type() == ScalarType::Long;
}

// A gather's tensors (input rows picked through a map into the output): a
// 2-D contiguous input, a 1-D int32/int64 map and a contiguous output of the
// input's dtype, all on the input's device (shapes: the caller). Returns
// whether the map is int64.
bool check_gather(const char* op, const char* in_arg, const Tensor& in, const char* map_arg,
                  const Tensor& map, const char* out_arg, const Tensor& out) {
  check_dim(op, in_arg, in, 2);
  check_contiguous(op, in_arg, in);
  const bool map64 = check_index(op, map_arg, map);
  check_same_device(op, map_arg, map, in_arg, in);
  check_dim(op, map_arg, map, 1);
  check_defined(op, out_arg, out);
  check_same_device(op, out_arg, out, in_arg, in);
  LOWBIT_CHECK_ARG(out.scalar_type() == in.scalar_type(), op, out_arg,
                   str("dtype ", dtype_of(in), " (the dtype of '", in_arg, "')"), dtype_of(out));
  check_contiguous(op, out_arg, out);
  return map64;
}

}  // namespace

MoeDataProblem validate_moe_data(const Tensor& ids, const Tensor& expert_offsets,
                                 const Tensor& ps1, const Tensor& ps2, const Tensor& in_perm,
                                 const Tensor& out_perm, int64_t num_experts, int64_t n,
                                 int64_t k, const Tensor* blockscale_offsets, bool is_gated,
                                 const Tensor* sorted_expert_ids) {
  MoeDataProblem p;
  p.ids64 = check_index(kData, "topk_ids", ids);
  check_dim(kData, "topk_ids", ids, 2);
  p.routes = ids.numel();
  p.topk = ids.size(1);
  LOWBIT_CHECK_ARG(p.routes <= kInt32Max, kData, "topk_ids", "fewer than 2^31 routes (m * topk)",
                   str(p.routes, " routes (shape ", shape_str(ids), ")"));
  LOWBIT_CHECK_ARG(num_experts >= 0 && num_experts <= kMaxExperts, kData, "num_experts",
                   str("a value in [0, ", kMaxExperts, "]"), num_experts);
  LOWBIT_CHECK_ARG(num_experts > 0 || p.routes == 0, kData, "num_experts",
                   "at least 1 when topk_ids has routes", str(num_experts, " with ", p.routes,
                                                              " routes"));
  check_gemm_dim(kData, "n", n);
  check_gemm_dim(kData, "k", k);
  const int64_t E = num_experts;
  p.num_experts = E;
  p.n = n;
  p.k = k;
  p.n1 = is_gated ? 2 * n : n;
  check_gemm_dim(kData, "n", p.n1);  // 2n must fit the int32 problem sizes too
  p.expert_offsets = int32_buffer(kData, "expert_offsets", expert_offsets, "topk_ids", ids, {E + 1});
  p.problem_sizes1 = int32_buffer(kData, "problem_sizes1", ps1, "topk_ids", ids, {E, 3});
  p.problem_sizes2 = int32_buffer(kData, "problem_sizes2", ps2, "topk_ids", ids, {E, 3});
  p.input_permutation =
      int32_buffer(kData, "input_permutation", in_perm, "topk_ids", ids, {p.routes});
  p.output_permutation =
      int32_buffer(kData, "output_permutation", out_perm, "topk_ids", ids, {p.routes});
  if (blockscale_offsets) {
    p.blockscale_offsets = int32_buffer(kData, "blockscale_offsets", *blockscale_offsets,
                                        "topk_ids", ids, {E + 1});
  }
  if (sorted_expert_ids) {
    p.sorted_expert_ids = int32_buffer(kData, "sorted_expert_ids", *sorted_expert_ids,
                                       "topk_ids", ids, {p.routes});
  }
  p.swap = !blockscale_offsets && p.routes <= 64;
  p.ids = ids.data_ptr();
  return p;
}

ProblemSizesProblem validate_problem_sizes(const Tensor& off, const Tensor& ps1,
                                           const Tensor& ps2, int64_t n, int64_t k,
                                           bool swap_ab) {
  ProblemSizesProblem p;
  p.offsets64 = check_index(kSizes, "expert_first_token_offset", off);
  LOWBIT_CHECK_ARG(off.dim() == 1 && off.size(0) >= 1, kSizes, "expert_first_token_offset",
                   "a 1-D tensor [E+1]", str("shape ", shape_str(off)));
  check_gemm_dim(kSizes, "n", n);
  check_gemm_dim(kSizes, "k", k);
  check_gemm_dim(kSizes, "n", 2 * n);  // GEMM1 N = 2n (gated)
  const int64_t E = off.size(0) - 1;
  p.num_experts = E;
  p.n = n;
  p.k = k;
  p.swap_ab = swap_ab;
  const char* ref = "expert_first_token_offset";
  p.problem_sizes1 = int32_buffer(kSizes, "problem_sizes1", ps1, ref, off, {E, 3});
  p.problem_sizes2 = int32_buffer(kSizes, "problem_sizes2", ps2, ref, off, {E, 3});
  p.offsets = off.data_ptr();
  return p;
}

ShuffleProblem validate_shuffle_rows(const Tensor& in, const Tensor& map, const Tensor& out) {
  ShuffleProblem p;
  check_defined(kShuffle, "input_tensor", in);
  check_cpu_or_cuda(kShuffle, "input_tensor", in);
  check_dtype(kShuffle, "input_tensor", in,
              {ScalarType::Float, ScalarType::Half, ScalarType::BFloat16,
               ScalarType::Float8_e4m3fn, ScalarType::Float8_e5m2, ScalarType::Byte,
               ScalarType::Char, ScalarType::Int});
  p.map64 = check_gather(kShuffle, "input_tensor", in, "dst2src_map", map, "output_tensor", out);
  check_shape(kShuffle, "output_tensor", out, {map.size(0), in.size(1)});
  p.in = static_cast<const uint8_t*>(in.data_ptr());
  p.out = static_cast<uint8_t*>(out.data_ptr());
  p.map = map.data_ptr();
  p.src_rows = in.size(0);
  p.dst_rows = map.size(0);
  p.row_bytes = in.size(1) * in.element_size();
  return p;
}

namespace {

constexpr const char* kCombine = "moe_combine";

int elem_type(const Tensor& t) {
  const ScalarType s = t.scalar_type();
  return s == ScalarType::Float ? 0 : s == ScalarType::Half ? 1 : 2;
}

void check_activation(const char* op, const char* arg, const Tensor& t) {
  check_defined(op, arg, t);
  check_cpu_or_cuda(op, arg, t);
  check_dtype(op, arg, t, {ScalarType::Float, ScalarType::Half, ScalarType::BFloat16});
}

}  // namespace

CombineProblem validate_combine(const Tensor& in, const Tensor& perm, const Tensor* w,
                                const Tensor& out) {
  CombineProblem p;
  check_activation(kCombine, "input", in);
  p.perm64 = check_gather(kCombine, "input", in, "output_permutation", perm, "output", out);
  check_shape(kCombine, "output", out, {-1, in.size(1)});
  p.m = out.size(0);
  const int64_t routes = perm.numel();
  LOWBIT_CHECK_ARG(p.m > 0 ? routes % p.m == 0 : routes == 0, kCombine, "output_permutation",
                   str("a multiple of the output's ", p.m, " rows (m * topk routes)"),
                   str(routes, " entries"));
  p.topk = p.m > 0 ? routes / p.m : 0;
  if (w) {
    check_contiguous_on(kCombine, "topk_weights", *w, "input", in,
                        {ScalarType::Float, ScalarType::Half, ScalarType::BFloat16});
    check_shape(kCombine, "topk_weights", *w, {p.m, p.topk});
    p.weights = w->data_ptr();
    p.w_type = elem_type(*w);
  }
  p.in = in.data_ptr();
  p.in_type = elem_type(in);
  p.perm = perm.data_ptr();
  p.out = out.data_ptr();
  p.rows = in.size(0);
  p.cols = in.size(1);
  return p;
}

Fp8QuantProblem validate_fp8_quant(const char* op, bool gated, const Tensor& result,
                                   const Tensor& input, const Tensor& scale,
                                   const Tensor* scale_ub) {
  Fp8QuantProblem p;
  check_activation(op, "input", input);
  check_min_dim(op, "input", input, 1);
  check_contiguous(op, "input", input);
  const int64_t width = input.size(input.dim() - 1);
  if (gated) {
    LOWBIT_CHECK_ARG(width % 2 == 0, op, "input", "an even last dimension (gate || up)",
                     str("shape ", shape_str(input)));
  }
  p.cols = gated ? width / 2 : width;
  LOWBIT_CHECK_ARG(p.cols <= kInt32Max, op, "input", "rows of fewer than 2^31 values",
                   str("shape ", shape_str(input)));
  p.rows = width == 0 ? 0 : input.numel() / width;
  check_defined(op, "result", result);
  check_same_device(op, "result", result, "input", input);
  check_dtype(op, "result", result, {ScalarType::Float8_e4m3fn});
  // At least the input's rows (vLLM's wrapper may pad the token dimension;
  // rows past the input's are not written).
  LOWBIT_CHECK_ARG(result.dim() == input.dim() && result.size(result.dim() - 1) == p.cols &&
                       result.numel() >= p.rows * p.cols,
                   op, "result",
                   str("a ", input.dim(), "-D tensor with last dimension ", p.cols, " and at least ",
                       p.rows, " rows"),
                   str("shape ", shape_str(result)));
  check_contiguous(op, "result", result);
  check_contiguous_on(op, "scale", scale, "input", input, {ScalarType::Float});
  LOWBIT_CHECK_ARG(scale.numel() >= p.rows && scale.dim() <= 2, op, "scale",
                   str("at least ", p.rows, " element(s) ([rows] or [rows, 1])"),
                   str("shape ", shape_str(scale)));
  if (scale_ub) {
    check_same_device(op, "scale_ub", *scale_ub, "input", input);
    check_dtype(op, "scale_ub", *scale_ub, {ScalarType::Float});
    check_numel(op, "scale_ub", *scale_ub, 1);
    p.scale_ub = static_cast<const float*>(scale_ub->data_ptr());
  }
  p.in_type = elem_type(input);
  p.gated = gated;
  p.in = input.data_ptr();
  p.out = static_cast<uint8_t*>(result.data_ptr());
  p.scale = static_cast<float*>(scale.data_ptr());
  return p;
}

}  // namespace lowbit::moe
