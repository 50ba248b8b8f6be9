// The SM90 int4 x fp8 GEMM: one CUTLASS 3.x mixed-input kernel per schedule.
//
// Problem as CUTLASS sees it (operands swapped so the int4 weight, which must
// pass through registers, is operand "A" and the TMA epilogue can be used):
//   D'[N, M] = W[N, K] . A[M, K]^T,  D' column-major == our D [M, N] row-major.
// W is int4 in the reordered layout of SPEC §1.5, scaled through the fp8
// lookup-table mode (Array<e4m3, 8> per group scale); the MMA is fp8 wgmma
// with W in registers. Epilogue (EVT): D = ch[n] * (tok[m] * acc), each scale
// a vector or a scalar (dynamic broadcast), rounded once to bf16/fp16.
#pragma once

// Programmatic dependent launch (PDL): with GDC the kernels execute
// griddepcontrol.wait before their first global-memory access and
// launch_dependents at their last tile. Must be defined before any CUTLASS
// header. Not in the stream-K TUs (they define LOWBIT_W4A8_STREAMK_TU first):
// CUTLASS 4.2's stream-K scheduler does not compile with GDC (its const
// is_last_tile binds a member to a non-const reference); those are launched
// without PDL.
#ifndef LOWBIT_W4A8_STREAMK_TU
#define CUTLASS_ENABLE_GDC_FOR_SM90 1
#endif

#include "w4a8_mm.h"
#include "sm90/promoting_mainloop.cuh"
#include "sm90/reorder_atom.cuh"

#include <lowbit/cuda_utils.h>
#include <lowbit/cutlass_utils.h>

#include <string>

#include <cute/tensor.hpp>
#include <cutlass/cutlass.h>
#include <cutlass/epilogue/collective/collective_builder.hpp>
#include <cutlass/epilogue/fusion/sm90_callbacks_tma_warpspecialized.hpp>
#include <cutlass/gemm/collective/collective_builder.hpp>
#include <cutlass/gemm/device/gemm_universal_adapter.h>
#include <cutlass/gemm/dispatch_policy.hpp>
#include <cutlass/gemm/kernel/gemm_universal.hpp>
#include <cutlass/gemm/kernel/tile_scheduler.hpp>
#include <cutlass/arch/grid_dependency_control.h>

// A PDL launch of a kernel without the wait would read inputs the previous
// kernel is still writing: refuse to build such device code.
#if defined(__CUDA_ARCH__) && defined(CUTLASS_ENABLE_GDC_FOR_SM90) && !defined(CUTLASS_GDC_ENABLED)
#error "CUTLASS GDC (griddepcontrol) must be enabled for the SM90 W4A8 kernels"
#endif

namespace lowbit::w4a8::sm90 {

using namespace cute;

using ElementW = cutlass::int4b_t;
using ElementAct = cutlass::float_e4m3_t;
using ScalePack = cutlass::Array<cutlass::float_e4m3_t, 8>;

using StrideW = Stride<int64_t, _1, int64_t>;  // (N, K, L), K contiguous
using LayoutW = decltype(tile_to_shape(ReorderAtom{},
                                       Layout<Shape<int, int, int>, StrideW>{}));

// Kind (schedules.def): 0 cooperative + persistent data-parallel scheduler,
// 1 cooperative + stream-K scheduler, 2 ping-pong + persistent scheduler.
template <int TileN, int TileM, int ClusterN, int ClusterM, int Kind, class ElementD>
struct Gemm {
  using TileShape = Shape<Int<TileN>, Int<TileM>, _128>;  // K tile = one 128 group
  using ClusterShape = Shape<Int<ClusterN>, Int<ClusterM>, _1>;
  static constexpr bool kStreamK = Kind == 1;
#ifdef CUTLASS_ENABLE_GDC_FOR_SM90
  static constexpr bool kPdl = true;
#else
  static constexpr bool kPdl = false;
#endif
  static_assert(!(kStreamK && kPdl), "stream-K TUs must define LOWBIT_W4A8_STREAMK_TU");
  using MainloopSchedule = cute::conditional_t<Kind == 2, cutlass::gemm::KernelTmaWarpSpecializedPingpong,
                                               cutlass::gemm::KernelTmaWarpSpecializedCooperative>;
  using EpilogueSchedule = cute::conditional_t<Kind == 2, cutlass::epilogue::TmaWarpSpecialized,
                                               cutlass::epilogue::TmaWarpSpecializedCooperative>;
  using Scheduler = cute::conditional_t<kStreamK, cutlass::gemm::StreamKScheduler,
                                        cutlass::gemm::PersistentScheduler>;

  // Epilogue: ch[n] is a column vector of D' (varies along CUTLASS M = N),
  // tok[m] a row vector (along CUTLASS N = M). Alignment 1: any M, N.
  using ChBcast = cutlass::epilogue::fusion::Sm90ColBroadcast<
      0, TileShape, float, float, Stride<bool, _0, _0>, 1>;
  using TokBcast = cutlass::epilogue::fusion::Sm90RowBroadcast<
      0, TileShape, float, float, Stride<_0, bool, _0>, 1>;
  using MulTok = cutlass::epilogue::fusion::Sm90Compute<
      cutlass::multiplies, float, float, cutlass::FloatRoundStyle::round_to_nearest>;
  using MulCh = cutlass::epilogue::fusion::Sm90Compute<
      cutlass::multiplies, ElementD, float, cutlass::FloatRoundStyle::round_to_nearest>;
  using Fusion = cutlass::epilogue::fusion::Sm90EVT<
      MulCh, ChBcast,
      cutlass::epilogue::fusion::Sm90EVT<MulTok, TokBcast,
                                         cutlass::epilogue::fusion::Sm90AccFetch>>;

