// Grouped (MoE) schedule Kernel_128x16_1x1x1_Coop: 128 weight rows x 16 tokens per CTA
// tile, cluster 1x1x1, ptr-array cooperative kernel (decode: <= 16 rows per expert).
// One schedule per translation unit keeps each nvcc run near 5 GB.
#include "sm90/w4a8_moe_gemm.cuh"

LOWBIT_W4A8_DEFINE_MOE_SCHEDULE(Kernel_128x16_1x1x1_Coop, 128, 16, 1)
