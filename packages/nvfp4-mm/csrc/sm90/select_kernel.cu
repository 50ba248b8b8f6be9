// The SM90 entry: every named kernel of the four families (families.h) and
// the heuristic that picks one by shape.
//
// Which kernel runs: M <= 16 (not batch-invariant) the small-M kernel
// (weights streamed straight into registers, no shared-memory pipeline);
// 16 < M <= 512 the wgmma kernel (weights dequantized in registers; K split
// where its tiles leave SMs idle);
// M > 512 the dequantize + CUTLASS fp16 GEMM (tensor-core bound there, not
// memory bound); the multistage kernel for batch-invariant mode at every M.
#include "nvfp4_mm.h"

#include "families.h"

namespace nvfp4_mm {
namespace {

using namespace sm90;

struct Family {
  const char* const* names;
  int tiles;
  void (*run)(const Problem&, int tile);
};
const Family kFamilies[] = {
    {kSmallMNames, kSmallMTiles, &run_small_m},
    {kMultistageNames, kMultistageTiles, &run_multistage},
    {kDequantCutlassNames, kDequantCutlassTiles, &run_dequant_cutlass},
    {kWgmmaNames, kWgmmaTiles, &run_wgmma},
};

// Up to this M (not batch-invariant) the small-M kernel runs; above it, up to
// kWgmmaMMax, the wgmma kernel; above that the dequantize + CUTLASS path.
constexpr int64_t kSmallMMax = 16, kWgmmaMMax = 512;

const Family& pick_family(int64_t M, bool batch_invariant) {
  // H100, all 8 docs/SPEC.md §4 shapes (perf/nvfp4-mm/NOTES.md, v4): the dequantize
  // + CUTLASS path beats the mma.sync kernels by 10-55% from M = 512 and
  // loses by 10-50% at M = 128. Batch-invariant mode stays on the multistage
  // family for every M (one kernel family and no split-K, so a row's
  // reduction order cannot depend on M; HMMA and HGMMA need not sum inside a
  // k16 step in the same order).
  // H200, Llama-3-70B (perf/nvfp4-mm/NOTES.md, wgmma): the wgmma kernel is
  // 1.0-2.7x the mma.sync and dequantize paths for 64 < M <= 512, and
  // 0.93-0.99x the dequantize path from M = 1024. H200, 8 Llama-3 layers at
  // M = 32 and 64 (perf/nvfp4-mm/results/h200_dense_sweep_splitk_s9.md): the
  // wgmma kernel with its cost model's split count 1.06-1.78x the small-M
  // 64-row tile (the model's pick was the fastest wgmma variant on all 16).
  if (M > kSmallMMax && M <= kWgmmaMMax && !batch_invariant) return kFamilies[3];
  if (M > kWgmmaMMax && !batch_invariant) return kFamilies[2];
  // H200, 8 shapes (v5): the small-M kernel is 1.18-1.42x faster at M = 1
  // and 1.14-1.34x at M = 16. Not in batch-invariant mode: its K order differs from
  // the multistage tiles', and its split count depends on the shape.
  if (M <= kSmallMMax && !batch_invariant) return kFamilies[0];
  return kFamilies[1];
}

}  // namespace

std::vector<std::string> sm90_kernel_names() {
  std::vector<std::string> names;
  for (const Family& f : kFamilies) names.insert(names.end(), f.names, f.names + f.tiles);
  return names;
}

void scaled_fp4_mm_sm90(const Problem& p) {
  LOWBIT_CHECK(p.M < (1ll << 31) / 16 && p.N < (1ll << 31) && p.K < (1ll << 30), kOp,
               ": problem too large for the SM90 kernels (M=", p.M, ", N=", p.N, ", K=", p.K, ")");
  if (p.kernel.empty()) return pick_family(p.M, p.batch_invariant).run(p, -1);
  for (const Family& f : kFamilies)
    for (int t = 0; t < f.tiles; ++t)
      if (p.kernel == f.names[t]) return f.run(p, t);
  check_kernel_name(p.kernel, sm90_kernel_names(), "SM90");
}

}  // namespace nvfp4_mm
