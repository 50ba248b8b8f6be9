// The parameter block of the SM90 mma.sync FP4 GEMM kernels
// (sm90_multistage.cuh: shared-memory pipelined tiles; sm90_small_m.cuh:
// weights streamed into registers) and their CTA row tiles, dense or grouped
// by expert (docs/SPEC-MOE.md §5.2-5.3).
//
// A kernel's CTA row tile `tile` (blockIdx.y) is a slice of BM rows: for a
// dense GEMM rows [tile * BM, ..) of the one problem; for a grouped GEMM one
// expert's rows, the experts' tiles laid end to end (tile_start = the
// exclusive prefix sum of ceil(m_e / BM), written on the device by
// sm90_group.cuh's table kernel: the expert sizes never come to the host).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace lowbit::fp4_gemm::sm90 {

struct Groups {
  const int* tile_start = nullptr;  // [E + 1]; nullptr: dense
  const int* offsets = nullptr;     // expert_offsets [E]
  const int* sizes = nullptr;       // problem_sizes [E, 3]
  const int* sf_offsets = nullptr;  // [E]
  int bm = 16;                      // rows per CTA tile
  int E = 1;
  int64_t b_bytes = 0;   // bytes per expert of b (N K / 2)
  int64_t sb_bytes = 0;  // bytes per expert of b_blockscales (Np Kp)
  int64_t sa_row = 0;    // bytes per scale row of a_blockscale (Kp)
};

// One CTA tile's rows: out/a rows [row0, row0 + rows) (rows <= 0: nothing
// to do), the expert e, the tile's first row inside the expert (its scale
// row in the expert's region) and the byte offset of that region.
struct Slice {
  int64_t row0;
  int rows, local0, e;
  int64_t sa_off;
};

#if defined(__CUDACC__)
__device__ __forceinline__ Slice slice_of(const Groups& g, int tile, int M) {
  if (g.tile_start == nullptr) return Slice{int64_t(tile) * g.bm, M - tile * g.bm, tile * g.bm, 0, 0};
  // The last expert whose first tile is <= tile (empty experts share their
  // successor's start and are skipped by taking the last such).
  int lo = 0, hi = g.E;  // tile_start[lo] <= tile < tile_start[hi] unless past the end
  if (tile >= __ldg(g.tile_start + g.E)) return Slice{0, 0, 0, 0, 0};
  while (hi - lo > 1) {
    const int mid = (lo + hi) >> 1;
    if (__ldg(g.tile_start + mid) <= tile) lo = mid; else hi = mid;
  }
  const int local0 = (tile - __ldg(g.tile_start + lo)) * g.bm;
  const int m = __ldg(g.sizes + 3 * lo);
  return Slice{int64_t(__ldg(g.offsets + lo)) + local0, min(g.bm, m - local0), local0, lo,
               int64_t(__ldg(g.sf_offsets + lo)) * g.sa_row};
}
#endif

struct MmaParams {
  const uint4* afrag;  // the A pre-pass's output (sm90_prepass_a.cuh)
  const uint8_t* b;
  const uint8_t* sb;
  const float* alpha;  // grouped: alphas [E] (expert e's at alpha + e); unused without an alpha (Mxfp4)
  const void* bias;  // [N] in the output dtype, or nullptr
  void* out;
  float* partial;  // [splits][M][N] fp32 when splits > 1
  int M, N, K;
  int C;   // K chunks of the kernel's width
  int C4;  // 4-block groups of the swizzled scale layout (K / (4 * block size))
  int Mt;  // 16-row tiles of A
  int chunks_per_split, splits, out_bf16;
  Groups groups;  // the CTA row tiles; b, sb, alpha are expert 0's
};

// One mma.sync kernel's launch shape.
struct MmaKernel {
  void (*kernel)(const MmaParams);
  int chunk_k;  // K per chunk
  int bm, bn, threads, smem;
  float unscale;  // what the accumulators are multiplied by besides alpha
};

#if defined(__CUDACC__)
// What the accumulators of expert e are multiplied by (splits == 1): the
// format's factor, times alpha[e] where the format has an alpha.
template <class Fmt>
__device__ __forceinline__ float out_scale(const MmaParams& p, int e) {
  if constexpr (Fmt::kAlpha) return p.alpha[e] * Fmt::kUnscale;
  else return Fmt::kUnscale;
}
#endif

}  // namespace lowbit::fp4_gemm::sm90
