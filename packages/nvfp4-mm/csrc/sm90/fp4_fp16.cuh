// e2m1 / e4m3 -> fp16 bit tricks shared by the SM90 kernels (the mma.sync
// GEMM and the dequantize pre-pass of the CUTLASS fp16 path).
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

namespace nvfp4_mm {

// Two e4m3 bytes -> half2 (exact; e4m3 NaN -> fp16 NaN).
__device__ __forceinline__ uint32_t e4m3x2_to_half2(uint16_t v) {
  uint32_t r;
  asm("cvt.rn.f16x2.e4m3x2 %0, %1;\n" : "=r"(r) : "h"(v));
  return r;
}

// Nibbles i (low half) and i+4 (high half) of the 8 nibbles in w -> half2
// whose value is e2m1 * 2^-14: the 3 magnitude bits land on fp16 bits 9..11
// (bit 9 = mantissa msb, 10..11 = exponent lsbs), the sign on bit 15. Exponent
// 0 gives the subnormal m * 2^-15, which is exactly e2m1's 0 / 0.5 times 2^-14.
template <int I>
__device__ __forceinline__ uint32_t e2m1x2_raw(uint32_t w) {
  uint32_t mag;
  if constexpr (I <= 2) mag = w << (9 - 4 * I);
  else mag = w >> 3;
  const uint32_t sgn = w << (12 - 4 * I);
  return (mag & 0x0E000E00u) | (sgn & 0x80008000u);
}

__device__ __forceinline__ uint32_t hmul2(uint32_t a, uint32_t b) {
  __half2 r = __hmul2(*reinterpret_cast<__half2*>(&a), *reinterpret_cast<__half2*>(&b));
  return *reinterpret_cast<uint32_t*>(&r);
}

}  // namespace nvfp4_mm
