// SM100 NVFP4 GEMM, f16 output: the two CUTLASS tile configs of this arch
// (0: MMA tile 128x128x256, 1 SM, small M; 1: MMA tile 256x128x256, 2-SM cluster, large M).
#include "blackwell_gemm.cuh"

namespace nvfp4_mm {

void mm_sm100_f16(const Problem& p, int cfg) {
#if defined(CUTLASS_ARCH_MMA_SM100_SUPPORTED)
  using namespace cute;
  if (cfg == 0)
    blackwell::Fp4Gemm<cutlass::arch::Sm100, Shape<_128, _128, _256>, Shape<_1, _1, _1>, cutlass::half_t>::run(p, "SM100");
  else
    blackwell::Fp4Gemm<cutlass::arch::Sm100, Shape<_256, _128, _256>, Shape<_2, _1, _1>, cutlass::half_t>::run(p, "SM100");
#else
  lowbit::fail("cutlass_scaled_fp4_mm: this CUTLASS build has no SM100 block-scaled MMA support");
#endif
}

void mm_sm100_bf16(const Problem& p, int cfg);  // mm_sm100_bf16.cu

int64_t sm100_num_configs() { return 2; }

// Tile config by M (the batch-invariant mode keeps one config for every M;
// there is no split-K, so each row's reduction order is then fixed).
void mm_sm100(const Problem& p) {
  lowbit::DeviceGuard guard(p.a);
  const int cfg = p.config >= 0 ? static_cast<int>(p.config) : (p.batch_invariant || p.M <= 128) ? 0 : 1;
  if (p.out.scalar_type() == lowbit::ScalarType::BFloat16)
    mm_sm100_bf16(p, cfg);
  else
    mm_sm100_f16(p, cfg);
}

}  // namespace nvfp4_mm
