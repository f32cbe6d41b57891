"""pytest hooks of the benchmark suite: ``python -m pytest benchmarks`` (pytest-benchmark required; neural-tangents
optional, its columns are skipped cleanly when it is not importable) regenerates benchmarks/RESULTS.md.

The main test run does not collect this directory (pyproject's ``testpaths = ["tests"]``).
"""

import os

import bench_harness

_load = []


def pytest_sessionstart(session):
    _load.append(os.getloadavg()[0])


def pytest_sessionfinish(session, exitstatus):
    _load.append(os.getloadavg()[0])
    bench_harness.write_results(_load[0], _load[-1])
