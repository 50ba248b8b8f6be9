// The SM90 small-M kernel (small_m_gemm.cu): weights streamed from global
// memory straight into registers (declarations only).
#pragma once

#include "nvfp4_mm.h"

#include <cstdint>

namespace nvfp4_mm::sm90 {

// Tile configs of the small-M kernel (the private _ex op numbers them after
// the multistage mma.sync configs).
constexpr int kSmallMTiles = 6;

// D = alpha * A·Bᵀ for small M with tile config `tile` (-1: by M), split-K
// count p.splits (-1: heuristic), PDL launches if `pdl`. Not batch-invariant
// (the split count depends on the shape).
void mm_small_m(const Problem& p, int tile, bool pdl);

}  // namespace nvfp4_mm::sm90
