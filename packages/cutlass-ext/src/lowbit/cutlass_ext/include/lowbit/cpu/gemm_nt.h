// The CPU GEMMs' dot products, written once (the FP4 formats through
// cpu/fp4_group_gemm.h, W4A8 in w4a8-mm's cpu/w4a8_cpu.cpp): for every output,
// one fp32 accumulator summed over k in ascending order, then one call of the
// caller's store. That order is the CPU kernels' contract (docs/SPEC.md §1.4,
// §3), and it makes each row independent of the others (batch invariant).
//
// Speed comes from going across n, not from reordering k: B is decoded
// kTileN rows at a time into a transposed tile bt[k][j] (one L2-sized buffer
// per thread), and each k step adds a[m, k] · bt[k][0..kTileN) into kTileN
// accumulators. Each SIMD lane is one output with its own sum in k order, so
// each output sees the plain loop's operations in the plain loop's order
// (vectorizing needs no reassociation, no -ffast-math), so the bits are the
// plain loop's. Host code only.
#pragma once

#include <torch/csrc/stable/ops.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace lowbit::cpu {

constexpr int64_t kTileN = 64;  // outputs per accumulator row: 256 bytes, vector-width friendly
constexpr int64_t kTileM = 4;   // rows sharing one pass over a B tile

namespace detail {

// acc[i][j] += Σ_k a[i, k] · bt[k][j] for i < ROWS, in ascending k.
template <int ROWS>
inline void accumulate_rows(const float* a, int64_t lda, const float* bt, int64_t K, float (*acc)[kTileN]) {
  for (int64_t k = 0; k < K; ++k) {
    const float* b = bt + k * kTileN;
    for (int i = 0; i < ROWS; ++i) {
      const float x = a[i * lda + k];
      for (int64_t j = 0; j < kTileN; ++j) acc[i][j] += x * b[j];
    }
  }
}

}  // namespace detail

// For m < M, n < N: store(m, n, Σ_k a[m, k] · B[n, k]) with the sum in
// ascending k in one fp32 accumulator. a: fp32 [M, K] row-major.
// decode_b(n0, rows, bt) writes B[n0 + j, k] into bt[k · kTileN + j] for
// j < rows (rows ≤ kTileN; the other columns are ignored). Tiles of B run in
// parallel; store must be safe to call for distinct (m, n) concurrently.
template <class DecodeB, class Store>
void gemm_nt(const float* a, int64_t M, int64_t N, int64_t K, DecodeB decode_b, Store store) {
  if (M <= 0 || N <= 0) return;
  const int64_t tiles = (N + kTileN - 1) / kTileN;
  torch::stable::parallel_for(0, tiles, 1, [&](int64_t t0, int64_t t1) {
    std::vector<float> bt(static_cast<size_t>(K * kTileN), 0.f);
    alignas(64) float acc[kTileM][kTileN];
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n0 = t * kTileN, cols = std::min(kTileN, N - n0);
      decode_b(n0, cols, bt.data());
      for (int64_t m0 = 0; m0 < M; m0 += kTileM) {
        const int64_t rows = std::min(kTileM, M - m0);
        std::fill(&acc[0][0], &acc[0][0] + kTileM * kTileN, 0.f);
        const float* ar = a + m0 * K;
        switch (rows) {
          case 4: detail::accumulate_rows<4>(ar, K, bt.data(), K, acc); break;
          case 3: detail::accumulate_rows<3>(ar, K, bt.data(), K, acc); break;
          case 2: detail::accumulate_rows<2>(ar, K, bt.data(), K, acc); break;
          default: detail::accumulate_rows<1>(ar, K, bt.data(), K, acc); break;
        }
        for (int64_t i = 0; i < rows; ++i)
          for (int64_t j = 0; j < cols; ++j) store(m0 + i, n0 + j, acc[i][j]);
      }
    }
  });
}

}  // namespace lowbit::cpu
