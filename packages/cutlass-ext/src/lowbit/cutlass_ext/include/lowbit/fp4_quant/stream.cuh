// The unit stream shared by the FP4 quantization kernels (NVFP4: lowbit-
// nvfp4-quant; MXFP4: lowbit-mxfp4): one unit = 16 consecutive input elements
// of a row (two 16-byte loads, four with the fused SiLU's `up` half), the
// input converted to fp32 (with SiLU: silu(g)·u rounded to the input dtype,
// docs/SPEC.md §2.1, the bytes of expf + IEEE division), a persistent grid in
// which every thread walks its units with the next unit's loads in flight.
// Consecutive threads take consecutive units of a row, so loads and the
// 8-byte code stores are coalesced. The format (block size, scale rule) is the
// caller's: NVFP4 quantizes one unit as one block, MXFP4 pairs two lanes per
// 32-element block.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <lowbit/cuda_utils.h>
#include <lowbit/fp4_quant/e2m1_pack.cuh>

#include <algorithm>
#include <cstdint>
#include <type_traits>

namespace lowbit::fp4_quant {

// Minimum resident 256-thread blocks per SM (the register cap) of the plain
// kernels and of the fused SiLU ones (four more loads per unit in flight).
template <bool SILU>
constexpr int kMinBlocks = SILU ? 3 : 4;

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

// The 16 codes of a unit's values v (to_values) scaled by `mult` (> 0), as
// two words: e2m1(v[i] · mult), element 0 in the low nibble.
template <class Round, bool SILU>
__device__ __forceinline__ uint2 pack16(const Raw<SILU>& raw, const float* v, float mult) {
  if constexpr (Round::kMagnitude) {
    float a[16];
#pragma unroll
    for (int i = 0; i < 16; ++i) a[i] = __fmul_rn(fabsf(v[i]), mult);
    uint32_t s0, s1;  // mult > 0: the signs are v's (the raw input's without SiLU)
    if constexpr (SILU) {
      s0 = signs8(v);
      s1 = signs8(v + 8);
    } else {
      s0 = signs8(raw.g0);
      s1 = signs8(raw.g1);
    }
    return make_uint2(Round::pack8(a) | s0, Round::pack8(a + 8) | s1);
  } else {
    float y[16];
#pragma unroll
    for (int i = 0; i < 16; ++i) y[i] = __fmul_rn(v[i], mult);
    return make_uint2(Round::pack8(y), Round::pack8(y + 8));
  }
}

// The units walked by one thread: segment `seg` (seg_len units, a
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
  uint32_t nb, units_a, seg_len;  // units per row, in all (rows x nb), per segment (launch_persistent)
  int64_t in_stride, up_offset;  // elements per input row; gate -> up (SiLU)
  FastDiv div_nb;
};

// Calls body(r, c, raw) for every unit (row r, unit c of the row) of this
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

// A kernel as a type (launch_persistent's first argument).
template <auto Kernel>
using KernelTag = std::integral_constant<decltype(Kernel), Kernel>;

// Launch the kernel of `Tag` (a KernelTag) on a persistent grid for `units`
// (units_a of them walked by for_each_unit).
template <class Tag, class Args>
inline void launch_persistent(Tag, Args& a, int64_t units, int64_t units_a, cudaStream_t stream,
                              int sm_count) {
  constexpr auto kernel = Tag::value;
  const int grid = grid_for<kernel>(units, sm_count);
  a.s.seg_len = seg_len_for(units_a, grid);
  kernel<<<grid, 256, 0, stream>>>(a);
  LOWBIT_CHECK_LAUNCH();
}

}  // namespace lowbit::fp4_quant
