// A pre-pass and split-K reduce of the SM90 mma.sync kernels (split_k.h).
#include "split_k.h"

#include <lowbit/cuda_utils.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <optional>

namespace nvfp4_mm::sm90 {
namespace {

// e2m1 code -> float without a lookup table (a local array would spill to
// the stack): index i = (e, m): i < 2 -> 0.5 i, else (1 + m/2) 2^(e-1).
__device__ __forceinline__ float e2m1_value(uint32_t q) {
  const uint32_t i = q & 7, e = i >> 1;
  const float mag = i < 2 ? 0.5f * i : (1.f + 0.5f * (i & 1)) * static_cast<float>(1u << (e - 1));
  return (q & 8) ? -mag : mag;
}

// One thread per (m-tile, chunk, k-step, lane): the lane's uint4 fragment.
template <int KSTEPS>
__global__ void prepass_a_kernel(const uint8_t* __restrict__ a, const uint8_t* __restrict__ sa,
                                 uint4* __restrict__ afrag, int M, int K, int C, int C4, int64_t total) {
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
  uint32_t regs[4];
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const int row = 16 * mt + g + 8 * (r & 1);
    // pair (k0, k0 + 4) of this register; both in one 16-element block
    const int k0 = W * c + (W / 4) * t + 8 * (s >> 1) + 2 * (s & 1) + (r >> 1);
    const int k1 = k0 + 4;
    float v0 = 0.f, v1 = 0.f;
    if (row < M && k0 < K) {  // K % 32 == 0: the whole block is in or out
      const int blk = k0 >> 4;
      const int64_t soff =
          ((int64_t)(row / 128) * C4 + blk / 4) * 512 + (row % 32) * 16 + ((row / 32) % 4) * 4 + blk % 4;
      __half_raw hs = __nv_cvt_fp8_to_halfraw(sa[soff], __NV_E4M3);
      const float sc = __half2float(__half(hs));
      const uint8_t* ar = a + (int64_t)row * kb;
      const uint8_t q0 = (ar[k0 >> 1] >> (4 * (k0 & 1))) & 0xF;
      const uint8_t q1 = (ar[k1 >> 1] >> (4 * (k1 & 1))) & 0xF;
      v0 = e2m1_value(q0) * sc;
      v1 = e2m1_value(q1) * sc;
    }
    __half2 h = __floats2half2_rn(v0, v1);  // exact: e2m1 x e4m3 fits fp16
    regs[r] = *reinterpret_cast<uint32_t*>(&h);
  }
  afrag[idx] = make_uint4(regs[0], regs[1], regs[2], regs[3]);
}

// Sum the split-K partials in split order (deterministic), scale, convert.
__global__ void reduce_kernel(const float* __restrict__ part, const float* __restrict__ alpha,
                              float extra, void* out, int64_t MN, int splits, int out_bf16) {
  lowbit::pdl_wait();
  lowbit::pdl_launch_dependents();
  const int64_t i4 = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) * 4;
  if (i4 >= MN) return;
  float4 s = *reinterpret_cast<const float4*>(part + i4);
  for (int z = 1; z < splits; ++z) {
    const float4 v = *reinterpret_cast<const float4*>(part + z * MN + i4);
    s.x += v.x; s.y += v.y; s.z += v.z; s.w += v.w;
  }
  const float sc = *alpha * extra;
  if (out_bf16) {
    __nv_bfloat162* o = reinterpret_cast<__nv_bfloat162*>(static_cast<__nv_bfloat16*>(out) + i4);
    o[0] = __floats2bfloat162_rn(s.x * sc, s.y * sc);
    o[1] = __floats2bfloat162_rn(s.z * sc, s.w * sc);
  } else {
    __half2* o = reinterpret_cast<__half2*>(static_cast<__half*>(out) + i4);
    o[0] = __floats2half2_rn(s.x * sc, s.y * sc);
    o[1] = __floats2half2_rn(s.z * sc, s.w * sc);
  }
}

}  // namespace

