"""cutlass_fp4_group_mm against the pure-torch reference R5 (docs/SPEC-MOE.md
§5.2, §5.10): expert counts, zero-row experts, alignment edges, poisoned
outputs, garbage in padded scale regions, bad inputs, opcheck, compile, and on
CUDA every named kernel, graphs with changing routing."""

from __future__ import annotations

import pytest
import torch

import lowbit.nvfp4_mm as mm
from lowbit.testing.checks import devices, poison_, raises_arg
from lowbit.testing.nvfp4_gemm import group_gemm_ref, random_group_problem, relative_error

OPS = torch.ops.lowbit_nvfp4_mm
LIMIT = 1e-2
ARGS = ("a", "b", "a_blockscale", "b_blockscales", "alphas", "problem_sizes", "expert_offsets", "sf_offsets")


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


def _run(x, dtype, kernel=None):
    M, N = x["a"].shape[0], x["b"].shape[1]
    out = poison_(torch.empty(M, N, dtype=dtype, device=x["a"].device))
    args = [x[k] for k in ARGS]
    if kernel is None:
        OPS.cutlass_fp4_group_mm(out, *args)
    else:
        OPS._cutlass_fp4_group_mm_with_kernel(out, *args, kernel)
    return out


def _check(out, x, poisoned_rows_ok=True):
    ref, covered = group_gemm_ref(*[x[k] for k in ARGS])
    out = out.cpu()
    ps, off = x["problem_sizes"].cpu(), x["expert_offsets"].cpu()
    for e in range(ps.shape[0]):
        m, lo = int(ps[e, 0]), int(off[e])
        if m:
            err = relative_error(out[lo:lo + m].double(), ref[lo:lo + m])
            assert err <= LIMIT, (e, m, err)
    # Rows no expert covers keep the poison bytes.
    unc = out[~covered].view(torch.uint8)
    assert (unc == 0xA5).all()


CASES = [  # (E, M_total, N, K)
    (1, 1, 32, 32),
    (1, 150, 96, 160),
    (8, 7, 128, 64),
    (8, 300, 160, 96),   # K % 64 != 0, N % 128 != 0
    (64, 64, 32, 224),
    (64, 1000, 64, 128),
    (256, 256, 32, 32),
    (256, 2000, 32, 64),
]


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("E,m_total,n,k", CASES)
def test_matches_reference(device, dtype, E, m_total, n, k):
    x = random_group_problem(_counts(E, m_total, seed=E + m_total), n, k, device,
                             torch.Generator().manual_seed(7))
    _check(_run(x, dtype), x)


@pytest.mark.parametrize("device", devices())
def test_uncovered_rows_and_gaps(device):
    """Rows past the last expert and scale-row gaps between regions."""
    counts = [5, 0, 130, 0, 1]
    x = random_group_problem(counts, 64, 96, device, torch.Generator().manual_seed(1), gap_rows=128)
    a = x["a"]
    x["a"] = torch.cat([a, torch.randint(0, 256, (9, a.shape[1]), dtype=torch.uint8, device=device)])
    out = _run(x, torch.bfloat16)
    _check(out, x)
    assert (out[-9:].cpu().view(torch.uint8) == 0xA5).all()


@pytest.mark.parametrize("device", devices())
def test_all_experts_empty_and_empty_m(device):
    x = random_group_problem([0, 0, 0], 32, 32, device)
    x["a"] = torch.zeros(4, 16, dtype=torch.uint8, device=device)
    out = _run(x, torch.float16)
    assert (out.cpu().view(torch.uint8) == 0xA5).all()
    x = random_group_problem([0, 0], 32, 32, device)
    assert _run(x, torch.float16).shape == (0, 32)


@pytest.mark.parametrize("device", devices())
def test_batch_invariant_per_expert(device):
    """An expert's rows are bitwise the same in a call holding only that expert."""
    counts = [3, 40, 0, 17]
    x = random_group_problem(counts, 64, 128, device, torch.Generator().manual_seed(3))
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
    """CPU: an expert whose metadata breaks the contract gets NaN rows
    (docs/SPEC-MOE.md §5.0.3); the others are computed."""
    x = random_group_problem([4, 4], 32, 64, "cpu", torch.Generator().manual_seed(4))
    x["sf_offsets"][1] = 64  # not a multiple of 128
    out = _run(x, torch.bfloat16)
    assert torch.isnan(out[4:].float()).all()
    assert torch.isfinite(out[:4].float()).all()


