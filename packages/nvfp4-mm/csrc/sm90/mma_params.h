// The parameter block of the two SM90 mma.sync kernels (multistage_gemm.cu:
// shared-memory pipelined tiles; small_m_gemm.cu: weights streamed into
// registers), their shared split-K reduce and the launcher of both
// (split_k_launch.cu).
#pragma once

#include "nvfp4_mm.h"

#include "groups.h"

#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>

namespace nvfp4_mm::sm90 {

struct MmaParams {
  const uint4* afrag;  // prepass_a's output (prepass_a.h)
  const uint8_t* b;
  const uint8_t* sb;
  const float* alpha;  // grouped: alphas [E] (expert e's at alpha + e)
  const void* bias;  // [N] in the output dtype, or nullptr
  void* out;
  float* partial;  // [splits][M][N] fp32 when splits > 1
  int M, N, K;
  int C;   // K chunks of the kernel's width
  int C4;  // 4-block (64 K) groups of the swizzled scale layout
  int Mt;  // 16-row tiles of A
  int chunks_per_split, splits, out_bf16;
  Groups groups;  // the CTA row tiles (groups.h); b, sb, alpha are expert 0's
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
void opt_into_smem(const MmaKernel& k, int device, std::atomic<uint64_t>& smem_done);
void launch_mma_split_k(const Problem& pr, const MmaKernel& k, const Tensor& afrag, int splits,
                        std::atomic<uint64_t>& smem_done, cudaStream_t stream, int64_t sms);

// The whole grouped GEMM with one of these kernels (group_mm.cu): the tile
// table kernel, the A pre-pass over the experts' tiles and one main launch
// on (ceil(N/bn), ceil(M/bm) + min(E, M)) CTAs (an upper bound of the
// experts' tiles; CTAs past the table's end exit at once). No split-K: an
// expert's reduction order must not depend on the other experts.
void run_mma_group(const GroupProblem& p, const MmaKernel& k, std::atomic<uint64_t>& smem_done);

}  // namespace nvfp4_mm::sm90
