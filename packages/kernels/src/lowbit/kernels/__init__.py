"""lowbit-kernels: installs every lowbit kernel package and provides the
`lowbit` command (`lowbit info | check | bench`, see ``lowbit.kernels.cli``).

Import is light (no torch): the kernel packages themselves are
``lowbit.nvfp4_quant``, ``lowbit.nvfp4_mm`` and ``lowbit.w4a8_mm``.
"""

from __future__ import annotations

__version__ = "0.1.0"

from ._families import KNOWN_FAMILIES, TARGETS, Family, discover, runs_here  # noqa: E402

__all__ = ["KNOWN_FAMILIES", "TARGETS", "Family", "discover", "runs_here", "__version__"]
