"""Routing helpers vs the pure-torch reference (docs/SPEC-MOE.md §5.9.4,
§5.10.3 "Helpers"): every output, poisoned buffers, invalid ids, both id
dtypes, gated or not, with and without the optional outputs."""

from __future__ import annotations

import pytest
import torch

import lowbit.moe as moe
from lowbit.testing import moe as ref
from lowbit.testing.checks import devices, poisoned_empty, raises_arg

ops = torch.ops.lowbit_moe
DEVICES = devices()
KEYS = ("expert_offsets", "problem_sizes1", "problem_sizes2", "input_permutation",
        "output_permutation")


def random_ids(m, topk, E, dtype, g, invalid=0.1):
    ids = torch.randint(0, E, (m, topk), generator=g)
    bad = torch.rand(m, topk, generator=g) < invalid
    junk = torch.where(torch.rand(m, topk, generator=g) < 0.5, -1, E + 3)
    return torch.where(bad, junk, ids).to(dtype)


def run_op(ids, E, n, k, is_gated, blockscale, sorted_ids, device):
    routes = ids.numel()
    out = {
        "expert_offsets": poisoned_empty(E + 1, dtype=torch.int32, device=device),
        "problem_sizes1": poisoned_empty(E, 3, dtype=torch.int32, device=device),
        "problem_sizes2": poisoned_empty(E, 3, dtype=torch.int32, device=device),
        "input_permutation": poisoned_empty(routes, dtype=torch.int32, device=device),
        "output_permutation": poisoned_empty(routes, dtype=torch.int32, device=device),
    }
    if blockscale:
        out["blockscale_offsets"] = poisoned_empty(E + 1, dtype=torch.int32, device=device)
    if sorted_ids:
        out["sorted_expert_ids"] = poisoned_empty(routes, dtype=torch.int32, device=device)
    moe.get_cutlass_moe_mm_data(ids.to(device), *(out[key] for key in KEYS), E, n, k,
                                out.get("blockscale_offsets"), is_gated,
                                out.get("sorted_expert_ids"))
    return out


def check_all(ids, E, n, k, is_gated=True, blockscale=True, sorted_ids=True, device="cpu"):
    got = run_op(ids, E, n, k, is_gated, blockscale, sorted_ids, device)
    want = ref.moe_mm_data_ref(ids, E, n, k, is_gated, with_blockscale=blockscale)
    for key, t in got.items():
        assert torch.equal(t.cpu(), want[key]), key


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("E", [1, 8, 64, 256])
@pytest.mark.parametrize("topk", [1, 2, 6, 8])
@pytest.mark.parametrize("m", [0, 1, 7, 64, 333])
def test_moe_data_grid(device, E, topk, m):
    g = torch.Generator().manual_seed(E * 1000 + topk * 100 + m)
    check_all(random_ids(m, topk, E, torch.int32, g), E, 256, 512, device=device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("m", [2048, 16384])
@pytest.mark.parametrize("E", [8, 256])
def test_moe_data_large(device, m, E):
    # 16k tokens x top-8 = 131072 routes: many chunks on the GPU
    g = torch.Generator().manual_seed(m + E)
    check_all(random_ids(m, 8, E, torch.int64, g), E, 2048, 7168, device=device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.int32, torch.int64])
@pytest.mark.parametrize("is_gated", [True, False])
@pytest.mark.parametrize("blockscale", [True, False])
@pytest.mark.parametrize("sorted_ids", [True, False])
@pytest.mark.parametrize("m", [3, 40])  # 40 * 2 = 80 routes: the unswapped side of <= 64
def test_moe_data_options(device, dtype, is_gated, blockscale, sorted_ids, m):
    g = torch.Generator().manual_seed(m)
    check_all(random_ids(m, 2, 16, dtype, g, invalid=0.3), 16, 128, 256, is_gated, blockscale,
              sorted_ids, device)


