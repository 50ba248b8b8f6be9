"""Discovery of the installed lowbit kernel packages ("families") and the
protocol the `lowbit` command uses on them (docs/DEVELOPING.md).

A family is found through its entry point in the group "lowbit.families"
(``<family> = "lowbit.<family>"`` in its pyproject.toml), so a new package is
seen without any list here. Protocol:

    lowbit.<family>.OPS              {op: ("CPU", "SM90", ...)}
    lowbit.<family>.build_info()     {"cuda_archs": [...], "torch_built_against": ...}
    lowbit.<family>.selfcheck.run(device) -> [{"op", "problem", "passed", "metric", "value", "limit"}]
    lowbit.<family>.bench.run(device, *, models, quick, progress) -> [{"package", "op", "shape", "M", ...}]

Nothing here imports torch, so `lowbit --help` stays fast.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import traceback
from dataclasses import dataclass, field
from types import ModuleType

ENTRY_POINT_GROUP = "lowbit.families"
TARGETS = ("CPU", "SM90", "SM100", "SM120")
# Packages that are not kernel families but belong to the installation.
SUPPORT_DISTS = ("lowbit-kernels", "lowbit-cutlass-ext", "lowbit-testing")


class ProtocolError(Exception):
    """A kernel package does not implement the protocol the command needs."""


def one_line(exc: BaseException) -> str:
    """`Type: first line of the message` (kernel errors can be long)."""
    msg = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {msg[0]}" if msg else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def dist_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


@dataclass
class Family:
    name: str  # "nvfp4_quant"
    module_name: str  # "lowbit.nvfp4_quant"
    dist: str  # "lowbit-nvfp4-quant"
    status: str = "not installed"  # | "ok" | "import failed"
    error: str | None = None
    traceback: str | None = None
    version: str | None = None
    module: ModuleType | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def installed(self) -> bool:
        return self.status != "not installed"

    # -- protocol accessors; each raises ProtocolError with a clear message --
    def ops(self) -> dict[str, tuple[str, ...]]:
        ops = getattr(self.module, "OPS", None)
        if not isinstance(ops, dict):
            raise ProtocolError(f"{self.module_name} has no OPS dict")
        out = {}
        for op, targets in ops.items():
            targets = (targets,) if isinstance(targets, str) else tuple(targets)
            out[str(op)] = tuple(t for t in targets if t in TARGETS)
        return out

    def build_info(self) -> dict:
        fn = getattr(self.module, "build_info", None)
        if not callable(fn):
            raise ProtocolError(f"{self.module_name} has no build_info()")
        info = fn()
        if not isinstance(info, dict):
            raise ProtocolError(f"{self.module_name}.build_info() did not return a dict")
        return info

    def submodule(self, name: str):
        """`lowbit.<family>.<name>` (selfcheck / bench), imported on demand."""
        mod = getattr(self.module, name, None)
        if mod is None:
            try:
                mod = importlib.import_module(f"{self.module_name}.{name}")
            except ModuleNotFoundError as e:
                if e.name == f"{self.module_name}.{name}":
                    raise ProtocolError(f"{self.module_name} has no {name} module") from None
                raise
        if not callable(getattr(mod, "run", None)):
            raise ProtocolError(f"{self.module_name}.{name} has no run()")
        return mod


def family_specs() -> list[tuple[str, str]]:
    """(name, module) of every installed family, sorted by name: the entry
    points of the group "lowbit.families". Tests replace this function."""
    eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    specs = {ep.name: ep.value.strip() for ep in eps}
    return sorted(specs.items())


def load_family(name: str, module_name: str) -> Family:
    fam = Family(name, module_name, "lowbit-" + name.replace("_", "-"))
    fam.version = dist_version(fam.dist)
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        spec = None
    # A bare source directory without __init__.py imports as an empty namespace
    # package: that is "not installed", not a package to run.
    if spec is None or spec.origin in (None, "namespace"):
        if fam.version is not None:
            fam.status = "import failed"
            fam.error = f"{fam.dist} {fam.version} is installed but {module_name} cannot be found"
        return fam
    try:
        fam.module = importlib.import_module(module_name)
    except Exception as e:  # a broken build must be reported, never crash the command
        fam.status = "import failed"
        fam.error = one_line(e)
        fam.traceback = traceback.format_exc()
        return fam
    fam.status = "ok"
    if fam.version is None:
        fam.version = getattr(fam.module, "__version__", None)
    return fam


def discover(specs: list[tuple[str, str]] | None = None) -> list[Family]:
    """Every family of `specs` (default: the installed ones), imported."""
    return [load_family(n, m) for n, m in (specs if specs is not None else family_specs())]


def normalize_name(name: str) -> str:
    """'lowbit-nvfp4-mm', 'lowbit.nvfp4_mm', 'nvfp4-mm' -> 'nvfp4_mm'."""
    n = name.strip().lower()
    for prefix in ("lowbit-", "lowbit.", "lowbit_"):
        if n.startswith(prefix):
            n = n[len(prefix):]
    return n.replace("-", "_")


# --- where an op runs (mirrors lowbit::target_for / arch_built in arch.h) ---

def target_of_capability(major: int) -> str | None:
    return {9: "SM90", 10: "SM100", 12: "SM120"}.get(major)


def arch_built(archs, sm: int) -> bool:
    return any(str(a) in (f"{sm}a", f"{sm}f", f"{sm}") for a in archs or ())


def runs_here(op_targets, cuda_archs, capability: tuple[int, int] | None) -> tuple[bool, str]:
    """(runs, reason) for an op with kernels for `op_targets`, built for
    `cuda_archs`, on a device of `capability` (None = CPU)."""
    if capability is None:
        return ("CPU" in op_targets, "" if "CPU" in op_targets else "no CPU kernel")
    major, minor = capability
    sm = 10 * major + minor
    target = target_of_capability(major)
    if target is None:
        return False, f"no lowbit kernels for sm_{sm}"
    if target not in op_targets:
        return False, f"no {target} kernel"
    if not arch_built(cuda_archs, sm):
        return False, f"not compiled for sm_{sm}"
    return True, ""
