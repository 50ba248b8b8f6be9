// The CPU reference GEMM of the FP4 formats (NVFP4: docs/SPEC.md §1.4 and
// docs/SPEC-MOE.md §5.2; MXFP4: docs/SPEC-MOE.md §5.3), written once: dequantize
// both operands exactly to fp32 (every e2m1 · scale product is exact), then one
// fp32 dot product per output in ascending k (cpu/gemm_nt.h) and one rounding
// to the output dtype. Each row depends only on itself, so the result is batch
// invariant by construction. The formats differ only in the elements per scale
// byte and in how a scale byte decodes; both pass those in. Host code only.
#pragma once

#include <lowbit/cpu/gemm_nt.h>
#include <lowbit/cpu/half_bits.h>
#include <lowbit/fp4_group_contract.h>
#include <lowbit/nvfp4_codec.h>
#include <lowbit/torch_utils.h>

#include <torch/csrc/stable/ops.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace lowbit::cpu {

// The values of the two e2m1 codes of each byte (low nibble first).
struct E2m1PairTable {
  float v[256][2];
  E2m1PairTable() {
    for (int b = 0; b < 256; ++b) {
      v[b][0] = lowbit::nvfp4::e2m1_decode(b & 0xF);
      v[b][1] = lowbit::nvfp4::e2m1_decode(b >> 4);
    }
  }
};
inline const E2m1PairTable& e2m1_pairs() {
  static const E2m1PairTable table;
  return table;
}

// An FP4 operand as the CPU kernels read it: packed e2m1 rows [rows, K/2],
// 128x4-swizzled scale bytes (one per `block` elements, round_up(K/block, 4)
// per padded row), each scale byte decoded by the format's `scale_of`.
template <class ScaleDecode>
struct Fp4Rows {
  const uint8_t* q;
  const uint8_t* s;
  int64_t K, block;
  ScaleDecode scale_of;

  // Row r's value k for every k, exactly (e2m1 · scale), through `put(k, v)`.
  template <class Put>
  void decode_row(int64_t r, Put put) const {
    const auto& pairs = e2m1_pairs().v;
    const int64_t k_tiles = lowbit::nvfp4::swizzled_cols(K / block) / 4;
    const uint8_t* qr = q + r * (K / 2);
    for (int64_t c = 0; c < K / block; ++c) {
      const float sc = scale_of(s[lowbit::nvfp4::swizzled_offset(r, c, k_tiles)]);
      for (int64_t j = c * block / 2; j < (c + 1) * block / 2; ++j) {
        put(2 * j, pairs[qr[j]][0] * sc);
        put(2 * j + 1, pairs[qr[j]][1] * sc);
      }
    }
  }
};
template <class ScaleDecode>
Fp4Rows<ScaleDecode> fp4_rows(const uint8_t* q, const uint8_t* s, int64_t K, int64_t block, ScaleDecode scale_of) {
  return {q, s, K, block, scale_of};
}

// out [rows, N] (16-bit, row stride N) = from_float(epilogue(A·Bᵀ[m, n], n)),
// A [rows, K] and B [N, K] FP4 operands; `epilogue(acc, n)` is fp32 math
// before the one rounding (alpha, bias). The dot products are gemm_nt's.
template <class Rows, class Epilogue>
void fp4_gemm(const Rows& a, const Rows& b, int64_t rows, int64_t N, bool bf16, Epilogue epilogue, uint16_t* out) {
  const int64_t K = a.K;
  std::vector<float> af(static_cast<size_t>(rows * K));
  torch::stable::parallel_for(0, rows, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) a.decode_row(r, [&](int64_t k, float v) { af[r * K + k] = v; });
  });
  gemm_nt(
      af.data(), rows, N, K,
      [&](int64_t n0, int64_t cols, float* bt) {
        for (int64_t j = 0; j < cols; ++j) b.decode_row(n0 + j, [&](int64_t k, float v) { bt[k * kTileN + j] = v; });
      },
      [&](int64_t m, int64_t n, float acc) { out[m * N + n] = from_float(epilogue(acc, n), bf16); });
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
  const int64_t kb = g.K / 2, Kp = lowbit::nvfp4::swizzled_cols(g.K / g.block);
  const int64_t Np = lowbit::nvfp4::swizzled_rows(g.N);
  // NaN rows of broken experts first, so that rows a valid expert also
  // covers end with its values (docs/SPEC-MOE.md §5.0.3).
  fp4_group_nan_broken(g.problem_sizes, g.expert_offsets, g.sf_offsets, 0, g.E, g.M, g.N, g.K, g.R, g.out,
                       g.bf16 ? kNanBf16 : kNanHalf, 0, 1);
  for (int64_t e = 0; e < g.E; ++e) {
    if (!expert_ok(g, e)) continue;
    const int64_t m = g.problem_sizes[3 * e], row0 = g.expert_offsets[e];
    if (m == 0) continue;
    fp4_gemm(fp4_rows(g.a + row0 * kb, g.sa + int64_t{g.sf_offsets[e]} * Kp, g.K, g.block, scale_of),
             fp4_rows(g.b + e * g.N * kb, g.sb + e * Np * Kp, g.K, g.block, scale_of), m, g.N, g.bf16,
             [&](float acc, int64_t) { return alpha_of(e, acc); }, g.out + row0 * g.N);
  }
}

}  // namespace lowbit::cpu
