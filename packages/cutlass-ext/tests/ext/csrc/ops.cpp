// Test-only ops wrapping the cutlass-ext helpers, so their behaviour and their
// messages can be asserted from Python.
#include <lowbit/arch.h>
#include <lowbit/cutlass_utils.h>
#include <lowbit/fp4_gemm/blackwell_sf_layout.h>
#include <lowbit/torch_utils.h>

#include <vector>

#include "e2m1_pairs.h"

using lowbit::ScalarType;
using lowbit::Tensor;
using cute::_1;
using cute::get;
using cute::Stride;

#if LOWBIT_WITH_CUDA
void fill_iota_cuda(Tensor x);  // csrc/cuda/fill.cu
void e2m1_pairs_cuda(Tensor words, Tensor out, int64_t variant);  // csrc/cuda/e2m1.cu
int64_t guarded_current_device(Tensor x);
#endif

namespace {
constexpr const char* kOp = "lowbit_cutlass_ext_test";

void check_activation(Tensor x) {
  lowbit::check_dtype(kOp, "x", x, {ScalarType::Half, ScalarType::BFloat16});
  lowbit::check_dim(kOp, "x", x, 2);
  lowbit::check_shape(kOp, "x", x, {-1, 16});
  lowbit::check_contiguous(kOp, "x", x);
}

void check_same_device(Tensor x, Tensor y) {
  lowbit::check_same_device(kOp, "y", y, "x", x);
}

// [extent..., stride...] of the CuTe layout made from `x`:
// mode 0 row-major (K-contiguous), 1 column-major, 2 packed 4-bit row-major.
std::vector<int64_t> cute_layout(Tensor x, int64_t mode) {
  std::vector<int64_t> out;
  auto emit = [&](auto layout) {
    cute::for_each(cute::make_seq<cute::rank_v<decltype(layout)>>{}, [&](auto i) {
      out.push_back(static_cast<int64_t>(get<decltype(i)::value>(layout.shape())));
    });
    cute::for_each(cute::make_seq<cute::rank_v<decltype(layout)>>{}, [&](auto i) {
      out.push_back(static_cast<int64_t>(get<decltype(i)::value>(layout.stride())));
    });
  };
  if (mode == 0) emit(lowbit::make_cute_layout<Stride<int64_t, _1, int64_t>>(kOp, "x", x));
  else if (mode == 1) emit(lowbit::make_cute_layout<Stride<_1, int64_t, int64_t>>(kOp, "x", x));
  else if (mode == 2) {
    lowbit::check_storage<cutlass::float_e2m1_t>(kOp, "x", x);
    emit(lowbit::make_cute_layout<Stride<int64_t, _1, int64_t>>(kOp, "x", x, 2));
  } else {
    LOWBIT_CHECK_ARG(false, kOp, "mode", "0, 1 or 2", mode);
  }
  return out;
}

// Bits of the CUTLASS element that torch dtype `dtype` maps to.
int64_t cutlass_bits(ScalarType dtype) {
  switch (dtype) {
#define CASE(S) case ScalarType::S: return cutlass::sizeof_bits<lowbit::cutlass_element_t<ScalarType::S>>::value;
    CASE(Half) CASE(BFloat16) CASE(Float) CASE(Float8_e4m3fn) CASE(Float8_e5m2)
    CASE(Byte) CASE(Char) CASE(Int) CASE(Long)
#undef CASE
    default: LOWBIT_CHECK_ARG(false, kOp, "dtype", "a dtype with a CUTLASS element", lowbit::dtype_name(dtype));
  }
  return 0;
}

// Storage check for the sub-byte / scale types that have no torch dtype.
void check_storage(Tensor x, std::string kind) {
  if (kind == "int4") lowbit::check_storage<cutlass::int4b_t>(kOp, "x", x);
  else if (kind == "e2m1") lowbit::check_storage<cutlass::float_e2m1_t>(kOp, "x", x);
  else if (kind == "ue4m3") lowbit::check_storage<cutlass::float_ue4m3_t>(kOp, "x", x);
  else if (kind == "ue8m0") lowbit::check_storage<cutlass::float_ue8m0_t>(kOp, "x", x);
  else LOWBIT_CHECK_ARG(false, kOp, "kind", "int4, e2m1, ue4m3 or ue8m0", kind);
}

std::string target(Tensor x) { return lowbit::target_name(lowbit::target_for(kOp, "x", x)); }

std::string built_archs() { return LOWBIT_CUDA_ARCHS; }

#if LOWBIT_WITH_CUDA
int64_t stream_handle(Tensor x) {
  return reinterpret_cast<int64_t>(lowbit::current_stream(x));
}
int64_t sm_of(Tensor x) { return lowbit::device_sm(x); }
#endif

// Writes 0, 1, 2, ... into the float32 tensor x, on x's device.
void fill_iota(Tensor x) {
  lowbit::check_dtype(kOp, "x", x, {ScalarType::Float});
  lowbit::check_contiguous(kOp, "x", x);
  if (x.is_cpu()) {
    float* p = x.mutable_data_ptr<float>();
    for (int64_t i = 0; i < x.numel(); ++i) p[i] = static_cast<float>(i);
    return;
  }
  lowbit::target_for(kOp, "x", x);  // raises when no kernel for this device
#if LOWBIT_WITH_CUDA
  fill_iota_cuda(x);
#endif
}

// The four pairs lowbit::fp4_gemm places from each int32 word of `words`
// (e2m1_bits.h), as int32 [n, 4], computed on words' device (e2m1_pairs.h).
Tensor e2m1_pairs_impl(Tensor words, int64_t variant) {
  lowbit::check_dtype(kOp, "words", words, {ScalarType::Int});
  lowbit::check_dim(kOp, "words", words, 1);
  lowbit::check_contiguous(kOp, "words", words);
  LOWBIT_CHECK_ARG(variant >= 0 && variant <= 2, kOp, "variant", "0, 1 or 2", variant);
  Tensor out = lowbit::empty_on(words, {words.size(0), 4}, ScalarType::Int);
  if (words.is_cpu()) {
    const auto* w = reinterpret_cast<const uint32_t*>(words.const_data_ptr<int32_t>());
    auto* o = reinterpret_cast<uint32_t*>(out.mutable_data_ptr<int32_t>());
    for (int64_t i = 0; i < words.size(0); ++i) e2m1_pairs_of(w[i], static_cast<int>(variant), o + 4 * i);
    return out;
  }
  lowbit::target_for(kOp, "words", words);  // raises when no kernel for this device
#if LOWBIT_WITH_CUDA
  e2m1_pairs_cuda(words, out, variant);
#endif
  return out;
}

// The Blackwell GEMMs' scale layout (lowbit/fp4_gemm/blackwell_sf_layout.h)
// of a `rows` x `k` operand with `block` elements per scale byte: int64
// [rows, k] byte offsets of each element's scale, and the layout's cosize
// (one past its largest offset).
std::tuple<Tensor, int64_t> blackwell_sf_layout(int64_t rows, int64_t k, int64_t block) {
  LOWBIT_CHECK_ARG(rows > 0, kOp, "rows", "> 0", rows);
  LOWBIT_CHECK_ARG(k > 0 && k % block == 0, kOp, "k", "a positive multiple of block", k);
  Tensor out = torch::stable::empty({rows, k}, ScalarType::Long);  // CPU
  int64_t* o = out.mutable_data_ptr<int64_t>();
  auto fill = [&](auto layout) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < k; ++c) o[r * k + c] = layout(int(r), int(c), 0);
    return static_cast<int64_t>(cute::cosize(layout));
  };
  namespace bw = lowbit::fp4_gemm::blackwell;
  if (block == 16) return {out, fill(bw::sf_layout<16>(int(rows), int(k)))};
  LOWBIT_CHECK_ARG(block == 32, kOp, "block", "16 or 32", block);
  return {out, fill(bw::sf_layout<32>(int(rows), int(k)))};
}
}  // namespace

