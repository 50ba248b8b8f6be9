// Internal declarations of lowbit_w4a8_mm: one validated problem per op
// (validation.cpp builds them), the schedule tables and heuristics
// (schedules.cpp), and the kernels by target: cpu/ (always), cuda/ (prepack,
// every built architecture), sm90/ (the dense and grouped GEMMs, sm_90a only).
#pragma once

#include <lowbit/torch_utils.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lowbit::w4a8 {

// ---------------------------------------------------------------- schedules
// A kernel schedule is one CUTLASS instantiation of the swapped problem
// D^T[N, M] = W[N, K] * A[M, K]^T: the int4 weight is CUTLASS's "A" operand
// (it must go through registers), so "TMxTN" is (weight rows N) x (tokens M)
// per CTA tile and "CMxCNxCK" the cluster over (N, M, K). All are TMA
// warp-specialized kernels; schedules.def says which scheduler each uses.
struct Schedule {
  const char* name;
  int tile_n;     // weight rows per tile (TM in the name)
  int tile_m;     // tokens per tile (TN in the name)
  int cluster_n;  // CTAs per cluster along weight rows
  int cluster_m;  // CTAs per cluster along tokens
  int kind;  // 0 cooperative, 1 cooperative + stream-K, 2 ping-pong (schedules.def)
};

// The compiled kernels (schedules.def order); indices below index this list.
const std::vector<Schedule>& schedules();
// Every name maybe_schedule accepts: the kernels' names, then the aliases
// (names that select a kernel with the same tile; schedules.cpp).
std::vector<std::string> schedule_names();
// Kernel index for an accepted name; raises listing schedule_names() if unknown.
int schedule_index(const char* op, const std::string& name);
// The built-in choice for a problem (tuned on an H100 SXM, see
// perf/w4a8-mm/NOTES.md); sm_count lets it reason about waves.
int heuristic_schedule(int64_t M, int64_t N, int64_t K, int sm_count);
// Split-K factor for a stream-K schedule (1 = let CUTLASS's stream-K
// heuristic decide): fixed splits when the output tiles fill too few SMs.
int heuristic_splits(int schedule, int64_t M, int64_t N, int64_t K, int sm_count);

// Grouped (MoE) GEMM schedules (docs/SPEC-MOE.md §5.6): three compiled
// kernels (moe_schedules.def); every vLLM v0.34.0 name is accepted and
// selects the compiled kernel nearest to its tile (schedules.cpp says which).
struct MoeSchedule {
  const char* name;
  int tile_n;     // weight rows per tile
  int tile_m;     // tokens per tile
  int cluster_n;  // CTAs per cluster along weight rows
};
const std::vector<MoeSchedule>& moe_schedules();
// Every name the grouped op's maybe_schedule accepts (vLLM's names, then the
// kernels' own); index of the kernel a name selects (raises if unknown).
std::vector<std::string> moe_schedule_names();
int moe_schedule_index(const char* op, const std::string& name);
// The built-in choice from the mean rows per expert (M / E).
int moe_heuristic_schedule(int64_t M, int64_t E);

// ---------------------------------------------------------------- problems
// cutlass_encode_and_reorder_int4b: B's dense memory read as N rows of K nibbles.
struct ReorderProblem {
  int64_t N = 0, K = 0;
};

// cutlass_pack_scale_fp8: numel scales -> numel 8-byte tables.
struct PackScaleProblem {
  int64_t numel = 0;
};

// cutlass_w4a8_mm. validate_w4a8_mm fills the inputs; the op sets `out`, the
// SM90 path the launch fields.
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
  int schedule = -1;  // kernel index from maybe_schedule; -1 = heuristic
  // Launch fields (SM90 only).
  int splits = 1;    // > 1: split-K decomposition (stream-K schedules only)
  bool pdl = false;  // programmatic dependent launch (kernels built with it)
  int device = 0;
  int sm_count = 0;
  void* stream = nullptr;  // cudaStream_t
};

// cutlass_encode_and_reorder_int4b_grouped: E experts of [N, K/8] words each
// (docs/SPEC-MOE.md §5.7).
struct GroupedReorderProblem {
  int64_t E = 0, N = 0, K = 0;
};

