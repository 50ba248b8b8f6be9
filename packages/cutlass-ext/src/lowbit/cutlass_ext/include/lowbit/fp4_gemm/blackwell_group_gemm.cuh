// Blackwell (SM100 / SM120) grouped FP4 GEMMs: cutlass_fp4_group_mm
// (docs/SPEC-MOE.md §5.2, nvfp4-mm) and cutlass_mxfp4_group_mm (§5.3,
// mxfp4). CUTLASS's ptr-array grouped block-scaled GEMM, fp32 accumulation,
// no C, for one of two formats: Nvfp4 (nv_float4_t<float_e2m1_t> operands,
// ue4m3 scales per 16 elements, D = alpha[e] * acc) or Mxfp4
// (mx_float4_t<float_e2m1_t>, ue8m0 scales per 32 elements, D = acc).
// The per-expert arguments CUTLASS reads (problem shape, operand pointers,
// strides, scale layouts, alpha pointer) are built on the device by
// group_setup_kernel from problem_sizes / expert_offsets / sf_offsets, so
// nothing comes to the host (CUDA-graph capturable). Scale pointers use the
// padded strides: expert e's activation scales at byte sf_off[e]·Kp, its
// weight scales at byte e·Np·Kp (§5.1.3-5.1.4, §5.13 item 1); inside them
// CUTLASS reads through blackwell_sf_layout.h's layout, checked on the CPU to
// be the 128x4 swizzle. An expert whose metadata breaks the
// contract (§5.0.3, lowbit/fp4_group_contract.h) gets 0 rows: CUTLASS
// computes nothing for it, and the setup kernel writes NaN into its rows
// inside out first (the GEMM waits for the setup grid: PDL).
//
// Included by one translation unit per (format, arch, output dtype).
#pragma once

#include <lowbit/cuda_utils.h>
#include <lowbit/cutlass_utils.h>
#include <lowbit/fp4_gemm/blackwell_sf_layout.h>
#include <lowbit/fp4_group_contract.h>

#include <cute/tensor.hpp>
#include <cutlass/arch/config.h>
#include <cutlass/cutlass.h>
#include <cutlass/detail/sm100_blockscaled_layout.hpp>
#include <cutlass/epilogue/collective/collective_builder.hpp>
#include <cutlass/gemm/collective/collective_builder.hpp>
#include <cutlass/gemm/device/gemm_universal_adapter.h>
#include <cutlass/gemm/dispatch_policy.hpp>
#include <cutlass/gemm/group_array_problem_shape.hpp>
#include <cutlass/gemm/kernel/gemm_universal.hpp>
#include <cutlass/util/packed_stride.hpp>

#include <optional>
#include <type_traits>

