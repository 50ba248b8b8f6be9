"""The W4A8 (docs/SPEC-MOE.md §5.9.3) and MXFP4 (§5.9.2) MoE layers: each
forward against the same quantization steps done route by route in torch
(lowbit.testing.moe.quantized_moe_ref: the chaining, offsets, scale regions
and combine; tight) and against a bf16 torch MoE on the dequantized weights
(vLLM's 0.1 bar; the error is printed), zero-row experts, invalid ids,
torch.compile, and CUDA-graph capture with changing routing."""

from __future__ import annotations

import pytest
import torch

import lowbit.moe as moe
from lowbit.moe._layer import format_unavailable
from lowbit.testing import moe as ref
from lowbit.testing import w4a8 as w4a8_ref


def _devices(fmt):
    """CPU, plus CUDA where the format's family has kernels for this GPU; a
    skipped CPU case names what is missing (family not installed, too old)."""
    why = format_unavailable(fmt, "cpu")
    if why:
        return [pytest.param("cpu", marks=pytest.mark.skip(reason=why))]
    gpu = torch.cuda.is_available() and format_unavailable(fmt, "cuda") is None
    return ["cpu"] + (["cuda"] if gpu else [])


W4A8_DEVICES = _devices("w4a8")
MXFP4_DEVICES = _devices("mxfp4")

# (E, topk, H, I, m, share of invalid ids): one expert; uneven; many zero-row experts
LAYERS = [(1, 1, 128, 128, 5, 0.0), (8, 2, 256, 128, 33, 0.1), (64, 2, 128, 256, 7, 0.2),
          (20, 6, 256, 128, 64, 0.0)]


def _layer(E, topk, H, inter, m, device, seed=0, invalid=0.0):
    g = torch.Generator().manual_seed(seed)
    w13 = (torch.randn(E, 2 * inter, H, generator=g) / H**0.5).to(torch.bfloat16).to(device)
    w2 = (torch.randn(E, H, inter, generator=g) / inter**0.5).to(torch.bfloat16).to(device)
    x = torch.randn(m, H, generator=g).to(torch.bfloat16).to(device)
    ids = torch.stack([torch.randperm(E, generator=g)[:topk] if topk <= E else
                       torch.randint(0, E, (topk,), generator=g) for _ in range(m)])
    bad = torch.rand(m, topk, generator=g) < invalid
    ids = torch.where(bad, torch.where(torch.rand(m, topk, generator=g) < 0.5, -1, E), ids)
    w = torch.softmax(torch.randn(m, topk, generator=g), -1).to(device)
    return x, ids.to(torch.int32).to(device), w, w13, w2


def _w4a8_deq(w):
    """The dense W4A8 reference quantization of each expert, dequantized:
    e4m3(q * s) * ch, float32 [E, N, K]."""
    out = []
    for e in range(w.shape[0]):
        q, s, ch = w4a8_ref.quantize_weight(w[e].cpu())
        out.append(w4a8_ref.dequantize_weight(q, s).float() * ch.unsqueeze(1))
    return torch.stack(out)


def _check(out, x, ids, w, deq13, deq2, qdq, label):
    same = ref.quantized_moe_ref(x.cpu(), ids.cpu(), w.cpu(), deq13, deq2, qdq, qdq).float()
    bf16 = ref.torch_moe_ref(x.cpu(), ids.cpu(), w.cpu(), deq13.to(torch.bfloat16),
                             deq2.to(torch.bfloat16)).float()
    o = out.cpu().float()
    rel_same = ((o - same).norm() / same.norm()).item()
    rel_bf16 = ((o - bf16).norm() / bf16.norm()).item()
    print(f"{label}: vs bf16 MoE rel {rel_bf16:.4f} max abs {(o - bf16).abs().max().item():.4f}; "
          f"vs route-by-route quantized math rel {rel_same:.2e}")
    assert rel_same < 1e-2
    torch.testing.assert_close(o, bf16, atol=0.1, rtol=0.1)
    dead = (ids.cpu() < 0) | (ids.cpu() >= deq13.shape[0])
    assert torch.equal(o[dead.all(dim=1)], torch.zeros_like(o[dead.all(dim=1)]))


# ----------------------------------------------------------------- W4A8
@pytest.mark.parametrize("device", W4A8_DEVICES)
def test_quantize_experts_w4a8(device):
    w = (torch.randn(3, 64, 256) / 16).to(torch.bfloat16).to(device)
    p = moe.quantize_experts_w4a8(w)
    assert p.weight.shape == (3, 64, 32) and p.weight.dtype == torch.int32
    assert p.b_strides.tolist() == [[4, 8, 2048]] * 3
    assert p.channel_scales.shape == (3, 64) and p.group_size == 128
    assert p.group_scales.numel() == 3 * 2 * 64 * 8
    assert p.a_strides.tolist() == [256] * 3 and p.c_strides.tolist() == [64] * 3
    assert p.group_scale_strides.tolist() == [[64, 0]] * 3