// cutlass_w4a8_moe_mm (docs/SPEC-MOE.md §5.6). Sizes come from the tensor
// shapes; expert_offsets / problem_sizes stay where they are (device memory
// on a GPU: never read on the host). The stride tensors are validated but
// not read: every layout follows from (E, N, K).
struct MoeMmProblem {
  const void* a = nullptr;                // fp8 e4m3 [M, K], rows grouped by expert
  const void* b = nullptr;                // [E] x encoded + reordered int4 (N x K)
  const void* group_scales = nullptr;     // [E, K/g, N] x 8 e4m3 tables
  const float* a_scales = nullptr;        // [M] per token
  const float* b_scales = nullptr;        // [E, N] per channel
  void* out = nullptr;                    // bf16 [M, N]
  const int64_t* expert_offsets = nullptr;  // [E]
  const int32_t* problem_sizes = nullptr;   // [E, 3] rows (N, m_e, K)
  int64_t E = 0, M = 0, N = 0, K = 0, group_size = 0;
  int schedule = -1;  // moe_schedules() index from maybe_schedule; -1 = heuristic
  // Launch fields (SM90 only).
  int device = 0;
  int sm_count = 0;
  void* stream = nullptr;  // cudaStream_t
};

// ---------------------------------------------------------------- validation
ReorderProblem validate_encode_and_reorder_int4b(const Tensor& B);
PackScaleProblem validate_pack_scale_fp8(const Tensor& scales);
MmProblem validate_w4a8_mm(const Tensor& A, const Tensor& B, const Tensor& group_scales,
                           int64_t group_size, const Tensor& channel_scales,
                           const Tensor& token_scales, std::optional<ScalarType> out_type,
                           const std::optional<std::string>& maybe_schedule);
GroupedReorderProblem validate_encode_and_reorder_int4b_grouped(const Tensor& b_tensors);
// Schema order: output and operands; scales per token, per channel and per
// group of b_group_size; expert metadata (device memory on a GPU: checked for
// dtype and shape only); strides (checked, never read: the layouts follow
// from E, N, K); the optional schedule name.
MoeMmProblem validate_w4a8_moe_mm(const Tensor& out, const Tensor& a, const Tensor& b,
                                  const Tensor& a_scales, const Tensor& b_scales, const Tensor& b_group_scales,
                                  int64_t b_group_size,
                                  const Tensor& expert_offsets, const Tensor& problem_sizes,
                                  const Tensor& a_strides, const Tensor& b_strides, const Tensor& c_strides,
                                  const Tensor& group_scale_strides,
                                  const std::optional<std::string>& maybe_schedule);

// The three numbers vLLM stores per expert as the reordered weight's layout
// (docs/SPEC-MOE.md §5.1.5): (N/16, K/32, 32*N).
inline void reorder_descriptor(int64_t N, int64_t K, int32_t row[3]) {
  row[0] = static_cast<int32_t>(N / 16);
  row[1] = static_cast<int32_t>(K / 32);
  row[2] = static_cast<int32_t>(32 * N);
}

// ---------------------------------------------------------------- CPU kernels
void encode_and_reorder_int4b_cpu(const int32_t* in, int32_t* out, const ReorderProblem& p);
void pack_scale_fp8_cpu(const uint8_t* in, uint8_t* out, const PackScaleProblem& p);
void w4a8_mm_cpu(const MmProblem& p);
void encode_and_reorder_int4b_grouped_cpu(const int32_t* in, int32_t* out, int32_t* descriptor,
                                          const GroupedReorderProblem& p);
void w4a8_moe_mm_cpu(const MoeMmProblem& p);

// Position of logical int4 element (n, k) of an N x K weight in the
// reordered buffer (SPEC §1.5), in int4 elements.
inline int64_t reorder_offset(int64_t n, int64_t k, int64_t N) {
  const int64_t atom = (n / 16) + (N / 16) * (k / 32);
  const int64_t nn = n % 16, kk = k % 32;
  return atom * 512 + 64 * (nn % 8) + 16 * ((kk % 16) / 4) + 8 * (kk / 16) +
         4 * (nn / 8) + (kk % 4);
}

// ---------------------------------------------------------------- CUDA
#if LOWBIT_WITH_CUDA
// Device prepack kernels (csrc/cuda/prepack.cu), any built architecture; the
// caller holds the device guard.
void encode_and_reorder_int4b_cuda(const int32_t* in, int32_t* out, const ReorderProblem& p,
                                   int device, void* stream);
void pack_scale_fp8_cuda(const uint8_t* in, uint8_t* out, const PackScaleProblem& p,
                         int device, void* stream);
// All experts in one launch, with the descriptor rows written by the same kernel.
void encode_and_reorder_int4b_grouped_cuda(const int32_t* in, int32_t* out, int32_t* descriptor,
                                           const GroupedReorderProblem& p, int device, void* stream);
#endif

#if LOWBIT_BUILT_SM90
// SM90 GEMMs (csrc/sm90/dispatch.cu): fill p's launch fields for A's device
// and current stream (the heuristic's schedule when none was named), allocate
// the workspace through torch, launch. The caller holds the device guard.
void w4a8_mm_sm90(MmProblem& p, const Tensor& A);
void w4a8_moe_mm_sm90(MoeMmProblem& p, const Tensor& a);
#endif

}  // namespace lowbit::w4a8