@pytest.mark.parametrize("device", DEVICES)
def test_moe_data_all_invalid_and_skewed(device):
    E = 8
    all_bad = torch.full((50, 4), -1, dtype=torch.int32)
    check_all(all_bad, E, 64, 64, device=device)
    one_expert = torch.full((1000, 8), 5, dtype=torch.int64)
    check_all(one_expert, E, 64, 64, device=device)
    vllm_case = torch.tensor([[0, -1], [1, E]], dtype=torch.int32)  # SPEC-MOE §5.10.2
    check_all(vllm_case, E, 64, 64, device=device)


@pytest.mark.parametrize("device", DEVICES)
def test_invalid_routes_become_zero_rows(device):
    # SPEC-MOE §5.10.2: ids {0, -1, 1, E}: both invalid routes read zero rows
    E, H = 4, 32
    ids = torch.tensor([[0, -1], [1, E]], dtype=torch.int32, device=device)
    r = moe.route(ids, E, 16, H)
    x = torch.randn(2, H, device=device, dtype=torch.bfloat16)
    a = moe.shuffle_rows(x, r.input_permutation)
    assert torch.equal(a[2:], torch.zeros_like(a[2:]))
    back = moe.shuffle_rows(a, r.output_permutation)
    assert torch.equal(back[1], torch.zeros_like(back[1]))
    assert torch.equal(back[3], torch.zeros_like(back[3]))
    assert torch.equal(back[0], x[0]) and torch.equal(back[2], x[1])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("E", [0, 1, 8, 300])
@pytest.mark.parametrize("swap_ab", [True, False])
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32])
def test_problem_sizes_from_offsets(device, E, swap_ab, dtype):
    g = torch.Generator().manual_seed(E)
    counts = torch.randint(0, 50, (E,), generator=g)
    counts[::3] = 0
    off = torch.cat([torch.zeros(1, dtype=torch.int64), counts.cumsum(0)]).to(dtype)
    ps1 = poisoned_empty(E, 3, dtype=torch.int32, device=device)
    ps2 = poisoned_empty(E, 3, dtype=torch.int32, device=device)
    moe.get_cutlass_moe_mm_problem_sizes_from_expert_offsets(off.to(device), ps1, ps2, 768, 2048,
                                                             swap_ab)
    w1, w2 = ref.problem_sizes_from_offsets_ref(off, 768, 2048, swap_ab)
    assert torch.equal(ps1.cpu(), w1) and torch.equal(ps2.cpu(), w2)


SHUFFLE_DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float8_e4m3fn,
                  torch.float8_e5m2, torch.uint8]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", SHUFFLE_DTYPES)
@pytest.mark.parametrize("cols", [1, 3, 16, 100, 7168])
@pytest.mark.parametrize("map_dtype", [torch.int32, torch.int64])
def test_shuffle_rows(device, dtype, cols, map_dtype):
    g = torch.Generator().manual_seed(cols)
    src_rows = 37
    x = torch.randn(src_rows, cols, generator=g).to(dtype).to(device)
    idx = torch.randint(-3, src_rows + 3, (80,), generator=g).to(map_dtype).to(device)
    out = poisoned_empty(80, cols, dtype=dtype, device=device)
    ops.shuffle_rows(x, idx, out)
    want = ref.shuffle_rows_ref(x.cpu(), idx.cpu())
    assert torch.equal(out.cpu().view(torch.uint8), want.view(torch.uint8))


@pytest.mark.parametrize("device", DEVICES)
def test_shuffle_rows_empty(device):
    x = torch.randn(0, 64, device=device)
    out = moe.shuffle_rows(x, torch.full((5,), -1, dtype=torch.int32, device=device))
    assert torch.equal(out, torch.zeros(5, 64, device=device))
    assert moe.shuffle_rows(x, torch.empty(0, dtype=torch.int32, device=device)).shape == (0, 64)