namespace lowbit::fp4_gemm::blackwell {

using namespace cute;
using lowbit::Tensor;

// The formats: operand type, elements per scale byte, whether an alpha per
// expert scales D, the SM100 1-SM ptr-array mainloop schedule.
struct Nvfp4 {
  using Element = cutlass::nv_float4_t<cutlass::float_e2m1_t>;
  static constexpr int kBlock = 16;
  static constexpr bool kAlpha = true;
  using Sm100Schedule = cutlass::gemm::KernelPtrArrayTmaWarpSpecialized1SmNvf4Sm100;
};
struct Mxfp4 {
  using Element = cutlass::mx_float4_t<cutlass::float_e2m1_t>;
  static constexpr int kBlock = 32;
  static constexpr bool kAlpha = false;
  using Sm100Schedule = cutlass::gemm::KernelPtrArrayTmaWarpSpecialized1SmMxf4Sm100;
};

// One thread per expert: G::setup fills its CUTLASS arguments; a CTA with a
// broken expert then writes NaN into that expert's rows (the common case, no
// broken expert, costs one barrier).
template <class G>
__global__ void group_setup_kernel(const typename G::Setup s) {
  lowbit::pdl_wait();  // the routing may come from the previous kernel
  const int e0 = blockIdx.x * blockDim.x, e = e0 + threadIdx.x;
  const bool broken = e < s.E && !G::setup(s, e);
  if (__syncthreads_or(broken))
    lowbit::fp4_group_nan_broken(s.sizes, s.offsets, s.sf_offsets, e0, min(s.E, e0 + int(blockDim.x)), s.M, s.N,
                                 s.K, s.R, reinterpret_cast<uint16_t*>(s.out), G::kNan, threadIdx.x, blockDim.x);
  lowbit::pdl_launch_dependents();
}

template <class Fmt, class ArchTag, class TileShape, class ClusterShape, class MainloopSchedule,
          class EpilogueSchedule, class ElementD>
struct Fp4GroupGemm {
  using ProblemShape = cutlass::gemm::GroupProblemShape<Shape<int, int, int>>;
  using ElementA = typename Fmt::Element;
  using LayoutA = cutlass::layout::RowMajor;     // A [m_e, K], K contiguous
  using LayoutB = cutlass::layout::ColumnMajor;  // B [N, K], K contiguous
  using LayoutD = cutlass::layout::RowMajor;
  static constexpr int kAlignAB = 32;  // 16 bytes of e2m1: K % 32 == 0
  static constexpr int kAlignD = 128 / cutlass::sizeof_bits<ElementD>::value;
  using OpClass = cutlass::arch::OpClassBlockScaledTensorOp;

  using Epilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
      ArchTag, OpClass, TileShape, ClusterShape, cutlass::epilogue::collective::EpilogueTileAuto, float, float,
      void, LayoutD*, kAlignD, ElementD, LayoutD*, kAlignD, EpilogueSchedule>::CollectiveOp;
  using Mainloop = typename cutlass::gemm::collective::CollectiveBuilder<
      ArchTag, OpClass, ElementA, LayoutA*, kAlignAB, ElementA, LayoutB*, kAlignAB, float, TileShape, ClusterShape,
      cutlass::gemm::collective::StageCountAutoCarveout<static_cast<int>(
          sizeof(typename Epilogue::SharedStorage))>,
      MainloopSchedule>::CollectiveOp;
  using Kernel = cutlass::gemm::kernel::GemmUniversal<ProblemShape, Mainloop, Epilogue>;
  using Gemm = cutlass::gemm::device::GemmUniversalAdapter<Kernel>;

  using DataA = typename ElementA::DataType;
  using Sf = typename ElementA::ScaleFactorType;
  using Shape3 = typename ProblemShape::UnderlyingProblemShape;
  using StrideA = typename Kernel::InternalStrideA;
  using StrideB = typename Kernel::InternalStrideB;
  using StrideD = typename Kernel::InternalStrideD;
  using LayoutSFA = typename Mainloop::InternalLayoutSFA;
  using LayoutSFB = typename Mainloop::InternalLayoutSFB;
  static_assert(uses_sf_config<Mainloop, Fmt::kBlock>, "scales: the layout of blackwell_sf_layout.h");

  // The per-expert argument arrays, carved from one workspace tensor.
  struct Arrays {
    Shape3* shape;
    const DataA** a;
    const DataA** b;
    const Sf** sfa;
    const Sf** sfb;
    ElementD** d;
    const float** alpha;
    StrideA* stride_a;
    StrideB* stride_b;
    StrideD* stride_d;
    LayoutSFA* layout_sfa;
    LayoutSFB* layout_sfb;
  };

  // Bytes of the arrays for E experts (each array 128-byte aligned); with
  // `base`, also points `arr` into it.
  static int64_t carve(int64_t E, uint8_t* base, Arrays* arr) {
    Arrays dummy{};
    Arrays& x = base ? *arr : dummy;
    lowbit::ArrayCarver c(base);
    c.take_each(E, x.shape, x.a, x.b, x.sfa, x.sfb, x.d);
    if constexpr (Fmt::kAlpha) c.take(x.alpha, E);
    c.take_each(E, x.stride_a, x.stride_b, x.stride_d, x.layout_sfa, x.layout_sfb);
    return c.bytes();
  }

