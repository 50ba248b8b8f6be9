// NVFP4 quantization kernels shared by the SM90, SM100 and SM120 builds.
// Each arch folder instantiates them with its own e2m1 rounding (`Round`):
// software on Hopper, the cvt.rn.satfinite.e2m1x2.f32 instruction on Blackwell.
// The scale math is docs/SPEC.md §1.2 from lowbit/nvfp4_codec.h everywhere
// (correctly rounded fp32 steps, independent of -prec-div / -ftz flags).
//
// Work unit: one 16-element block (two 16-byte loads, one 8-byte store, one
// scale byte); consecutive threads take consecutive blocks of a row so loads
// and stores are coalesced. Persistent grid; every thread walks its units with
// the next iteration's loads in flight (for_each_unit, shared by the dense and
// the experts kernels). No allocation, no inter-block state: graph-capturable.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <lowbit/cuda_utils.h>
#include <lowbit/nvfp4_codec.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "../nvfp4_quant.h"

namespace lowbit::nvfp4::dev {

// Minimum resident 256-thread blocks per SM (the register cap) of the plain
// kernels and of the fused SiLU ones (four more loads per unit in flight).
template <bool SILU>
constexpr int kMinBlocks = SILU ? 3 : 4;

using lowbit::nvfp4::block_out_scale_rcp;
using lowbit::nvfp4::block_scale_byte;
using lowbit::nvfp4::e2m1_magnitude_code;
using lowbit::nvfp4::e4m3_decode;
using lowbit::nvfp4::global_scale_rcp;
using lowbit::nvfp4::swizzled_offset;

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
// every finite input. Works on magnitudes; the caller adds the sign bits.
struct SoftwareE2M1 {
  static constexpr bool kMagnitude = true;
  // |y| -> code 0..7 (the codec's software rounding).
  __device__ __forceinline__ static uint32_t code(float a) { return e2m1_magnitude_code(a); }
  // 8 magnitudes -> 8 codes, element 0 in the low nibble.
  __device__ __forceinline__ static uint32_t pack8(const float* a) {
    uint32_t r = 0;
#pragma unroll
    for (int i = 0; i < 8; ++i) r |= code(a[i]) << (4 * i);
    return r;
  }
};

// The e2m1 sign bits (bit 4j + 3 for element j) of 8 elements, given words
// whose byte k has element 2k's sign in bit 7 (`even`) and element 2k+1's
// (`odd`).
__device__ __forceinline__ uint32_t place_signs(uint32_t even, uint32_t odd) {
  return ((even >> 4) & 0x08080808u) | (odd & 0x80808080u);
}
// ... of 8 16-bit inputs (element 2i in the low half of word i; sign = bit 15).
__device__ __forceinline__ uint32_t signs8(const uint4& w) {
  const uint32_t a = __byte_perm(w.x, w.y, 0x7351);  // x.b1 y.b1 x.b3 y.b3
  const uint32_t b = __byte_perm(w.z, w.w, 0x7351);  // z.b1 w.b1 z.b3 w.b3
  return place_signs(__byte_perm(a, b, 0x5410), __byte_perm(a, b, 0x7632));
}
// ... of 8 fp32 values (sign = bit 7 of byte 3).
__device__ __forceinline__ uint32_t signs8(const float* v) {
  const auto u = [&](int i) { return __float_as_uint(v[i]); };
  const uint32_t e = __byte_perm(__byte_perm(u(0), u(2), 0x7373), __byte_perm(u(4), u(6), 0x7373),
                                 0x5410);
  const uint32_t o = __byte_perm(__byte_perm(u(1), u(3), 0x7373), __byte_perm(u(5), u(7), 0x7373),
                                 0x5410);
  return place_signs(e, o);
}

__device__ __forceinline__ float max_nan(float a, float b) {
  float r;
  asm("max.NaN.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
  return r;
}

// The fast path: the same product from the approximate units (MUFU ex2 and
// rcp), ~12 instead of ~26 instructions per element. Its result p is within
// kSiluUlps fp32 ulps of silu_mul_exact (error budget, relative, in units of
// 2^-23: exp(-g) 2 (ex2.approx, its argument's rounding error folded back in
// first order: no |g|-proportional term) + expf's own 2 + 1 (the sum) + 1
// (rcp.approx) + 2 (two products each side) = 8, i.e. <= 16 ulps of p; doubled
// for margin). Where d = 1 + exp(-g) is not below kSiluMaxD (g < -13.8, g = ±inf,
// NaN: the bound above needs a finite, moderate d) the result is replaced by
// kSiluFlagged, a value every near_tie flags (low 16 bits at the bf16 tie, and
// below fp16's normal range), so those elements take the exact path.
constexpr uint32_t kSiluUlps = 32;
constexpr float kSiluMaxD = 1048576.0f;  // 2^20
constexpr uint32_t kSiluFlagged = 0x00008000u;
template <typename T> struct InputTraits;
template <> struct InputTraits<__nv_bfloat16> {
  // Two fp32 rounded to bf16 (nearest even) and back, one conversion.
  __device__ __forceinline__ static void round_pair(float& a, float& b) {
    const __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
    a = __low2float(h);
    b = __high2float(h);
  }
  // Whether the bf16 rounding of an fp32 within kSiluUlps ulps of p can
  // differ from p's: its low 16 bits lie within kSiluUlps of the tie 0x8000
  // (bit patterns are monotone in magnitude, and bf16 is fp32's top half
  // over the whole range, subnormals and overflow to Inf included).
  __device__ __forceinline__ static bool near_tie(float p) {
    return __float_as_uint(p) * 65536u + ((0x8000u + kSiluUlps) << 16) <
           ((2 * kSiluUlps + 1) << 16);
  }
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
  __device__ __forceinline__ static void round_pair(float& a, float& b) {
    const __half2 h = __floats2half2_rn(a, b);
    a = __low2float(h);
    b = __high2float(h);
  }
  // As for bf16 over fp16's normal range (13 dropped bits, tie 0x1000;
  // overflow to Inf starts at the tie above 65504); every nonzero |p| below
  // 2^-14 (fp16 subnormals round at a coarser bit) is flagged.
  __device__ __forceinline__ static bool near_tie(float p) {
    const uint32_t b = __float_as_uint(p);
    return b * 524288u + ((0x1000u + kSiluUlps) << 19) < ((2 * kSiluUlps + 1) << 19) ||
           (b & 0x7FFFFFFFu) - 1u < 0x387FFFFFu;
  }
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
// elements), loaded one loop iteration ahead of its use.
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

// ------------------------------------------------------------- fused SiLU
// silu(g)·u of SPEC §2.1: expf, IEEE division and product in fp32 (vLLM's
// order of operations), before the rounding to the input dtype. The slow
// reference of the fast path below.
__device__ __forceinline__ float silu_mul_exact(float g, float u) {
  return __fmul_rn(__fdiv_rn(g, __fadd_rn(1.0f, expf(-g))), u);
}

__device__ __forceinline__ float opaque(float x) {
  float y;
  asm volatile("mov.b32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
__device__ __forceinline__ float ex2_approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
__device__ __forceinline__ float rcp_approx(float x) {
  float y;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ float silu_mul_fast(float g, float u) {
  constexpr float kLog2e = 1.44269502f;      // fp32(log2 e)
  constexpr float kLn2Hi = 0.693145752f;     // ln 2 to 15 bits (Cody-Waite split)
  constexpr float kLn2Lo = 1.42860677e-06f;  // ln 2 - kLn2Hi
  // exp(-g) = 2^t e^rho with t = fl(-g log2 e) and rho = -g - t ln 2 (tiny,
  // Cody-Waite), e^rho to first order.
  const float t = __fmul_rn(g, -kLog2e);
  const float rho = __fmaf_rn(-t, kLn2Lo, __fmaf_rn(-t, kLn2Hi, -g));
  const float e0 = ex2_approx(t);
  const float e = __fmaf_rn(e0, rho, e0);
  const float d = __fadd_rn(1.0f, e);
  const float p = __fmul_rn(__fmul_rn(g, rcp_approx(d)), u);
  return d < kSiluMaxD ? p : __int_as_float(kSiluFlagged);
}

// Raw block -> 16 fp32 values; with SILU, silu(g)·u rounded to the input
// dtype as vLLM does before quantizing. The fast product is kept where its
// rounding to T cannot differ from the exact product's (no rounding boundary
// of T within kSiluUlps fp32 ulps: InputTraits<T>::near_tie); the rare rest
// (~0.1 % of elements) is recomputed exactly, so the bytes are those of
// silu_mul_exact everywhere.
template <typename T, bool SILU>
__device__ __forceinline__ void to_values(const Raw<SILU>& r, float* v) {
  InputTraits<T>::to_float(r.g0, v);
  InputTraits<T>::to_float(r.g1, v + 8);
  if constexpr (SILU) {
    float g[16], u[16];
#pragma unroll
    for (int i = 0; i < 16; ++i) g[i] = v[i];
    InputTraits<T>::to_float(r.u0, u);
    InputTraits<T>::to_float(r.u1, u + 8);
    bool near = false;
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      v[i] = silu_mul_fast(g[i], u[i]);
      near |= InputTraits<T>::near_tie(v[i]);
    }
    if (__builtin_expect(near, false)) {
      // The test again (through an opaque move, so that the compiler does not
      // keep 16 flags from the fast loop alive in a register).
#pragma unroll
      for (int i = 0; i < 16; ++i)
        if (InputTraits<T>::near_tie(opaque(v[i]))) v[i] = silu_mul_exact(g[i], u[i]);
    }
#pragma unroll
    for (int i = 0; i < 16; i += 2) InputTraits<T>::round_pair(v[i], v[i + 1]);
  }
}

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
  uint2 packed;
  if constexpr (Round::kMagnitude) {
    float a[16];
#pragma unroll
    for (int i = 0; i < 16; ++i) a[i] = __fmul_rn(fabsf(v[i]), os);
    uint32_t s0, s1;
    if constexpr (SILU) {
      s0 = signs8(v);
      s1 = signs8(v + 8);
    } else {
      s0 = signs8(raw.g0);
      s1 = signs8(raw.g1);
    }
    packed = make_uint2(Round::pack8(a) | s0, Round::pack8(a + 8) | s1);
  } else {
    float y[16];
#pragma unroll
    for (int i = 0; i < 16; ++i) y[i] = __fmul_rn(v[i], os);
    packed = make_uint2(Round::pack8(y), Round::pack8(y + 8));
  }
  *reinterpret_cast<uint2*>(out) = zero ? make_uint2(0u, 0u) : packed;
  return amax != amax ? uint8_t{0x7F} : sf;
}

__device__ __forceinline__ uint32_t swz_offset(uint32_t r, uint32_t c, uint32_t kp4) {
  return swizzled_offset<uint32_t>(r, c, kp4);
}

// Zero the padded scale columns nb..Kp-1 of row r (same 4-column group as the
// row's last block, so the thread of that block does it).
__device__ __forceinline__ void zero_pad_cols(uint8_t* sf, uint32_t r, uint32_t nb, uint32_t kp4) {
  for (uint32_t cc = nb; cc < kp4 * 4; ++cc) sf[swz_offset(r, cc, kp4)] = 0;
}

// Phase-A units walked by one thread: segment `seg` (seg_len units, a
// multiple of 256) at offset i * 256 + tid; after the last i, segment
// seg + gridDim.x. The sequence only grows, so the first unit past `end` ends it.
struct UnitWalk {
  uint32_t seg, i, steps, seg_len;
  __device__ __forceinline__ uint32_t unit() const { return seg * seg_len + i * 256u + threadIdx.x; }
  __device__ __forceinline__ void next() {
    if (++i == steps) {
      i = 0;
      seg += gridDim.x;
    }
  }
};

struct StreamArgs {
  const void* in;
  uint32_t nb, units_a, seg_len;
  int64_t in_stride, up_offset;  // elements per input row; gate -> up (SiLU)
  FastDiv div_nb;
};

// Calls body(r, c, raw) for every phase-A unit (row r, block c) of this
// thread, the next unit's loads issued before the current one is quantized
// (a load is always in flight). init() runs in every thread once the first
// loads are in flight (it may synchronize).
template <typename T, bool SILU, class Init, class Body>
__device__ __forceinline__ void for_each_unit(const StreamArgs& a, Init&& init, Body&& body) {
  UnitWalk w{blockIdx.x, 0, a.seg_len / 256u, a.seg_len};
  const uint32_t end = a.units_a;
  auto fetch = [&](Raw<SILU>& raw, uint32_t& u, uint32_t& r) {
    u = w.unit();
    w.next();
    if (u < end) {
      r = a.div_nb.div(u);
      const uint32_t c = u - r * a.nb;
      raw = load_raw<T, SILU>(
          static_cast<const T*>(a.in) + int64_t(r) * a.in_stride + int64_t(c) * 16, a.up_offset);
    }
  };
  Raw<SILU> cur;
  uint32_t ur, rr;
  fetch(cur, ur, rr);
  init();
  while (ur < end) {
    Raw<SILU> nxt;
    uint32_t un, rn;
    fetch(nxt, un, rn);
    body(rr, ur - rr * a.nb, cur);
    cur = nxt;
    ur = un;
    rr = rn;
  }
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
// rows, at the time those write their own scales (so every 32-byte sector of
// the scale buffer is completed while it is in L2; a later pass found the
// sectors evicted half written). A tile's 512-byte chunk of column group g
// holds 32 16-byte chunk rows i (rows i, i+32, i+64, i+96 x 4 columns). The
// four threads of (real row j < 32 of a tile, block 4g + q) share that chunk:
// thread q >= 1 zeroes row j + 32q in chunk row j when it is padding, and in a
// tile with m_t < 32 real rows (so chunk rows m_t..31 are all padding) thread
// (j, q) zeroes the chunk rows i = 4 (j + n m_t) + q >= m_t, n = 0, 1, ...
// (each i < 32 exactly once). The four lanes of a group thus store 64
// contiguous, aligned bytes in one instruction: whole 32-byte sectors (v4
// gave the lanes rows j + 4 n apart, so every sector was written as two
// halves by two warps, one 16-byte store per lane and sector). Where the last
// group has fewer than 4 blocks, its last block also does the missing q.
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

// Largest e in [0, E] with a[e] <= x (a non-decreasing); -1 if none. The
// search starts at `guess` and walks: top-k routing gives every expert about
// the same number of rows, so the row's share of the range is usually the
// expert or one step from it (a lookup costs ~20 instructions instead of a
// ~10-step binary search's ~120, and every thread looks up each time its walk
// enters a new segment). After kWalkSteps it binary-searches what is left.
// For offsets that are not non-decreasing (bad input) the result is still in
// [-1, E]; the kernel clamps every region it writes.
constexpr int kWalkSteps = 4;
__device__ __forceinline__ int32_t upper_index(const int32_t* a, int32_t E, int32_t x,
                                               int32_t guess) {
  if (a[0] > x) return -1;
  int32_t lo = 0, hi = E, g = min(max(guess, 0), E);  // the answer is in [lo, hi]
#pragma unroll 1
  for (int s = 0; s < kWalkSteps; ++s) {
    if (a[g] <= x) {
      lo = g;
      if (g == E || a[g + 1] > x) return g;
      ++g;
    } else {
      hi = g - 1;  // g >= 1: a[0] <= x
      --g;
    }
  }
  while (lo < hi) {
    const int32_t mid = (lo + hi + 1) >> 1;
    if (a[mid] <= x) lo = mid; else hi = mid - 1;
  }
  return lo;
}

// The expert of input row x and what the kernel needs of it, remembered
// between calls (a thread's rows only grow).
struct ExpertCache {
  int32_t e = -1, lo = 0, hi = 0;  // rows [lo, hi) of the input
  int32_t sf_lo = 0, sf_hi = 0;    // its scale region, clamped to the buffer
  float gs = 0.0f, rcp_gs = 0.0f;
  float per_row = 0.0f;            // E / (off[E] - off[0]): the walk's starting guess
  __device__ __forceinline__ void init_guess(const int32_t* off, int32_t E) {
    const int32_t rows = off[E] - off[0];
    per_row = rows > 0 ? float(E) / float(rows) : 0.0f;
  }
  __device__ __forceinline__ bool find(const ExpertArgs& a, const int32_t* off, const int32_t* sfo,
                                       const float* gsp, int32_t x) {
    if (x < lo || x >= hi) {
      const int32_t E = a.num_experts;
      e = upper_index(off, E, x, __float2int_rz((float(x) - float(off[0])) * per_row));
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

constexpr int kMaxSmemOffsets = 1024;  // E + 1 staged in shared memory up to this

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
      for (int32_t i = threadIdx.x; i <= a.num_experts; i += blockDim.x) {
        s_off[i] = __ldg(a.off + i);
        s_sfo[i] = __ldg(a.sf_off + i);
        if constexpr (kGsSmem) {
          if (i < a.num_experts) s_gs[i] = __ldg(a.gs + i);
        }
      }
      __syncthreads();
    }
    ex.init_guess(off, a.num_experts);
  };
  const uint32_t nb = a.s.nb, kp4 = a.kp4;
  for_each_unit<T, SILU>(a.s, init, [&](uint32_t r, uint32_t c, const Raw<SILU>& raw) {
    if (!ex.find(a, off, sfo, gsp, int32_t(r))) return;  // an orphan row: nothing is written
    const float gs = ex.gs;
    const uint8_t sf = quant_unit<Round, T, SILU>(
        raw, gs, [&](uint8_t b) { return out_scale(b, ex.rcp_gs); },
        a.out + int64_t(r) * (a.n / 2) + int64_t(c) * 8);
    // Scales only inside the expert's region (bad offsets can put a row
    // outside: then no scale rather than out of bounds).
    const int32_t lr = int32_t(r) - ex.lo;
    const int32_t p = ex.sf_lo + lr;
    if (p >= ex.sf_hi) return;
    a.sf[swz_offset(p, c, kp4)] = sf;
    if (c == nb - 1) zero_pad_cols(a.sf, p, nb, kp4);
    if ((ex.sf_lo & 127) != 0 || (lr & 127) >= 32) return;
    // Padding rows owned by this unit (see above); tiles start at sf_lo.
    const int32_t tile0 = p & ~127, j = lr & 127;
    const int32_t m_t = min(ex.hi - ex.lo - (lr - j), 128);  // real rows of the tile
    const int32_t rows = min(ex.sf_hi - tile0, 128);         // rows of the tile in the region
    uint8_t* base = a.sf + (size_t(tile0 >> 7) * kp4 + (c >> 2)) * 512u;
    const uint32_t q_end = c == nb - 1 ? 4u : (c & 3u) + 1;
    for (uint32_t q = c & 3u; q < q_end; ++q) {
      const int32_t jq = j + 32 * int32_t(q);
      if (q > 0 && jq >= m_t && jq < rows) *reinterpret_cast<uint32_t*>(base + j * 16 + 4 * q) = 0u;
      if (m_t >= 32) continue;
      for (int32_t i = 4 * j + int32_t(q); i < 32; i += 4 * m_t) {
        if (i < m_t) continue;
        if (i + 96 < rows) {
          *reinterpret_cast<uint4*>(base + i * 16) = make_uint4(0u, 0u, 0u, 0u);
        } else {
          for (int k = 0; k < 4; ++k)
            if (i + 32 * k < rows) *reinterpret_cast<uint32_t*>(base + i * 16 + 4 * k) = 0u;
        }
      }
    }
  });
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

// Segment length: kSegment x 256 units, but never more than an
// even share per block (a multiple of 256), so a small problem still spreads
// over every block (one unit per thread) instead of queueing several units on
// a few threads.
constexpr uint32_t kSegment = 4;  // units (in 256s) a block takes at a time

inline uint32_t seg_len_for(int64_t units_a, int grid) {
  const int64_t per = (units_a + grid - 1) / grid;
  const uint32_t share = static_cast<uint32_t>(std::max<int64_t>(256, (per + 255) / 256 * 256));
  return std::min<uint32_t>(256u * kSegment, share);
}

#define LOWBIT_K(...) std::integral_constant<decltype(&__VA_ARGS__), &__VA_ARGS__>{}

// Launch `kernel` (given as LOWBIT_K tag) on a persistent grid for `units`.
template <class Tag, class Args>
inline void launch_persistent(Tag, Args& a, int64_t units, int64_t units_a, cudaStream_t stream,
                              int sm_count) {
  constexpr auto kernel = Tag::value;
  const int grid = grid_for<kernel>(units, sm_count);
  a.s.seg_len = seg_len_for(units_a, grid);
  kernel<<<grid, 256, 0, stream>>>(a);
  LOWBIT_CHECK_LAUNCH();
}

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
    if (p.swizzled) go(LOWBIT_K(dense_kernel<Round, T, true, true>));
    else go(LOWBIT_K(dense_kernel<Round, T, true, false>));
  } else {
    if (p.swizzled) go(LOWBIT_K(dense_kernel<Round, T, false, true>));
    else go(LOWBIT_K(dense_kernel<Round, T, false, false>));
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
  ExpertArgs a{stream_args(p), p.out, p.sf, p.gs, p.off, p.sf_off, uint32_t(p.n),
               uint32_t(p.kp / 4), uint32_t(p.sf_rows), p.num_experts};
  auto go = [&](auto tag) { launch_persistent(tag, a, units_a, units_a, stream, sm_count); };
  const bool smem = p.num_experts + 1 <= kMaxSmemOffsets;
  if (p.silu) {
    if (smem) go(LOWBIT_K(experts_kernel<Round, T, true, true>));
    else go(LOWBIT_K(experts_kernel<Round, T, true, false>));
  } else {
    if (smem) go(LOWBIT_K(experts_kernel<Round, T, false, true>));
    else go(LOWBIT_K(experts_kernel<Round, T, false, false>));
  }
}
#undef LOWBIT_K

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
