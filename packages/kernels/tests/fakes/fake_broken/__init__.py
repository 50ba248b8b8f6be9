"""Fake family that is installed but does not import (missing extension)."""

raise ImportError("lowbit: compiled extension _C.so not found in /somewhere/fake_broken")
