// CPU reference kernel of the NVFP4 GEMM (SPEC §1.4): dequantize both
// operands exactly to fp32 (every e2m1·e4m3 product is exact), then one fp32
// dot product per output in ascending k. Each row's result depends only on
// that row, so the kernel is batch invariant by construction.
#include "nvfp4_mm.h"

#include <cmath>
#include <cstring>
#include <vector>

#include <torch/csrc/stable/ops.h>

namespace nvfp4_mm {
namespace {

float decode_e2m1(uint8_t code) {
  static const float kMag[8] = {0.f, 0.5f, 1.f, 1.5f, 2.f, 3.f, 4.f, 6.f};
  const float v = kMag[code & 7];
  return (code & 8) ? -v : v;  // 0b1000 decodes to -0.0 == 0
}

float decode_e4m3(uint8_t byte) {
  const int sign = byte >> 7, exp = (byte >> 3) & 0xF, man = byte & 7;
  if (exp == 0xF && man == 7) return NAN;  // e4m3fn: only S.1111.111 is NaN
  float v = exp == 0 ? std::ldexp(static_cast<float>(man), -9)
                     : std::ldexp(1.f + man / 8.f, exp - 7);
  return sign ? -v : v;
}

// Byte offset of (row r, scale column c) in the 128x4 swizzled layout (§1.3).
int64_t swizzled_offset(int64_t r, int64_t c, int64_t num_k_tiles) {
  return ((r / 128) * num_k_tiles + (c / 4)) * 512 + (r % 32) * 16 +
         ((r / 32) % 4) * 4 + (c % 4);
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
        const float sc = decode_e4m3(s[swizzled_offset(r, c, num_k_tiles)]);
        for (int64_t j = 0; j < 8; ++j) {
          const uint8_t byte = q[r * kb + c * 8 + j];
          d[c * 16 + 2 * j] = decode_e2m1(byte & 0xF) * sc;
          d[c * 16 + 2 * j + 1] = decode_e2m1(byte >> 4) * sc;
        }
      }
    }
  });
}

}  // namespace

void mm_cpu(const Problem& p) {
  const int64_t M = p.M, N = p.N, K = p.K;
  std::vector<float> a, b;
  dequant(p.a.const_data_ptr<uint8_t>(), static_cast<const uint8_t*>(p.sa.data_ptr()),
          M, K, a);
  dequant(p.b.const_data_ptr<uint8_t>(), static_cast<const uint8_t*>(p.sb.data_ptr()),
          N, K, b);
  const float alpha = *p.alpha.const_data_ptr<float>();
  const bool half = p.out.scalar_type() == lowbit::ScalarType::Half;
  uint16_t* out = static_cast<uint16_t*>(p.out.data_ptr());
  torch::stable::parallel_for(0, M, 1, [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) {
      const float* ar = a.data() + m * K;
      for (int64_t n = 0; n < N; ++n) {
        const float* br = b.data() + n * K;
        float acc = 0.f;
        for (int64_t k = 0; k < K; ++k) acc += ar[k] * br[k];
        const float v = alpha * acc;
        out[m * N + n] = half ? float_to_half_bits(v) : float_to_bf16_bits(v);
      }
    }
  });
}

}  // namespace nvfp4_mm
