// Argument validation of every lowbit_w4a8_mm op (SPEC §1.5, §2.3): each
// check names the argument, what was expected and what was given, and runs
// before any output is allocated or kernel launched.
#include "w4a8_mm.h"

#include <lowbit/arg_checks.h>

#include <cstdint>

namespace lowbit::w4a8 {
namespace {

constexpr const char* kMm = "cutlass_w4a8_mm";
constexpr const char* kPack = "cutlass_pack_scale_fp8";
constexpr const char* kReorder = "cutlass_encode_and_reorder_int4b";
constexpr const char* kGroupedReorder = "cutlass_encode_and_reorder_int4b_grouped";
constexpr const char* kMoe = "cutlass_w4a8_moe_mm";

// B's int32 words must be dense: the column-major view of a contiguous
// [N, K/8] (SPEC §1.5) or the contiguous tensor itself. Both hold the same
// bytes; like vLLM, the ops read them as B.size(1) rows of 8 * B.size(0)
// nibbles whatever the strides.
void check_dense_words(const char* op, const char* arg, const Tensor& t) {
  const int64_t r = t.size(0), c = t.size(1);
  const bool column_major = (r <= 1 || t.stride(0) == 1) && (c <= 1 || t.stride(1) == r);
  const bool row_major = (c <= 1 || t.stride(1) == 1) && (r <= 1 || t.stride(0) == c);
  LOWBIT_CHECK_ARG(column_major || row_major, op, arg,
                   str("column-major strides (1, ", r, ") (the transpose of a contiguous [N, K/8] "
                       "tensor) or row-major contiguous strides (", c, ", 1)"),
                   str("strides (", t.stride(0), ", ", t.stride(1), ") for shape ",
                       shape_str(t)));
}

// A [M, K] fp8 row-major; B [K/8, N] int32 words; K, N multiples of 128.
void check_operands(const Tensor& A, const Tensor& B) {
  check_defined(kMm, "A", A);
  check_cpu_or_cuda(kMm, "A", A);
  check_dtype(kMm, "A", A, {ScalarType::Float8_e4m3fn});
  check_dim(kMm, "A", A, 2);
  check_contiguous(kMm, "A", A);
  const int64_t K = A.size(1);
  check_same_device(kMm, "B", B, "A", A);
  check_dtype(kMm, "B", B, {ScalarType::Int});
  check_dim(kMm, "B", B, 2);
  LOWBIT_CHECK_ARG(B.size(0) * 8 == K, kMm, "B",
                   str("shape [K/8, N] = [", K / 8, ", N] (K = A.size(1) = ", K, ")"),
                   str("shape ", shape_str(B)));
  check_dense_words(kMm, "B", B);
  const int64_t N = B.size(1);
  LOWBIT_CHECK(K > 0 && K % 128 == 0, kMm, ": argument 'A': K (= A.size(1)) must be a positive "
               "multiple of 128, got K = ", K);
  LOWBIT_CHECK(N > 0 && N % 128 == 0, kMm, ": argument 'B': N (= B.size(1)) must be a positive "
               "multiple of 128, got N = ", N);
}

void check_group_scales(const Tensor& gs, const Tensor& A, int64_t groups, int64_t N) {
  check_contiguous_on(kMm, "group_scales", gs, "A", A, {ScalarType::Float8_e4m3fn});
  LOWBIT_CHECK_ARG(gs.numel() == groups * N * 8, kMm, "group_scales",
                   str(groups * N * 8, " elements (cutlass_pack_scale_fp8 of [K/group_size, N] = [",
                       groups, ", ", N, "] scales: 8 bytes each)"),
                   str(gs.numel(), " elements (shape ", shape_str(gs), ")"));
}

// fp32, contiguous, one element (a scalar) or one per row/column.
void check_scale_vector(const char* arg, const Tensor& t, const Tensor& A) {
  check_contiguous_on(kMm, arg, t, "A", A, {ScalarType::Float});
}

void check_channel_scales(const Tensor& ch, const Tensor& A, int64_t N) {
  check_scale_vector("channel_scales", ch, A);
  const int64_t n = ch.numel();
  LOWBIT_CHECK_ARG(ch.dim() <= 1 && (n == N || n == 1), kMm, "channel_scales",
                   str("shape [", N, "] or one element (scalar)"), str("shape ", shape_str(ch)));
}

void check_token_scales(const Tensor& tok, const Tensor& A, int64_t M) {
  check_scale_vector("token_scales", tok, A);
  const bool ok = tok.numel() == 1
                      ? tok.dim() <= 2
                      : ((tok.dim() == 1 && tok.size(0) == M) ||
                         (tok.dim() == 2 && tok.size(0) == M && tok.size(1) == 1));
  LOWBIT_CHECK_ARG(ok, kMm, "token_scales", str("shape [", M, "], [", M, ", 1] or one element (scalar)"),
                   str("shape ", shape_str(tok)));
}

// A named schedule must tile N exactly (the heuristic only picks ones that do).
int check_schedule(const std::optional<std::string>& name, int64_t N) {
  if (!name.has_value()) return -1;
  const int index = schedule_index(kMm, *name);
  const auto& s = schedules()[index];
  LOWBIT_CHECK(N % s.tile_n == 0, kMm, ": argument 'maybe_schedule': schedule '", *name,
               "' tiles N by ", s.tile_n, " and needs N % ", s.tile_n, " == 0, got N = ", N,
               "; pick a schedule with a 128-row tile");
  return index;
}

// ------------------------------------------------ cutlass_w4a8_moe_mm
// (docs/SPEC-MOE.md §5.6; every rule of its validation table.)

// A tensor on a's device with one of `dtypes`, contiguous.
void check_moe_tensor(const char* arg, const Tensor& t, const Tensor& a,
                      std::initializer_list<ScalarType> dtypes) {
  check_contiguous_on(kMoe, arg, t, "a_tensors", a, dtypes);
}

// a [M, K] fp8, b [E, N, K/8] int32, out [M, N] bf16; K % 128, N % 128.
void check_moe_operands(MoeMmProblem& p, const Tensor& out, const Tensor& a, const Tensor& b) {
  check_defined(kMoe, "a_tensors", a);
  check_cpu_or_cuda(kMoe, "a_tensors", a);
  check_moe_tensor("a_tensors", a, a, {ScalarType::Float8_e4m3fn});
  check_dim(kMoe, "a_tensors", a, 2);
  check_moe_tensor("b_tensors", b, a, {ScalarType::Int});
  check_dim(kMoe, "b_tensors", b, 3);
  p.M = a.size(0);
  p.K = a.size(1);
  p.E = b.size(0);
  p.N = b.size(1);
  LOWBIT_CHECK_ARG(b.size(2) * 8 == p.K, kMoe, "b_tensors",
                   str("shape [E, N, K/8] with K/8 = ", p.K / 8, " (K = a_tensors.size(1) = ", p.K, ")"),
                   str("shape ", shape_str(b)));
  LOWBIT_CHECK(p.K > 0 && p.K % 128 == 0, kMoe, ": argument 'a_tensors': K (= a_tensors.size(1)) must "
               "be a positive multiple of 128, got K = ", p.K);
  LOWBIT_CHECK(p.N > 0 && p.N % 128 == 0, kMoe, ": argument 'b_tensors': N (= b_tensors.size(1)) must "
               "be a positive multiple of 128 (whole 128-row weight tiles), got N = ", p.N);
  LOWBIT_CHECK(p.E > 0 || p.M == 0, kMoe, ": argument 'b_tensors': E = b_tensors.size(0) = 0 experts "
               "is only valid with no rows, got M = a_tensors.size(0) = ", p.M);
  LOWBIT_CHECK(p.M <= INT32_MAX && p.N * 8 <= INT32_MAX && p.K <= INT32_MAX, kMoe,
               ": argument 'a_tensors': M, N and K must fit CUTLASS's int32 problem sizes, got M = ", p.M,
               ", N = ", p.N, ", K = ", p.K);
  check_moe_tensor("out_tensors", out, a, {ScalarType::BFloat16});
  check_shape(kMoe, "out_tensors", out, {p.M, p.N});
}

// a_scales [M] or [M, 1]; b_scales [E, N] or [E, N, 1]; fp32 vectors.
void check_moe_scales(const MoeMmProblem& p, const Tensor& a, const Tensor& as, const Tensor& bs) {
  check_moe_tensor("a_scales", as, a, {ScalarType::Float});
  const bool tok_ok = (as.dim() == 1 && as.size(0) == p.M) ||
                      (as.dim() == 2 && as.size(0) == p.M && as.size(1) == 1);
  LOWBIT_CHECK_ARG(tok_ok, kMoe, "a_scales", str("shape [", p.M, "] or [", p.M, ", 1] (one per row)"),
                   str("shape ", shape_str(as)));
  check_moe_tensor("b_scales", bs, a, {ScalarType::Float});
  const bool ch_ok = (bs.dim() == 2 || (bs.dim() == 3 && bs.size(2) == 1)) && bs.size(0) == p.E &&
                     bs.size(1) == p.N;
  LOWBIT_CHECK_ARG(ch_ok, kMoe, "b_scales",
                   str("shape [", p.E, ", ", p.N, "] or [", p.E, ", ", p.N, ", 1] (one per expert and channel)"),
                   str("shape ", shape_str(bs)));
}

void check_moe_group_scales(const MoeMmProblem& p, const Tensor& a, const Tensor& gs) {
  const int64_t g = p.group_size;
  LOWBIT_CHECK(g > 0 && p.K % g == 0 && (g == p.K || g % 128 == 0), kMoe,
               ": argument 'b_group_size': expected a divisor of K (= ", p.K,
               ") that is K or a multiple of 128, got ", g);
  check_moe_tensor("b_group_scales", gs, a, {ScalarType::Float8_e4m3fn});
  const int64_t want = p.E * (p.K / g) * p.N * 8;
  LOWBIT_CHECK_ARG(gs.numel() == want, kMoe, "b_group_scales",
                   str(want, " elements (cutlass_pack_scale_fp8 of [E, K/group, N] = [", p.E, ", ",
                       p.K / g, ", ", p.N, "] scales: 8 bytes each)"),
                   str(gs.numel(), " elements (shape ", shape_str(gs), ")"));
}

// Per-expert metadata: shapes and dtypes only (contents live on the device).
void check_moe_metadata(const MoeMmProblem& p, const Tensor& a, const Tensor& offsets,
                        const Tensor& sizes, const Tensor& a_str, const Tensor& b_str,
                        const Tensor& c_str, const Tensor& s_str) {
  check_moe_tensor("expert_offsets", offsets, a, {ScalarType::Long});
  LOWBIT_CHECK_ARG(offsets.dim() == 1 && offsets.size(0) == p.E, kMoe, "expert_offsets",
                   str("shape [", p.E, "] (E = b_tensors.size(0): one first row per expert)"),
                   str("shape ", shape_str(offsets)));
  check_int32_metadata(kMoe, "problem_sizes", sizes, {p.E, 3}, "a_tensors", a);
  check_moe_tensor("a_strides", a_str, a, {ScalarType::Long});
  check_shape(kMoe, "a_strides", a_str, {p.E});
  check_int32_metadata(kMoe, "b_strides", b_str, {p.E, 3}, "a_tensors", a);
  check_moe_tensor("c_strides", c_str, a, {ScalarType::Long});
  check_shape(kMoe, "c_strides", c_str, {p.E});
  check_moe_tensor("group_scale_strides", s_str, a, {ScalarType::Long});
  check_shape(kMoe, "group_scale_strides", s_str, {p.E, 2});
}

}  // namespace

ReorderProblem validate_encode_and_reorder_int4b(const Tensor& B) {
  check_defined(kReorder, "B", B);
  check_cpu_or_cuda(kReorder, "B", B);
  check_dtype(kReorder, "B", B, {ScalarType::Int});
  check_dim(kReorder, "B", B, 2);
  ReorderProblem p;
  p.K = B.size(0) * 8;
  p.N = B.size(1);
  LOWBIT_CHECK(p.N % 16 == 0, kReorder, ": argument 'B': N (= B.size(1)) must be a multiple of 16 "
               "(the reorder atom is 16 x 32), got N = ", p.N);
  LOWBIT_CHECK(p.K % 32 == 0, kReorder, ": argument 'B': K (= 8 * B.size(0)) must be a multiple of "
               "32 (the reorder atom is 16 x 32), got K = ", p.K, " (B.size(0) = ", B.size(0), ")");
  check_dense_words(kReorder, "B", B);
  return p;
}

PackScaleProblem validate_pack_scale_fp8(const Tensor& scales) {
  check_defined(kPack, "scales", scales);
  check_cpu_or_cuda(kPack, "scales", scales);
  check_dtype(kPack, "scales", scales, {ScalarType::Float8_e4m3fn});
  check_contiguous(kPack, "scales", scales);
  return PackScaleProblem{scales.numel()};
}

MmProblem validate_w4a8_mm(const Tensor& A, const Tensor& B, const Tensor& group_scales,
                           int64_t group_size, const Tensor& channel_scales,
                           const Tensor& token_scales, std::optional<ScalarType> out_type,
                           const std::optional<std::string>& maybe_schedule) {
  check_operands(A, B);
  MmProblem p;
  p.M = A.size(0);
  p.K = A.size(1);
  p.N = B.size(1);
  LOWBIT_CHECK(group_size == 128 || group_size == p.K, kMm, ": argument 'group_size': expected 128 "
               "or K (= ", p.K, ", one scale per output channel), got ", group_size);
  p.group_size = group_size;
  check_group_scales(group_scales, A, p.K / group_size, p.N);
  check_channel_scales(channel_scales, A, p.N);
  check_token_scales(token_scales, A, p.M);
  const ScalarType ot = out_type.value_or(ScalarType::BFloat16);
  LOWBIT_CHECK_ARG(ot == ScalarType::BFloat16 || ot == ScalarType::Half, kMm, "out_type",
                   "torch.bfloat16, torch.float16 or None (bfloat16)", dtype_name(ot));
  p.schedule = check_schedule(maybe_schedule, p.N);
  // TMA reads A, B and the scale tables from 16-byte aligned addresses.
  check_base_aligned(kMm, 16, {{"A", &A}, {"B", &B}, {"group_scales", &group_scales}});
  p.a = A.data_ptr();
  p.b = B.data_ptr();
  p.group_scales = group_scales.data_ptr();
  p.channel_scales = static_cast<const float*>(channel_scales.data_ptr());
  p.channel_vector = channel_scales.numel() != 1;  // one element: scalar broadcast
  p.token_scales = static_cast<const float*>(token_scales.data_ptr());
  p.token_vector = token_scales.numel() != 1;
  p.out_bf16 = ot == ScalarType::BFloat16;
  return p;
}

GroupedReorderProblem validate_encode_and_reorder_int4b_grouped(const Tensor& b) {
  check_defined(kGroupedReorder, "b_tensors", b);
  check_cpu_or_cuda(kGroupedReorder, "b_tensors", b);
  check_dtype(kGroupedReorder, "b_tensors", b, {ScalarType::Int});
  check_dim(kGroupedReorder, "b_tensors", b, 3);
  check_contiguous(kGroupedReorder, "b_tensors", b);
  GroupedReorderProblem p{b.size(0), b.size(1), b.size(2) * 8};
  LOWBIT_CHECK(p.N % 16 == 0, kGroupedReorder, ": argument 'b_tensors': N (= b_tensors.size(1)) must be "
               "a multiple of 16 (the reorder atom is 16 x 32), got N = ", p.N);
  LOWBIT_CHECK(p.K % 32 == 0, kGroupedReorder, ": argument 'b_tensors': K (= 8 * b_tensors.size(2)) must "
               "be a multiple of 32 (the reorder atom is 16 x 32), got K = ", p.K,
               " (b_tensors.size(2) = ", b.size(2), ")");
  // The descriptor holds 32 * N in an int32 (vLLM's layout bytes).
  LOWBIT_CHECK(32 * p.N <= INT32_MAX, kGroupedReorder, ": argument 'b_tensors': N (= b_tensors.size(1)) "
               "must be at most ", INT32_MAX / 32, ", got N = ", p.N);
  return p;
}

// What cannot be checked here without a host synchronisation (the contents of
// expert_offsets and problem_sizes on a GPU) is checked per expert by the
// kernels: an expert whose rows leave [0, M) or whose (N, K) differ from the
// shapes is not computed and its rows inside [0, M) are set to NaN
// (docs/SPEC-MOE.md §5.0.3). The stride tensors' contents are never read: the
// layouts follow from (E, N, K).
MoeMmProblem validate_w4a8_moe_mm(const Tensor& out, const Tensor& a, const Tensor& b,
                                  const Tensor& a_scales, const Tensor& b_scales,
                                  const Tensor& b_group_scales, int64_t b_group_size,
                                  const Tensor& expert_offsets, const Tensor& problem_sizes,
                                  const Tensor& a_strides, const Tensor& b_strides,
                                  const Tensor& c_strides, const Tensor& group_scale_strides,
                                  const std::optional<std::string>& maybe_schedule) {
  MoeMmProblem p;
  check_moe_operands(p, out, a, b);
  check_moe_scales(p, a, a_scales, b_scales);
  p.group_size = b_group_size;
  check_moe_group_scales(p, a, b_group_scales);
  check_moe_metadata(p, a, expert_offsets, problem_sizes, a_strides, b_strides, c_strides,
                     group_scale_strides);
  if (maybe_schedule.has_value()) p.schedule = moe_schedule_index(kMoe, *maybe_schedule);
  // TMA reads a, b and the scale tables and writes out: 16-byte aligned.
  check_base_aligned(kMoe, 16, {{"a_tensors", &a}, {"b_tensors", &b}, {"b_group_scales", &b_group_scales},
                                {"out_tensors", &out}});
  p.a = a.data_ptr();
  p.b = b.data_ptr();
  p.group_scales = b_group_scales.data_ptr();
  p.a_scales = static_cast<const float*>(a_scales.data_ptr());
  p.b_scales = static_cast<const float*>(b_scales.data_ptr());
  p.out = out.data_ptr();
  p.expert_offsets = static_cast<const int64_t*>(expert_offsets.data_ptr());
  p.problem_sizes = static_cast<const int32_t*>(problem_sizes.data_ptr());
  return p;
}

}  // namespace lowbit::w4a8
