// The SM90 kernel families and the names of their tiles. Each
// run_<family>(p, tile) computes the whole problem with tile `tile` of its
// name table (-1: the family picks the tile by shape); p.splits is the split
// count (-1: the family's heuristic).
#pragma once

#include "nvfp4_mm.h"

namespace nvfp4_mm::sm90 {

// multistage_gemm.cu: shared-memory pipelined mma.sync tiles; split-K. The
// only family of batch-invariant mode.
constexpr int kMultistageTiles = 3;
extern const char* const kMultistageNames[kMultistageTiles];
void run_multistage(const Problem& p, int tile);
void run_multistage_group(const GroupProblem& p, int tile);

// small_m_gemm.cu: weights streamed straight into registers (M <= 16);
// split-K.
constexpr int kSmallMTiles = 1;
extern const char* const kSmallMNames[kSmallMTiles];
void run_small_m(const Problem& p, int tile);
void run_small_m_group(const GroupProblem& p, int tile);

// dequant_gemm.cu: both operands dequantized to fp16, then a CUTLASS TMA
// warp-specialized GEMM (large M). p.splits > 0: the number of M and of N
// chunks of the bounded fp16 workspaces (at most; tests use it to exercise
// the chunk loops), instead of the size bound alone.
constexpr int kDequantCutlassTiles = 2;
extern const char* const kDequantCutlassNames[kDequantCutlassTiles];
void run_dequant_cutlass(const Problem& p, int tile);

// wgmma_group.cu: weights dequantized in registers feeding wgmma (grouped:
// more than 16 rows per expert; dense: 16 < M <= 512, K split where the tiles
// leave SMs idle); tiles activation rows x weight rows.
constexpr int kWgmmaTiles = 3;
extern const char* const kWgmmaNames[kWgmmaTiles];
void run_wgmma_group(const GroupProblem& p, int tile);
void run_wgmma(const Problem& p, int tile);

}  // namespace nvfp4_mm::sm90
