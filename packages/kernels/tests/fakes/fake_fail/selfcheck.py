def run(device):
    return [
        {"op": "fake_bad", "problem": "M=8 N=16", "passed": False,
         "metric": "rel_err", "value": 0.5, "limit": 0.01},
        {"op": "fake_bad", "problem": "M=1 N=16", "passed": True,
         "metric": "rel_err", "value": 0.001, "limit": 0.01},
    ]
