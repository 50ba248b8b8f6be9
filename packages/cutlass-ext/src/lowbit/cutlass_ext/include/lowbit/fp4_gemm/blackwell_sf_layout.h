// The scale-factor layout the Blackwell (SM100 / SM120) block-scaled GEMMs
// are given, written once for the dense NVFP4 GEMM (nvfp4-mm's
// blackwell_gemm.cuh), the grouped FP4 GEMMs (blackwell_group_gemm.cuh) and
// the cutlass-ext test op that checks it on the CPU (tests/test_blackwell_sf_layout.py:
// every (row, k) of this layout addresses the byte the 128x4 swizzle of
// docs/SPEC.md §1.3 gives its scale). Those kernels have never run on a GPU
// here, so that host check is what ties their scale reads to lowbit's bytes.
// Host + device (CuTe layout arithmetic only).
#pragma once

#include <cute/tensor.hpp>
#include <cutlass/detail/sm100_blockscaled_layout.hpp>

#include <type_traits>

namespace lowbit::fp4_gemm::blackwell {

// CUTLASS's scale-factor configuration for `kBlock` elements per scale byte
// (16 NVFP4, 32 MXFP4).
template <int kBlock>
using SfConfig = cutlass::detail::Sm1xxBlockScaledConfig<kBlock>;

// Layout of the scales of a `rows` x K operand (A's or B's: CUTLASS builds
// both the same way from (rows, K)): (row, k, 0) -> byte offset from the
// operand's first scale byte.
template <int kBlock>
CUTE_HOST_DEVICE auto sf_layout(int rows, int K) {
  return SfConfig<kBlock>::tile_atom_to_shape_SFA(cute::make_shape(rows, 1, K, 1));
}

// A collective's scale configuration is the one sf_layout uses (so the layout
// the test checks is the one the kernel reads through).
template <class Mainloop, int kBlock>
constexpr bool uses_sf_config = std::is_same_v<typename Mainloop::Sm1xxBlkScaledConfig, SfConfig<kBlock>>;

}  // namespace lowbit::fp4_gemm::blackwell
