// NVFP4 quantization kernels shared by the SM90, SM100 and SM120 builds.
// Each arch folder instantiates them with its own e2m1 rounding (`Round`):
// software on Hopper, the cvt.rn.satfinite.e2m1x2.f32 instruction on Blackwell.
// The scale math is the SPEC §1.2 exact-division formula everywhere (IEEE
// __fdiv_rn / __frcp_rn, independent of -prec-div / -ftz flags).
//
// Work unit: one 16-element block per thread (two 16-byte loads, one 8-byte
// store, one scale byte); consecutive threads take consecutive blocks of a row
// so loads and stores are coalesced. Persistent grid-stride loop, no shared
// state between threads, no allocation or synchronisation: graph-capturable.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <lowbit/cuda_utils.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "nvfp4_quant.h"

namespace lowbit::nvfp4::dev {

// n / d and n % d for n < 2^31 with a multiply-high (d fixed per launch).
struct FastDiv {
  uint32_t d = 1, mul = 1, shr = 0;
  FastDiv() = default;
  explicit FastDiv(uint32_t div) : d(div) {
    while ((1u << shr) < d) ++shr;
    mul = static_cast<uint32_t>(((uint64_t(1) << 32) * ((uint64_t(1) << shr) - d)) / d + 1);
  }
  __device__ __forceinline__ uint32_t div(uint32_t n) const {
    return (__umulhi(n, mul) + n) >> shr;
  }
};

// Software fp32 -> e2m1 (SPEC §1.1), equal to the hardware instruction for
// every finite input (NaN blocks are zeroed by the caller).
struct SoftwareE2M1 {
  __device__ __forceinline__ static uint32_t code(float y) {
    const uint32_t u = __float_as_uint(y);
    const uint32_t a = u & 0x7FFFFFFFu;
    // |y| >= 1: round the fp32 mantissa to 1 bit, ties to even (the carry moves
    // into the exponent); the code is then bits 22.. minus the biased exponent
    // of 0.5, saturated at 7 (= 6.0; also catches Inf).
    const uint32_t rn = a + 0x1FFFFFu + ((a >> 22) & 1u);
    const int32_t cn = min(static_cast<int32_t>(rn >> 22) - 252, 7);
    // |y| < 1: the code is RNE(2|y|) in {0, 1, 2}: the 2^23 magic add rounds it.
    const float ay = __uint_as_float(a);
    const int32_t cs =
        static_cast<int32_t>(__float_as_uint(__fmaf_rn(ay, 2.0f, 8388608.0f))) - 0x4B000000;
    const uint32_t c = static_cast<uint32_t>(ay < 1.0f ? cs : cn);
    return c | ((u >> 28) & 8u);  // sign bit of y (IEEE: -0.1 -> 0b1000)
  }
  // 8 values -> 8 codes, element 0 in the low nibble.
  __device__ __forceinline__ static uint32_t pack8(const float* y) {
    uint32_t r = 0;
#pragma unroll
    for (int i = 0; i < 8; ++i) r |= code(y[i]) << (4 * i);
    return r;
  }
};

__device__ __forceinline__ float max_nan(float a, float b) {
  float r;
  asm("max.NaN.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
  return r;
}

template <typename T> struct InputTraits;
template <> struct InputTraits<__nv_bfloat16> {
  // 8 bf16 in a uint4 -> 8 floats (bf16 is the top half of an fp32).
  __device__ __forceinline__ static void to_float(const uint4& w, float* f) {
    const uint32_t ws[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      f[2 * i] = __uint_as_float(ws[i] << 16);
      f[2 * i + 1] = __uint_as_float(ws[i] & 0xFFFF0000u);
    }
  }
};
template <> struct InputTraits<__half> {
  __device__ __forceinline__ static void to_float(const uint4& w, float* f) {
    const uint32_t ws[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 v = __half22float2(*reinterpret_cast<const __half2*>(&ws[i]));
      f[2 * i] = v.x;
      f[2 * i + 1] = v.y;
    }
  }
};

__device__ __forceinline__ uint4 load16B(const void* p) {
  return __ldg(reinterpret_cast<const uint4*>(p));
}

// 16 consecutive input elements as fp32; with SILU, silu(gate) * up where
// `up` starts `up_offset` elements after `gate`.
template <typename T, bool SILU>
__device__ __forceinline__ void load_block(const T* p, int64_t up_offset, float* v) {
  const uint4 a = load16B(p), b = load16B(p + 8);
  if constexpr (SILU) {
    const uint4 c = load16B(p + up_offset), d = load16B(p + up_offset + 8);
    float u[16];
    InputTraits<T>::to_float(a, v);
    InputTraits<T>::to_float(b, v + 8);
    InputTraits<T>::to_float(c, u);
    InputTraits<T>::to_float(d, u + 8);
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      // silu(g) = g / (1 + exp(-g)) in fp32 (SPEC §2.1), then * up.
      v[i] = __fmul_rn(__fdiv_rn(v[i], __fadd_rn(1.0f, expf(-v[i]))), u[i]);
    }
  } else {
    InputTraits<T>::to_float(a, v);
    InputTraits<T>::to_float(b, v + 8);
  }
}

// SPEC §1.2 for one block: returns the scale byte, writes 16 codes (8 bytes).
template <class Round>
__device__ __forceinline__ uint8_t quant_block(const float* v, float gs, uint2& packed) {
  float amax = 0.0f;
#pragma unroll
  for (int i = 0; i < 16; ++i) amax = max_nan(amax, fabsf(v[i]));
  const bool nan_block = amax != amax;
  const float s = __fdiv_rn(__fmul_rn(gs, amax), 6.0f);
  const __nv_fp8_storage_t sf = __nv_cvt_float_to_fp8(s, __NV_SATFINITE, __NV_E4M3);
  const float sf_f = __half2float(__half(__nv_cvt_fp8_to_halfraw(sf, __NV_E4M3)));
  // sf == 0 (all-zero or underflowing block) or NaN: every code 0.
  const bool zero = nan_block || !(fabsf(sf_f) > 0.0f);
  const float os = zero ? 0.0f : __frcp_rn(__fdiv_rn(sf_f, gs));
  float y[16];
#pragma unroll
  for (int i = 0; i < 16; ++i) y[i] = __fmul_rn(v[i], os);
  const uint32_t lo = Round::pack8(y), hi = Round::pack8(y + 8);
  packed = zero ? make_uint2(0u, 0u) : make_uint2(lo, hi);
  return nan_block ? uint8_t{0x7F} : static_cast<uint8_t>(sf);
}

// Byte offset of (row r, scale column c) in a swizzled buffer (SPEC §1.3),
// kp4 = Kp / 4 tiles per row of tiles.
__device__ __forceinline__ uint32_t swz_offset(uint32_t r, uint32_t c, uint32_t kp4) {
  return ((r >> 7) * kp4 + (c >> 2)) * 512u + (r & 31u) * 16u + ((r >> 5) & 3u) * 4u + (c & 3u);
}

// --------------------------------------------------------------- dense ops
// Phase A: units u < m * nb are blocks (r, c); the thread of the last block
// of a row also zeroes its padded scale columns. Phase B (swizzled only): the
// rows m..Mp-1, one zero word (4 scale columns) per unit.
struct DenseArgs {
  const void* in;
  uint8_t* out;
  uint8_t* sf;
  const float* gs;
  uint32_t m, n, nb, kp4, units_a, units_b;
  int64_t in_stride;  // elements per input row
  FastDiv div_nb, div_kp4;
};

template <class Round, typename T, bool SILU, bool SWZ>
__global__ void __launch_bounds__(256) dense_kernel(const DenseArgs a) {
  const float gs = __ldg(a.gs);
  const uint32_t stride = gridDim.x * blockDim.x;
  uint32_t u = blockIdx.x * blockDim.x + threadIdx.x;
  for (; u < a.units_a; u += stride) {
    const uint32_t r = a.div_nb.div(u);
    const uint32_t c = u - r * a.nb;
    const T* src = static_cast<const T*>(a.in) + int64_t(r) * a.in_stride + int64_t(c) * 16;
    float v[16];
    load_block<T, SILU>(src, a.n, v);
    uint2 packed;
    const uint8_t sf = quant_block<Round>(v, gs, packed);
    *reinterpret_cast<uint2*>(a.out + int64_t(r) * (a.n / 2) + int64_t(c) * 8) = packed;
    if constexpr (SWZ) {
      a.sf[swz_offset(r, c, a.kp4)] = sf;
      if (c == a.nb - 1) {
        for (uint32_t cc = c + 1; cc < a.kp4 * 4; ++cc) a.sf[swz_offset(r, cc, a.kp4)] = 0;
      }
    } else {
      a.sf[int64_t(r) * a.nb + c] = sf;
    }
  }
  if constexpr (SWZ) {
    for (u -= a.units_a; u < a.units_b; u += stride) {
      const uint32_t w = u;
      const uint32_t pr = a.m + a.div_kp4.div(w);
      const uint32_t g = w - (pr - a.m) * a.kp4;
      *reinterpret_cast<uint32_t*>(a.sf + swz_offset(pr, g * 4, a.kp4)) = 0u;
    }
  }
}

// --------------------------------------------------------------- experts
// Phase A: blocks of input rows (r, c); the row's expert is found by binary
// search over `off` (on the device, no host sync); rows outside
// [off[0], off[E]) are orphans and write nothing. Scales go to
// sf_off[e] * Kp + swizzle(local row, c). Phase B: for each padded scale row p
// < sf_off[E], the rows of its expert's region past m_e get zero words.
struct ExpertArgs {
  const void* in;
  uint8_t* out;
  uint8_t* sf;
  const float* gs;
  const int32_t* off;
  const int32_t* sf_off;
  uint32_t m, n, nb, kp4, units_a, units_b, sf_rows;
  int32_t num_experts;
  int64_t in_stride;
  FastDiv div_nb, div_kp4;
};

// Largest e in [0, E] with a[e] <= x (a non-decreasing); -1 if none.
__device__ __forceinline__ int32_t upper_index(const int32_t* a, int32_t E, int32_t x) {
  if (a[0] > x) return -1;
  int32_t lo = 0, hi = E;
  while (lo < hi) {
    const int32_t mid = (lo + hi + 1) >> 1;
    if (a[mid] <= x) lo = mid; else hi = mid - 1;
  }
  return lo;
}

constexpr int kMaxSmemOffsets = 1024;  // E + 1 staged in shared memory up to this

template <class Round, typename T, bool SILU, bool SMEM>
__global__ void __launch_bounds__(256) experts_kernel(const ExpertArgs a) {
  __shared__ int32_t s_off[SMEM ? kMaxSmemOffsets : 1];
  __shared__ int32_t s_sfo[SMEM ? kMaxSmemOffsets : 1];
  const int32_t E = a.num_experts;
  const int32_t* off = a.off;
  const int32_t* sfo = a.sf_off;
  if constexpr (SMEM) {
    for (int32_t i = threadIdx.x; i <= E; i += blockDim.x) {
      s_off[i] = __ldg(a.off + i);
      s_sfo[i] = __ldg(a.sf_off + i);
    }
    __syncthreads();
    off = s_off;
    sfo = s_sfo;
  }
  const int64_t sf_bytes = int64_t(a.sf_rows) * a.kp4 * 4;
  const uint32_t stride = gridDim.x * blockDim.x;
  uint32_t u = blockIdx.x * blockDim.x + threadIdx.x;
  for (; u < a.units_a; u += stride) {
    const uint32_t r = a.div_nb.div(u);
    const uint32_t c = u - r * a.nb;
    const int32_t e = upper_index(off, E, int32_t(r));
    if (e < 0 || e >= E) continue;  // orphan row (before off[0] or past off[E])
    const int32_t lr = int32_t(r) - off[e];
    const T* src = static_cast<const T*>(a.in) + int64_t(r) * a.in_stride + int64_t(c) * 16;
    float v[16];
    load_block<T, SILU>(src, a.n, v);
    uint2 packed;
    const uint8_t sf = quant_block<Round>(v, __ldg(a.gs + e), packed);
    *reinterpret_cast<uint2*>(a.out + int64_t(r) * (a.n / 2) + int64_t(c) * 8) = packed;
    // Scales only inside this expert's region of the buffer (bad offsets can
    // make a row fall outside: then it writes no scale rather than out of bounds).
    const int32_t region_rows = sfo[e + 1] - sfo[e];
    if (lr >= region_rows || sfo[e] < 0) continue;
    const int64_t base = int64_t(sfo[e]) * a.kp4 * 4;
    const int64_t o = base + swz_offset(lr, c, a.kp4);
    if (o < sf_bytes) a.sf[o] = sf;
    if (c == a.nb - 1) {
      for (uint32_t cc = c + 1; cc < a.kp4 * 4; ++cc) {
        const int64_t oc = base + swz_offset(lr, cc, a.kp4);
        if (oc < sf_bytes) a.sf[oc] = 0;
      }
    }
  }
  const int32_t end_row = min(max(sfo[E], 0), int32_t(a.sf_rows));
  for (u -= a.units_a; u < a.units_b; u += stride) {
    const uint32_t p = a.div_kp4.div(u);
    if (int32_t(p) >= end_row) break;  // p only grows along the loop
    const uint32_t g = u - p * a.kp4;
    const int32_t e = upper_index(sfo, E, int32_t(p));
    if (e < 0 || e >= E) continue;
    const int32_t lp = int32_t(p) - sfo[e];
    if (lp < off[e + 1] - off[e]) continue;  // a real row: phase A wrote it
    const int64_t o = int64_t(sfo[e]) * a.kp4 * 4 + swz_offset(lp, g * 4, a.kp4);
    if (o + 4 <= sf_bytes) *reinterpret_cast<uint32_t*>(a.sf + o) = 0u;
  }
}

// --------------------------------------------------------------- launch
// Persistent grid: as many 256-thread blocks as fit on the device at once
// (occupancy cached per kernel), fewer when there is less work.
template <auto Kernel>
inline int grid_for(int64_t units, int sm_count) {
  static const int per_sm = [] {
    int b = 0;
    LOWBIT_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&b, Kernel, 256, 0));
    return std::max(b, 1);
  }();
  const int64_t want = (units + 255) / 256;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(want, int64_t(per_sm) * sm_count)));
}

