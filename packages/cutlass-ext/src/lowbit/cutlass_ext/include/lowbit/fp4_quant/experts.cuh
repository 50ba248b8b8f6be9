// The per-expert parts of the FP4 experts quantization kernels (NVFP4 and
// MXFP4, docs/SPEC-MOE.md §5.1.3 and the NVFP4 experts op): the expert of a
// row from the device offsets (no host sync), and the scale of one block
// written into its expert's 128x4 swizzled region together with the region's
// padding (written 0x00) that the block owns.
#pragma once

#include <cuda_runtime.h>

#include <lowbit/nvfp4_codec.h>

#include <cstdint>

namespace lowbit::fp4_quant {

// Largest e in [0, E] with a[e] <= x (a non-decreasing); -1 if none. The
// search starts at `guess` and walks: top-k routing gives every expert about
// the same number of rows, so the row's share of the range is usually the
// expert or one step from it (a lookup costs ~20 instructions instead of a
// ~10-step binary search's ~120, and every thread looks up each time its walk
// enters a new segment). After kWalkSteps it binary-searches what is left.
// For offsets that are not non-decreasing (bad input) the result is still in
// [-1, E]; the kernels check (or clamp) every region they write.
constexpr int kWalkSteps = 4;
__device__ __forceinline__ int32_t upper_index(const int32_t* a, int32_t E, int32_t x,
                                               int32_t guess) {
  if (a[0] > x) return -1;
  int32_t lo = 0, hi = E, g = min(max(guess, 0), E);  // the answer is in [lo, hi]
#pragma unroll 1
  for (int s = 0; s < kWalkSteps; ++s) {
    if (a[g] <= x) {
      lo = g;
      if (g == E || a[g + 1] > x) return g;
      ++g;
    } else {
      hi = g - 1;  // g >= 1: a[0] <= x
      --g;
    }
  }
  while (lo < hi) {
    const int32_t mid = (lo + hi + 1) >> 1;
    if (a[mid] <= x) lo = mid; else hi = mid - 1;
  }
  return lo;
}

// The expert of a row from upper_index, starting at the row's proportional
// share of the offsets range.
struct ExpertGuess {
  float per_row = 0.0f;  // E / (off[E] - off[0])
  __device__ __forceinline__ void init(const int32_t* off, int32_t E) {
    const int32_t rows = off[E] - off[0];
    per_row = rows > 0 ? float(E) / float(rows) : 0.0f;
  }
  // upper_index(off, E, x): -1 (x before off[0]), an expert, or E (past off[E]).
  __device__ __forceinline__ int32_t expert(const int32_t* off, int32_t E, int32_t x) const {
    return upper_index(off, E, x, __float2int_rz((float(x) - float(off[0])) * per_row));
  }
};

constexpr int kMaxSmemOffsets = 1024;  // E + 1 staged in shared memory up to this

// Copies the E + 1 row and scale-row offsets into shared memory (and, through
// per_expert(i) for every i <= E, whatever else the kernel stages), then
// synchronizes the block.
template <class PerExpert>
__device__ __forceinline__ void stage_offsets(int32_t* s_off, int32_t* s_sfo, const int32_t* off,
                                              const int32_t* sfo, int32_t E, PerExpert&& per_expert) {
  for (int32_t i = threadIdx.x; i <= E; i += blockDim.x) {
    s_off[i] = __ldg(off + i);
    s_sfo[i] = __ldg(sfo + i);
    per_expert(i);
  }
  __syncthreads();
}

__device__ __forceinline__ uint32_t swz_offset(uint32_t r, uint32_t c, uint32_t kp4) {
  return lowbit::nvfp4::swizzled_offset<uint32_t>(r, c, kp4);
}

// Zero the padded scale columns nb..Kp-1 of row r (same 4-column group as the
// row's last block, so the thread of that block does it).
__device__ __forceinline__ void zero_pad_cols(uint8_t* sf, uint32_t r, uint32_t nb, uint32_t kp4) {
  for (uint32_t cc = nb; cc < kp4 * 4; ++cc) sf[swz_offset(r, cc, kp4)] = 0;
}

// Writes scale byte `s` of block c (of nb per row) of local row lr of an
// expert with m_e rows whose region is scale rows [sf_lo, sf_hi) of `sf`
// (kp4 column groups), and zeroes the padding this block owns: its row's
// padded columns (the row's last block), and padded rows of the region's
// last tile. Rows at or past sf_hi write nothing (bad offsets: no scale
// rather than out of bounds).
//
// The padded rows of a region are zeroed by the threads of its real rows, at
// the time those write their own scales (so every 32-byte sector of the scale
// buffer is completed while it is in L2; a later pass found the sectors
// evicted half written). A tile's 512-byte chunk of column group g holds 32
// 16-byte chunk rows i (rows i, i+32, i+64, i+96 x 4 columns). The four
// threads of (real row j < 32 of a tile, block 4g + q) share that chunk:
// thread q >= 1 zeroes row j + 32q in chunk row j when it is padding, and in a
// tile with m_t < 32 real rows (so chunk rows m_t..31 are all padding) thread
// (j, q) zeroes the chunk rows i = 4 (j + n m_t) + q >= m_t, n = 0, 1, ...
// (each i < 32 exactly once). The four threads of a group thus store 64
// contiguous, aligned bytes in one instruction: whole 32-byte sectors (lanes
// on rows j + 4 n apart had every sector written as two halves by two warps).
// Where the last group has fewer than 4 blocks, its last block also does the
// missing q.
__device__ __forceinline__ void write_region_scale(uint8_t* sf, uint8_t s, int32_t lr, uint32_t c,
                                                   uint32_t nb, uint32_t kp4, int32_t sf_lo,
                                                   int32_t sf_hi, int32_t m_e) {
  const int32_t p = sf_lo + lr;
  if (p >= sf_hi) return;
  sf[swz_offset(p, c, kp4)] = s;
  if (c == nb - 1) zero_pad_cols(sf, p, nb, kp4);
  if ((sf_lo & 127) != 0 || (lr & 127) >= 32) return;
  // Padding rows owned by this block; tiles start at sf_lo.
  const int32_t tile0 = p & ~127, j = lr & 127;
  const int32_t m_t = min(m_e - (lr - j), 128);  // real rows of the tile
  const int32_t rows = min(sf_hi - tile0, 128);  // rows of the tile in the region
  uint8_t* base = sf + (size_t(tile0 >> 7) * kp4 + (c >> 2)) * 512u;
  const uint32_t q_end = c == nb - 1 ? 4u : (c & 3u) + 1;
  for (uint32_t q = c & 3u; q < q_end; ++q) {
    const int32_t jq = j + 32 * int32_t(q);
    if (q > 0 && jq >= m_t && jq < rows) *reinterpret_cast<uint32_t*>(base + j * 16 + 4 * q) = 0u;
    if (m_t >= 32) continue;
    for (int32_t i = 4 * j + int32_t(q); i < 32; i += 4 * m_t) {
      if (i < m_t) continue;
      if (i + 96 < rows) {
        *reinterpret_cast<uint4*>(base + i * 16) = make_uint4(0u, 0u, 0u, 0u);
      } else {
        for (int k = 0; k < 4; ++k)
          if (i + 32 * k < rows) *reinterpret_cast<uint32_t*>(base + i * 16 + 4 * k) = 0u;
      }
    }
  }
}

}  // namespace lowbit::fp4_quant
