"""Benchmark: reading a DICOM series vs a bare serial pydicom loop (issue 2, item 8).

Baseline, measured in the same run: ``for f in files: ds = dcmread(f); np.frombuffer(ds.PixelData)``
(no sorting, no validation, no output array). Target: ``read_image`` of the folder (header pass, sort by
position, validation, preallocated output) at most 1.2x the baseline. Run with
``.venv/bin/python -m pytest -m bench -s tests/bench/test_bench_io.py``.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from io_fixtures import write_dicom_series

pytestmark = pytest.mark.bench

N, ROWS, COLS = 300, 512, 512


def _baseline(files: list[Path]) -> list[np.ndarray]:
    import pydicom

    out = []
    for f in files:
        ds = pydicom.dcmread(f)
        out.append(np.frombuffer(ds.PixelData, dtype=np.int16).reshape(ds.Rows, ds.Columns))
    return out


def _best_of(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
        del result
    return best


@pytest.fixture(scope="module")
def big_series(tmp_path_factory) -> tuple[Path, np.ndarray]:
    folder = tmp_path_factory.mktemp("bench_series")
    rng = np.random.default_rng(1)
    values = rng.integers(-1000, 2000, size=(N, ROWS, COLS), dtype=np.int16)
    # MR without rescale: stored int16 in, int16 out - the same work the baseline does.
    write_dicom_series(folder, n=N, rows=ROWS, cols=COLS, modality="MR", rescale=False, values=values,
                       shuffle=True)
    return folder, values


def test_series_read_vs_bare_pydicom_loop(big_series):
    from workbench.io import read_image

    folder, values = big_series
    files = sorted(p for p in folder.iterdir() if p.is_file())
    _baseline(files)  # warm the page cache and imports for both
    vol = read_image(folder, max_pixels=10**9)
    assert vol.shape == (N, ROWS, COLS) and vol.data.dtype == np.int16
    np.testing.assert_array_equal(vol.data, values)
    del vol

    # interleave the two so that load from other processes on the shared cores hits both alike
    base, ours = float("inf"), float("inf")
    for _ in range(3):
        base = min(base, _best_of(lambda: _baseline(files), 1))
        ours = min(ours, _best_of(lambda: read_image(folder, max_pixels=10**9), 1))
    ratio = ours / base
    print(f"\n[bench io] {N}x{ROWS}x{COLS} int16 series, shuffled names: bare pydicom loop {base * 1e3:.0f} ms, "
          f"read_image {ours * 1e3:.0f} ms, ratio {ratio:.2f} (target <= 1.2)")
    # generous margin for the noisy shared machine; the target is 1.2
    assert ratio < 1.6


def test_ct_series_with_rescale_cost(big_series, tmp_path):
    """Informational: a CT series pays for int16 -> float32 HU. Reported, loosely bounded."""
    from workbench.io import read_image

    folder = tmp_path / "ct"
    rng = np.random.default_rng(2)
    n = 100
    values = rng.integers(0, 3000, size=(n, ROWS, COLS), dtype=np.int16)
    write_dicom_series(folder, n=n, rows=ROWS, cols=COLS, modality="CT", intercept=-1024.0, values=values)
    files = sorted(p for p in folder.iterdir() if p.is_file())
    _baseline(files)
    base = _best_of(lambda: _baseline(files))
    ours = _best_of(lambda: read_image(folder))
    print(f"\n[bench io] CT {n}x{ROWS}x{COLS} -> float32 HU: bare loop {base * 1e3:.0f} ms, "
          f"read_image {ours * 1e3:.0f} ms, ratio {ours / base:.2f}")
    assert ours / base < 3.0
