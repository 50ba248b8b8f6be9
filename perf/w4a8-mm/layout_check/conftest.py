def pytest_addoption(parser):
    parser.addoption("--cutlass-ref", default="", help="path of the built _w4a8_cutlass_ref .so")
