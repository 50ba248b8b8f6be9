// Schedule 128x64_1x1x1_dp: the 128x64 tile with the cooperative kernel and the
// persistent data-parallel scheduler instead of stream-K: no workspace, so it
// can be PDL-launched (for problems with enough output tiles to fill the SMs).
#include "sm90/w4a8_gemm.cuh"

LOWBIT_W4A8_DEFINE_SCHEDULE(128x64_1x1x1_dp, 128, 64, 1, 1, 0)
