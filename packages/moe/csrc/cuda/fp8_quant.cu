// CUDA kernel of the per-token fp8 quantization (plain and SiLU-gated), every
// built architecture. One block per row (grid-stride over rows): pass 1 takes
// the row's amax (a block reduction, fmaxf: order-independent and NaN-
// ignoring, so the result is deterministic), thread 0 writes the scale, pass
// 2 recomputes each value (the gated product is cheap; the row is in L1/L2)
// and writes its e4m3 byte. Loads are 16 bytes wide when the row allows it.
// Arithmetic: fp8_quant_math.h, shared with the CPU kernel (same bits; with
// SiLU, expf may differ from the host's exp in the last bit, which the
// 16-bit rounding almost always hides).
#include <cub/block/block_reduce.cuh>

#include "../fp8_quant_math.h"
#include "../moe.h"
#include "row_launch.cuh"

namespace lowbit::moe {
namespace {

using fp8q::In;

constexpr int kThreads = 256;

// Values c*VEC .. c*VEC+VEC-1 of the row (gated: silu(gate) * up).
template <In T, bool GATED, int VEC>
__device__ __forceinline__ void row_values(const Elem<T>* row, int64_t n, int64_t c,
                                           float (&v)[VEC]) {
  const auto x = reinterpret_cast<const Vec<Elem<T>, VEC>*>(row)[c];
#pragma unroll
  for (int i = 0; i < VEC; ++i) v[i] = fp8q::load<T>(x.v, i);
  if constexpr (GATED) {
    const auto u = reinterpret_cast<const Vec<Elem<T>, VEC>*>(row + n)[c];
#pragma unroll
    for (int i = 0; i < VEC; ++i) v[i] = fp8q::silu_mul<T>(v[i], fp8q::load<T>(u.v, i));
  }
}

struct MaxOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

template <In T, bool GATED, int VEC>
__global__ void __launch_bounds__(kThreads) fp8_quant_kernel(Fp8QuantProblem p) {
  using Reduce = cub::BlockReduce<float, kThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  __shared__ float row_scale;
  const int64_t n = p.cols, chunks = n / VEC, width = GATED ? 2 * n : n;
  for (int64_t r = blockIdx.x; r < p.rows; r += gridDim.x) {
    const Elem<T>* row = static_cast<const Elem<T>*>(p.in) + r * width;
    float amax = 0.0f;
    for (int64_t c = threadIdx.x; c < chunks; c += kThreads) {
      float v[VEC];
      row_values<T, GATED, VEC>(row, n, c, v);
#pragma unroll
      for (int i = 0; i < VEC; ++i) amax = fmaxf(amax, fabsf(v[i]));
    }
    const float m = Reduce(tmp).Reduce(amax, MaxOp{});
    if (threadIdx.x == 0) {
      row_scale = fp8q::token_scale(m, p.scale_ub);
      p.scale[r] = row_scale;
    }
    __syncthreads();
    const float s = row_scale;
    auto* out = reinterpret_cast<Vec<uint8_t, VEC>*>(p.out + r * n);
    for (int64_t c = threadIdx.x; c < chunks; c += kThreads) {
      float v[VEC];
      row_values<T, GATED, VEC>(row, n, c, v);
      Vec<uint8_t, VEC> q;
#pragma unroll
      for (int i = 0; i < VEC; ++i) q.v[i] = fp8q::code(v[i], s);
      out[c] = q;
    }
    __syncthreads();  // tmp and row_scale are reused by the next row
  }
}

// 16-byte loads when every row start allows them, else one value at a time
// (the e4m3 output then takes kVec-byte stores).
template <In T, bool GATED>
void launch_by_alignment(const Fp8QuantProblem& p, cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(Elem<T>);
  launch_rows<kVec>(vec_fits(p.cols, kVec, p.in, 16, p.out, kVec),
                    [](auto vec) { return fp8_quant_kernel<T, GATED, decltype(vec)::value>; }, kThreads,
                    p.rows, p, stream);
}

template <bool GATED>
void launch_by_type(const Fp8QuantProblem& p, cudaStream_t stream) {
  switch (static_cast<In>(p.in_type)) {
    case In::F32: return launch_by_alignment<In::F32, GATED>(p, stream);
    case In::F16: return launch_by_alignment<In::F16, GATED>(p, stream);
    case In::BF16: return launch_by_alignment<In::BF16, GATED>(p, stream);
  }
}

}  // namespace

void fp8_quant_cuda(const Fp8QuantProblem& p, void* stream) {
  if (p.rows == 0) return;
  auto s = static_cast<cudaStream_t>(stream);
  p.gated ? launch_by_type<true>(p, s) : launch_by_type<false>(p, s);
}

}  // namespace lowbit::moe
