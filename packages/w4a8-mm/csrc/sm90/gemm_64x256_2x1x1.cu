// Schedule 64x256_2x1x1: 64 weight rows x 256 tokens per CTA tile, cluster 2x1x1,
// ping-pong kernel, persistent tile scheduler.
// One schedule per translation unit keeps each nvcc run near 5 GB.
#include "sm90/w4a8_gemm.cuh"

LOWBIT_W4A8_DEFINE_SCHEDULE(64x256_2x1x1, 64, 256, 2, 1, 2)