@pytest.mark.parametrize("device", W4A8_DEVICES)
@pytest.mark.parametrize("E,topk,H,inter,m,invalid", LAYERS)
def test_w4a8_forward(device, E, topk, H, inter, m, invalid):
    x, ids, w, w13, w2 = _layer(E, topk, H, inter, m, device, seed=E + m, invalid=invalid)
    out = moe.w4a8_moe_forward(x, ids, w, moe.quantize_experts_w4a8(w13),
                               moe.quantize_experts_w4a8(w2))
    assert out.shape == x.shape and out.dtype == torch.bfloat16
    _check(out, x, ids, w, _w4a8_deq(w13), _w4a8_deq(w2), ref.per_token_fp8_qdq,
           f"w4a8 E={E} topk={topk} H={H} I={inter} m={m}")


def test_w4a8_forward_rejects_fp16():
    x, ids, w, w13, w2 = _layer(2, 1, 128, 128, 3, "cpu")
    with pytest.raises(ValueError, match="'x'.*bfloat16"):
        moe.w4a8_moe_forward(x.half(), ids, w, moe.quantize_experts_w4a8(w13),
                             moe.quantize_experts_w4a8(w2))


# ----------------------------------------------------------------- MXFP4
def _mx_qdq(e, v):
    return ref.mx_qdq(v)


@pytest.mark.parametrize("device", MXFP4_DEVICES)
@pytest.mark.parametrize("E,topk,H,inter,m,invalid", LAYERS)
def test_mxfp4_forward(device, E, topk, H, inter, m, invalid):
    x, ids, w, w13, w2 = _layer(E, topk, H, inter, m, device, seed=E + m, invalid=invalid)
    q13, s13 = moe.quantize_experts_mxfp4(w13)
    q2, s2 = moe.quantize_experts_mxfp4(w2)
    out = moe.mxfp4_moe_forward(x, ids, w, q13, s13, q2, s2)
    assert out.shape == x.shape and out.dtype == x.dtype
    deq13, deq2 = ref.dequantize_experts_mxfp4(q13, s13), ref.dequantize_experts_mxfp4(q2, s2)
    # vLLM's bar is for its weights; MXFP4 activations lose more than NVFP4's
    same = ref.quantized_moe_ref(x.cpu(), ids.cpu(), w.cpu(), deq13, deq2, _mx_qdq, _mx_qdq)
    o, same = out.cpu().float(), same.float()
    rel_same = ((o - same).norm() / same.norm()).item()
    bf16 = ref.torch_moe_ref(x.cpu(), ids.cpu(), w.cpu(), deq13.to(torch.bfloat16),
                             deq2.to(torch.bfloat16)).float()
    rel_bf16 = ((o - bf16).norm() / bf16.norm()).item()
    print(f"mxfp4 E={E} m={m}: vs bf16 MoE rel {rel_bf16:.4f}; vs route-by-route rel "
          f"{rel_same:.2e}")
    assert rel_same < 1e-2 and rel_bf16 < 0.3
    dead = ((ids.cpu() < 0) | (ids.cpu() >= E)).all(dim=1)
    assert torch.equal(o[dead], torch.zeros_like(o[dead]))


# ----------------------------------------------------------------- compile and graphs
def _prepared(fmt, device, E=16, topk=4, H=128, inter=128, m=24):
    x, ids, w, w13, w2 = _layer(E, topk, H, inter, m, device, seed=3, invalid=0.1)
    if fmt == "w4a8":
        return moe.w4a8_moe_forward, x, ids, w, (moe.quantize_experts_w4a8(w13),
                                                 moe.quantize_experts_w4a8(w2))
    q13, s13 = moe.quantize_experts_mxfp4(w13)
    q2, s2 = moe.quantize_experts_mxfp4(w2)
    return moe.mxfp4_moe_forward, x, ids, w, (q13, s13, q2, s2)


FORMAT_DEVICES = [pytest.param("w4a8", d, id=f"w4a8-{getattr(d, 'values', [d])[0]}")
                  for d in W4A8_DEVICES] + \
                 [pytest.param("mxfp4", d, id=f"mxfp4-{getattr(d, 'values', [d])[0]}")
                  for d in MXFP4_DEVICES]


@pytest.mark.parametrize("fmt,device", FORMAT_DEVICES)
def test_compile_fullgraph(fmt, device):
    torch._dynamo.reset()
    fwd, x, ids, w, args = _prepared(fmt, device)
    want = fwd(x, ids, w, *args)
    got = torch.compile(fwd, fullgraph=True)(x, ids, w, *args)
    # inductor fuses the weighted sum (FMA, another order): equal up to rounding
    torch.testing.assert_close(got.float(), want.float(), rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("fmt,device", [p for p in FORMAT_DEVICES if "cuda" in p.id])
def test_cuda_graph_changing_routing(fmt, device):
    fwd, x, ids, w, args = _prepared(fmt, device, E=32, topk=4, m=64)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        fwd(x, ids, w, *args)
    stream.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=stream):
        out = fwd(x, ids, w, *args)
    g = torch.Generator().manual_seed(5)
    for _ in range(3):
        ids.copy_(torch.randint(-1, 33, ids.shape, generator=g).to(torch.int32))
        graph.replay()
        torch.cuda.synchronize()
        assert torch.equal(out, fwd(x, ids, w, *args))  # deterministic: bit-identical
