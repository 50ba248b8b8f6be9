"""Fake family whose self-check fails one comparison (tests only)."""

OPS = {"fake_bad": ("CPU",), "fake_unchecked": ("CPU",), "fake_gpu_only": ("SM90",)}


def build_info():
    return {"cuda_archs": []}