@pytest.mark.parametrize("device", DEVICES)
def test_combine(device):
    g = torch.Generator().manual_seed(1)
    m, topk, E, H = 33, 4, 8, 64
    ids = random_ids(m, topk, E, torch.int32, g, invalid=0.2).to(device)
    w = torch.rand(m, topk, generator=g).to(device)
    r = moe.route(ids, E, 32, H)
    c3 = torch.randn(m * topk, H, generator=g).to(torch.bfloat16).to(device)
    got = moe.combine(c3, r.output_permutation, w)
    want = ref.combine_ref(c3.cpu(), r.output_permutation.cpu(), w.cpu())
    assert torch.equal(got.cpu(), want)
    plain = moe.combine(c3, r.output_permutation, None, topk=topk)
    assert plain.shape == (m, H)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype,wdtype", [(torch.bfloat16, torch.float32),
                                          (torch.float16, torch.bfloat16),
                                          (torch.float32, torch.float16)])
@pytest.mark.parametrize("H", [64, 7168, 13])
@pytest.mark.parametrize("idx", [torch.int32, torch.int64])
def test_moe_combine_bits(device, dtype, wdtype, H, idx):
    # the same bits as gather + torch multiply + sum (combine_ref), both load
    # paths (H = 13: one value at a time), map entries -1 and >= rows
    g = torch.Generator().manual_seed(H)
    m, topk = 9, 3
    c3 = (torch.randn(m * topk - 4, H, generator=g) * 3).to(dtype)
    perm = torch.randperm(m * topk, generator=g) - 2  # -2, -1 and rows past c3
    w = torch.rand(m, topk, generator=g).to(wdtype)
    out = poisoned_empty(m, H, dtype=dtype, device=device)
    ops.moe_combine(c3.to(device), perm.to(idx).to(device), w.to(device), out)
    assert torch.equal(out.cpu(), ref.combine_ref(c3, perm, w))
    plain = moe.combine(c3.to(device), perm.to(idx).to(device), None, topk=topk)
    want = ref.shuffle_rows_ref(c3, perm).reshape(m, topk, H).sum(dim=1)
    assert torch.equal(plain.cpu(), want)


@pytest.mark.parametrize("arg,frags,kw", [
    ("input", ("float64",), dict(c3=torch.zeros(6, 8, dtype=torch.float64))),
    ("output_permutation", ("multiple", "2 rows"), dict(perm=torch.zeros(5, dtype=torch.int32))),
    ("output", ("dtype", "bfloat16"), dict(out=torch.empty(2, 8, dtype=torch.bfloat16))),
    ("output", ("[*, 8]",), dict(out=torch.empty(2, 4))),
    ("topk_weights", ("[2, 3]",), dict(w=torch.zeros(3, 2))),
])
def test_moe_combine_bad(arg, frags, kw):
    with raises_arg(arg, *frags):
        ops.moe_combine(kw.get("c3", torch.zeros(6, 8)),
                        kw.get("perm", torch.zeros(6, dtype=torch.int32)),
                        kw.get("w", torch.zeros(2, 3)), kw.get("out", torch.empty(2, 8)))


@pytest.mark.parametrize("device", DEVICES)
def test_moe_combine_opcheck(device):
    c3 = torch.randn(12, 32, device=device, dtype=torch.bfloat16)
    perm = torch.tensor([3, -1, 0, 11, 5, 7], dtype=torch.int32, device=device)
    torch.library.opcheck(ops.moe_combine, (c3, perm, torch.rand(2, 3, device=device),
                                            torch.empty(2, 32, device=device, dtype=c3.dtype)))


def test_deterministic_and_stable():
    # stable: inside an expert, routes keep their flat order
    g = torch.Generator().manual_seed(3)
    ids = random_ids(500, 8, 64, torch.int32, g)
    a = moe.route(ids, 64, 16, 16)
    b = moe.route(ids, 64, 16, 16)
    assert torch.equal(a.input_permutation, b.input_permutation)
    flat = ids.reshape(-1)
    for e in (0, 17, 63):
        lo, hi = int(a.expert_offsets[e]), int(a.expert_offsets[e + 1])
        routes = torch.nonzero(flat == e).flatten()
        assert torch.equal(a.output_permutation[routes].long(), torch.arange(lo, hi))