  struct Setup {
    Arrays arr;
    const int* sizes;
    const int* offsets;
    const int* sf_offsets;
    const uint8_t* a;
    const uint8_t* b;
    const uint8_t* sa;
    const uint8_t* sb;
    ElementD* out;
    const float* alphas;  // nullptr without an alpha
    int E, M, N, K;
    int64_t R, Kp, Np;
  };

  // Quiet NaN bits of ElementD (rows of broken experts).
  static constexpr uint16_t kNan = std::is_same_v<ElementD, cutlass::bfloat16_t> ? lowbit::kNanBf16 : lowbit::kNanHalf;

  // Expert e's CUTLASS arguments (0 rows where its metadata breaks the
  // contract, docs/SPEC-MOE.md §5.0.3); whether it keeps the contract.
  static __device__ bool setup(const Setup& s, int e) {
    const int m = s.sizes[3 * e], off = s.offsets[e], sf = s.sf_offsets[e];
    const bool ok = lowbit::fp4_group_expert_ok(s.sizes, s.offsets, s.sf_offsets, e, s.M, s.N, s.K, s.R);
    const int rows = ok ? m : 0;
    const int64_t row0 = ok ? off : 0, sf0 = ok ? sf : 0;
    s.arr.shape[e] = Shape3(rows, s.N, s.K);
    s.arr.a[e] = reinterpret_cast<const DataA*>(s.a + row0 * (s.K / 2));
    s.arr.b[e] = reinterpret_cast<const DataA*>(s.b + int64_t(e) * s.N * (s.K / 2));
    s.arr.sfa[e] = reinterpret_cast<const Sf*>(s.sa + sf0 * s.Kp);
    s.arr.sfb[e] = reinterpret_cast<const Sf*>(s.sb + int64_t(e) * s.Np * s.Kp);
    s.arr.d[e] = s.out + row0 * s.N;
    if constexpr (Fmt::kAlpha) s.arr.alpha[e] = s.alphas + e;
    s.arr.stride_a[e] = cutlass::make_cute_packed_stride(StrideA{}, make_shape(rows, s.K, 1));
    s.arr.stride_b[e] = cutlass::make_cute_packed_stride(StrideB{}, make_shape(s.N, s.K, 1));
    s.arr.stride_d[e] = cutlass::make_cute_packed_stride(StrideD{}, make_shape(rows, s.N, 1));
    s.arr.layout_sfa[e] = sf_layout<Fmt::kBlock>(rows, s.K);
    s.arr.layout_sfb[e] = sf_layout<Fmt::kBlock>(s.N, s.K);
    return ok;
  }

  // `p`: a validated group problem of the format (out, a, b, sa, sb,
  // problem_sizes, expert_offsets, sf_offsets, E, M, N, K, R and, with an
  // alpha, alphas).
  template <class GP>
  static const float* alphas_of(const GP& p) {
    if constexpr (Fmt::kAlpha) return p.alphas.template const_data_ptr<float>();
    else return nullptr;
  }

  template <class GP>
  static Setup make_setup(const GP& p, const Arrays& arr) {
    return Setup{arr,
                 p.problem_sizes.template const_data_ptr<int>(),
                 p.expert_offsets.template const_data_ptr<int>(),
                 p.sf_offsets.template const_data_ptr<int>(),
                 p.a.template const_data_ptr<uint8_t>(),
                 p.b.template const_data_ptr<uint8_t>(),
                 static_cast<const uint8_t*>(p.sa.data_ptr()),
                 static_cast<const uint8_t*>(p.sb.data_ptr()),
                 reinterpret_cast<ElementD*>(p.out.data_ptr()),
                 alphas_of(p),
                 static_cast<int>(p.E),
                 static_cast<int>(p.M),
                 static_cast<int>(p.N),
                 static_cast<int>(p.K),
                 p.R,
                 lowbit::nvfp4::swizzled_cols(p.K / Fmt::kBlock),
                 lowbit::nvfp4::swizzled_rows(p.N)};
  }

