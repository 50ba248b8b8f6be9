// lowbit_nvfp4_mm: schemas, argument validation and per-device dispatch.
//
// cutlass_scaled_fp4_mm and cutlass_scaled_mm_supports_fp4 keep the schemas of
// the compatible implementation (SPEC §2.2). _cutlass_scaled_fp4_mm_ex is the
// same GEMM with the knobs the Python wrapper and the benchmarks need
// (batch-invariant mode, a forced kernel config, a forced split-K count).
#include "nvfp4_mm.h"

#include <lowbit/arch.h>
#include <lowbit/torch_utils.h>

using lowbit::ScalarType;
using lowbit::Tensor;
using lowbit::round_up;
using lowbit::shape_str;
using lowbit::str;

namespace nvfp4_mm {
namespace {

constexpr const char* kOp = "cutlass_scaled_fp4_mm";

// Swizzled block-scale buffer of an [rows, K] NVFP4 operand (SPEC §1.3).
void check_scale(const char* arg, const char* short_name, const Tensor& s,
                 int64_t rows, int64_t K, const Tensor& a) {
  lowbit::check_defined(kOp, arg, s);
  lowbit::check_same_device(kOp, arg, s, "a", a);
  // ue4m3 scale bytes: float8_e4m3fn is the documented dtype; raw uint8
  // bytes of the same layout are accepted too.
  lowbit::check_dtype(kOp, arg, s, {ScalarType::Float8_e4m3fn, ScalarType::Byte});
  const int64_t rm = round_up<int64_t>(rows, 128);
  const int64_t rk = round_up<int64_t>(K / 16, 4);
  LOWBIT_CHECK(s.dim() == 2 && s.size(0) == rm && s.size(1) == rk, kOp,
               ": argument '", arg, "': ", short_name,
               " must be padded and swizzled to a shape (", rm, "x", rk,
               "), but got a shape ", shape_str(s));
  lowbit::check_contiguous(kOp, arg, s);
}

Problem validate(Tensor out, Tensor a, Tensor b, Tensor sa, Tensor sb,
                 Tensor alpha) {
  lowbit::check_defined(kOp, "a", a);
  lowbit::check_cpu_or_cuda(kOp, "a", a);
  for (auto [name, t] : {std::pair<const char*, const Tensor*>{"out", &out},
                         {"b", &b}, {"alpha", &alpha}}) {
    lowbit::check_defined(kOp, name, *t);
    lowbit::check_same_device(kOp, name, *t, "a", a);
  }
  // Packed fp4 travels as uint8 at op boundaries (SPEC §1.1).
  lowbit::check_dtype(kOp, "a", a, {ScalarType::Byte});
  lowbit::check_dtype(kOp, "b", b, {ScalarType::Byte});
  lowbit::check_dim(kOp, "a", a, 2);
  lowbit::check_dim(kOp, "b", b, 2);
  lowbit::check_contiguous(kOp, "a", a);
  lowbit::check_contiguous(kOp, "b", b);
  const int64_t M = a.size(0), N = b.size(0), K = 2 * a.size(1);
  LOWBIT_CHECK(K % 32 == 0, kOp, ": argument 'a': Expected k to be divisible by 32, "
               "but got a shape: ", shape_str(a), ", k: ", K, ".");
  LOWBIT_CHECK_ARG(b.size(1) == a.size(1), kOp, "b",
                   str("shape [N, ", a.size(1), "] (K/2 bytes per row, K = ", K,
                       " from 'a')"),
                   str("shape ", shape_str(b)));
  LOWBIT_CHECK_ARG(N % 32 == 0, kOp, "b", "a row count N divisible by 32",
                   str("shape ", shape_str(b), ", N: ", N));
  check_scale("block_scale_a", "scale_a", sa, M, K, a);
  check_scale("block_scale_b", "scale_b", sb, N, K, a);
  lowbit::check_dtype(kOp, "alpha", alpha, {ScalarType::Float});
  lowbit::check_numel(kOp, "alpha", alpha, 1);
  lowbit::check_dtype(kOp, "out", out, {ScalarType::Half, ScalarType::BFloat16});
  lowbit::check_shape(kOp, "out", out, {M, N});
  lowbit::check_contiguous(kOp, "out", out);
  return Problem{out, a, b, sa, sb, alpha, M, N, K, false, -1, -1};
}

void run(Problem& p) {
  using lowbit::Target;
  const Target target = lowbit::target_for(kOp, "a", p.a);
  if (p.M == 0 || p.N == 0) return;
  if (p.K == 0) {  // empty reduction: D = 0
    torch::stable::zero_(p.out);
    return;
  }
  switch (target) {
    case Target::CPU:
      LOWBIT_CHECK_ARG(p.config <= 0, kOp, "config", "-1 or 0 on CPU", p.config);
      mm_cpu(p);
      return;
#if LOWBIT_BUILT_SM90
    case Target::SM90:
      LOWBIT_CHECK_ARG(p.config < sm90_num_configs(), kOp, "config",
                       str("-1 .. ", sm90_num_configs() - 1, " on SM90"), p.config);
      mm_sm90(p);
      return;
#endif
#if LOWBIT_BUILT_SM100
    case Target::SM100:
      LOWBIT_CHECK_ARG(p.config < sm100_num_configs(), kOp, "config",
                       str("-1 .. ", sm100_num_configs() - 1, " on SM100"), p.config);
      mm_sm100(p);
      return;
#endif
#if LOWBIT_BUILT_SM120
    case Target::SM120:
      LOWBIT_CHECK_ARG(p.config < sm120_num_configs(), kOp, "config",
                       str("-1 .. ", sm120_num_configs() - 1, " on SM120"), p.config);
      mm_sm120(p);
      return;
#endif
    default:
      break;
  }
  lowbit::fail(str(kOp, ": no kernel for target ", lowbit::target_name(target)));
}

void scaled_fp4_mm(Tensor out, Tensor a, Tensor b, Tensor sa, Tensor sb,
                   Tensor alpha) {
  Problem p = validate(out, a, b, sa, sb, alpha);
  run(p);
}

void scaled_fp4_mm_ex(Tensor out, Tensor a, Tensor b, Tensor sa, Tensor sb,
                      Tensor alpha, bool batch_invariant, int64_t config,
                      int64_t splits) {
  Problem p = validate(out, a, b, sa, sb, alpha);
  LOWBIT_CHECK_ARG(config >= -1, kOp, "config", "-1 (heuristic) or a config index",
                   config);
  LOWBIT_CHECK_ARG(splits == -1 || (splits >= 1 && splits <= 64), kOp, "splits",
                   "-1 (heuristic) or 1 .. 64", splits);
  LOWBIT_CHECK_ARG(!(batch_invariant && splits > 1), kOp, "splits",
                   "-1 or 1 when batch_invariant is set", splits);
  p.batch_invariant = batch_invariant;
  p.config = config;
  p.splits = splits;
  run(p);
}

// True exactly where this build has a kernel for the capability (major*10+minor).
bool supports_fp4(int64_t cap) {
  if (cap >= 90 && cap < 100) return LOWBIT_BUILT_SM90 && lowbit::arch_built(static_cast<int>(cap));
  if (cap >= 100 && cap < 120) return LOWBIT_BUILT_SM100 && lowbit::arch_built(static_cast<int>(cap));
  if (cap >= 120 && cap < 130) return LOWBIT_BUILT_SM120 && lowbit::arch_built(static_cast<int>(cap));
  return false;
}

// Config counts per target (the benchmark sweeps them): [SM90, SM100, SM120].
std::vector<int64_t> num_configs() {
  std::vector<int64_t> n{0, 0, 0};
#if LOWBIT_BUILT_SM90
  n[0] = sm90_num_configs();
#endif
#if LOWBIT_BUILT_SM100
  n[1] = sm100_num_configs();
#endif
#if LOWBIT_BUILT_SM120
  n[2] = sm120_num_configs();
#endif
  return n;
}

}  // namespace
}  // namespace nvfp4_mm

