"""The e2m1 -> 16-bit float bit placement of the SM90 FP4 GEMMs
(include/lowbit/fp4_gemm/e2m1_bits.h), checked against e2m1 values decoded by
lowbit.testing, for every code in every nibble position: pair I of a word is
the half2 (nibble I, nibble I + 4) = e2m1 * 2^-14 in fp16, e2m1 * 2^-126 in
bf16. The CPU run checks the host branch of the same source the kernels
compile; the CUDA run checks the device branch (byte_perm is __byte_perm)."""

from __future__ import annotations

import pytest
import torch

from lowbit.testing.checks import raises_arg
from lowbit.testing.nvfp4 import decode_e2m1

# variant of the test op -> (16-bit dtype, power of two the placement scales by)
VARIANTS = {0: (torch.float16, -14), 1: (torch.float16, -14), 2: (torch.bfloat16, -126)}

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def words_under_test() -> torch.Tensor:
    """Every byte value in every byte position (so every nibble code in every
    nibble position, next to every neighbour in its byte), then random words."""
    every = torch.arange(256, dtype=torch.int64) * 0x01010101
    shifted = torch.stack([torch.arange(256, dtype=torch.int64) << (8 * b) for b in range(4)]).flatten()
    rnd = torch.randint(0, 1 << 32, (1 << 16,), generator=torch.Generator().manual_seed(7), dtype=torch.int64)
    return as_int32(torch.cat([every, shifted, rnd]))


def as_int32(w: torch.Tensor) -> torch.Tensor:
    """uint32 values held in int64 -> the int32 tensor with those bits."""
    return torch.where(w >= 1 << 31, w - (1 << 32), w).to(torch.int32)


def expected_pairs(words: torch.Tensor, dtype: torch.dtype, exp2: int) -> torch.Tensor:
    w = words.to(torch.int64) & 0xFFFFFFFF
    nib = torch.stack([(w >> (4 * i)) & 0xF for i in range(8)], dim=1)  # [n, 8]
    vals = decode_e2m1(nib.to(torch.uint8)).to(torch.float64) * 2.0**exp2
    bits = vals.to(dtype).view(torch.int16).to(torch.int64) & 0xFFFF  # exact: <= 2 significant bits
    return as_int32(bits[:, 0:4] | (bits[:, 4:8] << 16))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_pairs_are_the_e2m1_values(ext, device, variant):
    words = words_under_test()
    got = ext.e2m1_pairs(words.to(device), variant).cpu()
    want = expected_pairs(words, *VARIANTS[variant])
    bad = (got != want).any(dim=1).nonzero().flatten()
    assert bad.numel() == 0, (
        f"variant {variant}: {bad.numel()} words wrong, first {int(words[bad[0]]) & 0xFFFFFFFF:#010x}: "
        f"got {[hex(int(v) & 0xFFFFFFFF) for v in got[bad[0]]]}, "
        f"want {[hex(int(v) & 0xFFFFFFFF) for v in want[bad[0]]]}")


def test_negative_zero_keeps_its_sign(ext):
    # 0b1000 is -0: only the sign bit of its half is set.
    got = ext.e2m1_pairs(as_int32(torch.tensor([0x80080008])), 0)
    assert (int(got[0, 0]) & 0xFFFF) == 0x8000 and (int(got[0, 3]) & 0xFFFF0000) == 0x80000000


def test_bad_variant_is_named(ext):
    with raises_arg("variant", "0, 1 or 2", "3"):
        ext.e2m1_pairs(torch.zeros(4, dtype=torch.int32), 3)
