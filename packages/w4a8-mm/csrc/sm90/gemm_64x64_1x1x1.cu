// Schedule 64x64_1x1x1: 64 weight rows x 64 tokens per CTA tile, cluster 1x1x1,
// ping-pong kernel, persistent data-parallel scheduler: twice the tiles of
// 128x64 without split-K (no workspace, no memset, PDL-launchable).
#include "sm90/w4a8_gemm.cuh"

LOWBIT_W4A8_DEFINE_SCHEDULE(64x64_1x1x1, 64, 64, 1, 1, 2)
