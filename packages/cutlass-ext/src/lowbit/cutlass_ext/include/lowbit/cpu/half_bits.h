// 16-bit floats <-> fp32 on the host, for the CPU reference kernels (IEEE
// round to nearest even; NaN stays NaN). bf16 is the top half of an fp32; fp16
// goes through the compiler's _Float16 (exact widening, correctly rounded
// narrowing). Host code only: the CUDA kernels use cuda_fp16/cuda_bf16.
#pragma once

#include <cstdint>
#include <cstring>

namespace lowbit::cpu {

inline float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t float_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

inline float bf16_to_float(uint16_t h) { return bits_to_float(uint32_t(h) << 16); }
inline float half_to_float(uint16_t h) {
  _Float16 v;
  std::memcpy(&v, &h, 2);
  return static_cast<float>(v);
}
inline uint16_t float_to_bf16(float f) {
  const uint32_t u = float_to_bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // quiet NaN
  return static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}
inline uint16_t float_to_half(float f) {
  const _Float16 v = static_cast<_Float16>(f);
  uint16_t h;
  std::memcpy(&h, &v, 2);
  return h;
}

// A 16-bit element (bf16 or fp16 bits) as fp32, fp32 rounded to one, and fp32
// rounded through one and back.
inline float to_float(uint16_t h, bool bf16) { return bf16 ? bf16_to_float(h) : half_to_float(h); }
inline uint16_t from_float(float f, bool bf16) { return bf16 ? float_to_bf16(f) : float_to_half(f); }
inline float round_to(float f, bool bf16) { return to_float(from_float(f, bf16), bf16); }

}  // namespace lowbit::cpu
