// The A pre-pass of the dense SM90 mma.sync kernels: activations -> fp16 in
// mma.sync fragment order (lowbit/fp4_gemm/sm90_prepass_a.cuh, NVFP4
// instantiation in prepass_a.cu).
#pragma once

#include "nvfp4_mm.h"

#include <cuda_runtime.h>

namespace nvfp4_mm::sm90 {

// A [M, K/2] + swizzled scales -> fp16 fragments for chunks of 16 * ksteps K
// (64 or 128), rows >= M and K >= K zero. Launched with PDL.
Tensor prepass_a(const Problem& p, int ksteps, cudaStream_t stream);

}  // namespace nvfp4_mm::sm90
