// SM90 cutlass_mxfp4_group_mm for prefill-sized experts: the MXFP4
// instantiation of the shared wgmma grouped GEMM (lowbit/fp4_gemm/
// sm90_wgmma_group.cuh: weights dequantized in registers, bf16 wgmma, fp32
// accumulation). Tiles: activation rows x weight rows.
#include "mxfp4.h"

#include <lowbit/fp4_gemm/sm90_wgmma_group.cuh>

#include <atomic>

namespace mxfp4 {
namespace {

namespace fg = lowbit::fp4_gemm::sm90;
// Per tile: the devices where its shared memory is opted into.
std::atomic<uint64_t> smem_done[2];

}  // namespace

void run_wgmma_group_sm90(const GroupProblem& p, int tile) {
  namespace wg = fg::wgmma_group;
  if (tile == 0) return wg::run<fg::Mxfp4, 64, 64>(p, smem_done[0], kGroupOp);
  wg::run<fg::Mxfp4, 128, 128>(p, smem_done[1], kGroupOp);
}

}  // namespace mxfp4
