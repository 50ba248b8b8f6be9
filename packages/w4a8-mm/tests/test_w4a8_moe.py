"""cutlass_encode_and_reorder_int4b_grouped and cutlass_w4a8_moe_mm
(docs/SPEC-MOE.md §5.6, §5.7) against the pure-torch references R6/R7
(lowbit.testing.w4a8_moe): CPU always, CUDA on an SM90 GPU."""

import pytest
import torch

import lowbit.w4a8_mm as w4
from lowbit.testing import checks
from lowbit.testing import w4a8 as dense_ref
from lowbit.testing import w4a8_moe as ref
from lowbit.testing.checks import needs_cuda, needs_sm90

gemm_devices = ["cpu", pytest.param("cuda", marks=needs_sm90)]

VLLM_MOE_SCHEDULES = (
    "Kernel_128x16_1x1x1_Coop", "Kernel_128x16_2x1x1_Coop", "Kernel_256x16_1x1x1_Coop",
    "Kernel_256x16_2x1x1_Coop", "Kernel_256x32_1x1x1_Coop", "Kernel_256x32_2x1x1_Coop",
    "Kernel_256x64_1x1x1_Coop", "Kernel_256x64_2x1x1_Coop", "Kernel_256x128_1x1x1_Coop",
    "Kernel_256x128_2x1x1_Coop", "Kernel_128x256_2x1x1_Coop")


def opcheck(op, args):
    """opcheck without test_schema (its mutation check multiplies the fp8
    inputs; torch has no fp8 mul), as tests/test_w4a8_mm.py."""
    tests = ("test_autograd_registration", "test_faketensor", "test_aot_dispatch_dynamic")
    torch.library.opcheck(op, args, test_utils=tests)


