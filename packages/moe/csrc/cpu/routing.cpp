// CPU kernels of the routing helpers (docs/SPEC-MOE.md §5.9.4): a counting
// sort of the flat routes by expert, stable, O(m * topk + E).
#include <cstring>
#include <vector>

#include "../moe.h"
#include "../routing_math.h"

namespace lowbit::moe {
namespace {

template <typename Id>
std::vector<int32_t> bins_of(const MoeDataProblem& p) {
  const Id* ids = static_cast<const Id*>(p.ids);
  std::vector<int32_t> bins(p.routes);
  for (int64_t i = 0; i < p.routes; ++i) bins[i] = route_bin(ids[i], p.num_experts);
  return bins;
}

// Offsets, scale offsets and problem sizes from the per-bin counts; returns
// the first position of every bin (expert_offsets, then the orphan bin).
std::vector<int32_t> write_expert_tables(const MoeDataProblem& p,
                                         const std::vector<int32_t>& counts) {
  const int64_t E = p.num_experts;
  std::vector<int32_t> start(E + 1);
  int32_t off = 0, sf_off = 0;
  for (int64_t e = 0; e <= E; ++e) {
    start[e] = off;
    p.expert_offsets[e] = off;
    if (p.blockscale_offsets) p.blockscale_offsets[e] = sf_off;
    if (e == E) break;
    write_problem_sizes(p.problem_sizes1, p.problem_sizes2, e, counts[e], p.n1, p.n, p.k, p.swap);
    off += counts[e];
    sf_off += lowbit::nvfp4::swizzled_rows(counts[e]);
  }
  return start;
}

}  // namespace

void moe_data_cpu(const MoeDataProblem& p) {
  const std::vector<int32_t> bins = p.ids64 ? bins_of<int64_t>(p) : bins_of<int32_t>(p);
  const int64_t E = p.num_experts;
  std::vector<int32_t> counts(E + 1, 0);
  for (int32_t b : bins) ++counts[b];
  std::vector<int32_t> next = write_expert_tables(p, counts);
  for (int64_t i = 0; i < p.routes; ++i) {
    const int32_t b = bins[i];
    const int32_t pos = next[b]++;
    const bool valid = b < E;
    p.input_permutation[pos] = valid ? static_cast<int32_t>(i / p.topk) : -1;
    p.output_permutation[i] = valid ? pos : static_cast<int32_t>(p.routes);
    if (p.sorted_expert_ids) p.sorted_expert_ids[pos] = valid ? b : -1;
  }
}

void problem_sizes_cpu(const ProblemSizesProblem& p) {
  for (int64_t e = 0; e < p.num_experts; ++e) {
    const int64_t lo = p.offsets64 ? static_cast<const int64_t*>(p.offsets)[e]
                                   : static_cast<const int32_t*>(p.offsets)[e];
    const int64_t hi = p.offsets64 ? static_cast<const int64_t*>(p.offsets)[e + 1]
                                   : static_cast<const int32_t*>(p.offsets)[e + 1];
    write_problem_sizes(p.problem_sizes1, p.problem_sizes2, e, static_cast<int32_t>(hi - lo),
                        2 * p.n, p.n, p.k, p.swap_ab);
  }
}

void shuffle_rows_cpu(const ShuffleProblem& p) {
  for (int64_t d = 0; d < p.dst_rows; ++d) {
    const int64_t s = p.map64 ? static_cast<const int64_t*>(p.map)[d]
                              : static_cast<const int32_t*>(p.map)[d];
    uint8_t* dst = p.out + d * p.row_bytes;
    if (s >= 0 && s < p.src_rows) {
      std::memcpy(dst, p.in + s * p.row_bytes, p.row_bytes);
    } else {
      std::memset(dst, 0, p.row_bytes);
    }
  }
}

}  // namespace lowbit::moe
