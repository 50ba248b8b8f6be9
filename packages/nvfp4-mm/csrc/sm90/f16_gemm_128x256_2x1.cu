// SM90 fp16 GEMM, tile 128x256x64, cluster 2x1 (large M and N).
#include "f16_gemm.cuh"
LOWBIT_NVFP4_F16_DEFINE(128x256_2x1, 128, 256, 2, 1)
