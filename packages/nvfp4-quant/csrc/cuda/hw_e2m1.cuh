// Blackwell (sm_100a / sm_120a families): hardware fp32 -> e2m1 conversion.
// Included only by the sm100/ and sm120/ translation units.
#pragma once
#include <cstdint>

namespace lowbit::nvfp4::dev {
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
}  // namespace lowbit::nvfp4::dev
