// CUDA kernel of moe_combine, every built architecture: one block per token
// (grid-stride), each thread a 16-byte chunk of columns when the row allows
// it; per chunk the routes are summed in order in fp32 (elem_math.h's
// arithmetic, the same bits as the CPU kernel and as shuffle_rows + torch's
// multiply and sum). Replaces four launches (gather, weight cast, multiply,
// sum) and the [m*topk, H] gathered copy.
#include <algorithm>

#include <lowbit/cuda_utils.h>

#include "../elem_math.h"
#include "../moe.h"

namespace lowbit::moe {
namespace {

using elem::In;

constexpr int kThreads = 128;
constexpr int64_t kMaxBlocks = 1 << 20;

template <In T>
using Elem = std::conditional_t<T == In::F32, float, uint16_t>;

template <typename E, int VEC>
struct alignas(sizeof(E) * VEC) Vec {
  E v[VEC];
};

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

template <In T, typename Idx, int VEC>
void launch(const CombineProblem& p, cudaStream_t stream) {
  const int64_t grid = std::min<int64_t>(p.m, kMaxBlocks);
  combine_kernel<T, Idx, VEC><<<static_cast<unsigned>(grid), kThreads, 0, stream>>>(p);
  LOWBIT_CHECK_LAUNCH();
}

// 16-byte accesses when every row start allows them, else one value at a time.
template <In T, typename Idx>
void launch_by_alignment(const CombineProblem& p, cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(Elem<T>);
  const bool wide = p.cols % kVec == 0 && reinterpret_cast<uintptr_t>(p.in) % 16 == 0 &&
                    reinterpret_cast<uintptr_t>(p.out) % 16 == 0;
  wide ? launch<T, Idx, kVec>(p, stream) : launch<T, Idx, 1>(p, stream);
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
