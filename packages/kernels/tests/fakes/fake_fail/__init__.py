"""Fake family whose self-check fails one comparison (tests only)."""

OPS = {"fake_bad": ("CPU",)}


def build_info():
    return {"cuda_archs": []}
