// SM90 cutlass_fp4_group_mm (docs/SPEC-MOE.md §5.2): the dense mma.sync
// kernels (small_m_gemm.cu, multistage_gemm.cu) run over the experts' row
// tiles (groups.h). Per call, three launches whatever E is:
//  1. the tile table: one CTA reads problem_sizes / expert_offsets /
//     sf_offsets, drops experts whose metadata breaks the contract
//     (docs/SPEC-MOE.md §5.0.3: rows outside a, scale region outside
//     a_blockscale or not at a multiple of 128, problem size not (m_e, N, K))
//     and writes the exclusive prefix sum of ceil(m_e / BM);
//  2. the A pre-pass over the experts' tiles (prepass_a.h);
//  3. the main kernel on ceil(M/BM) + min(E, M) row tiles, a bound of the
//     experts' tiles that needs no host copy; CTAs past the table's end and
//     empty experts cost one early exit.
// The sizes never come to the host, so the call is CUDA-graph capturable
// with routing rewritten between replays.
#include "nvfp4_mm.h"

#include <lowbit/cuda_utils.h>

#include "families.h"
#include "groups.h"
#include "mma_params.h"
#include "prepass_a.h"

namespace nvfp4_mm {
namespace sm90 {
namespace {

constexpr int kTableThreads = 1024;

// One expert's CTA row tiles, 0 where its metadata breaks the contract.
__device__ int expert_tiles(const int* sizes, const int* offsets, const int* sf_offsets, int e, int M, int N,
                            int K, int64_t R, int bm) {
  const int m = sizes[3 * e], off = offsets[e], sf = sf_offsets[e];
  const bool ok = m >= 0 && off >= 0 && int64_t(off) + m <= M && sizes[3 * e + 1] == N && sizes[3 * e + 2] == K &&
                  sf >= 0 && sf % 128 == 0 && int64_t(sf) + (int64_t(m) + 127) / 128 * 128 <= R;
  return ok ? (m + bm - 1) / bm : 0;
}

// tile_start[e] = Σ_{e' < e} tiles(e'), clamped to max_tiles (the grid's
// bound; only broken metadata, overlapping experts, can exceed it).
__global__ void __launch_bounds__(kTableThreads) tile_table_kernel(const int* __restrict__ sizes,
                                                                   const int* __restrict__ offsets,
                                                                   const int* __restrict__ sf_offsets, int E, int M,
                                                                   int N, int K, int64_t R, int bm, int max_tiles,
                                                                   int* __restrict__ tile_start) {
  __shared__ int part[kTableThreads];
  lowbit::pdl_wait();  // the routing may come from the previous kernel
  const int per = (E + kTableThreads - 1) / kTableThreads;
  const int e0 = threadIdx.x * per, e1 = min(E, e0 + per);
  int sum = 0;
  for (int e = e0; e < e1; ++e) sum += expert_tiles(sizes, offsets, sf_offsets, e, M, N, K, R, bm);
  part[threadIdx.x] = sum;
  __syncthreads();
  for (int d = 1; d < kTableThreads; d *= 2) {  // inclusive scan of the per-thread sums
    const int v = threadIdx.x >= d ? part[threadIdx.x - d] : 0;
    __syncthreads();
    part[threadIdx.x] += v;
    __syncthreads();
  }
  int run = part[threadIdx.x] - sum;
  for (int e = e0; e < e1; ++e) {
    tile_start[e] = min(run, max_tiles);
    run += expert_tiles(sizes, offsets, sf_offsets, e, M, N, K, R, bm);
  }
  if (threadIdx.x == kTableThreads - 1) tile_start[E] = min(part[threadIdx.x], max_tiles);
  lowbit::pdl_launch_dependents();
}

Groups make_groups(const GroupProblem& p, int bm, const Tensor& tile_start) {
  Groups g;
  g.tile_start = tile_start.const_data_ptr<int>();
  g.offsets = p.expert_offsets.const_data_ptr<int>();
  g.sizes = p.problem_sizes.const_data_ptr<int>();
  g.sf_offsets = p.sf_offsets.const_data_ptr<int>();
  g.bm = bm;
  g.E = static_cast<int>(p.E);
  const int64_t Kp = lowbit::round_up<int64_t>(p.K / 16, 4), Np = lowbit::round_up<int64_t>(p.N, 128);
  g.b_bytes = p.N * p.K / 2;
  g.sb_bytes = Np * Kp;
  g.sa_row = Kp;
  return g;
}

}  // namespace

void run_mma_group(const GroupProblem& p, const MmaKernel& k, std::atomic<uint64_t>& smem_done) {
  cudaStream_t stream = lowbit::current_stream(p.a);
  const int64_t tiles = (p.M + k.bm - 1) / k.bm + std::min(p.E, p.M);
  LOWBIT_CHECK(tiles <= 65535, kGroupOp, ": M=", p.M, " with E=", p.E, " too large for the SM90 grid");
  Tensor tile_start = lowbit::empty_on(p.a, {p.E + 1}, lowbit::ScalarType::Int);
  lowbit::launch_kernel(tile_table_kernel, dim3(1), dim3(kTableThreads), 0, stream, /*pdl=*/true,
                        p.problem_sizes.const_data_ptr<int>(), p.expert_offsets.const_data_ptr<int>(),
                        p.sf_offsets.const_data_ptr<int>(), static_cast<int>(p.E), static_cast<int>(p.M),
                        static_cast<int>(p.N), static_cast<int>(p.K), p.R, k.bm, static_cast<int>(tiles),
                        static_cast<int*>(tile_start.data_ptr()));
  const Groups groups = make_groups(p, k.bm, tile_start);
  const int64_t Mt = tiles * (k.bm / 16);
  Tensor afrag = prepass_a(p.a, p.sa, p.M, p.K, Mt, groups, k.chunk_k / 16, stream);

  MmaParams mp{};
  mp.afrag = static_cast<const uint4*>(afrag.data_ptr());
  mp.b = p.b.const_data_ptr<uint8_t>();
  mp.sb = static_cast<const uint8_t*>(p.sb.data_ptr());
  mp.alpha = p.alphas.const_data_ptr<float>();
  mp.out = p.out.data_ptr();
  mp.M = static_cast<int>(p.M);
  mp.N = static_cast<int>(p.N);
  mp.K = static_cast<int>(p.K);
  mp.C = static_cast<int>((p.K + k.chunk_k - 1) / k.chunk_k);
  mp.C4 = static_cast<int>((p.K + 63) / 64);
  mp.Mt = static_cast<int>(Mt);
  mp.chunks_per_split = mp.C;
  mp.splits = 1;
  mp.out_bf16 = p.out.scalar_type() == lowbit::ScalarType::BFloat16;
  mp.groups = groups;
  opt_into_smem(k, p.a.get_device_index(), smem_done);
  const dim3 grid(static_cast<unsigned>((p.N + k.bn - 1) / k.bn), static_cast<unsigned>(tiles), 1);
  // No PDL: the kernel reads the tile table before anything else.
  lowbit::launch_kernel(k.kernel, grid, dim3(k.threads), k.smem, stream, /*pdl=*/false, mp);
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
// multistage: shared-memory pipelined tiles (hundreds of rows per expert).
const GroupKernel kGroupKernels[] = {
    {"small_m_16x128", &run_small_m_group, 0},
    {"small_m_64x128", &run_small_m_group, 1},
    {"multistage_64x128", &run_multistage_group, 1},
    {"multistage_128x128", &run_multistage_group, 2},
};

// By the mean rows of the experts that can have rows (M / min(E, M)), with
// the dense heuristic's boundaries (select_kernel.cu): the sizes themselves
// stay on the device.
const GroupKernel& pick_group_kernel(const GroupProblem& p) {
  const int64_t rows = p.M / std::max<int64_t>(1, std::min(p.E, p.M));
  if (rows <= 16) return kGroupKernels[0];
  if (rows <= 64) return kGroupKernels[1];
  if (rows <= 256) return kGroupKernels[2];
  return kGroupKernels[3];
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
  if (p.kernel.empty()) {
    const GroupKernel& k = pick_group_kernel(p);
    return k.run(p, k.tile);
  }
  for (const GroupKernel& k : kGroupKernels)
    if (p.kernel == k.name) return k.run(p, k.tile);
  check_kernel_name(p.kernel, sm90_group_kernel_names(), "SM90", kGroupOp);
}

}  // namespace nvfp4_mm
