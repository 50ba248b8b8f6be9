// SM100 cutlass_mxfp4_group_mm (docs/SPEC-MOE.md §5.3): CUTLASS's ptr-array
// grouped block-scaled GEMM for mx_float4_t (ue8m0 scales per 32 elements),
// 1-SM schedule, tile 128x128x128, cluster 1x1x1, bf16 output, D = acc
// (lowbit/fp4_gemm/blackwell_group_gemm.cuh, shared with nvfp4-mm's
// cutlass_fp4_group_mm; the per-expert arguments are built on the device).
// One CUTLASS instantiation: bf16 output only (vLLM's MoE runs bf16; an fp16
// output is rejected here, the CPU and SM90 kernels take both).
#include "mxfp4.h"

#include <lowbit/fp4_gemm/blackwell_group_gemm.cuh>

namespace mxfp4 {

std::vector<std::string> sm100_group_kernel_names() { return {"cutlass_grouped_128x128x128"}; }

void mxfp4_group_mm_sm100(const GroupProblem& p) {
  LOWBIT_CHECK_ARG(p.out.scalar_type() == lowbit::ScalarType::BFloat16, kGroupOp, "out",
                   "dtype bfloat16 on SM100 (the CUTLASS grouped kernel is built for bf16 output only)",
                   lowbit::dtype_name(p.out.scalar_type()));
#if defined(CUTLASS_ARCH_MMA_SM100_SUPPORTED)
  namespace bw = lowbit::fp4_gemm::blackwell;
  bw::Sm100Group<bw::Mxfp4, cutlass::bfloat16_t>::run(p, "SM100", kGroupOp);
#else
  lowbit::fail(lowbit::str(kGroupOp, ": this CUTLASS build has no SM100 block-scaled MMA support"));
#endif
}

}  // namespace mxfp4
