// Schedule index -> the entry points of its translation unit. Light TU (no
// CUTLASS kernels): the heavy ones are gemm_<schedule>.cu.
#include "w4a8.h"

#include <lowbit/torch_utils.h>

namespace lowbit::w4a8::sm90 {
#define X(NAME, TN, TM, CN, CM, KIND)                   \
  size_t workspace_##NAME(const MmProblem& p);      \
  void run_##NAME(const MmProblem& p, void* ws);
#include "schedules.def"
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
}  // namespace

size_t mm_sm90_workspace(int schedule, const MmProblem& p) {
  LOWBIT_CHECK(schedule >= 0 && schedule < kCount, "cutlass_w4a8_mm: schedule index ",
               schedule, " out of range");
  return kEntries[schedule].workspace(p);
}

void mm_sm90_run(int schedule, const MmProblem& p, void* workspace) {
  LOWBIT_CHECK(schedule >= 0 && schedule < kCount, "cutlass_w4a8_mm: schedule index ",
               schedule, " out of range");
  kEntries[schedule].run(p, workspace);
}
}  // namespace lowbit::w4a8
