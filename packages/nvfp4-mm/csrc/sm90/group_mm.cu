// SM90 cutlass_fp4_group_mm (docs/SPEC-MOE.md §5.2): the NVFP4 instantiation
// of the shared grouped mma.sync GEMM (lowbit/fp4_gemm/sm90_group.cuh: three
// launches per call whatever E is, the tile table, the A pre-pass over the
// experts' tiles and the main kernel; device metadata never on the host, so
// the call is CUDA-graph capturable) with the dense kernels' tiles
// (small_m_gemm.cu, multistage_gemm.cu) and the choice between them.
#include "nvfp4_mm.h"

#include <lowbit/fp4_gemm/sm90_group.cuh>

#include <string>

#include "families.h"
#include "mma_params.h"

namespace nvfp4_mm {
namespace sm90 {

void run_mma_group(const GroupProblem& p, const MmaKernel& k, std::atomic<uint64_t>& smem_done) {
  lowbit::fp4_gemm::sm90::run_mma_group<lowbit::fp4_gemm::sm90::Nvfp4>(p, k, smem_done, kGroupOp);
}

}  // namespace sm90

namespace {

using namespace sm90;

struct GroupKernel {
  const char* name;
  void (*run)(const GroupProblem&, int tile);
  int tile;
};
// small_m: weights streamed into registers (a few rows per expert, decode);
// multistage: shared-memory pipelined mma.sync tiles; wgmma: weights
// dequantized in registers feeding wgmma (more than 16 rows per expert).
const GroupKernel kGroupKernels[] = {
    {"small_m_16x128", &run_small_m_group, 0},
    {"multistage_64x128", &run_multistage_group, 1},
    {"multistage_128x128", &run_multistage_group, 2},
    {"wgmma_64x128", &run_wgmma_group, 0},
    {"wgmma_128x128", &run_wgmma_group, 1},
    {"wgmma_128x256", &run_wgmma_group, 2},
};

// By the experts' mean rows (sm90_group.cuh); boundaries from the H200
// sweeps of every tile by name (perf/nvfp4-mm/results/h200_group_*):
// small_m_16x128 wins at 8-16 rows per expert, the 64-row wgmma tile at 32
// (1.4-1.6x the mma.sync tiles), the 128x256 one from 128. Named, not
// indexed: the table's order may change.
const char* pick_group_kernel(const GroupProblem& p) {
  const int64_t rows = lowbit::fp4_gemm::sm90::mean_expert_rows(p.E, p.M);
  return rows <= 16 ? "small_m_16x128" : rows <= 64 ? "wgmma_64x128" : "wgmma_128x256";
}

}  // namespace

std::vector<std::string> sm90_group_kernel_names() {
  std::vector<std::string> names;
  for (const GroupKernel& k : kGroupKernels) names.emplace_back(k.name);
  return names;
}

void fp4_group_mm_sm90(const GroupProblem& p) {
  LOWBIT_CHECK(p.M < (1ll << 31) / 16 && p.N < (1ll << 31) && p.K < (1ll << 30), kGroupOp,
               ": problem too large for the SM90 kernels (M=", p.M, ", N=", p.N, ", K=", p.K, ")");
  const std::string name = p.kernel.empty() ? pick_group_kernel(p) : p.kernel;
  for (const GroupKernel& k : kGroupKernels)
    if (name == k.name) return k.run(p, k.tile);
  check_kernel_name(name, sm90_group_kernel_names(), "SM90", kGroupOp);
}

}  // namespace nvfp4_mm
