// MXFP4 experts quantization on every built CUDA architecture
// (docs/SPEC-MOE.md §5.1.1, §5.4-5.5). The scale rule and the e2m1 rounding
// are lowbit/mxfp4_codec.h's, the same bits as the CPU kernel; on the
// Blackwell families the codes come from cvt.rn.satfinite.e2m1x2.f32 (the
// same rounding, one instruction per pair).
//
// Work unit: a quarter of a 32-element block (8 values: one 16-byte load, two
// with SiLU; one 4-byte code store). The four lanes of a quad share a block:
// they combine their maxima with two shuffles and lane 0 writes the scale byte.
// Consecutive quads take consecutive blocks of a row, so a warp's loads and
// stores are contiguous (512 and 128 bytes). Grid-stride loop over a grid
// sized by occupancy (quads never straddle the loop's end); no allocation, no
// host sync: graph-capturable.
//
// Device metadata is not trusted (§5.0.3): a row's expert comes from a binary
// search over the offsets; an expert whose offsets break the contract (rows
// outside the input, region not a multiple of 128 or not inside the buffer /
// before the next region) writes nothing; rows outside [off[0], off[E]) write
// nothing. sorted_expert_ids is never read: the offsets define the result.
//
// Region padding (written 0x00, §5.1.3): the thread of the last block of a
// row zeroes the row's padded scale columns; the threads of the last 128-row
// tile's m_t real rows share its padded rows (row j zeroes rows m_t + j,
// m_t + j + m_t, ... of its own column).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <lowbit/cuda_utils.h>
#include <lowbit/mxfp4_codec.h>

#include <algorithm>
#include <cstdint>

#include "../mxfp4.h"

namespace mxfp4::dev {
namespace {

namespace mx = lowbit::mxfp4;

#if defined(__CUDA_ARCH_FEAT_SM100_ALL) || defined(__CUDA_ARCH_FEAT_SM101_ALL) || \
    defined(__CUDA_ARCH_FEAT_SM103_ALL) || defined(__CUDA_ARCH_FEAT_SM110_ALL) || \
    defined(__CUDA_ARCH_FEAT_SM120_ALL) || defined(__CUDA_ARCH_FEAT_SM121_ALL)
#define LOWBIT_MXFP4_HW_E2M1 1
#else
#define LOWBIT_MXFP4_HW_E2M1 0
#endif

constexpr int kThreads = 256;
constexpr int kMaxSmemOffsets = 1024;  // E + 1 offsets staged in shared memory up to this

struct Args {
  const void* in;
  uint8_t* out;
  uint8_t* sf;
  const int32_t* off;
  const int32_t* sf_off;
  uint32_t units;  // 4 * m * nb < 2^31 quarter blocks (the grid-stride index cannot wrap)
  uint32_t nb, kp, tiles;
  int64_t in_stride;  // input elements per row
  int32_t m, E, sf_rows;
};

// 16-bit input words -> fp32 (element 2i in the low half of word i).
template <typename T> struct Input;
template <> struct Input<__nv_bfloat16> {
  __device__ __forceinline__ static float lo(uint32_t w) { return __uint_as_float(w << 16); }
  __device__ __forceinline__ static float hi(uint32_t w) { return __uint_as_float(w & 0xFFFF0000u); }
  __device__ __forceinline__ static uint32_t pack(float a, float b) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(a, b);
    return *reinterpret_cast<const uint32_t*>(&v);
  }
  // The fp32 bits of the largest of two 16-bit magnitudes (the bit patterns of
  // |x| order like the values, NaN above Inf, in both 16-bit formats).
  __device__ __forceinline__ static uint32_t f32_bits(uint32_t h) { return h << 16; }
};
template <> struct Input<__half> {
  __device__ __forceinline__ static float lo(uint32_t w) { return __half2float(__ushort_as_half(w & 0xFFFFu)); }
  __device__ __forceinline__ static float hi(uint32_t w) { return __half2float(__ushort_as_half(w >> 16)); }
  __device__ __forceinline__ static uint32_t pack(float a, float b) {
    const __half2 v = __floats2half2_rn(a, b);
    return *reinterpret_cast<const uint32_t*>(&v);
  }
  __device__ __forceinline__ static uint32_t f32_bits(uint32_t h) {
    return __float_as_uint(__half2float(__ushort_as_half(static_cast<unsigned short>(h))));
  }
};

// A quarter block: 8 input elements as 4 words.
struct Quarter {
  uint32_t w[4];
};

__device__ __forceinline__ Quarter load_quarter(const void* p) {
  const uint4 v = __ldg(reinterpret_cast<const uint4*>(p));
  return {{v.x, v.y, v.z, v.w}};
}

// silu(g) * u in fp32 (IEEE division), rounded to the input dtype as vLLM does
// before quantizing (§5.5); written back into g.
template <typename T>
__device__ __forceinline__ void silu_mul(Quarter& g, const Quarter& u) {
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    float y[2] = {Input<T>::lo(g.w[i]), Input<T>::hi(g.w[i])};
    const float v[2] = {Input<T>::lo(u.w[i]), Input<T>::hi(u.w[i])};
#pragma unroll
    for (int j = 0; j < 2; ++j) y[j] = __fmul_rn(__fdiv_rn(y[j], __fadd_rn(1.0f, expf(-y[j]))), v[j]);
    g.w[i] = Input<T>::pack(y[0], y[1]);
  }
}

