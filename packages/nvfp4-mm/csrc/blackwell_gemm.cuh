// Blackwell (SM100 / SM120) NVFP4 x NVFP4 GEMM through CUTLASS 3.x block-scaled
// tensor-core collectives: nv_float4_t<float_e2m1_t> operands (e2m1 data +
// ue4m3 scale per 16 elements), fp32 accumulation, D = alpha * acc + bias[n]
// (CUTLASS's per-column-bias linear combination: one fp32 fma, one rounding;
// a null bias pointer broadcasts 0) with alpha read from device memory. The
// scale-factor layout CUTLASS reads (lowbit/fp4_gemm/blackwell_sf_layout.h) is
// the 128x4 swizzled layout of docs/SPEC.md §1.3 (checked on the CPU by
// cutlass-ext's tests), so the op's tensors are passed through unchanged.
//
// Included by the per-(arch, output dtype) translation units in sm100/ and
// sm120/ (one instantiation set per TU keeps each nvcc run near 1 minute).
#pragma once

#include "nvfp4_mm.h"

#include <lowbit/cuda_utils.h>
#include <lowbit/cutlass_utils.h>
#include <lowbit/fp4_gemm/blackwell_sf_layout.h>
#include <lowbit/nvfp4_codec.h>

#include <cute/tensor.hpp>
#include <optional>
#include <cutlass/arch/config.h>
#include <cutlass/cutlass.h>
#include <cutlass/detail/sm100_blockscaled_layout.hpp>
#include <cutlass/epilogue/collective/collective_builder.hpp>
#include <cutlass/epilogue/fusion/operations.hpp>
#include <cutlass/gemm/collective/collective_builder.hpp>
#include <cutlass/gemm/device/gemm_universal_adapter.h>
#include <cutlass/gemm/dispatch_policy.hpp>
#include <cutlass/gemm/kernel/gemm_universal.hpp>
#include <cutlass/util/packed_stride.hpp>

namespace nvfp4_mm::blackwell {

using namespace cute;

template <class ArchTag, class TileShape, class ClusterShape, class ElementD>
struct Fp4Gemm {
  using ElementA = cutlass::nv_float4_t<cutlass::float_e2m1_t>;
  using ElementB = cutlass::nv_float4_t<cutlass::float_e2m1_t>;
  using LayoutA = cutlass::layout::RowMajor;     // A [M, K], K contiguous
  using LayoutB = cutlass::layout::ColumnMajor;  // B [N, K], K contiguous
  using LayoutD = cutlass::layout::RowMajor;
  static constexpr int kAlignAB = 32;  // 16 bytes of e2m1: K % 32 == 0
  static constexpr int kAlignD = 128 / cutlass::sizeof_bits<ElementD>::value;
  using OpClass = cutlass::arch::OpClassBlockScaledTensorOp;

  using Fusion = cutlass::epilogue::fusion::LinCombPerColBias<ElementD, float, ElementD, void, float>;
  using Epilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
      ArchTag, OpClass, TileShape, ClusterShape, cutlass::epilogue::collective::EpilogueTileAuto,
      float, float, void, LayoutD, kAlignD, ElementD, LayoutD, kAlignD,
      cutlass::epilogue::collective::EpilogueScheduleAuto, Fusion>::CollectiveOp;

  using Mainloop = typename cutlass::gemm::collective::CollectiveBuilder<
      ArchTag, OpClass, ElementA, LayoutA, kAlignAB, ElementB, LayoutB, kAlignAB, float, TileShape,
      ClusterShape,
      cutlass::gemm::collective::StageCountAutoCarveout<static_cast<int>(
          sizeof(typename Epilogue::SharedStorage))>,
      cutlass::gemm::collective::KernelScheduleAuto>::CollectiveOp;

  using Kernel = cutlass::gemm::kernel::GemmUniversal<Shape<int, int, int, int>, Mainloop, Epilogue, void>;
  using Gemm = cutlass::gemm::device::GemmUniversalAdapter<Kernel>;

