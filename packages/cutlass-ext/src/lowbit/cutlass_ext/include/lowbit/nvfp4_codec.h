// The NVFP4 codec, written once for every lowbit package and target
// (docs/SPEC.md §1.1-1.3): e2m1 decode and software round-to-nearest-even
// encode, e4m3 encode/decode, the 128x4 swizzled scale offset, and the block
// scale arithmetic of §1.2.
//
// Host C++ (compiled without CUDA) and device code both include it; under
// nvcc every function is __host__ __device__. Where the device has an
// instruction for a step (fp8 conversions, IEEE-rounded fp32 intrinsics that
// keep results independent of -ftz / -prec-div), the device branch uses it;
// the result is the same bits as the host branch for every input the ops
// pass (NaN blocks are handled by the callers before these functions).
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#define LOWBIT_HD __host__ __device__ __forceinline__
#else
#define LOWBIT_HD inline
#endif

namespace lowbit::nvfp4 {

constexpr int kBlock = 16;          // elements per block scale
constexpr float kE2M1Max = 6.0f;    // largest e2m1 magnitude
constexpr float kE4M3Max = 448.0f;  // largest finite e4m3
constexpr uint8_t kNanScale = 0x7F;  // scale byte of a block containing NaN (lowbit rule)

LOWBIT_HD uint32_t f32_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}
LOWBIT_HD float f32_from_bits(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}

// ------------------------------------------------------------------ e2m1 (§1.1)
// Magnitude of e2m1 code bits 0..2: {0, 0.5, 1, 1.5, 2, 3, 4, 6}.
LOWBIT_HD float e2m1_magnitude(uint32_t i) {
  i &= 7u;
  return i < 4u ? 0.5f * float(i) : (i < 6u ? float(i) - 2.0f : (i == 6u ? 4.0f : 6.0f));
}
// Value of a 4-bit code (bit 3 = sign; 0b1000 decodes to -0).
LOWBIT_HD float e2m1_decode(uint32_t code) {
  const float m = e2m1_magnitude(code);
  return (code & 8u) ? -m : m;
}

// |y| -> code 0..7, round to nearest even, saturating at 6 (Inf -> 7; NaN is
// the caller's business). The grid has step 1/2 below 2, 1 in [2, 4) and 2
// from 4 on, so the code is RNE(2a) below 2, RNE(a) + 2 in [2, 4) and
// RNE(a / 2) + 4 above, saturated at 7; each line is the lowest of the three
// on its own range (they cross at 2 and 4), so the code is their minimum.
// Adding 2^23 makes the fp32 rounding the RNE and leaves the integer in the
// low mantissa bits (the products a*2, a/2 are exact, so a fused or separate
// multiply-add gives the same bits); larger a gives larger bit patterns.
LOWBIT_HD uint32_t e2m1_magnitude_code(float a) {
#if defined(__CUDA_ARCH__)
  const int32_t f2 = __float_as_int(__fmaf_rn(a, 2.0f, 8388608.0f));
  const int32_t f1 = __float_as_int(__fadd_rn(a, 8388610.0f));
  const int32_t f0 = __float_as_int(__fmaf_rn(a, 0.5f, 8388612.0f));
  return static_cast<uint32_t>(__viaddmin_s32(__vimin3_s32(f2, f1, f0), -0x4B000000, 7));
#else
  const int32_t f2 = int32_t(f32_bits(a * 2.0f + 8388608.0f));
  const int32_t f1 = int32_t(f32_bits(a + 8388610.0f));
  const int32_t f0 = int32_t(f32_bits(a * 0.5f + 8388612.0f));
  const int32_t lo = f2 < f1 ? f2 : f1;
  const int32_t c = (lo < f0 ? lo : f0) - 0x4B000000;
  return uint32_t(c < 7 ? c : 7);
#endif
}
// Signed y -> 4-bit code; the sign bit is y's (so -0.1 -> 0b1000, as the
// hardware cvt.rn.satfinite.e2m1x2.f32 gives).
LOWBIT_HD uint32_t e2m1_encode(float y) {
  const uint32_t u = f32_bits(y);
  return e2m1_magnitude_code(f32_from_bits(u & 0x7FFFFFFFu)) | ((u >> 28) & 8u);
}

