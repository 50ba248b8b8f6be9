// Schedule index -> the entry points of its translation unit, for the dense
// and the grouped GEMM. Light TU (no CUTLASS kernels): the heavy ones are
// gemm_<schedule>.cu and moe_<schedule>.cu.
#include "w4a8_mm.h"

#include <lowbit/torch_utils.h>

namespace lowbit::w4a8::sm90 {
#define X(NAME, TN, TM, CN, CM, KIND)                   \
  size_t workspace_##NAME(const MmProblem& p);      \
  void run_##NAME(const MmProblem& p, void* ws);
#include "schedules.def"
#undef X
#define X(NAME, TN, TM, CN)                              \
  size_t moe_workspace_##NAME(const MoeMmProblem& p); \
  void moe_run_##NAME(const MoeMmProblem& p, void* ws);
#include "moe_schedules.def"
#undef X
}  // namespace lowbit::w4a8::sm90

namespace lowbit::w4a8 {
namespace {
struct Entry {
  size_t (*workspace)(const MmProblem&);
  void (*run)(const MmProblem&, void*);
};
const Entry kEntries[] = {
#define X(NAME, TN, TM, CN, CM, KIND) {&sm90::workspace_##NAME, &sm90::run_##NAME},
#include "schedules.def"
#undef X
};
constexpr int kCount = sizeof(kEntries) / sizeof(kEntries[0]);

const Entry& entry(const MmProblem& p) {
  LOWBIT_CHECK(p.schedule >= 0 && p.schedule < kCount, "cutlass_w4a8_mm: schedule index ",
               p.schedule, " out of range");
  return kEntries[p.schedule];
}
}  // namespace

size_t w4a8_mm_sm90_workspace(const MmProblem& p) { return entry(p).workspace(p); }

void w4a8_mm_sm90(const MmProblem& p, void* workspace) { entry(p).run(p, workspace); }

namespace {
struct MoeEntry {
  size_t (*workspace)(const MoeMmProblem&);
  void (*run)(const MoeMmProblem&, void*);
};
const MoeEntry kMoeEntries[] = {
#define X(NAME, TN, TM, CN) {&sm90::moe_workspace_##NAME, &sm90::moe_run_##NAME},
#include "moe_schedules.def"
#undef X
};
constexpr int kMoeCount = sizeof(kMoeEntries) / sizeof(kMoeEntries[0]);

const MoeEntry& moe_entry(const MoeMmProblem& p) {
  LOWBIT_CHECK(p.schedule >= 0 && p.schedule < kMoeCount, "cutlass_w4a8_moe_mm: schedule index ",
               p.schedule, " out of range");
  return kMoeEntries[p.schedule];
}
}  // namespace

size_t w4a8_moe_mm_sm90_workspace(const MoeMmProblem& p) { return moe_entry(p).workspace(p); }

void w4a8_moe_mm_sm90(const MoeMmProblem& p, void* workspace) { moe_entry(p).run(p, workspace); }
}  // namespace lowbit::w4a8
