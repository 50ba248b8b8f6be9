// Per-token dynamic fp8 (e4m3) quantization, the arithmetic shared by the CPU
// and CUDA kernels (host and device): vLLM v0.34.0's
// dynamic_per_token_scaled_fp8_quant (the W4A8 MoE's activation quantizer,
// docs/SPEC-MOE.md §5.9.3 steps 1 and 5), and the SiLU-and-mul value in front
// of it (SPEC.md §2.1 rule: fp32, rounded to the input dtype).
//
// Per row: amax = max |x| (NaN ignored), optionally min(amax, ub);
// scale = max(amax / 448, 1 / (448 * 512)) (vLLM's floor keeps an all-zero row
// finite); code = e4m3(clamp(x / scale, -448, 448)) with IEEE division and
// round-to-nearest-even (the clamp maps NaN to 448, as vLLM's fminf/fmaxf do).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include <lowbit/nvfp4_codec.h>

#ifdef __CUDACC__
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

namespace lowbit::moe::fp8q {

constexpr float kFp8Max = 448.0f;
constexpr float kMinScale = 1.0f / (448.0f * 512.0f);

// Input element types, by their bits (the CPU build has no CUDA types).
enum class In : int { F32 = 0, F16 = 1, BF16 = 2 };

LOWBIT_HD float div_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}

// Row scale from the row's amax (and the optional upper bound of amax).
LOWBIT_HD float token_scale(float amax, const float* ub) {
  const float a = ub ? fminf(amax, *ub) : amax;
  return fmaxf(div_rn(a, kFp8Max), kMinScale);
}

// One value -> its e4m3 byte.
LOWBIT_HD uint8_t code(float x, float scale) {
  const float y = fmaxf(-kFp8Max, fminf(div_rn(x, scale), kFp8Max));
  return static_cast<uint8_t>(lowbit::nvfp4::e4m3_encode(y));
}

// 16-bit float bits <-> fp32, round to nearest even (host form; the device
// uses the CUDA conversions, same results).
LOWBIT_HD float bf16_bits_to_float(uint16_t h) {
  return lowbit::nvfp4::f32_from_bits(uint32_t(h) << 16);
}
LOWBIT_HD float round_to_bf16(float f) {
#if defined(__CUDA_ARCH__)
  return __bfloat162float(__float2bfloat16_rn(f));
#else
  const uint32_t u = lowbit::nvfp4::f32_bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return f;  // NaN stays NaN
  return lowbit::nvfp4::f32_from_bits((u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u);
#endif
}
LOWBIT_HD float f16_bits_to_float(uint16_t h) {
#if defined(__CUDA_ARCH__)
  return __half2float(__ushort_as_half(h));
#else
  _Float16 v;
  std::memcpy(&v, &h, 2);
  return static_cast<float>(v);
#endif
}
LOWBIT_HD float round_to_f16(float f) {
#if defined(__CUDA_ARCH__)
  return __half2float(__float2half_rn(f));
#else
  return static_cast<float>(static_cast<_Float16>(f));
#endif
}

template <In T>
LOWBIT_HD float load(const void* p, int64_t i) {
  if constexpr (T == In::F32) return static_cast<const float*>(p)[i];
  const uint16_t h = static_cast<const uint16_t*>(p)[i];
  if constexpr (T == In::BF16) return bf16_bits_to_float(h);
  return f16_bits_to_float(h);
}

template <In T>
LOWBIT_HD float round_to_input(float f) {
  if constexpr (T == In::BF16) return round_to_bf16(f);
  if constexpr (T == In::F16) return round_to_f16(f);
  return f;
}

// silu(g) * u in fp32 (silu(g) = g / (1 + exp(-g))), rounded to the input dtype.
template <In T>
LOWBIT_HD float silu_mul(float g, float u) {
#if defined(__CUDA_ARCH__)
  const float e = expf(-g);
#else
  const float e = std::exp(-g);
#endif
  return round_to_input<T>(div_rn(g, 1.0f + e) * u);
}

}  // namespace lowbit::moe::fp8q
