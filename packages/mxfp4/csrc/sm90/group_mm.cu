// SM90 cutlass_mxfp4_group_mm (docs/SPEC-MOE.md §5.3): the MXFP4 instantiation
// of the grouped mma.sync FP4 GEMM that nvfp4-mm's cutlass_fp4_group_mm runs
// too (lowbit/fp4_gemm/sm90_group.cuh). Hopper has no FP4 tensor cores;
// e2m1 * 2^(b - 127) is exact in bf16 (SPEC-MOE §5.1.1), so both operands
// become bf16 and mma.sync accumulates in fp32 (lowbit/fp4_gemm/
// sm90_formats.cuh, Mxfp4). Per call three launches whatever E is: the tile
// table (experts with broken metadata get no tiles, §5.0.3), the A pre-pass
// over the experts' tiles and the main kernel; the device metadata never
// comes to the host, so the call is CUDA-graph capturable.
#include "mxfp4.h"

#include <lowbit/fp4_gemm/sm90_group.cuh>
#include <lowbit/fp4_gemm/sm90_small_m.cuh>

#include <algorithm>
#include <array>
#include <atomic>

namespace mxfp4 {
namespace {

namespace fg = lowbit::fp4_gemm::sm90;

// One decode tile (weights streamed into registers) and two wgmma tiles
// (sm90/wgmma_group.cu: weights dequantized in registers): nvfp4-mm's shapes
// of the same names and its grouped heuristic (H200, perf/nvfp4-mm/NOTES.md:
// the wgmma tiles beat the mma.sync small_m_64x128 and multistage tiles at
// every shape above 16 rows per expert, so those are not built here).
struct GroupKernel {
  const char* name;
  fg::MmaKernel kernel;
  int wgmma_tile;  // >= 0: the wgmma kernel's tile, not `kernel`
};
const GroupKernel kGroupKernels[] = {
    // MT NT LPC DEPTH WIN L2PF MINB
    {"small_m_16x128", fg::make_small_m_kernel<fg::Mxfp4, fg::SmallCfg<1, 4, 1, 2, 4, 128, 4>>(), -1},
    {"wgmma_64x128", {}, 0},
    {"wgmma_128x256", {}, 1},
};
constexpr int kKernels = sizeof(kGroupKernels) / sizeof(kGroupKernels[0]);

// Per kernel: the devices where its shared memory is opted into.
std::array<std::atomic<uint64_t>, kKernels> smem_done{};

// By the experts' mean rows (sm90_group.cuh), with nvfp4-mm's boundaries.
// Named, not indexed: the table's order may change.
const char* pick_group_kernel(const GroupProblem& p) {
  const int64_t rows = fg::mean_expert_rows(p.E, p.M);
  return rows <= 16 ? "small_m_16x128" : rows <= 64 ? "wgmma_64x128" : "wgmma_128x256";
}

}  // namespace

std::vector<std::string> sm90_group_kernel_names() {
  std::vector<std::string> names;
  for (const GroupKernel& k : kGroupKernels) names.emplace_back(k.name);
  return names;
}

void mxfp4_group_mm_sm90(const GroupProblem& p) {
  LOWBIT_CHECK(p.M < (1ll << 31) / 16 && p.N < (1ll << 31) && p.K < (1ll << 30), kGroupOp,
               ": problem too large for the SM90 kernels (M=", p.M, ", N=", p.N, ", K=", p.K, ")");
  const std::string name = p.kernel.empty() ? pick_group_kernel(p) : p.kernel;
  int i = 0;
  while (i < kKernels && name != kGroupKernels[i].name) ++i;
  if (i == kKernels) return check_kernel_name(name, sm90_group_kernel_names(), "SM90");  // raises
  if (kGroupKernels[i].wgmma_tile >= 0) return run_wgmma_group_sm90(p, kGroupKernels[i].wgmma_tile);
  fg::run_mma_group<fg::Mxfp4>(p, kGroupKernels[i].kernel, smem_done[i], kGroupOp);
}

}  // namespace mxfp4
