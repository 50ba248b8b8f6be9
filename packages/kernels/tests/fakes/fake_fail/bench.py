def run(device, *, models=None, quick=False, progress=None):
    # One good row and one missing its metric: the good row must survive.
    return [
        {"op": "fake_bad", "shape": "N=16 K=16", "M": 8, "impl": "lowbit", "us": 2.0,
         "metric": 1.0, "metric_name": "GB/s"},
        {"op": "fake_bad", "shape": "N=16 K=16", "M": 8, "impl": "torch", "us": 3.0},
    ]
