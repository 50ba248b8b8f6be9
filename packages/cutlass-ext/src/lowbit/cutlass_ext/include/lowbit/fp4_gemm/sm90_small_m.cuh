// SM90 small-M FP4 GEMM kernel (decode-sized M, dense or one CTA row tile
// per expert slice): the weights go from global memory straight into
// registers, no shared-memory staging and no block-wide barrier per K step.
//
// Why (nvfp4-mm, perf/nvfp4-mm/NOTES.md): the multistage kernel is
// instruction-bound at small M (ncu, M = 1, 8192²: ~370 warp-instructions
// per 2048 weights, issue 59% busy, DRAM 39%): cp.async address math for
// every 32-byte B row piece, stage bookkeeping and a __syncthreads per 64 K.
// Here each warp owns NT n8-tiles (8 NT weight rows), and a lane loads its
// whole share of a 128-wide K chunk of a row with one 16-byte load (L2
// prefetch hint 128 B): 32 nibbles = 32 / block-size scale blocks, whose
// scale bytes are adjacent in the swizzled scale layout (one load). (LPC = 2
// tiles: two 16-byte loads and 256 K per chunk.) DEPTH chunks are in flight
// per lane (a register ring); nothing is shared between warps except the A
// fragments, which are small (M <= 64 rows, written by the pre-pass in
// fragment order) and come into a double-buffered shared-memory window of
// WIN chunks with one barrier per window.
//
// K permutation: lane (g, t) owns K [128 LPC c + 32 LPC t, + 32 LPC) of
// chunk c; its B register (k-step s, reg rb) is the nibble pair (i, i + 4)
// of its 32-bit word s/2 with i = 2 (s%2) + rb, i.e. K offsets 8 (s/2) + i
// and + 4. The pre-pass writes A in the same order (sm90_prepass_a.cuh,
// ksteps = 8 LPC), so every dot product is unchanged. Dequantization is the
// format's bit placement (e2m1_bits.h: about 2.75 integer ops per pair in
// fp16, 4 in bf16) and its scale product; the epilogue multiplies by the
// format's factor (and alpha).
#pragma once

#include <lowbit/cuda_utils.h>
#include <lowbit/fp4_gemm/sm90_epilogue.cuh>
#include <lowbit/fp4_gemm/sm90_formats.cuh>
#include <lowbit/fp4_gemm/sm90_params.h>

namespace lowbit::fp4_gemm::sm90 {

// MT m16 tiles (all 4 warps share them), NT n8 tiles per warp, LPC 16-byte
// loads per lane and row per chunk (chunk = 128 LPC of K: a row's 64 LPC
// bytes come in per warp), DEPTH chunks of B in flight per lane, WIN chunks
// of A per shared-memory window, L2PF: L2 prefetch size hint of the B loads
// (0: none, 128 or 256 bytes), MINB: CTAs per SM the register allocation
// must allow (__launch_bounds__).
template <int MT_, int NT_, int LPC_, int DEPTH_, int WIN_, int L2PF_ = 0, int MINB_ = 1>
struct SmallCfg {
  static constexpr int MT = MT_, NT = NT_, LPC = LPC_, DEPTH = DEPTH_, WIN = WIN_, L2PF = L2PF_, MINB = MINB_;
  static constexpr int WARPS = 4, THREADS = 32 * WARPS;
  static constexpr int BM = 16 * MT, BN = 8 * NT * WARPS;
  static constexpr int KSTEPS = 8 * LPC, CHUNK_K = 16 * KSTEPS;
  static constexpr int CHUNK_A_BYTES = MT * KSTEPS * 32 * 16;  // A fragments of one chunk
  static constexpr int WIN_BYTES = WIN * CHUNK_A_BYTES;
  static constexpr int SMEM = 2 * WIN_BYTES;
  static_assert(LPC == 1 || LPC == 2, "a lane owns 32 or 64 K per chunk");
  static_assert(WIN % DEPTH == 0, "the register ring index must be static inside a window");
};

// 16-byte streaming load of weights: read once, keep out of L1.
template <int L2PF>
__device__ __forceinline__ uint4 ldg_stream(const void* p) {
  uint4 r;
  if constexpr (L2PF == 256)
    asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p));
  else if constexpr (L2PF == 128)
    asm volatile("ld.global.nc.L1::no_allocate.L2::128B.v4.u32 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p));
  else
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p));
  return r;
}

// The BYTES (1, 2 or 4) scale bytes of a lane's chunk, consecutive in the
// swizzled layout; the 512-byte scale tiles are shared by the CTA's warps, so
// these stay L1-cacheable.
template <int BYTES>
__device__ __forceinline__ uint32_t ldg_scales(const void* p) {
  if constexpr (BYTES == 1) {
    unsigned short r;
    asm volatile("ld.global.nc.u8 %0, [%1];\n" : "=h"(r) : "l"(p));
    return r;
  } else if constexpr (BYTES == 2) {
    unsigned short r;
    asm volatile("ld.global.nc.u16 %0, [%1];\n" : "=h"(r) : "l"(p));
    return r;
  } else {
    uint32_t r;
    asm volatile("ld.global.nc.u32 %0, [%1];\n" : "=r"(r) : "l"(p));
    return r;
  }
}

