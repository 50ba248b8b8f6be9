"""Fake family whose self-check and bench raise (tests only)."""

OPS = {"fake_boom": ("CPU", "SM90")}


def build_info():
    return {"cuda_archs": ["90a"]}
