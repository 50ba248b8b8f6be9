// The SM90 grouped W4A8 GEMM (cutlass_w4a8_moe_mm, docs/SPEC-MOE.md §5.6):
// CUTLASS's ptr-array mixed-input kernel (int4 weights through registers with
// the packed fp8 scale tables, fp8 wgmma, fp32 accumulation), one group per
// expert, computed transposed as the dense op (w4a8_gemm.cuh): expert e is
// D'[N, m_e] = W_e[N, K] . A_e[m_e, K]^T with D' column-major == out rows
// [off[e], off[e] + m_e) row-major. Epilogue: out = bf16(ch[e][n] * (tok[r] *
// acc)), both vectors read through per-expert pointer arrays.
//
// Every per-expert argument CUTLASS reads (problem shape, operand and scale
// pointers, strides, the reordered weight layout) is written on the device by
// moe_setup_kernel from expert_offsets / problem_sizes into a torch
// workspace, on the current stream: no host copy, graph-capturable, and a
// 0-row expert has no tiles. An expert whose metadata breaks the contract
// (docs/SPEC-MOE.md §5.0.3) is computed over its rows that lie inside the
// output with a channel-scale vector of NaNs: those rows become NaN, as in
// the CPU kernel, and nothing is read or written out of bounds. The caller's
// stride tensors are not read: every layout follows from (N, K).
//
// Included by one translation unit per schedule (moe_schedules.def).
#pragma once

#include "w4a8_mm.h"
#include "sm90/promoting_mainloop.cuh"
#include "sm90/reorder_atom.cuh"

#include <lowbit/cuda_utils.h>
#include <lowbit/cutlass_utils.h>

#include <string>
#include <type_traits>

#include <cute/tensor.hpp>
#include <cutlass/cutlass.h>
#include <cutlass/epilogue/collective/collective_builder.hpp>
#include <cutlass/epilogue/fusion/sm90_callbacks_tma_warpspecialized.hpp>
#include <cutlass/gemm/collective/collective_builder.hpp>
#include <cutlass/gemm/device/gemm_universal_adapter.h>
#include <cutlass/gemm/dispatch_policy.hpp>
#include <cutlass/gemm/group_array_problem_shape.hpp>
#include <cutlass/gemm/kernel/gemm_universal.hpp>
#include <cutlass/util/packed_stride.hpp>

namespace lowbit::w4a8::sm90 {

using namespace cute;

// One thread per expert: G::setup writes its CUTLASS arguments; all threads
// fill the NaN channel-scale vector (N floats). Launched with PDL: it may
// start while the kernel that wrote the routing drains, so it waits before
// reading it.
template <class G>
__global__ void moe_setup_kernel(const typename G::Setup s) {
  lowbit::pdl_wait();
  const int e = blockIdx.x * blockDim.x + threadIdx.x;
  if (e < s.E) G::setup(s, e);
  for (int64_t i = e; i < s.N; i += int64_t(gridDim.x) * blockDim.x) s.arr.nans[i] = __int_as_float(0x7fc00000);
  lowbit::pdl_launch_dependents();
}

template <int TileN, int TileM, int ClusterN>
struct MoeGemm {
  using ElementW = cutlass::int4b_t;
  using ElementAct = cutlass::float_e4m3_t;
  using ScalePack = cutlass::Array<cutlass::float_e4m3_t, 8>;
  using ElementD = cutlass::bfloat16_t;
  using ProblemShape = cutlass::gemm::GroupProblemShape<Shape<int, int, int>>;  // (N, m_e, K)
  using TileShape = Shape<Int<TileN>, Int<TileM>, _128>;  // K tile = one 128 group
  using ClusterShape = Shape<Int<ClusterN>, _1, _1>;

  // The reordered int4 weight (docs/SPEC.md §1.5) of one expert: its
  // dynamic part is vLLM's descriptor row (N/16, K/32, 32N) (SPEC-MOE §5.1.5).
  using LayoutW = decltype(tile_to_shape(ReorderAtom{}, Layout<Shape<int, int, _1>, Stride<int64_t, _1, _0>>{}));

