// CPU reference kernels of the NVFP4 GEMM (docs/SPEC.md §1.4) and of its
// grouped form (docs/SPEC-MOE.md §5.2): the FP4 formats' reference GEMM
// (lowbit/cpu/fp4_group_gemm.h: exact dequantization to fp32, one fp32 dot
// product per output in ascending k, batch invariant by construction) with
// NVFP4's operands: 16 elements per e4m3 scale byte, alpha (and the optional
// bias) applied in fp32 before the one rounding.
#include "nvfp4_mm.h"

#include <lowbit/cpu/fp4_group_gemm.h>
#include <lowbit/nvfp4_codec.h>

#include <cmath>
#include <vector>

namespace nvfp4_mm {
namespace {

constexpr int64_t kBlock = 16;

// e4m3 scale byte -> fp32, NaN bytes included (the codec leaves those to the
// caller; here a NaN scale must poison its block's products, docs/SPEC.md §1.4).
float decode_scale(uint8_t byte) {
  return (byte & 0x7F) == 0x7F ? NAN : lowbit::nvfp4::e4m3_decode(byte);
}

}  // namespace

std::vector<std::string> cpu_kernel_names() { return {"reference"}; }

void scaled_fp4_mm_cpu(const Problem& p) {
  if (!p.kernel.empty()) check_kernel_name(p.kernel, cpu_kernel_names(), "CPU");
  const int64_t M = p.M, N = p.N, K = p.K;
  const auto a = lowbit::cpu::fp4_rows(p.a.const_data_ptr<uint8_t>(), static_cast<const uint8_t*>(p.sa.data_ptr()),
                                       K, kBlock, decode_scale);
  const auto b = lowbit::cpu::fp4_rows(p.b.const_data_ptr<uint8_t>(), static_cast<const uint8_t*>(p.sb.data_ptr()),
                                       K, kBlock, decode_scale);
  const float alpha = *p.alpha.const_data_ptr<float>();
  const bool bf16 = p.out.scalar_type() != lowbit::ScalarType::Half;
  auto* out = static_cast<uint16_t*>(p.out.data_ptr());
  const auto* bias = p.bias ? static_cast<const uint16_t*>(p.bias->data_ptr()) : nullptr;
  if (bias) {  // bias[n] holds the output dtype's bits
    lowbit::cpu::fp4_gemm(a, b, M, N, bf16,
                          [&](float acc, int64_t n) { return alpha * acc + lowbit::cpu::to_float(bias[n], bf16); },
                          out);
  } else {
    lowbit::cpu::fp4_gemm(a, b, M, N, bf16, [&](float acc, int64_t) { return alpha * acc; }, out);
  }
}

// Expert by expert (docs/SPEC-MOE.md §5.2): the dense kernel's dequantization
// and dot products at the expert's padded scale strides, times alphas[e]. An
// expert whose metadata breaks the contract gets NaN in its in-bounds rows.
void fp4_group_mm_cpu(const GroupProblem& p) {
  if (!p.kernel.empty()) check_kernel_name(p.kernel, cpu_kernel_names(), "CPU", kGroupOp);
  const lowbit::cpu::Fp4GroupView g{
      p.a.const_data_ptr<uint8_t>(), static_cast<const uint8_t*>(p.sa.data_ptr()), p.b.const_data_ptr<uint8_t>(),
      static_cast<const uint8_t*>(p.sb.data_ptr()), p.problem_sizes.const_data_ptr<int32_t>(),
      p.expert_offsets.const_data_ptr<int32_t>(), p.sf_offsets.const_data_ptr<int32_t>(),
      p.E, p.M, p.N, p.K, p.R, kBlock,
      p.out.scalar_type() != lowbit::ScalarType::Half, static_cast<uint16_t*>(p.out.data_ptr())};
  const float* alphas = p.alphas.const_data_ptr<float>();
  lowbit::cpu::fp4_group_gemm(g, decode_scale, [&](int64_t e, float acc) { return alphas[e] * acc; });
}

}  // namespace nvfp4_mm
