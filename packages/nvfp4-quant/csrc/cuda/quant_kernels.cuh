// NVFP4 quantization kernels shared by the SM90, SM100 and SM120 builds.
// Each arch folder instantiates them with its own e2m1 rounding (`Round`):
// software on Hopper, the cvt.rn.satfinite.e2m1x2.f32 instruction on Blackwell
// (lowbit/fp4_quant/e2m1_pack.cuh). The scale math is docs/SPEC.md §1.2 from
// lowbit/nvfp4_codec.h everywhere (correctly rounded fp32 steps, independent
// of -prec-div / -ftz flags).
//
// Work unit: one 16-element block (two 16-byte loads, one 8-byte store, one
// scale byte) of the unit stream in lowbit/fp4_quant/stream.cuh (persistent
// grid, coalesced, the next unit's loads in flight; shared with the MXFP4
// experts kernel of lowbit-mxfp4, as is lowbit/fp4_quant/experts.cuh). No
// allocation, no inter-block state: graph-capturable.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <lowbit/cuda_utils.h>
#include <lowbit/fp4_quant/e2m1_pack.cuh>
#include <lowbit/fp4_quant/experts.cuh>
#include <lowbit/fp4_quant/stream.cuh>
#include <lowbit/nvfp4_codec.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "../nvfp4_quant.h"

