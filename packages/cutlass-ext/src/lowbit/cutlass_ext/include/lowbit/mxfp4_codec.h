// The MXFP4 block math, written once for every lowbit package and target
// (docs/SPEC-MOE.md §5.1.1-5.1.2): 32-element blocks of e2m1 codes with one
// E8M0 (ue8m0) power-of-two scale byte each, no global scale. The e2m1
// rounding and the 128x4 swizzled scale offset are the NVFP4 codec's
// (lowbit/nvfp4_codec.h); only the scale rule is MXFP4's own.
//
// Host C++ and device code both include it (every function __host__
// __device__ under nvcc). Everything is integer bit arithmetic or a multiply by
// an exact power of two, so every target gives the same bytes.
#pragma once

#include <lowbit/nvfp4_codec.h>

#include <cstdint>

namespace lowbit::mxfp4 {

using lowbit::nvfp4::e2m1_decode;
using lowbit::nvfp4::e2m1_encode;
using lowbit::nvfp4::f32_bits;
using lowbit::nvfp4::f32_from_bits;
using lowbit::nvfp4::swizzled_cols;
using lowbit::nvfp4::swizzled_offset;
using lowbit::nvfp4::swizzled_rows;

constexpr int kBlock = 32;             // elements per scale byte
constexpr uint32_t kNanScale = 0xFF;   // E8M0 NaN: the scale of a block containing NaN (lowbit rule)

// The scale byte of a block from the bit pattern of its amax = max |x_i| in
// fp32 (the bits of |x| order like the values; NaN patterns order above Inf,
// so an integer max over |x| bits also flags a NaN block):
//   NaN block -> 0xFF (lowbit rule, §5.1.1);
//   else E_r = ((A + 2^21) >> 23) & 0xFF (the exponent, rounded up when the
//   mantissa fraction is >= 0.75), s = E_r - 2 if E_r > 2 else 0 (vLLM PR
//   #43557's rule; Inf gives 253, amax < 1.75 * 2^-125 gives 0).
LOWBIT_HD uint32_t scale_byte(uint32_t amax_bits) {
  if (amax_bits > 0x7F800000u) return kNanScale;
  const uint32_t er = ((amax_bits + (1u << 21)) >> 23) & 0xFFu;
  const uint32_t s = er > 2u ? er - 2u : 0u;
  return s < 254u ? s : 254u;  // never binds (E_r <= 255)
}

// The multiplier 2^(127 - s) applied to x before e2m1 rounding, for a scale
// byte 1 <= s <= 253 (s = 0 and NaN blocks write zero codes instead). It is a
// normal fp32 (exponent field 254 - s), so x * multiplier is exact wherever the
// result is a normal number.
LOWBIT_HD float quant_multiplier(uint32_t s) { return f32_from_bits((254u - s) << 23); }

// The value 2^(b - 127) of an E8M0 byte (b = 0 is 2^-127, a subnormal fp32;
// b = 255 is NaN).
LOWBIT_HD float scale_value(uint32_t b) {
  b &= 0xFFu;
  return b == 0u ? f32_from_bits(0x00400000u) : (b == 255u ? f32_from_bits(0x7FC00000u) : f32_from_bits(b << 23));
}

// One code of a block with scale byte s: e2m1(x * 2^(127 - s)), or 0 for the
// blocks that write zero codes (s = 0, NaN). `mult` = quant_multiplier(s).
LOWBIT_HD uint32_t encode(float x, float mult) { return e2m1_encode(x * mult); }

// Does scale byte s write zero codes (all-zero / underflowing or NaN block)?
LOWBIT_HD bool zero_codes(uint32_t s) { return s == 0u || s == kNanScale; }

}  // namespace lowbit::mxfp4
