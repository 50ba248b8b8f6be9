// Schedule names (always built, so a CPU-only build validates names the same
// way) and the heuristic used when no schedule is given.
#include "w4a8.h"

#include <lowbit/torch_utils.h>

namespace lowbit::w4a8 {

const std::vector<Schedule>& schedules() {
  static const std::vector<Schedule> list = {
#define X(NAME, TN, TM, CN, CM, KIND) {#NAME, TN, TM, CN, CM, KIND},
#include "schedules.def"
#undef X
  };
  return list;
}

int schedule_index(const char* op, const std::string& name) {
  const auto& list = schedules();
  std::string valid;
  for (size_t i = 0; i < list.size(); ++i) {
    if (name == list[i].name) return static_cast<int>(i);
    valid += (i ? ", " : "");
    valid += list[i].name;
  }
  fail(str(op, ": argument 'maybe_schedule': expected one of [", valid,
           "] or None (heuristic), got '", name, "'"));
}

namespace {
int by_name(const char* name) { return schedule_index("heuristic", name); }
}  // namespace

// Tuned on an H100 SXM from the sweep in docs/perf-w4a8-mm.md (every
// schedule on every SPEC §4 Llama-3 8B/70B shape, M in {1..8192}).
// Small M is weight-streaming bound: the narrowest token tile that covers M
// wastes the least MMA work, and the stream-K scheduler spreads the K loop of
// the few output tiles over all SMs. Large M is MMA bound: 256-token tiles
// amortise each weight tile's int4 -> fp8 conversion over the most tokens, and
// a 2x1 cluster multicasts the activation tile to both CTAs once there are
// many waves. In between, the 256-token tile wins once it still gives most
// SMs a tile (>= 96 tiles); otherwise the stream-K 128x128 tile.
int heuristic_schedule(int64_t M, int64_t N, int64_t K, int sm_count) {
  (void)K;
  (void)sm_count;
  if (M <= 16) return by_name("128x16_1x1x1");
  if (M <= 32) return by_name("128x32_1x1x1");
  if (M <= 64) return by_name("128x64_1x1x1");
  if (M <= 128) {
    return (N >= 16384 && N % 256 == 0) ? by_name("256x128_2x1x1") : by_name("128x128_1x1x1");
  }
  if (M <= 512) {
    const int64_t tiles = (N / 128) * ((M + 255) / 256);
    return tiles >= 96 ? by_name("128x256_1x1x1") : by_name("128x128_1x1x1");
  }
  if (M < 4096 || N % 256 != 0) return by_name("128x256_1x1x1");
  return by_name("128x256_2x1x1");
}

}  // namespace lowbit::w4a8