STABLE_TORCH_LIBRARY(lowbit_cutlass_ext_test, m) {
  m.def("check_activation(Tensor x) -> ()");
  m.def("check_same_device(Tensor x, Tensor y) -> ()");
  m.def("cute_layout(Tensor x, int mode) -> int[]");
  m.def("cutlass_bits(ScalarType dtype) -> int");
  m.def("check_storage(Tensor x, str kind) -> ()");
  m.def("target(Tensor x) -> str");
  m.def("built_archs() -> str");
  m.def("fill_iota(Tensor(a!) x) -> ()");
  m.def("e2m1_pairs(Tensor words, int variant) -> Tensor");
  m.def("blackwell_sf_layout(int rows, int k, int block) -> (Tensor, int)");
#if LOWBIT_WITH_CUDA
  m.def("stream_handle(Tensor x) -> int");
  m.def("sm_of(Tensor x) -> int");
  m.def("guarded_current_device(Tensor x) -> int");
#endif
}

STABLE_TORCH_LIBRARY_IMPL(lowbit_cutlass_ext_test, CompositeExplicitAutograd, m) {
  m.impl("check_activation", TORCH_BOX(&check_activation));
  m.impl("check_same_device", TORCH_BOX(&check_same_device));
  m.impl("cute_layout", TORCH_BOX(&cute_layout));
  m.impl("check_storage", TORCH_BOX(&check_storage));
  m.impl("target", TORCH_BOX(&target));
  m.impl("fill_iota", TORCH_BOX(&fill_iota));
  m.impl("e2m1_pairs", TORCH_BOX(&e2m1_pairs_impl));
#if LOWBIT_WITH_CUDA
  m.impl("stream_handle", TORCH_BOX(&stream_handle));
  m.impl("sm_of", TORCH_BOX(&sm_of));
  m.impl("guarded_current_device", TORCH_BOX(&guarded_current_device));
#endif
}

STABLE_TORCH_LIBRARY_IMPL(lowbit_cutlass_ext_test, CompositeImplicitAutograd, m) {
  m.impl("cutlass_bits", TORCH_BOX(&cutlass_bits));
  m.impl("built_archs", TORCH_BOX(&built_archs));
  m.impl("blackwell_sf_layout", TORCH_BOX(&blackwell_sf_layout));
}
