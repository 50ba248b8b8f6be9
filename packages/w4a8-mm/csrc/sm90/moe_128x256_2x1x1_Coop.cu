// Grouped (MoE) schedule Kernel_128x256_2x1x1_Coop: 128 weight rows x 256 tokens per CTA
// tile, cluster 2x1x1, ptr-array cooperative kernel (prefill: > 64 rows per
// expert; the 2x1 cluster multicasts the activation tile to both CTAs).
// One schedule per translation unit keeps each nvcc run near 5 GB.
#include "sm90/w4a8_moe_gemm.cuh"

LOWBIT_W4A8_DEFINE_MOE_SCHEDULE(Kernel_128x256_2x1x1_Coop, 128, 256, 2)
