// The A pre-pass of the SM90 mma.sync FP4 GEMMs: activations (packed e2m1
// [M, K/2] + 128x4 swizzled scales) -> the format's 16-bit MMA type
// (sm90_formats.cuh), written once in mma.sync A-fragment order.
#pragma once

#include <lowbit/cuda_utils.h>
#include <lowbit/fp4_gemm/sm90_formats.cuh>
#include <lowbit/fp4_gemm/sm90_params.h>
#include <lowbit/nvfp4_codec.h>

namespace lowbit::fp4_gemm::sm90 {

// One thread per (m-tile, chunk, k-step, lane): the lane's uint4 fragment.
// m-tile mt is 16-row piece mt % (bm / 16) of CTA row tile mt / (bm / 16)
// (dense: bm = 16, the tile is mt).
template <class Fmt, int KSTEPS>
__global__ void prepass_a_kernel(const uint8_t* __restrict__ a, const uint8_t* __restrict__ sa,
                                 uint4* __restrict__ afrag, int M, int K, int C, int C4, int64_t total,
                                 const Groups groups) {
  constexpr int W = 16 * KSTEPS;  // K per chunk
  lowbit::pdl_wait();  // A may come from the previous kernel
  lowbit::pdl_launch_dependents();
  const int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (idx >= total) return;
  const int lane = idx & 31, s = static_cast<int>((idx >> 5) % KSTEPS);
  const int64_t tc = idx / (32 * KSTEPS);  // mtile * C + chunk
  const int c = static_cast<int>(tc % C), mt = static_cast<int>(tc / C);
  const int g = lane >> 2, t = lane & 3;
  const int kb = K / 2;
  const int pieces = groups.bm / 16;
  const Slice sl = slice_of(groups, mt / pieces, M);
  const int lr0 = 16 * (mt % pieces);  // the piece's first row in the slice
  const uint8_t* sas = sa + sl.sa_off;
  uint32_t regs[4];
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const int lr = lr0 + g + 8 * (r & 1);
    // pair (k0, k0 + 4) of this register; both in one scale block
    const int k0 = W * c + (W / 4) * t + 8 * (s >> 1) + 2 * (s & 1) + (r >> 1);
    const int k1 = k0 + 4;
    float v0 = 0.f, v1 = 0.f;
    if (lr < sl.rows && k0 < K) {  // K % 32 == 0: the whole block is in or out
      const float sc = Fmt::a_scale(sas[lowbit::nvfp4::swizzled_offset<int64_t>(sl.local0 + lr, k0 >> Fmt::kBlockLog2, C4)]);
      const uint8_t* ar = a + (sl.row0 + lr) * kb;
      v0 = lowbit::nvfp4::e2m1_decode(ar[k0 >> 1] >> (4 * (k0 & 1))) * sc;
      v1 = lowbit::nvfp4::e2m1_decode(ar[k1 >> 1] >> (4 * (k1 & 1))) * sc;
    }
    regs[r] = Fmt::pack2(v0, v1);
  }
  afrag[idx] = make_uint4(regs[0], regs[1], regs[2], regs[3]);
}

// A [M, K/2] + swizzled scales -> fragments, layout
// [Mt][ceil(K/W)][W/16 k-steps][32 lanes] x uint4 (a0..a3 of m16n8k16),
// W = 16 * ksteps (64 or 128), Mt 16-row m-tiles of the CTA row tiles of
// `groups` (dense: Groups{}, Mt = ceil(M/16)). Inside every W-wide K chunk
// the logical k order matches the B nibble ownership of the kernels: lane
// (g, t) owns the W/4 contiguous K of chunk c starting at W c + (W/4) t, and
// its B register (k-step s, reg rb) holds the nibble pair at offsets
// 8 (s/2) + 2 (s%2) + rb and that + 4. Rows >= M and K >= K are zero.
// Launched with PDL (it waits for the previous kernel before reading A).
template <class Fmt>
Tensor prepass_a(const Tensor& a, const Tensor& sa, int64_t M, int64_t K, int64_t Mt, const Groups& groups,
                 int ksteps, cudaStream_t stream) {
  const int W = 16 * ksteps;
  const int C = static_cast<int>((K + W - 1) / W);
  const int C4 = static_cast<int>((K + 4 * Fmt::kBlock - 1) / (4 * Fmt::kBlock));  // 4-block groups
  const int64_t total = Mt * C * ksteps * 32;
  Tensor afrag = lowbit::empty_on(a, {total * 4}, lowbit::ScalarType::Int);
  const int threads = 256;
  const unsigned blocks = static_cast<unsigned>((total + threads - 1) / threads);
  auto kernel = ksteps == 8 ? prepass_a_kernel<Fmt, 8> : prepass_a_kernel<Fmt, 4>;
  lowbit::launch_kernel(kernel, dim3(blocks), dim3(threads), 0, stream, /*pdl=*/true,
                        a.const_data_ptr<uint8_t>(), static_cast<const uint8_t*>(sa.data_ptr()),
                        static_cast<uint4*>(afrag.data_ptr()), static_cast<int>(M), static_cast<int>(K), C, C4,
                        total, groups);
  return afrag;
}

}  // namespace lowbit::fp4_gemm::sm90
