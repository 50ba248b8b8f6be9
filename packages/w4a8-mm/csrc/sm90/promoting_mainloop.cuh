// fp32 promotion of the W4A8 accumulator (issue #17; perf/w4a8-mm/NOTES.md v6-v8):
// CUTLASS 4.2's mixed-input collective (dense and ptr-array forms) used as a
// library — its producer (load), shared storage, scale lookup tables and
// dequantize helpers — with the consumer loop (mma) replaced.
//
// Why: the fp8 wgmma accumulator is not a full fp32 sum; over a long K its
// error grows with the number of products the tensor core sums (at K = 28672
// CUTLASS's loop is 2.5x the error of cuBLASLt's promoted fp8 GEMM). Here the
// wgmmas accumulate into a second fragment, `partial`, which is added into the
// fp32 accumulator with ordinary FADDs (as DeepGEMM does) every 8 K tiles:
// the tensor core sums at most 9 tiles (1152 K; 1024-K sums measured within
// 2.6% of the promoted floor, NOTES v7).
//
// Cost: v6 (a drain per K tile) was 5-25% slower and v7 (runtime per-tile
// flags) 5-20%: at decode the consumer warpgroup is issue-bound (dequantizing
// is ~150 of ~167 instructions per K tile), so this loop keeps per-tile work
// to CUTLASS's: the same issue order (after each wgmma wait until 3 are in
// flight; the next tile's first k-block fetched and dequantized during the
// current tile's last k-block, before any drain), tile 0 and the last tile
// peeled, the tiles between in groups of 8 unrolled with compile-time flags
// (one compare and branch per tile: the last group may be shorter), and after
// each group one drain, the add and a clear of `partial` by register moves, so
// every wgmma accumulates (no per-wgmma ScaleOut select).
//
// ptxas constraints (NOTES v7; C7514 / C7517 serialize every wgmma of the
// kernel): a non-wgmma read or write of `partial` must sit in the same loop
// iteration as its last wgmma, and no wgmma on `partial` may be in flight
// over a loop back edge. Hence the drain and add close each group's
// iteration, and the group loop is not split across iterations.
//
// `partial` doubles the accumulator registers: used only where a consumer
// thread holds <= 32 accumulators and a warpgroup <= 64 weight rows
// (MainloopFor below).
#pragma once

#include <type_traits>

#include <cute/tensor.hpp>
#include <cutlass/cutlass.h>
#include <cutlass/gemm/collective/collective_builder.hpp>  // the collectives and their MixedInputUtils
#include <cutlass/pipeline/pipeline.hpp>

namespace lowbit::w4a8::sm90 {

// The register-side weight's stride type: the ptr-array collective names it
// InternalSwappedStrideA (its SwappedStrideA is a pointer type).
template <class C, class = void>
struct RegisterOperandStride { using type = typename C::SwappedStrideA; };
template <class C>
struct RegisterOperandStride<C, std::void_t<typename C::InternalSwappedStrideA>> {
  using type = typename C::InternalSwappedStrideA;
};

// Tiles summed by the tensor core between two promotions (the first group
// also holds tile 0: at most kGroupTiles + 1).
inline constexpr int kGroupTiles = 8;

template <class Base>
struct PromotingMainloop : Base {
  using MainloopPipeline = typename Base::MainloopPipeline;
  using PipelineState = typename Base::PipelineState;
  using TensorStorage = typename Base::TensorStorage;
  using Params = typename Base::Params;
  using TiledMma = typename Base::TiledMma;

