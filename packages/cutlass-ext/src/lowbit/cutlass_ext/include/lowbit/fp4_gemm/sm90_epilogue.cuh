// The output formula of every SM90 FP4 GEMM (mma.sync, wgmma, the split-K
// reduce): out = to_out(scale * acc + bias[n]) evaluated in fp32 (one fused
// multiply-add) and rounded once to the output dtype (docs/SPEC.md §1.4);
// without a bias scale * acc, which keeps -0. And the split-K reduce of the
// dense kernels that split K (mma.sync small-M and multistage, wgmma).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <lowbit/cuda_utils.h>

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

// `parts` K steps in at most `splits` splits of `per` steps each, no split
// empty: `count` = ceil(parts / per) <= splits.
struct KSplits {
  int per, count;
};
inline KSplits k_splits(int parts, int splits) {
  const int per = (parts + splits - 1) / splits;
  return {per, (parts + per - 1) / per};
}

// Sums the split-K partials [splits][MN] in split order (deterministic),
// scales by alpha[0] (nullptr: 1) x unscale, adds the bias, converts. Four
// consecutive elements per thread, all in one row (N % 4 == 0). static: each
// translation unit that launches it holds its own copy (no -rdc).
static __global__ void split_k_reduce_kernel(const float* __restrict__ part, const float* __restrict__ alpha, float unscale,
                                      const void* bias, void* out, int64_t MN, int N, int splits, int out_bf16) {
  lowbit::pdl_wait();
  lowbit::pdl_launch_dependents();
  const int64_t i4 = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) * 4;
  if (i4 >= MN) return;
  float4 s = *reinterpret_cast<const float4*>(part + i4);
  for (int z = 1; z < splits; ++z) {
    const float4 v = *reinterpret_cast<const float4*>(part + z * MN + i4);
    s.x += v.x; s.y += v.y; s.z += v.z; s.w += v.w;
  }
  const float sc = (alpha ? *alpha : 1.f) * unscale;
  const int64_t col = i4 % N;
  store_out_pair(out, bias, out_bf16, i4, col, s.x, s.y, sc);
  store_out_pair(out, bias, out_bf16, i4 + 2, col + 2, s.z, s.w, sc);
}

// The reduce after the kernel that wrote `part` (PDL: its launch overlaps
// that kernel's tail; it waits for the whole kernel before reading).
inline void launch_split_k_reduce(const float* part, const float* alpha, float unscale, const void* bias, void* out,
                                  int64_t MN, int N, int splits, bool out_bf16, cudaStream_t stream) {
  constexpr int kThreadsPerBlock = 256;
  const unsigned blocks = static_cast<unsigned>((MN / 4 + kThreadsPerBlock - 1) / kThreadsPerBlock);
  lowbit::launch_kernel(split_k_reduce_kernel, dim3(blocks), dim3(kThreadsPerBlock), 0, stream, /*pdl=*/true, part,
                        alpha, unscale, bias, out, MN, N, splits, int(out_bf16));
}

}  // namespace lowbit::fp4_gemm::sm90
