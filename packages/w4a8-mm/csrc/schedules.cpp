// Schedule names (always built, so a CPU-only build validates names the same
// way) and the heuristic used when no schedule is given.
#include "w4a8_mm.h"

#include <algorithm>
#include <string>

namespace lowbit::w4a8 {

const std::vector<Schedule>& schedules() {
  static const std::vector<Schedule> list = {
#define X(NAME, TN, TM, CN, CM, KIND) {#NAME, TN, TM, CN, CM, KIND},
#include "schedules.def"
#undef X
  };
  return list;
}

namespace {
// Names that select a compiled kernel with the same tile and kernel kind:
// vLLM's 256x128_1x1x1 is a cooperative, persistent 256x128 tile; the
// 256x128_2x1x1 kernel is that tile with a 2x1 cluster (the activation tile
// multicast to both CTAs), the same per-element arithmetic, so the name
// reuses it instead of another ~60 s CUTLASS translation unit.
struct Alias {
  const char* name;
  const char* kernel;
};
constexpr Alias kAliases[] = {{"256x128_1x1x1", "256x128_2x1x1"}};

// Index in `kernels` (schedules() or moe_schedules()) of the kernel a name
// selects, directly or through `aliases`; -1 if none.
template <class Kernels, size_t N>
int find_kernel(const Kernels& kernels, const Alias (&aliases)[N], const std::string& name) {
  for (size_t i = 0; i < kernels.size(); ++i) {
    if (name == kernels[i].name) return static_cast<int>(i);
  }
  for (const auto& a : aliases) {
    if (name == a.name) return find_kernel(kernels, aliases, a.kernel);
  }
  return -1;
}

[[noreturn]] void fail_unknown(const char* op, const std::string& name,
                               const std::vector<std::string>& names) {
  std::string valid;
  for (const auto& n : names) valid += (valid.empty() ? "" : ", ") + n;
  fail(str(op, ": argument 'maybe_schedule': unknown schedule string: '", name,
           "'; expected one of [", valid, "] or None (heuristic)"));
}
}  // namespace

std::vector<std::string> schedule_names() {
  std::vector<std::string> names;
  for (const auto& s : schedules()) names.emplace_back(s.name);
  for (const auto& a : kAliases) names.emplace_back(a.name);
  return names;
}

int schedule_index(const char* op, const std::string& name) {
  const int index = find_kernel(schedules(), kAliases, name);
  if (index < 0) fail_unknown(op, name, schedule_names());
  return index;
}

namespace {
int by_name(const char* name) { return schedule_index("heuristic", name); }
}  // namespace

// Tuned on an H100 SXM from the sweeps in perf/w4a8-mm/NOTES.md (every
// schedule on every SPEC §4 Llama-3 8B/70B shape, M in {1..8192}); re-tuned
// on the H200 for M <= 256 (session 6: the 256-row decode tiles and the
// M <= 256 branch).
// Small M is weight-streaming bound with a fixed cost per call; the narrowest
// token tile that covers M wastes the least MMA work. Three ways to spread
// the weight rows over the SMs, in order of fixed cost (v4 sweep):
//  * 64-row ping-pong tiles, data-parallel: no split-K fix-up, no workspace
//    memset, PDL-launched; 4-5 us faster than v3 where their tiles fit one
//    wave. Not at K > 8192: there (and only there measured) split-K's 128
//    busy SMs and its halved activation traffic per weight byte win.
//  * 128-row cooperative persistent tiles (PDL) when those alone fill more
//    than half the SMs within two waves (10240 and 28672 rows).
//  * 128-row stream-K tiles otherwise: split-K when the tiles cover at most
//    half the SMs (heuristic_splits), CUTLASS's stream-K heuristic beyond two
//    waves (57344 rows, where it beats data-parallel by ~2 %).
// Large M is MMA bound: 256-token tiles amortise each weight tile's int4 ->
// fp8 conversion over the most tokens, and a 2x1 cluster multicasts the
// activation tile to both CTAs once there are many waves. In between, 128x256
// tiles unless they leave the last wave mostly empty, where the 64x256
// ping-pong tiles balance better.
namespace {
double wave_efficiency(int64_t tiles, int sm_count) {
  const int64_t waves = (tiles + sm_count - 1) / sm_count;
  return waves ? double(tiles) / double(waves * sm_count) : 1.0;
}
}  // namespace

int heuristic_schedule(int64_t M, int64_t N, int64_t K, int sm_count) {
  if (sm_count <= 0) sm_count = 132;
  if (M <= 64) {
    const int64_t t = M <= 16 ? 16 : M <= 32 ? 32 : 64;
    const std::string tile = "x" + std::to_string(t) + "_1x1x1";
    // H200: 256-row data-parallel tiles (vLLM's) once they alone fill 3/4 of
    // a wave: 5-20% over the 128-row ones at 28672 and 57344 rows.
    if (N % 256 == 0 && 4 * (N / 256) >= 3 * sm_count) return by_name(("256" + tile).c_str());
    if (N / 64 <= sm_count && K <= 8192) return by_name(("64" + tile).c_str());
    const int64_t tiles = N / 128;
    if (2 * tiles > sm_count && tiles <= 2 * sm_count) return by_name(("128" + tile + "_dp").c_str());
    return by_name(("128" + tile).c_str());
  }
  if (M <= 128) {
    // Two 64-token tiles read each weight tile twice: only when the int4
    // weight fits a third of the 50 MB L2 (8B 4096- and 6144-row layers).
    if (N * K / 2 <= (16 << 20)) {
      if (2 * (N / 64) <= sm_count) return by_name("64x64_1x1x1");
      if (2 * (N / 128) <= sm_count) return by_name("128x64_1x1x1_dp");
    }
    return (N >= 16384 && N % 256 == 0) ? by_name("256x128_2x1x1") : by_name("128x128_1x1x1");
  }
  if (M <= 256) {
    // H200 (M = 256 measured): few output tiles over a long K -> stream-K
    // 128x128 (4096 x 14336: 25% over 64x256); 64-row ping-pong tiles when
    // they fit one wave; else 128x256 (10240 rows: 29% over 64x256, whose
    // 160 tiles take two waves).
    if (K > 8192 && 2 * (N / 128) * ((M + 127) / 128) < sm_count) return by_name("128x128_1x1x1");
    if ((N / 64) <= sm_count) return by_name("64x256_2x1x1");
    return by_name("128x256_1x1x1");
  }
  if (M <= 512) {
    const int64_t tiles = (N / 128) * ((M + 255) / 256);
    return wave_efficiency(tiles, sm_count) >= 0.7 ? by_name("128x256_1x1x1")
                                                   : by_name("64x256_2x1x1");
  }
  if (M < 4096 || N % 256 != 0) return by_name("128x256_1x1x1");
  return by_name("128x256_2x1x1");
}

// Measured (decomposition sweep): when the output tiles cover at most half
// the SMs, a fixed split-K of floor(SMs / tiles) (at most 4, keeping >= 8
// k-tiles per split) beats CUTLASS's stream-K heuristic by up to 17 %
// (8192x8192, M=16: 22.6 vs 27.3 us); with more tiles the heuristic (which
// then picks data-parallel) is best.
int heuristic_splits(int schedule, int64_t M, int64_t N, int64_t K, int sm_count) {
  const auto& s = schedules()[schedule];
  if (s.kind != 1) return 1;
  if (sm_count <= 0) sm_count = 132;
  const int64_t tiles = ((N + s.tile_n - 1) / s.tile_n) * ((M + s.tile_m - 1) / s.tile_m);
  if (2 * tiles > sm_count) return 1;
  int64_t splits = std::min<int64_t>(4, sm_count / tiles);
  while (splits > 1 && (K / 128) / splits < 8) --splits;
  return static_cast<int>(splits);
}

}  // namespace lowbit::w4a8

