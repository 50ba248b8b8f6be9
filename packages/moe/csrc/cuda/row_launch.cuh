// Launch shape shared by moe's row kernels (combine, per-token fp8 quant):
// one block per row, grid-striding past kMaxRowBlocks rows, each thread
// moving VEC elements at a time: 16 bytes when every row start allows it,
// else one element.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include <lowbit/cuda_utils.h>

#include "../elem_math.h"

namespace lowbit::moe {

constexpr int64_t kMaxRowBlocks = 1 << 20;

// VEC elements loaded or stored as one access.
template <typename E, int VEC>
struct alignas(sizeof(E) * VEC) Vec {
  E v[VEC];
};

// The storage of an activation element (elem_math.h works on the bits).
template <elem::In T>
using Elem = std::conditional_t<T == elem::In::F32, float, uint16_t>;

// Whether rows of `cols` values stay in `vec`-wide accesses: cols % vec == 0
// and each pointer aligned to the bytes `vec` of its elements span.
inline bool vec_fits(int64_t cols, int vec, const void* in, int in_bytes, const void* out, int out_bytes) {
  return cols % vec == 0 && reinterpret_cast<uintptr_t>(in) % in_bytes == 0 &&
         reinterpret_cast<uintptr_t>(out) % out_bytes == 0;
}

// Launches kernel_of(VEC)<<<min(rows, kMaxRowBlocks), threads>>>(p) on
// `stream` with VEC = kVec when `wide`, else 1 (kernel_of takes an
// std::integral_constant<int, VEC> and returns that kernel), and checks it.
template <int kVec, typename KernelOf, typename Problem>
void launch_rows(bool wide, KernelOf kernel_of, int threads, int64_t rows, const Problem& p,
                 cudaStream_t stream) {
  const auto grid = static_cast<unsigned>(std::min<int64_t>(rows, kMaxRowBlocks));
  if (wide) {
    kernel_of(std::integral_constant<int, kVec>{})<<<grid, threads, 0, stream>>>(p);
  } else {
    kernel_of(std::integral_constant<int, 1>{})<<<grid, threads, 0, stream>>>(p);
  }
  LOWBIT_CHECK_LAUNCH();
}

}  // namespace lowbit::moe
