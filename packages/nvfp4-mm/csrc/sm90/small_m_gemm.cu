// SM90 small-M NVFP4 GEMM (decode-sized M): the weights go from global memory
// straight into registers, no shared-memory staging and no block-wide barrier
// per K step.
//
// Why: the multistage kernel of mm_sm90.cu is instruction-bound at small M
// (ncu, M = 1, 8192²: ~370 warp-instructions per 2048 weights, issue 59%
// busy, DRAM 39%): cp.async address math for every 32-byte B row piece,
// stage bookkeeping and a __syncthreads per 64 K. Here each warp owns
// NT n8-tiles (8 NT weight rows), and a lane loads its whole share of a
// 128-wide K chunk of a row with one 16-byte load (L2 prefetch hint 128 B):
// 32 nibbles = exactly two 16-element scale blocks, whose two scale bytes
// are adjacent in the swizzled scale layout (one 2-byte load). (LPC = 2
// tiles: two 16-byte loads and 256 K per chunk, one 4-byte scale load.) DEPTH chunks are in flight per
// lane (a register ring); nothing is shared between warps except the A
// fragments, which are small (M <= 64 rows, fp16, written by the pre-pass
// in fragment order) and come into a double-buffered shared-memory window
// of WIN chunks with one barrier per window.
//
// K permutation: lane (g, t) owns K [128 LPC c + 32 LPC t, + 32 LPC) of
// chunk c; its B register (k-step s, reg rb) is the nibble pair (i, i + 4)
// of its 32-bit word s/2 with i = 2 (s%2) + rb, i.e. K offsets 8 (s/2) + i
// and + 4. The pre-pass writes A in the same order (prepass_a.h, ksteps =
// 8 LPC), so every dot product is unchanged. Dequantization is the subnormal trick of
// fp4_fp16.cuh (e2m1 * 2^-14, 4 integer ops per pair) and one HMUL2 for the
// block scale; the epilogue multiplies by alpha * 2^14.
#include <lowbit/cuda_utils.h>

#include "epilogue.cuh"
#include "families.h"
#include "fp4_fp16.cuh"
#include "mma_params.h"
#include "mma_sync.cuh"
#include "prepass_a.h"

#include <algorithm>
#include <array>
#include <atomic>

namespace nvfp4_mm::sm90 {
namespace {

constexpr int kWarps = 4;


// MT m16 tiles (all warps share them), NT n8 tiles per warp, LPC 16-byte
// loads per lane and row per chunk (chunk = 128 LPC of K: a row's 64 LPC
// bytes come in per warp), DEPTH chunks of B in flight per lane, WIN chunks
// of A per shared-memory window, L2PF: L2 prefetch size hint of the B loads
// (0: none, 128 or 256 bytes), MINB: CTAs per SM the register allocation
// must allow (__launch_bounds__).
template <int MT_, int NT_, int LPC_, int DEPTH_, int WIN_, int L2PF_ = 0, int MINB_ = 1>
struct SmallCfg {
  static constexpr int MT = MT_, NT = NT_, LPC = LPC_, DEPTH = DEPTH_, WIN = WIN_, L2PF = L2PF_, MINB = MINB_;
  static constexpr int THREADS = 32 * kWarps;
  static constexpr int BM = 16 * MT, BN = 8 * NT * kWarps;
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

// The scale bytes of a lane's chunk (LPC = 1: blocks 2t, 2t+1; LPC = 2:
// blocks 4t .. 4t+3, one 4-block group of the swizzled layout); the 512-byte
// scale tiles are shared by the CTA's warps, so these stay L1-cacheable.
template <int LPC>
__device__ __forceinline__ uint32_t ldg_scales(const void* p) {
  if constexpr (LPC == 1) {
    unsigned short r;
    asm volatile("ld.global.nc.u16 %0, [%1];\n" : "=h"(r) : "l"(p));
    return r;
  } else {
    uint32_t r;
    asm volatile("ld.global.nc.u32 %0, [%1];\n" : "=r"(r) : "l"(p));
    return r;
  }
}

template <class Cf>
__global__ void __launch_bounds__(Cf::THREADS, Cf::MINB) small_m_kernel(const MmaParams p) {
  extern __shared__ __align__(128) uint8_t smem[];
  constexpr int MT = Cf::MT, NT = Cf::NT, LPC = Cf::LPC, DEPTH = Cf::DEPTH, WIN = Cf::WIN;
  constexpr int KSTEPS = Cf::KSTEPS, CHUNK_K = Cf::CHUNK_K;
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
    soff[jt] = static_cast<uint32_t>(((n / 128) * p.C4 + 2 * LPC * c0 + (LPC * t) / 2) * 512 + (n % 32) * 16 +
                                     ((n / 32) % 4) * 4 + (2 * LPC * t) % 4);
  }
  constexpr int SCALE_STEP = 2 * LPC * 512;  // scale-layout bytes per chunk
  auto load_b = [&](int j, uint4 (&bq)[NT][LPC], uint32_t (&sq)[NT]) {
#pragma unroll
    for (int jt = 0; jt < NT; ++jt) {
      const bool rok = nok >> jt & 1;
#pragma unroll
      for (int l = 0; l < LPC; ++l)
        bq[jt][l] = rok && j < jlim[l] ? ldg_stream<Cf::L2PF>(bbase + jt * bstride + j * (CHUNK_K / 2) + 16 * l)
                                       : make_uint4(0, 0, 0, 0);
      uint32_t sv = rok && j < jlim[0] ? ldg_scales<LPC>(sb_e + soff[jt] + j * SCALE_STEP) : 0u;
      // Scale bytes past K (padding of the scale layout) may hold anything:
      // 0 x NaN would poison the sum.
      if constexpr (LPC == 2) sv = j < jlim[1] ? sv : (sv & 0xFFFFu);
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
      // Block scales as broadcast half2: sc[jt][blk], blk = 0 .. 2 LPC - 1.
      uint32_t sc[NT][2 * LPC];
#pragma unroll
      for (int jt = 0; jt < NT; ++jt) {
#pragma unroll
        for (int h = 0; h < LPC; ++h) {
          const uint32_t h2 = e4m3x2_to_half2(static_cast<uint16_t>(s[jt] >> (16 * h)));
          sc[jt][2 * h] = __byte_perm(h2, 0, 0x1010);
          sc[jt][2 * h + 1] = __byte_perm(h2, 0, 0x3232);
        }
      }
#pragma unroll
      for (int ks = 0; ks < KSTEPS; ++ks) {
        const int q = ks >> 1;  // 32-bit word of the lane's 4 LPC words
        uint32_t bf[NT][2];
#pragma unroll
        for (int jt = 0; jt < NT; ++jt) {
          const uint4& v = b[jt][q >> 2];
          const uint32_t wd = (q & 3) == 0 ? v.x : (q & 3) == 1 ? v.y : (q & 3) == 2 ? v.z : v.w;
          const uint32_t r0 = (ks & 1) ? e2m1x2_raw<2>(wd) : e2m1x2_raw<0>(wd);
          const uint32_t r1 = (ks & 1) ? e2m1x2_raw<3>(wd) : e2m1x2_raw<1>(wd);
          bf[jt][0] = hmul2(r0, sc[jt][q >> 1]);
          bf[jt][1] = hmul2(r1, sc[jt][q >> 1]);
        }
#pragma unroll
        for (int i = 0; i < MT; ++i) {
          const uint4 af = sA[((i * WIN + jj) * KSTEPS + ks) * 32 + lane];
#pragma unroll
          for (int jt = 0; jt < NT; ++jt) mma_f16(acc[i][jt], af, bf[jt][0], bf[jt][1]);
        }
      }
      load_b(j + DEPTH, b, s);  // refill the slot just consumed
    }
  }
  lowbit::pdl_launch_dependents();  // the reduce kernel (it waits for our completion)