template <class Round, typename T>
inline void launch_typed(const QuantProblem& p, cudaStream_t stream, int sm_count) {
  const uint32_t nb = static_cast<uint32_t>(p.n / 16);
  const uint32_t kp4 = static_cast<uint32_t>(p.kp / 4);
  const int64_t in_stride = p.silu ? 2 * p.n : p.n;
  if (!p.experts) {
    DenseArgs a{p.in, p.out, p.sf, p.gs, uint32_t(p.m), uint32_t(p.n), nb, kp4,
                uint32_t(p.m * nb), 0, in_stride, FastDiv(nb), FastDiv(std::max(kp4, 1u))};
    if (p.swizzled) a.units_b = uint32_t((p.sf_rows - p.m) * kp4);
    const int64_t units = int64_t(a.units_a) + a.units_b;
    if (units == 0) return;
    LOWBIT_CHECK(units < (int64_t(1) << 31), "lowbit_nvfp4_quant: problem too large (",
                 units, " blocks; at most 2^31 per call)");
    auto launch = [&](auto tag) {
      constexpr auto kernel = decltype(tag)::value;
      kernel<<<grid_for<kernel>(units, sm_count), 256, 0, stream>>>(a);
      LOWBIT_CHECK_LAUNCH();
    };
    using std::integral_constant;
#define LOWBIT_K(...) integral_constant<decltype(&__VA_ARGS__), &__VA_ARGS__>{}
    if (p.silu) {
      if (p.swizzled) launch(LOWBIT_K(dense_kernel<Round, T, true, true>));
      else launch(LOWBIT_K(dense_kernel<Round, T, true, false>));
    } else {
      if (p.swizzled) launch(LOWBIT_K(dense_kernel<Round, T, false, true>));
      else launch(LOWBIT_K(dense_kernel<Round, T, false, false>));
    }
    return;
  }
  ExpertArgs a{p.in, p.out, p.sf, p.gs, p.off, p.sf_off, uint32_t(p.m), uint32_t(p.n), nb, kp4,
               uint32_t(p.m * nb), uint32_t(p.sf_rows * kp4), uint32_t(p.sf_rows),
               p.num_experts, in_stride, FastDiv(nb), FastDiv(kp4)};
  // Phase B covers at most the rows the experts can use, sum round_up(m_e, 128)
  // <= m + 127 E (tighter than the buffer, which callers often over-allocate).
  const int64_t used_rows = std::min<int64_t>(p.sf_rows, p.m + 127 * int64_t(p.num_experts));
  const int64_t units = int64_t(a.units_a) + used_rows * kp4;
  if (units == 0) return;
  LOWBIT_CHECK(int64_t(a.units_a) + int64_t(a.units_b) < (int64_t(1) << 31),
               "lowbit_nvfp4_quant: problem too large (at most 2^31 blocks per call)");
  auto launch = [&](auto tag) {
    constexpr auto kernel = decltype(tag)::value;
    kernel<<<grid_for<kernel>(units, sm_count), 256, 0, stream>>>(a);
    LOWBIT_CHECK_LAUNCH();
  };
  using std::integral_constant;
  const bool smem = p.num_experts + 1 <= kMaxSmemOffsets;
  if (p.silu) {
    if (smem) launch(LOWBIT_K(experts_kernel<Round, T, true, true>));
    else launch(LOWBIT_K(experts_kernel<Round, T, true, false>));
  } else {
    if (smem) launch(LOWBIT_K(experts_kernel<Round, T, false, true>));
    else launch(LOWBIT_K(experts_kernel<Round, T, false, false>));
  }
#undef LOWBIT_K
}

template <class Round>
inline void launch_quant(const QuantProblem& p, void* stream, int sm_count) {
  auto s = static_cast<cudaStream_t>(stream);
  if (p.bf16) launch_typed<Round, __nv_bfloat16>(p, s, sm_count);
  else launch_typed<Round, __half>(p, s, sm_count);
}

}  // namespace lowbit::nvfp4::dev
