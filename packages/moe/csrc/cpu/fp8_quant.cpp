// CPU kernel of the per-token fp8 quantization (plain and SiLU-gated); the
// arithmetic is fp8_quant_math.h's, shared with the CUDA kernel.
#include <cmath>
#include <vector>

#include "../fp8_quant_math.h"
#include "../moe.h"

namespace lowbit::moe {
namespace {

using fp8q::In;

template <In T, bool GATED>
void quant_rows(const Fp8QuantProblem& p) {
  const int64_t n = p.cols, width = GATED ? 2 * n : n;
  std::vector<float> v(n);
  for (int64_t r = 0; r < p.rows; ++r) {
    const int64_t base = r * width;
    float amax = 0.0f;
    for (int64_t i = 0; i < n; ++i) {
      const float x = GATED ? fp8q::silu_mul<T>(fp8q::load<T>(p.in, base + i),
                                                fp8q::load<T>(p.in, base + n + i))
                            : fp8q::load<T>(p.in, base + i);
      v[i] = x;
      amax = fmaxf(amax, std::fabs(x));  // fmaxf ignores NaN, as vLLM's reduction
    }
    const float s = fp8q::token_scale(amax, p.scale_ub);
    p.scale[r] = s;
    uint8_t* out = p.out + r * n;
    for (int64_t i = 0; i < n; ++i) out[i] = fp8q::code(v[i], s);
  }
}

template <bool GATED>
void quant_by_type(const Fp8QuantProblem& p) {
  switch (static_cast<In>(p.in_type)) {
    case In::F32: return quant_rows<In::F32, GATED>(p);
    case In::F16: return quant_rows<In::F16, GATED>(p);
    case In::BF16: return quant_rows<In::BF16, GATED>(p);
  }
}

}  // namespace

void fp8_quant_cpu(const Fp8QuantProblem& p) {
  p.gated ? quant_by_type<true>(p) : quant_by_type<false>(p);
}

}  // namespace lowbit::moe
