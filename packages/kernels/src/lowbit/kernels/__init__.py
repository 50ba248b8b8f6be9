"""lowbit-kernels: installs every lowbit kernel package and provides the
`lowbit` command (`lowbit info | check | bench`, see ``lowbit.kernels.cli``).

Import is light (no torch). The kernel packages ("families", e.g.
``lowbit.nvfp4_quant``) are found through the entry point group
"lowbit.families" (docs/DEVELOPING.md).
"""

from __future__ import annotations

__version__ = "0.1.0"

from ._families import (  # noqa: E402
    ENTRY_POINT_GROUP, TARGETS, Family, discover, family_specs, runs_here,
)

__all__ = ["ENTRY_POINT_GROUP", "TARGETS", "Family", "discover", "family_specs", "runs_here",
           "__version__"]
