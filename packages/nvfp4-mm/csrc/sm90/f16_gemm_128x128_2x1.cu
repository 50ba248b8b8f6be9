// SM90 fp16 GEMM, tile 128x128x64, cluster 2x1 (more tiles: fewer idle SMs in the last wave).
#include "f16_gemm.cuh"
LOWBIT_NVFP4_F16_DEFINE(128x128_2x1, 128, 128, 2, 1)
