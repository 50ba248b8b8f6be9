// CUDA kernels of the routing helpers (docs/SPEC-MOE.md §5.9.4), plain CUDA
// for every built architecture.
//
// get_cutlass_moe_mm_data is a deterministic, stable counting sort of the flat
// routes by bin (expert, or E for invalid ids) in three launches, O(m*topk + E*B):
//   1. count:   B blocks, each one warp over a contiguous chunk of routes,
//               histogram in shared memory -> workspace[b][bin];
//   2. scan:    one block: per bin, the total over chunks; a block-wide scan
//               over bins gives expert_offsets / blockscale_offsets / problem
//               sizes; each workspace column becomes the first position of
//               that bin's routes in chunk b;
//   3. scatter: the same chunks, one warp each, in route order: a route's
//               position is its chunk's start for the bin plus the number of
//               earlier routes of that bin in the chunk (warp match + popc).
// B = min(ceil(routes / 512), 1024) chunks, so any m*topk < 2^31 works with a
// workspace of at most 1024 * (E + 1) ints. No atomics decide a position.
#include <cub/block/block_scan.cuh>

#include <algorithm>

#include <lowbit/cuda_utils.h>

#include "../moe.h"
#include "../routing_math.h"

namespace lowbit::moe {
namespace {

constexpr int kWarp = 32;
constexpr int kPerLane = 16;                  // routes per lane per step
constexpr int64_t kStep = kWarp * kPerLane;   // routes per warp step
constexpr int64_t kMaxChunks = 1024;
constexpr int kScanThreads = 1024;

struct Chunks {
  int64_t count;  // B
  int64_t size;   // routes per chunk (a multiple of kStep)
};

Chunks chunks_for(int64_t routes) {
  if (routes == 0) return {0, kStep};
  const int64_t b = std::min<int64_t>(ceil_div<int64_t>(routes, kStep), kMaxChunks);
  const int64_t size = round_up<int64_t>(ceil_div<int64_t>(routes, b), kStep);
  return {ceil_div<int64_t>(routes, size), size};
}

template <typename Id>
__device__ __forceinline__ int32_t bin_at(const Id* ids, int64_t i, int64_t routes, int64_t E) {
  return i < routes ? route_bin(ids[i], E) : -1;
}

template <typename Id>
__global__ void count_kernel(const Id* __restrict__ ids, int64_t routes, int64_t E,
                             int64_t chunk, int32_t* __restrict__ ws) {
  extern __shared__ int32_t hist[];
  const int lane = threadIdx.x;
  for (int64_t e = lane; e <= E; e += kWarp) hist[e] = 0;
  __syncwarp();
  const int64_t begin = blockIdx.x * chunk;
  const int64_t end = begin + chunk < routes ? begin + chunk : routes;
  for (int64_t i = begin + lane; i < end; i += kWarp) atomicAdd(&hist[route_bin(ids[i], E)], 1);
  __syncwarp();
  for (int64_t e = lane; e <= E; e += kWarp) ws[blockIdx.x * (E + 1) + e] = hist[e];
}

// Per bin: total over chunks, then (after the scan) chunk starts in place.
__device__ int32_t column_total(const int32_t* ws, int64_t chunks, int64_t E, int64_t e) {
  int32_t total = 0;
#pragma unroll 8
  for (int64_t b = 0; b < chunks; ++b) total += ws[b * (E + 1) + e];
  return total;
}

__device__ void column_starts(int32_t* ws, int64_t chunks, int64_t E, int64_t e, int32_t start) {
  for (int64_t b = 0; b < chunks; ++b) {
    const int32_t c = ws[b * (E + 1) + e];
    ws[b * (E + 1) + e] = start;
    start += c;
  }
}

__global__ void __launch_bounds__(kScanThreads)
    scan_kernel(MoeDataProblem p, int32_t* __restrict__ ws, int64_t chunks) {
  using Scan = cub::BlockScan<int32_t, kScanThreads>;
  __shared__ typename Scan::TempStorage tmp;
  __shared__ int32_t carry[2];
  const int64_t E = p.num_experts;
  if (threadIdx.x == 0) carry[0] = carry[1] = 0;
  __syncthreads();
  for (int64_t t0 = 0; t0 <= E; t0 += kScanThreads) {
    const int64_t e = t0 + threadIdx.x;
    const int32_t c = e <= E ? column_total(ws, chunks, E, e) : 0;
    const int32_t padded = e < E ? lowbit::nvfp4::swizzled_rows(c) : 0;
    int32_t start, sf_start, total, sf_total;
    Scan(tmp).ExclusiveSum(c, start, total);
    __syncthreads();
    Scan(tmp).ExclusiveSum(padded, sf_start, sf_total);
    start += carry[0];
    sf_start += carry[1];
    if (e <= E) {
      p.expert_offsets[e] = start;
      if (p.blockscale_offsets) p.blockscale_offsets[e] = sf_start;
      if (e < E)
        write_problem_sizes(p.problem_sizes1, p.problem_sizes2, e, c, p.n1, p.n, p.k, p.swap);
      column_starts(ws, chunks, E, e, start);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      carry[0] += total;
      carry[1] += sf_total;
    }
    __syncthreads();
  }
}

template <typename Id>
__global__ void scatter_kernel(const Id* __restrict__ ids, MoeDataProblem p, int64_t chunk,
                               const int32_t* __restrict__ ws) {
  extern __shared__ int32_t next[];
  const int lane = threadIdx.x;
  const int64_t E = p.num_experts;
  for (int64_t e = lane; e <= E; e += kWarp) next[e] = ws[blockIdx.x * (E + 1) + e];
  __syncwarp();
  const int64_t begin = blockIdx.x * chunk;
  const int64_t end = begin + chunk < p.routes ? begin + chunk : p.routes;
  const unsigned below = (1u << lane) - 1u;
  for (int64_t base = begin; base < end; base += kStep) {
    int32_t bins[kPerLane];
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) bins[j] = bin_at(ids, base + j * kWarp + lane, end, E);
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) {
      const int64_t i = base + j * kWarp + lane;
      const int32_t b = bins[j];
      // lanes past the end get a key no active lane has (-1 - lane)
      const unsigned peers = __match_any_sync(0xffffffffu, b >= 0 ? b : -1 - lane);
      int32_t pos = 0;
      if (b >= 0) pos = next[b] + __popc(peers & below);
      __syncwarp();
      if (b >= 0 && lane == 31 - __clz(peers)) next[b] += __popc(peers);
      __syncwarp();
      if (b < 0) continue;
      const bool valid = b < E;
      p.input_permutation[pos] = valid ? static_cast<int32_t>(i / p.topk) : -1;
      p.output_permutation[i] = valid ? pos : static_cast<int32_t>(p.routes);
      if (p.sorted_expert_ids) p.sorted_expert_ids[pos] = valid ? b : -1;
    }
  }
}

