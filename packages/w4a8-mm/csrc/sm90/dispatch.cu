// Schedule index -> the entry points of its translation unit, for the dense
// and the grouped GEMM. Light TU (no CUTLASS kernels): the heavy ones are
// gemm_<schedule>.cu and moe_<schedule>.cu.
#include "w4a8_mm.h"

#include <lowbit/cuda_utils.h>
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
// A schedule's entry points, for either problem type.
template <class Problem>
struct Entry {
  size_t (*workspace)(const Problem&);
  void (*run)(const Problem&, void*);
};

const Entry<MmProblem> kEntries[] = {
#define X(NAME, TN, TM, CN, CM, KIND) {&sm90::workspace_##NAME, &sm90::run_##NAME},
#include "schedules.def"
#undef X
};
const Entry<MoeMmProblem> kMoeEntries[] = {
#define X(NAME, TN, TM, CN) {&sm90::moe_workspace_##NAME, &sm90::moe_run_##NAME},
#include "moe_schedules.def"
#undef X
};

template <class Problem, size_t N>
const Entry<Problem>& entry(const Entry<Problem> (&table)[N], const Problem& p, const char* op) {
  LOWBIT_CHECK(p.schedule >= 0 && p.schedule < static_cast<int>(N), op, ": schedule index ", p.schedule,
               " out of range");
  return table[p.schedule];
}
}  // namespace

// Picks the schedule and split-K factor for this device, allocates the
// stream-K workspace through torch, launches. PDL lets the kernel start while
// the previous one in the stream drains (it waits before its first global
// access); only without workspace, which a memset zeroes between the two.
void w4a8_mm_sm90(MmProblem& p, const Tensor& A) {
  p.device = A.get_device_index();
  p.sm_count = device_sm_count(p.device);
  p.stream = current_stream(A);
  if (p.schedule < 0) p.schedule = heuristic_schedule(p.M, p.N, p.K, p.sm_count);
  p.splits = heuristic_splits(p.schedule, p.M, p.N, p.K, p.sm_count);
  const auto& e = entry(kEntries, p, "cutlass_w4a8_mm");
  const size_t ws_bytes = e.workspace(p);
  Tensor ws;
  if (ws_bytes > 0) ws = empty_on(A, {static_cast<int64_t>(ws_bytes)}, ScalarType::Byte);
  p.pdl = ws_bytes == 0;
  e.run(p, ws_bytes > 0 ? ws.data_ptr() : nullptr);
}

// The schedule for this call, then one torch workspace (the per-expert
// argument arrays + CUTLASS's) and the launch; nothing is read back from the
// device.
void w4a8_moe_mm_sm90(MoeMmProblem& p, const Tensor& a) {
  p.device = a.get_device_index();
  p.sm_count = device_sm_count(p.device);
  p.stream = current_stream(a);
  if (p.schedule < 0) p.schedule = moe_heuristic_schedule(p.M, p.E);
  const auto& e = entry(kMoeEntries, p, "cutlass_w4a8_moe_mm");
  Tensor ws = empty_on(a, {static_cast<int64_t>(e.workspace(p))}, ScalarType::Byte);
  e.run(p, ws.data_ptr());
}
}  // namespace lowbit::w4a8