namespace lowbit::nvfp4::dev {

using namespace lowbit::fp4_quant;  // the shared unit stream, e2m1 packing, expert helpers
using lowbit::nvfp4::block_out_scale_rcp;
using lowbit::nvfp4::block_scale_byte;
using lowbit::nvfp4::e4m3_decode;
using lowbit::nvfp4::global_scale_rcp;


// SPEC §1.2 step 4 for scale byte `sf` (rcp_gs = fp32(1/gs)); NaN stands for
// "every code 0" (sf_f is 0, or the byte is a NaN block's).
__device__ __forceinline__ float out_scale(uint8_t sf, float rcp_gs) {
  const float sf_f = e4m3_decode(sf);
  return fabsf(sf_f) > 0.0f ? block_out_scale_rcp(sf_f, rcp_gs) : __int_as_float(0x7FFFFFFF);
}

// Dense ops (one gs): out_scale of every scale byte, built by each block once
// (the same function, so the same bits as computing it per block).
struct OutScaleTable {
  float* t;
  __device__ __forceinline__ void build(float rcp_gs) {
    t[threadIdx.x] = out_scale(static_cast<uint8_t>(threadIdx.x), rcp_gs);  // 256 threads
    __syncthreads();
  }
};

// Quantize one block: writes its 16 codes to `out` (8 bytes), returns the
// scale byte. `os_of(sf)` gives out_scale (NaN: all codes 0).
template <class Round, typename T, bool SILU, class OsOf>
__device__ __forceinline__ uint8_t quant_unit(const Raw<SILU>& raw, float gs, OsOf os_of,
                                              uint8_t* out) {
  float v[16];
  to_values<T, SILU>(raw, v);
  float amax = 0.0f;
#pragma unroll
  for (int i = 0; i < 16; ++i) amax = max_nan(amax, fabsf(v[i]));
  const uint8_t sf = static_cast<uint8_t>(block_scale_byte(amax, gs));
  const float os = os_of(sf);
  // sf == 0 (all-zero or underflowing block) or NaN (a NaN in the block): every
  // code 0. os > 0 otherwise, so y = v * os has the sign of v.
  const bool zero = os != os;
  const uint2 packed = pack16<Round, SILU>(raw, v, os);
  *reinterpret_cast<uint2*>(out) = zero ? make_uint2(0u, 0u) : packed;
  return amax != amax ? uint8_t{0x7F} : sf;
}

// --------------------------------------------------------------- dense ops
// Phase A: units u < m * nb are blocks (r, c). The thread of a row's last
// block also zeroes that row's padding: scale columns nb.. and, for a padded
// output (pn > n), code bytes n/2..pn/2-1. Phase B (swizzled only): the padded
// rows m..Mp-1, all in the last 128-row tile, in 16-byte chunks of the tile
// (rows i, i+32, i+64, i+96 x 4 columns).
struct DenseArgs {
  StreamArgs s;
  uint8_t* out;
  uint8_t* sf;
  const float* gs;
  uint32_t m, n, kp4, units_b;
  uint32_t out_row;   // output bytes per row: pn / 2
  uint32_t sf_cols;   // linear layout: scale bytes per row, pn / 16
};

// Zero code bytes [n/2, pn/2) of one output row (padded outputs only).
__device__ __forceinline__ void zero_pad_codes(uint8_t* row, uint32_t from, uint32_t to) {
  for (uint32_t j = from; j < to; ++j) row[j] = 0;
}

template <class Round, typename T, bool SILU, bool SWZ>
__global__ void __launch_bounds__(256, kMinBlocks<SILU>) dense_kernel(const DenseArgs a) {
  const float gs = __ldg(a.gs);
  __shared__ float s_os[256];
  OutScaleTable table{s_os};
  const uint32_t nb = a.s.nb;
  auto init = [&] { table.build(global_scale_rcp(gs)); };
  for_each_unit<T, SILU>(a.s, init, [&](uint32_t r, uint32_t c, const Raw<SILU>& raw) {
    uint8_t* row = a.out + int64_t(r) * a.out_row;
    const uint8_t sf = quant_unit<Round, T, SILU>(raw, gs, [&](uint8_t b) { return table.t[b]; },
                                                  row + int64_t(c) * 8);
    if constexpr (SWZ) {
      a.sf[swz_offset(r, c, a.kp4)] = sf;
      if (c == nb - 1) zero_pad_cols(a.sf, r, nb, a.kp4);
    } else {
      a.sf[int64_t(r) * a.sf_cols + c] = sf;
      if (c == nb - 1)
        for (uint32_t cc = nb; cc < a.sf_cols; ++cc) a.sf[int64_t(r) * a.sf_cols + cc] = 0;
    }
    if (c == nb - 1) zero_pad_codes(row, a.n / 2, a.out_row);
  });
  if constexpr (SWZ) {
    const uint32_t tile = a.m >> 7;  // the last tile holds every padded row
    for (uint32_t w = blockIdx.x * blockDim.x + threadIdx.x; w < a.units_b;
         w += gridDim.x * blockDim.x) {
      uint8_t* chunk = a.sf + (size_t(tile) * a.kp4 + (w >> 5)) * 512u + (w & 31u) * 16u;
      const uint32_t row = tile * 128u + (w & 31u);  // rows row + 32 j, j = 0..3
      if (row >= a.m) {
        *reinterpret_cast<uint4*>(chunk) = make_uint4(0u, 0u, 0u, 0u);
      } else {
#pragma unroll
        for (int j = 1; j < 4; ++j)
          if (row + 32u * j >= a.m) *reinterpret_cast<uint32_t*>(chunk + 4 * j) = 0u;
      }
    }
  }
}

// --------------------------------------------------------------- experts
// Blocks of input rows (r, c) as above; the row's expert comes from a search
// over `off` (upper_index: on the device, no host sync), cached per thread
// since a segment walks rows in order. Rows outside [off[0], off[E]) are orphans and
// write nothing. Expert e's scales go to rows sf_off[e] + (r - off[e]) of the
// swizzled buffer; its region ends at sf_off[e+1] (SPEC: round_up(m_e, 128)
// rows). The padded rows of a region are zeroed by the threads of its real
// rows (write_region_scale, lowbit/fp4_quant/experts.cuh).
struct ExpertArgs {
  StreamArgs s;
  uint8_t* out;
  uint8_t* sf;
  const float* gs;
  const int32_t* off;
  const int32_t* sf_off;
  uint32_t n, kp4, sf_rows;
  int32_t num_experts;
};

// The expert of input row x and what the kernel needs of it, remembered
// between calls (a thread's rows only grow).
struct ExpertCache {
  int32_t e = -1, lo = 0, hi = 0;  // rows [lo, hi) of the input
  int32_t sf_lo = 0, sf_hi = 0;    // its scale region, clamped to the buffer
  float gs = 0.0f, rcp_gs = 0.0f;
  ExpertGuess guess;
  __device__ __forceinline__ bool find(const ExpertArgs& a, const int32_t* off, const int32_t* sfo,
                                       const float* gsp, int32_t x) {
    if (x < lo || x >= hi) {
      const int32_t E = a.num_experts;
      e = guess.expert(off, E, x);
      if (e >= 0 && e < E) {
        lo = off[e];
        hi = off[e + 1];
        sf_lo = max(sfo[e], 0);
        sf_hi = min(sfo[e + 1], int32_t(a.sf_rows));
        gs = gsp[e];
        rcp_gs = global_scale_rcp(gs);
      } else {
        e = -1;
        lo = hi = 0;
      }
    }
    return e >= 0;
  }
};

template <class Round, typename T, bool SILU, bool SMEM>
__global__ void __launch_bounds__(256, kMinBlocks<SILU>) experts_kernel(const ExpertArgs a) {
  __shared__ int32_t s_off[SMEM ? kMaxSmemOffsets : 1];
  __shared__ int32_t s_sfo[SMEM ? kMaxSmemOffsets : 1];
  constexpr bool kGsSmem = SMEM;
  __shared__ float s_gs[kGsSmem ? kMaxSmemOffsets : 1];
  const int32_t* off = a.off;
  const int32_t* sfo = a.sf_off;
  const float* gsp = a.gs;
  if constexpr (SMEM) {
    off = s_off;
    sfo = s_sfo;
  }
  if constexpr (kGsSmem) gsp = s_gs;
  ExpertCache ex;
  // Offsets (and gs) are staged in shared memory once the first loads are in flight.
  auto init = [&] {
    if constexpr (SMEM) {
      stage_offsets(s_off, s_sfo, a.off, a.sf_off, a.num_experts, [&](int32_t i) {
        if constexpr (kGsSmem) {
          if (i < a.num_experts) s_gs[i] = __ldg(a.gs + i);
        }
      });
    }
    ex.guess.init(off, a.num_experts);
  };
  const uint32_t nb = a.s.nb, kp4 = a.kp4;
  for_each_unit<T, SILU>(a.s, init, [&](uint32_t r, uint32_t c, const Raw<SILU>& raw) {
    if (!ex.find(a, off, sfo, gsp, int32_t(r))) return;  // an orphan row: nothing is written
    const float gs = ex.gs;
    const uint8_t sf = quant_unit<Round, T, SILU>(
        raw, gs, [&](uint8_t b) { return out_scale(b, ex.rcp_gs); },
        a.out + int64_t(r) * (a.n / 2) + int64_t(c) * 8);
    write_region_scale(a.sf, sf, int32_t(r) - ex.lo, c, nb, kp4, ex.sf_lo, ex.sf_hi, ex.hi - ex.lo);
  });
}

// --------------------------------------------------------------- launch
inline StreamArgs stream_args(const QuantProblem& p) {
  const uint32_t nb = static_cast<uint32_t>(p.n / 16);
  return {p.in, nb, uint32_t(p.m * nb), 0, p.silu ? 2 * p.n : p.n, p.n, FastDiv(nb)};
}

template <class Round, typename T>
inline void launch_dense(const QuantProblem& p, cudaStream_t stream, int sm_count) {
  const uint32_t kp4 = static_cast<uint32_t>(p.kp / 4);
  const int64_t units_a = p.m * (p.n / 16);
  const int64_t units_b = (p.swizzled && p.m % 128 != 0) ? int64_t(kp4) * 32 : 0;
  const int64_t units = units_a + units_b;
  if (units == 0) return;
  LOWBIT_CHECK(units < (int64_t(1) << 31), "lowbit_nvfp4_quant: problem too large (", units,
               " blocks; at most 2^31 per call)");
  DenseArgs a{stream_args(p), p.out, p.sf, p.gs, uint32_t(p.m), uint32_t(p.n), kp4,
              uint32_t(units_b), uint32_t(p.pn / 2), uint32_t(p.kp)};
  auto go = [&](auto tag) { launch_persistent(tag, a, units, units_a, stream, sm_count); };
  if (p.silu) {
    if (p.swizzled) go(KernelTag<&dense_kernel<Round, T, true, true>>{});
    else go(KernelTag<&dense_kernel<Round, T, true, false>>{});
  } else {
    if (p.swizzled) go(KernelTag<&dense_kernel<Round, T, false, true>>{});
    else go(KernelTag<&dense_kernel<Round, T, false, false>>{});
  }
}

// Padding rows are written by the real rows' threads, so the grid covers the
// input's blocks only.
template <class Round, typename T>
inline void launch_experts(const QuantProblem& p, cudaStream_t stream, int sm_count) {
  const int64_t units_a = p.m * (p.n / 16);
  if (units_a == 0) return;
  LOWBIT_CHECK(units_a < (int64_t(1) << 31),
               "lowbit_nvfp4_quant: problem too large (at most 2^31 blocks per call)");
  // Scale offsets are 32-bit in the kernel (lowbit/fp4_quant/experts.cuh).
  LOWBIT_CHECK(p.sf_rows * p.kp <= (int64_t(1) << 32), "lowbit_nvfp4_quant: output_scale too large (",
               p.sf_rows * p.kp, " bytes of whole 128-row tiles; at most 2^32 per call)");
  ExpertArgs a{stream_args(p), p.out, p.sf, p.gs, p.off, p.sf_off, uint32_t(p.n),
               uint32_t(p.kp / 4), uint32_t(p.sf_rows), p.num_experts};
  auto go = [&](auto tag) { launch_persistent(tag, a, units_a, units_a, stream, sm_count); };
  const bool smem = p.num_experts + 1 <= kMaxSmemOffsets;
  if (p.silu) {
    if (smem) go(KernelTag<&experts_kernel<Round, T, true, true>>{});
    else go(KernelTag<&experts_kernel<Round, T, true, false>>{});
  } else {
    if (smem) go(KernelTag<&experts_kernel<Round, T, false, true>>{});
    else go(KernelTag<&experts_kernel<Round, T, false, false>>{});
  }
}

template <class Round, typename T>
inline void launch_typed(const QuantProblem& p, cudaStream_t stream, int sm_count) {
  if (p.experts) launch_experts<Round, T>(p, stream, sm_count);
  else launch_dense<Round, T>(p, stream, sm_count);
}

template <class Round>
inline void launch_quant(const QuantProblem& p, void* stream, int sm_count) {
  auto s = static_cast<cudaStream_t>(stream);
  if (p.bf16) launch_typed<Round, __nv_bfloat16>(p, s, sm_count);
  else launch_typed<Round, __half>(p, s, sm_count);
}

}  // namespace lowbit::nvfp4::dev