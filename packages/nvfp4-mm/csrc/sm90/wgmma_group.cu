// SM90 wgmma FP4 GEMM (lowbit/fp4_gemm/sm90_wgmma_group.cuh: weights
// dequantized in registers, fp16 wgmma, fp32 accumulation, persistent CTAs),
// the NVFP4 instantiation: cutlass_fp4_group_mm above 16 rows per expert and
// the dense cutlass_scaled_fp4_mm for 16 < M <= 512. Tiles: activation rows x
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

// Dense: the (tile, K splits) with the fewest estimated microseconds. A
// CTA's works run back to back, so the main kernel takes (waves of works over
// the SMs) x (one work's FLOPs at the tile's per-SM rate); S > 1 adds the
// partials (written by the kernel, read by the reduce: 8 S M N bytes, at
// 3.5 TB/s) and the reduce's launch (~2 us). Rates, H200 (perf/nvfp4-mm/NOTES.md
// v14): 128x128 5.67 TFLOP/s per SM with ~12.7 us per call besides (from 60.0
// and 178.3 us at M = 128 on 8192x8192 and 8192x28672, 64 CTAs), 64x128 and
// 128x256 at 0.64 / 0.95 and 1 / 0.95 of it (their throughputs at M = 2048 on
// Llama-3-70B), so without splits the choice is the previous wave rule's. A
// split keeps >= 8 K tiles (1024 of K).
struct DenseChoice {
  int tile, splits;
};
DenseChoice pick_dense(int64_t M, int64_t N, int64_t K, int64_t sms) {
  const int64_t bn[kWgmmaTiles] = {64, 128, 128}, bm[kWgmmaTiles] = {128, 128, 256};
  const double flops_per_us[kWgmmaTiles] = {0.64 / 0.95 * 5.67e6, 5.67e6, 1.0 / 0.95 * 5.67e6};
  constexpr double kPartialBytesPerUs = 3.5e6, kReduceLaunchUs = 2.0;
  const int64_t KT = (K + 127) / 128;
  DenseChoice best{2, 1};
  double best_us = 0;
  for (int t = kWgmmaTiles - 1; t >= 0; --t)
    for (int S = 1; S <= 4; S *= 2) {
      if (S > 1 && KT < 8 * S) break;
      const fg::KSplits ks = fg::k_splits(static_cast<int>(KT), S);  // as the launch trims them
      const int64_t works = (M + bn[t] - 1) / bn[t] * ((N + bm[t] - 1) / bm[t]) * ks.count;
      double us = double((works + sms - 1) / sms) * double(2 * bn[t] * bm[t] * 128 * ks.per) / flops_per_us[t];
      if (ks.count > 1) us += 8.0 * double(ks.count * M * N) / kPartialBytesPerUs + kReduceLaunchUs;
      if (best_us == 0 || us < best_us) best = {t, ks.count}, best_us = us;
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
  DenseChoice c{tile, p.splits > 0 ? static_cast<int>(p.splits) : 1};
  if (tile < 0) {
    c = pick_dense(p.M, p.N, p.K, lowbit::device_sm_count(p.a.get_device_index()));
    if (p.splits > 0) c.splits = static_cast<int>(p.splits);
  }
  const wg::Operands o{&p.a, p.sa.data_ptr(), p.b.data_ptr(), p.sb.data_ptr(), p.alpha.const_data_ptr<float>(),
                       p.bias ? p.bias->data_ptr() : nullptr, p.out.data_ptr(),
                       p.out.scalar_type() == lowbit::ScalarType::BFloat16, 1, p.M, p.N, p.K};
  std::atomic<uint64_t>* done = smem_done[1];
  if (c.tile == 0) return wg::run_dense<fg::Nvfp4, 64, 64>(o, c.splits, done[0], kOp);
  if (c.tile == 1) return wg::run_dense<fg::Nvfp4, 128, 64>(o, c.splits, done[1], kOp);
  wg::run_dense<fg::Nvfp4, 128, 128>(o, c.splits, done[2], kOp);
}

}  // namespace nvfp4_mm::sm90
