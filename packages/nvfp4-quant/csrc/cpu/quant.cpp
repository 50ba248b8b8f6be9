// CPU NVFP4 quantization (SPEC §1.2), bit-exact with the SM90 kernel and the
// pure-torch reference. Each row goes through short, branch-free stages over
// the whole row (convert, block amax, block scales, e2m1 codes, pack) that the
// compiler vectorises; on x86-64 the row worker is also cloned for AVX2 and
// picked at load time. Rows are spread over torch's intra-op threads.
#include "nvfp4_quant.h"

#include <torch/csrc/stable/ops.h>

#include <algorithm>
#include <cmath>
#include <cstring>
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
// step 3; NaN -> 0x7F). Same two-range trick as the e2m1 rounding.
inline uint8_t float_to_e4m3(float s) {
  if (s != s) return 0x7F;
  const uint32_t sign = (f2u(s) >> 24) & 0x80u;
  const float a = std::min(std::fabs(s), 448.0f);
  uint32_t code;
  if (a < 0x1p-6f) {
    // subnormal e4m3: multiples of 2^-9; 2^23 magic add rounds a * 2^9 (exact).
    code = f2u(a * 512.0f + 8388608.0f) - 0x4B000000u;
  } else {
    const uint32_t u = f2u(a);
    code = ((u + 0x7FFFFu + ((u >> 20) & 1u)) >> 20) - 960u;  // 960 = (127 - 7) << 3
  }
  return static_cast<uint8_t>(code | sign);
}

struct E4M3Table {
  float v[256];
  E4M3Table() {
    for (int b = 0; b < 256; ++b) {
      const int s = b >> 7, e = (b >> 3) & 15, m = b & 7;
      float x = e == 0 ? std::ldexp(float(m), -9) : std::ldexp(1.0f + m / 8.0f, e - 7);
      if (e == 15 && m == 7) x = NAN;
      v[b] = s ? -x : x;
    }
  }
};
const E4M3Table kE4M3;

// Software e2m1 code of y (SPEC §1.1), same arithmetic as the SM90 kernel.
inline uint32_t e2m1_code(float y) {
  const uint32_t u = f2u(y);
  const uint32_t a = u & 0x7FFFFFFFu;
  const uint32_t rn = a + 0x1FFFFFu + ((a >> 22) & 1u);
  const int32_t cn = std::min(int32_t(rn >> 22) - 252, 7);
  const float ay = u2f(a);
  const int32_t cs = int32_t(f2u(ay * 2.0f + 8388608.0f)) - 0x4B000000;
  const uint32_t c = uint32_t(ay < 1.0f ? cs : cn);
  return c | ((u >> 28) & 8u);
}

inline uint32_t swz_offset(int64_t r, int64_t c, int64_t kp) {
  return uint32_t(((r / 128) * (kp / 4) + c / 4) * 512 + (r % 32) * 16 + ((r / 32) % 4) * 4 + c % 4);
}

// One row: n outputs from `src` (gate || up when silu), codes to `dst`,
// scale bytes to sf_row[c * sf_step] positions given by `sf_pos(c)`.
struct RowBuffers {
  std::vector<float> v, os;
  std::vector<uint8_t> sf, zero;
};

template <typename T, bool SILU>
inline void quant_row_impl(const T* src, int64_t n, float gs, uint8_t* dst, uint8_t* sf_out,
                           RowBuffers& b) {
  const int64_t nb = n / 16;
  float* v = b.v.data();
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t raw = reinterpret_cast<const uint16_t*>(src)[i];
    v[i] = std::is_same_v<T, uint16_t> ? bf16_to_float(raw) : half_to_float(raw);
  }
  if constexpr (SILU) {
    for (int64_t i = 0; i < n; ++i) {
      const uint16_t raw = reinterpret_cast<const uint16_t*>(src)[n + i];
      const float u = std::is_same_v<T, uint16_t> ? bf16_to_float(raw) : half_to_float(raw);
      v[i] = v[i] / (1.0f + std::exp(-v[i])) * u;
    }
  }
  for (int64_t c = 0; c < nb; ++c) {
    const float* x = v + c * 16;
    float amax = 0.0f;
    bool nan = false;
    for (int i = 0; i < 16; ++i) {
      const float a = std::fabs(x[i]);
      amax = a > amax ? a : amax;
      nan |= a != a;
    }
    const float s = (gs * amax) / 6.0f;
    const uint8_t sfb = float_to_e4m3(s);
    const float sf_f = kE4M3.v[sfb];
    const bool zero = nan || !(std::fabs(sf_f) > 0.0f);
    b.os[c] = zero ? 0.0f : 1.0f / (sf_f / gs);
    b.zero[c] = zero;
    sf_out[c] = nan ? uint8_t{0x7F} : sfb;
  }
  for (int64_t c = 0; c < nb; ++c) {
    const float os = b.os[c];
    const uint32_t keep = b.zero[c] ? 0u : 0xFFu;
    const float* x = v + c * 16;
    uint8_t* d = dst + c * 8;
    for (int j = 0; j < 8; ++j) {
      const uint32_t lo = e2m1_code(x[2 * j] * os), hi = e2m1_code(x[2 * j + 1] * os);
      d[j] = static_cast<uint8_t>((lo | (hi << 4)) & keep);
    }
  }
}

// Rows [r0, r1) of a dense problem, or of expert rows (gs per row via `row_gs`).
template <typename T, bool SILU>
void quant_rows(const QuantProblem& p, int64_t r0, int64_t r1) {
  RowBuffers b;
  const int64_t n = p.n, nb = n / 16, in_stride = SILU ? 2 * n : n;
  b.v.resize(n);
  b.os.resize(nb);
  b.sf.resize(nb);
  b.zero.resize(nb);
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