// ------------------------------------------------------------------ e4m3
// fp32 -> float8_e4m3fn byte, round to nearest even, saturating finite values
// and Inf to +-448 (satfinite). NaN input: the caller's business (the ops
// write kNanScale for NaN blocks). Host form branch-free (vectorisable):
// below 2^-6 (subnormals, multiples of 2^-9) adding 2^14 rounds; above, the
// mantissa is rounded to 3 bits with ties to even.
LOWBIT_HD uint32_t e4m3_encode(float s) {
#if defined(__CUDA_ARCH__)
  return static_cast<uint32_t>(__nv_cvt_float_to_fp8(s, __NV_SATFINITE, __NV_E4M3));
#else
  const uint32_t us = f32_bits(s);
  const uint32_t sign = (us >> 24) & 0x80u;
  const uint32_t a0 = us & 0x7FFFFFFFu;
  const uint32_t a = a0 < 0x43E00000u ? a0 : 0x43E00000u;  // min(|s|, 448)
  const uint32_t sub = f32_bits(f32_from_bits(a) + 16384.0f) - 0x46800000u;
  const uint32_t nrm = ((a + 0x7FFFFu + ((a >> 20) & 1u)) >> 20) - 960u;  // (127-7) << 3
  return (a < 0x3C800000u ? sub : nrm) | sign;
#endif
}

// float8_e4m3fn byte -> fp32 (the NaN bytes 0x7F/0xFF are never decoded by
// the ops: their blocks are flagged first).
LOWBIT_HD float e4m3_decode(uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __half2float(__half(__nv_cvt_fp8_to_halfraw(static_cast<uint8_t>(b), __NV_E4M3)));
#else
  const uint32_t e = (b >> 3) & 15u, m = b & 7u;
  const float sub = float(int32_t(m)) * 0x1p-9f;
  const float nrm = f32_from_bits(((e + 120u) << 23) | (m << 20));
  return f32_from_bits(f32_bits(e == 0 ? sub : nrm) | ((b & 0x80u) << 24));
#endif
}

// ------------------------------------------------------------------ block scale (§1.2)
// vLLM v0.34.0's oracle arithmetic, each step one fp32 operation rounded to
// nearest. The reciprocals are correctly rounded (never rcp.approx), so every
// target gives the same bytes; they are per block, not per element.
constexpr float kRecip6 = 1.0f / 6.0f;  // fp32(1/6), rounded once

// Step 2: the unrounded block scale S = gs * (amax * fp32(1/6)).
LOWBIT_HD float block_scale(float amax, float gs) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(gs, __fmul_rn(amax, kRecip6));
#else
  return gs * (amax * kRecip6);
#endif
}
// Steps 2-3: the e4m3 scale byte (NaN blocks excluded, see above).
LOWBIT_HD uint32_t block_scale_byte(float amax, float gs) {
  return e4m3_encode(block_scale(amax, gs));
}
// Step 4: out_scale = 1 / (sf_f * (1 / gs)), the multiplier applied to x
// before e2m1 rounding, for a block whose decoded scale sf_f != 0 (callers
// use 0, i.e. zero codes, when sf_f == 0). `rcp_gs` = global_scale_rcp(gs).
LOWBIT_HD float global_scale_rcp(float gs) {
#if defined(__CUDA_ARCH__)
  return __frcp_rn(gs);
#else
  return 1.0f / gs;
#endif
}
LOWBIT_HD float block_out_scale_rcp(float sf_f, float rcp_gs) {
#if defined(__CUDA_ARCH__)
  return __frcp_rn(__fmul_rn(sf_f, rcp_gs));
#else
  return 1.0f / (sf_f * rcp_gs);
#endif
}
LOWBIT_HD float block_out_scale(float sf_f, float gs) {
  return block_out_scale_rcp(sf_f, global_scale_rcp(gs));
}

// ------------------------------------------------------------------ layout (§1.3)
// The 128x4-swizzled scale buffer of `rows` rows with `blocks` scale bytes
// each (NVFP4: K/16, MXFP4: K/32) is swizzled_rows(rows) x
// swizzled_cols(blocks) bytes: whole 128-row bands of whole 4-byte columns.
template <typename I>
LOWBIT_HD constexpr I swizzled_rows(I rows) {
  return (rows + 127) / 128 * 128;
}
template <typename I>
LOWBIT_HD constexpr I swizzled_cols(I blocks) {
  return (blocks + 3) / 4 * 4;
}

// Byte offset of (row r, scale column c) in a 128x4-swizzled scale buffer
// with k_tiles = Kp / 4 four-column tiles per 128-row band: each 128x4 tile is
// 512 contiguous bytes, indexed (r % 32, (r / 32) % 4, c % 4).
template <typename I>
LOWBIT_HD I swizzled_offset(I r, I c, I k_tiles) {
  return ((r / 128) * k_tiles + c / 4) * 512 + (r % 32) * 16 + ((r / 32) % 4) * 4 + c % 4;
}

}  // namespace lowbit::nvfp4
