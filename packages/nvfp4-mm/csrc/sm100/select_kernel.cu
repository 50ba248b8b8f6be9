// The SM100 entry: the names of its two CUTLASS tiles (blackwell_gemm.cuh:
// Sm100Tiles) and the choice between them (blackwell_select.h).
#include "blackwell_select.h"

namespace nvfp4_mm {

void run_sm100_bf16(const Problem& p, int tile);  // mm_sm100_bf16.cu
void run_sm100_f16(const Problem& p, int tile);   // mm_sm100_f16.cu

std::vector<std::string> sm100_kernel_names() { return {"cutlass_128x128x256_1sm", "cutlass_256x128x256_2sm"}; }

void scaled_fp4_mm_sm100(const Problem& p) {
  run_blackwell(p, sm100_kernel_names(), "SM100", &run_sm100_bf16, &run_sm100_f16);
}

}  // namespace nvfp4_mm
