// Blackwell (sm_120 family): hardware cvt.rn.satfinite.e2m1x2.f32 rounding;
// the scale math is the codec's (docs/SPEC.md §1.2), as on Hopper.
#include "../cuda/quant_kernels.cuh"

namespace lowbit::nvfp4 {
void quant_sm120(const QuantProblem& p, void* stream, int sm_count) {
  dev::launch_quant<dev::HardwareE2M1>(p, stream, sm_count);
}
}  // namespace lowbit::nvfp4
