// nvfp4-mm's use of the shared SM90 mma.sync FP4 GEMM templates
// (lowbit/fp4_gemm/sm90_*.cuh in lowbit-cutlass-ext, instantiated here with
// the NVFP4 format): the dense split-K launcher (split_k_launch.cu) and the
// grouped runner (group_mm.cu) of the two kernel families
// (multistage_gemm.cu, small_m_gemm.cu).
#pragma once

#include "nvfp4_mm.h"

#include <lowbit/fp4_gemm/sm90_params.h>

#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>

namespace nvfp4_mm::sm90 {

using lowbit::fp4_gemm::sm90::MmaKernel;
using lowbit::fp4_gemm::sm90::MmaParams;

// One main-kernel launch + its reduce: fills MmaParams for `splits` (the
// caller's choice, trimmed so that no split is empty), launches the kernel on
// (ceil(N/bn), ceil(M/bm), splits) CTAs, then (splits > 1) the reduce, which
// applies alpha * unscale and the bias (splits == 1: the kernel does).
// Workspace via torch (caching allocator, graph-safe). `smem_done`: the
// caller's per-kernel record of the devices (bit = index % 64) where the
// kernel's dynamic shared memory above 48 KB is already opted into.
void launch_mma_split_k(const Problem& pr, const MmaKernel& k, const Tensor& afrag, int splits,
                        std::atomic<uint64_t>& smem_done, cudaStream_t stream, int64_t sms);

// The whole grouped GEMM with one of these kernels (group_mm.cu,
// lowbit/fp4_gemm/sm90_group.cuh): the tile table kernel, the A pre-pass over
// the experts' tiles and one main launch on (ceil(N/bn), ceil(M/bm) +
// min(E, M)) CTAs (an upper bound of the experts' tiles; CTAs past the
// table's end exit at once). No split-K: an expert's reduction order must not
// depend on the other experts.
void run_mma_group(const GroupProblem& p, const MmaKernel& k, std::atomic<uint64_t>& smem_done);

}  // namespace nvfp4_mm::sm90
