// The e2m1_pairs test op's per-word work, for its CPU loop (ops.cpp) and its
// CUDA kernel (cuda/e2m1.cu): the four pairs lowbit::fp4_gemm places from
// word w. variant 0: e2m1x2_fp16 (byte permutes), 1: e2m1x2_placed for fp16,
// 2: for bf16.
#pragma once

#include <lowbit/fp4_gemm/e2m1_bits.h>

#include <cstdint>

LOWBIT_HD void e2m1_pairs_of(uint32_t w, int variant, uint32_t* r) {
  namespace f = lowbit::fp4_gemm;
  if (variant == 0) {
    r[0] = f::e2m1x2_fp16<0>(w), r[1] = f::e2m1x2_fp16<1>(w), r[2] = f::e2m1x2_fp16<2>(w), r[3] = f::e2m1x2_fp16<3>(w);
  } else if (variant == 1) {
    r[0] = f::e2m1x2_placed<0, 9>(w), r[1] = f::e2m1x2_placed<1, 9>(w);
    r[2] = f::e2m1x2_placed<2, 9>(w), r[3] = f::e2m1x2_placed<3, 9>(w);
  } else {
    r[0] = f::e2m1x2_placed<0, 6>(w), r[1] = f::e2m1x2_placed<1, 6>(w);
    r[2] = f::e2m1x2_placed<2, 6>(w), r[3] = f::e2m1x2_placed<3, 6>(w);
  }
}
