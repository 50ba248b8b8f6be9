// SM90 FP4 GEMM with warpgroup MMAs (wgmma) and the weights dequantized in
// registers: cutlass_fp4_group_mm (docs/SPEC-MOE.md §5.2) and
// cutlass_mxfp4_group_mm (§5.3) above 16 rows per expert, and the dense
// cutlass_scaled_fp4_mm (docs/SPEC.md §2.2) for 16 < M <= 512.
//
// Why: the mma.sync kernels (sm90_multistage.cuh) stop near 200 TFLOP/s on
// the H200, where bf16 torch._grouped_mm reaches 500-700; and the dense op's
// answer above M = 512 (dequantize both operands to fp16 in memory, then a
// CUTLASS GEMM) would write 15 GB for DeepSeek-R1's gate/up experts. So the
// weights stay 4-bit until registers (perf/nvfp4-mm/NOTES.md v6):
//  - roles swapped, out^T = W X^T: the weights are wgmma's A operand, the one
//    that may come from registers; the routed activations are the B operand,
//    from shared memory;
//  - one producer thread streams, per 128-wide K tile, the tile's 128 or 256
//    weight rows (TMA: one 2-D map over all experts' [E N, K/2] bytes, so no
//    per-expert descriptor), their scale bytes (one bulk copy per 128 rows:
//    128 rows x 128 K of the 128x4 swizzled layout are whole 512-byte tiles)
//    and the activation tile (one bulk copy of a block that the pre-pass
//    below wrote already in wgmma's 128B-swizzled K-major layout), into a
//    ring of 3 or 4 stages;
//  - two consumer warpgroups, 64 or 128 weight rows each: a thread turns its
//    nibble pairs into the wgmma A fragment of the next k16 step (the
//    format's exact bit placement and scale product, sm90_formats.cuh) while
//    the current step's wgmma runs; fp32 accumulation; the epilogue goes
//    through shared memory (the accumulator holds out^T) for 16-byte stores
//    of out rows, alpha and the optional bias applied in fp32.
// Tiles: BN rows of one expert x 128 or 256 weight rows (the tile table of
// sm90_group.cuh with bm = BN; dense: one expert). Grouped calls never split
// K, so an expert's rows do not depend on the other experts (batch
// invariance). Dense calls may: where the tiles leave SMs idle (M = 128 on a
// 8192-row layer is 64 tiles of 128x128 on 132 SMs), S splits of the K tiles
// each store unscaled fp32 partials [S][M][N] straight from the fragment, and
// split_k_reduce_kernel (sm90_epilogue.cuh) adds them in split order
// (deterministic) and applies the output formula.
// Persistent: one CTA per SM walks the works (split-major, then the weight
// blocks of a row tile side by side, so they share its activations in L2);
// the producer runs ahead into the next work (its expert lookup included)
// while the consumers finish the current one, and the epilogue has its own
// buffer.
// K order inside every 128-wide K tile, the small-M kernel's (chunk 128):
// thread (g, t) of a warp owns K [128 c + 32 t, + 32) of its weight rows
// (one 16-byte shared-memory load each); at k16 step s its A registers hold
// the nibble pairs (i, i + 4), i = 2 (s % 2) + {0, 1}, of its 32-bit word
// s / 2. The pre-pass puts every activation at the wgmma B position that
// meets the same K (the activation tile layout below), so every dot
// product is unchanged.
#pragma once

#include <cuda.h>
#include <cute/arch/mma_sm90_gmma.hpp>
#include <cutlass/cuda_host_adapter.hpp>

#include <lowbit/cuda_utils.h>
#include <lowbit/fp4_gemm/sm90_epilogue.cuh>
#include <lowbit/fp4_gemm/sm90_formats.cuh>
#include <lowbit/fp4_gemm/sm90_group.cuh>
#include <lowbit/fp4_gemm/sm90_params.h>
#include <lowbit/nvfp4_codec.h>

#include <atomic>
#include <optional>
#include <type_traits>
#include <utility>

