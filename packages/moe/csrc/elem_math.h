// Element types of the activation kernels (fp32, fp16, bf16 by their bits:
// the CPU build has no CUDA types) and their conversions, host and device:
// load as fp32, round an fp32 result to the element type (nearest even).
#pragma once

#include <cstdint>
#include <cstring>

#include <lowbit/nvfp4_codec.h>

#ifdef __CUDACC__
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

namespace lowbit::moe::elem {

enum class In : int { F32 = 0, F16 = 1, BF16 = 2 };

LOWBIT_HD float div_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}

// a * b rounded on its own (never fused into a following add: the
// combine's products must round before the sum, as torch's do).
LOWBIT_HD float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

// 16-bit float bits <-> fp32, round to nearest even (host form; the device
// uses the CUDA conversions, same results).
LOWBIT_HD float bf16_bits_to_float(uint16_t h) {
  return nvfp4::f32_from_bits(uint32_t(h) << 16);
}
LOWBIT_HD float round_to_bf16(float f) {
#if defined(__CUDA_ARCH__)
  return __bfloat162float(__float2bfloat16_rn(f));
#else
  const uint32_t u = nvfp4::f32_bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return f;  // NaN stays NaN
  return nvfp4::f32_from_bits((u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u);
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

// Any element type chosen at run time (per-token weights: a few loads).
LOWBIT_HD float load_any(int type, const void* p, int64_t i) {
  switch (static_cast<In>(type)) {
    case In::F16: return load<In::F16>(p, i);
    case In::BF16: return load<In::BF16>(p, i);
    default: return load<In::F32>(p, i);
  }
}

// fp32 -> the element's bits, rounded to nearest even.
template <In T>
LOWBIT_HD void store(void* p, int64_t i, float f) {
  if constexpr (T == In::F32) {
    static_cast<float*>(p)[i] = f;
  } else {
    uint16_t h;
#if defined(__CUDA_ARCH__)
    if constexpr (T == In::BF16) {
      h = __bfloat16_as_ushort(__float2bfloat16_rn(f));
    } else {
      h = __half_as_ushort(__float2half_rn(f));
    }
#else
    if constexpr (T == In::BF16) {
      h = static_cast<uint16_t>(nvfp4::f32_bits(round_to_bf16(f)) >> 16);
    } else {
      const _Float16 v = static_cast<_Float16>(f);
      std::memcpy(&h, &v, 2);
    }
#endif
    static_cast<uint16_t*>(p)[i] = h;
  }
}

}  // namespace lowbit::moe::elem
