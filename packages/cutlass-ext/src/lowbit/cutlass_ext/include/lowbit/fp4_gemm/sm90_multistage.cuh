// SM90 multistage mma.sync FP4 GEMM kernel (dense or one CTA row tile per
// expert slice). Data flow per call:
//  1. the A pre-pass (sm90_prepass_a.cuh) writes A once as the format's
//     16-bit type in mma.sync A-fragment order (one 16-byte load per lane per
//     k-step).
//  2. this kernel: B (weights) stays 4-bit in memory. cp.async multistage
//     pipeline of {A fragments, packed B rows, B scale bytes}; each warp owns
//     its N-slice (no redundant dequant), converts its B fragment in registers
//     (the format's bit placement, e2m1_bits.h, and its scale
//     product, sm90_formats.cuh) and issues m16n8k16 mma.sync. Split-K over
//     gridDim.z (the caller reduces the partials deterministically).
//
// K-permutation trick: inside every 64-wide K chunk, A and B are permuted the
// same way (the dot product does not care), chosen so that a lane's 16 B
// nibbles are one contiguous 8-byte load inside one scale block (16 or 32
// elements). B mma-fragment register (kstep s, reg rb) of lane (g, t) holds
// the pair p = 2s + rb: physical k = 64c + 16t + 8(p/4) + (p%4) + 4h, h = half.
// The pre-pass writes A in the same logical order.
//
// Launched with programmatic dependent launch where the caller wants: the
// kernel streams its first B stages (weights: not written by the pre-pass)
// before it waits for A.
#pragma once

#include <lowbit/cuda_utils.h>
#include <lowbit/fp4_gemm/sm90_epilogue.cuh>
#include <lowbit/fp4_gemm/sm90_formats.cuh>
#include <lowbit/fp4_gemm/sm90_params.h>