namespace lowbit::fp4_gemm::sm90 {
namespace wgmma_group {

constexpr int kBK = 128;        // K per pipeline stage (8 k16 steps)
constexpr int kThreads = 384;   // warpgroup 0 produces, 1 and 2 consume

// A CTA tile: BN activation rows of one expert x BM = 2 WGR weight rows
// (consumer warpgroup cw owns weight rows [WGR cw, + WGR): WGR / 64 wgmmas
// per k16 step).
template <int BN, int WGR>
struct Tile {
  static_assert(BN == 64 || BN == 128, "wgmma N of the activation tile");
  static_assert(WGR == 64 || WGR == 128, "weight rows per consumer warpgroup");
  static constexpr int BM = 2 * WGR, MT = WGR / 64;
  static constexpr int STAGES = BN == 128 && WGR == 128 ? 3 : 4;  // what fits beside the epilogue buffer
  static constexpr int W_BYTES = BM * kBK / 2;   // packed e2m1 weights, row-major [BM][64 B]
  static constexpr int S_BYTES = BM / 128 * 1024;  // per 128-row block up to two 512-byte scale tiles
  static constexpr int X_HALF = BN * 128;        // one 64-K half of the activation tile (128 B per row)
  static constexpr int X_BYTES = 2 * X_HALF;
  static constexpr int STAGE = W_BYTES + S_BYTES + X_BYTES;
  // The epilogue buffer: out^T of each warpgroup as [BN][WGR + 8] 16-bit
  // values (8 of padding: fewer bank conflicts).
  static constexpr int EPI_STRIDE = WGR + 8;
  static constexpr int EPI_BYTES = 2 * BN * EPI_STRIDE * 2;
  // Barriers full[STAGES] + empty[STAGES], then the tile of each stage's
  // first use by a tile (TileInfo).
  static constexpr int BARRIERS = 2 * STAGES * 8;
  static constexpr int INFO = STAGES * 16;
  static constexpr int SMEM = 1024 /* alignment slack */ + STAGES * STAGE + EPI_BYTES + BARRIERS + INFO;
  static_assert(STAGE % 1024 == 0 && (W_BYTES + S_BYTES) % 1024 == 0, "128B-swizzled tiles need 1024-byte alignment");
  static_assert(SMEM <= 227 * 1024, "shared memory of one CTA per SM");
};

// What the producer tells the consumers about the tile whose first K tile
// is in a stage.
struct TileInfo {
  int64_t row0;  // first out / activation row
  int rows, e;
};

// The wgmma of each format (sm90_formats.cuh: NVFP4 runs fp16, MXFP4 bf16),
// A from registers, both operands K-major.
namespace gmma = cute::SM90::GMMA;
constexpr gmma::Major kK = gmma::Major::K;
template <class Fmt, int BN>
struct Mma;
template <int BN>
struct Mma<Nvfp4, BN> {
  using Op = std::conditional_t<BN == 128, gmma::MMA_64x128x16_F32F16F16_RS<kK, kK>,
                                gmma::MMA_64x64x16_F32F16F16_RS<kK, kK>>;
};
template <int BN>
struct Mma<Mxfp4, BN> {
  using Op = std::conditional_t<BN == 128, gmma::MMA_64x128x16_F32BF16BF16_RS<kK, kK>,
                                gmma::MMA_64x64x16_F32BF16BF16_RS<kK, kK>>;
};

template <class Op, size_t... I>
__device__ __forceinline__ void wgmma(const uint32_t (&a)[4], uint64_t desc, float* acc, std::index_sequence<I...>) {
  Op::fma(a[0], a[1], a[2], a[3], desc, acc[I]...);
}

// Shared-memory matrix descriptor of a K-major, 128B-swizzled operand whose
// 8-row groups are 1024 bytes apart (PTX ISA, "matrix descriptor"): start
// address >> 4, leading offset unused for this layout (1), stride offset
// 1024 >> 4, swizzle mode 1 (128B).
__device__ __forceinline__ uint64_t smem_desc(uint32_t addr) {
  return uint64_t((addr & 0x3FFFF) >> 4) | (uint64_t(1) << 16) | (uint64_t(1024 >> 4) << 32) | (uint64_t(1) << 62);
}

template <class T>
__device__ __forceinline__ uint32_t bit_cast_u32(const T& v) {
  static_assert(sizeof(T) == 4, "a 32-bit pair");
  uint32_t u;
  memcpy(&u, &v, 4);
  return u;
}

__device__ __forceinline__ void mbar_init(uint32_t bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count));
}
__device__ __forceinline__ void mbar_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  asm volatile(
      "{\n"
      ".reg .pred done;\n"
      "WAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra WAIT;\n"
      "}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
}
// TMA: the box at (x bytes, y rows) of the 2-D map into shared memory.
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const CUtensorMap* map, uint32_t bar, int x, int y) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4}], [%2];\n" ::"r"(
          dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(bar), "r"(x), "r"(y)
      : "memory");
}
// Bulk copy of `bytes` (a multiple of 16, both addresses 16-byte aligned).
__device__ __forceinline__ void bulk_load(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(dst),
               "l"(src), "r"(bytes), "r"(bar)
               : "memory");
}

