// CPU reference kernels for the three ops: byte-identical prepack outputs to
// the device kernels, and the GEMM computed from the same prepacked bytes the
// SM90 kernel reads (so weights can be prepacked offline and results checked
// without a GPU).
#include "w4a8_mm.h"

#include <lowbit/nvfp4_codec.h>

#include <torch/csrc/stable/ops.h>
#include <torch/headeronly/util/BFloat16.h>
#include <torch/headeronly/util/Half.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace lowbit::w4a8 {
namespace {

// e4m3fn byte -> float (exact); the NaN bytes decode to NaN (a NaN group
// scale makes its weights NaN, as on the GPU).
float e4m3_to_float(uint8_t b) {
  return (b & 0x7F) == 0x7F ? NAN : nvfp4::e4m3_decode(b);
}

// float -> e4m3fn, round-to-nearest-even, saturating to +-448 (what
// cvt.rn.satfinite.e4m3x2.f32 produces); NaN -> 0x7F.
uint8_t float_to_e4m3(float x) {
  return std::isnan(x) ? 0x7F : static_cast<uint8_t>(nvfp4::e4m3_encode(x));
}

uint32_t encode_nibble(uint32_t v) { return (v >= 1 && v <= 7) ? 8 - v : v; }

}  // namespace

void encode_and_reorder_int4b_cpu(const int32_t* in, int32_t* out, const ReorderProblem& p) {
  const int64_t N = p.N, K = p.K, kw = K / 8;
  auto* o = reinterpret_cast<uint32_t*>(out);
  std::memset(o, 0, static_cast<size_t>(N * kw) * sizeof(uint32_t));
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t k = 0; k < K; ++k) {
      const uint32_t v = (static_cast<uint32_t>(in[n * kw + k / 8]) >> (4 * (k % 8))) & 0xF;
      const int64_t off = reorder_offset(n, k, N);
      o[off / 8] |= encode_nibble(v) << (4 * (off % 8));
    }
  }
}

void pack_scale_fp8_cpu(const uint8_t* in, uint8_t* out, const PackScaleProblem& p) {
  for (int64_t i = 0; i < p.numel; ++i) {
    const float s = e4m3_to_float(in[i]);
    for (int j = 0; j < 8; ++j) out[8 * i + j] = float_to_e4m3(-static_cast<float>(8 - j) * s);
  }
}

void w4a8_mm_cpu(const MmProblem& p) {
  const int64_t M = p.M, N = p.N, K = p.K, G = p.group_size;
  const auto* a = static_cast<const uint8_t*>(p.a);
  const auto* b = static_cast<const uint32_t*>(p.b);
  const auto* tab = static_cast<const uint8_t*>(p.group_scales);
  std::vector<float> af(static_cast<size_t>(M * K));
  for (int64_t i = 0; i < M * K; ++i) af[i] = e4m3_to_float(a[i]);
  torch::stable::parallel_for(0, N, 16, [&](int64_t n0, int64_t n1) {
    std::vector<float> w(static_cast<size_t>(K));
    for (int64_t n = n0; n < n1; ++n) {
      // Decode row n exactly as the SM90 mainloop does: the low 3 bits pick
      // entry L = e4m3(-(8-L)s) of the group's table, a clear sign bit negates
      // it, and L = 0 with a clear sign bit is zero.
      for (int64_t k = 0; k < K; ++k) {
        const int64_t off = reorder_offset(n, k, N);
        const uint32_t v = (b[off / 8] >> (4 * (off % 8))) & 0xF;
        const uint32_t L = v & 7;
        const float e = e4m3_to_float(tab[((k / G) * N + n) * 8 + L]);
        w[k] = (v & 8) ? e : (L == 0 ? 0.f : -e);
      }
      const float ch = p.channel_scales[p.channel_vector ? n : 0];
      for (int64_t m = 0; m < M; ++m) {
        const float* ar = af.data() + m * K;
        float acc = 0.f;
        for (int64_t k = 0; k < K; ++k) acc += ar[k] * w[k];
        const float d = ch * (p.token_scales[p.token_vector ? m : 0] * acc);
        if (p.out_bf16) {
          static_cast<c10::BFloat16*>(p.out)[m * N + n] = c10::BFloat16(d);
        } else {
          static_cast<c10::Half*>(p.out)[m * N + n] = c10::Half(d);
        }
      }
    }
  });
}

}  // namespace lowbit::w4a8
