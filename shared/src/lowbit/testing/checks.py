"""Test helpers: poisoned outputs, error assertions, devices to test on."""

from __future__ import annotations

import re

import pytest
import torch

# Byte pattern written into outputs before a kernel runs: any element the
# kernel forgets to write stays 0xA5, which is never what a correct kernel writes
# everywhere.
POISON_BYTE = 0xA5


def poison_(t: torch.Tensor) -> torch.Tensor:
    """Fill the bytes of contiguous `t` with POISON_BYTE (any dtype); returns `t`."""
    if t.numel():
        t.view(-1).view(torch.uint8).fill_(POISON_BYTE)
    return t


def poisoned_empty(*shape, dtype, device) -> torch.Tensor:
    return poison_(torch.empty(*shape, dtype=dtype, device=device))


def devices() -> list[str]:
    """'cpu' always, 'cuda' when a GPU is visible (tests parametrize over these)."""
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def cuda_sm() -> int | None:
    if not torch.cuda.is_available():
        return None
    major, minor = torch.cuda.get_device_capability()
    return major * 10 + minor


# Skip markers: a CUDA GPU; an SM90 (Hopper) GPU.
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
needs_sm90 = pytest.mark.skipif(cuda_sm() is None or cuda_sm() // 10 != 9, reason="needs an SM90 (Hopper) GPU")


def raises_arg(arg: str, *fragments: str):
    """pytest.raises(RuntimeError) whose message names argument `arg` and
    contains every fragment (regex-escaped), e.g. raises_arg("input", "float16")."""
    pattern = "".join(f"(?=.*{re.escape(f)})" for f in (f"'{arg}'", *fragments))
    return pytest.raises(RuntimeError, match=re.compile(pattern, re.S))


def with_(**changes):
    """A mutation for bad-input tables: args dict -> the same dict with each
    named entry replaced (a callable is called with the args to make the new
    value)."""
    def mutate(args: dict) -> dict:
        args.update({k: (v(args) if callable(v) else v) for k, v in changes.items()})
        return args
    return mutate


def check_bad_input(call, good, case) -> None:
    """One row of a bad-input table: ``case = (mutate, (arg, *fragments))``
    (mutate: e.g. :func:`with_`). ``call(mutate(good()))`` must raise
    :func:`raises_arg` ``(arg, *fragments)``."""
    mutate, (arg, *fragments) = case
    with raises_arg(arg, *fragments):
        call(mutate(good()))
