// CUDA half of the test extension: a kernel on torch's current stream, under a
// device guard, with launch checking.
#include <lowbit/cuda_utils.h>

namespace {
__global__ void iota_kernel(float* p, int64_t n) {
  int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i < n) p[i] = static_cast<float>(i);
}
}  // namespace

void fill_iota_cuda(lowbit::Tensor x) {
  lowbit::DeviceGuard guard(x);
  const int64_t n = x.numel();
  if (n == 0) return;
  const int threads = 256;
  const int64_t blocks = lowbit::ceil_div<int64_t>(n, threads);
  iota_kernel<<<blocks, threads, 0, lowbit::current_stream(x)>>>(
      x.mutable_data_ptr<float>(), n);
  LOWBIT_CHECK_LAUNCH();
}

// The device that is current while a guard for x's device is held.
int64_t guarded_current_device(lowbit::Tensor x) {
  lowbit::DeviceGuard guard(x);
  int dev = -1;
  LOWBIT_CUDA_CHECK(cudaGetDevice(&dev));
  return dev;
}
