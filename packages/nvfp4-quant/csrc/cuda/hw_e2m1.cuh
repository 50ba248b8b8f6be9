// The Blackwell e2m1 packing (HardwareE2M1) now lives with the software one in
// lowbit/fp4_quant/e2m1_pack.cuh (shared with lowbit-mxfp4), which
// quant_kernels.cuh includes; this header only keeps the sm100/ and sm120/
// translation units' include working.
#pragma once
#include <lowbit/fp4_quant/e2m1_pack.cuh>