// ------------------------------------------------ grouped (MoE) GEMM
namespace lowbit::w4a8 {

const std::vector<MoeSchedule>& moe_schedules() {
  static const std::vector<MoeSchedule> list = {
#define X(NAME, TN, TM, CN) {#NAME, TN, TM, CN},
#include "moe_schedules.def"
#undef X
  };
  return list;
}

namespace {
// vLLM v0.34.0's eleven names (docs/SPEC-MOE.md §5.6) -> the compiled kernel
// with the nearest token tile. Its 256-row tiles become 128-row ones (whole
// tiles for every N % 128 == 0; the cost of a 256-row tile is one more
// weight tile per CTA, not different arithmetic); clusters are dropped
// except on the prefill tile. Results differ between kernels only by the
// fp32 accumulation order within a tile.
constexpr Alias kMoeAliases[] = {
    {"Kernel_128x16_1x1x1_Coop", "Kernel_128x16_1x1x1_Coop"},
    {"Kernel_128x16_2x1x1_Coop", "Kernel_128x16_1x1x1_Coop"},
    {"Kernel_256x16_1x1x1_Coop", "Kernel_128x16_1x1x1_Coop"},
    {"Kernel_256x16_2x1x1_Coop", "Kernel_128x16_1x1x1_Coop"},
    {"Kernel_256x32_1x1x1_Coop", "Kernel_128x64_1x1x1_Coop"},
    {"Kernel_256x32_2x1x1_Coop", "Kernel_128x64_1x1x1_Coop"},
    {"Kernel_256x64_1x1x1_Coop", "Kernel_128x64_1x1x1_Coop"},
    {"Kernel_256x64_2x1x1_Coop", "Kernel_128x64_1x1x1_Coop"},
    {"Kernel_256x128_1x1x1_Coop", "Kernel_128x256_2x1x1_Coop"},
    {"Kernel_256x128_2x1x1_Coop", "Kernel_128x256_2x1x1_Coop"},
    {"Kernel_128x256_2x1x1_Coop", "Kernel_128x256_2x1x1_Coop"},
};

}  // namespace

std::vector<std::string> moe_schedule_names() {
  std::vector<std::string> names;
  for (const auto& a : kMoeAliases) names.emplace_back(a.name);
  for (const auto& s : moe_schedules()) {
    if (std::find(names.begin(), names.end(), s.name) == names.end()) names.emplace_back(s.name);
  }
  return names;
}

int moe_schedule_index(const char* op, const std::string& name) {
  const int index = find_kernel(moe_schedules(), kMoeAliases, name);
  if (index < 0) fail_unknown(op, name, moe_schedule_names());
  return index;
}

// vLLM v0.34.0's heuristic on the mean rows per expert (<= 16, <= 32,
// <= 64, <= 128, more) read through the name mapping above: the token tile
// that covers a typical expert with the least padding. Not yet re-tuned on
// the H200 (perf/w4a8-mm/NOTES.md).
int moe_heuristic_schedule(int64_t M, int64_t E) {
  const int64_t per_expert = E > 0 ? M / E : M;
  const char* name = per_expert <= 16   ? "Kernel_128x16_1x1x1_Coop"
                     : per_expert <= 64 ? "Kernel_128x64_1x1x1_Coop"
                                        : "Kernel_128x256_2x1x1_Coop";
  return moe_schedule_index("heuristic", name);
}

}  // namespace lowbit::w4a8
