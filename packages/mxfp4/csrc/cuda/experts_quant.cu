// MXFP4 experts quantization on every built CUDA architecture
// (docs/SPEC-MOE.md §5.1.1, §5.4-5.5). The scale rule is lowbit/mxfp4_codec.h's
// and the e2m1 rounding the NVFP4 codec's, the same bits as the CPU kernel;
// on the Blackwell families the codes come from cvt.rn.satfinite.e2m1x2.f32
// (the same rounding, one instruction per pair).
//
// The structure is lowbit-nvfp4-quant's experts kernel, from the same headers
// (lowbit/fp4_quant/): the unit stream (one unit = 16 values of a row, two
// 16-byte loads, four with SiLU; one 8-byte code store; persistent grid with
// the next unit's loads in flight), the expert lookup (a walk from the row's
// proportional share of the offsets) and the region writer (scale byte plus
// the padding the block owns, in whole 32-byte sectors). MXFP4's 32-element
// block is two units: units 2j and 2j + 1 of a row are adjacent lanes of a
// warp (a row has an even number of units and segments are multiples of 256),
// which combine their maxima with one shuffle; the even lane writes the scale.
// No allocation, no host sync: graph-capturable.
//
// Device metadata is not trusted (§5.0.3): an expert whose offsets break the
// contract (rows outside the input, region not a multiple of 128 or not inside
// the buffer / before the next region) writes nothing; rows outside
// [off[0], off[E]) write nothing. sorted_expert_ids is never read: the offsets
// define the result.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <lowbit/cuda_utils.h>
#include <lowbit/fp4_quant/e2m1_pack.cuh>
#include <lowbit/fp4_quant/experts.cuh>
#include <lowbit/fp4_quant/stream.cuh>
#include <lowbit/mxfp4_codec.h>

#include <cstdint>

#include "../mxfp4.h"

namespace mxfp4::dev {
namespace {

namespace mx = lowbit::mxfp4;
using namespace lowbit::fp4_quant;

// This device pass's e2m1 rounding (one translation unit for every arch).
#if LOWBIT_FP4_HW_E2M1
using Round = HardwareE2M1;
#else
using Round = SoftwareE2M1;
#endif

struct Args {
  StreamArgs s;      // units of 16 values
  uint8_t* out;
  uint8_t* sf;
  const int32_t* off;
  const int32_t* sf_off;
  uint32_t nb, kp4;  // scale columns (k / 32) and column groups per scale row
  int32_t m, E, sf_rows;
};

// Quantize a unit (half a block, lane pair `pair`): writes its 16 codes to
// `out` (8 bytes), returns the block's scale byte (both lanes).
template <typename T, bool SILU>
__device__ __forceinline__ uint32_t quant_half_block(const Raw<SILU>& raw, uint32_t pair, uint8_t* out) {
  float v[16];
  to_values<T, SILU>(raw, v);
  float amax = 0.0f;
#pragma unroll
  for (int i = 0; i < 16; ++i) amax = max_nan(amax, fabsf(v[i]));
  // fp32 bits of non-negative values (NaN above Inf) order like the values.
  uint32_t bits = __float_as_uint(amax);
  bits = max(bits, __shfl_xor_sync(pair, bits, 1));
  const uint32_t s = mx::scale_byte(bits);
  const uint2 packed = pack16<Round, SILU>(raw, v, mx::quant_multiplier(s));
  *reinterpret_cast<uint2*>(out) = mx::zero_codes(s) ? make_uint2(0u, 0u) : packed;
  return s;
}

// The expert of input row x, remembered between calls (a thread's rows only
// grow): input rows [lo, hi), scale region [sf_lo, sf_hi).
struct ExpertRegion {
  int32_t lo = 0, hi = 0, sf_lo = 0, sf_hi = 0;
  bool ok = false;  // the expert's metadata keeps the contract
  ExpertGuess guess;