template <class Fmt, class Cf>
__global__ void __launch_bounds__(Cf::THREADS, Cf::MINB) small_m_kernel(const MmaParams p) {
  extern __shared__ __align__(128) uint8_t smem[];
  constexpr int MT = Cf::MT, NT = Cf::NT, LPC = Cf::LPC, DEPTH = Cf::DEPTH, WIN = Cf::WIN;
  constexpr int KSTEPS = Cf::KSTEPS, CHUNK_K = Cf::CHUNK_K;
  constexpr int BPL = 32 * LPC / Fmt::kBlock;  // scale blocks per lane and chunk
  static_assert(BPL == 1 || BPL == 2 || BPL == 4, "a lane's scale bytes are one aligned load");
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int g = lane >> 2, t = lane & 3;
  const int n_warp0 = blockIdx.x * Cf::BN + warp * NT * 8;
  const int mt0 = blockIdx.y * MT;
  const Slice sl = slice_of(p.groups, blockIdx.y, p.M);
  if (sl.rows <= 0) return;  // a grouped call's tile past the experts' end
  const uint8_t* b_e = p.b + sl.e * p.groups.b_bytes;
  const uint8_t* sb_e = p.sb + sl.e * p.groups.sb_bytes;
  const int c0 = blockIdx.z * p.chunks_per_split;
  const int nch = min(p.C, c0 + p.chunks_per_split) - c0;  // >= 1 (host: no empty split)
  const int kb = p.K / 2;
  // This lane owns K [CHUNK_K c + 32 LPC t, + 32 LPC) of chunk c; its load l
  // (32 K) of local chunk j is in range iff j < jlim[l] (K % 32 == 0).
  int jlim[LPC];
#pragma unroll
  for (int l = 0; l < LPC; ++l) jlim[l] = min(nch, (p.K - 32 * (LPC * t + l) + CHUNK_K - 1) / CHUNK_K - c0);

  // Per-lane addresses: one base pointer, n-tile jt at + jt * 8 rows;
  // 32-bit scale offsets. Rows >= N are never loaded.
  const uint8_t* bbase = b_e + (int64_t)(n_warp0 + g) * kb + (int64_t)c0 * (CHUNK_K / 2) + 16 * LPC * t;
  const int64_t bstride = 8 * (int64_t)kb;
  uint32_t soff[NT];
  uint32_t nok = 0;  // bit jt: row of n-tile jt < N
#pragma unroll
  for (int jt = 0; jt < NT; ++jt) {
    const int n = n_warp0 + 8 * jt + g;
    nok |= (n < p.N ? 1u : 0u) << jt;
    soff[jt] = static_cast<uint32_t>(((n / 128) * p.C4 + BPL * c0 + (BPL * t) / 4) * 512 + (n % 32) * 16 +
                                     ((n / 32) % 4) * 4 + (BPL * t) % 4);
  }
  constexpr int SCALE_STEP = BPL * 512;  // scale-layout bytes per chunk
  auto load_b = [&](int j, uint4 (&bq)[NT][LPC], uint32_t (&sq)[NT]) {
#pragma unroll
    for (int jt = 0; jt < NT; ++jt) {
      const bool rok = nok >> jt & 1;
#pragma unroll
      for (int l = 0; l < LPC; ++l)
        bq[jt][l] = rok && j < jlim[l] ? ldg_stream<Cf::L2PF>(bbase + jt * bstride + j * (CHUNK_K / 2) + 16 * l)
                                       : make_uint4(0, 0, 0, 0);
      uint32_t sv = rok && j < jlim[0] ? ldg_scales<BPL>(sb_e + soff[jt] + j * SCALE_STEP) : 0u;
      // Scale bytes past K (padding of the scale layout) may hold anything:
      // 0 x NaN would poison the sum.
      if constexpr (LPC == 2) sv = j < jlim[1] ? sv : (sv & ((1u << (4 * BPL)) - 1));
      sq[jt] = sv;
    }
  };
  // A window w (chunks w*WIN ..) into buffer w % 2; m-tiles past the end
  // re-read the last tile (their rows are never stored).
  const int nwin = (nch + WIN - 1) / WIN;
  auto load_a = [&](int w) {
    uint4* dst = reinterpret_cast<uint4*>(smem + (w & 1) * Cf::WIN_BYTES);
    const int jn = min(WIN, nch - w * WIN);
    constexpr int PER_CHUNK = KSTEPS * 32;  // uint4 per (m-tile, chunk)
    for (int i = threadIdx.x; i < MT * WIN * PER_CHUNK; i += Cf::THREADS) {
      const int mi = i / (WIN * PER_CHUNK), jj = (i / PER_CHUNK) % WIN, e = i % PER_CHUNK;
      if (jj >= jn) continue;
      const int mt = min(mt0 + mi, p.Mt - 1);
      cp_async16(dst + i, p.afrag + ((int64_t)mt * p.C + c0 + w * WIN + jj) * PER_CHUNK + e, true);
    }
    cp_async_commit();
  };

  float acc[MT][NT][4];
#pragma unroll
  for (int i = 0; i < MT; ++i)
#pragma unroll
    for (int jt = 0; jt < NT; ++jt)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][jt][e] = 0.f;

  // The weights are not written by the pre-pass this kernel may overlap
  // (PDL), so the first DEPTH chunks are requested before waiting for A.
  uint4 bq[DEPTH][NT][LPC];
  uint32_t sq[DEPTH][NT];
