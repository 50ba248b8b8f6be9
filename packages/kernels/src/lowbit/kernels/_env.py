"""The machine the command runs on: torch/CUDA versions, the device."""

from __future__ import annotations

import platform

from ._families import SUPPORT_DISTS, dist_version, target_of_capability


class UserError(Exception):
    """A mistake on the command line: printed as one line, exit status 2."""


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
