"""Expert row counts and where each expert's rows and scale rows go, shared
by the grouped ops' references, tests and benchmarks (docs/SPEC-MOE.md
§5.1.3 canonical regions, §5.11 routing)."""

from __future__ import annotations

from typing import Callable

import torch

from .nvfp4 import round_up


def canonical_offsets(counts, gap_rows: int = 0) -> tuple[list[int], list[int], int]:
    """(expert_offsets, sf_offsets, scale rows used) of expert row counts
    `counts`: rows grouped by expert in order; expert e's scale region starts
    at sf_offsets[e] and holds round_up(m_e, 128) rows, then `gap_rows`
    unused rows (docs/SPEC-MOE.md §5.1.3; 0 = the canonical packing)."""
    offs, sfs, o, s = [], [], 0, 0
    for c in counts:
        offs.append(o)
        sfs.append(s)
        o += c
        s += round_up(c, 128) + gap_rows
    return offs, sfs, s


def group_metadata(counts, n: int, k: int, gap_rows: int = 0) -> tuple[dict, int]:
    """A grouped GEMM's metadata for expert row counts `counts` and an [N, K]
    weight per expert, as int32 CPU tensors keyed by the ops' argument names
    (problem_sizes [E, 3] rows (m_e, N, K), expert_offsets [E], sf_offsets [E]
    from :func:`canonical_offsets`), and the scale rows the regions use."""
    offs, sfs, rows = canonical_offsets(counts, gap_rows)
    i32 = lambda v: torch.tensor(v, dtype=torch.int32).reshape(-1)  # noqa: E731
    return {"problem_sizes": i32([[c, n, k] for c in counts]).reshape(len(counts), 3),
            "expert_offsets": i32(offs), "sf_offsets": i32(sfs)}, rows


def byte_filler(generator: torch.Generator | None, garbage: bool) -> Callable[[tuple], torch.Tensor]:
    """shape -> uint8 CPU tensor: random bytes (padding the op must ignore)
    when `garbage`, else zeros."""
    if garbage:
        return lambda shape: torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
    return lambda shape: torch.zeros(shape, dtype=torch.uint8)


def uneven_counts(E: int, m_total: int, seed: int, zero_frac: float = 0.3) -> list[int]:
    """Uneven random split of m_total rows over E experts, some empty."""
    g = torch.Generator().manual_seed(seed)
    w = torch.rand(E, generator=g) ** 3
    w[torch.rand(E, generator=g) < zero_frac] = 0
    if w.sum() == 0:
        w[0] = 1
    c = (w / w.sum() * m_total).floor().long()
    c[int(torch.argmax(w))] += m_total - int(c.sum())
    return [int(v) for v in c]


def routed_counts(tokens: int, experts: int, topk: int, g: torch.Generator) -> list[int]:
    """Rows per expert of uniform random top-k routing (docs/SPEC-MOE.md §5.11 routing (a))."""
    ids = torch.rand(tokens, experts, generator=g).topk(topk, dim=1).indices.reshape(-1)
    return torch.bincount(ids, minlength=experts).tolist()
