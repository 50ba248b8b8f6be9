// SM90 grouped FP4 GEMM (cutlass_fp4_group_mm docs/SPEC-MOE.md §5.2,
// cutlass_mxfp4_group_mm §5.3): the mma.sync kernels (sm90_small_m.cuh,
// sm90_multistage.cuh) run over the experts' row tiles (sm90_params.h). Per
// call, three launches whatever E is:
//  1. the tile table: one CTA reads problem_sizes / expert_offsets /
//     sf_offsets, drops experts whose metadata breaks the contract
//     (docs/SPEC-MOE.md §5.0.3: rows outside a, scale region outside
//     a_blockscale or not at a multiple of 128, problem size not (m_e, N, K)),
//     writes NaN into such an expert's output rows inside [0, M) (a loud
//     result instead of whatever the buffer held; the common case, no broken
//     expert, costs one barrier) and writes the exclusive prefix sum of
//     ceil(m_e / BM);
//  2. the A pre-pass over the experts' tiles (sm90_prepass_a.cuh);
//  3. the main kernel on ceil(M/BM) + min(E, M) row tiles, a bound of the
//     experts' tiles that needs no host copy; CTAs past the table's end and
//     empty experts cost one early exit.
// The sizes never come to the host, so the call is CUDA-graph capturable
// with routing rewritten between replays. No split-K: an expert's reduction
// order must not depend on the other experts (batch invariance).
#pragma once

#include <lowbit/cuda_utils.h>
#include <lowbit/fp4_group_contract.h>
#include <lowbit/fp4_gemm/sm90_params.h>
#include <lowbit/fp4_gemm/sm90_prepass_a.cuh>

#include <algorithm>
#include <atomic>

