// torch (stable ABI) <-> CUTLASS / CuTe: element types, layouts, status.
//
// The stable-ABI counterpart of CUTLASS-extension torch utilities: a kernel
// package converts its validated tensors into CuTe layouts and CUTLASS element
// types through these helpers, so the checks and messages are the same in
// every package. Host-side only; needs the CUTLASS headers.
#pragma once

#include <lowbit/torch_utils.h>

#include <cute/layout.hpp>
#include <cute/tensor.hpp>
#include <cutlass/cutlass.h>
#include <cutlass/float8.h>
#include <cutlass/float_subbyte.h>
#include <cutlass/integer_subbyte.h>
#include <cutlass/numeric_types.h>

#include <array>
#include <cstdint>
#include <type_traits>

// LOWBIT_CUTLASS_CHECK(status_expr, op): throw with CUTLASS's status string.
#define LOWBIT_CUTLASS_CHECK(expr, op)                                      \
  do {                                                                      \
    cutlass::Status lowbit_st_ = (expr);                                    \
    LOWBIT_CHECK(lowbit_st_ == cutlass::Status::kSuccess, op,               \
                 ": CUTLASS returned ", cutlassGetStatusString(lowbit_st_), \
                 " from ", #expr);                                          \
  } while (0)

namespace lowbit {

// ------------------------------------------------------------ element types
// CutlassElement<S>::type is the CUTLASS element of torch dtype S.
template <ScalarType S> struct CutlassElement;
#define LOWBIT_MAP_DTYPE(S, T)                                   \
  template <> struct CutlassElement<ScalarType::S> { using type = T; };
LOWBIT_MAP_DTYPE(Half, cutlass::half_t)
LOWBIT_MAP_DTYPE(BFloat16, cutlass::bfloat16_t)
LOWBIT_MAP_DTYPE(Float, float)
LOWBIT_MAP_DTYPE(Float8_e4m3fn, cutlass::float_e4m3_t)
LOWBIT_MAP_DTYPE(Float8_e5m2, cutlass::float_e5m2_t)
LOWBIT_MAP_DTYPE(Float8_e8m0fnu, cutlass::float_ue8m0_t)
LOWBIT_MAP_DTYPE(Float4_e2m1fn_x2, cutlass::float_e2m1_t)
LOWBIT_MAP_DTYPE(Byte, uint8_t)
LOWBIT_MAP_DTYPE(Char, int8_t)
LOWBIT_MAP_DTYPE(Int, int32_t)
LOWBIT_MAP_DTYPE(Long, int64_t)
#undef LOWBIT_MAP_DTYPE
template <ScalarType S> using cutlass_element_t = typename CutlassElement<S>::type;

// TorchStorage<T>: the torch dtypes a buffer of CUTLASS element T may have.
// Sub-byte and scale-only types have no torch dtype of their own: int4 travels
// packed in uint8/int32, e2m1 packed in uint8 (or float4_e2m1fn_x2), ue4m3 as
// float8_e4m3fn bytes (never negative), ue8m0 as uint8 or float8_e8m0fnu.
template <typename T> struct TorchStorage;
#define LOWBIT_STORAGE(T, ...)                                          \
  template <> struct TorchStorage<T> {                                  \
    static constexpr std::array dtypes{__VA_ARGS__};                    \
    static constexpr int bits = cutlass::sizeof_bits<T>::value;         \
  };
LOWBIT_STORAGE(cutlass::half_t, ScalarType::Half)
LOWBIT_STORAGE(cutlass::bfloat16_t, ScalarType::BFloat16)
LOWBIT_STORAGE(float, ScalarType::Float)
LOWBIT_STORAGE(cutlass::float_e4m3_t, ScalarType::Float8_e4m3fn)
LOWBIT_STORAGE(cutlass::float_e5m2_t, ScalarType::Float8_e5m2)
LOWBIT_STORAGE(cutlass::float_ue4m3_t, ScalarType::Float8_e4m3fn, ScalarType::Byte)
LOWBIT_STORAGE(cutlass::float_ue8m0_t, ScalarType::Float8_e8m0fnu, ScalarType::Byte)
LOWBIT_STORAGE(cutlass::float_e2m1_t, ScalarType::Byte, ScalarType::Float4_e2m1fn_x2)
LOWBIT_STORAGE(cutlass::int4b_t, ScalarType::Byte, ScalarType::Int)
LOWBIT_STORAGE(int8_t, ScalarType::Char)
LOWBIT_STORAGE(uint8_t, ScalarType::Byte)
LOWBIT_STORAGE(int32_t, ScalarType::Int)
#undef LOWBIT_STORAGE

// Check that `t` can hold CUTLASS elements of type T.
template <typename T>
inline void check_storage(const char* op, const char* arg, const Tensor& t) {
  check_dtype(op, arg, t, TorchStorage<T>::dtypes);
}

// Pointer to `t`'s data as CUTLASS element T (sub-byte types: the packed
// storage start; the caller has checked the storage dtype).
template <typename T>
inline T* cutlass_ptr(const Tensor& t) {
  return reinterpret_cast<T*>(t.data_ptr());
}
template <typename T>
inline const T* cutlass_cptr(const Tensor& t) {
  return reinterpret_cast<const T*>(t.data_ptr());
}

// ------------------------------------------------------------ CuTe layouts
// make_cute_layout<Stride>(op, arg, t): shape and stride of `t` as a CuTe
// layout whose stride type is `Stride` (e.g. cute::Stride<int64_t, _1, _0>).
// Modes with a static stride must match the tensor (size-1 modes match any
// stride); missing trailing modes get extent 1. `elems_per_storage` converts
// storage-element strides to logical-element strides for packed sub-byte
// tensors (2 for e2m1/int4 in uint8, 8 for int4 in int32): it scales the
// innermost (unit-stride) mode's extent and every other stride.
template <class Stride>
inline auto make_cute_layout(const char* op, const char* arg, const Tensor& t,
                             int64_t elems_per_storage = 1) {
  constexpr int R = cute::rank_v<Stride>;
  LOWBIT_CHECK_ARG(t.dim() <= R, op, arg, str("at most ", R, " dimension(s)"),
                   str(t.dim(), "-D tensor of shape ", shape_str(t)));
  auto shape = cute::repeat<R>(int64_t{1});
  Stride stride{};
  cute::for_each(cute::make_seq<R>{}, [&](auto I) {
    constexpr int i = decltype(I)::value;
    int64_t extent = i < t.dim() ? t.size(i) : 1;
    int64_t st = i < t.dim() ? t.stride(i) : 0;
    using S = std::remove_cv_t<std::remove_reference_t<decltype(cute::get<i>(stride))>>;
    if constexpr (cute::is_static<S>::value) {
      constexpr int64_t want = S::value;
      LOWBIT_CHECK_ARG(extent <= 1 || st == want, op, arg,
                       str("stride ", want, " in dimension ", i),
                       str("stride ", st, " (shape ", shape_str(t),
                           ", a transposed or sliced tensor?)"));
      if (want == 1) extent *= elems_per_storage;
    } else {
      cute::get<i>(stride) = static_cast<S>(st * elems_per_storage);
    }
    cute::get<i>(shape) = extent;
  });
  return cute::make_layout(shape, stride);
}

// ------------------------------------------------------------ grouped arguments
// The per-group argument arrays of CUTLASS's ptr-array grouped GEMMs, carved
// one after another (each 128-byte aligned) from one workspace. Call take()
// for every array twice: with base == nullptr to count bytes(), then with the
// allocation to point each field into it.
class ArrayCarver {
 public:
  explicit ArrayCarver(uint8_t* base) : base_(base) {}
  template <class T>
  void take(T*& field, int64_t count) {
    if (base_) field = reinterpret_cast<T*>(base_ + at_);
    at_ += (count * static_cast<int64_t>(sizeof(T)) + 127) / 128 * 128;
  }
  template <class... T>
  void take_each(int64_t count, T*&... fields) {
    (take(fields, count), ...);
  }
  int64_t bytes() const { return at_; }

 private:
  uint8_t* base_;
  int64_t at_ = 0;
};

}  // namespace lowbit
