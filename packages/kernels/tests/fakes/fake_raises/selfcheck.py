def run(device):
    raise RuntimeError("fake_boom: argument 'input': expected a CUDA tensor, got cpu\nsecond line")
