// The SM100 entry: the names of its CUTLASS tiles and the choice by M.
#include "nvfp4_mm.h"

namespace nvfp4_mm {

void run_sm100_bf16(const Problem& p, int tile);  // mm_sm100_bf16.cu
void run_sm100_f16(const Problem& p, int tile);   // mm_sm100_f16.cu

std::vector<std::string> sm100_kernel_names() {
  return {"cutlass_128x128x256_1sm",   // MMA tile 128x128x256, 1 SM, small M
          "cutlass_256x128x256_2sm"};  // MMA tile 256x128x256, 2-SM cluster, large M
}

// Tile by M (the batch-invariant mode keeps one tile for every M; there is
// no split-K, so each row's reduction order is then fixed). p.splits: unused.
void scaled_fp4_mm_sm100(const Problem& p) {
  int tile = (p.batch_invariant || p.M <= 128) ? 0 : 1;
  if (!p.kernel.empty()) {
    const std::vector<std::string> names = sm100_kernel_names();
    check_kernel_name(p.kernel, names, "SM100");
    tile = p.kernel == names[0] ? 0 : 1;
  }
  if (p.out.scalar_type() == lowbit::ScalarType::BFloat16)
    run_sm100_bf16(p, tile);
  else
    run_sm100_f16(p, tile);
}

}  // namespace nvfp4_mm
