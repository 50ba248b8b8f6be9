// Per-token dynamic fp8 (e4m3) quantization, the arithmetic shared by the CPU
// and CUDA kernels (host and device): vLLM v0.34.0's
// dynamic_per_token_scaled_fp8_quant (the W4A8 MoE's activation quantizer,
// docs/SPEC-MOE.md §5.9.3 steps 1 and 5), and the SiLU-and-mul value in front
// of it (SPEC.md §2.1 rule: fp32, rounded to the input dtype).
//
// Per row: amax = max |x| (NaN ignored), optionally min(amax, ub);
// scale = max(amax / 448, 1 / (448 * 512)) (vLLM's floor keeps an all-zero row
// finite); code = e4m3(clamp(x / scale, -448, 448)) with IEEE division and
// round-to-nearest-even (the clamp maps NaN to 448, as vLLM's fminf/fmaxf do).
#pragma once

#include <cmath>
#include <cstdint>

#include <lowbit/nvfp4_codec.h>

#include "elem_math.h"

namespace lowbit::moe::fp8q {

constexpr float kFp8Max = 448.0f;
constexpr float kMinScale = 1.0f / (448.0f * 512.0f);

using elem::div_rn;
using elem::In;
using elem::load;
using elem::round_to_input;

// Row scale from the row's amax (and the optional upper bound of amax).
LOWBIT_HD float token_scale(float amax, const float* ub) {
  const float a = ub ? fminf(amax, *ub) : amax;
  return fmaxf(div_rn(a, kFp8Max), kMinScale);
}

// One value -> its e4m3 byte.
LOWBIT_HD uint8_t code(float x, float scale) {
  const float y = fmaxf(-kFp8Max, fminf(div_rn(x, scale), kFp8Max));
  return static_cast<uint8_t>(lowbit::nvfp4::e4m3_encode(y));
}

// silu(g) * u in fp32 (silu(g) = g / (1 + exp(-g))), rounded to the input dtype.
template <In T>
LOWBIT_HD float silu_mul(float g, float u) {
#if defined(__CUDA_ARCH__)
  const float e = expf(-g);
#else
  const float e = std::exp(-g);
#endif
  return round_to_input<T>(div_rn(g, 1.0f + e) * u);
}

}  // namespace lowbit::moe::fp8q
