"""Family discovery: the entry point group "lowbit.families", no list in the command."""

from __future__ import annotations

import importlib.metadata

from lowbit.kernels import _families


def test_families_come_from_the_entry_point_group(monkeypatch):
    eps = importlib.metadata.EntryPoints([
        importlib.metadata.EntryPoint("zeta_mm", "lowbit.zeta_mm", "lowbit.families"),
        importlib.metadata.EntryPoint("alpha_quant", "lowbit.alpha_quant", "lowbit.families"),
    ])
    seen = []

    def entry_points(*, group):
        seen.append(group)
        return eps

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    assert _families.family_specs() == [("alpha_quant", "lowbit.alpha_quant"),
                                        ("zeta_mm", "lowbit.zeta_mm")]
    assert seen == ["lowbit.families"]


def test_installed_families_are_the_installed_entry_points():
    eps = importlib.metadata.entry_points(group=_families.ENTRY_POINT_GROUP)
    assert _families.family_specs() == sorted((ep.name, ep.value) for ep in eps)