# ---------------------------------------------------------------- prepack
@pytest.mark.parametrize("device", checks.devices())
@pytest.mark.parametrize("E,N,K", [(1, 16, 32), (3, 128, 256), (8, 48, 96), (5, 256, 512)])
def test_grouped_prepack_matches_reference_and_dense(device, E, N, K):
    b = torch.randint(-2**31, 2**31 - 1, (E, N, K // 8), dtype=torch.int32, device=device)
    out, desc = w4.cutlass_encode_and_reorder_int4b_grouped(b)
    want, want_desc = ref.encode_and_reorder_grouped(b)
    assert out.shape == b.shape and out.is_contiguous() and out.dtype == torch.int32
    assert torch.equal(out, want)
    assert desc.device == b.device and torch.equal(desc, want_desc)
    for e in range(E):  # each expert byte-identical to the dense op on that expert
        assert torch.equal(out[e], w4.cutlass_encode_and_reorder_int4b(b[e].t()).t())


@pytest.mark.parametrize("N,K,row", [(16, 256, (1, 8, 512)), (128, 256, (8, 8, 4096)),
                                     (2048, 7168, (128, 224, 65536)), (7168, 2048, (448, 64, 229376))])
def test_grouped_prepack_descriptor_values(N, K, row):
    # docs/SPEC-MOE.md §5.1.5: the values CUTLASS's layout object holds.
    _, desc = w4.cutlass_encode_and_reorder_int4b_grouped(torch.zeros(2, N, K // 8, dtype=torch.int32))
    assert desc.tolist() == [list(row)] * 2


@pytest.mark.parametrize("device", checks.devices())
def test_grouped_prepack_empty(device):
    out, desc = w4.cutlass_encode_and_reorder_int4b_grouped(
        torch.zeros(0, 32, 8, dtype=torch.int32, device=device))
    assert out.shape == (0, 32, 8) and desc.shape == (0, 3) and desc.dtype == torch.int32


@needs_cuda
def test_grouped_prepack_cuda_matches_cpu_graph_and_side_stream():
    b = torch.randint(-2**31, 2**31 - 1, (4, 64, 32), dtype=torch.int32)
    want, want_desc = w4.cutlass_encode_and_reorder_int4b_grouped(b)
    dev = b.cuda()
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):  # written and prepacked on the side stream, no sync
        x = torch.empty_like(dev)
        x.copy_(dev, non_blocking=True)
        out, desc = w4.cutlass_encode_and_reorder_int4b_grouped(x)
    side.synchronize()
    assert torch.equal(out.cpu(), want) and torch.equal(desc.cpu(), want_desc)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        gout, gdesc = w4.cutlass_encode_and_reorder_int4b_grouped(dev)
    g.replay()
    torch.cuda.synchronize()
    assert torch.equal(gout.cpu(), want) and torch.equal(gdesc.cpu(), want_desc)


@pytest.mark.parametrize("device", checks.devices())
def test_grouped_prepack_opcheck_and_compile(device):
    b = torch.randint(-2**31, 2**31 - 1, (2, 32, 8), dtype=torch.int32, device=device)
    opcheck(torch.ops.lowbit_w4a8_mm.cutlass_encode_and_reorder_int4b_grouped.default, (b,))
    fn = torch.compile(w4.cutlass_encode_and_reorder_int4b_grouped, fullgraph=True)
    out, desc = fn(b)
    want, want_desc = w4.cutlass_encode_and_reorder_int4b_grouped(b)
    assert torch.equal(out, want) and torch.equal(desc, want_desc)


# ---------------------------------------------------------------- GEMM
def make(counts, N, K, device, extra_rows=0, group_size=128):
    p = ref.random_moe_problem(counts, N, K, device, group_size, extra_rows)
    p["B"], p["b_strides"] = w4.cutlass_encode_and_reorder_int4b_grouped(p["words"])
    p["gs"] = w4.cutlass_pack_scale_fp8(p["s"])
    return p


def args(p, out, schedule=None):
    return (out, p["A"], p["B"], p["tok"], p["ch"], p["gs"], p["group_size"], p["expert_offsets"],
            p["problem_sizes"], p["a_strides"], p["b_strides"], p["c_strides"],
            p["group_scale_strides"], schedule)


def run(p, schedule=None):
    out = checks.poisoned_empty(p["M"], p["N"], dtype=torch.bfloat16, device=p["A"].device)
    w4.cutlass_w4a8_moe_mm(*args(p, out, schedule))
    return out


def expected(p, out):
    return ref.moe_mm_ref(out, p["A"], p["q"], p["s"], p["ch"], p["tok"], p["expert_offsets"],
                          p["problem_sizes"])


def check(p, out):
    """Covered rows within the SPEC tolerance of R6; uncovered rows untouched
    (still the poison bytes)."""
    want = expected(p, out)
    covered = sum(p["problem_sizes"][:, 1].tolist())
    rows = slice(0, covered)  # experts are contiguous from row 0 in these problems
    o, w = out[rows].float(), want[rows].float()
    assert not o.isnan().any()
    if out.device.type == "cpu":
        torch.testing.assert_close(o, w, rtol=1e-2, atol=1e-2)
    else:
        # As the dense SM90 kernel (tests/test_w4a8_mm.py::check): fp8 wgmma
        # accumulation without periodic promotion at large K.
        err, bound = (o - w).abs(), 1e-2 + 1e-2 * w.abs()
        if o.numel():
            assert float((err > bound).float().mean()) <= 1e-3
            assert bool((err <= 10 * bound).all())
            assert dense_ref.rel_err(o, w) < 5e-3
    tail = out[covered:].view(torch.uint8)
    assert bool((tail == checks.POISON_BYTE).all()), "rows of no expert were written"


@pytest.mark.parametrize("device", gemm_devices)
@pytest.mark.parametrize("E", [1, 8, 16, 128])
def test_moe_mm_uneven_and_empty_experts(device, E):
    M = {1: 37, 8: 100, 16: 64, 128: 300}[E]
    counts = ref.split_rows(M, E, empty=max(1, E // 8) if E > 1 else 0)
    p = make(counts, 256, 512, device, extra_rows=5)
    check(p, run(p))


@pytest.mark.parametrize("device", gemm_devices)
def test_moe_mm_signed_scales(device):
    # vLLM's test draws signed token and channel scales.
    p = make([6, 11, 0, 4], 256, 512, device)
    p["tok"] = p["tok"] * (torch.randint(0, 2, p["tok"].shape, device=device) * 2 - 1)
    p["ch"] = p["ch"] * (torch.randint(0, 2, p["ch"].shape, device=device) * 2 - 1)
    check(p, run(p))


@pytest.mark.parametrize("device", gemm_devices)
def test_moe_mm_more_than_1024_experts(device):
    # vLLM's pointer kernel runs one block of E threads (E <= 1024).
    counts = [0] * 1100
    for e, m in ((0, 3), (517, 9), (1023, 1), (1024, 5), (1099, 7)):
        counts[e] = m
    p = make(counts, 128, 128, device)
    check(p, run(p))


@pytest.mark.parametrize("device", gemm_devices)
def test_moe_mm_every_schedule_name(device):
    p = make([17, 0, 40, 3], 384, 512, device)  # N = 3 tiles: odd for the 2x1 cluster
    base = run(p)
    check(p, base)
    for name in w4.MOE_SCHEDULES:
        out = run(p, name)
        check(p, out)
        if device == "cpu":  # the CPU kernel ignores the tile choice
            assert torch.equal(out, base)


def test_moe_schedule_names():
    assert set(VLLM_MOE_SCHEDULES) <= set(w4.MOE_SCHEDULES)


@pytest.mark.parametrize("device", gemm_devices)
def test_moe_mm_group_size_k_and_scale_shapes(device):
    p = make([5, 9], 128, 256, device, group_size=256)
    out = run(p)
    check(p, out)
    p2 = dict(p, tok=p["tok"].view(-1, 1), ch=p["ch"].unsqueeze(-1))
    assert torch.equal(run(p2), out)


@pytest.mark.parametrize("device", gemm_devices)
def test_moe_mm_no_rows_is_a_noop(device):
    p = make([0, 0, 0], 128, 256, device)
    run(p)  # M = 0
    p = make([0, 0], 128, 256, device, extra_rows=3)
    out = run(p)
    assert bool((out.view(torch.uint8) == checks.POISON_BYTE).all())


@pytest.mark.parametrize("device", gemm_devices)
def test_moe_mm_batch_invariant_per_expert(device):
    # An expert's rows do not depend on the other experts' rows or counts.
    p = make([7, 30, 12], 256, 512, device)
    full = run(p)
    alone = dict(p, problem_sizes=p["problem_sizes"].clone())
    alone["problem_sizes"][[0, 2], 1] = 0
    out = run(alone)
    assert torch.equal(out[7:37], full[7:37])


@pytest.mark.parametrize("device", gemm_devices)
def test_moe_mm_bad_metadata_expert_not_computed(device):
    # docs/SPEC-MOE.md §5.0.3: an expert whose problem-size row disagrees with
    # the shapes, or whose rows leave the tensor, is not computed: its rows
    # inside the output are NaN, nothing outside is touched; the others are
    # computed as without it.
    p = make([8, 8, 8, 0], 128, 256, device, extra_rows=4)
    good = run(p)
    bad = dict(p, problem_sizes=p["problem_sizes"].clone(), expert_offsets=p["expert_offsets"].clone())
    bad["problem_sizes"][1, 0] = 256  # wrong N
    bad["problem_sizes"][2, 1] = 10
    bad["expert_offsets"][2] = 20  # rows 20..30 leave M = 28: rows 20..27 NaN
    bad["expert_offsets"][3] = -5  # before the tensor: nothing written
    bad["problem_sizes"][3, 1] = 3
    out = run(bad)
    assert torch.equal(out[:8], good[:8])
    assert bool(out[8:16].isnan().all()) and bool(out[20:28].isnan().all())
    assert bool((out[16:20].view(torch.uint8) == checks.POISON_BYTE).all())


@pytest.mark.parametrize("device", gemm_devices)
def test_moe_mm_inputs_not_mutated(device):
    p = make([3, 5], 128, 256, device)
    before = {k: v.clone() for k, v in p.items() if torch.is_tensor(v)}
    run(p)
    for k, v in before.items():
        u = (lambda t: t.view(torch.uint8) if t.dtype == torch.float8_e4m3fn else t)
        assert torch.equal(u(v), u(p[k])), k


@pytest.mark.parametrize("device", gemm_devices)
def test_moe_mm_opcheck(device):
    p = make([3, 0, 6], 128, 256, device)
    out = torch.zeros(p["M"], p["N"], dtype=torch.bfloat16, device=device)
    opcheck(torch.ops.lowbit_w4a8_mm.cutlass_w4a8_moe_mm.default, args(p, out))


@pytest.mark.parametrize("device", gemm_devices)
def test_moe_mm_torch_compile(device):
    p = make([4, 9], 128, 256, device)

    def fn(a, tok, offsets, sizes):
        out = torch.zeros(a.shape[0], p["N"], dtype=torch.bfloat16, device=a.device)
        w4.cutlass_w4a8_moe_mm(out, a, p["B"], tok, p["ch"], p["gs"], 128, offsets, sizes,
                               p["a_strides"], p["b_strides"], p["c_strides"],
                               p["group_scale_strides"], None)
        return out * 2

    got = torch.compile(fn, fullgraph=True)(p["A"], p["tok"], p["expert_offsets"], p["problem_sizes"])
    assert torch.equal(got, fn(p["A"], p["tok"], p["expert_offsets"], p["problem_sizes"]))


# ---------------------------------------------------------------- GPU only
@needs_sm90
@pytest.mark.parametrize("E,N,K", [(8, 512, 2048), (8, 2048, 2048), (64, 512, 1024), (64, 2048, 2048),
                                   (4, 2048, 768), (8, 768, 2048), (64, 1536, 2048)])
@pytest.mark.parametrize("with_empty", [False, True])
def test_gpu_vllm_shapes(E, N, K, with_empty):
    # vLLM v0.34.0's test_cutlass_w4a8_moe.py cases (docs/SPEC-MOE.md §5.10.2).
    counts = (16 * torch.randint(1, 65, (E,))).tolist()
    if with_empty:
        for e in torch.randperm(E)[: max(1, E // 8)].tolist():
            counts[e] = 0
    p = make(counts, N, K, "cuda")
    check(p, run(p))


@needs_sm90
def test_gpu_matches_cpu_kernel():
    p = make([9, 0, 33, 2], 256, 1024, "cuda")
    out = run(p)
    cpu = {k: (v.cpu() if torch.is_tensor(v) else v) for k, v in p.items()}
    want = run(cpu)
    assert dense_ref.rel_err(out.cpu(), want) < 5e-3


@needs_sm90
@pytest.mark.parametrize("schedule", [None, "Kernel_128x16_1x1x1_Coop", "Kernel_128x64_1x1x1_Coop",
                                      "Kernel_128x256_2x1x1_Coop"])
def test_gpu_cuda_graph_changing_routing(schedule):
    # The routing lives in device tensors the graph reads at replay: new
    # offsets / counts copied in place give the new result without re-capture.
    E, N, K, M = 8, 256, 512, 96
    p = make(ref.split_rows(M, E, empty=2), N, K, "cuda")
    out = torch.zeros(M, N, dtype=torch.bfloat16, device="cuda")
    run(p, schedule)  # warm-up outside capture (lazy init)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        w4.cutlass_w4a8_moe_mm(*args(p, out, schedule))
    for _ in range(3):
        counts = ref.split_rows(M, E, empty=int(torch.randint(0, 4, ()).item()))
        offs = torch.tensor([0] + counts[:-1], dtype=torch.int64).cumsum(0)
        p["expert_offsets"].copy_(offs)
        p["problem_sizes"][:, 1].copy_(torch.tensor(counts, dtype=torch.int32))
        out.fill_(0)
        g.replay()
        torch.cuda.synchronize()
        check_rows = expected(p, torch.zeros_like(out))
        assert dense_ref.rel_err(out, check_rows) < 5e-3


@needs_sm90
def test_gpu_side_stream():
    p = make([5, 11], 256, 512, "cuda")
    want = run(p)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        out = run(p)
    side.synchronize()
    assert torch.equal(out, want)


@needs_sm90
def test_gpu_large_expert_offsets():
    # Expert 127 of 128 at N = 8192, K = 4096: its weight bytes start past
    # 2^31 (vLLM's largest test case); only that expert has rows.
    E, N, K = 128, 8192, 4096
    words = torch.randint(-2**31, 2**31 - 1, (E, N, K // 8), dtype=torch.int32, device="cuda")
    B, b_strides = w4.cutlass_encode_and_reorder_int4b_grouped(words)
    q = dense_ref.unpack_int4(words[E - 1].t())  # [N, K] int8
    del words
    s = (torch.rand(E, K // 128, N, device="cuda") * 0.05 + 0.01).to(torch.float8_e4m3fn)
    ch = torch.rand(E, N, device="cuda") / K**0.5
    m = 24
    A, tok = dense_ref.quantize_activation(torch.randn(m, K, device="cuda"))
    offsets = torch.zeros(E, dtype=torch.int64, device="cuda")
    sizes = torch.tensor([N, 0, K], dtype=torch.int32, device="cuda").repeat(E, 1)
    sizes[E - 1, 1] = m
    a_str, c_str, s_str = w4.moe_strides(E, N, K, "cuda")
    out = torch.zeros(m, N, dtype=torch.bfloat16, device="cuda")
    w4.cutlass_w4a8_moe_mm(out, A, B, tok, ch, w4.cutlass_pack_scale_fp8(s), 128, offsets, sizes,
                           a_str, b_strides, c_str, s_str)
    want = dense_ref.w4a8_mm(A, q, s[E - 1], ch[E - 1], tok)
    assert dense_ref.rel_err(out, want) < 5e-3
