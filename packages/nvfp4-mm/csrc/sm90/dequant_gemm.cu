// SM90 large-M path: dequantize A and B to fp16 once per call, then a CUTLASS
// TMA warp-specialized fp16 GEMM. At large M the GEMM is bound by tensor-core
// throughput, so the extra bytes of the fp16 copies (2 B written + re-read per
// element vs 0.5625 B packed) cost a few percent (~280/M of the GEMM time)
// while CUTLASS's mainloop runs at cuBLAS speed.
//
// Exactness: e2m1 x e4m3 is exact in fp16 (see mm_sm90.cu), so the fp16 copies
// hold the SPEC §1.4 operand values exactly and alpha is applied in the
// epilogue. Inside each 16-element block the fp16 copy stores the values in
// the order (0,4),(1,5),(2,6),(3,7),(8,12),... (what e2m1x2_raw yields); A and
// B use the same order, so every dot product is unchanged.
//
// Workspace (caching allocator, graph-safe) is bounded: A in row chunks of at
// most kMaxAElems, B in column chunks of at most kMaxBElems; B is re-dequantized
// per A chunk (only when M * K exceeds the A bound).
#include "f16_gemm.h"

#include "fp4_fp16.cuh"

#include <lowbit/cuda_utils.h>

#include <algorithm>
#include <cstdlib>
#include <optional>

