// Launch of an SM90 mma.sync kernel and its deterministic split-K reduce
// (mma_params.h).
#include "mma_params.h"

#include <lowbit/cuda_utils.h>

#include <lowbit/fp4_gemm/sm90_epilogue.cuh>
#include <lowbit/fp4_gemm/sm90_group.cuh>  // opt_into_smem

#include <optional>

namespace nvfp4_mm::sm90 {
namespace {

using lowbit::fp4_gemm::sm90::opt_into_smem;
using lowbit::fp4_gemm::sm90::store_out_pair;

// Sum the split-K partials in split order (deterministic), scale, add the
// bias, convert. Four consecutive elements per thread: one row (N % 32 == 0).
__global__ void reduce_kernel(const float* __restrict__ part, const float* __restrict__ alpha, float unscale,
                              const void* bias, void* out, int64_t MN, int N, int splits, int out_bf16) {
  lowbit::pdl_wait();
  lowbit::pdl_launch_dependents();
  const int64_t i4 = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) * 4;
  if (i4 >= MN) return;
  float4 s = *reinterpret_cast<const float4*>(part + i4);
  for (int z = 1; z < splits; ++z) {
    const float4 v = *reinterpret_cast<const float4*>(part + z * MN + i4);
    s.x += v.x; s.y += v.y; s.z += v.z; s.w += v.w;
  }
  const float sc = *alpha * unscale;
  const int64_t col = i4 % N;
  store_out_pair(out, bias, out_bf16, i4, col, s.x, s.y, sc);
  store_out_pair(out, bias, out_bf16, i4 + 2, col + 2, s.z, s.w, sc);
}

MmaParams make_params(const Problem& pr, const Tensor& afrag, int chunk_k, int splits) {
  const int C = static_cast<int>((pr.K + chunk_k - 1) / chunk_k);
  const int cps = (C + splits - 1) / splits;
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
  p.chunks_per_split = cps;
  p.splits = (C + cps - 1) / cps;  // no empty split
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
  const int64_t MN = pr.M * pr.N;  // % 4 == 0 (N % 32 == 0)
  const int rthreads = 256;
  const unsigned blocks = static_cast<unsigned>((MN / 4 + rthreads - 1) / rthreads);
  lowbit::launch_kernel(reduce_kernel, dim3(blocks), dim3(rthreads), 0, stream, /*pdl=*/true,
                        static_cast<const float*>(p.partial), p.alpha, k.unscale, p.bias, p.out, MN, p.N, p.splits,
                        p.out_bf16);
}

}  // namespace nvfp4_mm::sm90
