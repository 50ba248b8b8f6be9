// The CUTLASS fp16 GEMM behind the SM90 large-M path (declarations only, so
// the driver TU does not include CUTLASS).
#pragma once

#include "nvfp4_mm.h"

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace nvfp4_mm::sm90 {

// D[M, N] = alpha * A[M, K] . B[N, K]^T + bias[N]; A, B fp16 row-major (K
// contiguous), D bf16/fp16 with row stride ldd (a column slice of the
// caller's output), alpha read on the device, bias (D's dtype, the same
// column slice) or nullptr. Exact e2m1 x e4m3 values in, fp32 accumulation,
// fp32 alpha * acc + bias (one fma), one rounding to D's dtype.
struct F16Gemm {
  const void* a;
  const void* b;
  void* d;
  const float* alpha;
  const void* bias;
  int M, N, K;
  int64_t ldd;
  bool out_bf16;
  int device, sm_count;
  cudaStream_t stream;
};

// One entry per CUTLASS tile config (f16_gemm_<tile>.cu), launched with
// programmatic dependent launch (the kernel waits for the dequant pre-pass).
struct F16GemmTile {
  const char* name;
  size_t (*workspace)(const F16Gemm&);
  void (*run)(const F16Gemm&, void* workspace);
};

#define LOWBIT_NVFP4_F16_TILES(X) X(128x256_2x1) X(128x128_2x1)
#define LOWBIT_NVFP4_F16_DECLARE(NAME)              \
  size_t f16_gemm_workspace_##NAME(const F16Gemm&); \
  void f16_gemm_run_##NAME(const F16Gemm&, void*);
LOWBIT_NVFP4_F16_TILES(LOWBIT_NVFP4_F16_DECLARE)
#undef LOWBIT_NVFP4_F16_DECLARE

}  // namespace nvfp4_mm::sm90
