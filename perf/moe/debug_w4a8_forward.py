"""Stage-by-stage CPU vs CUDA comparison of w4a8_moe_forward (the 4 CUDA
failures of test_w4a8_forward at 71a81f2). Device script, perf/ only."""
import sys
import torch
import lowbit.moe as moe
from lowbit.moe import w4a8 as W
sys.path.insert(0, "packages/moe/tests")
from test_layers import _layer, LAYERS  # noqa: E402


def cmp(name, a, b, rows=None):
    a, b = a.cpu(), b.cpu()
    if rows is not None:
        a, b = a[:rows], b[:rows]
    if a.dtype in (torch.float8_e4m3fn, torch.int32, torch.uint8, torch.int64):
        av = a.view(torch.uint8) if a.dtype == torch.float8_e4m3fn else a
        bv = b.view(torch.uint8) if b.dtype == torch.float8_e4m3fn else b
        ne = (av != bv).sum().item()
        print(f"  {name}: {tuple(a.shape)} {a.dtype} differing elements {ne}/{a.numel()}")
        if ne and a.dtype == torch.float8_e4m3fn:
            idx = (av != bv).nonzero()[:5]
            print("    first:", [(tuple(i.tolist()), a[tuple(i)].float().item(), b[tuple(i)].float().item()) for i in idx])
        return
    af, bf = a.float(), b.float()
    fin = torch.isfinite(af) & torch.isfinite(bf)
    rel = ((af[fin] - bf[fin]).norm() / (bf[fin].norm() + 1e-30)).item()
    print(f"  {name}: {tuple(a.shape)} {a.dtype} rel {rel:.3e} max abs {(af[fin]-bf[fin]).abs().max().item() if fin.any() else 0:.3e} "
          f"nonfinite cpu {(~torch.isfinite(af)).sum().item()} cuda {(~torch.isfinite(bf)).sum().item()}")


for (E, topk, H, inter, m, invalid) in LAYERS:
    print(f"E={E} topk={topk} H={H} I={inter} m={m} invalid={invalid}")
    x, ids, w, w13, w2 = _layer(E, topk, H, inter, m, "cpu", seed=E + m, invalid=invalid)
    res = {}
    for dev in ("cpu", "cuda"):
        xd, idsd, wd = x.to(dev), ids.to(dev), w.to(dev)
        p13 = moe.quantize_experts_w4a8(w13.to(dev)); p2 = moe.quantize_experts_w4a8(w2.to(dev))
        group_mm = __import__("lowbit.w4a8_mm", fromlist=["x"]).cutlass_w4a8_moe_mm
        r = moe.route(idsd, E, inter, H)
        off64, ps1, ps2 = W.w4a8_problem_sizes(r, E, inter, H)
        a_q, a_s = moe.per_token_fp8_quant(xd)
        perm = r.input_permutation
        sa, ss = moe.shuffle_rows(a_q, perm), moe.shuffle_rows(a_s, perm)
        c1 = W.w4a8_expert_gemm(group_mm, sa, ss, p13, off64, ps1)
        h_q, h_s = moe.silu_and_mul_per_token_fp8_quant(c1)
        c3 = W.w4a8_expert_gemm(group_mm, h_q, h_s, p2, off64, ps2)
        out = moe.combine(c3, r.output_permutation, wd)
        full = moe.w4a8_moe_forward(xd, idsd, wd, p13, p2)
        res[dev] = dict(p13w=p13.weight, p13g=p13.group_scales, p13c=p13.channel_scales,
                        p2w=p2.weight, off=off64, ps1=ps1, ps2=ps2, perm=perm, a_q=a_q, a_s=a_s,
                        sa=sa, ss=ss, c1=c1, h_q=h_q, h_s=h_s, c3=c3, out=out, full=full)
    valid = int(res["cpu"]["off"][-1])
    print(f"  valid routed rows {valid} of {res['cpu']['c1'].shape[0]}")
    for k in res["cpu"]:
        rows = valid if k in ("sa", "ss", "c1", "h_q", "h_s", "c3") else None
        try:
            cmp(k, res["cpu"][k], res["cuda"][k], rows)
        except Exception as e:  # noqa: BLE001
            print(f"  {k}: compare failed {e}")
    # the cuda GEMM fed with cpu's inputs, to isolate the GEMM
    c1x = W.w4a8_expert_gemm(group_mm, res["cpu"]["sa"].cuda(), res["cpu"]["ss"].cuda(),
                             moe.quantize_experts_w4a8(w13.cuda()), res["cpu"]["off"].cuda(), res["cpu"]["ps1"].cuda())
    cmp("c1 (cuda gemm on cpu inputs)", res["cpu"]["c1"], c1x, valid)
