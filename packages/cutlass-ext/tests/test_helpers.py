"""The cutlass-ext helpers, exercised through the test extension: checks and
their messages, torch dtype <-> CUTLASS type mapping, CuTe layouts, dispatch."""

from __future__ import annotations

import json

import pytest
import torch

from lowbit.testing.checks import raises_arg


def test_check_accepts_valid(ext):
    for dt in (torch.float16, torch.bfloat16):
        ext.check_activation(torch.randn(3, 16).to(dt))


@pytest.mark.parametrize(
    "make, fragments",
    [
        (lambda: torch.randn(4, 16), ("expected dtype float16 or bfloat16", "got float32")),
        (lambda: torch.randn(4, 16, 2).half(), ("expected 2-D tensor", "got 3-D tensor of shape [4, 16, 2]")),
        (lambda: torch.randn(4, 8).half(), ("expected shape [*, 16]", "got shape [4, 8]")),
        (lambda: torch.randn(16, 16).half().t(), ("expected a contiguous tensor", "non-contiguous")),
        (lambda: torch.randn(4, 16).to(torch.float8_e4m3fn), ("got float8_e4m3fn",)),
    ],
)
def test_check_messages_name_argument(ext, make, fragments):
    with raises_arg("x", *fragments):
        ext.check_activation(make())


def test_check_same_device_message(ext):
    x = torch.randn(2)
    ext.check_same_device(x, torch.randn(2))
    if torch.cuda.is_available():
        with raises_arg("y", "expected a tensor on cpu (the device of 'x')", "got a tensor on cuda:0"):
            ext.check_same_device(x, torch.randn(2, device="cuda"))


@pytest.mark.parametrize(
    "dtype, bits",
    [
        (torch.float16, 16), (torch.bfloat16, 16), (torch.float32, 32),
        (torch.float8_e4m3fn, 8), (torch.float8_e5m2, 8), (torch.uint8, 8),
        (torch.int8, 8), (torch.int32, 32), (torch.int64, 64),
    ],
)
def test_dtype_maps_to_cutlass_element_of_same_width(ext, dtype, bits):
    assert ext.cutlass_bits(dtype) == bits


def test_unmapped_dtype_is_an_error(ext):
    with raises_arg("dtype", "a dtype with a CUTLASS element", "bool"):
        ext.cutlass_bits(torch.bool)


@pytest.mark.parametrize(
    "kind, ok, bad",
    [
        ("int4", (torch.uint8, torch.int32), torch.int8),
        ("e2m1", (torch.uint8,), torch.float16),
        ("ue4m3", (torch.float8_e4m3fn, torch.uint8), torch.float8_e5m2),
        ("ue8m0", (torch.uint8,), torch.float32),
    ],
)
def test_subbyte_storage_dtypes(ext, kind, ok, bad):
    for dt in ok:
        ext.check_storage(torch.zeros(4, dtype=dt), kind)
    with raises_arg("x", "expected dtype", f"got {str(bad).replace('torch.', '')}"):
        ext.check_storage(torch.zeros(4, dtype=bad), kind)


def test_cute_layout_row_major(ext):
    x = torch.empty(5, 48, dtype=torch.float16)
    # (M, K, L) extents then strides; L is a missing trailing mode: extent 1.
    assert ext.cute_layout(x, 0) == [5, 48, 1, 48, 1, 0]


def test_cute_layout_column_major_from_transpose(ext):
    x = torch.empty(48, 5, dtype=torch.float16).t()  # [5, 48], stride (1, 5)
    assert ext.cute_layout(x, 1) == [5, 48, 1, 1, 5, 0]


def test_cute_layout_batched_strides(ext):
    x = torch.empty(3, 7, 32, dtype=torch.bfloat16).permute(1, 2, 0)  # [7, 32, 3]
    assert ext.cute_layout(x, 0) == [7, 32, 3, 32, 1, 7 * 32]


def test_cute_layout_packed_fp4_counts_logical_elements(ext):
    x = torch.empty(6, 40, dtype=torch.uint8)  # 80 e2m1 values per row
    assert ext.cute_layout(x, 2) == [6, 80, 1, 80, 1, 0]


def test_cute_layout_rejects_wrong_static_stride(ext):
    x = torch.empty(48, 5, dtype=torch.float16).t()
    with raises_arg("x", "expected stride 1 in dimension 1", "got stride 5"):
        ext.cute_layout(x, 0)


def test_cute_layout_rejects_high_rank(ext):
    with raises_arg("x", "at most 3 dimension(s)", "4-D"):
        ext.cute_layout(torch.empty(1, 2, 3, 4), 0)


def test_cpu_dispatch_and_kernel(ext):
    assert ext.target(torch.empty(1)) == "CPU"
    x = torch.full((37,), -1.0)
    ext.fill_iota(x)
    assert torch.equal(x, torch.arange(37, dtype=torch.float32))


def test_build_info_matches_compiled_archs(ext, test_ext_dir):
    from lowbit import cutlass_ext

    info = cutlass_ext.build_info(test_ext_dir, "_lowbit_cutlass_ext_test")
    assert ",".join(info["cuda_archs"]) == ext.built_archs()
    assert info["torch_target_version"] == "2.10"


# ----------------------------------------------------------------- CUDA only
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
def test_cuda_dispatch_names_family(ext):
    major, minor = torch.cuda.get_device_capability()
    x = torch.empty(1, device="cuda")
    assert ext.sm_of(x) == major * 10 + minor
    family = {9: "SM90", 10: "SM100", 12: "SM120"}[major]
    assert ext.target(x) == family


@cuda
def test_stream_is_torchs_current_stream(ext):
    x = torch.empty(1, device="cuda")
    assert ext.stream_handle(x) == torch.cuda.current_stream().cuda_stream
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        assert ext.stream_handle(x) == side.cuda_stream
        y = torch.full((1 << 20,), -1.0, device="cuda")
        ext.fill_iota(y)  # must be ordered on `side`
    side.synchronize()
    assert torch.equal(y, torch.arange(1 << 20, dtype=torch.float32, device="cuda"))


@cuda
def test_device_guard_selects_tensor_device(ext):
    last = torch.cuda.device_count() - 1
    x = torch.empty(1, device=f"cuda:{last}")
    with torch.cuda.device(0):
        assert ext.guarded_current_device(x) == last
        assert torch.cuda.current_device() == 0  # restored after the guard


@cuda
def test_kernel_is_graph_capturable(ext):
    y = torch.full((4096,), -1.0, device="cuda")
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        ext.fill_iota(y)
    y.fill_(-1.0)
    g.replay()
    torch.cuda.synchronize()
    assert torch.equal(y, torch.arange(4096, dtype=torch.float32, device="cuda"))