// The activation tile that wgmma's B operand reads: two 64-K halves of
// BN x 128 bytes; row n at 128 n; its 16-byte chunk j (logical k positions
// 8 j .. 8 j + 7 of the half) at physical chunk j XOR n % 8 (the 128B swizzle
// the descriptor names). Logical position kk = 16 s + p (k16 step s) meets
// the K that the weights' A fragment holds there: p = 2 j' + e holds the
// nibble pair i = 2 (s % 2) + j' / 4 of word s / 2 of the 32-K run
// q = j' % 4, element e (nibble i + 4 e), i.e. K 32 q + 8 (s / 2) + i + 4 e.
// So the pair of 16-bit values at (s, j') is exactly what the weights' decode
// (Fmt::b_raw<i>, Fmt::b_scaled) makes of that word: the activations are
// decoded by the same formula, and for NVFP4 carry its 2^-14 too.

// The activation pre-pass: a [M, K/2] + 128x4-swizzled scales -> per CTA row
// tile and K tile, one block of BN x 128 16-bit values in the layout above
// (rows past the tile's slice and K past K are zero). One thread per 16-byte
// chunk (a warp writes 512 contiguous bytes): physical chunk pc of row n in
// half h is logical chunk c = pc ^ (n % 8), i.e. step s = 4 h + c / 2, the
// pair i = c % 4 of word 2 h + c / 4 of each of the row's four 32-K runs.
// A CUDA block lies in one block of the output, whose expert it looks up once.
constexpr int kPrepassThreads = 256;
template <class Fmt, int BN>
__global__ void __launch_bounds__(kPrepassThreads) prepass_x_kernel(const uint8_t* __restrict__ a,
                                                                    const uint8_t* __restrict__ sa,
                                                                    uint4* __restrict__ x, int M, int K, int KT,
                                                                    int C4, const Groups groups) {
  using L = Tile<BN, 64>;  // the activation tile does not depend on WGR
  constexpr int kChunksPerBlock = L::X_BYTES / 16;
  static_assert(kChunksPerBlock % kPrepassThreads == 0, "a CUDA block lies in one output block");
  lowbit::pdl_wait();  // A may come from the previous kernel
  lowbit::pdl_launch_dependents();
  const int64_t idx = blockIdx.x * int64_t(kPrepassThreads) + threadIdx.x;  // grid: exactly the chunks
  const int64_t blk = idx / kChunksPerBlock;  // tile * KT + kt
  const int kt = static_cast<int>(blk % KT), tile = static_cast<int>(blk / KT);
  __shared__ Slice block_slice;
  if (threadIdx.x == 0) block_slice = slice_of(groups, tile, M);
  __syncthreads();
  const Slice sl = block_slice;
  const int cb = static_cast<int>(idx % kChunksPerBlock);
  const int h = cb / (BN * 8), n = (cb / 8) % BN, c = (cb % 8) ^ (n % 8);
  const int wd = 2 * h + c / 4, i = c % 4;
  uint32_t v[4] = {0, 0, 0, 0};
  if (n < sl.rows) {
    const uint8_t* row = a + (sl.row0 + n) * int64_t(K / 2) + kBK / 2 * kt;
    const uint8_t* sas = sa + sl.sa_off;
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const int k = kBK * kt + 32 * q + 8 * wd;  // the word's first K
      if (k < K) {  // K % 32 == 0: a run is wholly in or out
        const uint32_t word = *reinterpret_cast<const uint32_t*>(row + 16 * q + 4 * wd);
        const uint32_t raw = i == 0 ? Fmt::template b_raw<0>(word) : i == 1 ? Fmt::template b_raw<1>(word)
                           : i == 2 ? Fmt::template b_raw<2>(word) : Fmt::template b_raw<3>(word);
        const uint8_t sb = sas[lowbit::nvfp4::swizzled_offset<int64_t>(sl.local0 + n, k >> Fmt::kBlockLog2, C4)];
        v[q] = Fmt::b_scaled(raw, Fmt::scale_bcast(sb));
      }
    }
  }
  x[idx] = make_uint4(v[0], v[1], v[2], v[3]);
}

