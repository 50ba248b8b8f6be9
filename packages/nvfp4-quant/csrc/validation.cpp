// Argument validation of every nvfp4-quant op (docs/SPEC.md §2.1): each
// validate_* checks device, dtype, rank, shape and contiguity of every
// argument and returns the problem the kernels run. Messages name the
// argument, what was expected and what was given.
#include <algorithm>
#include <string>

#include <lowbit/arg_checks.h>
#include <lowbit/nvfp4_codec.h>

#include "nvfp4_quant.h"

namespace lowbit::nvfp4 {
namespace {

constexpr const char* kQuant = "scaled_fp4_quant";
constexpr const char* kSilu = "silu_and_mul_nvfp4_quant";

// Activation: fp16/bf16, contiguous, last dim a positive multiple of 16
// (`factor` = 2 for gate || up inputs, whose halves are quantized separately).
void check_input(const char* op, const Tensor& x, int64_t min_dim, int64_t max_dim,
                 int64_t factor) {
  check_defined(op, "input", x);
  check_cpu_or_cuda(op, "input", x);
  check_dtype(op, "input", x, {ScalarType::Half, ScalarType::BFloat16});
  LOWBIT_CHECK_ARG(x.dim() >= min_dim && x.dim() <= max_dim, op, "input",
                   min_dim == max_dim ? str(min_dim, "-D tensor")
                                      : str("at least ", min_dim, " dimension(s)"),
                   str(x.dim(), "-D tensor of shape ", shape_str(x)));
  const int64_t cols = x.size(x.dim() - 1);
  LOWBIT_CHECK_ARG(cols > 0 && cols % (16 * factor) == 0, op, "input",
                   factor == 1 ? "a last dimension n that is a positive multiple of 16"
                               : "a last dimension 2d (gate || up) with d a positive multiple of 16",
                   str("shape ", shape_str(x)));
  check_contiguous(op, "input", x);
}

void check_global_scale(const char* op, const char* arg, const Tensor& gs, const Tensor& x) {
  check_contiguous_on(op, arg, gs, "input", x, {ScalarType::Float});
  check_numel(op, arg, gs, 1);
}

// Packed output uint8 [m, pn/2]. `padded`: pn = 2 * out.size(1) may exceed n
// (a multiple of 16, SPEC §2.1 "Padded outputs"); else pn = n. Returns pn.
int64_t check_packed(const char* op, const char* arg, const Tensor& out, const Tensor& x,
                     int64_t m, int64_t n, bool padded) {
  check_defined(op, arg, out);
  check_same_device(op, arg, out, "input", x);
  check_dtype(op, arg, out, {ScalarType::Byte});
  if (!padded) {
    check_shape(op, arg, out, {m, n / 2});
  } else {
    const int64_t pn = out.dim() == 2 ? 2 * out.size(1) : -1;
    LOWBIT_CHECK_ARG(out.dim() == 2 && out.size(0) == m && pn >= n && pn % 16 == 0, op, arg,
                     str("shape [", m, ", ", n / 2, "] or, padded, [", m, ", pn/2] with pn >= ",
                         n, " a multiple of 16"),
                     str("shape ", shape_str(out)));
  }
  check_contiguous(op, arg, out);
  return padded ? 2 * out.size(1) : n;
}

// A scale buffer of `rows` x `cols` bytes: float8_e4m3fn / uint8 [rows, cols],
// or int32 [rows, cols/4] (how vLLM allocates swizzled scales). rows < 0: any.
void check_scale_buffer(const char* op, const char* arg, const Tensor& sf, const Tensor& x,
                        int64_t rows, int64_t cols) {
  check_defined(op, arg, sf);
  check_same_device(op, arg, sf, "input", x);
  ScalarType st;
  const bool word = try_scalar_type(sf, &st) && st == ScalarType::Int && cols % 4 == 0;
  if (!word) {
    if (cols % 4 == 0) {
      check_dtype(op, arg, sf, {ScalarType::Float8_e4m3fn, ScalarType::Byte, ScalarType::Int});
    } else {
      check_dtype(op, arg, sf, {ScalarType::Float8_e4m3fn, ScalarType::Byte});
    }
  }
  const int64_t want_cols = word ? cols / 4 : cols;
  const bool ok = sf.dim() == 2 && sf.size(1) == want_cols && (rows < 0 || sf.size(0) == rows);
  LOWBIT_CHECK_ARG(ok, op, arg,
                   str("shape [", rows < 0 ? std::string("*") : std::to_string(rows), ", ",
                       want_cols, "] (", word ? "int32 words of 4 scale bytes" : "scale bytes", ")"),
                   str("shape ", shape_str(sf), " of dtype ", dtype_of(sf)));
  check_contiguous(op, arg, sf);
}

uint8_t* bytes(const Tensor& t) { return static_cast<uint8_t*>(t.data_ptr()); }

// Dense ops: input [m, cols] (n = cols, or cols / 2 with SiLU) into outputs of
// width pn, scales for pn / 16 blocks.
QuantProblem validate_dense(const char* op, const Tensor& input, const Tensor& gs,
                            const char* gs_arg, bool swizzled, bool silu, const Tensor& output,
                            const char* out_arg, const Tensor& output_scale, const char* sf_arg) {
  check_input(op, input, silu ? 2 : 1, silu ? 2 : 64, silu ? 2 : 1);
  const int64_t cols = input.size(input.dim() - 1);
  QuantProblem p;
  p.n = silu ? cols / 2 : cols;
  p.m = input.numel() / cols;
  check_global_scale(op, gs_arg, gs, input);
  p.pn = check_packed(op, out_arg, output, input, p.m, p.n, true);
  const int64_t nb = p.pn / 16;
  p.kp = swizzled ? swizzled_cols(nb) : nb;
  p.sf_rows = swizzled ? swizzled_rows(p.m) : p.m;
  check_scale_buffer(op, sf_arg, output_scale, input, p.sf_rows, p.kp);
  p.in = input.data_ptr();
  p.out = bytes(output);
  p.sf = bytes(output_scale);
  p.gs = static_cast<const float*>(gs.data_ptr());
  p.bf16 = input.scalar_type() == ScalarType::BFloat16;
  p.silu = silu;
  p.swizzled = swizzled;
  return p;
}

}  // namespace

void validate_quant_input(const Tensor& input) { check_input(kQuant, input, 1, 64, 1); }

QuantProblem validate_quant(const Tensor& input, const Tensor& input_scale, bool swizzled,
                            const Tensor& output, const Tensor& output_scale) {
  return validate_dense(kQuant, input, input_scale, "input_scale", swizzled, false, output,
                        "output", output_scale, "output_scale");
}

QuantProblem validate_silu_quant(const Tensor& result, const Tensor& result_block_scale,
                                 const Tensor& input, const Tensor& input_global_scale) {
  return validate_dense(kSilu, input, input_global_scale, "input_global_scale", true, true,
                        result, "result", result_block_scale, "result_block_scale");
}

QuantProblem validate_experts_quant(const char* op, bool silu, const Tensor& output,
                                    const Tensor& output_scale, const Tensor& input,
                                    const Tensor& gs, const Tensor& off, const Tensor& sf_off) {
  check_input(op, input, 2, 2, silu ? 2 : 1);
  QuantProblem p;
  p.m = input.size(0);
  p.n = silu ? input.size(1) / 2 : input.size(1);
  p.pn = p.n;
  check_contiguous_on(op, "input_global_scale", gs, "input", input, {ScalarType::Float});
  LOWBIT_CHECK_ARG(gs.dim() == 1 && gs.size(0) >= 1, op, "input_global_scale",
                   "a 1-D tensor [E] with one scale per expert", str("shape ", shape_str(gs)));
  const int64_t E = gs.size(0);
  // the kernels hold E (and offsets into [E + 1] tables) in int32
  LOWBIT_CHECK_ARG(E < (int64_t(1) << 30), op, "input_global_scale", "fewer than 2^30 experts",
                   str("shape ", shape_str(gs)));
  const char* why = "number of experts + 1, from input_global_scale";
  check_int32_metadata(op, "input_offset_by_experts", off, {E + 1}, "input", input, why);
  check_int32_metadata(op, "output_scale_offset_by_experts", sf_off, {E + 1}, "input", input, why);
  check_packed(op, "output", output, input, p.m, p.n, false);
  p.kp = swizzled_cols(p.n / kBlock);
  check_scale_buffer(op, "output_scale", output_scale, input, -1, p.kp);
  // Any row count is accepted (as vLLM does); only whole tiles are written.
  p.sf_rows = whole_tile_scale_rows(output_scale, p.kp);
  p.in = input.data_ptr();
  p.out = bytes(output);
  p.sf = bytes(output_scale);
  p.gs = static_cast<const float*>(gs.data_ptr());
  p.off = static_cast<const int32_t*>(off.data_ptr());
  p.sf_off = static_cast<const int32_t*>(sf_off.data_ptr());
  p.num_experts = static_cast<int32_t>(E);
  p.bf16 = input.scalar_type() == ScalarType::BFloat16;
  p.silu = silu;
  p.experts = true;
  // Offsets are host memory on CPU: their values are checked there (on a GPU
  // that would need a host sync; the kernels clamp instead, see the README).
  if (input.is_cpu()) check_host_expert_offsets(op, p.off, p.sf_off, E, p.m, p.sf_rows, output_scale);
  return p;
}

}  // namespace lowbit::nvfp4