template <typename Id>
void launch_moe_data(const MoeDataProblem& p, int32_t* ws, cudaStream_t stream) {
  const Chunks c = chunks_for(p.routes);
  const size_t smem = static_cast<size_t>(p.num_experts + 1) * sizeof(int32_t);
  const Id* ids = static_cast<const Id*>(p.ids);
  if (c.count > 0) {
    count_kernel<Id><<<c.count, kWarp, smem, stream>>>(ids, p.routes, p.num_experts, c.size, ws);
    LOWBIT_CHECK_LAUNCH();
  }
  scan_kernel<<<1, kScanThreads, 0, stream>>>(p, ws, c.count);
  LOWBIT_CHECK_LAUNCH();
  if (c.count > 0) {
    scatter_kernel<Id><<<c.count, kWarp, smem, stream>>>(ids, p, c.size, ws);
    LOWBIT_CHECK_LAUNCH();
  }
}

template <typename Off>
__global__ void problem_sizes_kernel(const Off* __restrict__ off, ProblemSizesProblem p) {
  const int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (e >= p.num_experts) return;
  const int32_t m_e = static_cast<int32_t>(off[e + 1] - off[e]);
  write_problem_sizes(p.problem_sizes1, p.problem_sizes2, e, m_e, 2 * p.n, p.n, p.k, p.swap_ab);
}

