// CPU reference of cutlass_mxfp4_group_mm (docs/SPEC-MOE.md §5.3): per
// expert, dequantize its A rows (scales from its region at scale row
// sf_off[e], Kp bytes per row) and B[e] (at byte e·Np·Kp of the weight scales)
// exactly to fp32 (e2m1 · 2^(b-127) is exact; byte 0xFF is NaN), then one fp32
// dot product per output in ascending k and one rounding to the output dtype.
// Each row depends only on itself: batch invariant by construction. An expert
// whose metadata breaks the contract gets NaN in its in-bounds rows (§5.0.3).
#include "../mxfp4.h"
#include "half_bits.h"

#include <lowbit/mxfp4_codec.h>

#include <torch/csrc/stable/ops.h>

#include <algorithm>
#include <vector>

namespace mxfp4 {
namespace {

namespace mx = lowbit::mxfp4;

// `rows` rows of packed e2m1 [rows, K/2] with swizzled scales -> fp32 [rows, K].
void dequant(const uint8_t* q, const uint8_t* s, int64_t rows, int64_t K, std::vector<float>& dst) {
  const int64_t kb = K / 2, tiles = lowbit::round_up<int64_t>(K / 32, 4) / 4;
  dst.resize(static_cast<size_t>(rows * K));
  torch::stable::parallel_for(0, rows, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* d = dst.data() + r * K;
      for (int64_t c = 0; c < K / 32; ++c) {
        const float sc = mx::scale_value(s[mx::swizzled_offset(r, c, tiles)]);
        for (int64_t j = 0; j < 16; ++j) {
          const uint8_t byte = q[r * kb + c * 16 + j];
          d[c * 32 + 2 * j] = mx::e2m1_decode(byte & 0xF) * sc;
          d[c * 32 + 2 * j + 1] = mx::e2m1_decode(byte >> 4) * sc;
        }
      }
    }
  });
}

// out [rows, N] = to_out(A·Bᵀ), A [rows, K], B [N, K] fp32.
void gemm_rows(const std::vector<float>& a, const std::vector<float>& b, int64_t rows, int64_t N, int64_t K,
               bool half, uint16_t* out) {
  torch::stable::parallel_for(0, rows, 1, [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) {
      const float* ar = a.data() + m * K;
      for (int64_t n = 0; n < N; ++n) {
        const float* br = b.data() + n * K;
        float acc = 0.f;
        for (int64_t k = 0; k < K; ++k) acc += ar[k] * br[k];
        out[m * N + n] = half ? cpu::float_to_half(acc) : cpu::float_to_bf16(acc);
      }
    }
  });
}

// One expert's metadata against the tensors (§5.0.3): rows inside a, a region
// of round_up(m_e, 128) scale rows inside a_blockscale at a multiple of 128,
// problem size (m_e, N, K).
bool expert_ok(const GroupProblem& p, const int32_t* ps, int64_t off, int64_t sf_off) {
  const int64_t m = ps[0];
  return m >= 0 && off >= 0 && off + m <= p.M && ps[1] == p.N && ps[2] == p.K && sf_off >= 0 &&
         sf_off % 128 == 0 && sf_off + lowbit::round_up<int64_t>(m, 128) <= p.R;
}

}  // namespace

std::vector<std::string> cpu_group_kernel_names() { return {"reference"}; }

void mxfp4_group_mm_cpu(const GroupProblem& p) {
  const int64_t N = p.N, K = p.K, kb = K / 2;
  const int64_t Kp = lowbit::round_up<int64_t>(K / 32, 4), Np = lowbit::round_up<int64_t>(N, 128);
  const int32_t* ps = p.problem_sizes.const_data_ptr<int32_t>();
  const int32_t* off = p.expert_offsets.const_data_ptr<int32_t>();
  const int32_t* sf_off = p.sf_offsets.const_data_ptr<int32_t>();
  const auto* qa = p.a.const_data_ptr<uint8_t>();
  const auto* qb = p.b.const_data_ptr<uint8_t>();
  const auto* sa = p.sa.const_data_ptr<uint8_t>();
  const auto* sb = p.sb.const_data_ptr<uint8_t>();
  const bool half = p.out.scalar_type() == lowbit::ScalarType::Half;
  auto* out = static_cast<uint16_t*>(p.out.data_ptr());
  std::vector<float> a, b;
  for (int64_t e = 0; e < p.E; ++e) {
    const int64_t m = ps[3 * e], row0 = off[e];
    if (!expert_ok(p, ps + 3 * e, row0, sf_off[e])) {
      const int64_t lo = std::max<int64_t>(row0, 0), hi = std::min<int64_t>(row0 + std::max<int64_t>(m, 0), p.M);
      const uint16_t nan = half ? 0x7E00 : 0x7FC0;
      for (int64_t i = lo * N; i < hi * N; ++i) out[i] = nan;
      continue;
    }
    if (m == 0) continue;
    dequant(qa + row0 * kb, sa + int64_t{sf_off[e]} * Kp, m, K, a);
    dequant(qb + e * N * kb, sb + e * Np * Kp, N, K, b);
    gemm_rows(a, b, m, N, K, half, out + row0 * N);
  }
}

}  // namespace mxfp4
