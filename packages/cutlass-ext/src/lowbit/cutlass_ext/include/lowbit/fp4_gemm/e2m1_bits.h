// e2m1 -> 16-bit float by bit placement, for the SM90 FP4 GEMMs (Hopper has
// no e2m1 conversion instruction). Host C++ and device code both include it,
// so the test extension checks every code on the CPU
// (packages/cutlass-ext/tests/test_e2m1_bits.py) with the same source the
// kernels run.
//
// A 32-bit word w holds 8 nibbles n0..n7 (n0 in bits 0..3). Pair I (I = 0..3)
// is the half2 of (nI, nI+4): nibble I in the low half, I + 4 in the high
// half, the K order every SM90 FP4 kernel and its A pre-pass share.
//
// An e2m1 code is s|e1 e0|m. Its three magnitude bits, placed at the
// mantissa msb of a 16-bit float and the two bits above it (the exponent
// lsbs), with the sign on bit 15, give e2m1 * 2^-14 in fp16 and
// e2m1 * 2^-126 in bf16: exponent field 0 is the subnormal range, which is
// exactly e2m1's 0 / 0.5. The GEMMs multiply the factor back in the epilogue
// (fp16) or in the scale product (bf16).
#pragma once

#include <lowbit/nvfp4_codec.h>  // LOWBIT_HD

#include <cstdint>

namespace lowbit::fp4_gemm {

// CUDA's __byte_perm (prmt.b32, default mode): byte n of the result is byte
// (s >> 4n) & 7 of the 8-byte value y:x.
LOWBIT_HD uint32_t byte_perm(uint32_t x, uint32_t y, uint32_t s) {
#if defined(__CUDA_ARCH__)
  return __byte_perm(x, y, s);
#else
  const uint64_t v = (uint64_t(y) << 32) | x;
  uint32_t r = 0;
  for (int n = 0; n < 4; ++n) r |= uint32_t(v >> (8 * ((s >> (4 * n)) & 7u)) & 0xFFu) << (8 * n);
  return r;
#endif
}

// Pair I placed for any 16-bit float whose mantissa msb is bit MANT_MSB
// (fp16: 9, bf16: 6): two shifts and two masks per pair.
template <int I, int MANT_MSB>
LOWBIT_HD uint32_t e2m1x2_placed(uint32_t w) {
  constexpr int kShift = MANT_MSB - 4 * I;
  uint32_t mag;
  if constexpr (kShift >= 0) mag = w << kShift;
  else mag = w >> -kShift;
  const uint32_t sgn = w << (12 - 4 * I);
  constexpr uint32_t kMag = 0x70007u << MANT_MSB;
  return (mag & kMag) | (sgn & 0x80008000u);
}

// The same pairs for fp16 (e2m1 * 2^-14) in 11 integer instructions for all
// four pairs of a word instead of 15 (nvcc 13, sm_90a SASS; the decode is
// most of the small-M kernel's instructions: perf/nvfp4-mm/NOTES.md). In
// fp16 every bit of such a value lies in the upper byte: s at 7, the
// magnitude at 1..3. One select per word builds those bytes for the 4 even
// nibbles (low nibble of each byte) and one for the 4 odd ones; each pair is
// then one byte permute that puts two of them over zero low bytes. Called
// for all four I of one word, the shared terms are computed once; for a
// single pair the per-pair form above is cheaper.
template <int I>
LOWBIT_HD uint32_t e2m1x2_fp16(uint32_t w) {
  constexpr uint32_t kMagBits = 0x0E0E0E0Eu;  // bits 1..3 of every byte
  const uint32_t sgn = w & 0x88888888u;
  // (a & kMagBits) | (b & ~kMagBits), b being the sign on bit 7 and zero
  // elsewhere outside kMagBits. (ptxas turns the even select into two LOP3s
  // on shifted copies of w; forcing one LOP3 by inline PTX changes nothing.)
  const uint32_t bytes = (I % 2 == 0) ? (((w << 1) & kMagBits) | ((sgn << 4) & ~kMagBits))
                                      : (((w >> 3) & kMagBits) | (sgn & ~kMagBits));
  // Bytes 0 and 2 (I < 2) or 1 and 3 into the upper bytes of the halves.
  return byte_perm(bytes, 0u, I < 2 ? 0x2404u : 0x3414u);
}

}  // namespace lowbit::fp4_gemm
