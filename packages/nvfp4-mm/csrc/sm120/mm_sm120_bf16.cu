// SM120 NVFP4 GEMM, bf16 output: the two CUTLASS tile configs of this arch
// (0: tile 128x128x256, small M; 1: tile 128x128x128, large M).
#include "blackwell_gemm.cuh"

namespace nvfp4_mm {

void mm_sm120_bf16(const Problem& p, int cfg) {
#if defined(CUTLASS_ARCH_MMA_SM120_SUPPORTED)
  using namespace cute;
  if (cfg == 0)
    blackwell::Fp4Gemm<cutlass::arch::Sm120, Shape<_128, _128, _256>, Shape<_1, _1, _1>, cutlass::bfloat16_t>::run(p, "SM120");
  else
    blackwell::Fp4Gemm<cutlass::arch::Sm120, Shape<_128, _128, _128>, Shape<_1, _1, _1>, cutlass::bfloat16_t>::run(p, "SM120");
#else
  lowbit::fail("cutlass_scaled_fp4_mm: this CUTLASS build has no SM120 block-scaled MMA support");
#endif
}

}  // namespace nvfp4_mm
