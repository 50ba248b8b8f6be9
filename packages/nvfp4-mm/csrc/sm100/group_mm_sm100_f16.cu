// SM100 cutlass_fp4_group_mm, f16 output (one CUTLASS instantiation per
// translation unit keeps each nvcc run near 1 minute).
#include "nvfp4_mm.h"

#include <lowbit/fp4_gemm/blackwell_group_gemm.cuh>

namespace nvfp4_mm {

void run_group_sm100_f16(const GroupProblem& p) {
#if defined(CUTLASS_ARCH_MMA_SM100_SUPPORTED)
  namespace bw = lowbit::fp4_gemm::blackwell;
  bw::Sm100Group<bw::Nvfp4, cutlass::half_t>::run(p, "SM100", kGroupOp);
#else
  lowbit::fail(lowbit::str(kGroupOp, ": this CUTLASS build has no SM100 block-scaled MMA support"));
#endif
}

}  // namespace nvfp4_mm
