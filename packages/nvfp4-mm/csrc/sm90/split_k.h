// What the two SM90 mma.sync kernels (mm_sm90.cu: multistage tiles;
// small_m_gemm.cu: weights streamed into registers) share: their parameter
// block, the A pre-pass (activations -> fp16 in mma.sync fragment order) and
// the launch of the main kernel followed by the deterministic split-K
// reduce. Host declarations; kernels in split_k.cu.
#pragma once

#include "nvfp4_mm.h"

#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>

namespace nvfp4_mm::sm90 {

// A [M, K/2] + swizzled scales -> fp16 fragments, layout
// [ceil(M/16)][ceil(K/W)][W/16 k-steps][32 lanes] x uint4 (a0..a3 of
// m16n8k16), W = 16 * ksteps (64, 128 or 256). Inside every W-wide K chunk the
// logical k order matches the B nibble ownership of the kernels: lane (g, t)
// owns the W/4 contiguous K of chunk c starting at W c + (W/4) t, and its
// B register (k-step s, reg rb) holds the nibble pair at offsets
// 8 (s/2) + 2 (s%2) + rb and that + 4. Rows >= M and K >= K are zero.
Tensor prepass_a(const Problem& p, int ksteps, cudaStream_t stream, bool pdl);

struct MmaParams {
  const uint4* afrag;  // prepass_a's output
  const uint8_t* b;
  const uint8_t* sb;
  const float* alpha;
  void* out;
  float* partial;  // [splits][M][N] fp32 when splits > 1
  int M, N, K;
  int C;   // K chunks of the kernel's width
  int C4;  // 4-block (64 K) groups of the swizzled scale layout
  int Mt;  // 16-row tiles of A
  int chunks_per_split, splits, out_bf16;
};

// One main-kernel launch + its reduce: fills MmaParams for K chunks of
// chunk_k and `splits` (the caller's choice, trimmed so that no split is
// empty), launches `kernel` on (ceil(N/bn), ceil(M/bm), splits) CTAs of
// `threads` with `smem` bytes, then (splits > 1) the reduce, which scales by
// alpha * unscale (splits == 1: the kernel does). Workspace via torch
// (caching allocator, graph-safe). `smem_done`: the caller's per-kernel
// record of the devices (bit = index % 64) where the kernel's dynamic shared
// memory above 48 KB is already opted into.
void launch_mma_split_k(const Problem& pr, void (*kernel)(const MmaParams), const Tensor& afrag, int chunk_k,
                        int splits, int bm, int bn, int threads, int smem, std::atomic<uint64_t>& smem_done,
                        float unscale, cudaStream_t stream, bool pdl, int64_t sms);

}  // namespace nvfp4_mm::sm90
