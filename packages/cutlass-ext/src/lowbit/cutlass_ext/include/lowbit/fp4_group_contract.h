// The per-expert metadata contract of the FP4 grouped GEMMs
// (cutlass_fp4_group_mm / cutlass_mxfp4_group_mm, docs/SPEC-MOE.md §5.0.3),
// written once for the CPU reference (cpu/fp4_group_gemm.h), the SM90 tile
// table (fp4_gemm/sm90_group.cuh) and the Blackwell setup kernel
// (fp4_gemm/blackwell_group_gemm.cuh): an expert whose metadata breaks it is
// not computed and gets NaN rows where they lie inside out.
#pragma once

#include <lowbit/nvfp4_codec.h>  // LOWBIT_HD

#include <cstdint>

namespace lowbit {

// Expert e keeps the contract: its rows [off, off + m) inside a's M rows, its
// round_up(m, 128) scale rows at a multiple of 128 inside a_blockscale's R
// rows, and problem size (m, N, K). sizes [E, 3], offsets / sf_offsets [E].
LOWBIT_HD bool fp4_group_expert_ok(const int32_t* sizes, const int32_t* offsets, const int32_t* sf_offsets,
                                   int64_t e, int64_t M, int64_t N, int64_t K, int64_t R) {
  const int64_t m = sizes[3 * e], off = offsets[e], sf = sf_offsets[e];
  return m >= 0 && off >= 0 && off + m <= M && sizes[3 * e + 1] == N && sizes[3 * e + 2] == K && sf >= 0 &&
         sf % 128 == 0 && sf + nvfp4::swizzled_rows(m) <= R;
}

// Quiet NaN bits of a 2-byte output dtype.
constexpr uint16_t kNanBf16 = 0x7FC0, kNanHalf = 0x7E00;

// NaN (bits `nan`) into the rows inside [0, M) of every expert in [e0, e1)
// that breaks the contract, by `threads` threads of the caller (thread index
// `tid`; the host passes 0 and 1); out [M, N] of a 2-byte dtype.
LOWBIT_HD void fp4_group_nan_broken(const int32_t* sizes, const int32_t* offsets, const int32_t* sf_offsets,
                                     int64_t e0, int64_t e1, int64_t M, int64_t N, int64_t K, int64_t R,
                                     uint16_t* out, uint16_t nan, int tid, int threads) {
  for (int64_t e = e0; e < e1; ++e) {
    if (fp4_group_expert_ok(sizes, offsets, sf_offsets, e, M, N, K, R)) continue;
    const int64_t off = offsets[e], end = off + sizes[3 * e];
    const int64_t lo = off > 0 ? off : 0, hi = end < M ? end : M;
    for (int64_t i = lo * N + tid; i < hi * N; i += threads) out[i] = nan;
  }
}

}  // namespace lowbit
