// Device prepack kernels (every built architecture): int4 unified encoding +
// Hopper reorder (SPEC §1.5), and the 8-entry fp8 scale lookup tables. Both
// run on the caller's stream with no host round trip, so they are
// graph-capturable and can prepack weights that already live on the GPU.
#include "w4a8_mm.h"

#include <lowbit/cuda_utils.h>

#include <cuda_fp8.h>

namespace lowbit::w4a8 {
namespace {

// Unified encoding of 4 packed nibbles: v in 1..7 becomes 8 - v (the
// lookup-table mainloop then needs the sign bit only), others unchanged.
__device__ __forceinline__ uint32_t encode4(uint32_t x) {
  uint32_t out = 0;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    uint32_t v = (x >> (4 * i)) & 0xF;
    if (v >= 1 && v <= 7) v = 8 - v;
    out |= v << (4 * i);
  }
  return out;
}

// One thread per output 32-bit word (8 int4 values) of E experts of N x K
// each (E = 1: the dense op). Inside a 16x32 atom (64 words), word w holds
// rows n%16 = (w>>3) and (w>>3)+8, each with 4 consecutive k starting at
// 16*(w&1) + 4*((w>>1)&3): two 16-bit halves of input words, so every output
// word is two aligned 16-bit reads. With `descriptor`, the first 3E threads
// also write the experts' layout rows (N/16, K/32, 32N) (one launch for both
// outputs of the grouped op).
__global__ void encode_reorder_kernel(const uint32_t* __restrict__ in,
                                      uint32_t* __restrict__ out,
                                      int32_t* __restrict__ descriptor, int64_t E,
                                      int64_t N, int64_t K) {
  const int64_t per_expert = N * K / 8;
  const int64_t words = E * per_expert;
  const int64_t kw = K / 8;  // input words per weight row
  const int64_t n_atoms = N / 16;
  const int64_t work = descriptor && 3 * E > words ? 3 * E : words;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < work;
       i += int64_t(gridDim.x) * blockDim.x) {
    if (descriptor && i < 3 * E) {
      const int c = static_cast<int>(i % 3);
      descriptor[i] = static_cast<int32_t>(c == 0 ? N / 16 : c == 1 ? K / 32 : 32 * N);
    }
    if (i >= words) continue;
    const int64_t base = (i / per_expert) * per_expert;  // expert's first word
    const int64_t o = i - base;
    const int64_t atom = o >> 6;
    const int w = static_cast<int>(o & 63);
    const int64_t n = (atom % n_atoms) * 16 + (w >> 3);
    const int64_t k = (atom / n_atoms) * 32 + 16 * (w & 1) + 4 * ((w >> 1) & 3);
    const int shift = static_cast<int>(k % 8) * 4;  // 0 or 16
    const uint32_t lo = (in[base + n * kw + k / 8] >> shift) & 0xFFFF;
    const uint32_t hi = (in[base + (n + 8) * kw + k / 8] >> shift) & 0xFFFF;
    out[i] = encode4(lo) | (encode4(hi) << 16);
  }
}

// One thread per scale s: bytes e4m3(-8s), e4m3(-7s), ..., e4m3(-1s),
// round-to-nearest-even, saturating (NaN stays NaN, 0x7F).
__global__ void pack_scale_kernel(const __nv_fp8_e4m3* __restrict__ in,
                                  uint2* __restrict__ out, int64_t numel) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < numel;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float s = static_cast<float>(in[i]);
    uint32_t w[2] = {0, 0};
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const uint32_t b = __nv_cvt_float_to_fp8(-static_cast<float>(8 - j) * s,
                                               __NV_SATFINITE, __NV_E4M3);
      w[j / 4] |= (b & 0xFF) << (8 * (j % 4));
    }
    out[i] = make_uint2(w[0], w[1]);
  }
}

int grid_for(int64_t work, int threads, int device) {
  const int64_t blocks = ceil_div<int64_t>(work, threads);
  const int64_t cap = int64_t(device_sm_count(device)) * 16;  // grid-stride beyond
  return static_cast<int>(blocks < cap ? blocks : cap);
}

}  // namespace

void encode_and_reorder_int4b_cuda(const int32_t* in, int32_t* out, const ReorderProblem& p,
                                   int device, void* stream) {
  const int64_t N = p.N, K = p.K, words = N * K / 8;
  if (words == 0) return;
  constexpr int kThreads = 256;
  encode_reorder_kernel<<<grid_for(words, kThreads, device), kThreads, 0,
                          static_cast<cudaStream_t>(stream)>>>(
      reinterpret_cast<const uint32_t*>(in), reinterpret_cast<uint32_t*>(out), nullptr, 1, N, K);
  LOWBIT_CHECK_LAUNCH();
}

void encode_and_reorder_int4b_grouped_cuda(const int32_t* in, int32_t* out, int32_t* descriptor,
                                           const GroupedReorderProblem& p, int device, void* stream) {
  const int64_t words = p.E * p.N * p.K / 8;
  const int64_t work = words > 3 * p.E ? words : 3 * p.E;
  if (work == 0) return;
  constexpr int kThreads = 256;
  encode_reorder_kernel<<<grid_for(work, kThreads, device), kThreads, 0,
                          static_cast<cudaStream_t>(stream)>>>(
      reinterpret_cast<const uint32_t*>(in), reinterpret_cast<uint32_t*>(out), descriptor, p.E,
      p.N, p.K);
  LOWBIT_CHECK_LAUNCH();
}

void pack_scale_fp8_cuda(const uint8_t* in, uint8_t* out, const PackScaleProblem& p,
                         int device, void* stream) {
  const int64_t numel = p.numel;
  if (numel == 0) return;
  constexpr int kThreads = 256;
  pack_scale_kernel<<<grid_for(numel, kThreads, device), kThreads, 0,
                      static_cast<cudaStream_t>(stream)>>>(
      reinterpret_cast<const __nv_fp8_e4m3*>(in), reinterpret_cast<uint2*>(out), numel);
  LOWBIT_CHECK_LAUNCH();
}

}  // namespace lowbit::w4a8
