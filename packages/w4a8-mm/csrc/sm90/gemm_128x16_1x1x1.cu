// Schedule 128x16_1x1x1: 128 weight rows x 16 tokens per CTA tile, cluster 1x1x1,
// cooperative kernel, stream-K tile scheduler.
// One schedule per translation unit keeps each nvcc run near 5 GB.
#define LOWBIT_W4A8_STREAMK_TU  // no PDL (see w4a8_gemm.cuh)
#include "sm90/w4a8_gemm.cuh"

LOWBIT_W4A8_DEFINE_SCHEDULE(128x16_1x1x1, 128, 16, 1, 1, 1)
