// Stable-ABI tensor helpers shared by every lowbit kernel package.
//
// Host-only and CUDA-free: usable from the registration file and from cpu/
// kernels of a CPU-only build. Everything here throws std::runtime_error, which
// torch surfaces as a Python RuntimeError. Messages always name the argument,
// what was expected and what was given.
#pragma once

#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>

#include <cstdint>
#include <initializer_list>
#include <sstream>
#include <stdexcept>
#include <string>

namespace lowbit {

using torch::headeronly::ScalarType;
using Tensor = torch::stable::Tensor;

// ---------------------------------------------------------------- messages

namespace detail {
inline void append(std::ostringstream&) {}
template <typename T, typename... Rest>
inline void append(std::ostringstream& os, const T& v, const Rest&... rest) {
  os << v;
  append(os, rest...);
}
}  // namespace detail

template <typename... Args>
inline std::string str(const Args&... args) {
  std::ostringstream os;
  detail::append(os, args...);
  return os.str();
}

[[noreturn]] inline void fail(const std::string& msg) {
  throw std::runtime_error(msg);
}

}  // namespace lowbit

// LOWBIT_CHECK(cond, parts...): throw RuntimeError(parts...) when cond is false.
// The message is built only on failure.
#define LOWBIT_CHECK(cond, ...)                    \
  do {                                             \
    if (__builtin_expect(!(cond), 0)) {            \
      ::lowbit::fail(::lowbit::str(__VA_ARGS__));  \
    }                                              \
  } while (0)

// LOWBIT_CHECK_ARG(cond, op, arg, expected, got): the standard
// "<op>: argument '<arg>': expected <expected>, got <got>" message.
#define LOWBIT_CHECK_ARG(cond, op, arg, expected, got)                      \
  LOWBIT_CHECK(cond, op, ": argument '", arg, "': expected ", expected,     \
               ", got ", got)

