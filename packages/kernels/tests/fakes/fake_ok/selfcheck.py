import torch

from . import CALLS


def run(device):
    CALLS.append(("selfcheck", str(device)))
    x = torch.randn(64, 128, device=device)
    err = (x - x.clone()).abs().max().item()
    return [
        {"op": "fake_quant", "problem": "M=64 N=128 bf16", "passed": True,
         "metric": "max_abs_err", "value": err, "limit": 0.0},
        {"op": "fake_gemm", "problem": "M=64 N=64 K=128", "passed": True,
         "metric": "rel_err", "value": 1.5e-3, "limit": 1e-2},
    ]
