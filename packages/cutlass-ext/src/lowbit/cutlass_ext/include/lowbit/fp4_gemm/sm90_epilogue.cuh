// The output formula of every SM90 FP4 GEMM (mma.sync, wgmma, nvfp4-mm's
// split-K reduce): out = to_out(scale * acc + bias[n]) evaluated in fp32 (one
// fused multiply-add) and rounded once to the output dtype (docs/SPEC.md
// §1.4); without a bias scale * acc, which keeps -0.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace lowbit::fp4_gemm::sm90 {

// One output before rounding: scale * acc + bias in one fused multiply-add.
__device__ __forceinline__ float out_value(float acc, float scale, bool has_bias, float bias) {
  return has_bias ? fmaf(acc, scale, bias) : acc * scale;
}

// Elements o, o + 1 of the [M, N] output; col = o % N (even).
__device__ __forceinline__ void store_out_pair(void* out, const void* bias, bool out_bf16, int64_t o, int64_t col,
                                               float x0, float x1, float scale) {
  float y0 = out_value(x0, scale, false, 0.f), y1 = out_value(x1, scale, false, 0.f);
  if (bias) {
    const float2 b = out_bf16
        ? __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(static_cast<const __nv_bfloat16*>(bias) + col))
        : __half22float2(*reinterpret_cast<const __half2*>(static_cast<const __half*>(bias) + col));
    y0 = out_value(x0, scale, true, b.x);
    y1 = out_value(x1, scale, true, b.y);
  }
  if (out_bf16)
    *reinterpret_cast<__nv_bfloat162*>(static_cast<__nv_bfloat16*>(out) + o) = __floats2bfloat162_rn(y0, y1);
  else
    *reinterpret_cast<__half2*>(static_cast<__half*>(out) + o) = __floats2half2_rn(y0, y1);
}

}  // namespace lowbit::fp4_gemm::sm90
