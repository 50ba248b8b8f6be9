"""Shared support for lowbit kernel packages.

At build time: where the stable-ABI torch <-> CUTLASS/CuTe headers, the CMake
module and the CUTLASS headers are (``include_dir()``, ``cmake_dir()``,
``cutlass_include_dirs()``); the hatch build hook lives in ``.hatch_plugin``.
At run time, for the kernel packages' compiled extensions and Python
wrappers: ``load_ops_library()``, ``build_info()``, ``family_build_info()``,
``built_targets()``, ``targets_where()``, ``device_capability()``,
``kernel_names_query()``, and the little arithmetic they share
(``round_up()``, ``expert_offsets()``).
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Callable

__version__ = "0.1.0"

_HERE = Path(__file__).resolve().parent

# The CUTLASS release the headers come from (nvidia-cutlass wheel); the pin is
# in this package's pyproject ([build] extra).
CUTLASS_PIN = "4.2.0.0"


def include_dir() -> Path:
    """Directory holding ``lowbit/*.h`` (add it with -I)."""
    return _HERE / "include"


def cmake_dir() -> Path:
    """Directory holding ``LowbitCutlassExtConfig.cmake`` (for -DLowbitCutlassExt_DIR)."""
    return _HERE / "cmake"


def _cutlass_root() -> Path | None:
    spec = importlib.util.find_spec("cutlass_library")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def cutlass_include_dirs() -> list[Path]:
    """CUTLASS/CuTe include directories from the installed nvidia-cutlass wheel."""
    root = _cutlass_root()
    if root is None:
        raise RuntimeError(
            "nvidia-cutlass is not installed; install 'lowbit-cutlass-ext[build]' "
            f"(it pins nvidia-cutlass=={CUTLASS_PIN})"
        )
    return [root / "source" / "include", root / "source" / "tools" / "util" / "include"]


def cutlass_version() -> str | None:
    """Version of the CUTLASS headers found (e.g. '4.2.0'), or None if absent."""
    root = _cutlass_root()
    if root is None:
        return None
    text = (root / "source" / "include" / "cutlass" / "version.h").read_text()
    parts = [re.search(rf"#define CUTLASS_{k} (\d+)", text) for k in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(p.group(1) for p in parts if p)


def load_ops_library(package_dir: str | Path, name: str = "_C") -> Path:
    """Load a kernel package's stable-ABI extension ``<name>*.so`` from ``package_dir``.

    Registers its ops with torch (``torch.ops.load_library``). Returns the path.
    """
    import torch

    package_dir = Path(package_dir)
    candidates = sorted(package_dir.glob(f"{name}*.so"))
    if not candidates:
        raise ImportError(
            f"lowbit: compiled extension {name}.so not found in {package_dir}; the package was "
            "installed without its build step (install it as a wheel, not editable)"
        )
    torch.ops.load_library(str(candidates[0]))
    return candidates[0]


def build_info(package_dir: str | Path, name: str = "_C") -> dict:
    """What a kernel package's extension was built with (CUDA archs, torch)."""
    path = Path(package_dir) / f"{name}_build_info.json"
    if not path.exists():
        return {"cuda_archs": [], "missing": True}
    return json.loads(path.read_text())


def family_build_info(package_dir: str | Path, name: str = "_C") -> Callable[[], dict]:
    """A kernel package's ``build_info()`` of the ``lowbit`` command's protocol
    (docs/DEVELOPING.md): ``build_info = family_build_info(_HERE)``."""

    def build_info_of_package() -> dict:
        """What this build contains (written by the CMake module): the CUDA
        archs that received device code, the torch it was built against."""
        return build_info(package_dir, name)

    build_info_of_package.__name__ = build_info_of_package.__qualname__ = "build_info"
    return build_info_of_package


# Kernel family of each CUDA architecture's major version (mirrors arch.h).
_FAMILY_OF_MAJOR = {"9": "SM90", "10": "SM100", "12": "SM120"}
# One compute capability (10 * major + minor) of each kernel family.
_FAMILY_CAPABILITY = {"SM90": 90, "SM100": 100, "SM120": 120}


def built_targets(package_dir: str | Path, name: str = "_C") -> tuple[str, ...]:
    """"CPU" plus the kernel families (SM90, SM100, SM120) whose architectures
    received device code in a package's build, in that order."""
    majors = {str(a).rstrip("af")[:-1] for a in build_info(package_dir, name).get("cuda_archs", [])}
    return ("CPU",) + tuple(f for m, f in _FAMILY_OF_MAJOR.items() if m in majors)


def targets_where(has_kernel: Callable[[int], object]) -> tuple[str, ...]:
    """"CPU" plus the kernel families (SM90, SM100, SM120) for whose compute
    capability (90, 100, 120) ``has_kernel(capability)`` is true, in that order:
    an op's targets from the op's own "supported" / kernel-names query."""
    return ("CPU",) + tuple(f for f, cap in _FAMILY_CAPABILITY.items() if has_kernel(cap))


def device_capability(device) -> int:
    """10 * major + minor of a CUDA device, 0 for the CPU: the capability the
    packages' kernel-name queries take."""
    import torch

    device = torch.device(device)
    if device.type == "cpu":
        return 0
    major, minor = torch.cuda.get_device_capability(device)
    return 10 * major + minor


def kernel_names_query(names_op: Callable[[int], list[str]], by_name_op: str) -> Callable[..., list[str]]:
    """A package's ``kernel_names(device="cpu") -> list[str]`` from its private
    op ``names_op(capability)``: the names of the kernels this build has for the
    device's target, which tests and benchmarks pass to ``by_name_op``."""

    def kernel_names(device="cpu") -> list[str]:
        return list(names_op(device_capability(device)))

    kernel_names.__doc__ = (f"Names of the kernels this build has for the device's target (tests and "
                            f"benchmarks pass one to the private op ``{by_name_op}``).")
    return kernel_names


def round_up(a: int, b: int) -> int:
    """a rounded up to a multiple of b."""
    return (a + b - 1) // b * b


def expert_offsets(counts):
    """Per-expert row counts ``[E]`` (a tensor) -> (row offsets, scale-row
    offsets), int32 ``[E+1]`` each on counts' device: the cumulative sums of
    m_e and of round_up(m_e, 128), i.e. the canonical scale regions of the
    experts-quant ops and grouped GEMMs (docs/SPEC-MOE.md §5.1.3); no host
    sync. vLLM names them input_offset_by_experts / expert_offsets and
    output_scale_offset_by_experts / blockscale_offsets."""
    import torch

    c = counts.to(torch.int64)
    z = torch.zeros(1, dtype=torch.int64, device=c.device)
    off = torch.cat([z, c.cumsum(0)]).to(torch.int32)
    sf = torch.cat([z, ((c + 127) // 128 * 128).cumsum(0)]).to(torch.int32)
    return off, sf