def test_matches_dense_op():
    """Per expert within 1e-2 of cutlass_scaled_fp4_mm on the same operands."""
    x = random_group_problem([20], 96, 160, "cpu", torch.Generator().manual_seed(5))
    got = _run(x, torch.bfloat16)
    dense = torch.empty(20, 96, dtype=torch.bfloat16)
    kp = x["a_blockscale"].shape[1]
    OPS.cutlass_scaled_fp4_mm(dense, x["a"], x["b"][0], x["a_blockscale"][:128].contiguous(),
                              x["b_blockscales"][0][:, :kp].contiguous(), x["alphas"][:1])
    assert torch.equal(got, dense)


# ------------------------------------------------------------------ validation
def _good(device="cpu"):
    x = random_group_problem([3, 2], 64, 64, device, torch.Generator().manual_seed(9))
    x["out"] = torch.empty(5, 64, dtype=torch.bfloat16, device=device)
    return x


def _call(x):
    OPS.cutlass_fp4_group_mm(x["out"], *[x[k] for k in ARGS])


def _mod(**changes):
    x = _good()
    for key, f in changes.items():
        x[key] = f(x)
    return x


BAD = {
    "a dtype": (lambda: _mod(a=lambda x: x["a"].to(torch.int8)), ("a", "uint8", "int8")),
    "a K": (lambda: _mod(a=lambda x: x["a"][:, :16].contiguous()), ("a", "[M, 32]", "[5, 16]")),
    "a rank": (lambda: _mod(a=lambda x: x["a"].reshape(-1)), ("a", "2")),
    "b rank": (lambda: _mod(b=lambda x: x["b"][0]), ("b", "3")),
    "b K % 32": (lambda: _mod(b=lambda x: x["b"][:, :, :8].contiguous(), a=lambda x: x["a"][:, :8].contiguous()),
                 ("b", "divisible by 32", "K: 16")),
    "b N % 32": (lambda: _mod(b=lambda x: x["b"][:, :48].contiguous()), ("b", "divisible by 32", "N: 48")),
    "a_blockscale Kp": (lambda: _mod(a_blockscale=lambda x: x["a_blockscale"][:, :2].contiguous()),
                        ("a_blockscale", "[R, 4]", "[256, 2]")),
    "a_blockscale dtype": (lambda: _mod(a_blockscale=lambda x: x["a_blockscale"].float()),
                           ("a_blockscale", "float8_e4m3fn", "float32")),
    "b_blockscales shape": (lambda: _mod(b_blockscales=lambda x: x["b_blockscales"][:, :64].contiguous()),
                            ("b_blockscales", "[2, 128, 4]", "[2, 64, 4]")),
    "alphas shape": (lambda: _mod(alphas=lambda x: torch.ones(3)), ("alphas", "[2]", "[3]")),
    "alphas dtype": (lambda: _mod(alphas=lambda x: x["alphas"].double()), ("alphas", "float32", "float64")),
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
                                alphas=lambda x: x["alphas"][:0], problem_sizes=lambda x: x["problem_sizes"][:0],
                                expert_offsets=lambda x: x["expert_offsets"][:0],
                                sf_offsets=lambda x: x["sf_offsets"][:0]), ("b", "at least one expert")),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input(case):
    make, (arg, *frags) = BAD[case]
    with raises_arg(arg, *frags):
        _call(make())


def test_kernel_names_and_bad_kernel():
    assert mm.group_kernel_names("cpu") == ["reference"]
    x = _good()
    with raises_arg("kernel", "reference", "cutlass_fp4_group_mm"):
        OPS._cutlass_fp4_group_mm_with_kernel(x["out"], *[x[k] for k in ARGS], "nope")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("arg", ["out", "b", "a_blockscale", "b_blockscales", "alphas", "problem_sizes",
                                 "expert_offsets", "sf_offsets"])
