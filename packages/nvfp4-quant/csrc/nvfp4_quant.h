// Internal declarations of lowbit-nvfp4-quant: the problem description every
// kernel (CPU, SM90, SM100, SM120) receives after ops.cpp validated it.
#pragma once

#include <cstdint>

namespace lowbit::nvfp4 {

// One quantization launch. The kernels quantize rows of `n` outputs each
// (n = the input's last dim, or half of it for the fused SiLU variants).
struct QuantProblem {
  const void* in = nullptr;     // fp16/bf16 [m, in_cols], contiguous
  uint8_t* out = nullptr;       // packed e2m1 [m, n/2]
  uint8_t* sf = nullptr;        // scale bytes (swizzled or linear)
  const float* gs = nullptr;    // global scale(s): [1] dense, [E] experts
  const int32_t* off = nullptr;     // experts: row offsets [E+1]
  const int32_t* sf_off = nullptr;  // experts: padded scale-row offsets [E+1]
  int64_t m = 0;          // input rows (m_topk for experts)
  int64_t n = 0;          // quantized elements per row (multiple of 16)
  int64_t kp = 0;         // scale columns in the swizzled buffer: round_up(n/16, 4)
  int64_t sf_rows = 0;    // rows of the scale buffer (Mp, m for linear, R for experts)
  int32_t num_experts = 0;
  bool bf16 = false;      // input dtype: bf16 (true) or fp16
  bool silu = false;      // input is gate || up, [m, 2n]
  bool swizzled = true;   // scale layout
  bool experts = false;
};

// CPU (csrc/cpu/quant.cpp); expert offsets are host pointers, already validated.
void quant_cpu(const QuantProblem& p);

// CUDA launchers, one per architecture family, each in its own folder.
// `stream` is a cudaStream_t; `sm_count` sizes persistent grids.
void quant_sm90(const QuantProblem& p, void* stream, int sm_count);
void quant_sm100(const QuantProblem& p, void* stream, int sm_count);
void quant_sm120(const QuantProblem& p, void* stream, int sm_count);

}  // namespace lowbit::nvfp4
