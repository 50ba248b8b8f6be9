// The device side of the e2m1_pairs test op: the same e2m1_bits.h functions
// the SM90 FP4 GEMMs run, here on the GPU (byte_perm is __byte_perm there).
#include <lowbit/cuda_utils.h>

#include "e2m1_pairs.h"

namespace {
__global__ void e2m1_pairs_kernel(const uint32_t* w, uint32_t* o, int64_t n, int variant) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i < n) e2m1_pairs_of(w[i], variant, o + 4 * i);
}
}  // namespace

void e2m1_pairs_cuda(lowbit::Tensor words, lowbit::Tensor out, int64_t variant) {
  lowbit::DeviceGuard guard(words);
  const int64_t n = words.size(0);
  if (n == 0) return;
  const int threads = 256;
  e2m1_pairs_kernel<<<lowbit::ceil_div<int64_t>(n, threads), threads, 0, lowbit::current_stream(words)>>>(
      reinterpret_cast<const uint32_t*>(words.const_data_ptr<int32_t>()),
      reinterpret_cast<uint32_t*>(out.mutable_data_ptr<int32_t>()), n, static_cast<int>(variant));
  LOWBIT_CHECK_LAUNCH();
}
