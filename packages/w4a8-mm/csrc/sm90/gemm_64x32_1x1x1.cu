// Schedule 64x32_1x1x1: 64 weight rows x 32 tokens per CTA tile, cluster 1x1x1,
// ping-pong kernel, persistent data-parallel scheduler: twice the tiles of
// 128x32 without split-K (no workspace, no memset, PDL-launchable).
#include "sm90/w4a8_gemm.cuh"

LOWBIT_W4A8_DEFINE_SCHEDULE(64x32_1x1x1, 64, 32, 1, 1, 2)