  // ch[n] varies along CUTLASS M (weight rows), tok[r] along CUTLASS N
  // (tokens); both arrays of per-expert pointers (l = expert). Alignment 1:
  // token rows start anywhere.
  using ChBcast = cutlass::epilogue::fusion::Sm90ColBroadcast<0, TileShape, float*, float, Stride<_1, _0, _0>, 1>;
  using TokBcast = cutlass::epilogue::fusion::Sm90RowBroadcast<0, TileShape, float*, float, Stride<_0, _1, _0>, 1>;
  using MulTok = cutlass::epilogue::fusion::Sm90Compute<cutlass::multiplies, float, float,
                                                        cutlass::FloatRoundStyle::round_to_nearest>;
  using MulCh = cutlass::epilogue::fusion::Sm90Compute<cutlass::multiplies, ElementD, float,
                                                       cutlass::FloatRoundStyle::round_to_nearest>;
  using Fusion = cutlass::epilogue::fusion::Sm90EVT<
      MulCh, ChBcast, cutlass::epilogue::fusion::Sm90EVT<MulTok, TokBcast, cutlass::epilogue::fusion::Sm90AccFetch>>;

  static constexpr int kAlignD = 128 / cutlass::sizeof_bits<ElementD>::value;
  using Epilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, TileShape, ClusterShape,
      cutlass::epilogue::collective::EpilogueTileAuto, float, float, void, cutlass::layout::ColumnMajor*, kAlignD,
      ElementD, cutlass::layout::ColumnMajor*, kAlignD, cutlass::epilogue::PtrArrayTmaWarpSpecializedCooperative,
      Fusion>::CollectiveOp;
  using CutlassMainloop = typename cutlass::gemm::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, cute::tuple<ElementW, ScalePack>, LayoutW*, 32,
      ElementAct, cutlass::layout::ColumnMajor*, 16, float, TileShape, ClusterShape,
      cutlass::gemm::collective::StageCountAutoCarveout<static_cast<int>(sizeof(typename Epilogue::SharedStorage))>,
      cutlass::gemm::KernelPtrArrayTmaWarpSpecializedCooperative>::CollectiveOp;
  // fp32 promotion every 8 K tiles where the registers allow it, as in the
  // dense GEMM (promoting_mainloop.cuh): 128x16 and 128x64; 128x256 keeps CUTLASS's loop.
  using Mainloop = typename MainloopFor<CutlassMainloop, TileN, TileM>::type;
  using Kernel = cutlass::gemm::kernel::GemmUniversal<ProblemShape, Mainloop, Epilogue>;
  using Gemm = cutlass::gemm::device::GemmUniversalAdapter<Kernel>;

  using Shape3 = typename ProblemShape::UnderlyingProblemShape;
  using StrideAct = typename Mainloop::InternalStrideB;
  using StrideS = typename Mainloop::NonVoidStrideScale;
  using StrideD = typename Kernel::InternalStrideD;

  // The per-expert argument arrays, carved from the front of the workspace.
  struct Arrays {
    Shape3* shape;
    const ElementW** w;
    LayoutW* layout_w;
    const ElementAct** act;
    StrideAct* stride_act;
    const ScalePack** scales;
    StrideS* stride_s;
    ElementD** d;
    StrideD* stride_d;
    const float** ch;
    const float** tok;
    float* nans;  // [N]: the channel scales of experts with broken metadata
  };

  // Bytes of the arrays for E experts of N rows (each 128-byte aligned);
  // with `base`, also points `arr` into it.
  static int64_t carve(int64_t E, int64_t N, uint8_t* base, Arrays* arr) {
    Arrays dummy{};
    Arrays& x = base ? *arr : dummy;
    lowbit::ArrayCarver c(base);
    c.take_each(E, x.shape, x.w, x.layout_w, x.act, x.stride_act, x.scales, x.stride_s, x.d, x.stride_d, x.ch,
                x.tok);
    c.take(x.nans, N);
    return c.bytes();
  }

  struct Setup {
    Arrays arr;
    const int64_t* offsets;
    const int32_t* sizes;
    const uint8_t* a;
    const uint8_t* b;
    const ScalePack* scales;
    const float* a_scales;
    const float* b_scales;
    ElementD* out;
    int E;
    int64_t M, N, K, scale_k;
  };