struct Params {
  const uint4* x;         // the pre-pass's blocks [tiles][KT]
  const uint8_t* sb;      // b_blockscales (expert 0)
  const float* alpha;     // [E] (formats with an alpha)
  const void* bias;       // [N] in the output dtype, or nullptr
  void* out;
  int M, N, K, KT, C4;
  int nblocks;            // weight blocks of BM rows: ceil(N / BM)
  int dense_tiles;        // row tiles when groups.tile_start is nullptr (dense)
  int out_bf16;
  int splits;             // K splits (dense only; 1: no split, the epilogue stores out)
  int kt_per_split;       // K tiles of a split (KT when splits == 1)
  float* partial;         // splits > 1: [splits][M][N] unscaled fp32 sums
  Groups groups;
};

// The K tiles [kt0, kt1) of work w of `tiles` tiles (split-major).
struct Work {
  int64_t tile;
  int z, kt0, kt1;
};
__device__ __forceinline__ Work work_of(const Params& p, int64_t w, int64_t tiles) {
  const int z = static_cast<int>(w / tiles);
  const int kt0 = z * p.kt_per_split;
  return Work{w % tiles, z, kt0, min(p.KT, kt0 + p.kt_per_split)};
}

template <class Fmt, int BN, int WGR>
__global__ void __launch_bounds__(kThreads, 1) wgmma_group_kernel(const __grid_constant__ CUtensorMap wmap,
                                                                   const Params p) {
  using L = Tile<BN, WGR>;
  using Op = typename Mma<Fmt, BN>::Op;
  constexpr int MT = L::MT, S = L::STAGES;
  constexpr int BPL = 32 / Fmt::kBlock;         // scale blocks of a thread's 32 K
  constexpr int GPT = kBK / (4 * Fmt::kBlock);  // 512-byte scale tiles per K tile and 128 rows
  extern __shared__ uint8_t smem_raw[];
  const uint32_t base = (smem_addr(smem_raw) + 1023) & ~1023u;
  uint8_t* const smem = smem_raw + (base - smem_addr(smem_raw));
  const uint32_t bars = base + S * L::STAGE + L::EPI_BYTES;  // full[S], then empty[S]
  TileInfo* const info = reinterpret_cast<TileInfo*>(smem + S * L::STAGE + L::EPI_BYTES + L::BARRIERS);
  auto full = [&](int st) { return bars + 8 * st; };
  auto empty = [&](int st) { return bars + 8 * (S + st); };

  const int wg = threadIdx.x / 128;
  if (threadIdx.x == 0) {
    for (int st = 0; st < S; ++st) {
      mbar_init(full(st), 1);
      mbar_init(empty(st), 8);  // one arrival per consumer warp
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  // Row tiles of the whole call (grouped: written by the tile table kernel).
  const int64_t tiles = int64_t(p.groups.tile_start ? __ldg(p.groups.tile_start + p.groups.E) : p.dense_tiles) *
                        p.nblocks;
  const int64_t works = tiles * p.splits;

  if (wg == 0) {  // producer
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n");
    if (threadIdx.x != 0) return;
    asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(&wmap)) : "memory");
    int it = 0;  // K tiles issued by this CTA
    for (int64_t w = blockIdx.x; w < works; w += gridDim.x) {
      const Work wk = work_of(p, w, tiles);
      const int rt = static_cast<int>(wk.tile / p.nblocks), n0 = static_cast<int>(wk.tile % p.nblocks) * L::BM;
      const Slice sl = slice_of(p.groups, rt, p.M);
      const uint8_t* sb_tile = p.sb + sl.e * p.groups.sb_bytes + int64_t(n0 / 128) * p.C4 * 512;
      const uint4* x_tile = p.x + int64_t(rt) * p.KT * (L::X_BYTES / 16);
      const int wrow = sl.e * p.N + n0;
      // 128-row blocks of the tile inside the expert's padded scale rows (a
      // block past N has no scale region: its rows are never stored).
      const int sblocks = min(L::BM / 128, (p.N - n0 + 127) / 128);
      for (int kt = wk.kt0; kt < wk.kt1; ++kt, ++it) {
        const int st = it % S;
        if (it >= S) mbar_wait(empty(st), ((it / S) - 1) & 1);
        if (kt == wk.kt0) info[st] = TileInfo{sl.row0, sl.rows, sl.e};  // published by the arrive below
        const int groups = min(GPT, p.C4 - GPT * kt);  // K % 128 != 0: the last tile may have fewer
        const uint32_t sbytes = 512u * groups;
        const uint32_t stage = base + st * L::STAGE;
        mbar_expect_tx(full(st), L::W_BYTES + sblocks * sbytes + L::X_BYTES);
        tma_load_2d(stage, &wmap, full(st), kt * (kBK / 2), wrow);
        for (int b = 0; b < sblocks; ++b)
          bulk_load(stage + L::W_BYTES + 1024 * b, sb_tile + int64_t(b) * p.C4 * 512 + int64_t(GPT) * kt * 512,
                    sbytes, full(st));
        bulk_load(stage + L::W_BYTES + L::S_BYTES, x_tile + int64_t(kt) * (L::X_BYTES / 16), L::X_BYTES, full(st));
      }
    }
    return;
  }

  // Consumers: warpgroup cw owns weight rows [WGR cw, + WGR) of the tile, m64
  // block mt of them rows [WGR cw + 64 mt, + 64); a thread rows r and r + 8
  // of each, r = WGR cw + 64 mt + 16 warp + g.
  asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n");
  const int cw = wg - 1, warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32;
  const int g = lane / 4, t = lane % 4;
  int roff[MT][2], soff[MT][2];  // weight byte and scale byte offsets in a stage
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = WGR * cw + 64 * mt + 16 * warp + g + 8 * h, rr = r % 128;
      roff[mt][h] = r * 64 + 16 * t;
      soff[mt][h] = L::W_BYTES + (r / 128) * 1024 + (BPL * t / 4) * 512 + (rr % 32) * 16 + ((rr / 32) % 4) * 4 +
                    (BPL * t) % 4;
    }
  uint16_t* const epi = reinterpret_cast<uint16_t*>(smem + S * L::STAGE) + cw * BN * L::EPI_STRIDE;

  int it = 0;  // K tiles consumed by this CTA
  for (int64_t w = blockIdx.x; w < works; w += gridDim.x) {
    const Work wk = work_of(p, w, tiles);
    const int n0 = static_cast<int>(wk.tile % p.nblocks) * L::BM;
    float acc[MT][BN / 2];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int i = 0; i < BN / 2; ++i) acc[mt][i] = 0.f;
    TileInfo ti;
    uint32_t af[2][MT][4];
    for (int kt = wk.kt0; kt < wk.kt1; ++kt, ++it) {
      const int st = it % S;
      const uint8_t* stage = smem + st * L::STAGE;
      mbar_wait(full(st), (it / S) & 1);
      if (kt == wk.kt0) ti = info[st];
      // K past the end: zero weights and scales (the scale bytes there may hold anything).
      const bool kin = kt * kBK + 32 * t < p.K;
      uint4 w[MT][2];
      uint32_t sc[MT][2][BPL];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          w[mt][h] = kin ? *reinterpret_cast<const uint4*>(stage + roff[mt][h]) : make_uint4(0, 0, 0, 0);
          uint32_t sv = 0;
          if (kin) sv = BPL == 2 ? *reinterpret_cast<const uint16_t*>(stage + soff[mt][h]) : stage[soff[mt][h]];
          Fmt::template lane_scales<BPL>(sv, sc[mt][h]);
        }
      const uint32_t xdesc_base = base + st * L::STAGE + L::W_BYTES + L::S_BYTES;
