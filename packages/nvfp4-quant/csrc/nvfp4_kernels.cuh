// NVFP4 quantization kernels shared by the SM90, SM100 and SM120 builds.
// Each arch folder instantiates them with its own e2m1 rounding (`Round`):
// software on Hopper, the cvt.rn.satfinite.e2m1x2.f32 instruction on Blackwell.
// The scale math is the SPEC §1.2 exact-division formula everywhere (IEEE
// __fdiv_rn / __frcp_rn, independent of -prec-div / -ftz flags).
//
// Work unit: one 16-element block per thread (two 16-byte loads, one 8-byte
// store, one scale byte); consecutive threads take consecutive blocks of a row
// so loads and stores are coalesced. Persistent grid, each block walking its
// own contiguous chunk with the next unit's loads in flight; no shared state
// between threads, no allocation or synchronisation: graph-capturable.
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

// Build-time tuning knobs (the defaults are the shipped configuration; the
// benchmarks compare variants by rebuilding with -D...):
//   LOWBIT_NVFP4_MIN_BLOCKS  min. resident 256-thread blocks per SM (register
//                            cap); 0 = 5 for plain quant (48 registers, no
//                            spills), 4 for the fused SiLU (64 registers)
//   LOWBIT_NVFP4_PREFETCH    load the next unit before quantizing the current one
//   LOWBIT_NVFP4_SEGMENT     phase-A units a block takes at a time, in 256s; the
//                            blocks interleave segments so the grid streams one
//                            contiguous front; 0 = one contiguous chunk per block
#ifndef LOWBIT_NVFP4_MIN_BLOCKS
#define LOWBIT_NVFP4_MIN_BLOCKS 0
#endif
#ifndef LOWBIT_NVFP4_PREFETCH
#define LOWBIT_NVFP4_PREFETCH 1
#endif
#ifndef LOWBIT_NVFP4_SEGMENT
#define LOWBIT_NVFP4_SEGMENT 4
#endif
#define LOWBIT_NVFP4_BLOCKS(silu) \
  (LOWBIT_NVFP4_MIN_BLOCKS ? LOWBIT_NVFP4_MIN_BLOCKS : ((silu) ? 4 : 5))

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

// The raw input of one block (16 elements; with SILU also the 16 `up`
// elements), loaded one loop iteration ahead of its use (see the kernels).
template <bool SILU> struct Raw { uint4 g0, g1; };
template <> struct Raw<true> { uint4 g0, g1, u0, u1; };

template <typename T, bool SILU>
__device__ __forceinline__ Raw<SILU> load_raw(const T* p, int64_t up_offset) {
  Raw<SILU> r;
  r.g0 = load16B(p);
  r.g1 = load16B(p + 8);
  if constexpr (SILU) {
    r.u0 = load16B(p + up_offset);
    r.u1 = load16B(p + up_offset + 8);
  }
  return r;
}

// Raw block -> 16 fp32 values; with SILU, silu(gate) * up in fp32 (SPEC §2.1:
// silu(g) = g / (1 + exp(-g)), IEEE division).
template <typename T, bool SILU>
__device__ __forceinline__ void to_values(const Raw<SILU>& r, float* v) {
  InputTraits<T>::to_float(r.g0, v);
  InputTraits<T>::to_float(r.g1, v + 8);
  if constexpr (SILU) {
    float u[16];
    InputTraits<T>::to_float(r.u0, u);
    InputTraits<T>::to_float(r.u1, u + 8);
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      v[i] = __fmul_rn(__fdiv_rn(v[i], __fadd_rn(1.0f, expf(-v[i]))), u[i]);
    }
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

// Zero the padded scale columns nb..Kp-1 of row r (same 4-column group as the
// row's last block, so the thread of that block does it).
__device__ __forceinline__ void zero_pad_cols(uint8_t* sf, uint32_t r, uint32_t nb, uint32_t kp4) {
  for (uint32_t cc = nb; cc < kp4 * 4; ++cc) sf[swz_offset(r, cc, kp4)] = 0;
}

// Padding unit: 16 bytes of one 128x4 tile = rows i, i+32, i+64, i+96 of the
// tile x its 4 columns. `is_pad(row)` says which of them are padding; all four
// -> one 16-byte store, else one 4-byte store per padded row (a real row's
// bytes belong to another thread).
template <class IsPad>
__device__ __forceinline__ void zero_pad_chunk(uint8_t* sf, uint32_t tile, uint32_t g,
                                               uint32_t i, uint32_t kp4, IsPad is_pad) {
  uint8_t* base = sf + (size_t(tile) * kp4 + g) * 512u + i * 16u;
  bool pad[4];
  bool all = true;
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    pad[j] = is_pad(tile * 128u + i + 32u * j);
    all = all && pad[j];
  }
  if (all) {
    *reinterpret_cast<uint4*>(base) = make_uint4(0u, 0u, 0u, 0u);
  } else {
#pragma unroll
    for (int j = 0; j < 4; ++j)
      if (pad[j]) *reinterpret_cast<uint32_t*>(base + 4 * j) = 0u;
  }
}

