// The Blackwell (SM100 / SM120) entries' shared choice of tile: by M (the
// batch-invariant mode keeps one tile for every M; there is no split-K, so
// each row's reduction order is then fixed) or by name. p.splits: unused.
#pragma once

#include "nvfp4_mm.h"

namespace nvfp4_mm {

using TileRun = void (*)(const Problem&, int tile);

inline void run_blackwell(const Problem& p, const std::vector<std::string>& names, const char* target,
                          TileRun bf16, TileRun f16) {
  int tile = (p.batch_invariant || p.M <= 128) ? 0 : 1;
  if (!p.kernel.empty()) {
    check_kernel_name(p.kernel, names, target);
    tile = p.kernel == names[0] ? 0 : 1;
  }
  (p.out.scalar_type() == lowbit::ScalarType::BFloat16 ? bf16 : f16)(p, tile);
}

}  // namespace nvfp4_mm
