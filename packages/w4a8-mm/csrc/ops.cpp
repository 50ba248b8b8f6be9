// Registration and argument validation for lowbit_w4a8_mm (SPEC §1.5, §2.3).
// Every op checks every argument before any kernel runs; CPU tensors go to the
// reference kernels in cpu/, CUDA tensors to cuda/ (prepack) and sm90/ (GEMM).
#include "w4a8.h"

#include <lowbit/arch.h>
#include <lowbit/torch_utils.h>

#include <torch/csrc/stable/ops.h>

#include <cstdlib>
#include <optional>
#include <string>

#if LOWBIT_WITH_CUDA
#include <lowbit/cuda_utils.h>
#endif

using lowbit::ScalarType;
using lowbit::Tensor;
using lowbit::str;

namespace {

constexpr const char* kMm = "cutlass_w4a8_mm";
constexpr const char* kPack = "cutlass_pack_scale_fp8";
constexpr const char* kReorder = "cutlass_encode_and_reorder_int4b";

// LOWBIT_W4A8_PDL=0 turns programmatic dependent launch off (A/B timing and an
// escape hatch); read per call so tests can compare both launches.
bool pdl_enabled() { return lowbit::env_flag("LOWBIT_W4A8_PDL", true); }

// B is int32 [K/8, N] column-major: the transpose of a contiguous [N, K/8].
void check_column_major(const char* op, const char* arg, const Tensor& t) {
  const bool ok = (t.size(0) <= 1 || t.stride(0) == 1) &&
                  (t.size(1) <= 1 || t.stride(1) == t.size(0));
  LOWBIT_CHECK_ARG(ok, op, arg,
                   str("column-major strides (1, ", t.size(0),
                       ") (the transpose of a contiguous [N, K/8] tensor)"),
                   str("strides (", t.stride(0), ", ", t.stride(1), ") for shape ",
                       lowbit::shape_str(t)));
}

void check_aligned16(const char* op, const char* arg, const Tensor& t) {
  const auto addr = reinterpret_cast<uintptr_t>(t.data_ptr());
  LOWBIT_CHECK_ARG(t.numel() == 0 || addr % 16 == 0, op, arg,
                   "a data pointer aligned to 16 bytes (TMA)",
                   str("address ", addr, " (a sliced view?)"));
}

// ---------------------------------------------------------------- prepack
Tensor encode_and_reorder_int4b(Tensor B) {
  lowbit::check_defined(kReorder, "B", B);
  lowbit::check_cpu_or_cuda(kReorder, "B", B);
  lowbit::check_dtype(kReorder, "B", B, {ScalarType::Int});
  lowbit::check_dim(kReorder, "B", B, 2);
  const int64_t K = B.size(0) * 8, N = B.size(1);
  LOWBIT_CHECK(N % 16 == 0, kReorder, ": argument 'B': N (= B.size(1)) must be a multiple of 16 "
               "(the reorder atom is 16 x 32), got N = ", N);
  LOWBIT_CHECK(K % 32 == 0, kReorder, ": argument 'B': K (= 8 * B.size(0)) must be a multiple of "
               "32 (the reorder atom is 16 x 32), got K = ", K, " (B.size(0) = ", B.size(0), ")");
  check_column_major(kReorder, "B", B);
  Tensor out = torch::stable::empty_like(B);  // same shape and strides
  if (B.numel() == 0) return out;
  if (lowbit::target_for(kReorder, "B", B) == lowbit::Target::CPU) {
    lowbit::w4a8::encode_reorder_cpu(B.const_data_ptr<int32_t>(), out.mutable_data_ptr<int32_t>(), N, K);
    return out;
  }
#if LOWBIT_WITH_CUDA
  lowbit::DeviceGuard guard(B);
  lowbit::w4a8::encode_reorder_cuda(B.const_data_ptr<int32_t>(), out.mutable_data_ptr<int32_t>(), N, K,
                                    B.get_device_index(), lowbit::current_stream(B));
#endif
  return out;
}

Tensor pack_scale_fp8(Tensor scales) {
  lowbit::check_defined(kPack, "scales", scales);
  lowbit::check_cpu_or_cuda(kPack, "scales", scales);
  lowbit::check_dtype(kPack, "scales", scales, {ScalarType::Float8_e4m3fn});
  lowbit::check_contiguous(kPack, "scales", scales);
  const int64_t n = scales.numel();
  Tensor out = lowbit::empty_on(scales, {n * 8}, ScalarType::Float8_e4m3fn);
  if (n == 0) return out;
  const auto* in = static_cast<const uint8_t*>(scales.data_ptr());
  auto* o = static_cast<uint8_t*>(out.data_ptr());
  if (lowbit::target_for(kPack, "scales", scales) == lowbit::Target::CPU) {
    lowbit::w4a8::pack_scale_cpu(in, o, n);
    return out;
  }
#if LOWBIT_WITH_CUDA
  lowbit::DeviceGuard guard(scales);
  lowbit::w4a8::pack_scale_cuda(in, o, n, scales.get_device_index(), lowbit::current_stream(scales));
#endif
  return out;
}

// ---------------------------------------------------------------- GEMM
Tensor w4a8_mm(Tensor A, Tensor B, Tensor group_scales, int64_t group_size,
               Tensor channel_scales, Tensor token_scales,
               std::optional<ScalarType> out_type,
               std::optional<std::string> maybe_schedule) {
  const char* op = kMm;
  lowbit::check_defined(op, "A", A);
  lowbit::check_cpu_or_cuda(op, "A", A);
  lowbit::check_dtype(op, "A", A, {ScalarType::Float8_e4m3fn});
  lowbit::check_dim(op, "A", A, 2);
  lowbit::check_contiguous(op, "A", A);
  const int64_t M = A.size(0), K = A.size(1);

  lowbit::check_same_device(op, "B", B, "A", A);
  lowbit::check_dtype(op, "B", B, {ScalarType::Int});
  lowbit::check_dim(op, "B", B, 2);
  const int64_t N = B.size(1);
  LOWBIT_CHECK_ARG(B.size(0) * 8 == K, op, "B",
                   str("shape [K/8, N] = [", K / 8, ", N] (K = A.size(1) = ", K, ")"),
                   str("shape ", lowbit::shape_str(B)));
  check_column_major(op, "B", B);
  LOWBIT_CHECK(K > 0 && K % 128 == 0, op, ": argument 'A': K (= A.size(1)) must be a positive "
               "multiple of 128, got K = ", K);
  LOWBIT_CHECK(N > 0 && N % 128 == 0, op, ": argument 'B': N (= B.size(1)) must be a positive "
               "multiple of 128, got N = ", N);

  LOWBIT_CHECK(group_size == 128 || group_size == K, op, ": argument 'group_size': expected 128 "
               "or K (= ", K, ", one scale per output channel), got ", group_size);
  const int64_t groups = K / group_size;

  lowbit::check_same_device(op, "group_scales", group_scales, "A", A);
  lowbit::check_dtype(op, "group_scales", group_scales, {ScalarType::Float8_e4m3fn});
  lowbit::check_contiguous(op, "group_scales", group_scales);
  LOWBIT_CHECK_ARG(group_scales.numel() == groups * N * 8, op, "group_scales",
                   str(groups * N * 8, " elements (cutlass_pack_scale_fp8 of [K/group_size, N] = [",
                       groups, ", ", N, "] scales: 8 bytes each)"),
                   str(group_scales.numel(), " elements (shape ", lowbit::shape_str(group_scales), ")"));

  lowbit::check_same_device(op, "channel_scales", channel_scales, "A", A);
  lowbit::check_dtype(op, "channel_scales", channel_scales, {ScalarType::Float});
  lowbit::check_contiguous(op, "channel_scales", channel_scales);
  const int64_t nch = channel_scales.numel();
  LOWBIT_CHECK_ARG(channel_scales.dim() <= 1 && (nch == N || nch == 1), op, "channel_scales",
                   str("shape [", N, "] or one element (scalar)"),
                   str("shape ", lowbit::shape_str(channel_scales)));

  lowbit::check_same_device(op, "token_scales", token_scales, "A", A);
  lowbit::check_dtype(op, "token_scales", token_scales, {ScalarType::Float});
  lowbit::check_contiguous(op, "token_scales", token_scales);
  const int64_t ntok = token_scales.numel();
  const bool tok_shape_ok =
      ntok == 1 ? token_scales.dim() <= 2
                : ((token_scales.dim() == 1 && token_scales.size(0) == M) ||
                   (token_scales.dim() == 2 && token_scales.size(0) == M && token_scales.size(1) == 1));
  LOWBIT_CHECK_ARG(tok_shape_ok, op, "token_scales",
                   str("shape [", M, "], [", M, ", 1] or one element (scalar)"),
                   str("shape ", lowbit::shape_str(token_scales)));

  const ScalarType ot = out_type.value_or(ScalarType::BFloat16);
  LOWBIT_CHECK_ARG(ot == ScalarType::BFloat16 || ot == ScalarType::Half, op, "out_type",
                   "torch.bfloat16, torch.float16 or None (bfloat16)", lowbit::dtype_name(ot));
  int schedule = -1;
  if (maybe_schedule.has_value()) schedule = lowbit::w4a8::schedule_index(op, *maybe_schedule);

  Tensor out = lowbit::empty_on(A, {M, N}, ot);
  if (M == 0) return out;

  lowbit::w4a8::MmProblem p;
  p.a = A.data_ptr();
  p.b = B.data_ptr();
  p.group_scales = group_scales.data_ptr();
  p.channel_scales = static_cast<const float*>(channel_scales.data_ptr());
  p.channel_vector = nch != 1;  // one element: scalar broadcast
  p.token_scales = static_cast<const float*>(token_scales.data_ptr());
  p.token_vector = ntok != 1;
  p.out = out.data_ptr();
  p.out_bf16 = ot == ScalarType::BFloat16;
  p.M = M;
  p.N = N;
  p.K = K;
  p.group_size = group_size;

  if (lowbit::target_for(op, "A", A) == lowbit::Target::CPU) {
    lowbit::w4a8::mm_cpu(p);
    return out;
  }
#if LOWBIT_WITH_CUDA && LOWBIT_BUILT_SM90
  check_aligned16(op, "A", A);
  check_aligned16(op, "B", B);
  check_aligned16(op, "group_scales", group_scales);
  lowbit::DeviceGuard guard(A);
  p.device = A.get_device_index();
  p.sm_count = lowbit::device_sm_count(p.device);
  p.stream = lowbit::current_stream(A);
  if (schedule < 0) schedule = lowbit::w4a8::heuristic_schedule(M, N, K, p.sm_count);
  const auto& s = lowbit::w4a8::schedules()[schedule];
  LOWBIT_CHECK(N % s.tile_n == 0, op, ": argument 'maybe_schedule': schedule '", s.name,
               "' tiles N by ", s.tile_n, " and needs N % ", s.tile_n, " == 0, got N = ", N,
               "; pick a schedule with a ", 128, "-row tile");
  p.splits = lowbit::w4a8::heuristic_splits(schedule, M, N, K, p.sm_count);
  const size_t ws_bytes = lowbit::w4a8::mm_sm90_workspace(schedule, p);
  Tensor ws;
  void* ws_ptr = nullptr;
  if (ws_bytes > 0) {
    ws = lowbit::empty_on(A, {static_cast<int64_t>(ws_bytes)}, ScalarType::Byte);
    ws_ptr = ws.data_ptr();
  }
  // PDL lets this kernel start while the previous one in the stream drains;
  // it waits (griddepcontrol.wait) before its first global access, so inputs
  // written by that kernel are complete. Only without workspace: a split-K
  // workspace is zeroed by a memset between the two kernels.
  p.pdl = ws_bytes == 0 && pdl_enabled();
  lowbit::w4a8::mm_sm90_run(schedule, p, ws_ptr);
#else
  (void)check_aligned16;
  (void)pdl_enabled;
#endif
  return out;
}

}  // namespace

STABLE_TORCH_LIBRARY(lowbit_w4a8_mm, m) {
  m.def("cutlass_w4a8_mm(Tensor A, Tensor B, Tensor group_scales, int group_size, "
        "Tensor channel_scales, Tensor token_scales, ScalarType? out_type=None, "
        "str? maybe_schedule=None) -> Tensor");
  m.def("cutlass_pack_scale_fp8(Tensor scales) -> Tensor");
  m.def("cutlass_encode_and_reorder_int4b(Tensor B) -> Tensor");
}

STABLE_TORCH_LIBRARY_IMPL(lowbit_w4a8_mm, CompositeExplicitAutograd, m) {
  m.impl("cutlass_w4a8_mm", TORCH_BOX(&w4a8_mm));
  m.impl("cutlass_pack_scale_fp8", TORCH_BOX(&pack_scale_fp8));
  m.impl("cutlass_encode_and_reorder_int4b", TORCH_BOX(&encode_and_reorder_int4b));
}
