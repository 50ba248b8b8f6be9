// SM90 large-M path: dequantize A and B to fp16 once per call, then a CUTLASS
// TMA warp-specialized fp16 GEMM. At large M the GEMM is bound by tensor-core
// throughput, so the extra bytes of the fp16 copies (2 B written + re-read per
// element vs 0.5625 B packed) cost a few percent (~280/M of the GEMM time)
// while CUTLASS's mainloop runs at cuBLAS speed.
//
// Exactness: e2m1 x e4m3 is exact in fp16 (see multistage_gemm.cu), so the
// fp16 copies hold the docs/SPEC.md §1.4 operand values exactly; alpha and
// the bias are applied in the GEMM's epilogue. Inside each 16-element block the fp16 copy stores the values in
// the order (0,4),(1,5),(2,6),(3,7),(8,12),... (what e2m1x2_fp16 yields); A and
// B use the same order, so every dot product is unchanged.
//
// Workspace (caching allocator, graph-safe) is bounded: A in row chunks of at
// most kMaxAElems, B in column chunks of at most kMaxBElems; B is re-dequantized
// per A chunk (only when M * K exceeds the A bound).
#include "f16_gemm.h"

#include "families.h"

#include <lowbit/cuda_utils.h>
#include <lowbit/fp4_gemm/sm90_mma.cuh>
#include <lowbit/nvfp4_codec.h>

#include <algorithm>
#include <optional>

