"""Cross-check of the SPEC §1.5 reorder against CUTLASS 4.2's own utility
(compute_memory_reordering_atom<float_e4m3_t> + tile_to_shape +
reorder_tensor), on an SM90 GPU through the extension beside this file:

    python perf/w4a8-mm/layout_check/build.py /tmp/layout_check
    python -m pytest perf/w4a8-mm/layout_check/check_layout.py --cutlass-ref /tmp/layout_check/install/_w4a8_cutlass_ref.so
"""

import pytest
import torch

import lowbit.w4a8_mm as w4
from lowbit.testing import w4a8 as ref

needs_sm90 = pytest.mark.skipif(
    not (torch.cuda.is_available() and torch.cuda.get_device_capability()[0] == 9),
    reason="needs an SM90 (Hopper) GPU")


@pytest.fixture(scope="module")
def cutlass_ops(request):
    lib = request.config.getoption("--cutlass-ref")
    if not lib:
        pytest.skip("layout check extension not given (--cutlass-ref PATH, see build.py)")
    torch.ops.load_library(lib)
    return torch.ops.lowbit_w4a8_mm_test


@needs_sm90
def test_atom_type_identical(cutlass_ops):
    assert cutlass_ops.atom_matches_cutlass()


@needs_sm90
@pytest.mark.parametrize("N,K", [(16, 256), (128, 256), (64, 512), (48, 256), (4096, 4096),
                                 (8192, 1024), (4096, 14336)])
def test_reorder_matches_cutlass(cutlass_ops, N, K):
    # CUTLASS's copy kernel assumes K % 256 == 0 (SPEC §1.5).
    q = torch.randint(-8, 8, (N, K), dtype=torch.int8)
    b = ref.pack_int4(q)
    # Encoding is per nibble, so reorder(encode(b)) == encode(reorder(b)).
    enc = ref.pack_int4(torch.where(q > 0, 8 - q, q).to(torch.int8))
    theirs = cutlass_ops.cutlass_reorder(enc.cuda()).cpu()
    ours = w4.cutlass_encode_and_reorder_int4b(b.cuda()).cpu()
    assert theirs.shape == ours.shape
    assert torch.equal(ours, theirs)
    assert torch.equal(ours, ref.encode_and_reorder(b))
