// Argument validation of every lowbit_mxfp4 op (docs/SPEC-MOE.md §5.3-5.5):
// device, dtype, rank, shape, contiguity and base-address alignment of every
// argument; each failure names the argument, what was expected and what came.
// Device metadata (offsets, problem sizes, sorted_expert_ids) is checked for
// dtype, shape and device only on CUDA: its values would need a host
// synchronisation, so the kernels stay in bounds whatever it holds (§5.0.3).
// On the CPU the offsets are host memory and their values are checked here.
#include "mxfp4.h"

#include <array>
#include <cstdint>
#include <initializer_list>
#include <ios>
#include <tuple>
#include <utility>

namespace mxfp4 {
namespace {

using lowbit::ScalarType;
using lowbit::round_up;
using lowbit::shape_str;
using lowbit::str;

// The GPU kernels access these tensors in `bytes`-wide pieces from their base.
void check_aligned(const char* op, const char* arg, const Tensor& t, int64_t bytes) {
  if (!t.is_cuda() || t.numel() == 0) return;
  const auto addr = reinterpret_cast<uintptr_t>(t.data_ptr());
  LOWBIT_CHECK_ARG(addr % bytes == 0, op, arg, str("a base address aligned to ", bytes, " bytes"),
                   str("address 0x", std::hex, addr));
}

// int32 metadata of the given shape on `ref`'s device, contiguous.
void check_metadata(const char* op, const char* arg, const Tensor& t, std::initializer_list<int64_t> shape,
                    const char* ref_arg, const Tensor& ref) {
  lowbit::check_defined(op, arg, t);
  lowbit::check_same_device(op, arg, t, ref_arg, ref);
  lowbit::check_dtype(op, arg, t, {ScalarType::Int});
  lowbit::check_shape(op, arg, t, shape);
  lowbit::check_contiguous(op, arg, t);
}

// ------------------------------------------------ experts quant (§5.4-5.5)

// input fp16/bf16 [m, k] (silu: [m, 2k]), k a positive multiple of 32.
void check_quant_input(const char* op, bool silu, const Tensor& x) {
  lowbit::check_defined(op, "input", x);
  lowbit::check_cpu_or_cuda(op, "input", x);
  lowbit::check_dtype(op, "input", x, {ScalarType::Half, ScalarType::BFloat16});
  lowbit::check_dim(op, "input", x, 2);
  const int64_t cols = x.size(1);
  LOWBIT_CHECK_ARG(cols > 0 && cols % (silu ? 64 : 32) == 0, op, "input",
                   silu ? "a width 2k (gate || up) with k a positive multiple of 32"
                        : "a width k that is a positive multiple of 32",
                   str("shape ", shape_str(x)));
  lowbit::check_contiguous(op, "input", x);
  check_aligned(op, "input", x, 16);
}

// Scale buffer: int32 [R, kp/4] (vLLM's allocation) or uint8 [R, kp]; any R.
void check_quant_scales(const char* op, const Tensor& sf, const Tensor& x, int64_t kp) {
  lowbit::check_defined(op, "output_scale", sf);
  lowbit::check_same_device(op, "output_scale", sf, "input", x);
  lowbit::check_dtype(op, "output_scale", sf, {ScalarType::Int, ScalarType::Byte});
  const bool words = sf.scalar_type() == ScalarType::Int;
  const int64_t cols = words ? kp / 4 : kp;
  LOWBIT_CHECK_ARG(sf.dim() == 2 && sf.size(1) == cols, op, "output_scale",
                   str("shape [R, ", cols, "] (", words ? "int32 words of 4" : "", " E8M0 scale bytes, ",
                       kp, " per scale row)"),
                   str("shape ", shape_str(sf), " of dtype ", lowbit::dtype_of(sf)));
  lowbit::check_contiguous(op, "output_scale", sf);
  check_aligned(op, "output_scale", sf, 4);
}

// Host offsets (CPU call): monotone rows inside the input, scale regions of
// round_up(m_e, 128) rows at multiples of 128, disjoint, inside the buffer.
void check_host_offsets(const char* op, const QuantProblem& p) {
  const int32_t *o = p.off, *s = p.sf_off;
  const int64_t E = p.num_experts;
  LOWBIT_CHECK_ARG(o[0] >= 0 && o[E] <= p.m, op, "input_offset_by_experts",
                   str("row offsets in [0, ", p.m, "] (input rows)"), str("first ", o[0], ", last ", o[E]));
  for (int64_t e = 0; e < E; ++e)
    LOWBIT_CHECK_ARG(o[e + 1] >= o[e], op, "input_offset_by_experts", "non-decreasing row offsets",
                     str("offset[", e + 1, "] = ", o[e + 1], " < offset[", e, "] = ", o[e]));
  for (int64_t e = 0; e <= E; ++e)
    LOWBIT_CHECK_ARG(s[e] % 128 == 0 && s[e] >= 0, op, "output_scale_offset_by_experts",
                     "non-negative multiples of 128", str("offset[", e, "] = ", s[e]));
  for (int64_t e = 0; e < E; ++e) {
    const int64_t need = round_up<int64_t>(o[e + 1] - o[e], 128);
    LOWBIT_CHECK_ARG(s[e + 1] - s[e] >= need, op, "output_scale_offset_by_experts",
                     str("a region of at least round_up(m_e, 128) = ", need, " rows for expert ", e),
                     str(s[e + 1] - s[e], " rows (offsets ", s[e], " .. ", s[e + 1], ")"));
  }
  LOWBIT_CHECK_ARG(s[E] <= p.sf_rows, op, "output_scale",
                   str("at least ", s[E], " scale rows (output_scale_offset_by_experts[E]) in whole 128-row tiles"),
                   str(p.sf_rows, " rows in whole tiles"));
}

// sorted_expert_ids: int32 [m] on the input's device (a hint; never trusted).
void check_ids(const char* op, const std::optional<Tensor>& ids, const Tensor& x) {
  if (!ids.has_value()) return;
  check_metadata(op, "sorted_expert_ids", *ids, {x.size(0)}, "input", x);
}

// ------------------------------------------------ group GEMM (§5.3)

// a [M, K/2] and b [E, N, K/2] packed e2m1; returns (E, N, K).
std::array<int64_t, 3> check_group_operands(const Tensor& a, const Tensor& b) {
  lowbit::check_dtype(kGroupOp, "a", a, {ScalarType::Byte});
  lowbit::check_dtype(kGroupOp, "b", b, {ScalarType::Byte});
  lowbit::check_dim(kGroupOp, "a", a, 2);
  lowbit::check_dim(kGroupOp, "b", b, 3);
  lowbit::check_contiguous(kGroupOp, "a", a);
  lowbit::check_contiguous(kGroupOp, "b", b);
  const int64_t E = b.size(0), N = b.size(1), K = 2 * b.size(2);
  LOWBIT_CHECK_ARG(a.size(1) == b.size(2), kGroupOp, "a",
                   str("shape [M, ", b.size(2), "] (K/2 bytes per row, K = ", K, " from 'b')"),
                   str("shape ", shape_str(a)));
  LOWBIT_CHECK_ARG(K > 0 && K % 32 == 0, kGroupOp, "b", "K = 2 * b.size(2) a positive multiple of 32",
                   str("shape ", shape_str(b), ", K: ", K));
  LOWBIT_CHECK_ARG(N > 0 && N % 32 == 0, kGroupOp, "b", "N = b.size(1) a positive multiple of 32",
                   str("shape ", shape_str(b), ", N: ", N));
  LOWBIT_CHECK_ARG(E < 65535, kGroupOp, "b", "fewer than 65535 experts (b.size(0))", E);
  return {E, N, K};
}

// a_blockscale uint8 [R, Kp] (any R: the experts' regions lie inside it) and
// b_blockscales uint8 [E, Np, Kp], E8M0 bytes; returns R.
int64_t check_group_scales(const Tensor& sa, const Tensor& sb, int64_t E, int64_t N, int64_t K, const Tensor& a) {
  const int64_t Kp = round_up<int64_t>(K / 32, 4), Np = round_up<int64_t>(N, 128);
  for (auto [name, t] : {std::pair<const char*, const Tensor*>{"a_blockscale", &sa}, {"b_blockscales", &sb}}) {
    lowbit::check_defined(kGroupOp, name, *t);
    lowbit::check_same_device(kGroupOp, name, *t, "a", a);
    lowbit::check_dtype(kGroupOp, name, *t, {ScalarType::Byte});
    lowbit::check_contiguous(kGroupOp, name, *t);
  }
  LOWBIT_CHECK_ARG(sa.dim() == 2 && sa.size(1) == Kp, kGroupOp, "a_blockscale",
                   str("shape [R, ", Kp, "] (R scale rows of round_up(K/32, 4) bytes, K = ", K, ")"),
                   str("shape ", shape_str(sa)));
  lowbit::check_shape(kGroupOp, "b_blockscales", sb, {E, Np, Kp});
  return sa.size(0);
}

}  // namespace

QuantProblem validate_experts_quant(const char* op, bool silu, const Tensor& output, const Tensor& output_scale,
                                    const Tensor& input, const Tensor& off, const Tensor& sf_off,
                                    int64_t n_experts, const std::optional<Tensor>& ids) {
  check_quant_input(op, silu, input);
  QuantProblem p;
  p.m = input.size(0);
  p.k = silu ? input.size(1) / 2 : input.size(1);
  p.kp = round_up<int64_t>(p.k / 32, 4);
  LOWBIT_CHECK_ARG(n_experts >= 1 || (n_experts == 0 && p.m == 0), op, "n_experts",
                   "at least 1 (0 only for an input without rows)", n_experts);
  LOWBIT_CHECK_ARG(n_experts < (int64_t(1) << 30), op, "n_experts", "fewer than 2^30 experts", n_experts);
  check_metadata(op, "input_offset_by_experts", off, {n_experts + 1}, "input", input);
  check_metadata(op, "output_scale_offset_by_experts", sf_off, {n_experts + 1}, "input", input);
  lowbit::check_defined(op, "output", output);
  lowbit::check_same_device(op, "output", output, "input", input);
  lowbit::check_dtype(op, "output", output, {ScalarType::Byte});
  lowbit::check_shape(op, "output", output, {p.m, p.k / 2});
  lowbit::check_contiguous(op, "output", output);
  check_aligned(op, "output", output, 16);
  check_quant_scales(op, output_scale, input, p.kp);
  check_ids(op, ids, input);
  // The swizzled layout is made of whole 128-row tiles (§5.1.2): only those
  // rows of the buffer are addressable; a trailing partial tile is never written.
  p.sf_rows = output_scale.numel() * output_scale.element_size() / p.kp / 128 * 128;
  p.in = input.data_ptr();
  p.out = static_cast<uint8_t*>(output.data_ptr());
  p.sf = static_cast<uint8_t*>(output_scale.data_ptr());
  p.off = static_cast<const int32_t*>(off.data_ptr());
  p.sf_off = static_cast<const int32_t*>(sf_off.data_ptr());
  p.num_experts = static_cast<int32_t>(n_experts);
  p.bf16 = input.scalar_type() == ScalarType::BFloat16;
  p.silu = silu;
  if (input.is_cpu() && n_experts > 0) check_host_offsets(op, p);
  return p;
}

GroupProblem validate_mxfp4_group_mm(Tensor out, Tensor a, Tensor b, Tensor sa, Tensor sb, Tensor problem_sizes,
                                     Tensor expert_offsets, Tensor sf_offsets) {
  lowbit::check_defined(kGroupOp, "a", a);
  lowbit::check_cpu_or_cuda(kGroupOp, "a", a);
  for (auto [name, t] : {std::pair<const char*, const Tensor*>{"out", &out}, {"b", &b}}) {
    lowbit::check_defined(kGroupOp, name, *t);
    lowbit::check_same_device(kGroupOp, name, *t, "a", a);
  }
  const auto [E, N, K] = check_group_operands(a, b);
  const int64_t M = a.size(0);
  const int64_t R = check_group_scales(sa, sb, E, N, K, a);
  check_metadata(kGroupOp, "problem_sizes", problem_sizes, {E, 3}, "a", a);
  check_metadata(kGroupOp, "expert_offsets", expert_offsets, {E}, "a", a);
  check_metadata(kGroupOp, "sf_offsets", sf_offsets, {E}, "a", a);
  lowbit::check_dtype(kGroupOp, "out", out, {ScalarType::Half, ScalarType::BFloat16});
  lowbit::check_shape(kGroupOp, "out", out, {M, N});
  lowbit::check_contiguous(kGroupOp, "out", out);
  LOWBIT_CHECK_ARG(E > 0 || M == 0, kGroupOp, "b", "at least one expert when a has rows", str("E = 0, M = ", M));
  for (auto [name, t, bytes] : {std::tuple<const char*, const Tensor*, int64_t>{"a", &a, 16}, {"b", &b, 16},
                                {"out", &out, 16}, {"a_blockscale", &sa, 128}, {"b_blockscales", &sb, 128}})
    check_aligned(kGroupOp, name, *t, bytes);
  return GroupProblem{out, a, b, sa, sb, problem_sizes, expert_offsets, sf_offsets, E, M, N, K, R, {}};
}

void check_kernel_name(const std::string& name, const std::vector<std::string>& names, const char* target,
                       const char* op) {
  for (const auto& n : names)
    if (n == name) return;
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  lowbit::fail(str(op, ": argument 'kernel': expected one of the ", target, " kernels (", list, "), got '", name,
                   "'"));
}

}  // namespace mxfp4
