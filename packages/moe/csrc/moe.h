// Internal declarations of lowbit-moe: the MoE routing helpers of
// docs/SPEC-MOE.md §5.9.4 (vLLM-compatible schemas, lowbit semantics). One
// validated problem struct per op, its validation (validation.cpp) and the
// per-target kernels: cpu/ (host C++) and cuda/ (plain CUDA, every built arch;
// these ops are pure integer/data movement, so one kernel serves SM90, SM100
// and SM120).
#pragma once

#include <lowbit/arch.h>
#include <lowbit/torch_utils.h>

#include <cstdint>

namespace lowbit::moe {

// get_cutlass_moe_mm_data: routes = m * topk flat ids; bin E collects the
// invalid routes (id < 0 or id >= E), which sort after the last expert.
struct MoeDataProblem {
  const void* ids = nullptr;  // [m, topk], int32 or int64
  bool ids64 = false;
  int64_t routes = 0;         // m * topk (< 2^31)
  int64_t topk = 1;
  int64_t num_experts = 0;    // E
  int64_t n = 0, k = 0;       // GEMM2 N (= I), GEMM1 K (= H)
  int64_t n1 = 0;             // GEMM1 N: 2n when gated, else n
  bool swap = false;          // problem sizes written (N, m_e, K): no blockscale_offsets, routes <= 64
  int32_t* expert_offsets = nullptr;      // [E+1]
  int32_t* problem_sizes1 = nullptr;      // [E, 3]
  int32_t* problem_sizes2 = nullptr;      // [E, 3]
  int32_t* input_permutation = nullptr;   // [routes]
  int32_t* output_permutation = nullptr;  // [routes]
  int32_t* blockscale_offsets = nullptr;  // [E+1] or null
  int32_t* sorted_expert_ids = nullptr;   // [routes] or null
};

// get_cutlass_moe_mm_problem_sizes_from_expert_offsets.
struct ProblemSizesProblem {
  const void* offsets = nullptr;  // [E+1], int64 (vLLM) or int32
  bool offsets64 = true;
  int64_t num_experts = 0;
  int64_t n = 0, k = 0;
  bool swap_ab = false;
  int32_t* problem_sizes1 = nullptr;  // [E, 3]: (m_e, 2n, k) or (2n, m_e, k)
  int32_t* problem_sizes2 = nullptr;  // [E, 3]: (m_e, k, n) or (k, m_e, n)
};

// shuffle_rows: out[d] = in[map[d]], a zero row where map[d] is not a row of in.
struct ShuffleProblem {
  const uint8_t* in = nullptr;
  uint8_t* out = nullptr;
  const void* map = nullptr;  // [dst_rows], int32 or int64
  bool map64 = false;
  int64_t src_rows = 0, dst_rows = 0;
  int64_t row_bytes = 0;
};

// dynamic_per_token_scaled_fp8_quant (vLLM's schema) and lowbit's fused
// silu_and_mul_per_token_fp8_quant: per row of `cols` values (gated: of the
// silu(gate) * up of a [rows, 2*cols] input), scale = max(amax / 448,
// 1 / (448 * 512)) and codes e4m3(x / scale) (fp8_quant_math.h).
struct Fp8QuantProblem {
  const void* in = nullptr;         // [rows, cols] or, gated, [rows, 2 * cols]; contiguous
  int in_type = 0;                  // fp8q::In: 0 fp32, 1 fp16, 2 bf16
  uint8_t* out = nullptr;           // float8_e4m3fn [rows, cols]
  float* scale = nullptr;           // [rows]
  const float* scale_ub = nullptr;  // one value (upper bound of amax) or null
  int64_t rows = 0, cols = 0;
  bool gated = false;
};

// moe_combine (docs/SPEC-MOE.md §5.9.1 steps 7-8 in one pass): for token t
// and column c, out[t, c] = T(sum_j T(in[perm[t*topk + j], c] * T(w[t, j])))
// with T the rounding to in's dtype and an fp32 sum in j order (a plain sum
// without weights); a perm entry outside [0, rows) contributes zero. The same
// bits as shuffle_rows followed by torch's multiply and sum.
struct CombineProblem {
  const void* in = nullptr;       // [rows, cols], contiguous
  int in_type = 0;                // elem::In
  const void* perm = nullptr;     // [m * topk], int32 or int64
  bool perm64 = false;
  const void* weights = nullptr;  // [m, topk] or null
  int w_type = 0;                 // elem::In
  void* out = nullptr;            // [m, cols], in's dtype
  int64_t rows = 0, cols = 0, m = 0, topk = 0;
};

// Largest number of experts get_cutlass_moe_mm_data accepts: its CUDA
// kernels keep one counter per expert (+1 for invalid routes) in shared memory.
constexpr int64_t kMaxExperts = 8192;

MoeDataProblem validate_moe_data(const Tensor& topk_ids, const Tensor& expert_offsets,
                                 const Tensor& problem_sizes1, const Tensor& problem_sizes2,
                                 const Tensor& input_permutation,
                                 const Tensor& output_permutation, int64_t num_experts, int64_t n,
                                 int64_t k, const Tensor* blockscale_offsets, bool is_gated,
                                 const Tensor* sorted_expert_ids);
ProblemSizesProblem validate_problem_sizes(const Tensor& expert_first_token_offset,
                                           const Tensor& problem_sizes1,
                                           const Tensor& problem_sizes2, int64_t n, int64_t k,
                                           bool swap_ab);
ShuffleProblem validate_shuffle_rows(const Tensor& input_tensor, const Tensor& dst2src_map,
                                     const Tensor& output_tensor);
CombineProblem validate_combine(const Tensor& input, const Tensor& output_permutation,
                                const Tensor* topk_weights, const Tensor& output);
Fp8QuantProblem validate_fp8_quant(const char* op, bool gated, const Tensor& result,
                                   const Tensor& input, const Tensor& scale,
                                   const Tensor* scale_ub);

// CPU kernels (host memory).
void moe_data_cpu(const MoeDataProblem& p);
void problem_sizes_cpu(const ProblemSizesProblem& p);
void shuffle_rows_cpu(const ShuffleProblem& p);
void fp8_quant_cpu(const Fp8QuantProblem& p);
void combine_cpu(const CombineProblem& p);

#if LOWBIT_WITH_CUDA
// CUDA kernels (cuda/, every built architecture); `stream` is a cudaStream_t
// of the tensors' device, whose guard the caller has set. moe_data needs an
// int32 workspace of moe_data_workspace_elems(p) elements.
int64_t moe_data_workspace_elems(const MoeDataProblem& p);
void moe_data_cuda(const MoeDataProblem& p, int32_t* workspace, void* stream);
void problem_sizes_cuda(const ProblemSizesProblem& p, void* stream);
void shuffle_rows_cuda(const ShuffleProblem& p, void* stream);
void fp8_quant_cuda(const Fp8QuantProblem& p, void* stream);
void combine_cuda(const CombineProblem& p, void* stream);
#endif

}  // namespace lowbit::moe
