// The A pre-pass of the SM90 mma.sync kernels: activations -> fp16 in
// mma.sync fragment order (kernel in prepass_a.cu).
#pragma once

#include "nvfp4_mm.h"

#include "groups.h"

#include <cuda_runtime.h>

namespace nvfp4_mm::sm90 {

// A [M, K/2] + swizzled scales -> fp16 fragments, layout
// [ceil(M/16)][ceil(K/W)][W/16 k-steps][32 lanes] x uint4 (a0..a3 of
// m16n8k16), W = 16 * ksteps (64 or 128). Inside every W-wide K chunk the
// logical k order matches the B nibble ownership of the kernels: lane (g, t)
// owns the W/4 contiguous K of chunk c starting at W c + (W/4) t, and its
// B register (k-step s, reg rb) holds the nibble pair at offsets
// 8 (s/2) + 2 (s%2) + rb and that + 4. Rows >= M and K >= K are zero.
// Launched with PDL (it waits for the previous kernel before reading A).
Tensor prepass_a(const Problem& p, int ksteps, cudaStream_t stream);
// The same for Mt 16-row m-tiles of CTA row tiles (groups.h): the grouped
// GEMM's experts, each expert's rows starting a new tile.
Tensor prepass_a(const Tensor& a, const Tensor& sa, int64_t M, int64_t K, int64_t Mt, const Groups& groups,
                 int ksteps, cudaStream_t stream);

}  // namespace nvfp4_mm::sm90
