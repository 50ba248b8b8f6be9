// Schedule 128x256_1x1x1: 128 weight rows x 256 tokens per CTA tile, cluster 1x1x1,
// cooperative kernel, persistent data-parallel tile scheduler.
// One schedule per translation unit keeps each nvcc run near 5 GB.
#include "sm90/w4a8_gemm.cuh"

LOWBIT_W4A8_DEFINE_SCHEDULE(128x256_1x1x1, 128, 256, 1, 1, 0)
