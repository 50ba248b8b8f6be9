"""Fake family whose bench takes long (interrupt tests)."""

OPS = {"fake_slow": ("CPU",)}


def build_info():
    return {"cuda_archs": []}
