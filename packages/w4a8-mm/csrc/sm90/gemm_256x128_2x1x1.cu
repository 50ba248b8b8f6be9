// Schedule 256x128_2x1x1: 256 weight rows x 128 tokens per CTA tile, cluster 2x1x1,
// cooperative kernel, persistent data-parallel tile scheduler.
// One schedule per translation unit keeps each nvcc run near 5 GB.
#include "sm90/w4a8_gemm.cuh"

LOWBIT_W4A8_DEFINE_SCHEDULE(256x128_2x1x1, 256, 128, 2, 1, 0)