// Four input words (8 elements) -> four code bytes, element 2i in the low
// nibble of byte i.
template <typename T>
__device__ __forceinline__ uint32_t code_word(const uint32_t* w, float mult) {
  float y[8];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    y[2 * i] = __fmul_rn(Input<T>::lo(w[i]), mult);
    y[2 * i + 1] = __fmul_rn(Input<T>::hi(w[i]), mult);
  }
#if LOWBIT_MXFP4_HW_E2M1
  uint32_t r;
  // cvt puts its first source operand in the high nibble: pairs go (odd, even).
  asm("{\n"
      ".reg .b8 b0, b1, b2, b3;\n"
      "cvt.rn.satfinite.e2m1x2.f32 b0, %2, %1;\n"
      "cvt.rn.satfinite.e2m1x2.f32 b1, %4, %3;\n"
      "cvt.rn.satfinite.e2m1x2.f32 b2, %6, %5;\n"
      "cvt.rn.satfinite.e2m1x2.f32 b3, %8, %7;\n"
      "mov.b32 %0, {b0, b1, b2, b3};\n"
      "}"
      : "=r"(r)
      : "f"(y[0]), "f"(y[1]), "f"(y[2]), "f"(y[3]), "f"(y[4]), "f"(y[5]), "f"(y[6]), "f"(y[7]));
  return r;
#else
  uint32_t r = 0;
#pragma unroll
  for (int i = 0; i < 8; ++i) r |= mx::e2m1_encode(y[i]) << (4 * i);
  return r;
#endif
}

// The block's scale byte (every lane of the quad `mask` gets it) and this
// lane's 4 code bytes.
template <typename T>
__device__ __forceinline__ uint32_t quant_quarter(const Quarter& b, uint32_t mask, uint32_t& codes) {
  uint32_t m2 = 0;
#pragma unroll
  for (int i = 0; i < 4; ++i) m2 = __vmaxu2(m2, b.w[i] & 0x7FFF7FFFu);
  m2 = __vmaxu2(m2, __shfl_xor_sync(mask, m2, 1));
  m2 = __vmaxu2(m2, __shfl_xor_sync(mask, m2, 2));
  const uint32_t amax = Input<T>::f32_bits(max(m2 & 0xFFFFu, m2 >> 16));
  const uint32_t s = mx::scale_byte(amax);
  codes = mx::zero_codes(s) ? 0u : code_word<T>(b.w, mx::quant_multiplier(s));
  return s;
}

// Largest e in [0, E] with a[e] <= x, or -1.
__device__ __forceinline__ int32_t upper_index(const int32_t* a, int32_t E, int32_t x) {
  if (a[0] > x) return -1;
  int32_t lo = 0, hi = E;
  while (lo < hi) {
    const int32_t mid = (lo + hi + 1) >> 1;
    if (a[mid] <= x) lo = mid; else hi = mid - 1;
  }
  return lo;
}

// The expert of the rows a thread walks (rows only grow, so one lookup per
// expert change): input rows [lo, hi), scale region from row sf_lo.
struct Expert {
  int32_t lo = 0, hi = 0, sf_lo = 0;
  bool ok = false;  // the expert's metadata keeps the contract

  __device__ __forceinline__ bool find(const Args& a, const int32_t* off, const int32_t* sfo, int32_t r) {
    if (r >= lo && r < hi) return ok;
    const int32_t e = upper_index(off, a.E, r);
    if (e < 0 || e >= a.E || r >= off[e + 1]) return false;  // orphan row (or non-monotone offsets)
    lo = off[e];
    hi = off[e + 1];
    sf_lo = sfo[e];
    const int64_t end = int64_t(sf_lo) + ((int64_t(hi) - lo + 127) & ~int64_t(127));
    ok = lo >= 0 && hi <= a.m && sf_lo >= 0 && (sf_lo & 127) == 0 && end <= sfo[e + 1] && end <= a.sf_rows;
    return ok;
  }
};

// Zero scale (row lr, columns [c0, c1)) of a region.
__device__ __forceinline__ void zero_cols(uint8_t* region, uint32_t lr, uint32_t c0, uint32_t c1, uint32_t tiles) {
  for (uint32_t c = c0; c < c1; ++c) region[mx::swizzled_offset<uint64_t>(lr, c, tiles)] = 0;
}

