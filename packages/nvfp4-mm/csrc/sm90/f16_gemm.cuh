// CUTLASS 3.x Hopper GEMM used by the SM90 large-M path: TMA + warp-specialized
// cooperative fp16 wgmma (fp32 accumulation), persistent tile scheduler, TMA
// epilogue D = alpha * acc + bias[n] (CUTLASS's per-column-bias linear
// combination: one fp32 fma, then the conversion) with alpha read from device
// memory (graph-safe) and the bias broadcast as 0 when its pointer is null.
#pragma once

// Programmatic dependent launch: CUTLASS's kernels then wait (griddepcontrol)
// for the dequant pre-pass before their first load. Before any CUTLASS header.
#define CUTLASS_ENABLE_GDC_FOR_SM90 1

#include "f16_gemm.h"

#include <lowbit/cuda_utils.h>
#include <lowbit/cutlass_utils.h>

#include <cute/tensor.hpp>
#include <cutlass/cutlass.h>
#include <cutlass/epilogue/collective/collective_builder.hpp>
#include <cutlass/epilogue/fusion/operations.hpp>
#include <cutlass/gemm/collective/collective_builder.hpp>
#include <cutlass/gemm/device/gemm_universal_adapter.h>
#include <cutlass/gemm/dispatch_policy.hpp>
#include <cutlass/gemm/kernel/gemm_universal.hpp>
#include <cutlass/gemm/kernel/tile_scheduler.hpp>
#include <cutlass/arch/grid_dependency_control.h>

// A PDL launch of a kernel without the wait would read the pre-pass's output early.
#if defined(__CUDA_ARCH__) && !defined(CUTLASS_GDC_ENABLED)
#error "CUTLASS GDC (griddepcontrol) must be enabled for the SM90 fp16 GEMM"
#endif

namespace nvfp4_mm::sm90 {

using namespace cute;

template <int TM, int TN, int CM, int CN, class ElementD>
struct F16GemmKernel {
  using TileShape = Shape<Int<TM>, Int<TN>, _64>;
  using ClusterShape = Shape<Int<CM>, Int<CN>, _1>;
  static constexpr int kAlign = 8;  // 16 bytes of fp16 / bf16
  using Fusion = cutlass::epilogue::fusion::LinCombPerColBias<ElementD, float, ElementD, void, float>;
  using CollectiveEpilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, TileShape, ClusterShape,
      cutlass::epilogue::collective::EpilogueTileAuto, float, float,
      void, cutlass::layout::RowMajor, kAlign,  // no C operand
      ElementD, cutlass::layout::RowMajor, kAlign,
      cutlass::epilogue::TmaWarpSpecializedCooperative, Fusion>::CollectiveOp;
  using CollectiveMainloop = typename cutlass::gemm::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp,
      cutlass::half_t, cutlass::layout::RowMajor, kAlign,
      cutlass::half_t, cutlass::layout::ColumnMajor, kAlign,
      float, TileShape, ClusterShape,
      cutlass::gemm::collective::StageCountAutoCarveout<
          static_cast<int>(sizeof(typename CollectiveEpilogue::SharedStorage))>,
      cutlass::gemm::KernelTmaWarpSpecializedCooperative>::CollectiveOp;
  using Kernel = cutlass::gemm::kernel::GemmUniversal<Shape<int, int, int, int>, CollectiveMainloop,
                                                      CollectiveEpilogue, cutlass::gemm::PersistentScheduler>;
  using Adapter = cutlass::gemm::device::GemmUniversalAdapter<Kernel>;

  static typename Adapter::Arguments arguments(const F16Gemm& g) {
    using StrideA = typename Kernel::StrideA;
    using StrideB = typename Kernel::StrideB;
    using StrideD = typename Kernel::StrideD;
    StrideA sa = make_stride(int64_t(g.K), _1{}, int64_t(g.M) * g.K);
    StrideB sb = make_stride(int64_t(g.K), _1{}, int64_t(g.N) * g.K);
    StrideD sd = make_stride(int64_t(g.ldd), _1{}, int64_t(g.M) * g.ldd);
    typename Adapter::Arguments args{};
    args.mode = cutlass::gemm::GemmUniversalMode::kGemm;
    args.problem_shape = {g.M, g.N, g.K, 1};
    args.mainloop = {static_cast<const cutlass::half_t*>(g.a), sa, static_cast<const cutlass::half_t*>(g.b), sb};
    auto& t = args.epilogue.thread;
    t.alpha = 1.f;
    t.beta = 0.f;
    t.alpha_ptr = g.alpha;
    t.bias_ptr = static_cast<const ElementD*>(g.bias);
    args.epilogue.ptr_C = nullptr;
    args.epilogue.dC = sd;
    args.epilogue.ptr_D = static_cast<ElementD*>(g.d);
    args.epilogue.dD = sd;
    args.hw_info.device_id = g.device;
    args.hw_info.sm_count = g.sm_count;
    return args;
  }

  static size_t workspace(const F16Gemm& g) { return Adapter::get_workspace_size(arguments(g)); }

  static void run(const char* name, const F16Gemm& g, void* ws) {
    auto args = arguments(g);
    Adapter gemm;
    const std::string op = lowbit::str("cutlass_scaled_fp4_mm (SM90 fp16 GEMM ", name, ")");
    LOWBIT_CUTLASS_CHECK(gemm.can_implement(args), op);
    LOWBIT_CUTLASS_CHECK(gemm.initialize(args, ws, g.stream), op);
    LOWBIT_CUTLASS_CHECK(gemm.run(g.stream, nullptr, /*launch_with_pdl=*/true), op);
    LOWBIT_CHECK_LAUNCH();
  }
};

}  // namespace nvfp4_mm::sm90

// One tile config's entry points (bf16 and fp16 outputs).
#define LOWBIT_NVFP4_F16_DEFINE(NAME, TM, TN, CM, CN)                                         \
  namespace nvfp4_mm::sm90 {                                                                 \
  using Bf16_##NAME = F16GemmKernel<TM, TN, CM, CN, cutlass::bfloat16_t>;                     \
  using Fp16_##NAME = F16GemmKernel<TM, TN, CM, CN, cutlass::half_t>;                         \
  size_t f16_gemm_workspace_##NAME(const F16Gemm& g) {                                       \
    return g.out_bf16 ? Bf16_##NAME::workspace(g) : Fp16_##NAME::workspace(g);               \
  }                                                                                          \
  void f16_gemm_run_##NAME(const F16Gemm& g, void* ws) {                                     \
    if (g.out_bf16) Bf16_##NAME::run(#NAME, g, ws);                                          \
    else Fp16_##NAME::run(#NAME, g, ws);                                                     \
  }                                                                                          \
  }
