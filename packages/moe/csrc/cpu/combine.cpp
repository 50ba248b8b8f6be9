// CPU kernel of moe_combine (the weighted gather-and-sum of the routed rows);
// the element arithmetic is elem_math.h's, shared with the CUDA kernel.
#include <algorithm>
#include <vector>

#include "../elem_math.h"
#include "../moe.h"

namespace lowbit::moe {
namespace {

using elem::In;

template <In T, typename Idx>
void combine_rows(const CombineProblem& p) {
  const Idx* perm = static_cast<const Idx*>(p.perm);
  std::vector<float> acc(p.cols);
  for (int64_t t = 0; t < p.m; ++t) {
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (int64_t j = 0; j < p.topk; ++j) {
      const int64_t route = t * p.topk + j;
      const int64_t r = static_cast<int64_t>(perm[route]);
      const bool valid = r >= 0 && r < p.rows;  // else a zero row, as shuffle_rows gives
      const float w = p.weights ? elem::round_to_input<T>(elem::load_any(p.w_type, p.weights,
                                                                          route))
                                : 1.0f;
      for (int64_t c = 0; c < p.cols; ++c) {
        const float v = valid ? elem::load<T>(p.in, r * p.cols + c) : 0.0f;
        acc[c] += p.weights ? elem::round_to_input<T>(elem::mul_rn(v, w)) : v;
      }
    }
    for (int64_t c = 0; c < p.cols; ++c) elem::store<T>(p.out, t * p.cols + c, acc[c]);
  }
}

template <In T>
void combine_by_index(const CombineProblem& p) {
  p.perm64 ? combine_rows<T, int64_t>(p) : combine_rows<T, int32_t>(p);
}

}  // namespace

void combine_cpu(const CombineProblem& p) {
  switch (static_cast<In>(p.in_type)) {
    case In::F32: return combine_by_index<In::F32>(p);
    case In::F16: return combine_by_index<In::F16>(p);
    case In::BF16: return combine_by_index<In::BF16>(p);
  }
}

}  // namespace lowbit::moe
