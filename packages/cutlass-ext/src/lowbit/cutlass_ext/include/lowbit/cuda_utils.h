// CUDA-side helpers: error checks, torch's current stream without linking
// libtorch_cuda, device guard, compute capability. Needs the CUDA runtime
// headers; include only from code built when LOWBIT_WITH_CUDA is 1.
#pragma once

#include <lowbit/torch_utils.h>

#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include <array>
#include <atomic>
#include <mutex>
#include <utility>

#include <torch/csrc/stable/accelerator.h>

// LOWBIT_CUDA_CHECK(expr): throw RuntimeError naming the call on failure.
#define LOWBIT_CUDA_CHECK(expr)                                           \
  do {                                                                    \
    cudaError_t lowbit_err_ = (expr);                                     \
    if (__builtin_expect(lowbit_err_ != cudaSuccess, 0)) {                \
      ::lowbit::fail(::lowbit::str("CUDA error ", cudaGetErrorName(lowbit_err_), \
                                   " (", cudaGetErrorString(lowbit_err_), \
                                   ") from ", #expr, " at ", __FILE__, ":", \
                                   __LINE__));                            \
    }                                                                     \
  } while (0)

// Check the launch that was just issued (bad configuration, missing image).
#define LOWBIT_CHECK_LAUNCH() LOWBIT_CUDA_CHECK(cudaGetLastError())

namespace lowbit {

// torch's current CUDA stream for `device_index`. The C shim that returns it
// lives in libtorch_cuda.so, which we must not link (the .so would then fail
// to load on CPU-only torch); it is resolved once from the already-loaded
// library.
inline cudaStream_t current_stream(int device_index) {
  using Fn = int32_t (*)(int32_t, void**);
  static std::atomic<Fn> fn{nullptr};
  Fn f = fn.load(std::memory_order_acquire);
  if (f == nullptr) {
    void* lib = dlopen("libtorch_cuda.so", RTLD_NOLOAD | RTLD_LAZY);
    LOWBIT_CHECK(lib != nullptr,
                 "lowbit: libtorch_cuda.so is not loaded; a CUDA tensor needs "
                 "a CUDA build of torch");
    f = reinterpret_cast<Fn>(dlsym(lib, "aoti_torch_get_current_cuda_stream"));
    LOWBIT_CHECK(f != nullptr,
                 "lowbit: aoti_torch_get_current_cuda_stream not found in "
                 "libtorch_cuda.so");
    fn.store(f, std::memory_order_release);
  }
  void* stream = nullptr;
  LOWBIT_CHECK(f(device_index, &stream) == 0,
               "lowbit: could not get the current CUDA stream of device ",
               device_index);
  return static_cast<cudaStream_t>(stream);
}

inline cudaStream_t current_stream(const Tensor& t) {
  return current_stream(t.get_device_index());
}

// RAII: make `t`'s device current for the kernel launch and restore after.
class DeviceGuard {
 public:
  explicit DeviceGuard(const Tensor& t) : guard_(t.get_device_index()) {}
  explicit DeviceGuard(int device_index) : guard_(device_index) {}

 private:
  torch::stable::accelerator::DeviceGuard guard_;
};

// Per-device properties read once (the query is not free on the hot path).
struct DeviceInfo {
  int sm = 0;        // compute capability, major*10+minor (90, 100, 120, ...)
  int sm_count = 0;  // multiprocessors, for grid sizing
};

inline const DeviceInfo& device_info(int device_index) {
  constexpr int kMaxDevices = 64;
  static std::array<std::once_flag, kMaxDevices> once;
  static std::array<DeviceInfo, kMaxDevices> info;
  LOWBIT_CHECK(device_index >= 0 && device_index < kMaxDevices,
               "lowbit: CUDA device index ", device_index, " out of range");
  std::call_once(once[device_index], [device_index] {
    int major = 0, minor = 0, count = 0;
    LOWBIT_CUDA_CHECK(cudaDeviceGetAttribute(
        &major, cudaDevAttrComputeCapabilityMajor, device_index));
    LOWBIT_CUDA_CHECK(cudaDeviceGetAttribute(
        &minor, cudaDevAttrComputeCapabilityMinor, device_index));
    LOWBIT_CUDA_CHECK(cudaDeviceGetAttribute(
        &count, cudaDevAttrMultiProcessorCount, device_index));
    info[device_index] = DeviceInfo{major * 10 + minor, count};
  });
  return info[device_index];
}

inline int device_sm(int device_index) { return device_info(device_index).sm; }
inline int device_sm(const Tensor& t) { return device_sm(t.get_device_index()); }
inline int device_sm_count(int device_index) {
  return device_info(device_index).sm_count;
}

#ifdef __CUDACC__
// Programmatic dependent launch (PDL, sm_90+). A kernel launched with
// `pdl = true` may start while the previous kernel in the stream is still
// running; it must call pdl_wait() before touching memory that kernel (or any
// earlier one) writes, and may call pdl_launch_dependents() to let the next
// PDL-launched kernel start early (that one waits for our completion in its
// own pdl_wait()). Both are no-ops below sm_90 and without a PDL launch.
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// kernel<<<grid, block, smem, stream>>>(args...), with PDL allowed if `pdl`;
// checks the launch.
template <class... Params, class... Args>
inline void launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                          cudaStream_t stream, bool pdl, Args&&... args) {
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cfg.attrs = pdl ? attr : nullptr;
  cfg.numAttrs = pdl ? 1 : 0;
  LOWBIT_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...));
}
#endif

}  // namespace lowbit
