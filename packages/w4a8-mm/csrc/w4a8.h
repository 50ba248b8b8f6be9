// Internal declarations shared by the registration file, the CPU kernels, the
// device prepack kernels and the SM90 GEMM translation units.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lowbit::w4a8 {

// ---------------------------------------------------------------- schedules
// A schedule names one CUTLASS instantiation of the swapped problem
// D^T[N, M] = W[N, K] * A[M, K]^T: the int4 weight is CUTLASS's "A" operand
// (it must go through registers), so "TMxTN" is (weight rows N) x (tokens M)
// per CTA tile and "CMxCNxCK" the cluster over (N, M, K). All schedules are
// TMA warp-specialized cooperative kernels; see schedules.def for which use
// the stream-K tile scheduler.
struct Schedule {
  const char* name;
  int tile_n;     // weight rows per tile (TM in the name)
  int tile_m;     // tokens per tile (TN in the name)
  int cluster_n;  // CTAs per cluster along weight rows
  int cluster_m;  // CTAs per cluster along tokens
  int kind;  // 0 cooperative, 1 cooperative + stream-K, 2 ping-pong (schedules.def)
};

// Every schedule this package knows (compiled into SM90 builds).
const std::vector<Schedule>& schedules();
// Index into schedules() of `name`; raises listing the valid names if unknown.
int schedule_index(const char* op, const std::string& name);
// The built-in choice for a problem (tuned on an H100 SXM, see
// docs/perf-w4a8-mm.md); sm_count lets it reason about waves.
int heuristic_schedule(int64_t M, int64_t N, int64_t K, int sm_count);
// Split-K factor for a stream-K schedule (1 = let CUTLASS's stream-K
// heuristic decide): fixed splits when the output tiles fill too few SMs.
int heuristic_splits(int schedule, int64_t M, int64_t N, int64_t K, int sm_count);

// ---------------------------------------------------------------- problems
struct MmProblem {
  const void* a = nullptr;             // fp8 e4m3 [M, K] row-major
  const void* b = nullptr;             // encoded + reordered int4 (N x K)
  const void* group_scales = nullptr;  // 8 x e4m3 per scale, [K/g, N]
  const float* channel_scales = nullptr;
  bool channel_vector = false;  // [N] (true) or one element (false)
  const float* token_scales = nullptr;
  bool token_vector = false;  // [M] (true) or one element (false)
  void* out = nullptr;        // [M, N] row-major
  bool out_bf16 = true;       // bfloat16 (true) or float16 (false)
  int64_t M = 0, N = 0, K = 0, group_size = 0;
  int splits = 1;  // > 1: split-K decomposition (stream-K schedules only)
  bool pdl = false;  // PDL launch allowed (ops.cpp); used by the non-stream-K kernels
  int device = 0;
  int sm_count = 0;
  void* stream = nullptr;  // cudaStream_t
};

// ---------------------------------------------------------------- CPU kernels
void encode_reorder_cpu(const int32_t* in, int32_t* out, int64_t N, int64_t K);
void pack_scale_cpu(const uint8_t* in, uint8_t* out, int64_t numel);
void mm_cpu(const MmProblem& p);

// Inside-atom position of logical int4 element (n, k) of an N x K weight
// (SPEC §1.5): returns the element offset in the reordered buffer.
inline int64_t reorder_offset(int64_t n, int64_t k, int64_t N) {
  const int64_t atom = (n / 16) + (N / 16) * (k / 32);
  const int64_t nn = n % 16, kk = k % 32;
  return atom * 512 + 64 * (nn % 8) + 16 * ((kk % 16) / 4) + 8 * (kk / 16) +
         4 * (nn / 8) + (kk % 4);
}

// ---------------------------------------------------------------- CUDA
// Device prepack kernels (csrc/cuda/prepack.cu), any built architecture.
void encode_reorder_cuda(const int32_t* in, int32_t* out, int64_t N, int64_t K,
                         int device, void* stream);
void pack_scale_cuda(const uint8_t* in, uint8_t* out, int64_t numel,
                     int device, void* stream);

// SM90 GEMM (csrc/sm90/): workspace bytes needed, and the launch.
size_t mm_sm90_workspace(int schedule, const MmProblem& p);
void mm_sm90_run(int schedule, const MmProblem& p, void* workspace);

}  // namespace lowbit::w4a8