#pragma unroll
  for (int d = 0; d < DEPTH; ++d) load_b(d, bq[d], sq[d]);
  lowbit::pdl_wait();
  load_a(0);

  for (int w = 0; w < nwin; ++w) {
    cp_async_wait<0>();
    __syncthreads();  // window w visible; every warp is done with window w - 1
    if (w + 1 < nwin) load_a(w + 1);
    const uint4* sA = reinterpret_cast<const uint4*>(smem + (w & 1) * Cf::WIN_BYTES);
#pragma unroll
    for (int jj = 0; jj < WIN; ++jj) {
      const int j = w * WIN + jj;
      if (j >= nch) break;
      uint4 (&b)[NT][LPC] = bq[jj % DEPTH];
      uint32_t (&s)[NT] = sq[jj % DEPTH];
      // Block scales as broadcast pairs: sc[jt][blk], blk = 0 .. BPL - 1.
      uint32_t sc[NT][BPL];
#pragma unroll
      for (int jt = 0; jt < NT; ++jt) Fmt::template lane_scales<BPL>(s[jt], sc[jt]);
#pragma unroll
      for (int ks = 0; ks < KSTEPS; ++ks) {
        const int q = ks >> 1;  // 32-bit word of the lane's 4 LPC words
        constexpr int kWordsPerBlock = Fmt::kBlock / 8;
        uint32_t bf[NT][2];
#pragma unroll
        for (int jt = 0; jt < NT; ++jt) {
          const uint4& v = b[jt][q >> 2];
          const uint32_t wd = (q & 3) == 0 ? v.x : (q & 3) == 1 ? v.y : (q & 3) == 2 ? v.z : v.w;
          const uint32_t r0 = (ks & 1) ? Fmt::template b_raw<2>(wd) : Fmt::template b_raw<0>(wd);
          const uint32_t r1 = (ks & 1) ? Fmt::template b_raw<3>(wd) : Fmt::template b_raw<1>(wd);
          bf[jt][0] = Fmt::b_scaled(r0, sc[jt][q / kWordsPerBlock]);
          bf[jt][1] = Fmt::b_scaled(r1, sc[jt][q / kWordsPerBlock]);
        }
#pragma unroll
        for (int i = 0; i < MT; ++i) {
          const uint4 af = sA[((i * WIN + jj) * KSTEPS + ks) * 32 + lane];
#pragma unroll
          for (int jt = 0; jt < NT; ++jt) Fmt::mma(acc[i][jt], af, bf[jt][0], bf[jt][1]);
        }
      }
      load_b(j + DEPTH, b, s);  // refill the slot just consumed
    }
  }
  lowbit::pdl_launch_dependents();  // the reduce kernel (it waits for our completion)

  // Epilogue: rows g and g + 8 of each m-tile, two adjacent columns per lane.
  const float scale = out_scale<Fmt>(p, sl.e);  // splits == 1 only
  float* part = p.partial + (p.splits > 1 ? (int64_t)blockIdx.z * p.M * p.N : 0);
#pragma unroll
  for (int i = 0; i < MT; ++i) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int lr = i * 16 + g + 8 * h;  // row in the slice
      if (lr >= sl.rows) continue;
#pragma unroll
      for (int jt = 0; jt < NT; ++jt) {
        const int col = n_warp0 + 8 * jt + 2 * t;
        if (col >= p.N) continue;
        const int64_t o = (sl.row0 + lr) * p.N + col;
        if (p.splits > 1)
          *reinterpret_cast<float2*>(part + o) = make_float2(acc[i][jt][2 * h], acc[i][jt][2 * h + 1]);
        else
          store_out_pair(p.out, p.bias, p.out_bf16, o, col, acc[i][jt][2 * h], acc[i][jt][2 * h + 1], scale);
      }
    }
  }
}

template <class Fmt, class Cf>
MmaKernel make_small_m_kernel() {
  return MmaKernel{&small_m_kernel<Fmt, Cf>, Cf::CHUNK_K, Cf::BM, Cf::BN, Cf::THREADS, Cf::SMEM, Fmt::kUnscale};
}

}  // namespace lowbit::fp4_gemm::sm90
