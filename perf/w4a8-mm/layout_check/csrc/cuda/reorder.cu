// CUTLASS 4.2's own reorder (compute_memory_reordering_atom<float_e4m3_t> +
// tile_to_shape + reorder_tensor), applied to raw int4 nibbles (no encoding),
// and a compile-time check that the package's literal atom is the same type.
#include <cstdint>
// mixed_dtype_utils.hpp names cutlass::int8_t / uint8_t, which no CUTLASS
// header declares with nvcc 13.
namespace cutlass { using ::int8_t; using ::uint8_t; }
#include <cutlass/util/mixed_dtype_utils.hpp>

#include <lowbit/cuda_utils.h>

#include <torch/csrc/stable/ops.h>

#include "sm90/w4a8_gemm.cuh"  // ReorderAtom (package's literal form)

using CutlassAtom = decltype(cutlass::compute_memory_reordering_atom<cutlass::float_e4m3_t>());
static_assert(std::is_same_v<CutlassAtom, lowbit::w4a8::sm90::ReorderAtom>,
              "package reorder atom differs from CUTLASS's");

bool atom_matches_cutlass() { return std::is_same_v<CutlassAtom, lowbit::w4a8::sm90::ReorderAtom>; }

lowbit::Tensor cutlass_reorder_cuda(lowbit::Tensor B) {
  lowbit::DeviceGuard guard(B);
  const int N = static_cast<int>(B.size(1)), K = static_cast<int>(B.size(0) * 8);
  lowbit::Tensor out = torch::stable::empty_like(B);
  using StrideB = cute::Stride<int64_t, cute::_1, int64_t>;  // (N, K, L), K contiguous
  auto layout_src = cute::make_layout(cute::make_shape(N, K, 1),
                                      StrideB{int64_t(K), cute::_1{}, int64_t(N) * K});
  auto layout_dst = cute::tile_to_shape(CutlassAtom{}, cute::make_shape(N, K, 1));
  cutlass::reorder_tensor(reinterpret_cast<const cutlass::int4b_t*>(B.data_ptr()), layout_src,
                          reinterpret_cast<cutlass::int4b_t*>(out.data_ptr()), layout_dst);
  LOWBIT_CUDA_CHECK(cudaGetLastError());
  return out;
}