Tensor prepass_a(const Problem& p, int ksteps, cudaStream_t stream, bool pdl) {
  const int W = 16 * ksteps;
  const int C = static_cast<int>((p.K + W - 1) / W);
  const int C4 = static_cast<int>((p.K + 63) / 64);  // 4-block groups of the scale layout
  const int64_t Mt = (p.M + 15) / 16;
  const int64_t total = Mt * C * ksteps * 32;
  Tensor afrag = lowbit::empty_on(p.a, {total * 4}, lowbit::ScalarType::Int);
  const int threads = 256;
  const unsigned blocks = static_cast<unsigned>((total + threads - 1) / threads);
  auto kernel = ksteps == 16 ? prepass_a_kernel<16> : ksteps == 8 ? prepass_a_kernel<8> : prepass_a_kernel<4>;
  lowbit::launch_kernel(kernel, dim3(blocks), dim3(threads), 0, stream, pdl, p.a.const_data_ptr<uint8_t>(),
                        static_cast<const uint8_t*>(p.sa.data_ptr()), static_cast<uint4*>(afrag.data_ptr()),
                        static_cast<int>(p.M), static_cast<int>(p.K), C, C4, total);
  return afrag;
}

void launch_mma_split_k(const Problem& pr, void (*kernel)(const MmaParams), const Tensor& afrag, int chunk_k,
                        int splits, int bm, int bn, int threads, int smem, std::atomic<uint64_t>& smem_done,
                        float unscale, cudaStream_t stream, bool pdl, int64_t sms) {
  const int64_t M = pr.M, N = pr.N, K = pr.K;
  const int C = static_cast<int>((K + chunk_k - 1) / chunk_k);
  const int cps = (C + splits - 1) / splits;
  splits = (C + cps - 1) / cps;  // no empty split

  MmaParams p{};
  p.afrag = static_cast<const uint4*>(afrag.data_ptr());
  p.b = pr.b.const_data_ptr<uint8_t>();
  p.sb = static_cast<const uint8_t*>(pr.sb.data_ptr());
  p.alpha = pr.alpha.const_data_ptr<float>();
  p.out = pr.out.data_ptr();
  p.M = static_cast<int>(M);
  p.N = static_cast<int>(N);
  p.K = static_cast<int>(K);
  p.C = C;
  p.C4 = static_cast<int>((K + 63) / 64);
  p.Mt = static_cast<int>((M + 15) / 16);
  p.chunks_per_split = cps;
  p.splits = splits;
  p.out_bf16 = pr.out.scalar_type() == lowbit::ScalarType::BFloat16;
  std::optional<Tensor> part;
  if (splits > 1) {
    part = lowbit::empty_on(pr.a, {(int64_t)splits * M * N}, lowbit::ScalarType::Float);
    p.partial = static_cast<float*>(part->data_ptr());
  }

  // Dynamic shared memory above 48 KB must be opted into, per device.
  const uint64_t dev_bit = 1ull << (pr.a.get_device_index() & 63);
  if (!(smem_done.load(std::memory_order_relaxed) & dev_bit)) {
    LOWBIT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    smem_done.fetch_or(dev_bit, std::memory_order_relaxed);
  }

  const dim3 grid(static_cast<unsigned>((N + bn - 1) / bn), static_cast<unsigned>((M + bm - 1) / bm),
                  static_cast<unsigned>(splits));
  LOWBIT_CHECK(grid.y <= 65535, "cutlass_scaled_fp4_mm: M=", M, " too large for the SM90 grid");
  // PDL for the main kernel only when it has >= 3 CTAs per SM. Measured on
  // the H100 (benchmarks/split_pdl_sweep.py, M = 1 / 16, multistage kernel):
  // with fewer, the early launch cost 12-30% (8192x8192 at 4 splits, 256
  // CTAs: 41.9 vs 32.0 us; 10240x8192 at 4 splits: 42.9 vs 38.1), with more
  // it saved 3-12%.
  const bool pdl_main = pdl && int64_t(grid.x) * grid.y * grid.z >= 3 * sms;
  lowbit::launch_kernel(kernel, grid, dim3(threads), smem, stream, pdl_main, p);
  if (splits == 1) return;
  const int64_t MN = M * N;  // % 4 == 0 (N % 32 == 0)
  const int rthreads = 256;
  const unsigned blocks = static_cast<unsigned>((MN / 4 + rthreads - 1) / rthreads);
  lowbit::launch_kernel(reduce_kernel, dim3(blocks), dim3(rthreads), 0, stream, pdl,
                        static_cast<const float*>(p.partial), p.alpha, unscale, p.out, MN, splits, p.out_bf16);
}

}  // namespace nvfp4_mm::sm90
