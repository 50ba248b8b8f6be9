// CPU reference of cutlass_mxfp4_group_mm (docs/SPEC-MOE.md §5.3): the FP4
// formats' grouped reference GEMM (lowbit/cpu/fp4_group_gemm.h) with MXFP4's
// operands: 32 elements per E8M0 scale byte, 2^(b-127) exactly (byte 0xFF is
// NaN), no alpha. An expert whose metadata breaks the contract gets NaN in its
// in-bounds rows (§5.0.3).
#include "../mxfp4.h"

#include <lowbit/cpu/fp4_group_gemm.h>
#include <lowbit/mxfp4_codec.h>

namespace mxfp4 {

std::vector<std::string> cpu_group_kernel_names() { return {"reference"}; }

void mxfp4_group_mm_cpu(const GroupProblem& p) {
  const lowbit::cpu::Fp4GroupView g{
      p.a.const_data_ptr<uint8_t>(), p.sa.const_data_ptr<uint8_t>(), p.b.const_data_ptr<uint8_t>(),
      p.sb.const_data_ptr<uint8_t>(), p.problem_sizes.const_data_ptr<int32_t>(),
      p.expert_offsets.const_data_ptr<int32_t>(), p.sf_offsets.const_data_ptr<int32_t>(),
      p.E, p.M, p.N, p.K, p.R, lowbit::mxfp4::kBlock,
      p.out.scalar_type() != lowbit::ScalarType::Half, static_cast<uint16_t*>(p.out.data_ptr())};
  lowbit::cpu::fp4_group_gemm(
      g, [](uint8_t b) { return lowbit::mxfp4::scale_value(b); }, [](int64_t, float acc) { return acc; });
}

}  // namespace mxfp4
