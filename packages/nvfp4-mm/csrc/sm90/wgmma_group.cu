// SM90 cutlass_fp4_group_mm for prefill-sized experts: the NVFP4 instantiation
// of the shared wgmma grouped GEMM (lowbit/fp4_gemm/sm90_wgmma_group.cuh:
// weights dequantized in registers, fp16 wgmma, fp32 accumulation), with
// activation tiles of 64 or 128 rows.
#include "families.h"

#include <lowbit/fp4_gemm/sm90_wgmma_group.cuh>

#include <atomic>

namespace nvfp4_mm::sm90 {
namespace {

namespace fg = lowbit::fp4_gemm::sm90;
// Per tile: the devices where its shared memory is opted into.
std::atomic<uint64_t> smem_done[kWgmmaTiles];

}  // namespace

const char* const kWgmmaNames[kWgmmaTiles] = {"wgmma_64x128", "wgmma_128x128", "wgmma_128x256"};

void run_wgmma_group(const GroupProblem& p, int tile) {
  namespace wg = fg::wgmma_group;
  if (tile == 0) return wg::run<fg::Nvfp4, 64, 64>(p, smem_done[0], kGroupOp);
  if (tile == 1) return wg::run<fg::Nvfp4, 128, 64>(p, smem_done[1], kGroupOp);
  wg::run<fg::Nvfp4, 128, 128>(p, smem_done[2], kGroupOp);
}

}  // namespace nvfp4_mm::sm90
