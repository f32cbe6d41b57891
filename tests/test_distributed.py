"""Beyond one machine: blocked and Dask kernels equal the in-memory ones; claim sweeps on processes and on a Dask
cluster give the results of the in-process run; the CLI's --jobs, --scheduler and --seeds."""

import concurrent.futures
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import theory.distributed
from theory import claims, nngp_ntk
from theory.claims import base
from theory.cli import main
from theory.distributed import blocked_nngp_ntk, dask_nngp_ntk, executor

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

SCRIPT = pathlib.Path(sys.executable).parent / "theory"
PARAMS = [dict(activation="relu", depth=3, sigma_w2=2.0), dict(activation="erf", depth=2, sigma_b2=0.3),
          dict(activation="relu", depth=2, parameterization="standard", widths=64)]


def _awkward_inputs(n, d, seed):
    """Gaussian rows with exact copies, positive and negative multiples and a zero row far apart (other blocks)."""
    x = np.random.default_rng(seed).standard_normal((n, d))
    x[n - 1], x[n // 2], x[n - 2], x[1] = x[0], 3.0 * x[2], -0.5 * x[3], 0.0
    return x


def _assert_same(got, want):
    """Entry by entry to 1e-13 relative (plus 1e-15 of the largest entry, for entries that vanish)."""
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == np.float64
        np.testing.assert_allclose(np.asarray(g), w, rtol=1e-13, atol=1e-15 * np.abs(w).max())


# ---------------------------------------------------------------------------------------------------------------
# Blocked and Dask kernels
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("params", PARAMS)
def test_blocked_and_dask_kernels_equal_the_in_memory_ones(params, tmp_path):
    x, y = _awkward_inputs(130, 7, 0), _awkward_inputs(45, 7, 1)
    y[5] = x[100]  # a shared row, in no diagonal block
    for X2 in (None, y):
        want = nngp_ntk(x, X2, **params)
        _assert_same(blocked_nngp_ntk(x, X2, block=32, **params), want)
        _assert_same(dask.compute(*dask_nngp_ntk(x, X2, block=32, **params)), want)
        stored = blocked_nngp_ntk(x, X2, block=50, out=tmp_path / "k", **params)
        assert all(isinstance(a, np.memmap) for a in stored)
        _assert_same([np.load(tmp_path / "k" / f"{name}.npy") for name in ("nngp", "ntk")], want)


@settings(max_examples=15)
@given(n=st.integers(1, 40), m=st.integers(1, 20), block=st.integers(1, 45), seed=st.integers(0, 2**16))
def test_any_block_size_gives_the_in_memory_kernel(n, m, block, seed):
    x = _awkward_inputs(max(n, 4), 3, seed)
    for X2 in (None, x[:m]):
        _assert_same(blocked_nngp_ntk(x, X2, block=block, depth=2), nngp_ntk(x, X2, depth=2))


def test_a_symmetric_kernel_computes_only_the_blocks_on_and_above_the_diagonal(monkeypatch, capsys):
    calls = []

    def counted(X1, X2=None, **params):
        calls.append((len(X1), None if X2 is None else len(X2)))
        return nngp_ntk(X1, X2, **params)

    monkeypatch.setattr(theory.distributed, "nngp_ntk", counted)
    x = _awkward_inputs(100, 4, 2)  # 4 row blocks of 32, 32, 32, 4: 10 blocks on or above the diagonal
    blocked_nngp_ntk(x, block=32, progress=True)
    assert len(calls) == 1 + 10 and calls[1:].count((32, None)) == 3 and calls[-1] == (4, None)
    assert "kernel blocks |" in capsys.readouterr().err  # the progress bar over blocks
    calls.clear()
    k = dask_nngp_ntk(x, block=32)
    assert len(calls) == 1 and k.nngp.chunks == ((32, 32, 32, 4),) * 2  # lazy: only the parameter check ran
    dask.compute(*k, scheduler="sync")
    assert len(calls) == 1 + 10  # both kernels from one task per block


def test_bad_arguments_raise_before_any_block(tmp_path):
    x = np.ones((3, 2))
    (tmp_path / "file").write_text("")
    for call in (blocked_nngp_ntk, dask_nngp_ntk):
        with pytest.raises(ValueError, match="block"):
            call(x, block=0)
        with pytest.raises(ValueError, match="X2: input dimension 3"):
            call(x, np.ones((2, 3)))
        with pytest.raises(ValueError, match="X1: inputs must be finite"):
            call(np.full((2, 2), np.nan))
        with pytest.raises(ValueError, match="depth"):
            call(x, depth=-1)
        with pytest.raises(TypeError, match="bogus"):
            call(x, bogus=1)
    with pytest.raises(ValueError, match="out: expected a directory"):
        blocked_nngp_ntk(x, out=tmp_path / "file")


# ---------------------------------------------------------------------------------------------------------------
# Claim sweeps on processes and on a Dask cluster
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture
def local_claims():
    """Claims defined here (closures: they travel by value) -- one that holds at even seeds only, with a plot."""
    @claims.claim("test.even_seeds", "A claim that holds at even seeds.", "this test", sp.S.Zero)
    def _even(seed, size):
        u = np.random.default_rng(claims.seed_for(seed, "test.even_seeds")).standard_normal(1000)
        return claims.compare(0.0, float(np.mean(u)) + seed % 2, float(np.std(u) / np.sqrt(u.size)),
                              data={"u": u}, plot=lambda fig: fig.add_subplot().hist(u))

    @claims.claim("test.unpicklable", "A result that cannot travel back.", "this test", sp.S.Zero)
    def _unpicklable(seed, size):
        return claims.compare(0.0, 0.0, 1.0, data={"generator": (i for i in range(3))})

    yield ["test.even_seeds", "test.unpicklable"]
    for name in ("test.even_seeds", "test.unpicklable"):
        base._REGISTRY.pop(name)


def _numbers(outcomes):
    return [(c.id, r.prediction, r.estimate, r.stderr, r.passed, r.criterion) for c, r, _ in outcomes]


CHEAP = ["ntk.mc_agreement.erf", "parameterizations.symmetry"]


def test_process_workers_give_the_in_process_results(local_claims):
    # workers first: forked from this process before it caches anything for seed 11, they compute from scratch
    with executor(jobs=2) as pool:
        remote = claims.verify(CHEAP + ["test.even_seeds"], seed=11, size="quick", executor=pool)
    here = claims.verify(CHEAP + ["test.even_seeds"], seed=11, size="quick")
    assert _numbers(remote) == _numbers(here)
    assert np.array_equal(remote[-1][1].data["u"], here[-1][1].data["u"])
    assert remote[-1][1].figure() is not None  # the plot (a closure) came back
    with executor(jobs=1) as pool:
        assert pool is None


def test_a_result_that_cannot_travel_is_a_failed_claim_not_a_crash(local_claims):
    with executor(jobs=2) as pool:  # both claims run in one worker (same module): only the unpicklable one fails
        (_, even, _), (_, unpicklable, _) = claims.verify(local_claims, size="quick", executor=pool)
    assert even.passed and not unpicklable.passed and "generator" in unpicklable.criterion


def test_a_worker_that_dies_is_a_failed_claim():
    @claims.claim("test.dies", "A worker that exits.", "this test", sp.S.One)
    def _dies(seed, size):
        os._exit(3)

    try:
        with concurrent.futures.ProcessPoolExecutor(1) as pool:
            (_, result, _), = claims.verify(["test.dies"], executor=pool)
        assert not result.passed and "BrokenProcessPool" in result.criterion
    finally:
        base._REGISTRY.pop("test.dies")


def test_cli_seeds_reports_pass_counts_and_failing_seeds(local_claims, capsys):
    assert main(["verify", "--quick", "--seeds", "0-2,5", "--jobs", "2", "test.even_seeds"]) == 1
    out = capsys.readouterr()
    row, = [line.split() for line in out.out.splitlines() if line.startswith("test.even_seeds")]
    assert row[:4] == ["test.even_seeds", "2/4", "1", "5"] and "seeds 0,1,2,5, quick size, 1 claims" in out.out
    assert "runs |" in out.err  # the progress bar counts claim × seed runs
    assert main(["verify", "--quick", "--seeds", "0,2", "--json", "--no-progress", "test.even_seeds"]) == 0
    assert json.loads(capsys.readouterr().out)["claims"][0]["holds"] == 2
    for args in (["--seeds", "2-1"], ["--seed", "1", "--seeds", "1"], ["--jobs", "2", "--scheduler", "tcp://x:1"]):
        with pytest.raises(SystemExit) as exit_:
            main(["verify", "test.even_seeds", *args])
        assert exit_.value.code == 2
    for args in (["--seeds", "0-1", "--report", "x"], ["--jobs", "0"]):
        assert main(["verify", "test.even_seeds", *args]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 5  # one line per usage error


@pytest.fixture(scope="module")
def cluster():
    """A light Dask cluster: one worker thread in this process, reachable over TCP (so the CLI can connect)."""
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp",
                                  dashboard_address=None) as c:
        yield c


def test_a_dask_cluster_gives_the_in_process_results(cluster, local_claims):
    with executor(scheduler=cluster.scheduler_address) as pool:
        remote = base.sweep(CHEAP + ["test.even_seeds"], [12, 13], size="quick", executor=pool)
    for seed in (12, 13):
        assert _numbers(remote[seed]) == _numbers(claims.verify(CHEAP + ["test.even_seeds"], seed, "quick"))
    assert [r.passed for _, r, _ in remote[12]] == [True] * 3 and not remote[13][-1][1].passed
    with pytest.raises(ValueError, match="not both"):
        with executor(jobs=2, scheduler=cluster.scheduler_address):
            pass


def _theory(*args):
    run = subprocess.run([str(SCRIPT), "verify", "--quick", "--json", "--no-progress", "--seed", "7", *CHEAP,
                          *args], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return [{k: v for k, v in c.items() if k != "seconds"} for c in json.loads(run.stdout)["claims"]]


@pytest.mark.slow
def test_cli_jobs_and_scheduler_print_the_in_process_results(cluster):
    alone = _theory("--jobs", "1")
    assert _theory("--jobs", "2") == alone
    assert _theory("--scheduler", cluster.scheduler_address) == alone