namespace nvfp4_mm::sm90 {
namespace {

using lowbit::fp4_gemm::e2m1x2_fp16;
using lowbit::fp4_gemm::sm90::e4m3x2_to_half2;
using lowbit::fp4_gemm::sm90::hmul2;

constexpr int64_t kMaxAElems = int64_t{128} << 20;  // 256 MiB of fp16
constexpr int64_t kMaxBElems = int64_t{128} << 20;  // 256 MiB of fp16

// Rows [row0, row0 + rows) of an NVFP4 operand ([*, K/2] packed, swizzled
// scales) -> fp16 [rows, K].
struct DequantJob {
  const uint8_t* q;
  const uint8_t* s;
  uint4* out;
  int64_t row0, rows;
};

// Memory-bound: 0.5625 B read and 2 B written per element, so the layout is
// chosen for the stores. A unit is 8 elements: one 32-bit packed word in, one
// 16-byte fp16 chunk out, so consecutive lanes read consecutive words and
// write consecutive 16-byte chunks (every warp access fully coalesced). A CTA
// takes one row (blockIdx.x: job 0's rows, then job 1's, so one launch serves
// A and the first B chunk) and a slice of kSliceUnits units (blockIdx.y);
// each thread issues its kUnits loads before converting. Indices are 32-bit
// inside a row: no per-element 64-bit division.
constexpr int kDqThreads = 128;
constexpr int kUnits = 4;
constexpr int kSliceUnits = kDqThreads * kUnits;  // 4096 elements

__global__ void __launch_bounds__(kDqThreads) dequant_kernel(DequantJob j0, DequantJob j1, int K) {
  // PDL: the inputs may come from the previous kernel, and the workspace may
  // still be read by the previous chunk's GEMM.
  lowbit::pdl_wait();
  lowbit::pdl_launch_dependents();
  const int64_t bx = blockIdx.x;
  const bool second = bx >= j0.rows;
  const DequantJob& j = second ? j1 : j0;
  const int64_t lr = second ? bx - j0.rows : bx;  // row inside the job
  const int64_t r = j.row0 + lr;
  const int units = K / 8;
  const int cols4 = lowbit::nvfp4::swizzled_cols(K / lowbit::nvfp4::kBlock) / 4;  // 4-byte scale column tiles
  const uint32_t* q = reinterpret_cast<const uint32_t*>(j.q + r * (K / 2));
  // The swizzled offset is a sum of a row part and a column part: this
  // row's scales sit at a fixed offset inside each 512-byte tile.
  const uint8_t* s = j.s + lowbit::nvfp4::swizzled_offset<int64_t>(r, 0, cols4);
  uint4* o = j.out + lr * units;
  const int u0 = static_cast<int>(blockIdx.y) * kSliceUnits + static_cast<int>(threadIdx.x);
  uint32_t w[kUnits];
  uint16_t sb[kUnits];
#pragma unroll
  for (int i = 0; i < kUnits; ++i) {
    const int u = u0 + i * kDqThreads;
    if (u < units) {
      w[i] = __ldg(q + u);
      sb[i] = __ldg(s + lowbit::nvfp4::swizzled_offset<int>(0, u >> 1, cols4));  // unit u is in block u/2
    }
  }
  const uint32_t two14 = 0x74007400u;  // half2(16384, 16384): undo e2m1x2_fp16's 2^-14
#pragma unroll
  for (int i = 0; i < kUnits; ++i) {
    const int u = u0 + i * kDqThreads;
    if (u < units) {
      const uint32_t sc = e4m3x2_to_half2(static_cast<uint16_t>(sb[i] | (sb[i] << 8)));
      // raw * scale is exact (a multiple of 2^-24 with <= 6 significant bits); * 2^14 is exact.
      auto v = [&](uint32_t raw) { return hmul2(hmul2(raw, sc), two14); };
      o[u] = make_uint4(v(e2m1x2_fp16<0>(w[i])), v(e2m1x2_fp16<1>(w[i])), v(e2m1x2_fp16<2>(w[i])),
                        v(e2m1x2_fp16<3>(w[i])));
    }
  }
}

DequantJob job(const Tensor& q, const Tensor& s, const Tensor& dst, int64_t row0, int64_t rows) {
  return DequantJob{q.const_data_ptr<uint8_t>(), static_cast<const uint8_t*>(s.data_ptr()),
                    static_cast<uint4*>(dst.data_ptr()), row0, rows};
}

void dequant(const DequantJob& j0, const DequantJob* j1, int K, cudaStream_t stream) {
  const int64_t rows = j0.rows + (j1 ? j1->rows : 0);  // <= 2 * 128Mi / K: fits gridDim.x
  const dim3 grid(static_cast<unsigned>(rows), static_cast<unsigned>((K / 8 + kSliceUnits - 1) / kSliceUnits));
  DequantJob none = j0;
  none.rows = 0;
  lowbit::launch_kernel(dequant_kernel, grid, dim3(kDqThreads), 0, stream, /*pdl=*/true, j0, j1 ? *j1 : none, K);
}

// Equal chunks of at most `max_rows` rows, each a multiple of `align` rows.
int64_t chunk_rows(int64_t total, int64_t max_rows, int64_t align) {
  max_rows = std::max<int64_t>(align, max_rows / align * align);
  const int64_t n = (total + max_rows - 1) / max_rows;
  return std::min(total, ((total + n - 1) / n + align - 1) / align * align);
}

const F16GemmTile kTiles[] = {
#define LOWBIT_NVFP4_F16_ENTRY(NAME) {#NAME, &f16_gemm_workspace_##NAME, &f16_gemm_run_##NAME},
    LOWBIT_NVFP4_F16_TILES(LOWBIT_NVFP4_F16_ENTRY)
#undef LOWBIT_NVFP4_F16_ENTRY
};
static_assert(sizeof(kTiles) / sizeof(kTiles[0]) == kDequantCutlassTiles, "one name per tile");

// Tile config by wave efficiency on this GPU: output tiles / (waves * SMs),
// with the 128x128 tile derated 10% for its lower per-tile efficiency. On the
// H100 run that tuned it (perf/nvfp4-mm/NOTES.md, v4) it picks the faster of
// the two on 23 of 28 (shape, M >= 512) points; a miss costs <= 10%.
int pick_tile(int64_t m, int64_t n, int sms) {
  auto eff = [&](int64_t tm, int64_t tn) {
    const int64_t tiles = ((m + tm - 1) / tm) * ((n + tn - 1) / tn);
    return double(tiles) / double((tiles + sms - 1) / sms * sms);
  };
  return eff(128, 256) >= 0.9 * eff(128, 128) ? 0 : 1;
}

// Row chunks of A and column chunks of B: at most the workspace bounds, or
// (splits > 0) at most `splits` chunks each. Multiples of 128 rows keep every
// A chunk's first row on a scale tile boundary (not required by the kernel)
// and the GEMM tiles full.
struct Chunks {
  int64_t m, n;
};
Chunks pick_chunks(const Problem& p) {
  auto parts = [&](int64_t total, int64_t align) {
    return std::min(total, lowbit::round_up<int64_t>(lowbit::ceil_div<int64_t>(total, p.splits), align));
  };
  if (p.splits > 0) return Chunks{parts(p.M, 128), parts(p.N, 256)};
  return Chunks{chunk_rows(p.M, kMaxAElems / p.K, 128), chunk_rows(p.N, kMaxBElems / p.K, 256)};
}

F16Gemm gemm_params(const Problem& p, const Tensor& aw, const Tensor& bw, int sms) {
  F16Gemm g{};
  g.a = aw.data_ptr();
  g.b = bw.data_ptr();
  g.alpha = p.alpha.const_data_ptr<float>();
  g.K = static_cast<int>(p.K);
  g.ldd = p.N;
  g.out_bf16 = p.out.scalar_type() == lowbit::ScalarType::BFloat16;
  g.device = p.a.get_device_index();
  g.sm_count = sms;
  g.stream = lowbit::current_stream(p.a);
  return g;
}

}  // namespace

const char* const kDequantCutlassNames[kDequantCutlassTiles] = {"dequant_cutlass_128x256",
                                                                 "dequant_cutlass_128x128"};

void run_dequant_cutlass(const Problem& p, int tile) {
  const int64_t M = p.M, N = p.N, K = p.K;
  const int sms = lowbit::device_sm_count(p.a.get_device_index());
  const Chunks ch = pick_chunks(p);
  const F16GemmTile& T = kTiles[tile >= 0 ? tile : pick_tile(ch.m, ch.n, sms)];
  Tensor aw = lowbit::empty_on(p.a, {ch.m * K}, lowbit::ScalarType::Half);
  Tensor bw = lowbit::empty_on(p.a, {ch.n * K}, lowbit::ScalarType::Half);
  F16Gemm g = gemm_params(p, aw, bw, sms);
  // The CUTLASS workspace depends on the shape only through the tile count;
  // size it for the largest chunk.
  g.M = static_cast<int>(ch.m);
  g.N = static_cast<int>(ch.n);
  const size_t ws_bytes = T.workspace(g);
  std::optional<Tensor> ws;
  if (ws_bytes) ws = lowbit::empty_on(p.a, {static_cast<int64_t>(ws_bytes)}, lowbit::ScalarType::Byte);

  const size_t out_elem = 2;  // bf16 / fp16 outputs and bias
  for (int64_t m0 = 0; m0 < M; m0 += ch.m) {
    const int64_t mr = std::min(ch.m, M - m0);
    for (int64_t n0 = 0; n0 < N; n0 += ch.n) {
      const int64_t nr = std::min(ch.n, N - n0);
      const DequantJob jb = job(p.b, p.sb, bw, n0, nr);
      if (n0 == 0) {
        const DequantJob ja = job(p.a, p.sa, aw, m0, mr);
        dequant(ja, &jb, static_cast<int>(K), g.stream);
      } else {
        dequant(jb, nullptr, static_cast<int>(K), g.stream);
      }
      g.M = static_cast<int>(mr);
      g.N = static_cast<int>(nr);
      g.d = static_cast<char*>(p.out.data_ptr()) + (m0 * N + n0) * out_elem;
      g.bias = p.bias ? static_cast<const char*>(p.bias->data_ptr()) + n0 * out_elem : nullptr;
      T.run(g, ws ? ws->data_ptr() : nullptr);
    }
  }
}

}  // namespace nvfp4_mm::sm90
