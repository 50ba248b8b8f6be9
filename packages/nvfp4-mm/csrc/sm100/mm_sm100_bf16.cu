// SM100 NVFP4 GEMM, bf16 output: the two CUTLASS tile configs of this arch
// (0: MMA tile 128x128x256, 1 SM, small M; 1: MMA tile 256x128x256, 2-SM cluster, large M).
#include "blackwell_gemm.cuh"

namespace nvfp4_mm {

void mm_sm100_bf16(const Problem& p, int cfg) {
#if defined(CUTLASS_ARCH_MMA_SM100_SUPPORTED)
  using namespace cute;
  if (cfg == 0)
    blackwell::Fp4Gemm<cutlass::arch::Sm100, Shape<_128, _128, _256>, Shape<_1, _1, _1>, cutlass::bfloat16_t>::run(p, "SM100");
  else
    blackwell::Fp4Gemm<cutlass::arch::Sm100, Shape<_256, _128, _256>, Shape<_2, _1, _1>, cutlass::bfloat16_t>::run(p, "SM100");
#else
  lowbit::fail("cutlass_scaled_fp4_mm: this CUTLASS build has no SM100 block-scaled MMA support");
#endif
}

}  // namespace nvfp4_mm
