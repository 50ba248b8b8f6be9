// Schedule names (always built, so a CPU-only build validates names the same
// way) and the heuristic used when no schedule is given.
#include "w4a8.h"

#include <lowbit/torch_utils.h>

namespace lowbit::w4a8 {

const std::vector<Schedule>& schedules() {
  static const std::vector<Schedule> list = {
#define X(NAME, TN, TM, CN, CM, SK) {#NAME, TN, TM, CN, CM, SK != 0},
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

// Tuned from the H100 sweep in docs/perf-w4a8-mm.md (every schedule on every
// SPEC §4 Llama-3 8B/70B shape and M). Small M is weight-streaming bound:
// the narrowest token tile wastes the least MMA work and the stream-K
// scheduler spreads the K loop over all SMs. Large M is MMA bound: wide token
// tiles amortise the int4->fp8 conversion of each weight tile over more tokens.
int heuristic_schedule(int64_t M, int64_t N, int64_t K, int sm_count) {
  (void)K;
  (void)sm_count;
  if (M <= 16) return by_name("128x16_1x1x1");
  if (M <= 32) return by_name("128x32_1x1x1");
  if (M <= 64) return by_name("128x64_1x1x1");
  if (M <= 128) return by_name("128x128_1x1x1");
  if (M <= 512) return by_name("128x128_2x1x1");
  return N % 256 == 0 ? by_name("128x256_2x1x1") : by_name("128x256_1x1x1");
}

}  // namespace lowbit::w4a8