// The padding of a region that the thread of (local row lr, column c) owns.
__device__ __forceinline__ void zero_padding(const Args& a, uint8_t* region, uint32_t lr, uint32_t c, uint32_t m_e) {
  const bool last_col = c == a.nb - 1;
  if (last_col) zero_cols(region, lr, a.nb, a.kp, a.tiles);
  const uint32_t tail = (m_e - 1) & ~127u;  // first local row of the last tile
  if (lr < tail) return;
  const uint32_t m_t = m_e - tail;
  for (uint32_t i = m_t + (lr - tail); i < 128; i += m_t) {
    region[mx::swizzled_offset<uint64_t>(tail + i, c, a.tiles)] = 0;
    if (last_col) zero_cols(region, tail + i, a.nb, a.kp, a.tiles);
  }
}

template <typename T, bool SILU, bool SMEM>
__global__ void __launch_bounds__(kThreads) experts_kernel(const Args a) {
  __shared__ int32_t s_off[SMEM ? kMaxSmemOffsets : 1];
  __shared__ int32_t s_sfo[SMEM ? kMaxSmemOffsets : 1];
  const int32_t* off = a.off;
  const int32_t* sfo = a.sf_off;
  if constexpr (SMEM) {
    for (int32_t i = threadIdx.x; i <= a.E; i += blockDim.x) {
      s_off[i] = __ldg(a.off + i);
      s_sfo[i] = __ldg(a.sf_off + i);
    }
    __syncthreads();
    off = s_off;
    sfo = s_sfo;
  }
  Expert ex;
  const uint32_t quad_mask = 0xFu << (threadIdx.x & 28u);  // this lane's quad within the warp
  for (uint32_t u = blockIdx.x * kThreads + threadIdx.x; u < a.units; u += gridDim.x * kThreads) {
    const uint32_t blk = u >> 2, q = u & 3u;
    const uint32_t r = blk / a.nb, c = blk - r * a.nb;
    if (!ex.find(a, off, sfo, int32_t(r))) continue;  // the same for the whole quad (same row)
    const T* src = static_cast<const T*>(a.in) + int64_t(r) * a.in_stride + int64_t(c) * mx::kBlock + q * 8;
    Quarter b = load_quarter(src);
    if constexpr (SILU) silu_mul<T>(b, load_quarter(src + a.in_stride / 2));
    uint32_t codes;
    const uint32_t s = quant_quarter<T>(b, quad_mask, codes);
    *reinterpret_cast<uint32_t*>(a.out + int64_t(r) * (a.nb * 16) + int64_t(c) * 16 + q * 4) = codes;
    if (q != 0) continue;
    uint8_t* region = a.sf + int64_t(ex.sf_lo) * a.kp;
    const uint32_t lr = r - uint32_t(ex.lo);
    region[mx::swizzled_offset<uint64_t>(lr, c, a.tiles)] = static_cast<uint8_t>(s);
    zero_padding(a, region, lr, c, uint32_t(ex.hi - ex.lo));
  }
}

// Blocks of kThreads that fit on the device at once (cached per kernel).
template <auto Kernel>
int resident_blocks(int sm_count) {
  static const int per_sm = [] {
    int b = 0;
    LOWBIT_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&b, Kernel, kThreads, 0));
    return std::max(b, 1);
  }();
  return per_sm * sm_count;
}

template <auto Kernel>
void launch(const Args& a, cudaStream_t stream, int sm_count) {
  const int64_t want = (int64_t(a.units) + kThreads - 1) / kThreads;
  const int grid = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(want, resident_blocks<Kernel>(sm_count))));
  Kernel<<<grid, kThreads, 0, stream>>>(a);
  LOWBIT_CHECK_LAUNCH();
}

template <typename T, bool SILU>
void launch_typed(const Args& a, cudaStream_t stream, int sm_count) {
  if (a.E + 1 <= kMaxSmemOffsets) launch<experts_kernel<T, SILU, true>>(a, stream, sm_count);
  else launch<experts_kernel<T, SILU, false>>(a, stream, sm_count);
}

}  // namespace
}  // namespace mxfp4::dev

namespace mxfp4 {

void experts_quant_cuda(const QuantProblem& p, void* stream, int sm_count) {
  const int64_t nb = p.k / lowbit::mxfp4::kBlock, units = 4 * p.m * nb;  // quarter blocks
  if (units == 0) return;
  LOWBIT_CHECK(units < (int64_t(1) << 31) && p.sf_rows < (int64_t(1) << 31), p.silu ? kSiluQuantOp : kQuantOp,
               ": problem too large (", units / 4, " blocks of 32 values; at most 2^29 per call)");
  const dev::Args a{p.in, p.out, p.sf, p.off, p.sf_off, uint32_t(units), uint32_t(nb), uint32_t(p.kp),
                    uint32_t(p.kp / 4), p.silu ? 2 * p.k : p.k, int32_t(p.m), p.num_experts, int32_t(p.sf_rows)};
  auto s = static_cast<cudaStream_t>(stream);
  if (p.bf16) {
    if (p.silu) dev::launch_typed<__nv_bfloat16, true>(a, s, sm_count);
    else dev::launch_typed<__nv_bfloat16, false>(a, s, sm_count);
  } else {
    if (p.silu) dev::launch_typed<__half, true>(a, s, sm_count);
    else dev::launch_typed<__half, false>(a, s, sm_count);
  }
}

}  // namespace mxfp4