#pragma unroll
      for (int s = 0; s < 8; ++s) {
        const int q = s / 2;
        constexpr int kWordsPerBlock = Fmt::kBlock / 8;
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          uint32_t lo[2], hi[2];
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const uint4& v = w[mt][h];
            const uint32_t wd = q == 0 ? v.x : q == 1 ? v.y : q == 2 ? v.z : v.w;
            lo[h] = Fmt::b_scaled((s & 1) ? Fmt::template b_raw<2>(wd) : Fmt::template b_raw<0>(wd),
                                  sc[mt][h][q / kWordsPerBlock]);
            hi[h] = Fmt::b_scaled((s & 1) ? Fmt::template b_raw<3>(wd) : Fmt::template b_raw<1>(wd),
                                  sc[mt][h][q / kWordsPerBlock]);
          }
          // The m16n8k16-style A fragment: rows r / r + 8 x k pairs 2t / 2t + 8.
          uint32_t (&a)[4] = af[s % 2][mt];
          a[0] = lo[0];
          a[1] = lo[1];
          a[2] = hi[0];
          a[3] = hi[1];
#pragma unroll
          for (int i = 0; i < 4; ++i) cute::warpgroup_fence_operand(a[i]);
        }
        cute::warpgroup_arrive();
        const uint64_t desc = smem_desc(xdesc_base + (s / 4) * L::X_HALF + (s % 4) * 32);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) wgmma<Op>(af[s % 2][mt], desc, acc[mt], std::make_index_sequence<BN / 2>{});
        cute::warpgroup_commit_batch();
        // The previous step's wgmmas are done: their A registers may be
        // rewritten, and at s == 0 the previous stage is free.
        cute::warpgroup_wait<1>();
        if (s == 0 && kt > wk.kt0 && lane == 0) mbar_arrive(empty((it - 1) % S));
      }
    }
    cute::warpgroup_wait<0>();
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int i = 0; i < BN / 2; ++i) cute::warpgroup_fence_operand(acc[mt][i]);
    if (lane == 0) mbar_arrive(empty((it - 1) % S));  // the work's last stage

    if (p.splits > 1) {
      // A split's partial sums, unscaled: acc[mt][4 j + 2 h + e] is out row
      // 8 j + 2 t + e of the tile, column (weight row) 16 warp + g + 8 h of m64
      // block mt; a warp's store is 8 consecutive floats of 4 rows.
      float* const part = p.partial + wk.z * int64_t(p.M) * p.N;
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int col = n0 + WGR * cw + 64 * mt + 16 * warp + g + 8 * h;
          if (col >= p.N) continue;
#pragma unroll
          for (int j = 0; j < BN / 8; ++j)
#pragma unroll
            for (int e = 0; e < 2; ++e) {
              const int m = 8 * j + 2 * t + e;
              if (m < ti.rows) part[(ti.row0 + m) * int64_t(p.N) + col] = acc[mt][4 * j + 2 * h + e];
            }
        }
      continue;
    }

    // Epilogue: acc holds out^T (row = weight row, column = activation row).
    // Scaled (and biased) in fp32, rounded once to the output type, then
    // transposed into the warpgroup's buffer by stmatrix .trans: a thread's
    // packed pair (acc[4j + 2h], acc[4j + 2h + 1]) is its fragment of the
    // 8x8 block (weight rows 16 warp + 8 h + 0..7 of m64 block mt, activation
    // rows 8 j + 0..7), stored as 8 activation rows of 8 consecutive out
    // columns (16 bytes each); then 16-byte stores of out rows.
    float scale = Fmt::kUnscale * Fmt::kUnscale;  // both operands carry the format's factor
    if constexpr (Fmt::kAlpha) scale *= p.alpha[ti.e];
    const bool has_bias = p.bias != nullptr;
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      float bias[2] = {0.f, 0.f};  // this thread's two weight rows (g, g + 8)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int col = n0 + WGR * cw + 64 * mt + 16 * warp + g + 8 * h;
        if (has_bias && col < p.N)
          bias[h] = p.out_bf16 ? __bfloat162float(static_cast<const __nv_bfloat16*>(p.bias)[col])
                               : __half2float(static_cast<const __half*>(p.bias)[col]);
      }
      // Lane L names row L % 8 of block L / 8 of each x4 group (blocks
      // (h, j) = (b % 2, 2 jj + b / 2)).
      const int lb = lane / 8, lr = lane % 8;
      const uint32_t row_addr = smem_addr(epi + (8 * (lb / 2) + lr) * L::EPI_STRIDE + 64 * mt + 16 * warp + 8 * (lb % 2));