  template <class GP>
  static typename Gemm::Arguments make_arguments(const GP& p, const Arrays& arr) {
    typename Gemm::Arguments args;
    args.mode = cutlass::gemm::GemmUniversalMode::kGrouped;
    args.problem_shape = {static_cast<int>(p.E), arr.shape, nullptr};
    args.mainloop = {arr.a, arr.stride_a, arr.b, arr.stride_b, arr.sfa, arr.layout_sfa, arr.sfb, arr.layout_sfb};
    args.epilogue.ptr_C = nullptr;
    args.epilogue.dC = nullptr;
    args.epilogue.ptr_D = arr.d;
    args.epilogue.dD = arr.stride_d;
    auto& fusion = args.epilogue.thread;
    if constexpr (Fmt::kAlpha) {
      fusion.alpha_ptr_array = arr.alpha;
      fusion.dAlpha = {_0{}, _0{}, 1};  // one alpha per group
    } else {
      fusion.alpha = 1.f;
    }
    fusion.beta = 0.f;
    args.hw_info.device_id = p.a.get_device_index();
    args.hw_info.sm_count = lowbit::device_sm_count(p.a.get_device_index());
    return args;
  }

  // `op` names the op in errors.
  template <class GP>
  static void run(const GP& p, const char* arch_name, const char* op) {
    cudaStream_t stream = lowbit::current_stream(p.a);
    Arrays arr{};
    const int64_t arr_bytes = carve(p.E, nullptr, nullptr);
    // One workspace: the arrays, then CUTLASS's own (through torch: caching
    // allocator, graph-safe).
    Tensor probe = lowbit::empty_on(p.a, {arr_bytes}, lowbit::ScalarType::Byte);
    carve(p.E, static_cast<uint8_t*>(probe.data_ptr()), &arr);
    lowbit::launch_kernel(group_setup_kernel<Fp4GroupGemm>, dim3(static_cast<unsigned>((p.E + 127) / 128)), dim3(128), 0, stream,
                          /*pdl=*/true, make_setup(p, arr));
    typename Gemm::Arguments args = make_arguments(p, arr);
    Gemm gemm;
    LOWBIT_CHECK(gemm.can_implement(args) == cutlass::Status::kSuccess, op, ": the ", arch_name,
                 " CUTLASS grouped kernel cannot implement E=", p.E, " N=", p.N, " K=", p.K);
    const size_t ws_bytes = Gemm::get_workspace_size(args);
    std::optional<Tensor> ws;
    void* ws_ptr = nullptr;
    if (ws_bytes > 0) {
      ws = lowbit::empty_on(p.a, {static_cast<int64_t>(ws_bytes)}, lowbit::ScalarType::Byte);
      ws_ptr = ws->data_ptr();
    }
    LOWBIT_CUTLASS_CHECK(gemm.initialize(args, ws_ptr, stream), op);
    LOWBIT_CUTLASS_CHECK(gemm.run(stream), op);
    LOWBIT_CHECK_LAUNCH();
  }
};

// SM100: 1-SM ptr-array schedule, MMA tile 128x128x128, cluster 1x1x1.
template <class Fmt, class ElementD>
using Sm100Group = Fp4GroupGemm<Fmt, cutlass::arch::Sm100, Shape<_128, _128, _128>, Shape<_1, _1, _1>,
                                typename Fmt::Sm100Schedule, cutlass::epilogue::PtrArrayTmaWarpSpecialized1Sm,
                                ElementD>;

// SM120: tile 128x128x128; CUTLASS's automatic schedules pick the ptr-array
// cooperative block-scaled kernel for a grouped problem shape.
template <class Fmt, class ElementD>
using Sm120Group = Fp4GroupGemm<Fmt, cutlass::arch::Sm120, Shape<_128, _128, _128>, Shape<_1, _1, _1>,
                                cutlass::gemm::collective::KernelScheduleAuto,
                                cutlass::epilogue::collective::EpilogueScheduleAuto, ElementD>;

}  // namespace lowbit::fp4_gemm::blackwell
