// Prints the dense W4A8 heuristic's schedule and split count for the Llama-3 shapes of the
// schedule sweep, with no GPU (-O1 drops the unused torch error path, which would
// need libtorch to link): compare a re-tune's choices with the sweep's every-schedule
// times (perf/logs/s6/w4a8_schedule_sweep_*.json) before a device call.
//
//   g++ -std=c++17 -O1 -DTORCH_TARGET_VERSION=0x020A000000000000 -Ipackages/w4a8-mm/csrc \
//     -Ipackages/cutlass-ext/src/lowbit/cutlass_ext/include -isystem $(python -c \
//     'import torch, os; print(os.path.dirname(torch.__file__))')/include \
//     perf/w4a8-mm/heuristic_choices.cpp packages/w4a8-mm/csrc/schedules.cpp -o /tmp/heuristic_choices
#include <cstdio>

#include "w4a8_mm.h"

int main() {
  using namespace lowbit::w4a8;
  const int shapes[][2] = {{10240, 8192}, {8192, 8192}, {57344, 8192}, {8192, 28672},
                           {6144, 4096},  {4096, 4096}, {28672, 4096}, {4096, 14336}};  // (N, K)
  const int tokens[] = {1, 16, 32, 64, 128, 256, 512, 2048, 8192};
  for (const auto& s : shapes) {
    for (const int M : tokens) {
      const int i = heuristic_schedule(M, s[0], s[1], 132);
      std::printf("N=%d K=%d M=%d -> %s splits=%d\n", s[0], s[1], M, schedules()[i].name,
                  heuristic_splits(i, M, s[0], s[1], 132));
    }
  }
  return 0;
}
