// The reordered int4 weight layout's atom (docs/SPEC.md §1.5), shared by the
// dense and the grouped SM90 GEMMs.
#pragma once

#include <cute/tensor.hpp>

namespace lowbit::w4a8::sm90 {

// SPEC §1.5 reorder atom: 16 (n) x 32 (k) int4 values,
// offset = 64(n%8) + 4(n/8) + (k%4) + 16((k%16)/4) + 8(k/16). Written in the
// same hierarchical form as CUTLASS 4.2's
// compute_memory_reordering_atom<float_e4m3_t>() (the mainloop derives its
// shared-memory layout from this representation, and vLLM's grouped
// descriptor rows are the dynamic part of tile_to_shape of it);
// perf/w4a8-mm/layout_check asserts the two types are identical and the H100
// test compares the bytes.
using ReorderAtom =
    cute::Layout<cute::Shape<cute::Shape<cute::Shape<cute::_8, cute::_2>, cute::_1>,
                             cute::Shape<cute::Shape<cute::_4, cute::_4, cute::_2>, cute::_1>>,
                 cute::Stride<cute::Stride<cute::Stride<cute::_64, cute::_4>, cute::_0>,
                              cute::Stride<cute::Stride<cute::_1, cute::_16, cute::_8>, cute::_0>>>;

}  // namespace lowbit::w4a8::sm90
