"""The scale-factor layout the Blackwell (SM100 / SM120) block-scaled GEMMs
read through (include/lowbit/fp4_gemm/blackwell_sf_layout.h, CUTLASS's
Sm1xxBlockScaledConfig), checked on the CPU against the 128x4 swizzle of
docs/SPEC.md §1.3 that lowbit's quant kernels write. No Blackwell GPU exists
here, so this is the check that those kernels (dense NVFP4, grouped NVFP4 and
MXFP4) read each element's own scale byte and nothing outside the operand's
padded scale rows:
- every (row, k) maps to the swizzled offset of (row, k // block) in a buffer
  of round_up(K / block, 4) columns;
- the layout's cosize is at most round_up(rows, 128) x that many columns, the
  size of one operand's (or one expert's) padded scale region, which the
  grouped kernels start at sf_offsets[e] x Kp (activations) and e x Np x Kp
  (weights): docs/SPEC-MOE.md §5.1.3-5.1.4."""

from __future__ import annotations

import pytest
import torch

from lowbit.testing.checks import raises_arg
from lowbit.testing.nvfp4 import round_up, swizzle_scales, swizzled_offset


def swizzled_offsets(rows: int, k: int, block: int) -> torch.Tensor:
    kp = round_up(k // block, 4)
    r = torch.arange(rows).unsqueeze(1)
    c = (torch.arange(k) // block).unsqueeze(0)
    # lowbit.testing's formula, evaluated elementwise on tensors
    return swizzled_offset(r, c, kp)


# rows: below, at and across the 128-row atom; k: 1-4 scale columns (padding
# of the 4-column atom), across several atoms, and odd numbers of blocks.
ROWS = [1, 7, 32, 100, 128, 129, 255, 300]
KS = [32, 64, 96, 128, 160, 352, 544, 1024]


@pytest.mark.parametrize("block", [16, 32])
@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("k", KS)
def test_layout_is_the_swizzle(ext, block, rows, k):
    offsets, cosize = ext.blackwell_sf_layout(rows, k, block)
    assert offsets.shape == (rows, k)
    torch.testing.assert_close(offsets, swizzled_offsets(rows, k, block), rtol=0, atol=0)
    assert cosize <= round_up(rows, 128) * round_up(k // block, 4)


def test_offset_formula_is_the_quant_oracles_swizzle():
    """swizzled_offset (the oracle above) puts each byte where
    lowbit.testing's swizzle_scales (the quant kernels' oracle) puts it."""
    rows, cols = 300, 22
    lin = torch.randint(0, 256, (rows, cols), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    swz = swizzle_scales(lin).reshape(-1)
    kp = round_up(cols, 4)
    at = swizzled_offset(torch.arange(rows).unsqueeze(1), torch.arange(cols).unsqueeze(0), kp)
    assert torch.equal(swz[at.reshape(-1)].reshape(rows, cols), lin)


def test_layout_detects_a_transposed_atom(ext):
    """The comparison can fail: the swizzle with rows and columns of the 4x4
    inner block swapped differs from the layout."""
    offsets, _ = ext.blackwell_sf_layout(128, 256, 16)
    r = torch.arange(128).unsqueeze(1)
    c = (torch.arange(256) // 16).unsqueeze(0)
    swapped = (c // 4) * 512 + (r % 32) * 16 + (c % 4) * 4 + (r // 32) % 4
    assert not torch.equal(offsets, swapped)


def test_bad_arguments(ext):
    with raises_arg("block", "16 or 32", "8"):
        ext.blackwell_sf_layout(4, 64, 8)
    with raises_arg("k", "a positive multiple of block", "40"):
        ext.blackwell_sf_layout(4, 40, 16)
    with raises_arg("rows", "> 0", "0"):
        ext.blackwell_sf_layout(0, 64, 16)