namespace nvfp4_mm::sm90 {
namespace {

constexpr int64_t kMaxAElems = int64_t{128} << 20;  // 256 MiB of fp16
constexpr int64_t kMaxBElems = int64_t{128} << 20;  // 256 MiB of fp16

// LOWBIT_NVFP4_MM_CHUNK_ELEMS (tests only) shrinks both bounds so that small
// problems exercise the chunk loops. Read per call: tests change it.
int64_t chunk_bound(int64_t dflt) {
  const char* e = std::getenv("LOWBIT_NVFP4_MM_CHUNK_ELEMS");
  const long long v = e ? std::atoll(e) : 0;
  return v > 0 ? v : dflt;
}

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
  const int cols4 = (K / 16 + 3) / 4;  // scale columns / 4 (K/16 padded to 4)
  const uint32_t* q = reinterpret_cast<const uint32_t*>(j.q + r * (K / 2));
  // 128x4 swizzle: this row's scales sit at a fixed offset inside each 512-byte tile.
  const uint8_t* s = j.s + (r / 128) * cols4 * 512 + (r % 32) * 16 + ((r / 32) % 4) * 4;
  uint4* o = j.out + lr * units;
  const int u0 = static_cast<int>(blockIdx.y) * kSliceUnits + static_cast<int>(threadIdx.x);
  uint32_t w[kUnits];
  uint16_t sb[kUnits];
#pragma unroll
  for (int i = 0; i < kUnits; ++i) {
    const int u = u0 + i * kDqThreads;
    if (u < units) {
      w[i] = __ldg(q + u);
      sb[i] = __ldg(s + (u >> 3) * 512 + ((u >> 1) & 3));  // block u/2 -> tile column (u/2)/4, byte (u/2)%4
    }
  }
  const uint32_t two14 = 0x74007400u;  // half2(16384, 16384): undo e2m1x2_raw's 2^-14
#pragma unroll
  for (int i = 0; i < kUnits; ++i) {
    const int u = u0 + i * kDqThreads;
    if (u < units) {
      const uint32_t sc = e4m3x2_to_half2(static_cast<uint16_t>(sb[i] | (sb[i] << 8)));
      // raw * scale is exact (a multiple of 2^-24 with <= 6 significant bits); * 2^14 is exact.
      auto v = [&](uint32_t raw) { return hmul2(hmul2(raw, sc), two14); };
      o[u] = make_uint4(v(e2m1x2_raw<0>(w[i])), v(e2m1x2_raw<1>(w[i])), v(e2m1x2_raw<2>(w[i])),
                        v(e2m1x2_raw<3>(w[i])));
    }
  }
}

DequantJob job(const Tensor& q, const Tensor& s, const Tensor& dst, int64_t row0, int64_t rows) {
  return DequantJob{q.const_data_ptr<uint8_t>(), static_cast<const uint8_t*>(s.data_ptr()),
                    static_cast<uint4*>(dst.data_ptr()), row0, rows};
}

void dequant(const DequantJob& j0, const DequantJob* j1, int K, cudaStream_t stream, bool pdl) {
  const int64_t rows = j0.rows + (j1 ? j1->rows : 0);  // <= 2 * 128Mi / K: fits gridDim.x
  const dim3 grid(static_cast<unsigned>(rows), static_cast<unsigned>((K / 8 + kSliceUnits - 1) / kSliceUnits));
  DequantJob none = j0;
  none.rows = 0;
  lowbit::launch_kernel(dequant_kernel, grid, dim3(kDqThreads), 0, stream, pdl, j0, j1 ? *j1 : none, K);
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
static_assert(sizeof(kTiles) / sizeof(kTiles[0]) == kF16Tiles, "kF16Tiles must match the tile table");

// Tile config by wave efficiency on this GPU: output tiles / (waves * SMs),
// with the 128x128 tile derated 10% for its lower per-tile efficiency. On the
// H100 run that tuned it (docs/perf-nvfp4-mm.md, v4) it picks the faster of
// the two on 23 of 28 (shape, M >= 512) points; a miss costs <= 10%.
int pick_tile(int64_t m, int64_t n, int sms) {
  auto eff = [&](int64_t tm, int64_t tn) {
    const int64_t tiles = ((m + tm - 1) / tm) * ((n + tn - 1) / tn);
    return double(tiles) / double((tiles + sms - 1) / sms * sms);
  };
  return eff(128, 256) >= 0.9 * eff(128, 128) ? 0 : 1;
}

}  // namespace

void mm_f16_path(const Problem& p, int tile, bool pdl) {
  const int dev = p.a.get_device_index();
  cudaStream_t stream = lowbit::current_stream(p.a);
  const int64_t M = p.M, N = p.N, K = p.K;
  const int sms = lowbit::device_sm_count(dev);
  // Row chunks: multiples of 128 keep every chunk's first row on a scale tile
  // boundary (not required by the kernel) and the GEMM tiles full.
  const int64_t mc = chunk_rows(M, chunk_bound(kMaxAElems) / K, 128);
  const int64_t nc = chunk_rows(N, chunk_bound(kMaxBElems) / K, 256);
  const F16GemmTile& T = kTiles[tile >= 0 ? tile : pick_tile(mc, nc, sms)];
  Tensor aw = lowbit::empty_on(p.a, {mc * K}, lowbit::ScalarType::Half);
  Tensor bw = lowbit::empty_on(p.a, {nc * K}, lowbit::ScalarType::Half);

  F16Gemm g{};
  g.a = aw.data_ptr();
  g.b = bw.data_ptr();
  g.alpha = p.alpha.const_data_ptr<float>();
  g.K = static_cast<int>(K);
  g.ldd = N;
  g.out_bf16 = p.out.scalar_type() == lowbit::ScalarType::BFloat16;
  g.device = dev;
  g.sm_count = sms;
  g.stream = stream;
  g.pdl = pdl;
  // The CUTLASS workspace depends on the shape only through the tile count;
  // size it for the largest chunk.
  g.M = static_cast<int>(mc);
  g.N = static_cast<int>(nc);
  const size_t ws_bytes = T.workspace(g);
  std::optional<Tensor> ws;
  if (ws_bytes) ws = lowbit::empty_on(p.a, {static_cast<int64_t>(ws_bytes)}, lowbit::ScalarType::Byte);

  for (int64_t m0 = 0; m0 < M; m0 += mc) {
    const int64_t mr = std::min(mc, M - m0);
    for (int64_t n0 = 0; n0 < N; n0 += nc) {
      const int64_t nr = std::min(nc, N - n0);
      const DequantJob jb = job(p.b, p.sb, bw, n0, nr);
      if (n0 == 0) {
        const DequantJob ja = job(p.a, p.sa, aw, m0, mr);
        dequant(ja, &jb, static_cast<int>(K), stream, pdl);
      } else {
        dequant(jb, nullptr, static_cast<int>(K), stream, pdl);
      }
      g.M = static_cast<int>(mr);
      g.N = static_cast<int>(nr);
      g.d = static_cast<char*>(p.out.data_ptr()) + (m0 * N + n0) * int64_t{2};  // 2-byte outputs
      T.run(g, ws ? ws->data_ptr() : nullptr);
    }
  }
}

}  // namespace nvfp4_mm::sm90
