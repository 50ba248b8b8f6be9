// The per-expert formulas shared by the CPU and CUDA kernels
// (docs/SPEC-MOE.md §5.9.4): problem-size rows and the bin of a route (the
// scale-row padding is the codec's swizzled_rows). Host and device.
#pragma once

#include <lowbit/nvfp4_codec.h>

#include <cstdint>

#ifdef __CUDACC__
#define LOWBIT_MOE_HD __host__ __device__ __forceinline__
#else
#define LOWBIT_MOE_HD inline
#endif

namespace lowbit::moe {

// Bin of a route: its expert, or E for an invalid id (< 0 or >= E), which
// sorts after every expert (an orphan route).
template <typename Id>
LOWBIT_MOE_HD int32_t route_bin(Id id, int64_t num_experts) {
  return (id >= 0 && static_cast<int64_t>(id) < num_experts) ? static_cast<int32_t>(id)
                                                              : static_cast<int32_t>(num_experts);
}

// Problem-size rows of expert e with m_e rows: GEMM1 (m_e, n1, k), GEMM2
// (m_e, k, n), or with `swap` the operands exchanged: (n1, m_e, k), (k, m_e, n).
LOWBIT_MOE_HD void write_problem_sizes(int32_t* ps1, int32_t* ps2, int64_t e, int32_t m_e,
                                       int64_t n1, int64_t n, int64_t k, bool swap) {
  int32_t* a = ps1 + 3 * e;
  int32_t* b = ps2 + 3 * e;
  a[0] = swap ? static_cast<int32_t>(n1) : m_e;
  a[1] = swap ? m_e : static_cast<int32_t>(n1);
  a[2] = static_cast<int32_t>(k);
  b[0] = swap ? static_cast<int32_t>(k) : m_e;
  b[1] = swap ? m_e : static_cast<int32_t>(k);
  b[2] = static_cast<int32_t>(n);
}

}  // namespace lowbit::moe
