"""opcheck, torch.compile(fullgraph=True) through the fakes, and CUDA-graph
capture/replay with changing routing (SPEC-MOE §5.0.3, §5.10.3)."""

from __future__ import annotations

import pytest
import torch

import lowbit.moe as moe
from lowbit.testing import moe as ref
from lowbit.testing.checks import devices, needs_cuda

ops = torch.ops.lowbit_moe
DEVICES = devices()


def _data_args(device, m=9, topk=3, E=6, blockscale=True, sorted_ids=True, dtype=torch.int32):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(-1, E + 1, (m, topk), generator=g).to(dtype).to(device)
    i32 = lambda *s: torch.zeros(*s, dtype=torch.int32, device=device)  # noqa: E731
    return (ids, i32(E + 1), i32(E, 3), i32(E, 3), i32(m * topk), i32(m * topk), E, 32, 64,
            i32(E + 1) if blockscale else None, True, i32(m * topk) if sorted_ids else None)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("blockscale,sorted_ids", [(True, True), (False, False)])
@pytest.mark.parametrize("dtype", [torch.int32, torch.int64])
def test_opcheck_moe_data(device, blockscale, sorted_ids, dtype):
    torch.library.opcheck(ops.get_cutlass_moe_mm_data,
                          _data_args(device, blockscale=blockscale, sorted_ids=sorted_ids,
                                     dtype=dtype))


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck_problem_sizes_and_shuffle(device):
    off = torch.tensor([0, 3, 3, 10], dtype=torch.int64, device=device)
    ps = [torch.zeros(3, 3, dtype=torch.int32, device=device) for _ in range(2)]
    torch.library.opcheck(ops.get_cutlass_moe_mm_problem_sizes_from_expert_offsets,
                          (off, *ps, 16, 32, False))
    x = torch.randn(5, 16, device=device)
    idx = torch.tensor([4, -1, 0, 9, 2], dtype=torch.int32, device=device)
    torch.library.opcheck(ops.shuffle_rows, (x, idx, torch.empty(5, 16, device=device)))


def _layer_glue(x, ids, w):
    # what an MoE layer runs around its grouped GEMMs (the GEMMs stand in as identity)
    r = moe.route(ids, 8, 32, x.shape[1])
    a = moe.shuffle_rows(x, r.input_permutation)
    return moe.combine(a * 2, r.output_permutation, w), r.expert_offsets


@pytest.mark.parametrize("device", DEVICES)
def test_compile_fullgraph(device):
    torch._dynamo.reset()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 64, generator=g).to(device)
    ids = torch.randint(-1, 9, (12, 2), generator=g).to(torch.int32).to(device)
    w = torch.rand(12, 2, generator=g).to(device)
    want = _layer_glue(x, ids, w)
    got = torch.compile(_layer_glue, fullgraph=True)(x, ids, w)
    # inductor may fuse the weighted sum (FMA, another order): same up to rounding
    torch.testing.assert_close(got[0], want[0], rtol=1e-6, atol=1e-6)
    assert torch.equal(got[1], want[1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
@pytest.mark.parametrize("m", [1, 64, 4096])
def test_cuda_graph_changing_routing(m):
    E, topk, H = 64, 8, 256
    ids = torch.zeros(m, topk, dtype=torch.int32, device="cuda")
    x = torch.randn(m, H, device="cuda", dtype=torch.bfloat16)
    w = torch.rand(m, topk, device="cuda")
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        _layer_glue(x, ids, w)  # warm-up on the capture stream
    stream.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=stream):
        out, off = _layer_glue(x, ids, w)
    g = torch.Generator().manual_seed(m)
    for _ in range(3):
        new = torch.randint(-1, E, (m, topk), generator=g).to(torch.int32)
        ids.copy_(new)
        graph.replay()
        torch.cuda.synchronize()
        # only experts < 8 are valid in _layer_glue (num_experts = 8)
        want8 = ref.moe_mm_data_ref(new, 8, 32, H)
        assert torch.equal(off.cpu(), want8["expert_offsets"])
        r = ref.combine_ref((ref.shuffle_rows_ref(x.cpu(), want8["input_permutation"]) * 2),
                            want8["output_permutation"], w.cpu())
        assert torch.equal(out.cpu(), r)


@needs_cuda
def test_non_default_stream_and_device():
    dev = torch.device("cuda", torch.cuda.device_count() - 1)
    s = torch.cuda.Stream(device=dev)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(-1, 33, (700, 8), generator=g)
    with torch.cuda.stream(s):
        r = moe.route(ids.to(dev), 32, 64, 64)
    s.synchronize()
    want = ref.moe_mm_data_ref(ids, 32, 64, 64)
    assert torch.equal(r.input_permutation.cpu(), want["input_permutation"])