namespace lowbit::fp4_gemm::sm90 {

constexpr int kTableThreads = 1024;

// One expert's CTA row tiles, 0 where its metadata breaks the contract
// (lowbit/fp4_group_contract.h).
__device__ __forceinline__ int expert_tiles(bool ok, const int* sizes, int e, int bm) {
  return ok ? (sizes[3 * e] + bm - 1) / bm : 0;
}

// tile_start[e] = Σ_{e' < e} tiles(e'), clamped to max_tiles (the grid's
// bound; only broken metadata, overlapping experts, can exceed it).
template <int THREADS>
__global__ void __launch_bounds__(THREADS) tile_table_kernel(const int* __restrict__ sizes,
                                                             const int* __restrict__ offsets,
                                                             const int* __restrict__ sf_offsets, int E, int M, int N,
                                                             int K, int64_t R, int bm, int max_tiles,
                                                             int* __restrict__ tile_start, uint16_t* out,
                                                             uint16_t nan) {
  __shared__ int part[THREADS];
  lowbit::pdl_wait();  // the routing may come from the previous kernel
  const int per = (E + THREADS - 1) / THREADS;
  const int e0 = threadIdx.x * per, e1 = min(E, e0 + per);
  int sum = 0;
  bool broken = false;
  for (int e = e0; e < e1; ++e) {
    const bool ok = lowbit::fp4_group_expert_ok(sizes, offsets, sf_offsets, e, M, N, K, R);
    sum += expert_tiles(ok, sizes, e, bm);
    broken |= !ok;
  }
  part[threadIdx.x] = sum;
  // The main kernel, launched after this grid completes, computes no tile of
  // a broken expert; its rows inside out become NaN here.
  if (__syncthreads_or(broken)) lowbit::fp4_group_nan_broken(sizes, offsets, sf_offsets, 0, E, M, N, K, R, out, nan,
                                                             threadIdx.x, THREADS);
  for (int d = 1; d < THREADS; d *= 2) {  // inclusive scan of the per-thread sums
    const int v = threadIdx.x >= d ? part[threadIdx.x - d] : 0;
    __syncthreads();
    part[threadIdx.x] += v;
    __syncthreads();
  }
  int run = part[threadIdx.x] - sum;
  for (int e = e0; e < e1; ++e) {
    tile_start[e] = min(run, max_tiles);
    run += expert_tiles(lowbit::fp4_group_expert_ok(sizes, offsets, sf_offsets, e, M, N, K, R), sizes, e, bm);
  }
  if (threadIdx.x == THREADS - 1) tile_start[E] = min(part[threadIdx.x], max_tiles);
  lowbit::pdl_launch_dependents();
}

// Dynamic shared memory above 48 KB must be opted into, per device.
// `smem_done`: the caller's per-kernel record of the devices (bit = index %
// 64) where that is done.
inline void opt_into_smem(const void* kernel, int smem, int device, std::atomic<uint64_t>& smem_done) {
  const uint64_t dev_bit = 1ull << (device & 63);
  if (smem_done.load(std::memory_order_relaxed) & dev_bit) return;
  LOWBIT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  smem_done.fetch_or(dev_bit, std::memory_order_relaxed);
}

// The grouped heuristics' input: the mean rows of the experts that can have
// rows, M / min(E, M) (the sizes themselves stay on the device).
inline int64_t mean_expert_rows(int64_t E, int64_t M) { return M / std::max<int64_t>(1, std::min(E, M)); }

// The experts' layout (docs/SPEC-MOE.md §5.1.3-5.1.4): expert e's weights at
// byte e·N·K/2 of b, its weight scales at byte e·Np·Kp of b_blockscales, its
// activation scales at byte sf_offsets[e]·Kp of a_blockscale.
template <class Fmt, class GP>
Groups make_groups(const GP& p, int bm, const Tensor& tile_start) {
  Groups g;
  g.tile_start = tile_start.const_data_ptr<int>();
  g.offsets = p.expert_offsets.template const_data_ptr<int>();
  g.sizes = p.problem_sizes.template const_data_ptr<int>();
  g.sf_offsets = p.sf_offsets.template const_data_ptr<int>();
  g.bm = bm;
  g.E = static_cast<int>(p.E);
  const int64_t Kp = lowbit::nvfp4::swizzled_cols(p.K / Fmt::kBlock), Np = lowbit::nvfp4::swizzled_rows(p.N);
  g.b_bytes = p.N * p.K / 2;
  g.sb_bytes = Np * Kp;
  g.sa_row = Kp;
  return g;
}

// Launches the tile table kernel of problem `p` for row tiles of `bm` rows
// (at most `tiles`, the main grid's bound); returns tile_start [E + 1].
template <class GP>
Tensor launch_tile_table(const GP& p, int bm, int64_t tiles, cudaStream_t stream) {
  Tensor tile_start = lowbit::empty_on(p.a, {p.E + 1}, lowbit::ScalarType::Int);
  lowbit::launch_kernel(tile_table_kernel<kTableThreads>, dim3(1), dim3(kTableThreads), 0, stream, /*pdl=*/true,
                        p.problem_sizes.template const_data_ptr<int>(),
                        p.expert_offsets.template const_data_ptr<int>(), p.sf_offsets.template const_data_ptr<int>(),
                        static_cast<int>(p.E), static_cast<int>(p.M), static_cast<int>(p.N), static_cast<int>(p.K),
                        p.R, bm, static_cast<int>(tiles), static_cast<int*>(tile_start.data_ptr()),
                        static_cast<uint16_t*>(p.out.data_ptr()),
                        p.out.scalar_type() == lowbit::ScalarType::BFloat16 ? lowbit::kNanBf16 : lowbit::kNanHalf);
  return tile_start;
}

// The whole grouped GEMM of problem `p` (a validated group problem of the
// format: out, a, b, sa, sb, problem_sizes, expert_offsets, sf_offsets, E,
// M, N, K, R and, with an alpha, alphas) with kernel `k`. `op` names the op
// in errors.
template <class Fmt, class GP>
void run_mma_group(const GP& p, const MmaKernel& k, std::atomic<uint64_t>& smem_done, const char* op) {
  cudaStream_t stream = lowbit::current_stream(p.a);
  const int64_t tiles = (p.M + k.bm - 1) / k.bm + std::min(p.E, p.M);
  LOWBIT_CHECK(tiles <= 65535, op, ": M=", p.M, " with E=", p.E, " too large for the SM90 grid");
  const Tensor tile_start = launch_tile_table(p, k.bm, tiles, stream);
  const Groups groups = make_groups<Fmt>(p, k.bm, tile_start);
  const int64_t Mt = tiles * (k.bm / 16);
  Tensor afrag = prepass_a<Fmt>(p.a, p.sa, p.M, p.K, Mt, groups, k.chunk_k / 16, stream);

  MmaParams mp{};
  mp.afrag = static_cast<const uint4*>(afrag.data_ptr());
  mp.b = p.b.template const_data_ptr<uint8_t>();
  mp.sb = static_cast<const uint8_t*>(p.sb.data_ptr());
  if constexpr (Fmt::kAlpha) mp.alpha = p.alphas.template const_data_ptr<float>();
  mp.out = p.out.data_ptr();
  mp.M = static_cast<int>(p.M);
  mp.N = static_cast<int>(p.N);
  mp.K = static_cast<int>(p.K);
  mp.C = static_cast<int>((p.K + k.chunk_k - 1) / k.chunk_k);
  mp.C4 = static_cast<int>((p.K + 4 * Fmt::kBlock - 1) / (4 * Fmt::kBlock));
  mp.Mt = static_cast<int>(Mt);
  mp.chunks_per_split = mp.C;
  mp.splits = 1;
  mp.out_bf16 = p.out.scalar_type() == lowbit::ScalarType::BFloat16;
  mp.groups = groups;
  opt_into_smem(reinterpret_cast<const void*>(k.kernel), k.smem, p.a.get_device_index(), smem_done);
  const dim3 grid(static_cast<unsigned>((p.N + k.bn - 1) / k.bn), static_cast<unsigned>(tiles), 1);
  // No PDL: the kernel reads the tile table before anything else.
  lowbit::launch_kernel(k.kernel, grid, dim3(k.threads), k.smem, stream, /*pdl=*/false, mp);
}

}  // namespace lowbit::fp4_gemm::sm90
