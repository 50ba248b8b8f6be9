// Schedule 256x64_1x1x1: 256 weight rows x 64 tokens per CTA tile, cluster 1x1x1,
// cooperative kernel, persistent data-parallel tile scheduler (vLLM v0.34.0's
// meaning of the name, SPEC §2.3; no heuristic picks it).
// One schedule per translation unit keeps each nvcc run near 5 GB.
#include "sm90/w4a8_gemm.cuh"

LOWBIT_W4A8_DEFINE_SCHEDULE(256x64_1x1x1, 256, 64, 1, 1, 0)