  static void run(const Problem& p, const char* arch_name) {
    using StrideA = typename Gemm::GemmKernel::StrideA;
    using StrideB = typename Gemm::GemmKernel::StrideB;
    using StrideD = typename Gemm::GemmKernel::StrideD;
    static_assert(lowbit::fp4_gemm::blackwell::uses_sf_config<typename Gemm::GemmKernel::CollectiveMainloop,
                                                                  lowbit::nvfp4::kBlock>,
                  "scales: the layout of blackwell_sf_layout.h");
    const int M = static_cast<int>(p.M), N = static_cast<int>(p.N), K = static_cast<int>(p.K);

    auto stride_a = cutlass::make_cute_packed_stride(StrideA{}, {M, K, 1});
    auto stride_b = cutlass::make_cute_packed_stride(StrideB{}, {N, K, 1});
    auto stride_d = cutlass::make_cute_packed_stride(StrideD{}, {M, N, 1});
    auto layout_sfa = lowbit::fp4_gemm::blackwell::sf_layout<lowbit::nvfp4::kBlock>(M, K);
    auto layout_sfb = lowbit::fp4_gemm::blackwell::sf_layout<lowbit::nvfp4::kBlock>(N, K);

    using DataA = typename ElementA::DataType;
    using SfA = typename ElementA::ScaleFactorType;
    typename Gemm::Arguments args{
        cutlass::gemm::GemmUniversalMode::kGemm,
        {M, N, K, 1},
        {reinterpret_cast<const DataA*>(p.a.data_ptr()), stride_a,
         reinterpret_cast<const DataA*>(p.b.data_ptr()), stride_b,
         reinterpret_cast<const SfA*>(p.sa.data_ptr()), layout_sfa,
         reinterpret_cast<const SfA*>(p.sb.data_ptr()), layout_sfb},
        {{}, nullptr, stride_d, reinterpret_cast<ElementD*>(p.out.data_ptr()), stride_d}};
    args.epilogue.thread.alpha_ptr = p.alpha.const_data_ptr<float>();
    args.epilogue.thread.beta = 0.f;
    args.epilogue.thread.bias_ptr = p.bias ? reinterpret_cast<const ElementD*>(p.bias->data_ptr()) : nullptr;
    args.hw_info.device_id = p.a.get_device_index();
    args.hw_info.sm_count = lowbit::device_sm_count(p.a.get_device_index());

    Gemm gemm;
    LOWBIT_CHECK(gemm.can_implement(args) == cutlass::Status::kSuccess,
                 kOp, ": the ", arch_name, " CUTLASS kernel cannot implement M=", M,
                 " N=", N, " K=", K);
    const size_t ws_bytes = Gemm::get_workspace_size(args);
    std::optional<Tensor> ws;
    void* ws_ptr = nullptr;
    if (ws_bytes > 0) {
      ws = lowbit::empty_on(p.a, {static_cast<int64_t>(ws_bytes)}, lowbit::ScalarType::Byte);
      ws_ptr = ws->data_ptr();
    }
    cudaStream_t stream = lowbit::current_stream(p.a);
    LOWBIT_CUTLASS_CHECK(gemm.initialize(args, ws_ptr, stream), kOp);
    LOWBIT_CUTLASS_CHECK(gemm.run(stream), kOp);
    LOWBIT_CHECK_LAUNCH();
  }
};

// An arch's two tiles: Tiles::Arch, Tiles::Tile<i>, Tiles::Cluster<i> (i = 0, 1).
template <class Tiles, class ElementD>
void run_tile(const Problem& p, int tile, const char* arch_name) {
  if (tile == 0)
    Fp4Gemm<typename Tiles::Arch, typename Tiles::Tile0, typename Tiles::Cluster0, ElementD>::run(p, arch_name);
  else
    Fp4Gemm<typename Tiles::Arch, typename Tiles::Tile1, typename Tiles::Cluster1, ElementD>::run(p, arch_name);
}

struct Sm100Tiles {  // names in sm100/select_kernel.cu
  using Arch = cutlass::arch::Sm100;
  using Tile0 = Shape<_128, _128, _256>;  // 1 SM, small M
  using Cluster0 = Shape<_1, _1, _1>;
  using Tile1 = Shape<_256, _128, _256>;  // 2-SM cluster, large M
  using Cluster1 = Shape<_2, _1, _1>;
};

struct Sm120Tiles {  // names in sm120/select_kernel.cu
  using Arch = cutlass::arch::Sm120;
  using Tile0 = Shape<_128, _128, _256>;  // small M
  using Cluster0 = Shape<_1, _1, _1>;
  using Tile1 = Shape<_128, _128, _128>;  // large M
  using Cluster1 = Shape<_1, _1, _1>;
};

}  // namespace nvfp4_mm::blackwell