#pragma unroll
      for (int jj = 0; jj < BN / 16; ++jj) {
        uint32_t r[4];
#pragma unroll
        for (int b = 0; b < 4; ++b) {
          const int i = 4 * (2 * jj + b / 2) + 2 * (b % 2);
          const float y0 = out_value(acc[mt][i], scale, has_bias, bias[b % 2]);
          const float y1 = out_value(acc[mt][i + 1], scale, has_bias, bias[b % 2]);
          r[b] = p.out_bf16 ? bit_cast_u32(__floats2bfloat162_rn(y0, y1)) : bit_cast_u32(__floats2half2_rn(y0, y1));
        }
        asm volatile("stmatrix.sync.aligned.m8n8.x4.trans.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(
                         row_addr + 16 * jj * L::EPI_STRIDE * 2),
                     "r"(r[0]), "r"(r[1]), "r"(r[2]), "r"(r[3])
                     : "memory");
      }
    }
    asm volatile("bar.sync %0, 128;\n" ::"r"(1 + cw) : "memory");
    const int col0 = n0 + WGR * cw;
    constexpr int kChunks = WGR / 8;  // 16-byte pieces of a warpgroup's row
    for (int i = threadIdx.x % 128; i < BN * kChunks; i += 128) {
      const int m = i / kChunks, c = i % kChunks;
      if (m < ti.rows && col0 + 8 * c < p.N)
        *reinterpret_cast<uint4*>(static_cast<uint16_t*>(p.out) + (ti.row0 + m) * int64_t(p.N) + col0 + 8 * c) =
            *reinterpret_cast<const uint4*>(epi + m * L::EPI_STRIDE + 8 * c);
    }
    asm volatile("bar.sync %0, 128;\n" ::"r"(1 + cw) : "memory");  // the buffer is free for the next tile
  }
}

