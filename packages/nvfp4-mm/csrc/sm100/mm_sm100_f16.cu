// SM100 NVFP4 GEMM, f16 output: the two CUTLASS tiles of this arch
// (select_kernel.cu names them). One output dtype per translation unit keeps
// each nvcc run near 1 minute.
#include "blackwell_gemm.cuh"

namespace nvfp4_mm {

void run_sm100_f16(const Problem& p, int tile) {
#if defined(CUTLASS_ARCH_MMA_SM100_SUPPORTED)
  using namespace cute;
  if (tile == 0)
    blackwell::Fp4Gemm<cutlass::arch::Sm100, Shape<_128, _128, _256>, Shape<_1, _1, _1>, cutlass::half_t>::run(p, "SM100");
  else
    blackwell::Fp4Gemm<cutlass::arch::Sm100, Shape<_256, _128, _256>, Shape<_2, _1, _1>, cutlass::half_t>::run(p, "SM100");
#else
  lowbit::fail(lowbit::str(kOp, ": this CUTLASS build has no SM100 block-scaled MMA support"));
#endif
}

}  // namespace nvfp4_mm
