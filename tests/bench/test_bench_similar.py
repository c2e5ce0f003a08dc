"""Benchmark: exact cosine top-10 search (issue 18) at 10^4 and 10^5 synthetic 256-float vectors, against the
bare matrix-vector product in the same run. Run with ``flock /tmp/workbench-heavy.lock .venv/bin/python -m
pytest -m bench -s tests/bench/test_bench_similar.py``; figures go to docs/BENCHMARKS.md with the load average.
"""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

from workbench.similar.query import cosine_top_k

pytestmark = pytest.mark.bench


@pytest.mark.parametrize("n", [10_000, 100_000])
def test_bench_exact_search(n):
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((n, 256)).astype(np.float32)
    query = rng.standard_normal(256).astype(np.float32)
    order, scores = cosine_top_k(matrix, query, 10)
    assert len(order) == 10 and np.all(np.diff(scores) <= 0)

    def median_ms(fn) -> float:
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return float(np.median(times)) * 1000.0

    search = median_ms(lambda: cosine_top_k(matrix, query, 10))
    bare = median_ms(lambda: matrix @ query)
    print(f"\n{n} vectors: cosine_top_k {search:.2f} ms, bare M @ q {bare:.2f} ms, ratio {search / bare:.2f}, "
          f"load {os.getloadavg()[0]:.2f}")
