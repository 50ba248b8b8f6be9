"""The machine the command runs on: torch/CUDA versions, the device, model names."""

from __future__ import annotations

import platform
import re

from ._families import SUPPORT_DISTS, dist_version

# SPEC §4 model names as the packages' bench.run(models=...) receives them.
MODELS = ("Llama-3-8B", "Llama-3-70B", "Llama-3.1-405B", "Qwen2.5-72B", "DeepSeek-R1")
_ALIASES = {"llama3405b": "Llama-3.1-405B", "deepseekr1moe": "DeepSeek-R1", "deepseek": "DeepSeek-R1"}


class UserError(Exception):
    """A mistake on the command line: printed as one line, exit status 2."""


def _key(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", s.lower())


def canonical_model(name: str) -> str | None:
    """'llama3-8b', 'LLAMA-3-8B', 'llama-3.1-405b' -> the SPEC spelling; None if unknown."""
    table = {_key(m): m for m in MODELS} | _ALIASES
    return table.get(_key(str(name)))


def same_model(a: str, b: str) -> bool:
    ca = canonical_model(a)
    return _key(a) == _key(b) or (ca is not None and ca == canonical_model(b))


def package_models(bench_module) -> list[str] | None:
    """The model names a package's bench knows (its MODELS dict/list), or None."""
    models = getattr(bench_module, "MODELS", None)
    if isinstance(models, (dict, list, tuple)) and models:
        return [str(m) for m in models]
    return None


def parse_device(text: str | None):
    """The torch.device to run on; default cuda when available, else cpu."""
    import torch

    if text is None:
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")
    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise UserError(f"invalid device '{text}' (use cpu, cuda or cuda:N)") from None
    if dev.type == "cpu":
        return torch.device("cpu")
    if dev.type != "cuda":
        raise UserError(f"device '{text}' is not supported (use cpu, cuda or cuda:N)")
    if not torch.cuda.is_available():
        why = "torch was built without CUDA" if torch.version.cuda is None else "no GPU is visible"
        raise UserError(f"--device {text}: CUDA is not available ({why}); use --device cpu")
    index = torch.cuda.current_device() if dev.index is None else dev.index
    if index >= torch.cuda.device_count():
        raise UserError(f"--device {text}: only {torch.cuda.device_count()} CUDA device(s) visible")
    return torch.device("cuda", index)


def capability(device) -> tuple[int, int] | None:
    import torch

    return None if device.type == "cpu" else tuple(torch.cuda.get_device_capability(device))


def describe_device(device) -> dict:
    import torch

    if device.type == "cpu":
        return {"device": "cpu", "name": platform.processor() or platform.machine(),
                "capability": None, "target": "CPU"}
    props = torch.cuda.get_device_properties(device)
    major, minor = props.major, props.minor
    from ._families import target_of_capability

    return {
        "device": str(device),
        "name": props.name,
        "capability": f"{major}.{minor}",
        "sm": f"sm_{major}{minor}",
        "target": target_of_capability(major),
        "sms": props.multi_processor_count,
        "memory_gib": round(props.total_memory / 2**30, 1),
    }


def device_line(d: dict) -> str:
    if d["device"] == "cpu":
        return f"cpu ({d['name']})" if d["name"] else "cpu"
    target = d["target"] or "no lowbit target"
    return (f"{d['device']} {d['name']} ({d['sm']}, {target}, {d['sms']} SMs, "
            f"{d['memory_gib']} GiB)")


def environment(device) -> dict:
    import torch

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "gpus": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        "device": describe_device(device),
        "support_packages": {d: dist_version(d) for d in SUPPORT_DISTS},
    }
