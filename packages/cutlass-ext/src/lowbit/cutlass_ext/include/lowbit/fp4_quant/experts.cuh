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

// An expert's scale region (scale rows [sf_lo, sf_lo + rows) of the buffer,
// kp4 column groups) and the padding its real rows own, set up once per
// expert (at the lookup) so that a block's scale costs the store and two
// compares. write() stores scale byte `s` of block c (of nb per row) of local
// row lr (0 <= lr < m_e: the lookup guarantees it) and zeroes the padding this
// block owns: its row's padded columns (the row's last block), and padded rows
// of the region's last tile. Rows at or past the region's end write nothing
// (bad offsets: no scale rather than out of bounds).
//
// The padded rows of a region are zeroed by the threads of its real rows, at
// the time those write their own scales (so every 32-byte sector of the scale
// buffer is completed while it is in L2; a later pass found the sectors
// evicted half written). Only the last 128-row tile of a region has padded
// rows (m_t < 128 real ones), and only where the region starts on a tile
// (sf_lo % 128 == 0; otherwise the padding is not this expert's). A tile's
// 512-byte chunk of column group g holds 32 16-byte chunk rows i (rows i,
// i+32, i+64, i+96 x 4 columns). The four threads of (real row j < 32 of the
// tile, block 4g + q) share that chunk: thread q >= 1 zeroes row j + 32q in
// chunk row j when it is padding (the 4 bytes 3q past its own scale byte),
// and in a tile with m_t < 32 real rows (so chunk rows m_t..31 are all
// padding) thread (j, q) zeroes the chunk rows i = 4 (j + n m_t) + q >= m_t,
// n = 0, 1, ... (each i < 32 exactly once). The four threads of a group thus
// store 64 contiguous, aligned bytes in one instruction: whole 32-byte
// sectors (lanes on rows j + 4 n apart had every sector written as two
// halves by two warps). Where the last group has fewer than 4 blocks, its
// last block also does the missing q.
struct Region {
  static constexpr uint32_t kNoDuty = 0xC0000000u;  // lr - kNoDuty >= 2^30 for 0 <= lr < 2^31
  int32_t sf_lo = 0, rows = 0;  // the region (rows <= 0: nothing is written)
  uint32_t duty_lo = kNoDuty;   // local row of the last tile, when it has padding to zero
  int32_t m_t = 128;            // real rows of the last tile
  uint32_t pad_span = 0;        // rows m_t .. m_t + pad_span - 1 of the last tile are padding

  // m_e >= 1 real rows; [sf_lo, sf_hi) the region (clamped to the buffer by the caller).
  __host__ __device__ __forceinline__ void init(int32_t lo, int32_t hi, int32_t m_e) {
    sf_lo = lo;
    rows = hi - lo;
    const int32_t last = (m_e - 1) & ~127;  // first local row of the last tile
    m_t = m_e - last;
    pad_span = uint32_t(max(min(rows - last, 128) - m_t, 0));  // the tile's rows in the region - m_t
    duty_lo = (lo & 127) == 0 && m_t < 128 ? uint32_t(last) : kNoDuty;
  }

  __device__ __forceinline__ void write(uint8_t* sf, uint8_t s, int32_t lr, uint32_t c, uint32_t nb,
                                        uint32_t kp4) const {
    if (lr >= rows) return;
    const int32_t p = sf_lo + lr;
    uint8_t* at = sf + swz_offset(p, c, kp4);
    *at = s;
    const uint32_t j = uint32_t(lr) - duty_lo;  // < 32: one of the last tile's first 32 rows
    if (c == nb - 1) {
      zero_pad_cols(sf, p, nb, kp4);
      if (j < 32u) zero_pad_rows(at, j, c & 3u, 4u);
      return;
    }
    if (j >= 32u) return;
    const uint32_t q = c & 3u;
    if (m_t < 32) {
      zero_pad_rows(at, j, q, q + 1);
      return;
    }
    // m_t >= 32: only row j + 32 q can be padding (q = 0: row j is real).
    if (j + 32u * q - uint32_t(m_t) < pad_span) *reinterpret_cast<uint32_t*>(at + 3 * q) = 0u;
  }

  // The padding of chunk row j (< 32) of the last tile for blocks q in
  // [q_lo, q_hi) of the column group; `at` is the scale byte of (row j, q_lo).
  __device__ __forceinline__ void zero_pad_rows(uint8_t* at, uint32_t j, uint32_t q_lo,
                                                uint32_t q_hi) const {
    uint8_t* base = at - j * 16 - q_lo;  // the tile's chunk of this column group
    // The tile's rows in the region (m_t where fewer: no row >= m_t is written then either).
    const int32_t t_rows = m_t + int32_t(pad_span);
    for (uint32_t q = q_lo; q < q_hi; ++q) {
      const int32_t jq = int32_t(j + 32 * q);
      if (q > 0 && jq >= m_t && jq < t_rows) *reinterpret_cast<uint32_t*>(base + j * 16 + 4 * q) = 0u;
      if (m_t >= 32) continue;
      for (int32_t i = int32_t(4 * j + q); i < 32; i += 4 * m_t) {
        if (i < m_t) continue;
        if (i + 96 < t_rows) {
          *reinterpret_cast<uint4*>(base + i * 16) = make_uint4(0u, 0u, 0u, 0u);
        } else {
          for (int k = 0; k < 4; ++k)
            if (i + 32 * k < t_rows) *reinterpret_cast<uint32_t*>(base + i * 16 + 4 * k) = 0u;
        }
      }
    }
  }
};

}  // namespace lowbit::fp4_quant