// --------------------------------------------------------------- dense ops
// Phase A: units u < m * nb are blocks (r, c). The blocks take segments of
// consecutive units in turn (LOWBIT_NVFP4_SEGMENT); a thread loads its next
// unit before it quantizes the current one, so a load is always in flight. The thread of a row's last
// block also zeroes that row's padded scale columns. Phase B (swizzled only):
// the padded rows m..Mp-1, all in the last 128-row tile, in 16-byte chunks.
struct DenseArgs {
  const void* in;
  uint8_t* out;
  uint8_t* sf;
  const float* gs;
  uint32_t m, n, nb, kp4, units_a, seg_len, units_b;
  int64_t in_stride;  // elements per input row
  FastDiv div_nb;
};

template <class Round, typename T, bool SILU, bool SWZ>
__global__ void __launch_bounds__(256, LOWBIT_NVFP4_BLOCKS(SILU)) dense_kernel(const DenseArgs a) {
  const float gs = __ldg(a.gs);
  // Phase-A units of this thread: segment seg (of seg_len units, a multiple of
  // 256) at offset i * 256 + tid; after the last i, segment seg + gridDim.x.
  // The sequence only grows, so the first unit past units_a ends it.
  uint32_t seg = blockIdx.x, i = 0;
  const uint32_t steps = a.seg_len / 256u;
  uint32_t u = seg * a.seg_len + threadIdx.x;
  const uint32_t end = a.units_a;
  auto src = [&](uint32_t r, uint32_t c) {
    return static_cast<const T*>(a.in) + int64_t(r) * a.in_stride + int64_t(c) * 16;
  };
  if (u < end) {
    uint32_t r = a.div_nb.div(u), c = u - r * a.nb;
    Raw<SILU> cur = load_raw<T, SILU>(src(r, c), a.n);
    while (true) {
      if (++i == steps) {
        i = 0;
        seg += gridDim.x;
      }
      const uint32_t un = seg * a.seg_len + i * 256u + threadIdx.x;
      const bool more = un < end;
      uint32_t rn = 0, cn = 0;
      Raw<SILU> nxt;
      if (LOWBIT_NVFP4_PREFETCH && more) {
        rn = a.div_nb.div(un);
        cn = un - rn * a.nb;
        nxt = load_raw<T, SILU>(src(rn, cn), a.n);
      }
      float v[16];
      to_values<T, SILU>(cur, v);
      uint2 packed;
      const uint8_t sf = quant_block<Round>(v, gs, packed);
      *reinterpret_cast<uint2*>(a.out + int64_t(r) * (a.n / 2) + int64_t(c) * 8) = packed;
      if constexpr (SWZ) {
        a.sf[swz_offset(r, c, a.kp4)] = sf;
        if (c == a.nb - 1) zero_pad_cols(a.sf, r, a.nb, a.kp4);
      } else {
        a.sf[int64_t(r) * a.nb + c] = sf;
      }
      if (!more) break;
      u = un;
      if (LOWBIT_NVFP4_PREFETCH) {
        r = rn;
        c = cn;
        cur = nxt;
      } else {
        r = a.div_nb.div(u);
        c = u - r * a.nb;
        cur = load_raw<T, SILU>(src(r, c), a.n);
      }
    }
  }
  if constexpr (SWZ) {
    const uint32_t tile = a.m >> 7;  // the last tile holds every padded row
    for (uint32_t w = blockIdx.x * blockDim.x + threadIdx.x; w < a.units_b;
         w += gridDim.x * blockDim.x) {
      zero_pad_chunk(a.sf, tile, w >> 5, w & 31u, a.kp4,
                     [&](uint32_t row) { return row >= a.m; });
    }
  }
}

