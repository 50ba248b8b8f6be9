// Layout-check op: CUTLASS's reorder of an int4 weight, for the cross-check.
#include <lowbit/arch.h>
#include <lowbit/torch_utils.h>

using lowbit::Tensor;

#if LOWBIT_WITH_CUDA
Tensor cutlass_reorder_cuda(Tensor B);  // csrc/cuda/reorder.cu
bool atom_matches_cutlass();
#endif

namespace {
Tensor cutlass_reorder(Tensor B) {
  lowbit::check_dtype("cutlass_reorder", "B", B, {lowbit::ScalarType::Int});
  lowbit::check_dim("cutlass_reorder", "B", B, 2);
  LOWBIT_CHECK(B.is_cuda(), "cutlass_reorder: argument 'B': expected a CUDA tensor");
#if LOWBIT_WITH_CUDA
  return cutlass_reorder_cuda(B);
#else
  return B;
#endif
}
bool atom_matches() {
#if LOWBIT_WITH_CUDA
  return atom_matches_cutlass();
#else
  return false;
#endif
}
}  // namespace

STABLE_TORCH_LIBRARY(lowbit_w4a8_mm_test, m) {
  m.def("cutlass_reorder(Tensor B) -> Tensor");
  m.def("atom_matches_cutlass() -> bool");
}
STABLE_TORCH_LIBRARY_IMPL(lowbit_w4a8_mm_test, CompositeExplicitAutograd, m) {
  m.impl("cutlass_reorder", TORCH_BOX(&cutlass_reorder));
}
STABLE_TORCH_LIBRARY_IMPL(lowbit_w4a8_mm_test, CompositeImplicitAutograd, m) {
  m.impl("atom_matches_cutlass", TORCH_BOX(&atom_matches));
}
