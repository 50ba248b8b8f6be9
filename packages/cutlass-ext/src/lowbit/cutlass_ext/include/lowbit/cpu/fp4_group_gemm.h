// The CPU reference GEMM of the FP4 formats (NVFP4: docs/SPEC.md §1.4 and
// docs/SPEC-MOE.md §5.2; MXFP4: docs/SPEC-MOE.md §5.3), written once: dequantize
// both operands exactly to fp32 (every e2m1 · scale product is exact), then one
// fp32 dot product per output in ascending k and one rounding to the output
// dtype. Each row depends only on itself, so the result is batch invariant by
// construction. The formats differ only in the elements per scale byte and in
// how a scale byte decodes; both pass those in. Host code only.
#pragma once

#include <lowbit/cpu/half_bits.h>
#include <lowbit/fp4_group_contract.h>
#include <lowbit/nvfp4_codec.h>
#include <lowbit/torch_utils.h>

#include <torch/csrc/stable/ops.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace lowbit::cpu {

// `rows` rows of packed e2m1 [rows, K/2] with 128x4-swizzled scale bytes (one
// per `block` elements, round_up(K/block, 4) per padded row) -> fp32 [rows, K].
template <class ScaleDecode>
void dequant_fp4_rows(const uint8_t* q, const uint8_t* s, int64_t rows, int64_t K, int64_t block,
                      ScaleDecode scale_of, std::vector<float>& dst) {
  const int64_t kb = K / 2, blocks = K / block, k_tiles = lowbit::round_up<int64_t>(blocks, 4) / 4;
  dst.resize(static_cast<size_t>(rows * K));
  torch::stable::parallel_for(0, rows, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* d = dst.data() + r * K;
      const uint8_t* qr = q + r * kb;
      for (int64_t c = 0; c < blocks; ++c) {
        const float sc = scale_of(s[lowbit::nvfp4::swizzled_offset(r, c, k_tiles)]);
        for (int64_t j = c * block / 2; j < (c + 1) * block / 2; ++j) {
          d[2 * j] = lowbit::nvfp4::e2m1_decode(qr[j] & 0xF) * sc;
          d[2 * j + 1] = lowbit::nvfp4::e2m1_decode(qr[j] >> 4) * sc;
        }
      }
    }
  });
}

// out [rows, N] (16-bit, row stride N) = from_float(epilogue(A·Bᵀ[m, n], n)),
// A [rows, K] and B [N, K] fp32; `epilogue(acc, n)` is fp32 math before the one
// rounding (alpha, bias).
template <class Epilogue>
void gemm_rows(const std::vector<float>& a, const std::vector<float>& b, int64_t rows, int64_t N, int64_t K,
               bool bf16, Epilogue epilogue, uint16_t* out) {
  torch::stable::parallel_for(0, rows, 1, [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) {
      const float* ar = a.data() + m * K;
      for (int64_t n = 0; n < N; ++n) {
        const float* br = b.data() + n * K;
        float acc = 0.f;
        for (int64_t k = 0; k < K; ++k) acc += ar[k] * br[k];
        out[m * N + n] = from_float(epilogue(acc, n), bf16);
      }
    }
  });
}

// A grouped GEMM's operands as the CPU kernel reads them (docs/SPEC-MOE.md
// §5.2-5.3): a [M, K/2] rows grouped by expert, its scales [R, Kp] with expert
// e's region at scale row sf_off[e]; b [E, N, K/2] with scales [E, Np, Kp];
// problem sizes [E, 3] (m_e, N, K); out [M, N].
struct Fp4GroupView {
  const uint8_t *a, *sa, *b, *sb;
  const int32_t *problem_sizes, *expert_offsets, *sf_offsets;
  int64_t E, M, N, K, R;
  int64_t block;  // elements per scale byte (16 NVFP4, 32 MXFP4)
  bool bf16;      // out's dtype: bf16, else fp16
  uint16_t* out;
};

// One expert's metadata against the tensors (lowbit/fp4_group_contract.h).
inline bool expert_ok(const Fp4GroupView& g, int64_t e) {
  return fp4_group_expert_ok(g.problem_sizes, g.expert_offsets, g.sf_offsets, e, g.M, g.N, g.K, g.R);
}

// Expert by expert: out[off_e : off_e + m_e] = alpha_of(e) · A_e·B_eᵀ (one fp32
// multiply by alpha_of(e) before the rounding when the format has one).
template <class ScaleDecode, class Alpha>
void fp4_group_gemm(const Fp4GroupView& g, ScaleDecode scale_of, Alpha alpha_of) {
  const int64_t kb = g.K / 2, Kp = lowbit::round_up<int64_t>(g.K / g.block, 4);
  const int64_t Np = lowbit::round_up<int64_t>(g.N, 128);
  std::vector<float> a, b;
  // NaN rows of broken experts first, so that rows a valid expert also
  // covers end with its values (docs/SPEC-MOE.md §5.0.3).
  fp4_group_nan_broken(g.problem_sizes, g.expert_offsets, g.sf_offsets, 0, g.E, g.M, g.N, g.K, g.R, g.out,
                       g.bf16 ? kNanBf16 : kNanHalf, 0, 1);
  for (int64_t e = 0; e < g.E; ++e) {
    if (!expert_ok(g, e)) continue;
    const int64_t m = g.problem_sizes[3 * e], row0 = g.expert_offsets[e];
    if (m == 0) continue;
    dequant_fp4_rows(g.a + row0 * kb, g.sa + int64_t{g.sf_offsets[e]} * Kp, m, g.K, g.block, scale_of, a);
    dequant_fp4_rows(g.b + e * g.N * kb, g.sb + e * Np * Kp, g.N, g.K, g.block, scale_of, b);
    gemm_rows(a, b, m, g.N, g.K, g.bf16, [&](float acc, int64_t) { return alpha_of(e, acc); }, g.out + row0 * g.N);
  }
}

}  // namespace lowbit::cpu