  static constexpr int AlignD = 128 / cutlass::sizeof_bits<ElementD>::value;
  using CollectiveEpilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, TileShape, ClusterShape,
      cutlass::epilogue::collective::EpilogueTileAuto, float, float,
      void, cutlass::layout::ColumnMajor, AlignD,  // no C operand
      ElementD, cutlass::layout::ColumnMajor, AlignD,
      EpilogueSchedule, Fusion>::CollectiveOp;

  using CutlassMainloop = typename cutlass::gemm::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp,
      cute::tuple<ElementW, ScalePack>, LayoutW, 32,
      ElementAct, cutlass::layout::ColumnMajor, 16,
      float, TileShape, ClusterShape,
      cutlass::gemm::collective::StageCountAutoCarveout<
          static_cast<int>(sizeof(typename CollectiveEpilogue::SharedStorage))>,
      MainloopSchedule>::CollectiveOp;
  // fp32 promotion every 8 K tiles where the registers allow it (promoting_mainloop.cuh).
  using CollectiveMainloop = typename MainloopFor<CutlassMainloop, TileN, TileM>::type;

  using Kernel = cutlass::gemm::kernel::GemmUniversal<
      Shape<int, int, int, int>, CollectiveMainloop, CollectiveEpilogue,
      Scheduler>;
  using Adapter = cutlass::gemm::device::GemmUniversalAdapter<Kernel>;

  static typename Adapter::Arguments arguments(const MmProblem& p) {
    const int M = static_cast<int>(p.M), N = static_cast<int>(p.N),
              K = static_cast<int>(p.K);
    const int scale_k = static_cast<int>(p.K / p.group_size);
    LayoutW layout_w = tile_to_shape(ReorderAtom{}, make_shape(N, K, 1));
    using StrideAct = typename CollectiveMainloop::StrideB;
    StrideAct stride_act = make_stride(int64_t(K), _1{}, int64_t(M) * K);
    using StrideS = typename CollectiveMainloop::StrideScale;
    StrideS stride_s = make_stride(_1{}, int64_t(N), int64_t(N) * scale_k);
    using StrideD = typename Kernel::StrideD;
    StrideD stride_d = make_stride(_1{}, int64_t(N), int64_t(N) * M);

    typename Adapter::Arguments args{};
    args.mode = cutlass::gemm::GemmUniversalMode::kGemm;
    args.problem_shape = {N, M, K, 1};
    args.mainloop = {static_cast<const ElementW*>(p.b), layout_w,
                     static_cast<const ElementAct*>(p.a), stride_act,
                     static_cast<const ScalePack*>(p.group_scales), stride_s,
                     static_cast<int>(p.group_size)};
    auto& fa = args.epilogue.thread;
    // Sm90EVT args are {child 0, child 1, ..., op}.
    fa = {{p.channel_scales, 0.f, {p.channel_vector, _0{}, _0{}}},
          {{p.token_scales, 0.f, {_0{}, p.token_vector, _0{}}}, {}, {}},
          {}};
    args.epilogue.ptr_C = nullptr;
    args.epilogue.ptr_D = static_cast<ElementD*>(p.out);
    args.epilogue.dD = stride_d;
    args.hw_info.device_id = p.device;
    args.hw_info.sm_count = p.sm_count;
    if constexpr (kStreamK) {
      // p.splits > 1 (heuristic_splits): fixed split-K; else CUTLASS's
      // heuristic picks data-parallel / split-K / stream-K.
      using Decomp = typename Kernel::TileScheduler::DecompositionMode;
      args.scheduler.decomposition_mode = Decomp::Heuristic;
      if (p.splits > 1) {
        args.scheduler.decomposition_mode = Decomp::SplitK;
        args.scheduler.splits = p.splits;
      }
    }
    return args;
  }

  static size_t workspace(const MmProblem& p) {
    return Adapter::get_workspace_size(arguments(p));
  }

  static void run(const char* name, const MmProblem& p, void* ws) {
    auto args = arguments(p);
    Adapter gemm;
    const std::string op = str("cutlass_w4a8_mm (schedule ", name, ")");
    LOWBIT_CUTLASS_CHECK(gemm.can_implement(args), op);
    auto stream = static_cast<cudaStream_t>(p.stream);
    LOWBIT_CUTLASS_CHECK(gemm.initialize(args, ws, stream), op);
    LOWBIT_CUTLASS_CHECK(gemm.run(stream, nullptr, kPdl && p.pdl), op);
    LOWBIT_CHECK_LAUNCH();
  }
};

}  // namespace lowbit::w4a8::sm90

// One schedule's entry points (bf16 and fp16 outputs).
#define LOWBIT_W4A8_DEFINE_SCHEDULE(NAME, TN, TM, CN, CM, KIND)                       \
  namespace lowbit::w4a8::sm90 {                                                      \
  using Bf16_##NAME = Gemm<TN, TM, CN, CM, KIND, cutlass::bfloat16_t>;                 \
  using Fp16_##NAME = Gemm<TN, TM, CN, CM, KIND, cutlass::half_t>;                     \
  size_t workspace_##NAME(const MmProblem& p) {                                       \
    return p.out_bf16 ? Bf16_##NAME::workspace(p) : Fp16_##NAME::workspace(p);        \
  }                                                                                   \
  void run_##NAME(const MmProblem& p, void* ws) {                                     \
    if (p.out_bf16) Bf16_##NAME::run(#NAME, p, ws);                                    \
    else Fp16_##NAME::run(#NAME, p, ws);                                               \
  }                                                                                   \
  }
