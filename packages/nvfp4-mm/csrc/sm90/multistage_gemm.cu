// SM90 multistage NVFP4 GEMM: the NVFP4 instantiations of the common
// shared-memory pipelined mma.sync kernel template
// (lowbit/fp4_gemm/sm90_multistage.cuh).
// Hopper has no FP4 tensor cores, so the kernel computes docs/SPEC.md §1.4
// exactly with fp16 tensor cores: every e2m1 x e4m3 product is exact in fp16
// (at most 6 significant bits, magnitudes 2^-10 .. 2688), mma.sync
// accumulates in fp32. Per call: the A pre-pass (prepass_a.h), this kernel
// (split-K over gridDim.z), and for split-K the deterministic reduce
// (split_k_launch.cu), all chained with programmatic dependent launch.
#include "nvfp4_mm.h"

#include <lowbit/cuda_utils.h>
#include <lowbit/fp4_gemm/sm90_multistage.cuh>

#include "families.h"
#include "mma_params.h"
#include "prepass_a.h"

#include <algorithm>
#include <array>
#include <atomic>

namespace nvfp4_mm::sm90 {
namespace {

using lowbit::fp4_gemm::sm90::Cfg;
using lowbit::fp4_gemm::sm90::Nvfp4;
constexpr int kChunk = lowbit::fp4_gemm::sm90::kMultistageChunk;  // K elements per pipeline stage

// ------------------------------------------------------------ tiles
template <class Cf>
MmaKernel make_kernel() {
  return lowbit::fp4_gemm::sm90::make_multistage_kernel<Nvfp4, Cf>();
}

// The tiles of kMultistageNames. From the H100 sweep at N = K = 8192
// (perf/nvfp4-mm/NOTES.md): BM 16 x BN 128 with split-K for M <= 16, BM 64 x
// BN 128 up to 256, then BM 128 x BN 128.
const MmaKernel kTiles[kMultistageTiles] = {
    make_kernel<Cfg<1, 4, 1, 4, 6>>(),  // 16x128: 4 warps of 16x32, 6 stages
    make_kernel<Cfg<4, 4, 1, 4, 4>>(),  // 64x128: 4 warps of 64x32, 4 stages
    make_kernel<Cfg<8, 4, 1, 4, 4>>(),  // 128x128: 4 warps of 128x32, 4 stages
};

int pick_tile(int64_t M) { return M <= 16 ? 0 : M <= 256 ? 1 : 2; }

// Fill the machine ~4 CTAs deep (the H100 sweep's best for small M: the
// per-CTA loop is latency-bound), keeping >= 4 chunks (256 of K) per split.
// A power of two splits the usual power-of-two K into equal parts (the
// sweep: 8 equal splits beat 9 unequal ones by 10%). Batch-invariant mode:
// one split (a row's reduction order must not depend on the shape).
int pick_splits(const Problem& pr, const MmaKernel& k, int64_t sms) {
  if (pr.splits > 0) return static_cast<int>(pr.splits);
  if (pr.batch_invariant) return 1;
  const int64_t C = (pr.K + kChunk - 1) / kChunk;
  const int64_t tiles = ((pr.N + k.bn - 1) / k.bn) * ((pr.M + k.bm - 1) / k.bm);
  const int64_t want = std::max<int64_t>(1, std::min<int64_t>({(4 * sms + tiles - 1) / tiles, C / 4, 64}));
  int splits = 1;
  while (splits * 2 <= want) splits *= 2;
  return splits;
}

// Per tile: the devices where its shared memory is opted into (split_k_launch.cu).
std::array<std::atomic<uint64_t>, kMultistageTiles> smem_done{};

}  // namespace

const char* const kMultistageNames[kMultistageTiles] = {"multistage_16x128", "multistage_64x128",
                                                         "multistage_128x128"};

void run_multistage(const Problem& pr, int tile) {
  cudaStream_t stream = lowbit::current_stream(pr.a);
  const int64_t sms = lowbit::device_sm_count(pr.a.get_device_index());
  if (tile < 0) tile = pick_tile(pr.M);
  const MmaKernel& k = kTiles[tile];
  // A -> fp16 in mma.sync fragment order (workspace through torch: caching
  // allocator, graph-safe).
  Tensor afrag = prepass_a(pr, kChunk / 16, stream);
  launch_mma_split_k(pr, k, afrag, pick_splits(pr, k, sms), smem_done[tile], stream, sms);
}

void run_multistage_group(const GroupProblem& p, int tile) { run_mma_group(p, kTiles[tile], smem_done[tile]); }

}  // namespace nvfp4_mm::sm90
