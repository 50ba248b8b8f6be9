// lowbit_nvfp4_quant: op schemas (SPEC §2.1), argument checks, and dispatch
// to the CPU / SM90 / SM100 / SM120 kernels by the input's own device.
#include <lowbit/arch.h>
#include <lowbit/torch_utils.h>

#include <algorithm>
#include <tuple>

#include "nvfp4_quant.h"

using lowbit::ScalarType;
using lowbit::Tensor;
using lowbit::nvfp4::QuantProblem;

namespace {

constexpr const char* kQuant = "scaled_fp4_quant";
constexpr const char* kSilu = "silu_and_mul_nvfp4_quant";
constexpr const char* kExperts = "scaled_fp4_experts_quant";
constexpr const char* kSiluExperts = "silu_and_mul_scaled_fp4_experts_quant";

// Activation: fp16/bf16, contiguous, last dim a positive multiple of 16
// (`factor` = 2 for gate || up inputs, whose halves are quantized separately).
void check_input(const char* op, const Tensor& x, int64_t min_dim, int64_t max_dim,
                 int64_t factor) {
  lowbit::check_defined(op, "input", x);
  lowbit::check_cpu_or_cuda(op, "input", x);
  lowbit::check_dtype(op, "input", x, {ScalarType::Half, ScalarType::BFloat16});
  LOWBIT_CHECK_ARG(x.dim() >= min_dim && x.dim() <= max_dim, op, "input",
                   min_dim == max_dim ? lowbit::str(min_dim, "-D tensor")
                                      : lowbit::str("at least ", min_dim, " dimension(s)"),
                   lowbit::str(x.dim(), "-D tensor of shape ", lowbit::shape_str(x)));
  const int64_t cols = x.size(x.dim() - 1);
  const int64_t block = 16 * factor;
  LOWBIT_CHECK_ARG(cols > 0 && cols % block == 0, op, "input",
                   factor == 1 ? "a last dimension n that is a positive multiple of 16"
                               : "a last dimension 2d (gate || up) with d a positive multiple of 16",
                   lowbit::str("shape ", lowbit::shape_str(x)));
  lowbit::check_contiguous(op, "input", x);
}

void check_scale_vector(const char* op, const char* arg, const Tensor& gs, const Tensor& x,
                        int64_t numel) {
  lowbit::check_defined(op, arg, gs);
  lowbit::check_same_device(op, arg, gs, "input", x);
  lowbit::check_dtype(op, arg, gs, {ScalarType::Float});
  if (numel == 1) {
    lowbit::check_numel(op, arg, gs, 1);
  } else {
    lowbit::check_shape(op, arg, gs, {numel});
  }
  lowbit::check_contiguous(op, arg, gs);
}

void check_packed(const char* op, const char* arg, const Tensor& out, const Tensor& x,
                  int64_t m, int64_t n) {
  lowbit::check_defined(op, arg, out);
  lowbit::check_same_device(op, arg, out, "input", x);
  lowbit::check_dtype(op, arg, out, {ScalarType::Byte});
  lowbit::check_shape(op, arg, out, {m, n / 2});
  lowbit::check_contiguous(op, arg, out);
}

// A scale buffer of `rows` x `cols` bytes: float8_e4m3fn / uint8 [rows, cols],
// or int32 [rows, cols/4] (how vLLM allocates swizzled scales). rows < 0: any.
void check_scale_buffer(const char* op, const char* arg, const Tensor& sf, const Tensor& x,
                        int64_t rows, int64_t cols) {
  lowbit::check_defined(op, arg, sf);
  lowbit::check_same_device(op, arg, sf, "input", x);
  ScalarType st;
  const bool known = lowbit::try_scalar_type(sf, &st);
  const bool word = known && st == ScalarType::Int && cols % 4 == 0;
  if (!word) {
    if (cols % 4 == 0) {
      lowbit::check_dtype(op, arg, sf,
                          {ScalarType::Float8_e4m3fn, ScalarType::Byte, ScalarType::Int});
    } else {
      lowbit::check_dtype(op, arg, sf, {ScalarType::Float8_e4m3fn, ScalarType::Byte});
    }
  }
  const int64_t want_cols = word ? cols / 4 : cols;
  bool ok = sf.dim() == 2 && sf.size(1) == want_cols && (rows < 0 || sf.size(0) == rows);
  LOWBIT_CHECK_ARG(ok, op, arg,
                   lowbit::str("shape [", rows < 0 ? std::string("*") : std::to_string(rows), ", ",
                               want_cols, "] (", word ? "int32 words of 4 scale bytes" : "scale bytes",
                               ")"),
                   lowbit::str("shape ", lowbit::shape_str(sf), " of dtype ", lowbit::dtype_of(sf)));
  lowbit::check_contiguous(op, arg, sf);
}

void check_offsets(const char* op, const char* arg, const Tensor& off, const Tensor& x,
                   int64_t E) {
  lowbit::check_defined(op, arg, off);
  lowbit::check_same_device(op, arg, off, "input", x);
  lowbit::check_dtype(op, arg, off, {ScalarType::Int});
  LOWBIT_CHECK_ARG(off.dim() == 1 && off.size(0) == E + 1, op, arg,
                   lowbit::str("shape [", E + 1, "] (number of experts + 1, from input_global_scale)"),
                   lowbit::str("shape ", lowbit::shape_str(off)));
  lowbit::check_contiguous(op, arg, off);
}

uint8_t* bytes(const Tensor& t) { return static_cast<uint8_t*>(t.data_ptr()); }

// Run a validated problem on the input's device.
void run(const char* op, const Tensor& input, QuantProblem& p) {
  const lowbit::Target target = lowbit::target_for(op, "input", input);
  if (target == lowbit::Target::CPU) {
    lowbit::nvfp4::quant_cpu(p);
    return;
  }
#if LOWBIT_WITH_CUDA
  lowbit::DeviceGuard guard(input);
  void* stream = lowbit::current_stream(input);
  const int sms = lowbit::device_sm_count(input.get_device_index());
  switch (target) {
#if LOWBIT_BUILT_SM90
    case lowbit::Target::SM90: lowbit::nvfp4::quant_sm90(p, stream, sms); return;
#endif
#if LOWBIT_BUILT_SM100
    case lowbit::Target::SM100: lowbit::nvfp4::quant_sm100(p, stream, sms); return;
#endif
#if LOWBIT_BUILT_SM120
    case lowbit::Target::SM120: lowbit::nvfp4::quant_sm120(p, stream, sms); return;
#endif
    default: break;
  }
#endif
  lowbit::fail(lowbit::str(op, ": no kernel for ", lowbit::target_name(target), " in this build"));
}

// ------------------------------------------------------------------ dense
void quant_out_impl(const char* op, const Tensor& input, const Tensor& gs, bool swizzled,
                    const Tensor& output, const Tensor& output_scale, bool silu,
                    const char* out_arg, const char* sf_arg, const char* gs_arg) {
  check_input(op, input, silu ? 2 : 1, silu ? 2 : 64, silu ? 2 : 1);
  const int64_t cols = input.size(input.dim() - 1);
  const int64_t n = silu ? cols / 2 : cols;
  const int64_t m = input.numel() / cols;
  check_scale_vector(op, gs_arg, gs, input, 1);
  check_packed(op, out_arg, output, input, m, n);
  const int64_t nb = n / 16, kp = lowbit::round_up<int64_t>(nb, 4);
  const int64_t rows = swizzled ? lowbit::round_up<int64_t>(m, 128) : m;
  check_scale_buffer(op, sf_arg, output_scale, input, rows, swizzled ? kp : nb);
  QuantProblem p;
  p.in = input.data_ptr();
  p.out = bytes(output);
  p.sf = bytes(output_scale);
  p.gs = static_cast<const float*>(gs.data_ptr());
  p.m = m;
  p.n = n;
  p.kp = swizzled ? kp : nb;
  p.sf_rows = rows;
  p.bf16 = input.scalar_type() == ScalarType::BFloat16;
  p.silu = silu;
  p.swizzled = swizzled;
  run(op, input, p);
}

void scaled_fp4_quant_out(Tensor input, Tensor input_scale, bool is_sf_swizzled_layout,
                          Tensor output, Tensor output_scale) {
  quant_out_impl(kQuant, input, input_scale, is_sf_swizzled_layout, output, output_scale, false,
                 "output", "output_scale", "input_scale");
}

std::tuple<Tensor, Tensor> scaled_fp4_quant(Tensor input, Tensor input_scale,
                                            bool is_sf_swizzled_layout) {
  check_input(kQuant, input, 1, 64, 1);
  const int64_t n = input.size(input.dim() - 1);
  const int64_t m = input.numel() / n;
  const int64_t nb = n / 16;
  Tensor out = lowbit::empty_on(input, {m, n / 2}, ScalarType::Byte);
  Tensor sf = is_sf_swizzled_layout
                  ? lowbit::empty_on(input,
                                     {lowbit::round_up<int64_t>(m, 128),
                                      lowbit::round_up<int64_t>(nb, 4)},
                                     ScalarType::Float8_e4m3fn)
                  : lowbit::empty_on(input, {m, nb}, ScalarType::Float8_e4m3fn);
  quant_out_impl(kQuant, input, input_scale, is_sf_swizzled_layout, out, sf, false, "output",
                 "output_scale", "input_scale");
  return {out, sf};
}

void silu_and_mul_nvfp4_quant(Tensor result, Tensor result_block_scale, Tensor input,
                              Tensor input_global_scale) {
  quant_out_impl(kSilu, input, input_global_scale, true, result, result_block_scale, true,
                 "result", "result_block_scale", "input_global_scale");
}

// ------------------------------------------------------------------ experts
void experts_impl(const char* op, bool silu, const Tensor& output, const Tensor& output_scale,
                  const Tensor& input, const Tensor& gs, const Tensor& off,
                  const Tensor& sf_off) {
  check_input(op, input, 2, 2, silu ? 2 : 1);
  const int64_t m = input.size(0);
  const int64_t n = silu ? input.size(1) / 2 : input.size(1);
  lowbit::check_defined(op, "input_global_scale", gs);
  lowbit::check_same_device(op, "input_global_scale", gs, "input", input);
  lowbit::check_dtype(op, "input_global_scale", gs, {ScalarType::Float});
  LOWBIT_CHECK_ARG(gs.dim() == 1 && gs.size(0) >= 1, op, "input_global_scale",
                   "a 1-D tensor [E] with one scale per expert",
                   lowbit::str("shape ", lowbit::shape_str(gs)));
  lowbit::check_contiguous(op, "input_global_scale", gs);
  const int64_t E = gs.size(0);
  check_offsets(op, "input_offset_by_experts", off, input, E);
  check_offsets(op, "output_scale_offset_by_experts", sf_off, input, E);
  check_packed(op, "output", output, input, m, n);
  const int64_t nb = n / 16, kp = lowbit::round_up<int64_t>(nb, 4);
  check_scale_buffer(op, "output_scale", output_scale, input, -1, kp);
  const int64_t rows = output_scale.numel() * output_scale.element_size() / kp;
  // The swizzled layout is made of whole 128-row tiles (SPEC §1.3).
  LOWBIT_CHECK_ARG(rows % 128 == 0, op, "output_scale",
                   "a number of rows that is a multiple of 128 (whole 128x4 tiles)",
                   lowbit::str(rows, " rows (shape ", lowbit::shape_str(output_scale), ")"));

  QuantProblem p;
  p.in = input.data_ptr();
  p.out = bytes(output);
  p.sf = bytes(output_scale);
  p.gs = static_cast<const float*>(gs.data_ptr());
  p.off = static_cast<const int32_t*>(off.data_ptr());
  p.sf_off = static_cast<const int32_t*>(sf_off.data_ptr());
  p.m = m;
  p.n = n;
  p.kp = kp;
  p.sf_rows = rows;
  p.num_experts = static_cast<int32_t>(E);
  p.bf16 = input.scalar_type() == ScalarType::BFloat16;
  p.silu = silu;
  p.swizzled = true;
  p.experts = true;

  if (input.is_cpu()) {
    // Offsets are host memory here: validate their values (on a GPU that
    // would need a host sync; the kernels there clamp instead, see README).
    const int32_t* o = p.off;
    const int32_t* s = p.sf_off;
    LOWBIT_CHECK_ARG(o[0] >= 0 && o[E] <= m, op, "input_offset_by_experts",
                     lowbit::str("row offsets in [0, ", m, "] (input rows)"),
                     lowbit::str("first ", o[0], ", last ", o[E]));
    for (int64_t e = 0; e < E; ++e) {
      LOWBIT_CHECK_ARG(o[e + 1] >= o[e], op, "input_offset_by_experts",
                       "non-decreasing row offsets",
                       lowbit::str("offset[", e + 1, "] = ", o[e + 1], " < offset[", e, "] = ", o[e]));
    }
    for (int64_t e = 0; e <= E; ++e) {
      LOWBIT_CHECK_ARG(s[e] % 128 == 0 && s[e] >= 0, op, "output_scale_offset_by_experts",
                       "non-negative multiples of 128",
                       lowbit::str("offset[", e, "] = ", s[e]));
    }
    for (int64_t e = 0; e < E; ++e) {
      const int64_t need = lowbit::round_up<int64_t>(o[e + 1] - o[e], 128);
      LOWBIT_CHECK_ARG(s[e + 1] - s[e] >= need, op, "output_scale_offset_by_experts",
                       lowbit::str("a region of at least round_up(m_e, 128) = ", need,
                                   " rows for expert ", e),
                       lowbit::str(s[e + 1] - s[e], " rows (offsets ", s[e], " .. ", s[e + 1], ")"));
    }
    LOWBIT_CHECK_ARG(s[E] <= rows, op, "output_scale",
                     lowbit::str("at least ", s[E], " scale rows (output_scale_offset_by_experts[E])"),
                     lowbit::str(rows, " rows (shape ", lowbit::shape_str(output_scale), ")"));
  }
  run(op, input, p);
}

void scaled_fp4_experts_quant(Tensor output, Tensor output_scale, Tensor input,
                              Tensor input_global_scale, Tensor input_offset_by_experts,
                              Tensor output_scale_offset_by_experts) {
  experts_impl(kExperts, false, output, output_scale, input, input_global_scale,
               input_offset_by_experts, output_scale_offset_by_experts);
}

void silu_and_mul_scaled_fp4_experts_quant(Tensor output, Tensor output_scale, Tensor input,
                                           Tensor input_global_scale,
                                           Tensor input_offset_by_experts,
                                           Tensor output_scale_offset_by_experts) {
  experts_impl(kSiluExperts, true, output, output_scale, input, input_global_scale,
               input_offset_by_experts, output_scale_offset_by_experts);
}

std::string built_archs() { return LOWBIT_CUDA_ARCHS; }

}  // namespace

