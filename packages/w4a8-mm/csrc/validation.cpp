// Argument validation of every lowbit_w4a8_mm op (SPEC §1.5, §2.3): each
// check names the argument, what was expected and what was given, and runs
// before any output is allocated or kernel launched.
#include "w4a8_mm.h"

#include <cstdint>

namespace lowbit::w4a8 {
namespace {

constexpr const char* kMm = "cutlass_w4a8_mm";
constexpr const char* kPack = "cutlass_pack_scale_fp8";
constexpr const char* kReorder = "cutlass_encode_and_reorder_int4b";

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

// TMA reads A, B and the scale tables: 16-byte aligned addresses.
void check_aligned16(const char* op, const char* arg, const Tensor& t) {
  const auto addr = reinterpret_cast<uintptr_t>(t.data_ptr());
  LOWBIT_CHECK_ARG(t.numel() == 0 || addr % 16 == 0, op, arg,
                   "a data pointer aligned to 16 bytes (TMA)",
                   str("address ", addr, " (a sliced view?)"));
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
  check_same_device(kMm, "group_scales", gs, "A", A);
  check_dtype(kMm, "group_scales", gs, {ScalarType::Float8_e4m3fn});
  check_contiguous(kMm, "group_scales", gs);
  LOWBIT_CHECK_ARG(gs.numel() == groups * N * 8, kMm, "group_scales",
                   str(groups * N * 8, " elements (cutlass_pack_scale_fp8 of [K/group_size, N] = [",
                       groups, ", ", N, "] scales: 8 bytes each)"),
                   str(gs.numel(), " elements (shape ", shape_str(gs), ")"));
}

// fp32, contiguous, one element (a scalar) or one per row/column.
void check_scale_vector(const char* arg, const Tensor& t, const Tensor& A) {
  check_same_device(kMm, arg, t, "A", A);
  check_dtype(kMm, arg, t, {ScalarType::Float});
  check_contiguous(kMm, arg, t);
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
  if (A.is_cuda()) {
    check_aligned16(kMm, "A", A);
    check_aligned16(kMm, "B", B);
    check_aligned16(kMm, "group_scales", group_scales);
  }
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

}  // namespace lowbit::w4a8