  // Same contract as Base::mma (the kernel then calls Base::mma_tail, which
  // releases the last stage: this loop keeps CUTLASS's release lag of one
  // tile). On return no wgmma is in flight.
  template <class FrgTensorC>
  CUTLASS_DEVICE void mma(MainloopPipeline pipeline, PipelineState smem_pipe_read, FrgTensorC& accum,
                          int k_tile_count, int thread_idx, TensorStorage& shared_tensors,
                          Params const& mainloop_params) {
    using namespace cute;
    using Utils = cutlass::gemm::collective::detail::MixedInputUtils<Base>;
    using SmemLayoutA = typename Base::SmemLayoutA;
    using SmemLayoutB = typename Base::SmemLayoutB;
    using StrideA = typename RegisterOperandStride<Base>::type;
    static_assert(is_rmem<FrgTensorC>::value, "the accumulator must be in registers");
    static_assert(cute::is_void_v<typename Base::SwappedSmemCopyAtomB>, "B must be read by wgmma from smem");

    // Operand partitioning as in CUTLASS's consumer: A (weight) through
    // registers, B (activation) by smem descriptor.
    const int wg_thread = thread_idx % cutlass::NumThreadsPerWarpGroup;
    cute::Tensor sA = as_position_independent_swizzle_tensor(
        make_tensor(make_smem_ptr(shared_tensors.smem_A.begin()), SmemLayoutA{}));  // (BLK_M,BLK_K,PIPE)
    cute::Tensor sB = make_tensor(make_smem_ptr(shared_tensors.smem_B.begin()), SmemLayoutB{});  // (BLK_N,BLK_K,PIPE)
    constexpr int kWarpGroups = size(TiledMma{}) / cutlass::NumThreadsPerWarpGroup;
    const int warp_group = __shfl_sync(0xFFFFFFFF, thread_idx / cutlass::NumThreadsPerWarpGroup, 0);
    TiledMma tiled_mma;
    auto thr_mma = tiled_mma.get_thread_slice(thread_idx);
    auto wg_mma = tiled_mma.get_slice(make_layout(Int<kWarpGroups>{}, Int<cutlass::NumThreadsPerWarpGroup>{})(warp_group));
    cute::Tensor tCsA = thr_mma.partition_A(sA);
    cute::Tensor tCrA_mma = thr_mma.partition_fragment_A(sA(_, _, Int<0>{}));  // (MMA,MMA_M,MMA_K)
    cute::Tensor tCrA_load = [&] {
      if constexpr (not is_layout<StrideA>::value) {
        return make_fragment_like<typename Base::RealSwappedElementA>(tCrA_mma);
      } else {  // the reordered layout: the converter de-swizzles
        return make_tensor_like<typename Base::RealSwappedElementA>(tCsA(_, _, _, Int<0>{}));
      }
    }();
    cute::Tensor tCrB = wg_mma.make_fragment_B(wg_mma.partition_B(sB));  // (MMA,MMA_N,MMA_K,PIPE)
    auto smem_copy_A = make_tiled_copy_A(typename Base::SwappedSmemCopyAtomA{}, tiled_mma);
    cute::Tensor tCrA_copy = smem_copy_A.get_thread_slice(wg_thread).retile_D(tCrA_load);
    auto extra = Utils::partition_extra_mma_info(thr_mma, shared_tensors);  // scales (lookup tables)
    auto extra_copy = Utils::retile_extra_mma_info(tiled_mma, extra, wg_thread);
    CUTE_STATIC_ASSERT_V(size<1>(tCrA_mma) == size<1>(accum));
    CUTE_STATIC_ASSERT_V(size<2>(tCrB) == size<2>(tCrA_load));

    constexpr int kBlocks = size<2>(tCrA_load);  // wgmma k-blocks per K tile (4)
    constexpr int kInFlight = cute::min(kBlocks - 1, 7);
    static_assert(kBlocks >= 4, "a K tile of at least 4 wgmma k-blocks");

    auto load = [&](int k_block, int stage) {  // smem -> registers (weights and scales)
      Utils::copy_tensors_MK(smem_copy_A, tCsA, tCrA_copy, extra, extra_copy, k_block, stage);
    };
    auto dequantize = [&](int k_block) { Utils::dequantize_A_kblock(tCrA_load, tCrA_mma, extra, k_block); };

    cute::Tensor partial = make_fragment_like(accum);
    warpgroup_fence_operand(accum);
    warpgroup_fence_operand(partial);
    clear(accum);
    clear(partial);
    tiled_mma.accumulate_ = GMMA::ScaleOut::One;  // partial is cleared by moves, never by wgmma
    auto issue = [&](int k_block, int stage) {
      warpgroup_arrive();
      cute::gemm(tiled_mma, tCrA_mma(_, _, k_block), tCrB(_, _, k_block, stage), partial);
      warpgroup_commit_batch();
    };
    // Drain, accum += partial, partial = 0 (register moves).
    auto promote = [&] {
      warpgroup_wait<0>();
      warpgroup_fence_operand(partial);
      warpgroup_fence_operand(accum);
      CUTLASS_PRAGMA_UNROLL
      for (int i = 0; i < size(accum); ++i) {
        accum(i) += partial(i);
        partial(i) = 0.f;
      }
      warpgroup_fence_operand(accum);
      warpgroup_fence_operand(partial);
    };

    PipelineState smem_pipe_release = smem_pipe_read;
    cutlass::ConsumerToken token = {cutlass::BarrierStatus::WaitAgain};

    // One K tile after tile 0, CUTLASS's steady-state order. With kNext, the
    // next tile's k-blocks 0 and 1 are fetched and 0 dequantized during this
    // tile's last k-block (the last tile has no next).
    auto tile = [&](auto has_next) {
      constexpr bool kNext = decltype(has_next)::value;
      const int read_stage = smem_pipe_read.index();
      if constexpr (kNext) ++smem_pipe_read;
      warpgroup_fence_operand(partial);
      CUTLASS_PRAGMA_UNROLL
      for (int k_block = 0; k_block < kBlocks; ++k_block) {
        issue(k_block, read_stage);
        // The wgmma that read k-block k_block + 1's registers (previous tile)
        // is done once at most kInFlight are pending.
        warpgroup_wait<kInFlight>();
        if (k_block == kBlocks - 1) {  // the previous tile's wgmmas are done
          pipeline.consumer_release(smem_pipe_release);
          ++smem_pipe_release;
        }
        if constexpr (kNext) {
          if (k_block == 0) token = pipeline.consumer_try_wait(smem_pipe_read);
        }
        if (k_block == kBlocks - 1) {
          if constexpr (kNext) {
            pipeline.consumer_wait(smem_pipe_read, token);
            load(0, smem_pipe_read.index());
            load(1, smem_pipe_read.index());
            dequantize(0);
          }
        } else {
          if (k_block < kBlocks - 2) load(k_block + 2, read_stage);
          dequantize(k_block + 1);
        }
      }
      warpgroup_fence_operand(partial);
    };

    // Tile 0: nothing in flight before it, so no waits between its wgmmas.
    {
      token = pipeline.consumer_try_wait(smem_pipe_read);
      pipeline.consumer_wait(smem_pipe_read, token);
      const int read_stage = smem_pipe_read.index();
      ++smem_pipe_read;
      token = pipeline.consumer_try_wait(smem_pipe_read);
      load(0, read_stage);
      load(1, read_stage);
      dequantize(0);
      warpgroup_fence_operand(partial);
      CUTLASS_PRAGMA_UNROLL
      for (int k_block = 0; k_block < kBlocks; ++k_block) {
        issue(k_block, read_stage);
        if (k_block < kBlocks - 2) load(k_block + 2, read_stage);
        if (k_block < kBlocks - 1) dequantize(k_block + 1);
      }
      warpgroup_fence_operand(partial);
      if (--k_tile_count == 0) {
        promote();
        return;
      }
      pipeline.consumer_wait(smem_pipe_read, token);
      load(0, smem_pipe_read.index());
      load(1, smem_pipe_read.index());
      warpgroup_wait<kInFlight>();  // tile 0's k-block 0 wgmma has read its registers
      dequantize(0);
    }

    // The tiles between tile 0 and the last, kGroupTiles per iteration (the
    // last iteration's group may be shorter); each iteration ends with the
    // promotion of its own wgmmas (see the ptxas note above).
    CUTLASS_PRAGMA_NO_UNROLL
    for (int between = k_tile_count - 1; between > 0; between -= kGroupTiles) {
      tile(std::true_type{});
      CUTLASS_PRAGMA_UNROLL
      for (int t = 1; t < kGroupTiles; ++t) {
        if (t < between) tile(std::true_type{});
      }
      promote();
    }

    tile(std::false_type{});
    promote();
  }
};

// The consumer loop of a TileN (weight rows) x TileM (tokens) tile of the
// dense and grouped GEMMs: PromotingMainloop where the second accumulator
// fits, <= 32 floats per consumer thread and <= 64 weight rows per warpgroup
// (128x16/32/64 and 64x16/32/64). ptxas -v on the others: 128x128 spills 290
// bytes; 256x64, 256x32 and even 256x16 (128 rows per warpgroup: twice the
// weight fragment) get their wgmmas serialized for want of registers (C7511 /
// C7512). Those and the 128-float tiles (128x256, 256x128, 64x256) keep
// CUTLASS's loop and its fast accumulation.
template <class CutlassMainloop, int TileN, int TileM>
struct MainloopFor {
  static constexpr int kWarpGroups =
      int(cute::size(typename CutlassMainloop::TiledMma{})) / cutlass::NumThreadsPerWarpGroup;
  static constexpr bool kPromotes =
      TileN * TileM / (cutlass::NumThreadsPerWarpGroup * kWarpGroups) <= 32 && TileN / kWarpGroups <= 64;
  using type = cute::conditional_t<kPromotes, PromotingMainloop<CutlassMainloop>, CutlassMainloop>;
};

}  // namespace lowbit::w4a8::sm90
