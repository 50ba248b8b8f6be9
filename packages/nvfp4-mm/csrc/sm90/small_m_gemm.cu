// SM90 small-M NVFP4 GEMM (decode-sized M): the NVFP4 instantiations of the
// shared weight-streaming mma.sync kernel (lowbit/fp4_gemm/sm90_small_m.cuh:
// weights from global memory straight into registers, no shared-memory
// staging and no block-wide barrier per K step; why and how there), their
// tile table, split heuristic and launches (dense split-K and grouped).
#include <lowbit/cuda_utils.h>
#include <lowbit/fp4_gemm/sm90_small_m.cuh>

#include "families.h"
#include "mma_params.h"
#include "prepass_a.h"

#include <algorithm>
#include <array>
#include <atomic>

namespace nvfp4_mm::sm90 {
namespace {

using lowbit::fp4_gemm::sm90::Nvfp4;
using lowbit::fp4_gemm::sm90::SmallCfg;

template <class Cf>
MmaKernel make_kernel() {
  return lowbit::fp4_gemm::sm90::make_small_m_kernel<Nvfp4, Cf>();
}

// The tiles of kSmallMNames. H200 sweeps (perf/nvfp4-mm/NOTES.md, v5): the
// 16x128 tile is the fastest or within 2% of the variants tried at M = 1 and
// 16 on the 8 SPEC shapes. (The 64x128 tile for 16 < M <= 64 was removed in
// session 9: the wgmma kernel with split-K runs 1.06-1.78x faster there; a
// 16x64 tile with twice the CTAs lost on 6 of 8 shapes at M = 1 and 16:
// NOTES v15.)
const MmaKernel kTiles[kSmallMTiles] = {
    // MT NT LPC DEPTH WIN L2PF MINB
    make_kernel<SmallCfg<1, 4, 1, 2, 4, 128, 4>>(),  // 16x128
};

// The smallest power of two (equal parts of the usual power-of-two K)
// giving >= 3.5 CTAs per SM, keeping >= 4 chunks (512 of K) per split.
// H200 split sweeps at M = 1 and 16 (v5): the best or within 3% on all 8
// SPEC shapes (8192² at 8 splits: 512 CTAs; 28672x4096 at 4: 896 CTAs;
// 6144x4096 stops at 8 (4 chunks): 16 splits were 17% slower).
int pick_splits(const Problem& pr, const MmaKernel& k, int64_t sms) {
  if (pr.splits > 0) return static_cast<int>(pr.splits);
  const int64_t C = (pr.K + k.chunk_k - 1) / k.chunk_k;
  const int64_t tiles = ((pr.N + k.bn - 1) / k.bn) * ((pr.M + k.bm - 1) / k.bm);
  const int64_t cap = std::max<int64_t>(1, std::min<int64_t>(C / 4, 64));
  int splits = 1;
  while (2 * tiles * splits < 7 * sms && splits * 2 <= cap) splits *= 2;
  return splits;
}

// Per tile: the devices where its shared memory is opted into (split_k_launch.cu).
std::array<std::atomic<uint64_t>, kSmallMTiles> smem_done{};

}  // namespace

const char* const kSmallMNames[kSmallMTiles] = {"small_m_16x128"};

void run_small_m(const Problem& pr, int tile) {
  cudaStream_t stream = lowbit::current_stream(pr.a);
  const int64_t sms = lowbit::device_sm_count(pr.a.get_device_index());
  if (tile < 0) tile = 0;
  const MmaKernel& k = kTiles[tile];
  Tensor afrag = prepass_a(pr, k.chunk_k / 16, stream);
  launch_mma_split_k(pr, k, afrag, pick_splits(pr, k, sms), smem_done[tile], stream, sms);
}

void run_small_m_group(const GroupProblem& p, int tile) { run_mma_group(p, kTiles[tile], smem_done[tile]); }

}  // namespace nvfp4_mm::sm90