  // Epilogue: rows g and g + 8 of each m-tile, two adjacent columns per lane.
  const float scale = p.alpha[sl.e] * 16384.f;  // splits == 1 only: undo the 2^-14 of the B values
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

template <class Cf>
MmaKernel make_kernel() {
  return MmaKernel{&small_m_kernel<Cf>, Cf::CHUNK_K, Cf::BM, Cf::BN, Cf::THREADS, Cf::SMEM, 16384.f};
}

// The tiles of kSmallMNames. H200 sweeps (perf/nvfp4-mm/NOTES.md, v5): the
// 16x128 tile is the fastest or within 2% of the variants tried at M = 1 and
// 16 on the 8 SPEC shapes; 64x128 at M = 64 beats the multistage 64x128 tile
// by 9% summed over the shapes.
const MmaKernel kTiles[kSmallMTiles] = {
    // MT NT LPC DEPTH WIN L2PF MINB
    make_kernel<SmallCfg<1, 4, 1, 2, 4, 128, 4>>(),  // 16x128: M <= 16
    make_kernel<SmallCfg<4, 4, 1, 2, 2, 128, 2>>(),  // 64x128: 16 < M <= 64
};

int pick_tile(int64_t M) { return M <= 16 ? 0 : 1; }

// The smallest power of two (equal parts of the usual power-of-two K)
// giving >= 3.5 CTAs per SM, keeping >= 4 chunks (512 of K) per split.
// H200 split sweeps at M = 1 and 16 (v5): the best or within 3% on all 8
// SPEC shapes (8192² at 8 splits: 512 CTAs; 28672x4096 at 4: 896 CTAs;
// 6144x4096 stops at 8 (4 chunks): 16 splits were 17% slower).
int pick_splits(const Problem& pr, const MmaKernel& k, int64_t sms) {
  if (pr.splits > 0) return static_cast<int>(pr.splits);
  const int64_t C = (pr.K + k.chunk_k - 1) / k.chunk_k;
  const int64_t tiles = ((pr.N + k.bn - 1) / k.bn) * ((pr.M + k.bm - 1) / k.bm);
  const int64_t cap = std::max<int64_t>(1, std::min<int64_t>(C / 4, 64));
  int splits = 1;
  while (2 * tiles * splits < 7 * sms && splits * 2 <= cap) splits *= 2;
  return splits;
}

// Per tile: the devices where its shared memory is opted into (split_k_launch.cu).
std::array<std::atomic<uint64_t>, kSmallMTiles> smem_done{};

}  // namespace

const char* const kSmallMNames[kSmallMTiles] = {"small_m_16x128", "small_m_64x128"};

void run_small_m(const Problem& pr, int tile) {
  cudaStream_t stream = lowbit::current_stream(pr.a);
  const int64_t sms = lowbit::device_sm_count(pr.a.get_device_index());
  if (tile < 0) tile = pick_tile(pr.M);
  const MmaKernel& k = kTiles[tile];
  Tensor afrag = prepass_a(pr, k.chunk_k / 16, stream);
  launch_mma_split_k(pr, k, afrag, pick_splits(pr, k, sms), smem_done[tile], stream, sms);
}

void run_small_m_group(const GroupProblem& p, int tile) { run_mma_group(p, kTiles[tile], smem_done[tile]); }

}  // namespace nvfp4_mm::sm90
