// CUDA kernel of moe_combine, every built architecture: one block per token
// (grid-stride), each thread a 16-byte chunk of columns when the row allows
// it; per chunk the routes are summed in order in fp32 (elem_math.h's
// arithmetic, the same bits as the CPU kernel and as shuffle_rows + torch's
// multiply and sum). Replaces four launches (gather, weight cast, multiply,
// sum) and the [m*topk, H] gathered copy.
#include "../elem_math.h"
#include "../moe.h"
#include "row_launch.cuh"

namespace lowbit::moe {
namespace {

using elem::In;

constexpr int kThreads = 128;

template <In T, typename Idx, int VEC>
__global__ void __launch_bounds__(kThreads) combine_kernel(CombineProblem p) {
  using V = Vec<Elem<T>, VEC>;
  const Idx* perm = static_cast<const Idx*>(p.perm);
  const V* in = static_cast<const V*>(p.in);
  V* out = static_cast<V*>(p.out);
  const int64_t chunks = p.cols / VEC;
  for (int64_t t = blockIdx.x; t < p.m; t += gridDim.x) {
    for (int64_t c = threadIdx.x; c < chunks; c += kThreads) {
      float acc[VEC];
#pragma unroll
      for (int i = 0; i < VEC; ++i) acc[i] = 0.0f;
      for (int64_t j = 0; j < p.topk; ++j) {
        const int64_t route = t * p.topk + j;
        const int64_t r = static_cast<int64_t>(perm[route]);
        V x = {};
        if (r >= 0 && r < p.rows) x = in[r * chunks + c];  // else a zero row
        const float w = p.weights ? elem::round_to_input<T>(
                                        elem::load_any(p.w_type, p.weights, route))
                                  : 1.0f;
#pragma unroll
        for (int i = 0; i < VEC; ++i) {
          const float v = elem::load<T>(x.v, i);
          acc[i] += p.weights ? elem::round_to_input<T>(elem::mul_rn(v, w)) : v;
        }
      }
      V y;
#pragma unroll
      for (int i = 0; i < VEC; ++i) elem::store<T>(y.v, i, acc[i]);
      out[t * chunks + c] = y;
    }
  }
}

// 16-byte accesses when every row start allows them, else one value at a time.
template <In T, typename Idx>
void launch_by_alignment(const CombineProblem& p, cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(Elem<T>);
  launch_rows<kVec>(vec_fits(p.cols, kVec, p.in, 16, p.out, 16),
                    [](auto vec) { return combine_kernel<T, Idx, decltype(vec)::value>; }, kThreads, p.m, p,
                    stream);
}

template <In T>
void launch_by_index(const CombineProblem& p, cudaStream_t stream) {
  p.perm64 ? launch_by_alignment<T, int64_t>(p, stream)
           : launch_by_alignment<T, int32_t>(p, stream);
}

}  // namespace

void combine_cuda(const CombineProblem& p, void* stream) {
  if (p.m == 0 || p.cols == 0) return;
  auto s = static_cast<cudaStream_t>(stream);
  switch (static_cast<In>(p.in_type)) {
    case In::F32: return launch_by_index<In::F32>(p, s);
    case In::F16: return launch_by_index<In::F16>(p, s);
    case In::BF16: return launch_by_index<In::BF16>(p, s);
  }
}

}  // namespace lowbit::moe
