// The two FP4 formats the SM90 mma.sync GEMM templates are instantiated for
// (sm90_small_m.cuh, sm90_multistage.cuh, sm90_prepass_a.cuh). Hopper has no
// FP4 tensor cores: both operands become 16-bit floats whose every value is
// exact, and the MMA accumulates in fp32, so the GEMM is exact up to fp32
// summation.
//   Nvfp4: docs/SPEC.md §1.1-1.4: 16-element blocks, e4m3 scales, an alpha;
//          e2m1 x e4m3 has at most 6 significant bits and fits fp16 (2^-10 ..
//          2688): fp16 MMA; B is fed as e2m1 * 2^-14 * scale, the epilogue
//          multiplies by 2^14.
//   Mxfp4: docs/SPEC-MOE.md §5.1.1: 32-element blocks, ue8m0 scales
//          2^(b - 127), no alpha; e2m1 * 2^(b - 127) has at most two
//          significant bits and is exact in bf16 (only values >= 2^128, where
//          fp32 overflows too, are not): bf16 MMA.
// Each policy gives: the block size, whether an alpha per expert scales the
// output, the epilogue factor, the A pre-pass decode (fp32 scale value, pair
// packing), the B decode in registers (nibble placement, the scale as a
// broadcast 16-bit pair, their product) and the MMA.
#pragma once

#include <lowbit/fp4_gemm/sm90_mma.cuh>
#include <lowbit/mxfp4_codec.h>
#include <lowbit/nvfp4_codec.h>

#include <cstdint>

namespace lowbit::fp4_gemm::sm90 {

struct Nvfp4 {
  static constexpr int kBlock = 16, kBlockLog2 = 4;
  static constexpr bool kAlpha = true;
  static constexpr float kUnscale = 16384.f;  // undo the 2^-14 of the B values

  __device__ static float a_scale(uint32_t b) { return lowbit::nvfp4::e4m3_decode(b); }  // NaN byte -> NaN
  __device__ static uint32_t pack2(float v0, float v1) {
    __half2 h = __floats2half2_rn(v0, v1);  // exact: e2m1 x e4m3 fits fp16
    return *reinterpret_cast<uint32_t*>(&h);
  }

  template <int I>
  __device__ static uint32_t b_raw(uint32_t w) { return e2m1x2_fp16<I>(w); }  // e2m1 * 2^-14
  // raw * scale is exact (a multiple of 2^-24 with <= 6 significant bits).
  __device__ static uint32_t b_scaled(uint32_t raw, uint32_t sc) { return hmul2(raw, sc); }
  __device__ static uint32_t scale_bcast(uint16_t b) { return e4m3x2_to_half2(static_cast<uint16_t>(b | (b << 8))); }
  // BLOCKS consecutive scale bytes (the low bytes of s) -> broadcast pairs;
  // one cvt per two bytes.
  template <int BLOCKS>
  __device__ static void lane_scales(uint32_t s, uint32_t (&sc)[BLOCKS]) {
#pragma unroll
    for (int h = 0; h < BLOCKS / 2; ++h) {
      const uint32_t h2 = e4m3x2_to_half2(static_cast<uint16_t>(s >> (16 * h)));
      sc[2 * h] = __byte_perm(h2, 0, 0x1010);
      sc[2 * h + 1] = __byte_perm(h2, 0, 0x3232);
    }
  }
  __device__ static void mma(float (&c)[4], const uint4& a, uint32_t b0, uint32_t b1) { mma_f16(c, a, b0, b1); }
};

struct Mxfp4 {
  static constexpr int kBlock = 32, kBlockLog2 = 5;
  static constexpr bool kAlpha = false;
  static constexpr float kUnscale = 1.f;

  __device__ static float a_scale(uint32_t b) { return lowbit::mxfp4::scale_value(b); }  // 0xFF -> NaN
  __device__ static uint32_t pack2(float v0, float v1) {
    __nv_bfloat162 h = __floats2bfloat162_rn(v0, v1);  // exact (see above)
    return *reinterpret_cast<uint32_t*>(&h);
  }

  template <int I>
  __device__ static uint32_t b_raw(uint32_t w) { return e2m1x2_placed<I, 6>(w); }  // e2m1 * 2^-126
  // (raw * 2^126) * 2^(b - 127): both products exact; folding the two factors
  // into one would leave bf16's range for b > 128.
  __device__ static uint32_t b_scaled(uint32_t raw, uint32_t sc) { return bmul2(bmul2(raw, 0x7E807E80u), sc); }
  // 2^(b - 127) as a bf16 pair: the upper half of the fp32 value (exact: a
  // power of two, the subnormal 2^-127 and NaN included).
  __device__ static uint32_t scale_bcast(uint16_t b) {
    const uint32_t h = lowbit::nvfp4::f32_bits(lowbit::mxfp4::scale_value(b)) >> 16;
    return h | (h << 16);
  }
  template <int BLOCKS>
  __device__ static void lane_scales(uint32_t s, uint32_t (&sc)[BLOCKS]) {
#pragma unroll
    for (int i = 0; i < BLOCKS; ++i) sc[i] = scale_bcast(static_cast<uint16_t>((s >> (8 * i)) & 0xFFu));
  }
  __device__ static void mma(float (&c)[4], const uint4& a, uint32_t b0, uint32_t b1) { mma_bf16(c, a, b0, b1); }
};

}  // namespace lowbit::fp4_gemm::sm90