def test_bad_device_mix(arg):
    x = _good("cuda")
    x["out"] = x["out"].cuda()
    x[arg] = x[arg].cpu()
    with raises_arg(arg, "cuda:0", "cpu"):
        _call(x)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_misaligned_base():
    x = _good("cuda")
    x["out"] = x["out"].cuda()
    buf = torch.empty(x["a"].numel() + 8, dtype=torch.uint8, device="cuda")
    x["a"] = buf[8:].view(x["a"].shape)
    with raises_arg("a", "aligned to 16 bytes"):
        _call(x)


# ------------------------------------------------------------------ torch integration
@pytest.mark.parametrize("device", devices())
def test_opcheck(device):
    x = random_group_problem([3, 0, 5], 64, 96, device, torch.Generator().manual_seed(2))
    x = {k: (v.view(torch.uint8) if v.dtype == torch.float8_e4m3fn else v) for k, v in x.items()}
    out = torch.zeros(8, 64, dtype=torch.bfloat16, device=device)
    args = [x[k] for k in ARGS]
    torch.library.opcheck(OPS.cutlass_fp4_group_mm, (out, *args))
    torch.library.opcheck(OPS._cutlass_fp4_group_mm_with_kernel, (out, *args, None))


@pytest.mark.parametrize("device", devices())
def test_torch_compile(device):
    x = random_group_problem([3, 0, 5], 64, 96, device, torch.Generator().manual_seed(2))

    def f(out, *args):
        mm.cutlass_fp4_group_mm(out, *args)
        return out * 1

    out = poison_(torch.empty(8, 64, dtype=torch.bfloat16, device=device))
    got = torch.compile(f, fullgraph=True)(out, *[x[k] for k in ARGS])
    _check(out, x)
    assert got.shape == (8, 64)


# ------------------------------------------------------------------ CUDA
def _cuda_kernels():
    return mm.group_kernel_names("cuda") if torch.cuda.is_available() else []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("E,m_total,n,k", CASES + [(256, 16384, 256, 512), (256, 8, 4096, 7168), (1100, 3000, 64, 96)])
def test_cuda_every_kernel(dtype, E, m_total, n, k):
    """Every named kernel of the device's target (SM90: 4, SM100/SM120: 1)."""
    x = random_group_problem(_counts(E, m_total, seed=E + m_total), n, k, "cuda", torch.Generator().manual_seed(7))
    for name in _cuda_kernels():
        _check(_run(x, dtype, name), x)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_batch_of_empty_experts():
    x = random_group_problem([0] * 255 + [3], 64, 64, "cuda")
    for name in _cuda_kernels():
        _check(_run(x, torch.bfloat16, name), x)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bad_metadata_skipped():
    """An expert whose metadata breaks the contract is not computed (its rows
    keep the poison); the others are right (docs/SPEC-MOE.md §5.0.3)."""
    x = random_group_problem([4, 40, 4], 64, 64, "cuda", torch.Generator().manual_seed(4))
    x["sf_offsets"][1] = 64  # not a multiple of 128
    out = _run(x, torch.bfloat16).cpu()
    assert (out[4:44].view(torch.uint8) == 0xA5).all()
    x["problem_sizes"][1, 0] = 0
    ref, _ = group_gemm_ref(*[x[k] for k in ARGS])
    for lo in (0, 44):
        assert relative_error(out[lo:lo + 4].double(), ref[lo:lo + 4]) <= LIMIT


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_graph_changing_routing():
    """Capture once, rewrite problem sizes / offsets in place between replays."""
    E, N, K, M = 16, 128, 256, 200
    g = torch.Generator().manual_seed(11)
    x = random_group_problem(_counts(E, M, 1), N, K, "cuda", g)
    out = torch.empty(M, N, dtype=torch.bfloat16, device="cuda")
    args = [x[k] for k in ARGS]
    mm.cutlass_fp4_group_mm(out, *args)  # warm-up (lazy init outside the capture)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        mm.cutlass_fp4_group_mm(out, *args)
    for seed in (2, 3, 4):
        y = random_group_problem(_counts(E, M, seed), N, K, "cuda", torch.Generator().manual_seed(seed))
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
