// Argument checks that several families' validation.cpp share: companion
// tensors on one device, int32 expert metadata, base-address alignment, the
// FP4 grouped GEMM operands (docs/SPEC-MOE.md §5.2-5.3), the host-side values
// of experts-quant offsets (§5.1.3) and kernel names of the by-name ops.
//
// Host-only. Include it from validation.cpp files (and moe's csrc) only, never
// from a header the CUTLASS translation units include: a change here should
// not rebuild them. Messages keep torch_utils.h's form
// "<op>: argument '<arg>': expected <x>, got <y>".
#pragma once

#include <lowbit/nvfp4_codec.h>
#include <lowbit/torch_utils.h>

#include <cstdint>
#include <initializer_list>
#include <ios>
#include <string>
#include <utility>
#include <vector>

namespace lowbit {

// An argument name with its tensor, for checks that walk several arguments.
using NamedTensor = std::pair<const char*, const Tensor*>;

// Every tensor of `args` defined and on `ref`'s device (named ref_arg).
inline void check_defined_on(const char* op, std::initializer_list<NamedTensor> args, const char* ref_arg,
                             const Tensor& ref) {
  for (const auto& [arg, t] : args) {
    check_defined(op, arg, *t);
    check_same_device(op, arg, *t, ref_arg, ref);
  }
}

// Defined, on `ref`'s device, one of `dtypes`, contiguous.
inline void check_contiguous_on(const char* op, const char* arg, const Tensor& t, const char* ref_arg,
                                const Tensor& ref, std::initializer_list<ScalarType> dtypes) {
  check_defined(op, arg, t);
  check_same_device(op, arg, t, ref_arg, ref);
  check_dtype(op, arg, t, dtypes);
  check_contiguous(op, arg, t);
}

// int32 expert metadata (offsets, problem sizes, ids) of exactly `shape`, on
// `ref`'s device, contiguous. `why`, when given, says where the shape comes
// from (it is not always the argument next to it).
inline void check_int32_metadata(const char* op, const char* arg, const Tensor& t,
                                 std::initializer_list<int64_t> shape, const char* ref_arg, const Tensor& ref,
                                 const char* why = nullptr) {
  check_defined(op, arg, t);
  check_same_device(op, arg, t, ref_arg, ref);
  check_dtype(op, arg, t, {ScalarType::Int});
  bool ok = t.dim() == static_cast<int64_t>(shape.size());
  std::string want = "shape [";
  int64_t i = 0;
  for (int64_t s : shape) {
    ok = ok && t.size(i) == s;
    want += str(i ? ", " : "", s);
    ++i;
  }
  want += why ? str("] (", why, ")") : std::string("]");
  LOWBIT_CHECK_ARG(ok, op, arg, want, str("shape ", shape_str(t)));
  check_contiguous(op, arg, t);
}

// The GPU kernels access these tensors in `bytes`-wide pieces (TMA, vector
// loads) from their base addresses; host tensors and empty ones pass.
inline void check_base_aligned(const char* op, int64_t bytes, std::initializer_list<NamedTensor> args) {
  for (const auto& [arg, t] : args) {
    if (!t->is_cuda() || t->numel() == 0) continue;
    const auto addr = reinterpret_cast<uintptr_t>(t->data_ptr());
    LOWBIT_CHECK_ARG(addr % bytes == 0, op, arg, str("a base address aligned to ", bytes, " bytes"),
                     str("address 0x", std::hex, addr, " (a sliced view?)"));
  }
}

// ------------------------------------------------ FP4 grouped GEMM (§5.2-5.3)

// The arguments cutlass_fp4_group_mm and cutlass_mxfp4_group_mm share.
struct Fp4GroupArgs {
  const Tensor& out;
  const Tensor& a;              // uint8 [M, K/2] packed e2m1
  const Tensor& b;              // uint8 [E, N, K/2] packed e2m1
  const Tensor& a_blockscale;   // [R, Kp] swizzled per expert region
  const Tensor& b_blockscales;  // [E, Np, Kp]
  const Tensor& problem_sizes;  // int32 [E, 3]
  const Tensor& expert_offsets; // int32 [E]
  const Tensor& sf_offsets;     // int32 [E]
};

// The scale format: `block` e2m1 values per scale byte, the accepted dtypes.
// Build it in the call (a temporary): `dtypes` views an array that lives as
// long as the full expression.
struct Fp4ScaleFormat {
  int64_t block;
  std::initializer_list<ScalarType> dtypes;
};

// Sizes of a validated grouped problem: E experts, M rows of a and out, N,
// K logical e2m1 elements, R rows of a_blockscale.
struct Fp4GroupShape {
  int64_t E, M, N, K, R;
};

// Packed e2m1 operand: uint8 of rank `dim`, contiguous.
inline void check_packed_fp4(const char* op, const char* arg, const Tensor& t, int64_t dim) {
  check_dtype(op, arg, t, {ScalarType::Byte});
  check_dim(op, arg, t, dim);
  check_contiguous(op, arg, t);
}

namespace detail {

// a [M, K/2] and b [E, N, K/2]; K and N positive multiples of 32 (16-byte
// fp4 rows for TMA), E below the grid's 65535 limit.
inline Fp4GroupShape check_fp4_group_operands(const char* op, const Tensor& a, const Tensor& b) {
  check_packed_fp4(op, "a", a, 2);
  check_packed_fp4(op, "b", b, 3);
  const int64_t E = b.size(0), N = b.size(1), K = 2 * b.size(2);
  LOWBIT_CHECK_ARG(a.size(1) == b.size(2), op, "a",
                   str("shape [M, ", b.size(2), "] (K/2 bytes per row, K = ", K, " from 'b')"),
                   str("shape ", shape_str(a)));
  LOWBIT_CHECK_ARG(K > 0 && K % 32 == 0, op, "b", "K = 2 * b.size(2) divisible by 32 (a positive multiple of 32)",
                   str("shape ", shape_str(b), ", K: ", K));
  LOWBIT_CHECK_ARG(N > 0 && N % 32 == 0, op, "b", "N = b.size(1) divisible by 32 (a positive multiple of 32)",
                   str("shape ", shape_str(b), ", N: ", N));
  LOWBIT_CHECK_ARG(E < 65535, op, "b", "fewer than 65535 experts (b.size(0))", E);
  return {E, a.size(0), N, K, 0};
}

// a_blockscale [R, Kp] (any R: the experts' regions lie inside it) and
// b_blockscales [E, Np, Kp]: Kp = round_up(K / block, 4), Np = round_up(N, 128).
inline int64_t check_fp4_group_scales(const char* op, const Fp4GroupArgs& x, const Fp4GroupShape& s,
                                      const Fp4ScaleFormat& f) {
  const int64_t Kp = nvfp4::swizzled_cols(s.K / f.block), Np = nvfp4::swizzled_rows(s.N);
  check_contiguous_on(op, "a_blockscale", x.a_blockscale, "a", x.a, f.dtypes);
  check_contiguous_on(op, "b_blockscales", x.b_blockscales, "a", x.a, f.dtypes);
  LOWBIT_CHECK_ARG(x.a_blockscale.dim() == 2 && x.a_blockscale.size(1) == Kp, op, "a_blockscale",
                   str("shape [R, ", Kp, "] (R scale rows of round_up(K/", f.block, ", 4) bytes, K = ", s.K, ")"),
                   str("shape ", shape_str(x.a_blockscale)));
  check_shape(op, "b_blockscales", x.b_blockscales, {s.E, Np, Kp});
  return x.a_blockscale.size(0);
}

}  // namespace detail

// Every check of the grouped FP4 GEMMs' common arguments; the caller checks
// its own extras (alphas). The device metadata's values are not read: that
// would need a host synchronisation (docs/SPEC-MOE.md §5.0.3).
inline Fp4GroupShape check_fp4_group_gemm(const char* op, const Fp4GroupArgs& x, const Fp4ScaleFormat& f) {
  check_defined(op, "a", x.a);
  check_cpu_or_cuda(op, "a", x.a);
  check_defined_on(op, {{"out", &x.out}, {"b", &x.b}}, "a", x.a);
  Fp4GroupShape s = detail::check_fp4_group_operands(op, x.a, x.b);
  s.R = detail::check_fp4_group_scales(op, x, s, f);
  check_int32_metadata(op, "problem_sizes", x.problem_sizes, {s.E, 3}, "a", x.a);
  check_int32_metadata(op, "expert_offsets", x.expert_offsets, {s.E}, "a", x.a);
  check_int32_metadata(op, "sf_offsets", x.sf_offsets, {s.E}, "a", x.a);
  check_dtype(op, "out", x.out, {ScalarType::Half, ScalarType::BFloat16});
  check_shape(op, "out", x.out, {s.M, s.N});
  check_contiguous(op, "out", x.out);
  LOWBIT_CHECK_ARG(s.E > 0 || s.M == 0, op, "b", "at least one expert when a has rows",
                   str("E = 0, M = ", s.M));
  check_base_aligned(op, 16, {{"a", &x.a}, {"b", &x.b}, {"out", &x.out}});
  check_base_aligned(op, 128, {{"a_blockscale", &x.a_blockscale}, {"b_blockscales", &x.b_blockscales}});
  return s;
}

// ------------------------------------------------ experts quant (§5.1.3)

// Scale rows the kernels may write in a swizzled buffer of `row_bytes` bytes
// per row: only whole 128-row tiles are addressable (a trailing partial tile
// is never written), whatever the buffer's dtype.
inline int64_t whole_tile_scale_rows(const Tensor& sf, int64_t row_bytes) {
  return static_cast<int64_t>(sf.numel()) * static_cast<int64_t>(sf.element_size()) / row_bytes / 128 * 128;
}

// Host (CPU-call) values of the experts-quant offsets, E experts over m input
// rows: monotone row offsets inside the input; scale regions of
// round_up(m_e, 128) rows at non-negative multiples of 128, disjoint, inside
// the buffer's sf_rows whole-tile rows.
inline void check_host_expert_offsets(const char* op, const int32_t* o, const int32_t* s, int64_t E, int64_t m,
                                      int64_t sf_rows, const Tensor& output_scale) {
  LOWBIT_CHECK_ARG(o[0] >= 0 && o[E] <= m, op, "input_offset_by_experts",
                   str("row offsets in [0, ", m, "] (input rows)"), str("first ", o[0], ", last ", o[E]));
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
  LOWBIT_CHECK_ARG(s[E] <= sf_rows, op, "output_scale",
                   str("at least ", s[E], " scale rows (output_scale_offset_by_experts[E]) in whole 128-row tiles"),
                   str(sf_rows, " rows in whole tiles (shape ", shape_str(output_scale), ")"));
}

// ------------------------------------------------ by-name kernels

// `name` must be one of `names`, the kernels of `target`; the error lists them.
inline void check_kernel_name(const char* op, const std::string& name, const std::vector<std::string>& names,
                              const char* target) {
  for (const auto& n : names)
    if (n == name) return;
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  fail(str(op, ": argument 'kernel': expected one of the ", target, " kernels (", list, "), got '", name, "'"));
}

}  // namespace lowbit
