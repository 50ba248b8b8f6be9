// SM120 NVFP4 GEMM, bf16 output (one output dtype per translation unit keeps
// each nvcc run near 1 minute).
#include "blackwell_gemm.cuh"

namespace nvfp4_mm {

void run_sm120_bf16(const Problem& p, int tile) {
#if defined(CUTLASS_ARCH_MMA_SM120_SUPPORTED)
  blackwell::run_tile<blackwell::Sm120Tiles, cutlass::bfloat16_t>(p, tile, "SM120");
#else
  lowbit::fail(lowbit::str(kOp, ": this CUTLASS build has no SM120 block-scaled MMA support"));
#endif
}

}  // namespace nvfp4_mm
