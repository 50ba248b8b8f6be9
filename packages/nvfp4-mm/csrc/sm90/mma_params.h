// The parameter block of the two SM90 mma.sync kernels (multistage_gemm.cu:
// shared-memory pipelined tiles; small_m_gemm.cu: weights streamed into
// registers), their shared split-K reduce and the launcher of both
// (split_k_launch.cu).
#pragma once

#include "nvfp4_mm.h"

#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>

namespace nvfp4_mm::sm90 {

struct MmaParams {
  const uint4* afrag;  // prepass_a's output (prepass_a.h)
  const uint8_t* b;
  const uint8_t* sb;
  const float* alpha;
  const void* bias;  // [N] in the output dtype, or nullptr
  void* out;
  float* partial;  // [splits][M][N] fp32 when splits > 1
  int M, N, K;
  int C;   // K chunks of the kernel's width
  int C4;  // 4-block (64 K) groups of the swizzled scale layout
  int Mt;  // 16-row tiles of A
  int chunks_per_split, splits, out_bf16;
};

// One mma.sync kernel's launch shape.
struct MmaKernel {
  void (*kernel)(const MmaParams);
  int chunk_k;  // K per chunk
  int bm, bn, threads, smem;
  float unscale;  // what the accumulators are multiplied by besides alpha
};

// One main-kernel launch + its reduce: fills MmaParams for `splits` (the
// caller's choice, trimmed so that no split is empty), launches the kernel on
// (ceil(N/bn), ceil(M/bm), splits) CTAs, then (splits > 1) the reduce, which
// applies alpha * unscale and the bias (splits == 1: the kernel does).
// Workspace via torch (caching allocator, graph-safe). `smem_done`: the
// caller's per-kernel record of the devices (bit = index % 64) where the
// kernel's dynamic shared memory above 48 KB is already opted into.
void launch_mma_split_k(const Problem& pr, const MmaKernel& k, const Tensor& afrag, int splits,
                        std::atomic<uint64_t>& smem_done, cudaStream_t stream, int64_t sms);

}  // namespace nvfp4_mm::sm90
