// CPU MXFP4 experts quantization (docs/SPEC-MOE.md §5.1.1, §5.4-5.5), the
// reference the CUDA kernel is compared with: per row, the values in fp32
// (SiLU: silu(g)·u in fp32 rounded to the input dtype, as vLLM does), per
// 32-block the E8M0 byte from the amax bits and the e2m1 codes of
// x·2^(127-s) (lowbit/mxfp4_codec.h), scales into the expert's swizzled region;
// then every region's padding rows / columns are zeroed. Rows are spread over
// torch's intra-op threads.
#include "../mxfp4.h"

#include <lowbit/cpu/half_bits.h>
#include <lowbit/mxfp4_codec.h>

#include <torch/csrc/stable/ops.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace mxfp4 {
namespace {

namespace mx = lowbit::mxfp4;

// Input row r -> k fp32 values in v.
void load_row(const QuantProblem& p, int64_t r, std::vector<float>& v) {
  const auto* raw = static_cast<const uint16_t*>(p.in) + r * (p.silu ? 2 * p.k : p.k);
  for (int64_t i = 0; i < p.k; ++i) v[i] = lowbit::cpu::to_float(raw[i], p.bf16);
  if (!p.silu) return;
  for (int64_t i = 0; i < p.k; ++i) {
    const float g = v[i], u = lowbit::cpu::to_float(raw[p.k + i], p.bf16);
    v[i] = lowbit::cpu::round_to(g / (1.0f + std::exp(-g)) * u, p.bf16);
  }
}

// One 32-block: 16 code bytes to dst, returns the scale byte.
uint8_t quant_block(const float* x, uint8_t* dst) {
  uint32_t amax = 0;
  for (int i = 0; i < mx::kBlock; ++i) amax = std::max(amax, lowbit::cpu::float_to_bits(x[i]) & 0x7FFFFFFFu);
  const uint32_t s = mx::scale_byte(amax);
  if (mx::zero_codes(s)) {
    std::memset(dst, 0, mx::kBlock / 2);
    return static_cast<uint8_t>(s);
  }
  const float mult = mx::quant_multiplier(s);
  for (int j = 0; j < mx::kBlock / 2; ++j)
    dst[j] = static_cast<uint8_t>(mx::encode(x[2 * j], mult) | (mx::encode(x[2 * j + 1], mult) << 4));
  return static_cast<uint8_t>(s);
}

// Largest e with off[e] <= r, or -1 for a row outside [off[0], off[E]).
int64_t expert_of(const QuantProblem& p, int64_t r) {
  const int32_t* end = p.off + p.num_experts + 1;
  const int64_t e = (std::upper_bound(p.off, end, int32_t(r)) - p.off) - 1;
  return e < p.num_experts ? e : -1;
}

void quant_rows(const QuantProblem& p, int64_t r0, int64_t r1) {
  std::vector<float> v(p.k);
  const int64_t nb = p.k / mx::kBlock, tiles = p.kp / 4;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t e = expert_of(p, r);
    if (e < 0) continue;  // orphan rows write nothing
    load_row(p, r, v);
    uint8_t* region = p.sf + int64_t(p.sf_off[e]) * p.kp;
    const int64_t lr = r - p.off[e];
    for (int64_t c = 0; c < nb; ++c) {
      const uint8_t s = quant_block(v.data() + c * mx::kBlock, p.out + r * (p.k / 2) + c * (mx::kBlock / 2));
      region[mx::swizzled_offset(lr, c, tiles)] = s;
    }
    for (int64_t c = nb; c < p.kp; ++c) region[mx::swizzled_offset(lr, c, tiles)] = 0;
  }
}

// Zero the padding rows m_e .. round_up(m_e, 128) - 1 of every region.
void zero_padding_rows(const QuantProblem& p) {
  const int64_t tiles = p.kp / 4;
  for (int64_t e = 0; e < p.num_experts; ++e) {
    const int64_t m_e = p.off[e + 1] - p.off[e];
    uint8_t* region = p.sf + int64_t(p.sf_off[e]) * p.kp;
    for (int64_t r = m_e; r < mx::swizzled_rows(m_e); ++r)
      for (int64_t c = 0; c < p.kp; ++c) region[mx::swizzled_offset(r, c, tiles)] = 0;
  }
}

}  // namespace

void experts_quant_cpu(const QuantProblem& p) {
  // Whole 128-row tiles per task: the swizzled layout interleaves the scale
  // bytes of a tile's rows 16 bytes apart, so finer tasks share cache lines.
  const int64_t grain = std::max<int64_t>(128, (int64_t(1) << 14) / p.k);
  torch::stable::parallel_for(0, p.m, grain, [&](int64_t r0, int64_t r1) { quant_rows(p, r0, r1); });
  zero_padding_rows(p);
}

}  // namespace mxfp4