// One block per destination row (grid-stride), each thread copying units of
// type U (the widest that divides the row bytes and both base addresses).
template <typename U, typename Map>
__global__ void shuffle_kernel(const U* __restrict__ in, U* __restrict__ out,
                               const Map* __restrict__ map, int64_t src_rows, int64_t dst_rows,
                               int64_t units) {
  for (int64_t d = blockIdx.x; d < dst_rows; d += gridDim.x) {
    const int64_t s = map[d];
    U* dst = out + d * units;
    if (s >= 0 && s < src_rows) {
      const U* src = in + s * units;
      for (int64_t u = threadIdx.x; u < units; u += blockDim.x) dst[u] = src[u];
    } else {
      for (int64_t u = threadIdx.x; u < units; u += blockDim.x) dst[u] = U{};
    }
  }
}

template <typename U, typename Map>
void launch_shuffle(const ShuffleProblem& p, cudaStream_t stream) {
  const int64_t units = p.row_bytes / static_cast<int64_t>(sizeof(U));
  const int threads = static_cast<int>(std::clamp<int64_t>(round_up<int64_t>(units, 32), 32, 256));
  const int64_t grid = std::min<int64_t>(p.dst_rows, 65535);
  shuffle_kernel<U, Map><<<grid, threads, 0, stream>>>(
      reinterpret_cast<const U*>(p.in), reinterpret_cast<U*>(p.out),
      static_cast<const Map*>(p.map), p.src_rows, p.dst_rows, units);
  LOWBIT_CHECK_LAUNCH();
}

template <typename Map>
void shuffle_by_alignment(const ShuffleProblem& p, cudaStream_t stream) {
  const uint64_t a = static_cast<uint64_t>(p.row_bytes) | reinterpret_cast<uintptr_t>(p.in) |
                     reinterpret_cast<uintptr_t>(p.out);
  if (a % 16 == 0) return launch_shuffle<uint4, Map>(p, stream);
  if (a % 8 == 0) return launch_shuffle<uint2, Map>(p, stream);
  if (a % 4 == 0) return launch_shuffle<uint32_t, Map>(p, stream);
  if (a % 2 == 0) return launch_shuffle<uint16_t, Map>(p, stream);
  launch_shuffle<uint8_t, Map>(p, stream);
}

}  // namespace

int64_t moe_data_workspace_elems(const MoeDataProblem& p) {
  return chunks_for(p.routes).count * (p.num_experts + 1);
}

void moe_data_cuda(const MoeDataProblem& p, int32_t* workspace, void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  p.ids64 ? launch_moe_data<int64_t>(p, workspace, s) : launch_moe_data<int32_t>(p, workspace, s);
}

void problem_sizes_cuda(const ProblemSizesProblem& p, void* stream) {
  if (p.num_experts == 0) return;
  auto s = static_cast<cudaStream_t>(stream);
  const int64_t grid = ceil_div<int64_t>(p.num_experts, 256);
  if (p.offsets64) {
    problem_sizes_kernel<<<grid, 256, 0, s>>>(static_cast<const int64_t*>(p.offsets), p);
  } else {
    problem_sizes_kernel<<<grid, 256, 0, s>>>(static_cast<const int32_t*>(p.offsets), p);
  }
  LOWBIT_CHECK_LAUNCH();
}

void shuffle_rows_cuda(const ShuffleProblem& p, void* stream) {
  if (p.dst_rows == 0 || p.row_bytes == 0) return;
  auto s = static_cast<cudaStream_t>(stream);
  p.map64 ? shuffle_by_alignment<int64_t>(p, s) : shuffle_by_alignment<int32_t>(p, s);
}

}  // namespace lowbit::moe
