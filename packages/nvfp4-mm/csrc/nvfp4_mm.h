// nvfp4-mm internal declarations: the validated problem, its validation and
// one kernel entry per target.
#pragma once

#include <lowbit/torch_utils.h>

#include <optional>
#include <string>
#include <vector>

namespace nvfp4_mm {

using lowbit::Tensor;

// A validated out = to_out(alpha * A·Bᵀ + bias) problem (docs/SPEC.md §1.4,
// §2.2). M rows of A and out, N rows of B (= columns of out), K logical fp4
// elements per row.
struct Problem {
  Tensor out, a, b, sa, sb, alpha;
  std::optional<Tensor> bias;  // [N] in the output dtype
  int64_t M, N, K;
  bool batch_invariant;  // every row's reduction order independent of M
  std::string kernel;    // empty = the target's heuristic; else a name of kernel_names()
  int64_t splits;        // -1 = heuristic; else the kernel's split count (SM90)
};

constexpr const char* kOp = "cutlass_scaled_fp4_mm";

// cutlass_scaled_fp4_mm's arguments (every check of the op lives here).
Problem validate_scaled_fp4_mm(Tensor out, Tensor a, Tensor b, Tensor sa, Tensor sb, Tensor alpha,
                               std::optional<Tensor> bias);
// The private by-name op's extra arguments on top of the above.
Problem validate_scaled_fp4_mm_with_kernel(Tensor out, Tensor a, Tensor b, Tensor sa, Tensor sb,
                                           Tensor alpha, std::optional<Tensor> bias, bool batch_invariant,
                                           std::optional<std::string> kernel, int64_t splits);

// A validated cutlass_fp4_group_mm problem (docs/SPEC-MOE.md §5.2): E
// experts, expert e's rows [off[e], off[e] + m_e) of a and out, its weight
// b[e] ([N, K]) and scales at byte e·Np·Kp of b_blockscales, its activation
// scales at byte sf_off[e]·Kp of a_blockscale (§5.1.3-5.1.4, §5.13 item 1).
// problem_sizes / expert_offsets / sf_offsets stay where they are (device
// metadata is never read on the host for a CUDA call).
struct GroupProblem {
  Tensor out, a, b, sa, sb, alphas, problem_sizes, expert_offsets, sf_offsets;
  int64_t E, M, N, K;
  int64_t R;         // scale rows of a_blockscale
  std::string kernel;  // empty = the target's heuristic; else a name of group_kernel_names()
};

constexpr const char* kGroupOp = "cutlass_fp4_group_mm";

// cutlass_fp4_group_mm's arguments (every check of the op lives here).
GroupProblem validate_fp4_group_mm(Tensor out, Tensor a, Tensor b, Tensor a_blockscale, Tensor b_blockscales,
                                   Tensor alphas, Tensor problem_sizes, Tensor expert_offsets, Tensor sf_offsets);

// Rejects a kernel name that is not in `names` (names the valid ones).
void check_kernel_name(const std::string& name, const std::vector<std::string>& names, const char* target,
                       const char* op = kOp);

// Per target: the kernel entry and the names of its selectable kernels.
void scaled_fp4_mm_cpu(const Problem& p);
std::vector<std::string> cpu_kernel_names();
void fp4_group_mm_cpu(const GroupProblem& p);
#if LOWBIT_BUILT_SM90
void scaled_fp4_mm_sm90(const Problem& p);
std::vector<std::string> sm90_kernel_names();
void fp4_group_mm_sm90(const GroupProblem& p);
std::vector<std::string> sm90_group_kernel_names();
#endif
#if LOWBIT_BUILT_SM100
void scaled_fp4_mm_sm100(const Problem& p);
std::vector<std::string> sm100_kernel_names();
void fp4_group_mm_sm100(const GroupProblem& p);
std::vector<std::string> sm100_group_kernel_names();
#endif
#if LOWBIT_BUILT_SM120
void scaled_fp4_mm_sm120(const Problem& p);
std::vector<std::string> sm120_kernel_names();
void fp4_group_mm_sm120(const GroupProblem& p);
std::vector<std::string> sm120_group_kernel_names();
#endif

}  // namespace nvfp4_mm
