// The A pre-pass of the dense SM90 mma.sync kernels (prepass_a.h).
#include "prepass_a.h"

#include <lowbit/fp4_gemm/sm90_prepass_a.cuh>

namespace nvfp4_mm::sm90 {

Tensor prepass_a(const Problem& p, int ksteps, cudaStream_t stream) {
  return lowbit::fp4_gemm::sm90::prepass_a<lowbit::fp4_gemm::sm90::Nvfp4>(
      p.a, p.sa, p.M, p.K, (p.M + 15) / 16, lowbit::fp4_gemm::sm90::Groups{}, ksteps, stream);
}

}  // namespace nvfp4_mm::sm90
