// SM100 NVFP4 GEMM, bf16 output (one output dtype per translation unit keeps
// each nvcc run near 1 minute).
#include "blackwell_gemm.cuh"

namespace nvfp4_mm {

void run_sm100_bf16(const Problem& p, int tile) {
#if defined(CUTLASS_ARCH_MMA_SM100_SUPPORTED)
  blackwell::run_tile<blackwell::Sm100Tiles, cutlass::bfloat16_t>(p, tile, "SM100");
#else
  lowbit::fail(lowbit::str(kOp, ": this CUTLASS build has no SM100 block-scaled MMA support"));
#endif
}

}  // namespace nvfp4_mm
