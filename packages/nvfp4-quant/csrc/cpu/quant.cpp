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

#include <lowbit/nvfp4_codec.h>

#include <torch/csrc/stable/ops.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

namespace lowbit::nvfp4 {
namespace {

namespace nv = lowbit::nvfp4;

using lowbit::nvfp4::f32_bits;
using lowbit::nvfp4::f32_from_bits;

inline float bf16_to_float(uint16_t h) { return f32_from_bits(uint32_t(h) << 16); }

// IEEE half -> float, branch-free (vectorisable): normals and subnormals by an
// exponent-rebasing multiply (exact), Inf/NaN by patching the exponent.
inline float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t em = h & 0x7FFFu;
  const float mag = f32_from_bits(em << 13) * 0x1p112f;
  const uint32_t special = (em << 13) | 0x7F800000u;
  return f32_from_bits((em >= 0x7C00u ? special : f32_bits(mag)) | sign);
}

// fp32 rounded to bf16 (nearest even; NaN stays NaN) and back.
inline float round_to_bf16(float f) {
  const uint32_t u = f32_bits(f);
  const uint32_t r = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
  const bool nan = (u & 0x7FFFFFFFu) > 0x7F800000u;
  return f32_from_bits(nan ? (u | 0x00400000u) & 0xFFFF0000u : r);
}
// fp32 rounded to fp16 (nearest even, overflow to Inf) and back.
inline float round_to_f16(float f) { return static_cast<float>(static_cast<_Float16>(f)); }

// Per-row scratch, reused across the rows of one task.
struct RowBuffers {
  std::vector<float> v, os, amax;
  std::vector<uint8_t> sf;
  std::vector<uint32_t> codes, keep;
};

// Input row -> n fp32 values in b.v; with SILU, silu(g) * u in fp32 rounded to
// the input dtype (SPEC §2.1, as vLLM does before quantizing).
template <typename T, bool SILU>
__attribute__((always_inline)) inline void load_row(const T* src, int64_t n, RowBuffers& b) {
  constexpr bool kBF16 = std::is_same_v<T, uint16_t>;  // uint16_t = bf16, int16_t = fp16
  float* v = b.v.data();
  const uint16_t* raw = reinterpret_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) v[i] = kBF16 ? bf16_to_float(raw[i]) : half_to_float(raw[i]);
  if constexpr (SILU) {
    for (int64_t i = 0; i < n; ++i) {
      const float u = kBF16 ? bf16_to_float(raw[n + i]) : half_to_float(raw[n + i]);
      const float y = v[i] / (1.0f + std::exp(-v[i])) * u;
      v[i] = kBF16 ? round_to_bf16(y) : round_to_f16(y);
    }
  }
}

// SPEC §1.2 on the values in b.v: scale bytes to sf_out[0..nb), codes to
// dst[0..n/2). Every stage is a flat loop without control flow so it
// vectorises; the row worker is always inlined into the (AVX2 / default)
// clones below.
__attribute__((always_inline)) inline void quant_values(int64_t n, float gs, uint8_t* dst,
                                                        uint8_t* sf_out, RowBuffers& b) {
  const int64_t nb = n / 16;
  float* v = b.v.data();
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
    const float s = nv::block_scale(amax[c], gs);
    const bool nan = (f32_bits(s) & 0x7FFFFFFFu) > 0x7F800000u;  // NaN block (or NaN gs)
    const uint32_t sfb = nan ? uint32_t(nv::kNanScale) : nv::e4m3_encode(s);
    const float sf_f = nv::e4m3_decode(sfb);
    const bool zero = nan || (f32_bits(sf_f) & 0x7FFFFFFFu) == 0;
    const float os = nv::block_out_scale(sf_f, gs);
    b.os[c] = zero ? 0.0f : os;
    b.keep[c] = zero ? 0u : 0xFu;
    sf_out[c] = static_cast<uint8_t>(sfb);
  }
  for (int64_t c = 0; c < nb; ++c) {
    const float os = b.os[c];
    for (int i = 0; i < 16; ++i) v[c * 16 + i] *= os;
  }
  uint32_t* codes = b.codes.data();
  for (int64_t i = 0; i < n; ++i) codes[i] = nv::e2m1_encode(v[i]);
  for (int64_t c = 0; c < nb; ++c) {
    const uint32_t keep = b.keep[c];
    for (int i = 0; i < 16; ++i) codes[c * 16 + i] &= keep;
  }
  for (int64_t j = 0; j < n / 2; ++j) {
    dst[j] = static_cast<uint8_t>(codes[2 * j] | (codes[2 * j + 1] << 4));
  }
}

// Scale-buffer position of input row r: (region start row, local row), or
// false for an expert op's orphan row (which writes nothing).
inline bool row_place(const QuantProblem& p, int64_t r, float* gs, int64_t* region, int64_t* lr) {
  if (!p.experts) {
    *gs = p.gs[0];
    *region = 0;
    *lr = r;
    return true;
  }
  const int64_t E = p.num_experts;
  const int32_t* it = std::upper_bound(p.off, p.off + E + 1, int32_t(r));
  const int64_t e = (it - p.off) - 1;  // largest e with off[e] <= r
  if (e < 0 || e >= E) return false;
  *gs = p.gs[e];
  *region = p.sf_off[e];
  *lr = r - p.off[e];
  return true;
}

// Rows [r0, r1): codes (zero past n), then the row's scales with the padded
// columns zeroed.
template <typename T, bool SILU>
__attribute__((always_inline)) inline void quant_rows(const QuantProblem& p, int64_t r0, int64_t r1) {
  RowBuffers b;
  const int64_t n = p.n, nb = n / 16, in_stride = SILU ? 2 * n : n;
  b.v.resize(n);
  b.codes.resize(n);
  b.os.resize(nb);
  b.sf.resize(p.kp, 0);
  b.keep.resize(nb);
  b.amax.resize(nb);
  const T* in = static_cast<const T*>(p.in);
  for (int64_t r = r0; r < r1; ++r) {
    float gs;
    int64_t region, lr;
    if (!row_place(p, r, &gs, &region, &lr)) continue;
    uint8_t* dst = p.out + r * (p.pn / 2);
    load_row<T, SILU>(in + r * in_stride, n, b);
    quant_values(n, gs, dst, b.sf.data(), b);
    std::memset(dst + n / 2, 0, size_t((p.pn - n) / 2));
    if (!p.swizzled) {
      std::memcpy(p.sf + r * p.kp, b.sf.data(), size_t(p.kp));  // b.sf[nb..kp) stays 0
    } else {
      uint8_t* base = p.sf + region * p.kp;
      for (int64_t c = 0; c < p.kp; ++c) base[nv::swizzled_offset(lr, c, p.kp / 4)] = b.sf[c];
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
    for (int64_t c = 0; c < kp; c += 4) std::memset(base + nv::swizzled_offset(r, c, kp / 4), 0, 4);
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