  static __device__ void setup(const Setup& s, int e) {
    const int32_t* ps = s.sizes + 3 * e;
    const int64_t off = s.offsets[e], m = ps[1];
    const bool ok = ps[0] == s.N && ps[2] == s.K && m >= 0 && off >= 0 && off <= s.M && m <= s.M - off;
    // Broken metadata: the expert's rows clipped to [0, M) (none if off < 0).
    const int64_t row0 = ok ? off : (off < 0 ? 0 : (off < s.M ? off : s.M));
    const int rows = static_cast<int>(ok ? m : (off < 0 || m < 0 ? 0 : (m < s.M - row0 ? m : s.M - row0)));
    const int N = static_cast<int>(s.N), K = static_cast<int>(s.K);
    s.arr.shape[e] = Shape3(N, rows, K);
    s.arr.w[e] = reinterpret_cast<const ElementW*>(s.b + int64_t(e) * s.N * (s.K / 2));
    s.arr.layout_w[e] = tile_to_shape(ReorderAtom{}, make_shape(N, K, _1{}));
    s.arr.act[e] = reinterpret_cast<const ElementAct*>(s.a + row0 * s.K);
    s.arr.stride_act[e] = cutlass::make_cute_packed_stride(StrideAct{}, make_shape(rows, K, 1));
    s.arr.scales[e] = s.scales + int64_t(e) * s.scale_k * s.N;
    s.arr.stride_s[e] = make_stride(_1{}, s.N, int64_t(0));
    s.arr.d[e] = s.out + row0 * s.N;
    s.arr.stride_d[e] = cutlass::make_cute_packed_stride(StrideD{}, make_shape(N, rows, 1));
    s.arr.ch[e] = ok ? s.b_scales + int64_t(e) * s.N : s.arr.nans;
    s.arr.tok[e] = s.a_scales + row0;
  }

  static Setup make_setup(const MoeMmProblem& p, const Arrays& arr) {
    return Setup{arr,
                 p.expert_offsets,
                 p.problem_sizes,
                 static_cast<const uint8_t*>(p.a),
                 static_cast<const uint8_t*>(p.b),
                 static_cast<const ScalePack*>(p.group_scales),
                 p.a_scales,
                 p.b_scales,
                 static_cast<ElementD*>(p.out),
                 static_cast<int>(p.E),
                 p.M,
                 p.N,
                 p.K,
                 p.K / p.group_size};
  }

  static typename Gemm::Arguments arguments(const MoeMmProblem& p, const Arrays& arr) {
    typename Gemm::Arguments args{};
    args.mode = cutlass::gemm::GemmUniversalMode::kGrouped;
    args.problem_shape = {static_cast<int>(p.E), arr.shape, nullptr};
    args.mainloop = {arr.w, arr.layout_w, arr.act, arr.stride_act, arr.scales, arr.stride_s,
                     static_cast<int>(p.group_size)};
    // Sm90EVT args are {child 0, child 1, ..., op}.
    args.epilogue.thread = {{arr.ch, 0.f, {}}, {{arr.tok, 0.f, {}}, {}, {}}, {}};
    args.epilogue.ptr_C = nullptr;
    args.epilogue.dC = nullptr;
    args.epilogue.ptr_D = arr.d;
    args.epilogue.dD = arr.stride_d;
    args.hw_info.device_id = p.device;
    args.hw_info.sm_count = p.sm_count;
    return args;
  }

  // The arrays, then CUTLASS's workspace at a 256-byte boundary.
  static size_t workspace(const MoeMmProblem& p) {
    const int64_t arrays = carve(p.E, p.N, nullptr, nullptr);
    return static_cast<size_t>((arrays + 255) / 256 * 256) + Gemm::get_workspace_size(arguments(p, Arrays{}));
  }

  static void run(const char* name, const MoeMmProblem& p, void* ws) {
    auto* base = static_cast<uint8_t*>(ws);
    Arrays arr{};
    const int64_t arrays = (carve(p.E, p.N, base, &arr) + 255) / 256 * 256;
    auto stream = static_cast<cudaStream_t>(p.stream);
    lowbit::launch_kernel(moe_setup_kernel<MoeGemm>, dim3(static_cast<unsigned>((p.E + 127) / 128)), dim3(128), 0,
                          stream, /*pdl=*/true, make_setup(p, arr));
    auto args = arguments(p, arr);
    Gemm gemm;
    const std::string op = str("cutlass_w4a8_moe_mm (schedule ", name, ")");
    LOWBIT_CUTLASS_CHECK(gemm.can_implement(args), op);
    LOWBIT_CUTLASS_CHECK(gemm.initialize(args, base + arrays, stream), op);
    // No PDL: CUTLASS's ptr-array kernel has no griddepcontrol.wait, so it
    // must not start before the setup kernel has finished.
    LOWBIT_CUTLASS_CHECK(gemm.run(stream), op);
    LOWBIT_CHECK_LAUNCH();
  }
};

}  // namespace lowbit::w4a8::sm90

// One grouped schedule's entry points.
#define LOWBIT_W4A8_DEFINE_MOE_SCHEDULE(NAME, TN, TM, CN)                                   \
  namespace lowbit::w4a8::sm90 {                                                            \
  size_t moe_workspace_##NAME(const MoeMmProblem& p) { return MoeGemm<TN, TM, CN>::workspace(p); } \
  void moe_run_##NAME(const MoeMmProblem& p, void* ws) { MoeGemm<TN, TM, CN>::run(#NAME, p, ws); } \
  }
