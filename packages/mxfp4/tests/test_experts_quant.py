"""mxfp4_experts_quant / silu_and_mul_mxfp4_experts_quant against the pure-torch
oracle R4 (lowbit.testing.mxfp4; docs/SPEC-MOE.md §5.1.1, §5.4-5.5, §5.10.3):
codes and scale bytes bit-exact, padding of every region 0x00, everything else
untouched; crafted blocks (scale-rule edges, subnormals, Inf, NaN);
sorted_expert_ids never changes a result; opcheck, compile, CUDA graphs.
CPU tests always run; CUDA tests where a GPU is visible."""

from __future__ import annotations

import pytest
import torch

import lowbit.mxfp4 as q
from lowbit.testing import mxfp4 as ref
from lowbit.testing.checks import POISON_BYTE, devices, needs_cuda, poisoned_empty

ops = torch.ops.lowbit_mxfp4
DEVICES = devices()
DTYPES = [torch.float16, torch.bfloat16]


def rand_input(m, cols, dtype, seed):
    """Rows whose 32-blocks span very different magnitudes."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(m, cols, generator=g)
    if m and cols:
        mag = torch.exp2(torch.randint(-12, 10, (m, cols // 32, 1), generator=g).float())
        x = (x.reshape(m, cols // 32, 32) * mag).reshape(m, cols)
    return x.to(dtype)


def run(silu, x, off, sfo, rows, ids=None, device="cpu"):
    """The op into poisoned buffers (uint8 scales); returns (codes, scales)."""
    m, k = x.shape[0], x.shape[1] // (2 if silu else 1)
    out = poisoned_empty(m, k // 2, dtype=torch.uint8, device=device)
    sf = poisoned_empty(rows, ref.round_up(k // 32, 4), dtype=torch.uint8, device=device)
    op = ops.silu_and_mul_mxfp4_experts_quant if silu else ops.mxfp4_experts_quant
    op(out, sf, x.to(device), off.to(device), sfo.to(device), off.numel() - 1,
       None if ids is None else ids.to(device))
    return out.cpu(), sf.cpu()


def assert_silu_close(got, want, what, max_frac=1e-3):
    """Fused SiLU (§5.10.3): equal to quantizing the rounded fp32 product except
    rare one-step differences where exp() rounds differently."""
    gc, wc = ref.unpack_fp4(got).int(), ref.unpack_fp4(want).int()
    diff = gc != wc
    assert diff.sum() <= max_frac * diff.numel(), f"{what}: {int(diff.sum())} codes differ"
    assert ((gc - wc).abs()[diff & ((gc & 8) == (wc & 8))] <= 1).all(), what


def check(silu, x, counts, orphans, k, device, ids=None, gap=0):
    off, sfo = q.expert_offsets(torch.tensor(counts))
    if gap:  # non-canonical offsets: unused scale rows between regions
        sfo = sfo + torch.arange(len(counts) + 1, dtype=torch.int32) * gap
    rows = int(sfo[-1]) + 128  # over-allocated like vLLM; the tail must stay untouched
    out, sf = run(silu, x, off, sfo, rows, ids, device)
    src = ref.silu_and_mul_ref(x) if silu else x.float()
    rp, rs, w, sw = ref.quantize_mxfp4_experts(src, off, sfo, rows)
    if silu:
        assert_silu_close(out[w], rp[w], "codes")
        assert (sf[sw] != rs[sw]).sum() <= 1e-3 * sf[sw].numel()
    else:
        assert torch.equal(out[w], rp[w]), "codes"
        assert torch.equal(sf[sw], rs[sw]), "scale regions (padding included)"
    assert (out[~w] == POISON_BYTE).all(), "orphan rows written"
    assert (sf[~sw] == POISON_BYTE).all(), "scale rows outside every region written"
    return out, sf


# ------------------------------------------------------------------ reference sanity
def test_reference_scale_rule():
    """§5.1.1: E_r rounds the exponent up exactly from mantissa fraction 0.75."""
    e = 3.0
    amax = torch.tensor([1.75 * 2**e, torch.nextafter(torch.tensor(1.75 * 2**e), torch.tensor(0.0)).item(),
                         0.0, 1.75 * 2**-125, 1.74 * 2**-125, float("inf")])
    assert ref.scale_bytes(amax).tolist() == [127 + 4 - 2, 127 + 3 - 2, 0, 1, 0, 253]


# ------------------------------------------------------------------ the grid
CASES = [  # (counts, orphans, k)
    ([5, 0, 130, 1], 0, 96),              # an empty expert, a region over two tiles, Kp padding
    ([0, 0, 3], 7, 32),                   # leading empty experts, orphan rows, K = 32
    ([128, 1, 0, 0], 5, 128),             # trailing empty experts
    ([17] * 6, 0, 1440),                  # §5.8 item 7 geometry, odd K/32
    ([4, 31, 32, 33, 1, 96, 127, 160, 2], 3, 2112),
    ([1, 2, 3], 0, 2880),                 # gpt-oss K, K % 128 != 0
    ([4] * 3, 1, 7168),
    ([0, 0], 4, 64),                      # no expert rows, only orphans
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("silu", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
def test_experts(device, silu, dtype, case):
    counts, orphans, k = case
    x = rand_input(sum(counts) + orphans, 2 * k if silu else k, dtype, sum(counts) + k)
    check(silu, x, counts, orphans, k, device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("E", [1, 3, 6, 16, 40, 60, 128, 256, 1100])  # 1100: offsets beyond shared memory
def test_many_experts(device, E):
    g = torch.Generator().manual_seed(E)
    counts = torch.randint(0, 9, (E,), generator=g)
    counts[torch.rand(E, generator=g) < 0.3] = 0
    x = rand_input(int(counts.sum()) + 2, 96, torch.bfloat16, E)
    check(False, x, counts.tolist(), 2, 96, device)


@pytest.mark.parametrize("device", DEVICES)
def test_gaps_between_regions(device):
    x = rand_input(40, 64, torch.float16, 5)
    check(False, x, [10, 0, 30], 0, 64, device, gap=128)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("m", [1, 7, 64, 128, 129, 1000, 8192])
def test_rows(device, m):
    x = rand_input(m, 256, torch.bfloat16, m)
    check(False, x, [m], 0, 256, device)


# ------------------------------------------------------------------ crafted blocks
def crafted(dtype):
    """One 32-block per row: scale-rule edges, e2m1 midpoints after scaling,
    dtype max, subnormals, zeros, +-Inf, NaN."""
    rows = []
    base = torch.linspace(-1, 1, 32)
    info = torch.finfo(dtype)
    for e in (-20, -1, 0, 5):
        edge = 1.75 * 2.0**e
        below = torch.nextafter(torch.tensor(edge, dtype=dtype).float(), torch.tensor(0.0)).to(dtype).float()
        for top in (edge, below.item()):
            r = base * top * 0.5
            r[7] = -top
            rows.append(r)
    mids = torch.tensor([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 6.5, 7.0] * 4)[:32]  # scaled by 2^0 at amax 7
    rows.append(mids)
    rows.append(-mids)
    rows.append(torch.full((32,), info.max))
    rows.append(torch.full((32,), info.tiny) * torch.linspace(-1, 1, 32))
    sub = torch.full((32,), info.tiny / 4)
    sub[3] = info.tiny * 3  # amax a normal just above the subnormals
    rows.append(sub)
    rows.append(torch.zeros(32))
    r = base.clone()
    r[5] = float("inf")
    rows.append(r)
    r = base.clone()
    r[9] = float("-inf")
    r[10] = float("inf")
    rows.append(r)
    r = base.clone()
    r[4] = float("nan")
    rows.append(r)
    return torch.stack(rows).to(dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_crafted_blocks(device, dtype):
    x = crafted(dtype)
    x = torch.cat([x, x.flip(0)], 1)  # two blocks per row; each block's scale is its own
    out, sf = check(False, x, [x.shape[0]], 0, 64, device)
    lin = ref.unswizzle(sf[:128], x.shape[0], 2)
    assert lin[-1, 0] == ref.NAN_SCALE and (ref.unpack_fp4(out[-1])[:32] == 0).all()
    assert lin[-2, 0] == 253 and lin[-1, 1] != ref.NAN_SCALE


# ------------------------------------------------------------------ sorted_expert_ids
def ids_for(counts):
    return torch.repeat_interleave(torch.arange(len(counts), dtype=torch.int32), torch.tensor(counts))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("silu", [False, True])
def test_sorted_expert_ids_never_change_the_result(device, silu):
    counts = [3, 0, 40, 1, 0, 17]
    k = 64
    x = rand_input(sum(counts) + 2, 2 * k if silu else k, torch.bfloat16, 9)
    off, sfo = q.expert_offsets(torch.tensor(counts))
    rows = int(sfo[-1])
    base = run(silu, x, off, sfo, rows, None, device)
    good = torch.cat([ids_for(counts), torch.full((2,), -1, dtype=torch.int32)])
    bad = torch.randint(-5, 100, good.shape, dtype=torch.int32)  # out of range and inconsistent
    for ids in (good, bad, good.flip(0)):
        got = run(silu, x, off, sfo, rows, ids, device)
        assert torch.equal(got[0], base[0]) and torch.equal(got[1], base[1])


# ------------------------------------------------------------------ edges and wrappers
@pytest.mark.parametrize("device", DEVICES)
def test_empty_input(device):
    off = torch.zeros(1, dtype=torch.int32)
    x = torch.empty(0, 64, dtype=torch.bfloat16)
    out, sf = run(False, x, off, off, 128, None, device)
    assert out.shape == (0, 32) and (sf == POISON_BYTE).all()
    off = torch.zeros(4, dtype=torch.int32)
    out, sf = run(True, torch.empty(0, 128, dtype=torch.float16), off, off, 0, None, device)
    assert out.shape == (0, 32)


@pytest.mark.parametrize("device", DEVICES)
def test_int32_scale_buffer_like_vllm(device):
    counts = [20, 5]
    x = rand_input(25, 96, torch.bfloat16, 4).to(device)
    off, sfo = q.expert_offsets(torch.tensor(counts))
    out = torch.empty(25, 48, dtype=torch.uint8, device=device)
    words = torch.zeros(256, 1, dtype=torch.int32, device=device)  # Kp = 4 bytes per row
    ops.mxfp4_experts_quant(out, words, x, off.to(device), sfo.to(device), 2)
    _, sf = run(False, x.cpu(), off, sfo, 256)
    assert torch.equal(words.cpu().view(torch.uint8), sf)


@pytest.mark.parametrize("device", DEVICES)
def test_wrappers_and_weight_quantizer(device):
    counts = torch.tensor([3, 0, 130])
    x = rand_input(133, 2 * 128, torch.bfloat16, 2).to(device)
    off, sfo = q.expert_offsets(counts.to(device))
    codes, sf = q.mxfp4_experts_quant(x[:, :128].contiguous(), off, sfo)
    assert sf.shape == (q.scale_rows_for(133, 3), 4) and sf.dtype == torch.uint8
    want, wsf, _, sw = ref.quantize_mxfp4_experts(x[:, :128].float(), off, sfo, sf.shape[0])
    assert torch.equal(codes.cpu(), want) and torch.equal(sf.cpu()[sw], wsf[sw])
    codes2, _ = q.silu_and_mul_mxfp4_experts_quant(x, off, sfo, sorted_expert_ids=ids_for([3, 0, 130]).to(device))
    assert codes2.shape == (133, 64)
    w = rand_input(3 * 96, 64, torch.bfloat16, 6).reshape(3, 96, 64).to(device)
    b, bs = q.quantize_weights(w)
    assert b.shape == (3, 96, 32) and bs.shape == (3, 128, 4)
    for e in range(3):
        p, s = ref.quantize_mxfp4(w[e].cpu().float())
        assert torch.equal(b[e].cpu(), p) and torch.equal(bs[e].cpu(), s)


# ------------------------------------------------------------------ torch integration
def _opcheck_args(device, silu):
    k = 64
    x = rand_input(130, 2 * k if silu else k, torch.bfloat16, 1).to(device)
    off, sfo = q.expert_offsets(torch.tensor([100, 0, 27]))
    out = torch.empty(130, k // 2, dtype=torch.uint8, device=device)
    sf = torch.zeros(int(sfo[-1]), 4, dtype=torch.uint8, device=device)
    return (out, sf, x, off.to(device), sfo.to(device), 3, None)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("silu", [False, True])
def test_opcheck(device, silu):
    op = ops.silu_and_mul_mxfp4_experts_quant if silu else ops.mxfp4_experts_quant
    torch.library.opcheck(op.default, _opcheck_args(device, silu))


@pytest.mark.parametrize("device", DEVICES)
def test_torch_compile_fullgraph(device):
    torch._dynamo.reset()
    out, sf, x, off, sfo, E, _ = _opcheck_args(device, True)

    @torch.compile(fullgraph=True)
    def f(out, sf, x, off, sfo):
        ops.silu_and_mul_mxfp4_experts_quant(out, sf, x, off, sfo, E)
        ops.mxfp4_experts_quant(out, sf, x[:, :64].contiguous(), off, sfo, E)
        return out.sum(dtype=torch.int64)

    f(out, sf, x, off, sfo)
    want, wsf, _, sw = ref.quantize_mxfp4_experts(x[:, :64].float(), off, sfo, sf.shape[0])
    assert torch.equal(out.cpu()[:127], want[:127]) and torch.equal(sf.cpu()[sw], wsf[sw])


@needs_cuda
def test_cuda_graph_changing_routing():
    """Capture once; new offsets written in place between replays."""
    k, m, E = 256, 300, 8
    x = rand_input(m, k, torch.bfloat16, 3).cuda()
    off = torch.zeros(E + 1, dtype=torch.int32, device="cuda")
    sfo = torch.zeros(E + 1, dtype=torch.int32, device="cuda")
    rows = q.scale_rows_for(m, E)
    out = torch.empty(m, k // 2, dtype=torch.uint8, device="cuda")
    sf = torch.empty(rows, 8, dtype=torch.uint8, device="cuda")
    ops.mxfp4_experts_quant(out, sf, x, off, sfo, E)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        ops.mxfp4_experts_quant(out, sf, x, off, sfo, E)
    for seed in (1, 2, 3):
        g = torch.Generator().manual_seed(seed)
        c = torch.bincount(torch.randint(0, E - seed, (m,), generator=g), minlength=E)  # some experts empty
        o, s = q.expert_offsets(c)
        off.copy_(o)
        sfo.copy_(s)
        out.fill_(POISON_BYTE)
        sf.fill_(POISON_BYTE)
        graph.replay()
        torch.cuda.synchronize()
        want, wsf, _, sw = ref.quantize_mxfp4_experts(x.float(), o, s, rows)
        assert torch.equal(out.cpu(), want) and torch.equal(sf.cpu()[sw], wsf[sw])


@needs_cuda
def test_cuda_bad_offsets_stay_in_bounds():
    """Device metadata is not trusted (§5.0.3): an expert whose region overlaps
    the next one or does not start at a multiple of 128 writes nothing, nor
    does one whose region runs past the buffer; the others are right."""
    k = 64
    x = rand_input(40, k, torch.float16, 8)
    off = torch.tensor([0, 10, 20, 30, 40], dtype=torch.int32)
    # expert 1 overlaps expert 2's start, expert 2 starts at 200, expert 3 lies past the 256-row buffer
    sfo = torch.tensor([0, 128, 200, 384, 512], dtype=torch.int32)
    out, sf = run(False, x, off, sfo, 256, None, "cuda")
    assert (out[10:] == POISON_BYTE).all() and (sf[128:] == POISON_BYTE).all()
    want, wsf, _, sw = ref.quantize_mxfp4_experts(x[:10].float(), off[:2], sfo[:2], 256)
    assert torch.equal(out[:10], want[:10]) and torch.equal(sf[sw], wsf[sw])
