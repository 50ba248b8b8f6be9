// CPU NVFP4 quantization (SPEC §1.2), bit-exact with the SM90 kernel and the
// pure-torch reference. Each row goes through short, branch-free stages over
// the whole row (convert, block amax, block scales, e2m1 codes, pack) that the
// compiler vectorises; on x86-64 the row worker is also cloned for AVX2 and
// picked at load time. Rows are spread over torch's intra-op threads.
// Only IEEE results matter here, never FP exception flags: without this GCC
// will not if-convert (and so not vectorise) loops that select between float
// computations. Results are unchanged.
#pragma GCC optimize("no-trapping-math")

#include "nvfp4_quant.h"

#include <torch/csrc/stable/ops.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

namespace lowbit::nvfp4 {
namespace {

inline uint32_t f2u(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float u2f(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float bf16_to_float(uint16_t h) { return u2f(uint32_t(h) << 16); }

// IEEE half -> float, branch-free (vectorisable): normals and subnormals by an
// exponent-rebasing multiply (exact), Inf/NaN by patching the exponent.
inline float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t em = h & 0x7FFFu;
  const float mag = u2f(em << 13) * 0x1p112f;
  const uint32_t special = (em << 13) | 0x7F800000u;
  return u2f((em >= 0x7C00u ? special : f2u(mag)) | sign);
}

// float -> e4m3 byte, round to nearest even, saturating to +-448 (SPEC §1.2
// step 3). Branch-free: below 2^-6 (e4m3 subnormals, multiples of 2^-9) the
// 2^14 magic add rounds; above, the fp32 mantissa is rounded to 3 bits with
// ties to even. NaN is handled by the caller.
inline uint32_t float_to_e4m3(float s) {
  const uint32_t us = f2u(s);
  const uint32_t sign = (us >> 24) & 0x80u;
  const uint32_t a0 = us & 0x7FFFFFFFu;
  const uint32_t a = a0 < 0x43E00000u ? a0 : 0x43E00000u;  // min(|s|, 448)
  const uint32_t sub = f2u(u2f(a) + 16384.0f) - 0x46800000u;
  const uint32_t nrm = ((a + 0x7FFFFu + ((a >> 20) & 1u)) >> 20) - 960u;  // (127-7) << 3
  return (a < 0x3C800000u ? sub : nrm) | sign;
}

// e4m3 byte -> float (NaN bytes never get here: such blocks are zero-flagged).
inline float e4m3_to_float(uint32_t b) {
  const uint32_t e = (b >> 3) & 15u, m = b & 7u;
  const float sub = float(int32_t(m)) * 0x1p-9f;
  const float nrm = u2f(((e + 120u) << 23) | (m << 20));
  return u2f(f2u(e == 0 ? sub : nrm) | ((b & 0x80u) << 24));
}

// Software e2m1 code of y (SPEC §1.1), same arithmetic as the SM90 kernel.
inline uint32_t e2m1_code(float y) {
  const uint32_t u = f2u(y);
  const uint32_t a = u & 0x7FFFFFFFu;
  const uint32_t rn = a + 0x1FFFFFu + ((a >> 22) & 1u);
  const int32_t cn0 = int32_t(rn >> 22) - 252;
  const int32_t cn = cn0 < 7 ? cn0 : 7;
  // |y| < 1: RNE(2|y|) in {0, 1, 2}: above 0.25 (tie 0.25 -> 0) and from 0.75
  // (tie -> 1.0). Integer compares only: float compares or adds would keep the
  // loop from vectorising under -ftrapping-math.
  const int32_t cs = int32_t(a > 0x3E800000u) + int32_t(a >= 0x3F400000u);
  const uint32_t c = uint32_t(a < 0x3F800000u ? cs : cn);
  return c | ((u >> 28) & 8u);
}

inline uint32_t swz_offset(int64_t r, int64_t c, int64_t kp) {
  return uint32_t(((r / 128) * (kp / 4) + c / 4) * 512 + (r % 32) * 16 + ((r / 32) % 4) * 4 + c % 4);
}

// One row: n outputs from `src` (gate || up when silu), codes to `dst`,
// scale bytes to sf_row[c * sf_step] positions given by `sf_pos(c)`.
struct RowBuffers {
  std::vector<float> v, os, amax;
  std::vector<uint8_t> sf;
  std::vector<uint32_t> codes, keep;
};

// Every stage is a flat loop without control flow so it vectorises; the row
// worker is always inlined into the (AVX2 / default) clones below.
template <typename T, bool SILU>
__attribute__((always_inline)) inline void quant_row_impl(const T* src, int64_t n, float gs,
                                                          uint8_t* dst, uint8_t* sf_out,
                                                          RowBuffers& b) {
  constexpr bool kBF16 = std::is_same_v<T, uint16_t>;  // uint16_t = bf16, int16_t = fp16
  const int64_t nb = n / 16;
  float* v = b.v.data();
  const uint16_t* raw = reinterpret_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) v[i] = kBF16 ? bf16_to_float(raw[i]) : half_to_float(raw[i]);
  if constexpr (SILU) {
    for (int64_t i = 0; i < n; ++i) {
      const float u = kBF16 ? bf16_to_float(raw[n + i]) : half_to_float(raw[n + i]);
      v[i] = v[i] / (1.0f + std::exp(-v[i])) * u;
    }
  }
  float* amax = b.amax.data();
  for (int64_t c = 0; c < nb; ++c) {
    float m = 0.0f, nan = 0.0f;
    for (int i = 0; i < 16; ++i) {
      const float a = std::fabs(v[c * 16 + i]);
      m = a > m ? a : m;
      nan = a != a ? 1.0f : nan;
    }
    amax[c] = nan != 0.0f ? NAN : m;
  }
  for (int64_t c = 0; c < nb; ++c) {
    const float s = (gs * amax[c]) / 6.0f;
    const bool nan = (f2u(s) & 0x7FFFFFFFu) > 0x7F800000u;  // NaN block (or NaN gs)
    const uint32_t sfb = nan ? 0x7Fu : float_to_e4m3(s);
    const float sf_f = e4m3_to_float(sfb);
    const bool zero = nan || (f2u(sf_f) & 0x7FFFFFFFu) == 0;
    const float os = 1.0f / (sf_f / gs);
    b.os[c] = zero ? 0.0f : os;
    b.keep[c] = zero ? 0u : 0xFu;
    sf_out[c] = static_cast<uint8_t>(sfb);
  }
  for (int64_t c = 0; c < nb; ++c) {
    const float os = b.os[c];
    for (int i = 0; i < 16; ++i) v[c * 16 + i] *= os;
  }
  uint32_t* codes = b.codes.data();
  for (int64_t i = 0; i < n; ++i) codes[i] = e2m1_code(v[i]);
  for (int64_t c = 0; c < nb; ++c) {
    const uint32_t keep = b.keep[c];
    for (int i = 0; i < 16; ++i) codes[c * 16 + i] &= keep;
  }
  for (int64_t j = 0; j < n / 2; ++j) {
    dst[j] = static_cast<uint8_t>(codes[2 * j] | (codes[2 * j + 1] << 4));
  }
}

// Rows [r0, r1) of a dense problem, or of expert rows (gs per row via `row_gs`).
template <typename T, bool SILU>
__attribute__((always_inline)) inline void quant_rows(const QuantProblem& p, int64_t r0, int64_t r1) {
  RowBuffers b;
  const int64_t n = p.n, nb = n / 16, in_stride = SILU ? 2 * n : n;
  b.v.resize(n);
  b.codes.resize(n);
  b.os.resize(nb);
  b.sf.resize(nb);
  b.keep.resize(nb);
  b.amax.resize(nb);
  const T* in = static_cast<const T*>(p.in);
  const int64_t E = p.num_experts;
  for (int64_t r = r0; r < r1; ++r) {
    float gs;
    int64_t region = 0, lr = r;  // scale region start (rows) and local row
    if (p.experts) {
      // expert of row r: largest e with off[e] <= r; orphans write nothing
      const int32_t* it = std::upper_bound(p.off, p.off + E + 1, int32_t(r));
      const int64_t e = (it - p.off) - 1;
      if (e < 0 || e >= E) continue;
      gs = p.gs[e];
      region = p.sf_off[e];
      lr = r - p.off[e];
    } else {
      gs = p.gs[0];
    }
    quant_row_impl<T, SILU>(in + r * in_stride, n, gs, p.out + r * (n / 2), b.sf.data(), b);
    if (!p.swizzled) {
      std::memcpy(p.sf + r * nb, b.sf.data(), nb);
    } else {
      uint8_t* base = p.sf + region * p.kp;
      for (int64_t c = 0; c < p.kp; ++c) base[swz_offset(lr, c, p.kp)] = c < nb ? b.sf[c] : 0;
    }
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
#define LOWBIT_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define LOWBIT_CLONES
#endif

LOWBIT_CLONES void rows_bf16(const QuantProblem& p, int64_t r0, int64_t r1) {
  quant_rows<uint16_t, false>(p, r0, r1);
}
LOWBIT_CLONES void rows_f16(const QuantProblem& p, int64_t r0, int64_t r1) {
  quant_rows<int16_t, false>(p, r0, r1);
}
LOWBIT_CLONES void rows_bf16_silu(const QuantProblem& p, int64_t r0, int64_t r1) {
  quant_rows<uint16_t, true>(p, r0, r1);
}
LOWBIT_CLONES void rows_f16_silu(const QuantProblem& p, int64_t r0, int64_t r1) {
  quant_rows<int16_t, true>(p, r0, r1);
}

// Zero the swizzled rows [r0, r1) of a region starting at row `region`.
void zero_rows(uint8_t* sf, int64_t region, int64_t r0, int64_t r1, int64_t kp) {
  uint8_t* base = sf + region * kp;
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t c = 0; c < kp; c += 4) std::memset(base + swz_offset(r, c, kp), 0, 4);
}

}  // namespace

void quant_cpu(const QuantProblem& p) {
  if (p.m > 0) {
    auto* fn = p.silu ? (p.bf16 ? rows_bf16_silu : rows_f16_silu) : (p.bf16 ? rows_bf16 : rows_f16);
    // ~64 KB of input per task
    const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 15) / std::max<int64_t>(p.n, 1));
    torch::stable::parallel_for(0, p.m, grain, [&](int64_t r0, int64_t r1) { fn(p, r0, r1); });
  }
  if (!p.swizzled) return;
  if (!p.experts) {
    zero_rows(p.sf, 0, p.m, p.sf_rows, p.kp);
    return;
  }
  for (int64_t e = 0; e < p.num_experts; ++e) {
    const int64_t m_e = p.off[e + 1] - p.off[e];
    const int64_t rows = p.sf_off[e + 1] - p.sf_off[e];
    zero_rows(p.sf, p.sf_off[e], std::min(m_e, rows), rows, p.kp);
  }
}

}  // namespace lowbit::nvfp4
