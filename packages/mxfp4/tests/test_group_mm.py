"""cutlass_mxfp4_group_mm against the pure-torch oracle R5 (lowbit.testing.mxfp4;
docs/SPEC-MOE.md §5.3, §5.10.3): expert counts (E up to 1100), uneven and
zero-row experts, alignment edges (K % 128 != 0, N % 128 != 0), poisoned
outputs, garbage in padded scale regions, batch invariance, bad inputs,
opcheck, compile; on CUDA every named kernel and graphs with changing routing."""

from __future__ import annotations

import pytest
import torch

import lowbit.mxfp4 as mx
from lowbit.testing import mxfp4 as ref
from lowbit.testing.checks import devices, poison_, raises_arg
from lowbit.testing.nvfp4_gemm import relative_error

OPS = torch.ops.lowbit_mxfp4
LIMIT = 1e-2
ARGS = ("a", "b", "a_blockscale", "b_blockscales", "problem_sizes", "expert_offsets", "sf_offsets")
cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def _cuda_kernels():
    return mx.group_kernel_names("cuda") if torch.cuda.is_available() else []


# Devices whose target has a grouped-GEMM kernel in this build (no SM120 kernel yet).
DEVICES = [d for d in devices() if mx.group_kernel_names(d)]


def _counts(E, m_total, seed, zero_frac=0.3):
    """Uneven random split of m_total rows over E experts, some empty."""
    g = torch.Generator().manual_seed(seed)
    w = torch.rand(E, generator=g) ** 3
    w[torch.rand(E, generator=g) < zero_frac] = 0
    if w.sum() == 0:
        w[0] = 1
    c = (w / w.sum() * m_total).floor().long()
    c[int(torch.argmax(w))] += m_total - int(c.sum())
    return [int(v) for v in c]


def _fp16_unsupported(device) -> bool:
    """The SM100 CUTLASS grouped kernel is built for bf16 output only."""
    if torch.device(device).type != "cuda":
        return False
    major, _ = torch.cuda.get_device_capability(device)
    return major in (10, 11)


def _run(x, dtype, kernel=None):
    M, N = x["a"].shape[0], x["b"].shape[1]
    out = poison_(torch.empty(M, N, dtype=dtype, device=x["a"].device))
    args = [x[k] for k in ARGS]
    if kernel is None:
        OPS.cutlass_mxfp4_group_mm(out, *args)
    else:
        OPS._cutlass_mxfp4_group_mm_with_kernel(out, *args, kernel)
    return out


def _check(out, x, want=None):
    if want is None:
        want = ref.group_mm_ref(*[x[k] for k in ARGS], torch.float64)
    out = out.cpu()
    ps, off = x["problem_sizes"].cpu(), x["expert_offsets"].cpu()
    covered = torch.zeros(out.shape[0], dtype=torch.bool)
    for e in range(ps.shape[0]):
        m, lo = int(ps[e, 0]), int(off[e])
        if m:
            covered[lo:lo + m] = True
            err = relative_error(out[lo:lo + m].double(), want[lo:lo + m])
            assert err <= LIMIT, (e, m, err)
    assert (out[~covered].view(torch.uint8) == 0xA5).all(), "rows outside every expert written"