STABLE_TORCH_LIBRARY(lowbit_nvfp4_mm, m) {
  m.def("cutlass_scaled_fp4_mm(Tensor(a!) out, Tensor a, Tensor b, Tensor block_scale_a, "
        "Tensor block_scale_b, Tensor alpha) -> ()");
  m.def("cutlass_scaled_mm_supports_fp4(int cuda_device_capability) -> bool");
  m.def("_cutlass_scaled_fp4_mm_ex(Tensor(a!) out, Tensor a, Tensor b, Tensor block_scale_a, "
        "Tensor block_scale_b, Tensor alpha, bool batch_invariant, int config, int splits) -> ()");
  m.def("_num_configs() -> int[]");
}

STABLE_TORCH_LIBRARY_IMPL(lowbit_nvfp4_mm, CPU, m) {
  m.impl("cutlass_scaled_fp4_mm", TORCH_BOX(&nvfp4_mm::scaled_fp4_mm));
  m.impl("_cutlass_scaled_fp4_mm_ex", TORCH_BOX(&nvfp4_mm::scaled_fp4_mm_ex));
}

STABLE_TORCH_LIBRARY_IMPL(lowbit_nvfp4_mm, CUDA, m) {
  m.impl("cutlass_scaled_fp4_mm", TORCH_BOX(&nvfp4_mm::scaled_fp4_mm));
  m.impl("_cutlass_scaled_fp4_mm_ex", TORCH_BOX(&nvfp4_mm::scaled_fp4_mm_ex));
}

STABLE_TORCH_LIBRARY_IMPL(lowbit_nvfp4_mm, CompositeImplicitAutograd, m) {
  m.impl("cutlass_scaled_mm_supports_fp4", TORCH_BOX(&nvfp4_mm::supports_fp4));
  m.impl("_num_configs", TORCH_BOX(&nvfp4_mm::num_configs));
}