namespace lowbit::fp4_gemm::sm90 {

constexpr int kMultistageChunk = 64;  // K elements per pipeline stage

// Warp grid WM x WN, each warp MT m16 tiles x NT n8 tiles. WM > 1 halves the
// shared-memory A traffic per MMA at the cost of each B fragment being
// dequantized by WM warps.
// KC chunks (64 of K each) per pipeline stage: longer contiguous runs of each
// B row per stage (32*KC bytes) and one barrier per KC chunks.
template <int MT_, int NT_, int WM_, int WN_, int STAGES_, int KC_ = 1>
struct Cfg {
  static constexpr int MT = MT_, NT = NT_, WM = WM_, WN = WN_, STAGES = STAGES_, KC = KC_;
  static constexpr int BM = 16 * MT * WM, BN = 8 * NT * WN, THREADS = 32 * WM * WN;
  static constexpr int A_BYTES = MT * WM * 4 * 32 * 16;
  static constexpr int B_BYTES = BN * 32;
  static constexpr int S_BYTES = (BN >= 128 ? BN / 128 : 1) * 512;
  static constexpr int SUB_BYTES = A_BYTES + B_BYTES + S_BYTES;  // one chunk
  static constexpr int STAGE_BYTES = KC * SUB_BYTES;
  static constexpr int SMEM = STAGES * STAGE_BYTES;
  static_assert(BN % 32 == 0 && (BN < 128 || BN % 128 == 0), "BN must be 32/64 or a multiple of 128");
};

// The 512-byte swizzled scale tile (128 rows x 4 blocks) of 128-row group R
// that holds chunk c's blocks: a 4-block group is 4 * block size / 64 chunks.
template <class Fmt>
__device__ __forceinline__ int64_t scale_tile(const MmaParams& p, int64_t R, int c) {
  constexpr int kChunksPerGroup = 4 * Fmt::kBlock / kMultistageChunk;
  if constexpr (kChunksPerGroup == 1) return R * p.C + c;  // C == C4
  else return R * p.C4 + c / kChunksPerGroup;
}

// Packed B rows and their scale tile of chunk c for an N-tile of BN rows.
template <class Fmt, int BN, int THREADS>
__device__ __forceinline__ void load_bs(const MmaParams& p, uint8_t* sB, uint8_t* sS, int c, int n0) {
  const int tid = threadIdx.x;
  // Packed B: BN rows x 32 bytes (2 x 16 B); rows >= N and the K tail zero-fill.
  const int kb = p.K / 2;
  for (int i = tid; i < BN * 2; i += THREADS) {
    const int r = i >> 1, q = i & 1;
    const int n = n0 + r;
    const int off = 32 * c + 16 * q;
    const bool ok = n < p.N && off < kb;
    const uint8_t* src = p.b + (ok ? (int64_t)n * kb + off : 0);
    cp_async16(sB + r * 32 + q * 16, src, ok);
  }
  // Scale bytes, kept in the global 512-byte-per-(128 rows, 4 blocks) image.
  const int64_t row_blocks = (p.N + 127) / 128;
  if constexpr (BN >= 128) {
    for (int i = tid; i < (BN / 128) * 32; i += THREADS) {
      const int grp = i / 32, piece = i % 32;
      const int64_t R = n0 / 128 + grp;
      const bool ok = R < row_blocks;
      const uint8_t* src = p.sb + (ok ? scale_tile<Fmt>(p, R, c) * 512 + piece * 16 : 0);
      cp_async16(sS + grp * 512 + piece * 16, src, ok);
    }
  } else {
    // BN rows of one 128-row group: rows (n0 % 128) / 32 .. + BN / 32 of each
    // 16-byte row-of-32 record.
    constexpr int PB = BN / 32 * 4;  // bytes per record piece: 4 or 8
    const int64_t R = n0 / 128;
    const int col = ((n0 % 128) / 32) * 4;
    for (int i = tid; i < 32; i += THREADS) {
      const uint8_t* src = p.sb + scale_tile<Fmt>(p, R, c) * 512 + i * 16 + col;
      cp_async_small<PB>(sS + i * 16 + col, src, true);
    }
  }
}

// A fragments of chunk c: MT tiles x 128 uint4, contiguous per (tile, chunk) in global.
template <class Cf>
__device__ __forceinline__ void load_a(const MmaParams& p, uint8_t* sub, int c, int m_tile0) {
  uint4* sA = reinterpret_cast<uint4*>(sub);
  for (int i = threadIdx.x; i < Cf::MT * Cf::WM * 128; i += Cf::THREADS) {
    const int mt = m_tile0 + i / 128;
    const bool ok = mt < p.Mt;
    const uint4* src = p.afrag + ((int64_t)(ok ? mt : 0) * p.C + c) * 128 + (i % 128);
    cp_async16(sA + i, src, ok);
  }
}

// Chunks c0 .. c0+KC-1 (those before c_end) into the KC sub-stages: A
// fragments if WITH_A, packed B and scales if WITH_B.
template <class Fmt, class Cf, bool WITH_A = true, bool WITH_B = true>
__device__ __forceinline__ void load_stage(const MmaParams& p, uint8_t* stage, int c0, int c_end, int m_tile0,
                                           int n0) {
#pragma unroll
  for (int kc = 0; kc < Cf::KC; ++kc) {
    if (c0 + kc >= c_end) break;
    uint8_t* sub = stage + kc * Cf::SUB_BYTES;
    if constexpr (WITH_A) load_a<Cf>(p, sub, c0 + kc, m_tile0);
    if constexpr (WITH_B)
      load_bs<Fmt, Cf::BN, Cf::THREADS>(p, sub + Cf::A_BYTES, sub + Cf::A_BYTES + Cf::B_BYTES, c0 + kc, n0);
  }
}

template <class Fmt, class Cf>
__global__ void __launch_bounds__(Cf::THREADS, 1) multistage_kernel(const MmaParams params) {
  extern __shared__ __align__(128) uint8_t smem[];
  constexpr int MT = Cf::MT, NT = Cf::NT, STAGES = Cf::STAGES;
  // A lane's 16 K of a chunk lie in scale block (64 / block) c + t / (block / 16).
  constexpr int kBlocksPerChunk = kMultistageChunk / Fmt::kBlock, kLanesPerBlock = Fmt::kBlock / 16;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int warp_m = warp / Cf::WN, warp_n = warp % Cf::WN;
  const int g = lane >> 2, t = lane & 3;
  // Grouped raster: 8 M-tiles share each sweep over N, so the A tiles of a
  // group and the B tiles in flight stay in L2 together.
  const int num_n = gridDim.x, num_m = gridDim.y;
  const int pid = blockIdx.y * num_n + blockIdx.x;
  const int first_m = (pid / (8 * num_n)) * 8;
  const int gm = min(num_m - first_m, 8);
  const int in_group = pid % (8 * num_n);
  const int n0 = (in_group / gm) * Cf::BN;
  const int m_tile0 = (first_m + in_group % gm) * MT * Cf::WM;
  const Slice sl = slice_of(params.groups, first_m + in_group % gm, params.M);
  if (sl.rows <= 0) return;  // a grouped call's tile past the experts' end
  MmaParams p = params;  // with the slice's expert's weights
  p.b += sl.e * p.groups.b_bytes;
  p.sb += sl.e * p.groups.sb_bytes;
  const int c_begin = blockIdx.z * p.chunks_per_split;
  const int c_end = min(p.C, c_begin + p.chunks_per_split);
  const int nchunks = max(0, c_end - c_begin);
  const int nstages = (nchunks + Cf::KC - 1) / Cf::KC;
  const int kblocks = p.K / Fmt::kBlock;

  float acc[MT][NT][4];
#pragma unroll
  for (int i = 0; i < MT; ++i)
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;

  // Prologue. The weights are not written by the pre-pass this kernel may
  // overlap (PDL), so their first stages are in flight before the wait for A.
  // They join commit group 0 (the first stage waits for all of them: they
  // were issued first anyway).
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s)
    if (s < nstages)
      load_stage<Fmt, Cf, false, true>(p, smem + s * Cf::STAGE_BYTES, c_begin + s * Cf::KC, c_end, m_tile0, n0);
  lowbit::pdl_wait();
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < nstages)
      load_stage<Fmt, Cf, true, false>(p, smem + s * Cf::STAGE_BYTES, c_begin + s * Cf::KC, c_end, m_tile0, n0);
    cp_async_commit();
  }

  // Per-lane constants of this warp's B rows.
  int s_off[NT];  // scale byte offset inside a stage's scale image (chunks at a group's start)
