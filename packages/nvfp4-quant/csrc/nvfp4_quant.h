// Internal declarations of lowbit-nvfp4-quant (docs/SPEC.md §2.1): the
// validated problem every kernel (CPU, SM90, SM100, SM120) receives, the
// validation entry points (validation.cpp) and the per-target kernels.
#pragma once

#include <lowbit/arch.h>
#include <lowbit/torch_utils.h>

#include <cstdint>

namespace lowbit::nvfp4 {

// One quantization launch, the same struct for all five ops. The kernels
// quantize rows of `n` values each (n = the input's last dim, or half of it
// for the fused SiLU ops) into rows of pn/2 output bytes (pn >= n: padded
// outputs, SPEC §2.1; codes of columns >= n are zero).
struct QuantProblem {
  const void* in = nullptr;     // fp16/bf16 [m, in_cols], contiguous
  uint8_t* out = nullptr;       // packed e2m1 [m, pn/2]
  uint8_t* sf = nullptr;        // scale bytes (swizzled or linear)
  const float* gs = nullptr;    // global scale(s): [1] dense, [E] experts
  const int32_t* off = nullptr;     // experts: row offsets [E+1]
  const int32_t* sf_off = nullptr;  // experts: padded scale-row offsets [E+1]
  int64_t m = 0;          // input rows (m_topk for experts)
  int64_t n = 0;          // quantized values per row (multiple of 16)
  int64_t pn = 0;         // output width in values (multiple of 16, >= n)
  int64_t kp = 0;         // scale columns per row: round_up(pn/16, 4) swizzled, pn/16 linear
  int64_t sf_rows = 0;    // rows of the scale buffer the kernels may write (whole tiles)
  int32_t num_experts = 0;
  bool bf16 = false;      // input dtype: bf16 (true) or fp16
  bool silu = false;      // input is gate || up, [m, 2n]
  bool swizzled = true;   // scale layout
  bool experts = false;
};

// Argument validation of every op (validation.cpp). `output`/`output_scale`
// are the op's own buffers (named as in its schema).
QuantProblem validate_quant(const Tensor& input, const Tensor& input_scale, bool swizzled,
                            const Tensor& output, const Tensor& output_scale);
QuantProblem validate_silu_quant(const Tensor& result, const Tensor& result_block_scale,
                                 const Tensor& input, const Tensor& input_global_scale);
QuantProblem validate_experts_quant(const char* op, bool silu, const Tensor& output,
                                    const Tensor& output_scale, const Tensor& input,
                                    const Tensor& input_global_scale,
                                    const Tensor& input_offset_by_experts,
                                    const Tensor& output_scale_offset_by_experts);
// The functional op's input checks (before it allocates).
void validate_quant_input(const Tensor& input);

// Kernels. CPU: expert offsets are host pointers, already validated.
void quant_cpu(const QuantProblem& p);
// CUDA, one per architecture family; `stream` is a cudaStream_t, `sm_count`
// sizes the persistent grid. The caller has set the device guard.
#if LOWBIT_BUILT_SM90
void quant_sm90(const QuantProblem& p, void* stream, int sm_count);
#endif
#if LOWBIT_BUILT_SM100
void quant_sm100(const QuantProblem& p, void* stream, int sm_count);
#endif
#if LOWBIT_BUILT_SM120
void quant_sm120(const QuantProblem& p, void* stream, int sm_count);
#endif

}  // namespace lowbit::nvfp4
