// Hopper: no fp32->e2m1 instruction; software rounding (bit-exact with SPEC §1.1).
#include "../cuda/quant_kernels.cuh"

namespace lowbit::nvfp4 {
void quant_sm90(const QuantProblem& p, void* stream, int sm_count) {
  dev::launch_quant<dev::SoftwareE2M1>(p, stream, sm_count);
}
}  // namespace lowbit::nvfp4
