import time


def run(device, *, models=None, quick=False, progress=None):
    progress("fake_slow case 1 (sleeping)")
    time.sleep(60)
    return []
