// lowbit-mxfp4 internal declarations (docs/SPEC-MOE.md §5.1.1, §5.3-§5.5):
// the validated problem of every op, its validation (validation.cpp) and one
// kernel entry per target. The group-GEMM part is the fixed interface with
// the SM90/SM100 kernels (csrc/sm90/*group*, csrc/sm100/*group*).
#pragma once

#include <lowbit/arch.h>
#include <lowbit/torch_utils.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mxfp4 {

using lowbit::Tensor;

// One mxfp4_experts_quant / silu_and_mul_mxfp4_experts_quant launch
// (docs/SPEC-MOE.md §5.4-5.5): rows [off[e], off[e+1]) of the input belong to
// expert e; their k values (gate || up halves of 2k with `silu`) become k/2
// code bytes of the same output row and k/32 E8M0 bytes in expert e's 128x4
// swizzled scale region at scale row sf_off[e] (§5.1.3), whose padding is
// written 0x00. Rows outside [off[0], off[E]) write nothing. The offsets are
// host pointers on the CPU, device pointers (never read on the host) on CUDA.
struct QuantProblem {
  const void* in = nullptr;        // fp16/bf16 [m, k] (or [m, 2k] with silu), contiguous
  uint8_t* out = nullptr;          // packed e2m1 [m, k/2]
  uint8_t* sf = nullptr;           // scale bytes, kp per scale row
  const int32_t* off = nullptr;    // [E+1] row offsets
  const int32_t* sf_off = nullptr; // [E+1] scale-row offsets
  int64_t m = 0;                   // input rows
  int64_t k = 0;                   // quantized values per row (multiple of 32)
  int64_t kp = 0;                  // scale bytes per scale row: round_up(k/32, 4)
  int64_t sf_rows = 0;             // scale rows the kernels may write (whole 128-row tiles)
  int32_t num_experts = 0;
  bool bf16 = false;               // input dtype bf16 (else fp16)
  bool silu = false;               // input is gate || up
};

constexpr const char* kQuantOp = "mxfp4_experts_quant";
constexpr const char* kSiluQuantOp = "silu_and_mul_mxfp4_experts_quant";

// Both quant ops' arguments (`op` is one of the two names above).
QuantProblem validate_experts_quant(const char* op, bool silu, const Tensor& output, const Tensor& output_scale,
                                    const Tensor& input, const Tensor& input_offset_by_experts,
                                    const Tensor& output_scale_offset_by_experts, int64_t n_experts,
                                    const std::optional<Tensor>& sorted_expert_ids);

void experts_quant_cpu(const QuantProblem& p);
#if LOWBIT_WITH_CUDA
// Every built CUDA architecture (csrc/cuda/); `stream` is a cudaStream_t.
void experts_quant_cuda(const QuantProblem& p, void* stream, int sm_count);
#endif

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
// sm90/wgmma_group.cu: the wgmma kernel's tile `tile` (0: 64x128, 1: 128x256;
// activation rows x weight rows).
void run_wgmma_group_sm90(const GroupProblem& p, int tile);
std::vector<std::string> sm90_group_kernel_names();
#endif
#if LOWBIT_BUILT_SM100
void mxfp4_group_mm_sm100(const GroupProblem& p);
std::vector<std::string> sm100_group_kernel_names();
#endif

}  // namespace mxfp4
