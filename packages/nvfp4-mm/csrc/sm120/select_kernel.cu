// The SM120 entry: the names of its two CUTLASS tiles (blackwell_gemm.cuh:
// Sm120Tiles) and the choice between them (blackwell_select.h).
#include "blackwell_select.h"

namespace nvfp4_mm {

void run_sm120_bf16(const Problem& p, int tile);  // mm_sm120_bf16.cu
void run_sm120_f16(const Problem& p, int tile);   // mm_sm120_f16.cu
void run_group_sm120_bf16(const GroupProblem& p);  // group_mm_sm120_bf16.cu
void run_group_sm120_f16(const GroupProblem& p);   // group_mm_sm120_f16.cu

std::vector<std::string> sm120_kernel_names() { return {"cutlass_128x128x256", "cutlass_128x128x128"}; }

void scaled_fp4_mm_sm120(const Problem& p) {
  run_blackwell(p, sm120_kernel_names(), "SM120", &run_sm120_bf16, &run_sm120_f16);
}

// cutlass_fp4_group_mm: one CUTLASS grouped kernel per output dtype
// (lowbit/fp4_gemm/blackwell_group_gemm.cuh).
std::vector<std::string> sm120_group_kernel_names() { return {"cutlass_grouped_128x128x128"}; }

void fp4_group_mm_sm120(const GroupProblem& p) {
  if (!p.kernel.empty()) check_kernel_name(p.kernel, sm120_group_kernel_names(), "SM120", kGroupOp);
  (p.out.scalar_type() == lowbit::ScalarType::BFloat16 ? run_group_sm120_bf16 : run_group_sm120_f16)(p);
}

}  // namespace nvfp4_mm