CASES = [  # (E, M_total, N, K)
    (1, 1, 32, 32),
    (1, 150, 96, 160),     # K % 128 != 0, N % 128 != 0
    (8, 7, 128, 64),
    (8, 300, 160, 96),
    (64, 64, 32, 224),
    (64, 500, 64, 128),
    (256, 256, 32, 32),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("E,m_total,n,k", CASES)
def test_matches_reference(device, dtype, E, m_total, n, k):
    x = ref.random_group_problem(_counts(E, m_total, seed=E + m_total), n, k, device,
                                 torch.Generator().manual_seed(7))
    if dtype == torch.float16 and _fp16_unsupported(device):
        with raises_arg("out", "bfloat16"):
            _run(x, dtype)
        return
    _check(_run(x, dtype), x)


@pytest.mark.parametrize("device", DEVICES)
def test_uncovered_rows_and_gaps(device):
    """Rows past the last expert and scale-row gaps between regions."""
    x = ref.random_group_problem([5, 0, 130, 0, 1], 64, 96, device, torch.Generator().manual_seed(1), gap_rows=128)
    a = x["a"]
    x["a"] = torch.cat([a, torch.randint(0, 256, (9, a.shape[1]), dtype=torch.uint8, device=device)])
    out = _run(x, torch.bfloat16)
    _check(out, x)
    assert (out[-9:].cpu().view(torch.uint8) == 0xA5).all()


@pytest.mark.parametrize("device", DEVICES)
def test_all_experts_empty_and_empty_m(device):
    x = ref.random_group_problem([0, 0, 0], 32, 32, device)
    x["a"] = torch.zeros(4, 16, dtype=torch.uint8, device=device)
    assert (_run(x, torch.bfloat16).cpu().view(torch.uint8) == 0xA5).all()
    x = ref.random_group_problem([0, 0], 32, 32, device)
    assert _run(x, torch.bfloat16).shape == (0, 32)


@pytest.mark.parametrize("device", DEVICES)
def test_nan_scale_propagates(device):
    """E8M0 byte 0xFF is NaN (§5.3): its block's products, hence the row, are NaN."""
    x = ref.random_group_problem([2], 32, 64, device, torch.Generator().manual_seed(2))
    x["a_blockscale"][0, 0] = 0xFF  # row 0, block 0 of expert 0
    out = _run(x, torch.bfloat16).float().cpu()
    assert torch.isnan(out[0]).all() and torch.isfinite(out[1]).all()


@pytest.mark.parametrize("device", DEVICES)
def test_batch_invariant_per_expert(device):
    """An expert's rows are bitwise the same in a call holding only that expert."""
    counts = [3, 40, 0, 17]
    x = ref.random_group_problem(counts, 64, 128, device, torch.Generator().manual_seed(3))
    full = _run(x, torch.bfloat16)
    lo, m = 3, 40
    alone = dict(x)
    alone["a"] = x["a"][lo:lo + m].contiguous()
    alone["problem_sizes"] = x["problem_sizes"].clone()
    alone["problem_sizes"][:, 0] = 0
    alone["problem_sizes"][1, 0] = m
    alone["expert_offsets"] = torch.zeros_like(x["expert_offsets"])
    got = _run(alone, torch.bfloat16)
    assert torch.equal(got.cpu().view(torch.int16), full[lo:lo + m].cpu().view(torch.int16))


def test_cpu_bad_metadata_nan():
    """CPU: an expert whose metadata breaks the contract gets NaN rows (§5.0.3)."""
    x = ref.random_group_problem([4, 4], 32, 64, "cpu", torch.Generator().manual_seed(4))
    x["sf_offsets"][1] = 64  # not a multiple of 128
    out = _run(x, torch.bfloat16)
    assert torch.isnan(out[4:].float()).all() and torch.isfinite(out[:4].float()).all()


def test_quantized_pipeline_close_to_bf16():
    """Operands from the package's own quantizers: close to the unquantized
    product in vLLM's metric 1 - 2·Σxy / Σ(x² + y²) (§5.10.2; < 0.15 there)."""
    g = torch.Generator().manual_seed(5)
    counts = torch.tensor([7, 0, 33])
    x = torch.randn(40, 256, generator=g).bfloat16()
    w = torch.randn(3, 64, 256, generator=g).bfloat16()
    off, sfo = mx.expert_offsets(counts)
    a, sa = mx.mxfp4_experts_quant(x, off, sfo)
    b, sb = mx.quantize_weights(w)
    ps = torch.tensor([[int(c), 64, 256] for c in counts], dtype=torch.int32)
    out = torch.empty(40, 64, dtype=torch.bfloat16)
    mx.cutlass_mxfp4_group_mm(out, a, b, sa, sb, ps, off[:-1].contiguous(), sfo[:-1].contiguous())
    for e, (lo, hi) in enumerate([(0, 7), (7, 7), (7, 40)]):
        if hi > lo:
            got, want = out[lo:hi].double(), x[lo:hi].double() @ w[e].double().T
            assert 1 - 2 * (got * want).sum() / (got * got + want * want).sum() < 0.05


# ------------------------------------------------------------------ validation
def _good(device="cpu"):
    x = ref.random_group_problem([3, 2], 64, 128, device, torch.Generator().manual_seed(9))
    x["out"] = torch.empty(5, 64, dtype=torch.bfloat16, device=device)
    return x


def _call(x):
    OPS.cutlass_mxfp4_group_mm(x["out"], *[x[k] for k in ARGS])


def _mod(**changes):
    x = _good()
    for key, f in changes.items():
        x[key] = f(x)
    return x


BAD = {
    "a dtype": (lambda: _mod(a=lambda x: x["a"].to(torch.int8)), ("a", "uint8", "int8")),
    "a K": (lambda: _mod(a=lambda x: x["a"][:, :16].contiguous()), ("a", "[M, 64]", "[5, 16]")),
    "a rank": (lambda: _mod(a=lambda x: x["a"].reshape(-1)), ("a", "2")),
    "b rank": (lambda: _mod(b=lambda x: x["b"][0]), ("b", "3")),
    "b K % 32": (lambda: _mod(b=lambda x: x["b"][:, :, :8].contiguous(), a=lambda x: x["a"][:, :8].contiguous()),
                 ("b", "multiple of 32", "K: 16")),
    "b N % 32": (lambda: _mod(b=lambda x: x["b"][:, :48].contiguous()), ("b", "multiple of 32", "N: 48")),
    "a_blockscale Kp": (lambda: _mod(a_blockscale=lambda x: x["a_blockscale"][:, :2].contiguous()),
                        ("a_blockscale", "[R, 4]", "[256, 2]")),
    "a_blockscale dtype": (lambda: _mod(a_blockscale=lambda x: x["a_blockscale"].view(torch.float8_e4m3fn)),
                           ("a_blockscale", "uint8", "float8_e4m3fn")),
    "b_blockscales shape": (lambda: _mod(b_blockscales=lambda x: x["b_blockscales"][:, :64].contiguous()),
                            ("b_blockscales", "[2, 128, 4]", "[2, 64, 4]")),
    "problem_sizes dtype": (lambda: _mod(problem_sizes=lambda x: x["problem_sizes"].long()),
                            ("problem_sizes", "int32", "int64")),
    "problem_sizes shape": (lambda: _mod(problem_sizes=lambda x: x["problem_sizes"][:1].contiguous()),
                            ("problem_sizes", "[2, 3]", "[1, 3]")),
    "problem_sizes non-contiguous": (lambda: _mod(problem_sizes=lambda x: x["problem_sizes"].t().contiguous().t()),
                                     ("problem_sizes", "contiguous")),
    "expert_offsets shape": (lambda: _mod(expert_offsets=lambda x: torch.zeros(3, dtype=torch.int32)),
                             ("expert_offsets", "[2]", "[3]")),
    "sf_offsets dtype": (lambda: _mod(sf_offsets=lambda x: x["sf_offsets"].long()), ("sf_offsets", "int32", "int64")),
    "out dtype": (lambda: _mod(out=lambda x: x["out"].float()), ("out", "bfloat16", "float32")),
    "out shape": (lambda: _mod(out=lambda x: x["out"][:, :32].contiguous()), ("out", "[5, 64]", "[5, 32]")),
    "no experts": (lambda: _mod(b=lambda x: x["b"][:0], b_blockscales=lambda x: x["b_blockscales"][:0],
                                problem_sizes=lambda x: x["problem_sizes"][:0],
                                expert_offsets=lambda x: x["expert_offsets"][:0],
                                sf_offsets=lambda x: x["sf_offsets"][:0]), ("b", "at least one expert")),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input(case):
    make, (arg, *frags) = BAD[case]
    with raises_arg(arg, *frags):
        _call(make())


def test_kernel_names_and_bad_kernel():
    assert mx.group_kernel_names("cpu") == ["reference"]
    x = _good()
    OPS._cutlass_mxfp4_group_mm_with_kernel(x["out"], *[x[k] for k in ARGS], "reference")
    with raises_arg("kernel", "reference", "cutlass_mxfp4_group_mm"):
        OPS._cutlass_mxfp4_group_mm_with_kernel(x["out"], *[x[k] for k in ARGS], "nope")


@cuda_only
@pytest.mark.parametrize("arg", ["out", "b", "a_blockscale", "b_blockscales", "problem_sizes", "expert_offsets",
                                 "sf_offsets"])
def test_bad_device_mix(arg):
    x = _good("cuda")
    x["out"] = x["out"].cuda()
    x[arg] = x[arg].cpu()  # validation runs before the target's kernel is looked up
    with raises_arg(arg, "cuda:0", "cpu"):
        _call(x)


@cuda_only
def test_misaligned_base():
    x = _good("cuda")
    x["out"] = x["out"].cuda()
    buf = torch.empty(x["a"].numel() + 8, dtype=torch.uint8, device="cuda")
    x["a"] = buf[8:].view(x["a"].shape)
    with raises_arg("a", "aligned to 16 bytes"):
        _call(x)


# ------------------------------------------------------------------ torch integration
@pytest.mark.parametrize("device", DEVICES)
def test_opcheck(device):
    x = ref.random_group_problem([3, 0, 5], 64, 96, device, torch.Generator().manual_seed(2))
    out = torch.zeros(8, 64, dtype=torch.bfloat16, device=device)
    args = [x[k] for k in ARGS]
    torch.library.opcheck(OPS.cutlass_mxfp4_group_mm, (out, *args))
    torch.library.opcheck(OPS._cutlass_mxfp4_group_mm_with_kernel, (out, *args, None))


@pytest.mark.parametrize("device", DEVICES)
def test_torch_compile(device):
    torch._dynamo.reset()
    x = ref.random_group_problem([3, 0, 5], 64, 96, device, torch.Generator().manual_seed(2))

    def f(out, *args):
        mx.cutlass_mxfp4_group_mm(out, *args)
        return out * 1

    out = poison_(torch.empty(8, 64, dtype=torch.bfloat16, device=device))
    got = torch.compile(f, fullgraph=True)(out, *[x[k] for k in ARGS])
    _check(out, x)
    assert got.shape == (8, 64)


# ------------------------------------------------------------------ CUDA
@cuda_only
def test_cuda_has_kernels_where_built():
    cap = torch.cuda.get_device_capability()
    if 90 <= 10 * cap[0] + cap[1] < 120:
        assert _cuda_kernels(), "no grouped-GEMM kernel for this GPU in this build"


@cuda_only
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("E,m_total,n,k", CASES + [(8, 300, 2880, 2880), (256, 8, 4096, 7168),
                                                   (256, 16384, 256, 512), (1100, 3000, 64, 96)])
def test_cuda_every_kernel(dtype, E, m_total, n, k):
    """Every named kernel of the device's target."""
    if dtype == torch.float16 and _fp16_unsupported("cuda"):
        pytest.skip("SM100 grouped kernel: bf16 output only (test_matches_reference checks the error)")
    x = ref.random_group_problem(_counts(E, m_total, seed=E + m_total), n, k, "cuda",
                                 torch.Generator().manual_seed(7))
    want = ref.group_mm_ref(*[x[k] for k in ARGS], torch.float64)
    for name in _cuda_kernels():
        _check(_run(x, dtype, name), x, want)
    if _cuda_kernels():
        _check(_run(x, dtype), x, want)  # the heuristic's choice


@cuda_only
def test_cuda_batch_of_empty_experts():
    x = ref.random_group_problem([0] * 255 + [3], 64, 64, "cuda")
    for name in _cuda_kernels():
        _check(_run(x, torch.bfloat16, name), x)


@cuda_only
def test_cuda_batch_invariant_per_expert():
    counts = [3, 40, 0, 17]
    x = ref.random_group_problem(counts, 128, 256, "cuda", torch.Generator().manual_seed(3))
    for name in _cuda_kernels():
        full = _run(x, torch.bfloat16, name)
        alone = dict(x)
        alone["a"] = x["a"][3:43].contiguous()
        alone["problem_sizes"] = x["problem_sizes"].clone()
        alone["problem_sizes"][:, 0] = 0
        alone["problem_sizes"][1, 0] = 40
        alone["expert_offsets"] = torch.zeros_like(x["expert_offsets"])
        got = _run(alone, torch.bfloat16, name)
        assert torch.equal(got.view(torch.int16), full[3:43].view(torch.int16)), name


@cuda_only
def test_cuda_bad_metadata_skipped():
    """An expert whose metadata breaks the contract is not computed (its rows
    keep the poison); the others are right (§5.0.3)."""
    x = ref.random_group_problem([4, 40, 4], 64, 64, "cuda", torch.Generator().manual_seed(4))
    x["sf_offsets"][1] = 64  # not a multiple of 128
    for name in _cuda_kernels():
        out = _run(x, torch.bfloat16, name).cpu()
        assert (out[4:44].view(torch.uint8) == 0xA5).all(), name
        y = dict(x)
        y["problem_sizes"] = x["problem_sizes"].clone()
        y["problem_sizes"][1, 0] = 0
        want = ref.group_mm_ref(*[y[k] for k in ARGS], torch.float64)
        for lo in (0, 44):
            assert relative_error(out[lo:lo + 4].double(), want[lo:lo + 4]) <= LIMIT, name


@cuda_only
@pytest.mark.skipif(not _cuda_kernels(), reason="no grouped-GEMM kernel for this GPU in this build")
def test_cuda_graph_changing_routing():
    """Capture once, rewrite problem sizes / offsets / operands in place between replays."""
    E, N, K, M = 16, 128, 256, 200
    x = ref.random_group_problem(_counts(E, M, 1), N, K, "cuda", torch.Generator().manual_seed(11))
    out = torch.empty(M, N, dtype=torch.bfloat16, device="cuda")
    args = [x[k] for k in ARGS]
    mx.cutlass_mxfp4_group_mm(out, *args)  # warm-up (lazy init outside the capture)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        mx.cutlass_mxfp4_group_mm(out, *args)
    replays = 0
    for seed in (2, 3, 4, 5):
        y = ref.random_group_problem(_counts(E, M, seed), N, K, "cuda", torch.Generator().manual_seed(seed))
        if y["a_blockscale"].shape[0] > x["a_blockscale"].shape[0]:
            continue  # the captured buffer is too small for this routing
        for key in ARGS:
            if key == "a_blockscale":
                x[key][: y[key].shape[0]].copy_(y[key])
            else:
                x[key].copy_(y[key])
        poison_(out)
        graph.replay()
        torch.cuda.synchronize()
        y["a_blockscale"] = x["a_blockscale"]
        _check(out, y)
        replays += 1
    assert replays