// --------------------------------------------------------------- experts
// Phase A: blocks of input rows (r, c) in segments as above; the row's
// expert comes from a binary search over `off` (on the device, no host sync),
// cached per thread since a segment walks rows in order. Rows outside
// [off[0], off[E]) are orphans and write nothing. Scales go to row
// sf_off[e] + (r - off[e]) of the swizzled buffer. Phase B: 16-byte chunks
// of the 128-row tiles below sf_off[E]; a row is padding when it lies in an
// expert's region past that expert's m_e rows.
struct ExpertArgs {
  const void* in;
  uint8_t* out;
  uint8_t* sf;
  const float* gs;
  const int32_t* off;
  const int32_t* sf_off;
  uint32_t m, n, nb, kp4, units_a, seg_len, units_b, sf_rows;
  int32_t num_experts;
  int64_t in_stride;
  FastDiv div_nb;
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

// The segment [a[e], a[e+1]) holding x, remembered between calls.
struct SegmentCache {
  int32_t e = -1, lo = 0, hi = 0;
  __device__ __forceinline__ int32_t find(const int32_t* a, int32_t E, int32_t x) {
    if (x < lo || x >= hi) {
      e = upper_index(a, E, x);
      if (e >= 0 && e < E) {
        lo = a[e];
        hi = a[e + 1];
      } else {
        e = -1;
        lo = hi = 0;
      }
    }
    return e;
  }
};

constexpr int kMaxSmemOffsets = 1024;  // E + 1 staged in shared memory up to this

template <class Round, typename T, bool SILU, bool SMEM>
__global__ void __launch_bounds__(256, LOWBIT_NVFP4_BLOCKS(SILU)) experts_kernel(const ExpertArgs a) {
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
  // Phase-A units of this thread: segment seg (of seg_len units, a multiple of
  // 256) at offset i * 256 + tid; after the last i, segment seg + gridDim.x.
  // The sequence only grows, so the first unit past units_a ends it.
  uint32_t seg = blockIdx.x, i = 0;
  const uint32_t steps = a.seg_len / 256u;
  uint32_t u = seg * a.seg_len + threadIdx.x;
  const uint32_t end = a.units_a;
  auto src = [&](uint32_t r, uint32_t c) {
    return static_cast<const T*>(a.in) + int64_t(r) * a.in_stride + int64_t(c) * 16;
  };
  SegmentCache rows;
  if (u < end) {
    uint32_t r = a.div_nb.div(u), c = u - r * a.nb;
    Raw<SILU> cur = load_raw<T, SILU>(src(r, c), a.n);
    while (true) {
      if (++i == steps) {
        i = 0;
        seg += gridDim.x;
      }
      const uint32_t un = seg * a.seg_len + i * 256u + threadIdx.x;
      const bool more = un < end;
      uint32_t rn = 0, cn = 0;
      Raw<SILU> nxt;
      if (LOWBIT_NVFP4_PREFETCH && more) {
        rn = a.div_nb.div(un);
        cn = un - rn * a.nb;
        nxt = load_raw<T, SILU>(src(rn, cn), a.n);
      }
      const int32_t e = rows.find(off, E, int32_t(r));
      if (e >= 0) {  // else an orphan row: nothing is written
        float v[16];
        to_values<T, SILU>(cur, v);
        uint2 packed;
        const uint8_t sf = quant_block<Round>(v, __ldg(a.gs + e), packed);
        *reinterpret_cast<uint2*>(a.out + int64_t(r) * (a.n / 2) + int64_t(c) * 8) = packed;
        // The row's scales only inside its expert's region of the buffer (bad
        // offsets can put it outside: then no scale rather than out of bounds).
        const int32_t lr = int32_t(r) - rows.lo;
        const int32_t p = sfo[e] + lr;
        if (lr < sfo[e + 1] - sfo[e] && p >= 0 && uint32_t(p) < a.sf_rows) {
          a.sf[swz_offset(p, c, a.kp4)] = sf;
          if (c == a.nb - 1) zero_pad_cols(a.sf, p, a.nb, a.kp4);
        }
      }
      if (!more) break;
      u = un;
      if (LOWBIT_NVFP4_PREFETCH) {
        r = rn;
        c = cn;
        cur = nxt;
      } else {
        r = a.div_nb.div(u);
        c = u - r * a.nb;
        cur = load_raw<T, SILU>(src(r, c), a.n);
      }
    }
  }
  const int32_t end_row = min(max(sfo[E], 0), int32_t(a.sf_rows));
  const uint32_t per_tile = a.kp4 * 32u;
  SegmentCache regions;
  for (uint32_t w = blockIdx.x * blockDim.x + threadIdx.x; w < a.units_b;
       w += gridDim.x * blockDim.x) {
    const uint32_t tile = w / per_tile;  // grows along the loop
    if (int32_t(tile * 128u) >= end_row) break;
    const uint32_t rest = w - tile * per_tile;
    zero_pad_chunk(a.sf, tile, rest >> 5, rest & 31u, a.kp4, [&](uint32_t row) {
      if (int32_t(row) >= end_row) return false;
      const int32_t e = regions.find(sfo, E, int32_t(row));
      return e >= 0 && int32_t(row) - regions.lo >= off[e + 1] - off[e];
    });
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

// Phase-A units per CTA: an even share, a multiple of the block size.
inline uint32_t chunk_for(int64_t units, int grid) {
  const int64_t per = (units + grid - 1) / grid;
  return static_cast<uint32_t>(std::max<int64_t>(256, (per + 255) / 256 * 256));
}

// Segment length: LOWBIT_NVFP4_SEGMENT x 256 units, but never more than an
// even share per block, so a small problem still spreads over every block
// (one unit per thread) instead of queueing several units on a few threads.
inline uint32_t seg_len_for(int64_t units_a, int grid) {
  const uint32_t share = chunk_for(units_a, grid);
  return LOWBIT_NVFP4_SEGMENT ? std::min<uint32_t>(256u * LOWBIT_NVFP4_SEGMENT, share) : share;
}

template <class Round, typename T>
inline void launch_typed(const QuantProblem& p, cudaStream_t stream, int sm_count) {
  const uint32_t nb = static_cast<uint32_t>(p.n / 16);
  const uint32_t kp4 = static_cast<uint32_t>(p.kp / 4);
  const int64_t in_stride = p.silu ? 2 * p.n : p.n;
  using std::integral_constant;
#define LOWBIT_K(...) integral_constant<decltype(&__VA_ARGS__), &__VA_ARGS__>{}
  if (!p.experts) {
    const int64_t units_a = p.m * int64_t(nb);
    const int64_t units_b = (p.swizzled && p.m % 128 != 0) ? int64_t(kp4) * 32 : 0;
    const int64_t units = units_a + units_b;
    if (units == 0) return;
    LOWBIT_CHECK(units < (int64_t(1) << 31), "lowbit_nvfp4_quant: problem too large (",
                 units, " blocks; at most 2^31 per call)");
    DenseArgs a{p.in, p.out, p.sf, p.gs, uint32_t(p.m), uint32_t(p.n), nb, kp4,
                uint32_t(units_a), 0, uint32_t(units_b), in_stride, FastDiv(nb)};
    auto launch = [&](auto tag) {
      constexpr auto kernel = decltype(tag)::value;
      const int grid = grid_for<kernel>(units, sm_count);
      a.seg_len = seg_len_for(units_a, grid);
      kernel<<<grid, 256, 0, stream>>>(a);
      LOWBIT_CHECK_LAUNCH();
    };
    if (p.silu) {
      if (p.swizzled) launch(LOWBIT_K(dense_kernel<Round, T, true, true>));
      else launch(LOWBIT_K(dense_kernel<Round, T, true, false>));
    } else {
      if (p.swizzled) launch(LOWBIT_K(dense_kernel<Round, T, false, true>));
      else launch(LOWBIT_K(dense_kernel<Round, T, false, false>));
    }
    return;
  }
  const int64_t units_a = p.m * int64_t(nb);
  // Phase B covers the tiles of the whole buffer (the loop stops at sf_off[E]);
  // the grid is sized for the rows the experts can use, sum round_up(m_e, 128)
  // <= m + 127 E, tighter than the buffer that callers often over-allocate.
  const int64_t units_b = (p.sf_rows + 127) / 128 * int64_t(kp4) * 32;
  const int64_t used_rows = std::min<int64_t>(p.sf_rows, p.m + 127 * int64_t(p.num_experts));
  const int64_t units = units_a + (used_rows + 127) / 128 * int64_t(kp4) * 32;
  if (units == 0) return;
  LOWBIT_CHECK(units_a + units_b < (int64_t(1) << 31),
               "lowbit_nvfp4_quant: problem too large (at most 2^31 blocks per call)");
  ExpertArgs a{p.in, p.out, p.sf, p.gs, p.off, p.sf_off, uint32_t(p.m), uint32_t(p.n), nb, kp4,
               uint32_t(units_a), 0, uint32_t(units_b), uint32_t(p.sf_rows), p.num_experts,
               in_stride, FastDiv(nb)};
  auto launch = [&](auto tag) {
    constexpr auto kernel = decltype(tag)::value;
    const int grid = grid_for<kernel>(units, sm_count);
    a.seg_len = seg_len_for(units_a, grid);
    kernel<<<grid, 256, 0, stream>>>(a);
    LOWBIT_CHECK_LAUNCH();
  };
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