// The weights' TMA map: all experts' rows as one [E N, K/2] byte matrix,
// boxes of `box_rows` rows x 64 bytes (128 K); rows and bytes past the end
// read as zero.
inline CUtensorMap weight_map(const void* b, int64_t rows, int64_t K, int box_rows, const char* op) {
  CUtensorMap map;
  cuuint64_t dims[2] = {cuuint64_t(K / 2), cuuint64_t(rows)};
  cuuint64_t strides[1] = {cuuint64_t(K / 2)};
  cuuint32_t box[2] = {kBK / 2, cuuint32_t(box_rows)};
  cuuint32_t elem[2] = {1, 1};
  const CUresult r = CUTLASS_CUDA_DRIVER_WRAPPER_CALL(cuTensorMapEncodeTiled)(
      &map, CU_TENSOR_MAP_DATA_TYPE_UINT8, 2, const_cast<void*>(b), dims, strides, box, elem,
      CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_NONE, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
      CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  LOWBIT_CHECK(r == CUDA_SUCCESS, op, ": cuTensorMapEncodeTiled failed (", int(r), ")");
  return map;
}

// One GEMM's operands as the launcher needs them.
struct Operands {
  const Tensor* a;     // [M, K/2] packed e2m1 (the tensor that names the device and stream)
  const void* sa;      // activation scales (128x4 swizzled)
  const void* b;       // [E, N, K/2]
  const void* sb;      // weight scales, [E][Np][Kp] swizzled
  const float* alpha;  // [E] (formats with an alpha)
  const void* bias;    // [N] or nullptr
  void* out;           // [M, N], 16-byte aligned rows (N % 8 == 0)
  bool out_bf16;
  int64_t E, M, N, K;
};

// The activation pre-pass and the persistent kernel over at most `row_tiles`
// row tiles of `groups` (grouped: the table's bound; dense: exactly them).
// Dense calls with splits > 1 (trimmed so that no split is empty): S
// partials and split_k_reduce_kernel after the main kernel.
template <class Fmt, int BN, int WGR>
void launch(const Operands& o, const Groups& groups, int64_t row_tiles, std::atomic<uint64_t>& smem_done,
            cudaStream_t stream, const char* op, int splits = 1) {
  using L = Tile<BN, WGR>;
  LOWBIT_CHECK(o.E * o.N < (1ll << 31), op, ": E x N = ", o.E * o.N, " weight rows too many for the SM90 kernels");
  const int KT = static_cast<int>((o.K + kBK - 1) / kBK);
  const int C4 = static_cast<int>((o.K + 4 * Fmt::kBlock - 1) / (4 * Fmt::kBlock));
  const int64_t chunks = row_tiles * KT * (L::X_BYTES / 16);
  Tensor x = lowbit::empty_on(*o.a, {chunks * 4}, lowbit::ScalarType::Int);
  lowbit::launch_kernel(prepass_x_kernel<Fmt, BN>, dim3(static_cast<unsigned>(chunks / kPrepassThreads)),
                        dim3(kPrepassThreads), 0, stream, /*pdl=*/true, o.a->template const_data_ptr<uint8_t>(),
                        static_cast<const uint8_t*>(o.sa), static_cast<uint4*>(x.data_ptr()), static_cast<int>(o.M),
                        static_cast<int>(o.K), KT, C4, groups);
  Params kp{};
  kp.x = static_cast<const uint4*>(x.data_ptr());
  kp.sb = static_cast<const uint8_t*>(o.sb);
  kp.alpha = o.alpha;
  kp.bias = o.bias;
  kp.out = o.out;
  kp.M = static_cast<int>(o.M);
  kp.N = static_cast<int>(o.N);
  kp.K = static_cast<int>(o.K);
  kp.KT = KT;
  kp.C4 = C4;
  kp.nblocks = static_cast<int>((o.N + L::BM - 1) / L::BM);
  kp.dense_tiles = static_cast<int>(row_tiles);
  kp.out_bf16 = o.out_bf16;
  kp.groups = groups;
  const KSplits ks = k_splits(KT, splits);
  kp.kt_per_split = ks.per;
  kp.splits = ks.count;
  std::optional<Tensor> part;
  if (kp.splits > 1) {
    part = lowbit::empty_on(*o.a, {kp.splits * o.M * o.N}, lowbit::ScalarType::Float);
    kp.partial = static_cast<float*>(part->data_ptr());
  }
  const CUtensorMap wmap = weight_map(o.b, o.E * o.N, o.K, L::BM, op);
  auto kernel = wgmma_group_kernel<Fmt, BN, WGR>;
  const int device = o.a->get_device_index();
  opt_into_smem(reinterpret_cast<const void*>(kernel), L::SMEM, device, smem_done);
  const int64_t ctas = std::min<int64_t>(lowbit::device_sm_count(device), row_tiles * kp.nblocks * kp.splits);
  // No PDL: the kernel reads the tile table and the pre-pass's output first.
  lowbit::launch_kernel(kernel, dim3(static_cast<unsigned>(ctas)), dim3(kThreads), L::SMEM, stream, /*pdl=*/false,
                        wmap, kp);
  if (kp.splits > 1)
    launch_split_k_reduce(kp.partial, o.alpha, Fmt::kUnscale * Fmt::kUnscale, o.bias, o.out, o.M * o.N, kp.N,
                          kp.splits, kp.out_bf16, stream);
}

// The whole grouped GEMM of problem `p` (as run_mma_group in sm90_group.cuh)
// with tiles of BN activation rows x 2 WGR weight rows. `op` names the op in
// errors.
template <class Fmt, int BN, int WGR, class GP>
void run(const GP& p, std::atomic<uint64_t>& smem_done, const char* op) {
  cudaStream_t stream = lowbit::current_stream(p.a);
  const int64_t tiles = (p.M + BN - 1) / BN + std::min(p.E, p.M);
  LOWBIT_CHECK(tiles < (1ll << 31) / 4096, op, ": M=", p.M, " with E=", p.E, " too large for the SM90 kernels");
  const Tensor tile_start = launch_tile_table(p, BN, tiles, stream);
  const Groups groups = make_groups<Fmt>(p, BN, tile_start);
  const float* alpha = nullptr;
  if constexpr (Fmt::kAlpha) alpha = p.alphas.template const_data_ptr<float>();
  const Operands o{&p.a, p.sa.data_ptr(), p.b.data_ptr(), p.sb.data_ptr(), alpha, nullptr, p.out.data_ptr(),
                   p.out.scalar_type() == lowbit::ScalarType::BFloat16, p.E, p.M, p.N, p.K};
  launch<Fmt, BN, WGR>(o, groups, tiles, smem_done, stream, op);
}

// The dense GEMM (one expert of M rows; no tile table) with an optional bias,
// its K tiles in `splits` parts.
template <class Fmt, int BN, int WGR>
void run_dense(const Operands& o, int splits, std::atomic<uint64_t>& smem_done, const char* op) {
  Groups g;
  g.bm = BN;
  g.sa_row = lowbit::nvfp4::swizzled_cols(o.K / Fmt::kBlock);
  launch<Fmt, BN, WGR>(o, g, (o.M + BN - 1) / BN, smem_done, lowbit::current_stream(*o.a), op, splits);
}

}  // namespace wgmma_group
}  // namespace lowbit::fp4_gemm::sm90