STABLE_TORCH_LIBRARY(lowbit_nvfp4_quant, m) {
  m.def("scaled_fp4_quant(Tensor input, Tensor input_scale, bool is_sf_swizzled_layout) "
        "-> (Tensor, Tensor)");
  m.def("scaled_fp4_quant.out(Tensor input, Tensor input_scale, bool is_sf_swizzled_layout, *, "
        "Tensor(a!) output, Tensor(b!) output_scale) -> ()");
  m.def("silu_and_mul_nvfp4_quant(Tensor(a!) result, Tensor(b!) result_block_scale, "
        "Tensor input, Tensor input_global_scale) -> ()");
  m.def("scaled_fp4_experts_quant(Tensor(a!) output, Tensor(b!) output_scale, Tensor input, "
        "Tensor input_global_scale, Tensor input_offset_by_experts, "
        "Tensor output_scale_offset_by_experts) -> ()");
  m.def("silu_and_mul_scaled_fp4_experts_quant(Tensor(a!) output, Tensor(b!) output_scale, "
        "Tensor input, Tensor input_global_scale, Tensor input_offset_by_experts, "
        "Tensor output_scale_offset_by_experts) -> ()");
  m.def("built_archs() -> str");
}

// Same entry points for both keys: each validates devices and dispatches on
// the input's device (a CPU-only build still gives a clear error for CUDA).
#define LOWBIT_NVFP4_IMPLS(m)                                                        \
  m.impl("scaled_fp4_quant", TORCH_BOX(&scaled_fp4_quant));                          \
  m.impl("scaled_fp4_quant.out", TORCH_BOX(&scaled_fp4_quant_out));                  \
  m.impl("silu_and_mul_nvfp4_quant", TORCH_BOX(&silu_and_mul_nvfp4_quant));          \
  m.impl("scaled_fp4_experts_quant", TORCH_BOX(&scaled_fp4_experts_quant));          \
  m.impl("silu_and_mul_scaled_fp4_experts_quant",                                    \
         TORCH_BOX(&silu_and_mul_scaled_fp4_experts_quant));

STABLE_TORCH_LIBRARY_IMPL(lowbit_nvfp4_quant, CPU, m) { LOWBIT_NVFP4_IMPLS(m) }
STABLE_TORCH_LIBRARY_IMPL(lowbit_nvfp4_quant, CUDA, m) { LOWBIT_NVFP4_IMPLS(m) }
STABLE_TORCH_LIBRARY_IMPL(lowbit_nvfp4_quant, CompositeImplicitAutograd, m) {
  m.impl("built_archs", TORCH_BOX(&built_archs));
}