  __device__ __forceinline__ bool find(const Args& a, const int32_t* off, const int32_t* sfo, int32_t x) {
    if (x >= lo && x < hi) return ok;
    const int32_t e = guess.expert(off, a.E, x);
    if (e < 0 || e >= a.E || x >= off[e + 1]) return false;  // orphan row (or non-monotone offsets)
    lo = off[e];
    hi = off[e + 1];
    sf_lo = sfo[e];
    const int64_t end = int64_t(sf_lo) + ((int64_t(hi) - lo + 127) & ~int64_t(127));
    ok = lo >= 0 && hi <= a.m && sf_lo >= 0 && (sf_lo & 127) == 0 && end <= sfo[e + 1] && end <= a.sf_rows;
    sf_hi = int32_t(end);
    return ok;
  }
};

template <typename T, bool SILU, bool SMEM>
__global__ void __launch_bounds__(256, kMinBlocks<SILU>) experts_kernel(const Args a) {
  __shared__ int32_t s_off[SMEM ? kMaxSmemOffsets : 1];
  __shared__ int32_t s_sfo[SMEM ? kMaxSmemOffsets : 1];
  const int32_t* off = SMEM ? s_off : a.off;
  const int32_t* sfo = SMEM ? s_sfo : a.sf_off;
  ExpertRegion ex;
  // The offsets are staged in shared memory once the first loads are in flight.
  auto init = [&] {
    if constexpr (SMEM) stage_offsets(s_off, s_sfo, a.off, a.sf_off, a.E, [](int32_t) {});
    ex.guess.init(off, a.E);
  };
  const uint32_t pair = 3u << (threadIdx.x & 30u);  // this lane and its block partner
  const uint32_t out_row = a.s.nb * 8;              // code bytes per row
  for_each_unit<T, SILU>(a.s, init, [&](uint32_t r, uint32_t c, const Raw<SILU>& raw) {
    if (!ex.find(a, off, sfo, int32_t(r))) return;  // the same for both lanes of a block (same row)
    const uint32_t s = quant_half_block<T, SILU>(raw, pair, a.out + int64_t(r) * out_row + int64_t(c) * 8);
    if (c & 1u) return;
    write_region_scale(a.sf, uint8_t(s), int32_t(r) - ex.lo, c >> 1, a.nb, a.kp4, ex.sf_lo, ex.sf_hi,
                       ex.hi - ex.lo);
  });
}

template <typename T, bool SILU>
void launch_typed(Args& a, int64_t units, cudaStream_t stream, int sm_count) {
  auto go = [&](auto tag) { launch_persistent(tag, a, units, units, stream, sm_count); };
  if (a.E + 1 <= kMaxSmemOffsets) go(KernelTag<&experts_kernel<T, SILU, true>>{});
  else go(KernelTag<&experts_kernel<T, SILU, false>>{});
}

}  // namespace
}  // namespace mxfp4::dev

namespace mxfp4 {

void experts_quant_cuda(const QuantProblem& p, void* stream, int sm_count) {
  const int64_t nu = p.k / 16, units = p.m * nu;  // units of 16 values, two per block
  if (units == 0) return;
  const char* op = p.silu ? kSiluQuantOp : kQuantOp;
  LOWBIT_CHECK(units < (int64_t(1) << 31), op, ": problem too large (", units / 2,
               " blocks of 32 values; at most 2^30 per call)");
  // Scale offsets are 32-bit in the kernel (lowbit/fp4_quant/experts.cuh).
  LOWBIT_CHECK(p.sf_rows * p.kp <= (int64_t(1) << 32), op, ": output_scale too large (", p.sf_rows * p.kp,
               " bytes of whole 128-row tiles; at most 2^32 per call)");
  const lowbit::fp4_quant::StreamArgs s{p.in, uint32_t(nu), uint32_t(units), 0, p.silu ? 2 * p.k : p.k, p.k,
                                        lowbit::fp4_quant::FastDiv(uint32_t(nu))};
  dev::Args a{s, p.out, p.sf, p.off, p.sf_off, uint32_t(nu / 2), uint32_t(p.kp / 4), int32_t(p.m), p.num_experts,
              int32_t(p.sf_rows)};
  auto st = static_cast<cudaStream_t>(stream);
  if (p.bf16) {
    if (p.silu) dev::launch_typed<__nv_bfloat16, true>(a, units, st, sm_count);
    else dev::launch_typed<__nv_bfloat16, false>(a, units, st, sm_count);
  } else {
    if (p.silu) dev::launch_typed<__half, true>(a, units, st, sm_count);
    else dev::launch_typed<__half, false>(a, units, st, sm_count);
  }
}

}  // namespace mxfp4
