// fp32 -> e2m1 packing for the FP4 quantization kernels (NVFP4 and MXFP4):
// 8 values -> 8 codes in a 32-bit word, element 0 in the low nibble. The
// rounding is docs/SPEC.md §1.1 (lowbit/nvfp4_codec.h), the same for both
// formats: Hopper has no conversion instruction (SoftwareE2M1, on magnitudes,
// the sign bits placed by signs8); the Blackwell families convert pairs with
// cvt.rn.satfinite.e2m1x2.f32 (HardwareE2M1, on signed values), bit-equal for
// every finite input.
#pragma once

#include <cuda_runtime.h>

#include <lowbit/nvfp4_codec.h>

#include <cstdint>

// 1 in a device pass for an architecture with the e2m1x2 conversion (the
// arch-specific Blackwell targets); 0 on the host and on Hopper. A kernel
// compiled for several architectures in one translation unit picks its
// rounding with it; the per-arch translation units name the policy directly.
#if defined(__CUDA_ARCH_FEAT_SM100_ALL) || defined(__CUDA_ARCH_FEAT_SM101_ALL) || \
    defined(__CUDA_ARCH_FEAT_SM103_ALL) || defined(__CUDA_ARCH_FEAT_SM110_ALL) || \
    defined(__CUDA_ARCH_FEAT_SM120_ALL) || defined(__CUDA_ARCH_FEAT_SM121_ALL)
#define LOWBIT_FP4_HW_E2M1 1
#else
#define LOWBIT_FP4_HW_E2M1 0
#endif

namespace lowbit::fp4_quant {

// Software fp32 -> e2m1 (SPEC §1.1), equal to the hardware instruction for
// every finite input. Works on magnitudes; the caller adds the sign bits.
struct SoftwareE2M1 {
  static constexpr bool kMagnitude = true;
  // |y| -> code 0..7 (the codec's software rounding).
  __device__ __forceinline__ static uint32_t code(float a) { return lowbit::nvfp4::e2m1_magnitude_code(a); }
  // 8 magnitudes -> 8 codes, element 0 in the low nibble.
  __device__ __forceinline__ static uint32_t pack8(const float* a) {
    uint32_t r = 0;
#pragma unroll
    for (int i = 0; i < 8; ++i) r |= code(a[i]) << (4 * i);
    return r;
  }
};

// Blackwell: the hardware conversion. Only usable in device code for an
// architecture where LOWBIT_FP4_HW_E2M1 is 1 (ptxas rejects it elsewhere).
struct HardwareE2M1 {
  static constexpr bool kMagnitude = false;  // takes signed values
  // 8 values -> 8 codes, element 0 in the low nibble: cvt puts its first
  // source operand in the high nibble, so each pair is passed (odd, even).
  __device__ __forceinline__ static uint32_t pack8(const float* y) {
    uint32_t r;
    asm("{\n"
        ".reg .b8 b0, b1, b2, b3;\n"
        "cvt.rn.satfinite.e2m1x2.f32 b0, %2, %1;\n"
        "cvt.rn.satfinite.e2m1x2.f32 b1, %4, %3;\n"
        "cvt.rn.satfinite.e2m1x2.f32 b2, %6, %5;\n"
        "cvt.rn.satfinite.e2m1x2.f32 b3, %8, %7;\n"
        "mov.b32 %0, {b0, b1, b2, b3};\n"
        "}"
        : "=r"(r)
        : "f"(y[0]), "f"(y[1]), "f"(y[2]), "f"(y[3]), "f"(y[4]), "f"(y[5]), "f"(y[6]),
          "f"(y[7]));
    return r;
  }
};

// The e2m1 sign bits (bit 4j + 3 for element j) of 8 elements, given words
// whose byte k has element 2k's sign in bit 7 (`even`) and element 2k+1's
// (`odd`).
__device__ __forceinline__ uint32_t place_signs(uint32_t even, uint32_t odd) {
  return ((even >> 4) & 0x08080808u) | (odd & 0x80808080u);
}
// ... of 8 16-bit inputs (element 2i in the low half of word i; sign = bit 15).
__device__ __forceinline__ uint32_t signs8(const uint4& w) {
  const uint32_t a = __byte_perm(w.x, w.y, 0x7351);  // x.b1 y.b1 x.b3 y.b3
  const uint32_t b = __byte_perm(w.z, w.w, 0x7351);  // z.b1 w.b1 z.b3 w.b3
  return place_signs(__byte_perm(a, b, 0x5410), __byte_perm(a, b, 0x7632));
}
// ... of 8 fp32 values (sign = bit 7 of byte 3).
__device__ __forceinline__ uint32_t signs8(const float* v) {
  const auto u = [&](int i) { return __float_as_uint(v[i]); };
  const uint32_t e = __byte_perm(__byte_perm(u(0), u(2), 0x7373), __byte_perm(u(4), u(6), 0x7373),
                                 0x5410);
  const uint32_t o = __byte_perm(__byte_perm(u(1), u(3), 0x7373), __byte_perm(u(5), u(7), 0x7373),
                                 0x5410);
  return place_signs(e, o);
}

}  // namespace lowbit::fp4_quant
