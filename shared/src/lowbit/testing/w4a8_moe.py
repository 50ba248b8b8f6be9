"""W4A8 grouped (MoE) reference (pure torch), written from docs/SPEC-MOE.md
§5.1.5, §5.6, §5.7 and §5.10.1 (R6, R7), on top of the dense reference
(lowbit.testing.w4a8, SPEC.md §1.5).

* R7 prepack: each expert of an int32 [E, N, K/8] tensor encoded and
  reordered exactly as the dense op does, plus the descriptor rows
  (N/16, K/32, 32*N).
* R6 GEMM: per expert, out = bf16(ch * (tok * (A_fp32 @ w_fp32^T))) with
  w = e4m3(q * s), from the *unencoded* q and unpacked fp8 scales (not from
  the prepacked bytes the kernels read); rows of no expert keep what the
  output held.
"""

from __future__ import annotations

import torch

from . import w4a8 as dense


def encode_and_reorder_grouped(b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """R7: int32 [E, N, K/8] contiguous -> (encoded + reordered [E, N, K/8],
    descriptor int32 [E, 3] rows (N/16, K/32, 32*N))."""
    E, N, Kw = b.shape
    out = torch.stack([dense.encode_and_reorder(b[e].t()).t() for e in range(E)]) if E else b.clone()
    desc = torch.tensor([N // 16, Kw * 8 // 32, 32 * N], dtype=torch.int32).repeat(E, 1)
    return out.contiguous(), desc.to(b.device)


def moe_mm_ref(out: torch.Tensor, A: torch.Tensor, q: torch.Tensor, s: torch.Tensor,
               ch: torch.Tensor, tok: torch.Tensor, expert_offsets: torch.Tensor,
               problem_sizes: torch.Tensor) -> torch.Tensor:
    """R6: a copy of `out` with every expert's rows computed by the dense SPEC
    oracle (dense.w4a8_mm: fp32 matmul on the CPU, torch._scaled_mm on a GPU).
    q int8 [E, N, K], s fp8 [E, K/g, N], ch fp32 [E, N], tok fp32 [M];
    expert_offsets [E], problem_sizes [E, 3] rows (N, m_e, K)."""
    res = out.clone()
    offs = expert_offsets.cpu().tolist()
    sizes = problem_sizes.cpu().tolist()
    tok = tok.reshape(-1)
    for e, (off, (_, m, _)) in enumerate(zip(offs, sizes)):
        if m == 0:
            continue
        rows = slice(off, off + m)
        res[rows] = dense.w4a8_mm(A[rows], q[e], s[e], ch[e].reshape(-1), tok[rows], res.dtype)
    return res


def split_rows(M: int, E: int, *, empty: int = 0) -> list[int]:
    """Uneven random rows per expert summing to M (torch's global RNG), with
    `empty` experts forced to 0 rows, in random positions."""
    live = max(E - empty, 1)
    cuts = torch.sort(torch.randint(0, M + 1, (live - 1,))).values.tolist()
    counts = [b - a for a, b in zip([0] + cuts, cuts + [M])] + [0] * (E - live)
    perm = torch.randperm(E).tolist()
    return [counts[i] for i in perm]


def random_moe_problem(counts: list[int], N: int, K: int, device, group_size: int = dense.GROUP,
                       extra_rows: int = 0) -> dict:
    """A random W4A8 MoE GEMM with counts[e] rows for expert e (O(1) outputs:
    x ~ N(0, 1), w ~ N(0, 1/K)), drawn on `device` from torch's global RNG,
    plus `extra_rows` rows after the last expert that no expert covers.
    Returns the unpacked prepack input `words` int32 [E, N, K/8] (the op under
    test prepacks it), q, s, ch, A, tok and the metadata tensors
    (expert_offsets int64, problem_sizes int32, strides) on `device`."""
    E = len(counts)
    M = sum(counts) + extra_rows
    w = torch.randn(E, N, K, device=device) / K**0.5
    parts = [dense.quantize_weight(w[e], group_size) for e in range(E)]
    q = torch.stack([p[0] for p in parts])
    s = torch.stack([p[1] for p in parts])
    ch = torch.stack([p[2] for p in parts])
    words = torch.stack([dense.pack_int4(q[e]).t() for e in range(E)]).contiguous()
    A, tok = dense.quantize_activation(torch.randn(M, K, device=device))
    offsets = torch.tensor([0] + counts[:-1], dtype=torch.int64).cumsum(0)
    sizes = torch.tensor([[N, m, K] for m in counts], dtype=torch.int32).reshape(E, 3)
    to = dict(device=device)
    return {
        "words": words.to(**to), "q": q.to(**to), "s": s.to(**to), "ch": ch.to(**to),
        "A": A.to(**to), "tok": tok.to(**to), "group_size": group_size,
        "expert_offsets": offsets.to(**to), "problem_sizes": sizes.to(**to),
        "a_strides": torch.full((E,), K, dtype=torch.int64, device=device),
        "c_strides": torch.full((E,), N, dtype=torch.int64, device=device),
        "group_scale_strides": torch.tensor([N, 0], dtype=torch.int64).repeat(E, 1).to(**to),
        "M": M, "N": N, "K": K, "E": E,
    }
