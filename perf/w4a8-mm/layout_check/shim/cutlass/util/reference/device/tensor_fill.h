// Stand-in for CUTLASS's reference tensor_fill.h, which mixed_dtype_utils.hpp
// includes but does not use; the real one needs curand_kernel.h, absent from a
// bare nvcc install. Pulls in what the real header's includes
// provide.
#pragma once
#include "cutlass/cutlass.h"
#include "cutlass/array.h"
#include "cutlass/numeric_types.h"
#include "cutlass/tensor_view.h"
#include "cutlass/util/reference/device/tensor_foreach.h"
#include "cutlass/util/distribution.h"
