// lowbit-mxfp4 internal declarations (docs/SPEC-MOE.md §5.1.1, §5.3-§5.5):
// the validated problem of every op, its validation (validation.cpp) and one
// kernel entry per target. The group-GEMM part is the fixed interface with
// the SM90/SM100 kernels (csrc/sm90/*group*, csrc/sm100/*group*).
#pragma once

#include <lowbit/arch.h>
#include <lowbit/torch_utils.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mxfp4 {

using lowbit::Tensor;

// A validated cutlass_mxfp4_group_mm problem (docs/SPEC-MOE.md §5.3): E
// experts, expert e's rows [expert_offsets[e], + problem_sizes[e,0]) of a and
// out, its weight b[e] ([N, K/2] bytes) with ue8m0 scales at byte e·Np·Kp of
// b_blockscales (Np = round_up(N, 128), Kp = round_up(K/32, 4)), its activation
// scales at byte sf_offsets[e]·Kp of a_blockscale (128x4 swizzled per expert).
// problem_sizes / expert_offsets / sf_offsets stay where they are (device
// metadata is never read on the host for a CUDA call).
struct GroupProblem {
  Tensor out, a, b, sa, sb, problem_sizes, expert_offsets, sf_offsets;
  int64_t E, M, N, K;  // experts, rows of a/out, N, K (logical e2m1 elements)
  int64_t R;           // rows of a_blockscale
  std::string kernel;  // empty = the target's heuristic; else one of <target>_group_kernel_names()
};

constexpr const char* kGroupOp = "cutlass_mxfp4_group_mm";

// cutlass_mxfp4_group_mm's arguments (every check of the op lives here).
GroupProblem validate_mxfp4_group_mm(Tensor out, Tensor a, Tensor b, Tensor a_blockscale, Tensor b_blockscales,
                                     Tensor problem_sizes, Tensor expert_offsets, Tensor sf_offsets);

// Rejects a kernel name that is not in `names` (names the valid ones).
void check_kernel_name(const std::string& name, const std::vector<std::string>& names, const char* target,
                       const char* op = kGroupOp);

// Group GEMM kernels, one entry per target; the caller has set the device guard.
void mxfp4_group_mm_cpu(const GroupProblem& p);
std::vector<std::string> cpu_group_kernel_names();
#if LOWBIT_BUILT_SM90
void mxfp4_group_mm_sm90(const GroupProblem& p);
std::vector<std::string> sm90_group_kernel_names();
#endif
#if LOWBIT_BUILT_SM100
void mxfp4_group_mm_sm100(const GroupProblem& p);
std::vector<std::string> sm100_group_kernel_names();
#endif

}  // namespace mxfp4
