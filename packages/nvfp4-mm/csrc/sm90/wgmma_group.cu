// SM90 wgmma FP4 GEMM (lowbit/fp4_gemm/sm90_wgmma_group.cuh: weights
// dequantized in registers, fp16 wgmma, fp32 accumulation, persistent CTAs),
// the NVFP4 instantiation: cutlass_fp4_group_mm above 16 rows per expert and
// the dense cutlass_scaled_fp4_mm for 64 < M <= 512. Tiles: activation rows x
// weight rows.
#include "families.h"

#include <lowbit/cuda_utils.h>
#include <lowbit/fp4_gemm/sm90_wgmma_group.cuh>

#include <atomic>
#include <cstdint>

namespace nvfp4_mm::sm90 {
namespace {

namespace fg = lowbit::fp4_gemm::sm90;
namespace wg = fg::wgmma_group;

// Per tile and use (grouped, dense): the devices where its shared memory is
// opted into.
std::atomic<uint64_t> smem_done[2][kWgmmaTiles];

// Dense: the tile with the fewest estimated cycles, (waves of CTAs over the
// SMs) x (tile area / the tile's measured throughput relative to 128x256:
// 1, 0.95, 0.64 at M = 2048 on Llama-3-70B, H200, perf/nvfp4-mm/NOTES.md).
int pick_dense_tile(int64_t M, int64_t N, int64_t sms) {
  const int64_t bn[kWgmmaTiles] = {64, 128, 128}, bm[kWgmmaTiles] = {128, 128, 256};
  const double rate[kWgmmaTiles] = {0.64, 0.95, 1.0};
  int best = 2;
  double best_cost = 0;
  for (int t = kWgmmaTiles - 1; t >= 0; --t) {
    const int64_t ctas = (M + bn[t] - 1) / bn[t] * ((N + bm[t] - 1) / bm[t]);
    const double cost = double((ctas + sms - 1) / sms) * double(bn[t] * bm[t]) / rate[t];
    if (t == kWgmmaTiles - 1 || cost < best_cost) best = t, best_cost = cost;
  }
  return best;
}

}  // namespace

const char* const kWgmmaNames[kWgmmaTiles] = {"wgmma_64x128", "wgmma_128x128", "wgmma_128x256"};

void run_wgmma_group(const GroupProblem& p, int tile) {
  std::atomic<uint64_t>* done = smem_done[0];
  if (tile == 0) return wg::run<fg::Nvfp4, 64, 64>(p, done[0], kGroupOp);
  if (tile == 1) return wg::run<fg::Nvfp4, 128, 64>(p, done[1], kGroupOp);
  wg::run<fg::Nvfp4, 128, 128>(p, done[2], kGroupOp);
}

void run_wgmma(const Problem& p, int tile) {
  if (tile < 0) tile = pick_dense_tile(p.M, p.N, lowbit::device_sm_count(p.a.get_device_index()));
  const wg::Operands o{&p.a, p.sa.data_ptr(), p.b.data_ptr(), p.sb.data_ptr(), p.alpha.const_data_ptr<float>(),
                       p.bias ? p.bias->data_ptr() : nullptr, p.out.data_ptr(),
                       p.out.scalar_type() == lowbit::ScalarType::BFloat16, 1, p.M, p.N, p.K};
  std::atomic<uint64_t>* done = smem_done[1];
  if (tile == 0) return wg::run_dense<fg::Nvfp4, 64, 64>(o, done[0], kOp);
  if (tile == 1) return wg::run_dense<fg::Nvfp4, 128, 64>(o, done[1], kOp);
  wg::run_dense<fg::Nvfp4, 128, 128>(o, done[2], kOp);
}

}  // namespace nvfp4_mm::sm90
