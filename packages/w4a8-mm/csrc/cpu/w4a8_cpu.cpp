// CPU reference kernels for every op: byte-identical prepack outputs to the
// device kernels, and the GEMMs computed from the same prepacked bytes the
// SM90 kernels read (so weights can be prepacked offline and results checked
// without a GPU), with lowbit's CPU dot products (lowbit/cpu/gemm_nt.h: one
// fp32 sum per output in ascending k). The grouped forms run the dense
// kernels expert by expert.
#include "w4a8_mm.h"

#include <lowbit/cpu/gemm_nt.h>
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

// Inside one 16 x 32 atom of the reordered layout: the (row, k) of each of
// its 512 nibbles, from reorder_offset itself.
struct AtomIndex {
  uint8_t n[512], k[512];
  AtomIndex() {
    for (int r = 0; r < 16; ++r)
      for (int c = 0; c < 32; ++c) {
        const int64_t o = reorder_offset(r, c, 16);
        n[o] = static_cast<uint8_t>(r);
        k[o] = static_cast<uint8_t>(c);
      }
  }
};
const AtomIndex& atom_index() {
  static const AtomIndex index;
  return index;
}

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
  // Decode rows of B exactly as the SM90 mainloop does: the low 3 bits pick
  // entry L = e4m3(-(8-L)s) of the group's table, a clear sign bit negates
  // it, and L = 0 with a clear sign bit is zero. The reordered buffer is
  // read atom by atom (16 rows x 32 k, 512 consecutive nibbles: SPEC §1.5),
  // with each row's 16 values built once per group (N % 128 == 0 and
  // group_size % 128 == 0: a tile's rows are whole atoms, groups whole atoms).
  const AtomIndex& at = atom_index();
  auto decode_b = [&](int64_t n0, int64_t rows, float* bt) {
    float value[16][16];  // [row in the atom][nibble]
    for (int64_t a = 0; a < rows / 16; ++a) {
      const int64_t nb = n0 / 16 + a;
      for (int64_t kb = 0; kb < K / 32; ++kb) {
        if ((kb * 32) % G == 0) {
          for (int r = 0; r < 16; ++r) {
            const uint8_t* t = tab + ((kb * 32 / G) * N + nb * 16 + r) * 8;
            for (uint32_t v = 0; v < 16; ++v) {
              const uint32_t L = v & 7;
              const float e = e4m3_to_float(t[L]);
              value[r][v] = (v & 8) ? e : (L == 0 ? 0.f : -e);
            }
          }
        }
        const uint32_t* words = b + (nb + (N / 16) * kb) * 64;  // the atom's 512 nibbles
        float* dst = bt + kb * 32 * cpu::kTileN + a * 16;
        for (int o = 0; o < 512; ++o) {
          const uint32_t v = (words[o / 8] >> (4 * (o % 8))) & 0xF;
          dst[at.k[o] * cpu::kTileN + at.n[o]] = value[at.n[o]][v];
        }
      }
    }
  };
  auto store = [&](int64_t m, int64_t n, float acc) {
    const float d = p.channel_scales[p.channel_vector ? n : 0] * (p.token_scales[p.token_vector ? m : 0] * acc);
    if (p.out_bf16) {
      static_cast<c10::BFloat16*>(p.out)[m * N + n] = c10::BFloat16(d);
    } else {
      static_cast<c10::Half*>(p.out)[m * N + n] = c10::Half(d);
    }
  };
  cpu::gemm_nt(af.data(), M, N, K, decode_b, store);
}

void encode_and_reorder_int4b_grouped_cpu(const int32_t* in, int32_t* out, int32_t* descriptor,
                                          const GroupedReorderProblem& p) {
  const ReorderProblem one{p.N, p.K};
  const int64_t words = p.N * p.K / 8;  // per expert
  for (int64_t e = 0; e < p.E; ++e) {
    encode_and_reorder_int4b_cpu(in + e * words, out + e * words, one);
    reorder_descriptor(p.N, p.K, descriptor + 3 * e);
  }
}

namespace {
// docs/SPEC-MOE.md §5.0.3: an expert's row range inside [0, M) and its
// problem-size row equal to (N, m_e, K).
bool moe_expert_ok(const MoeMmProblem& p, int64_t e) {
  const int32_t* ps = p.problem_sizes + 3 * e;
  const int64_t off = p.expert_offsets[e], m = ps[1];
  return ps[0] == p.N && ps[2] == p.K && m >= 0 && off >= 0 && off <= p.M && m <= p.M - off;
}

// Expert e's rows as a dense cutlass_w4a8_mm problem.
MmProblem moe_expert_problem(const MoeMmProblem& p, int64_t e) {
  const int64_t off = p.expert_offsets[e];
  MmProblem d;
  d.M = p.problem_sizes[3 * e + 1];
  d.N = p.N;
  d.K = p.K;
  d.group_size = p.group_size;
  d.a = static_cast<const uint8_t*>(p.a) + off * p.K;
  d.b = static_cast<const uint8_t*>(p.b) + e * p.N * p.K / 2;
  d.group_scales = static_cast<const uint8_t*>(p.group_scales) + e * (p.K / p.group_size) * p.N * 8;
  d.channel_scales = p.b_scales + e * p.N;
  d.channel_vector = true;
  d.token_scales = p.a_scales + off;
  d.token_vector = true;
  d.out = static_cast<c10::BFloat16*>(p.out) + off * p.N;
  d.out_bf16 = true;
  return d;
}
}  // namespace

// Rows of no expert are not written; an expert with broken metadata gets NaN
// in its rows that lie inside the output (docs/SPEC-MOE.md §5.0.3).
void w4a8_moe_mm_cpu(const MoeMmProblem& p) {
  for (int64_t e = 0; e < p.E; ++e) {
    if (moe_expert_ok(p, e)) {
      const MmProblem d = moe_expert_problem(p, e);
      if (d.M > 0) w4a8_mm_cpu(d);
      continue;
    }
    const int64_t off = p.expert_offsets[e], m = p.problem_sizes[3 * e + 1];
    const int64_t lo = std::clamp<int64_t>(off, 0, p.M);
    const int64_t hi = off < 0 ? lo : lo + std::clamp<int64_t>(m, 0, p.M - lo);
    auto* out = static_cast<c10::BFloat16*>(p.out);
    for (int64_t i = lo * p.N; i < hi * p.N; ++i) out[i] = c10::BFloat16(NAN);
  }
}

}  // namespace lowbit::w4a8
