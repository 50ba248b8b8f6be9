from . import CALLS

# The package's own spelling of the model names (the command maps to it).
MODELS = {"llama3-8b": ["N=64 K=128"], "llama3-70b": ["N=128 K=64"]}
IMPLS = {"lowbit": 1.0, "torch.mm bf16": 1.5, "copy floor": 0.5}


def run(device, *, models=None, quick=False, progress=None):
    CALLS.append(("bench", str(device), models, quick))
    shapes = [s for m in (models or MODELS) for s in MODELS[m]]  # KeyError on a foreign name
    rows = []
    for op, unit in (("fake_gemm", "TFLOP/s"), ("fake_quant", "TB/s")):
        for shape in shapes:
            for m in (1, 16) if quick else (1, 16, 64, 256):
                if progress:
                    progress(f"{op} {shape} M={m}")
                for impl, factor in IMPLS.items():
                    us = factor * (10.0 + m)
                    rows.append({"package": "fake", "op": op, "shape": shape, "M": m, "impl": impl,
                                 "us": us, "metric": 100.0 * m / us, "metric_name": unit})
    return rows
