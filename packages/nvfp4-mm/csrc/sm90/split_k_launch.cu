// Launch of an SM90 mma.sync kernel and its deterministic split-K reduce
// (mma_params.h).
#include "mma_params.h"

#include <lowbit/cuda_utils.h>

#include <lowbit/fp4_gemm/sm90_epilogue.cuh>
#include <lowbit/fp4_gemm/sm90_group.cuh>  // opt_into_smem

#include <optional>

namespace nvfp4_mm::sm90 {
namespace {

using lowbit::fp4_gemm::sm90::k_splits;
using lowbit::fp4_gemm::sm90::KSplits;
using lowbit::fp4_gemm::sm90::launch_split_k_reduce;
using lowbit::fp4_gemm::sm90::opt_into_smem;

MmaParams make_params(const Problem& pr, const Tensor& afrag, int chunk_k, int splits) {
  const int C = static_cast<int>((pr.K + chunk_k - 1) / chunk_k);
  const KSplits ks = k_splits(C, splits);  // no empty split
  MmaParams p{};
  p.afrag = static_cast<const uint4*>(afrag.data_ptr());
  p.b = pr.b.const_data_ptr<uint8_t>();
  p.sb = static_cast<const uint8_t*>(pr.sb.data_ptr());
  p.alpha = pr.alpha.const_data_ptr<float>();
  p.bias = pr.bias ? pr.bias->data_ptr() : nullptr;
  p.out = pr.out.data_ptr();
  p.M = static_cast<int>(pr.M);
  p.N = static_cast<int>(pr.N);
  p.K = static_cast<int>(pr.K);
  p.C = C;
  p.C4 = static_cast<int>((pr.K + 63) / 64);
  p.Mt = static_cast<int>((pr.M + 15) / 16);
  p.chunks_per_split = ks.per;
  p.splits = ks.count;
  p.out_bf16 = pr.out.scalar_type() == lowbit::ScalarType::BFloat16;
  return p;
}

}  // namespace

void launch_mma_split_k(const Problem& pr, const MmaKernel& k, const Tensor& afrag, int splits,
                        std::atomic<uint64_t>& smem_done, cudaStream_t stream, int64_t sms) {
  MmaParams p = make_params(pr, afrag, k.chunk_k, splits);
  p.groups.bm = k.bm;
  std::optional<Tensor> part;
  if (p.splits > 1) {
    part = lowbit::empty_on(pr.a, {(int64_t)p.splits * pr.M * pr.N}, lowbit::ScalarType::Float);
    p.partial = static_cast<float*>(part->data_ptr());
  }
  opt_into_smem(reinterpret_cast<const void*>(k.kernel), k.smem, pr.a.get_device_index(), smem_done);

  const dim3 grid(static_cast<unsigned>((pr.N + k.bn - 1) / k.bn), static_cast<unsigned>((pr.M + k.bm - 1) / k.bm),
                  static_cast<unsigned>(p.splits));
  LOWBIT_CHECK(grid.y <= 65535, kOp, ": M=", pr.M, " too large for the SM90 grid");
  // PDL for the main kernel only when it has >= 3 CTAs per SM. Measured on
  // the H100 (perf/nvfp4-mm/results/h100_split_pdl_sweep.md, M = 1 / 16, multistage
  // kernel): with fewer, the early launch cost 12-30% (8192x8192 at 4
  // splits, 256 CTAs: 41.9 vs 32.0 us; 10240x8192 at 4 splits: 42.9 vs
  // 38.1), with more it saved 3-12%.
  const bool pdl_main = int64_t(grid.x) * grid.y * grid.z >= 3 * sms;
  lowbit::launch_kernel(k.kernel, grid, dim3(k.threads), k.smem, stream, pdl_main, p);
  if (p.splits == 1) return;
  launch_split_k_reduce(p.partial, p.alpha, k.unscale, p.bias, p.out, pr.M * pr.N, p.N, p.splits, p.out_bf16,
                        stream);  // M N % 4 == 0 (N % 32 == 0)
}

}  // namespace nvfp4_mm::sm90
