// nvfp4-mm internal declarations: one validated problem, one kernel per target.
#pragma once

#include <lowbit/torch_utils.h>

namespace nvfp4_mm {

using lowbit::Tensor;

// A validated D = alpha * A·Bᵀ problem (SPEC §1.4, §2.2). M rows of A and D,
// N rows of B (= columns of D), K logical fp4 elements per row.
struct Problem {
  Tensor out, a, b, sa, sb, alpha;
  int64_t M, N, K;
  bool batch_invariant;  // every row's reduction order independent of M
  int64_t config;        // -1 = heuristic; else a kernel config (bench/tests)
  int64_t splits;        // -1 = heuristic; else split-K count (SM90)
};

// Each target: the kernel entry and its number of selectable configs (the
// private _ex op picks one by index; -1 = the built-in heuristic).
void mm_cpu(const Problem& p);
#if LOWBIT_BUILT_SM90
void mm_sm90(const Problem& p);
int64_t sm90_num_configs();
#endif
#if LOWBIT_BUILT_SM100
void mm_sm100(const Problem& p);
int64_t sm100_num_configs();
#endif
#if LOWBIT_BUILT_SM120
void mm_sm120(const Problem& p);
int64_t sm120_num_configs();
#endif

}  // namespace nvfp4_mm