#pragma unroll
  for (int j = 0; j < NT; ++j) {
    const int n = n0 + warp_n * NT * 8 + j * 8 + g;
    const int grp = (Cf::BN >= 128) ? (n / 128 - n0 / 128) : 0;
    s_off[j] = grp * 512 + (n % 32) * 16 + ((n / 32) % 4) * 4 + t / kLanesPerBlock;
  }

  for (int it = 0; it < nstages; ++it) {
    cp_async_wait<STAGES - 2>();
    __syncthreads();
    {
      const int nxt = it + STAGES - 1;
      if (nxt < nstages)
        load_stage<Fmt, Cf>(p, smem + (nxt % STAGES) * Cf::STAGE_BYTES, c_begin + nxt * Cf::KC, c_end, m_tile0,
                            n0);
      cp_async_commit();
    }
#pragma unroll
   for (int kc = 0; kc < Cf::KC; ++kc) {
    const int c = c_begin + it * Cf::KC + kc;
    if (c >= c_end) break;
    const uint8_t* stage = smem + (it % STAGES) * Cf::STAGE_BYTES + kc * Cf::SUB_BYTES;
    const uint4* sA = reinterpret_cast<const uint4*>(stage);
    const uint8_t* sB = stage + Cf::A_BYTES;
    const uint8_t* sS = sB + Cf::B_BYTES;
    const int blk = kBlocksPerChunk * c + t / kLanesPerBlock;
    const bool blk_ok = blk < kblocks;  // K tail: padded scales may be garbage
    const int s_in = blk % 4 - t / kLanesPerBlock;  // the chunk's first block inside its 4-block group

    uint2 braw[NT];
    uint32_t sc[NT];
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      const int row = warp_n * NT * 8 + j * 8 + g;
      braw[j] = *reinterpret_cast<const uint2*>(sB + row * 32 + 8 * t);
      const uint16_t sbyte = blk_ok ? sS[s_off[j] + (kBlocksPerChunk == 4 ? 0 : s_in)] : 0;
      sc[j] = Fmt::scale_bcast(sbyte);
    }
#pragma unroll
    for (int s = 0; s < 4; ++s) {
      uint32_t bf[NT][2];
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        const uint32_t w = (s < 2) ? braw[j].x : braw[j].y;
        const uint32_t r0 = (s & 1) ? Fmt::template b_raw<2>(w) : Fmt::template b_raw<0>(w);
        const uint32_t r1 = (s & 1) ? Fmt::template b_raw<3>(w) : Fmt::template b_raw<1>(w);
        bf[j][0] = Fmt::b_scaled(r0, sc[j]);
        bf[j][1] = Fmt::b_scaled(r1, sc[j]);
      }
#pragma unroll
      for (int i = 0; i < MT; ++i) {
        const uint4 af = sA[((warp_m * MT + i) * 4 + s) * 32 + lane];
#pragma unroll
        for (int j = 0; j < NT; ++j) Fmt::mma(acc[i][j], af, bf[j][0], bf[j][1]);
      }
    }
   }  // kc
  }
  cp_async_wait<0>();
  lowbit::pdl_launch_dependents();  // the reduce kernel (it waits for our completion)

  // Epilogue: one walk over the accumulator fragments (rows g and g + 8 of
  // each 16-row tile, two adjacent columns per lane), storing either the
  // converted output or the fp32 split-K partial.
  const int col_base = n0 + warp_n * NT * 8 + 2 * t;
  auto for_each_pair = [&](auto&& store) {
#pragma unroll
    for (int i = 0; i < MT; ++i) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int lr = (warp_m * MT + i) * 16 + g + 8 * h;  // row in the slice
        if (lr >= sl.rows) continue;
#pragma unroll
        for (int j = 0; j < NT; ++j) {
          const int col = col_base + j * 8;
          if (col >= p.N) continue;
          store((sl.row0 + lr) * p.N + col, col, acc[i][j][2 * h], acc[i][j][2 * h + 1]);
        }
      }
    }
  };
  if (p.splits == 1) {
    const float scale = out_scale<Fmt>(p, sl.e);
    for_each_pair([&](int64_t o, int col, float x0, float x1) {
      store_out_pair(p.out, p.bias, p.out_bf16, o, col, x0, x1, scale);
    });
  } else {
    float* part = p.partial + (int64_t)blockIdx.z * p.M * p.N;
    for_each_pair([&](int64_t o, int, float x0, float x1) { *reinterpret_cast<float2*>(part + o) = make_float2(x0, x1); });
  }
}

template <class Fmt, class Cf>
MmaKernel make_multistage_kernel() {
  return MmaKernel{&multistage_kernel<Fmt, Cf>, kMultistageChunk, Cf::BM, Cf::BN, Cf::THREADS, Cf::SMEM,
                   Fmt::kUnscale};
}

}  // namespace lowbit::fp4_gemm::sm90