namespace lowbit {

// ---------------------------------------------------------------- names

inline const char* dtype_name(ScalarType t) {
  switch (t) {
    case ScalarType::Byte: return "uint8";
    case ScalarType::Char: return "int8";
    case ScalarType::Short: return "int16";
    case ScalarType::Int: return "int32";
    case ScalarType::Long: return "int64";
    case ScalarType::Half: return "float16";
    case ScalarType::Float: return "float32";
    case ScalarType::Double: return "float64";
    case ScalarType::Bool: return "bool";
    case ScalarType::BFloat16: return "bfloat16";
    case ScalarType::Float8_e4m3fn: return "float8_e4m3fn";
    case ScalarType::Float8_e5m2: return "float8_e5m2";
    case ScalarType::Float8_e4m3fnuz: return "float8_e4m3fnuz";
    case ScalarType::Float8_e5m2fnuz: return "float8_e5m2fnuz";
    case ScalarType::Float8_e8m0fnu: return "float8_e8m0fnu";
    case ScalarType::Float4_e2m1fn_x2: return "float4_e2m1fn_x2";
    default: return "an unsupported dtype";
  }
}

// Read a tensor's dtype without throwing torch's own "Not yet supported
// ScalarType" for dtypes newer than the target ABI (fp4x2, e8m0 at 2.10).
inline bool try_scalar_type(const Tensor& t, ScalarType* out) {
  try {
    *out = t.scalar_type();
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

inline std::string dtype_of(const Tensor& t) {
  ScalarType s;
  return try_scalar_type(t, &s) ? std::string(dtype_name(s))
                                : std::string("a dtype unknown to torch 2.10");
}

inline std::string shape_str(const Tensor& t) {
  std::ostringstream os;
  os << "[";
  for (int64_t i = 0; i < t.dim(); ++i) os << (i ? ", " : "") << t.size(i);
  os << "]";
  return os.str();
}

inline std::string device_str(const Tensor& t) {
  if (t.is_cpu()) return "cpu";
  if (t.is_cuda()) return str("cuda:", static_cast<int>(t.get_device_index()));
  return "a non-CPU, non-CUDA device";
}

// ---------------------------------------------------------------- checks
// Each takes the op name and the argument name so the error says which.

inline void check_defined(const char* op, const char* arg, const Tensor& t) {
  LOWBIT_CHECK_ARG(t.defined(), op, arg, "a tensor", "an undefined tensor");
}

template <class Container>
inline void check_dtype(const char* op, const char* arg, const Tensor& t,
                        const Container& allowed) {
  ScalarType s;
  bool known = try_scalar_type(t, &s);
  bool ok = false;
  if (known)
    for (ScalarType a : allowed) ok = ok || (a == s);
  if (!ok) {
    std::string exp = "dtype ";
    size_t i = 0, n = allowed.size();
    for (ScalarType a : allowed) {
      exp += (i == 0 ? "" : (i + 1 == n ? " or " : ", "));
      exp += dtype_name(a);
      ++i;
    }
    fail(str(op, ": argument '", arg, "': expected ", exp, ", got ",
             dtype_of(t)));
  }
}

inline void check_dtype(const char* op, const char* arg, const Tensor& t,
                        std::initializer_list<ScalarType> allowed) {
  check_dtype<std::initializer_list<ScalarType>>(op, arg, t, allowed);
}

inline void check_dim(const char* op, const char* arg, const Tensor& t,
                      int64_t dim) {
  LOWBIT_CHECK_ARG(t.dim() == dim, op, arg, str(dim, "-D tensor"),
                   str(t.dim(), "-D tensor of shape ", shape_str(t)));
}

inline void check_min_dim(const char* op, const char* arg, const Tensor& t,
                          int64_t dim) {
  LOWBIT_CHECK_ARG(t.dim() >= dim, op, arg,
                   str("at least ", dim, " dimension(s)"),
                   str(t.dim(), "-D tensor of shape ", shape_str(t)));
}

// Exact shape; a negative entry means "any size" in that dimension.
inline void check_shape(const char* op, const char* arg, const Tensor& t,
                        std::initializer_list<int64_t> shape) {
  bool ok = t.dim() == static_cast<int64_t>(shape.size());
  int64_t i = 0;
  std::string exp = "shape [";
  for (int64_t s : shape) {
    if (ok && s >= 0 && t.size(i) != s) ok = false;
    exp += (i ? ", " : "");
    exp += (s >= 0 ? std::to_string(s) : std::string("*"));
    ++i;
  }
  exp += "]";
  LOWBIT_CHECK_ARG(ok, op, arg, exp, str("shape ", shape_str(t)));
}

inline void check_numel(const char* op, const char* arg, const Tensor& t,
                        int64_t numel) {
  LOWBIT_CHECK_ARG(t.numel() == numel, op, arg, str(numel, " element(s)"),
                   str(t.numel(), " element(s) (shape ", shape_str(t), ")"));
}

inline void check_contiguous(const char* op, const char* arg,
                             const Tensor& t) {
  LOWBIT_CHECK_ARG(t.is_contiguous(), op, arg, "a contiguous tensor",
                   "a non-contiguous tensor of shape " + shape_str(t));
}

inline void check_multiple(const char* op, const char* what, int64_t value,
                           int64_t multiple) {
  LOWBIT_CHECK(value % multiple == 0, op, ": ", what, " must be a multiple of ",
               multiple, ", got ", value);
}

inline void check_cpu(const char* op, const char* arg, const Tensor& t) {
  LOWBIT_CHECK_ARG(t.is_cpu(), op, arg, "a CPU tensor",
                   "a tensor on " + device_str(t));
}

// `t` must live on the same device as `ref` (named ref_arg).
inline void check_same_device(const char* op, const char* arg, const Tensor& t,
                              const char* ref_arg, const Tensor& ref) {
  bool same = (t.is_cpu() && ref.is_cpu()) ||
              (t.is_cuda() && ref.is_cuda() &&
               t.get_device_index() == ref.get_device_index());
  LOWBIT_CHECK_ARG(same, op, arg,
                   str("a tensor on ", device_str(ref), " (the device of '",
                       ref_arg, "')"),
                   "a tensor on " + device_str(t));
}

inline void check_cpu_or_cuda(const char* op, const char* arg,
                              const Tensor& t) {
  LOWBIT_CHECK_ARG(t.is_cpu() || t.is_cuda(), op, arg,
                   "a CPU or CUDA tensor", "a tensor on " + device_str(t));
}

// ---------------------------------------------------------------- misc

template <typename T>
constexpr T ceil_div(T a, T b) { return (a + b - 1) / b; }
template <typename T>
constexpr T round_up(T a, T b) { return ceil_div(a, b) * b; }

// Allocate an uninitialised tensor on `like`'s device.
inline Tensor empty_on(const Tensor& like,
                       torch::headeronly::IntHeaderOnlyArrayRef sizes,
                       ScalarType dtype) {
  return torch::stable::empty(sizes, dtype, std::nullopt, like.device());
}

}  // namespace lowbit
