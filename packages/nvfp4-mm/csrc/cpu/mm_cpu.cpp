// CPU reference kernels of the NVFP4 GEMM (docs/SPEC.md §1.4) and of its
// grouped form (docs/SPEC-MOE.md §5.2): dequantize both
// operands exactly to fp32 (every e2m1·e4m3 product is exact), then one fp32
// dot product per output in ascending k. Each row's result depends only on
// that row, so the kernel is batch invariant by construction.
#include "nvfp4_mm.h"

#include <lowbit/nvfp4_codec.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include <torch/csrc/stable/ops.h>

namespace nvfp4_mm {
namespace {

// e4m3 scale byte -> fp32, NaN bytes included (the codec leaves those to the
// caller; here a NaN scale must poison its block's products, docs/SPEC.md §1.4).
float decode_scale(uint8_t byte) {
  return (byte & 0x7F) == 0x7F ? NAN : lowbit::nvfp4::e4m3_decode(byte);
}

float bits_to_float(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
uint32_t float_to_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// fp32 -> fp16 round-to-nearest-even (overflow to inf, subnormals, NaN): the
// float-arithmetic formulation, where one fp32 addition performs the rounding
// at fp16's precision for every exponent.
uint16_t float_to_half_bits(float f) {
  float base = (std::fabs(f) * 0x1.0p+112f) * 0x1.0p-110f;
  const uint32_t w = float_to_bits(f);
  const uint32_t shl1_w = w + w;
  const uint32_t sign = w & 0x80000000u;
  uint32_t bias = shl1_w & 0xFF000000u;
  if (bias < 0x71000000u) bias = 0x71000000u;
  base = bits_to_float((bias >> 1) + 0x07800000u) + base;
  const uint32_t bits = float_to_bits(base);
  const uint32_t nonsign = ((bits >> 13) & 0x00007C00u) + (bits & 0x00000FFFu);
  return static_cast<uint16_t>((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

float half_bits_to_float(uint16_t h) {
  const uint32_t sign = uint32_t{h & 0x8000u} << 16, e = (h >> 10) & 0x1F, m = h & 0x3FF;
  if (e == 0) return (sign ? -1.f : 1.f) * std::ldexp(static_cast<float>(m), -24);
  if (e == 31) return bits_to_float(sign | 0x7F800000u | (m << 13));
  return bits_to_float(sign | ((e + 112) << 23) | (m << 13));
}

uint16_t float_to_bf16_bits(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  x += 0x7FFFu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

// Dequantize `rows` rows of packed fp4 + swizzled scales into fp32 [rows, K].
void dequant(const uint8_t* q, const uint8_t* s, int64_t rows, int64_t K,
             std::vector<float>& dst) {
  const int64_t kb = K / 2, num_k_tiles = (K / 16 + 3) / 4;
  dst.resize(static_cast<size_t>(rows * K));
  torch::stable::parallel_for(0, rows, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* d = dst.data() + r * K;
      for (int64_t c = 0; c < K / 16; ++c) {
        const float sc = decode_scale(s[lowbit::nvfp4::swizzled_offset(r, c, num_k_tiles)]);
        for (int64_t j = 0; j < 8; ++j) {
          const uint8_t byte = q[r * kb + c * 8 + j];
          d[c * 16 + 2 * j] = lowbit::nvfp4::e2m1_decode(byte & 0xF) * sc;
          d[c * 16 + 2 * j + 1] = lowbit::nvfp4::e2m1_decode(byte >> 4) * sc;
        }
      }
    }
  });
}

// bias[n] as fp32 (the output dtype's bits), or 0 without a bias.
float bias_at(const uint16_t* bias, bool half, int64_t n) {
  if (!bias) return 0.f;
  const uint16_t h = bias[n];
  return half ? half_bits_to_float(h) : bits_to_float(uint32_t{h} << 16);
}

// out rows [row0, row0 + rows) = to_out(alpha * A·Bᵀ) from dequantized fp32
// operands (A [rows, K], B [N, K]), one fp32 dot product per output in
// ascending k.
void gemm_rows(const std::vector<float>& a, const std::vector<float>& b, int64_t rows, int64_t N, int64_t K,
               float alpha, const uint16_t* bias, bool half, uint16_t* out) {
  torch::stable::parallel_for(0, rows, 1, [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) {
      const float* ar = a.data() + m * K;
      for (int64_t n = 0; n < N; ++n) {
        const float* br = b.data() + n * K;
        float acc = 0.f;
        for (int64_t k = 0; k < K; ++k) acc += ar[k] * br[k];
        const float v = alpha * acc + bias_at(bias, half, n);  // fp32, one output rounding
        out[m * N + n] = half ? float_to_half_bits(v) : float_to_bf16_bits(v);
      }
    }
  });
}

// One expert's metadata against the tensors (docs/SPEC-MOE.md §5.0.3): rows
// inside a, region of round_up(m_e, 128) scale rows inside a_blockscale at a
// multiple of 128, problem size (m_e, N, K).
bool expert_ok(const GroupProblem& p, const int32_t* ps, int64_t off, int64_t sf_off) {
  const int64_t m = ps[0];
  return m >= 0 && off >= 0 && off + m <= p.M && ps[1] == p.N && ps[2] == p.K && sf_off >= 0 &&
         sf_off % 128 == 0 && sf_off + lowbit::round_up<int64_t>(m, 128) <= p.R;
}

}  // namespace

std::vector<std::string> cpu_kernel_names() { return {"reference"}; }

void scaled_fp4_mm_cpu(const Problem& p) {
  if (!p.kernel.empty()) check_kernel_name(p.kernel, cpu_kernel_names(), "CPU");
  const int64_t M = p.M, N = p.N, K = p.K;
  std::vector<float> a, b;
  dequant(p.a.const_data_ptr<uint8_t>(), static_cast<const uint8_t*>(p.sa.data_ptr()),
          M, K, a);
  dequant(p.b.const_data_ptr<uint8_t>(), static_cast<const uint8_t*>(p.sb.data_ptr()),
          N, K, b);
  const float alpha = *p.alpha.const_data_ptr<float>();
  const bool half = p.out.scalar_type() == lowbit::ScalarType::Half;
  uint16_t* out = static_cast<uint16_t*>(p.out.data_ptr());
  const uint16_t* bias = p.bias ? static_cast<const uint16_t*>(p.bias->data_ptr()) : nullptr;
  gemm_rows(a, b, M, N, K, alpha, bias, half, out);
}

// Expert by expert (docs/SPEC-MOE.md §5.2): the same dequantization and dot
// products as the dense kernel, at the expert's padded scale strides. An
// expert whose metadata breaks the contract gets NaN in its in-bounds rows.
void fp4_group_mm_cpu(const GroupProblem& p) {
  if (!p.kernel.empty()) check_kernel_name(p.kernel, cpu_kernel_names(), "CPU", kGroupOp);
  const int64_t N = p.N, K = p.K, kb = K / 2;
  const int64_t Kp = lowbit::round_up<int64_t>(K / 16, 4), Np = lowbit::round_up<int64_t>(N, 128);
  const int32_t* ps = p.problem_sizes.const_data_ptr<int32_t>();
  const int32_t* off = p.expert_offsets.const_data_ptr<int32_t>();
  const int32_t* sf_off = p.sf_offsets.const_data_ptr<int32_t>();
  const uint8_t* qa = p.a.const_data_ptr<uint8_t>();
  const uint8_t* qb = p.b.const_data_ptr<uint8_t>();
  const auto* sa = static_cast<const uint8_t*>(p.sa.data_ptr());
  const auto* sb = static_cast<const uint8_t*>(p.sb.data_ptr());
  const float* alphas = p.alphas.const_data_ptr<float>();
  const bool half = p.out.scalar_type() == lowbit::ScalarType::Half;
  auto* out = static_cast<uint16_t*>(p.out.data_ptr());
  std::vector<float> a, b;
  for (int64_t e = 0; e < p.E; ++e) {
    const int64_t m = ps[3 * e], row0 = off[e];
    if (!expert_ok(p, ps + 3 * e, row0, sf_off[e])) {
      const int64_t lo = std::max<int64_t>(row0, 0), hi = std::min<int64_t>(row0 + std::max<int64_t>(m, 0), p.M);
      const uint16_t nan = half ? 0x7E00 : 0x7FC0;
      for (int64_t i = lo * N; i < hi * N; ++i) out[i] = nan;
      continue;
    }
    if (m == 0) continue;
    dequant(qa + row0 * kb, sa + int64_t{sf_off[e]} * Kp, m, K, a);
    dequant(qb + e * N * kb, sb + e * Np * Kp, N, K, b);
    gemm_rows(a, b, m, N, K, alphas[e], nullptr, half, out + row0 * N);
  }
}

}  // namespace nvfp4_mm
