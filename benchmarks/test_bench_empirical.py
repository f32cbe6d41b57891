"""Empirical NTKs of finite ReLU MLPs (theory.montecarlo) against a plain NumPy loop and neural-tangents'
structured-derivatives empirical NTK of the same networks (same parameters)."""

import numpy as np
import pytest

from bench_harness import measure
from bench_reference import SIGMA_B2, SIGMA_W2, nt, nt_empirical, numpy_empirical_ntk
from theory.montecarlo import MLP, empirical_kernels

D, WIDTH, DEPTH = 64, 512, 3
# (case, inputs N, networks E): one network on N = 500 inputs, and a Monte-Carlo ensemble
CASES = {"empirical NTK width 512 depth 3 N=500": (500, 1),
         "ensemble of 32 networks, width 512 depth 3 N=200 (empirical_kernels)": (200, 32)}


def _rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("implementation", ["ours", "baseline", "nt"])
@pytest.mark.parametrize("case", list(CASES))
def test_empirical_ntk(benchmark, case, implementation):
    if implementation == "nt" and nt is None:
        pytest.skip("neural-tangents is not installed")
    n, networks = CASES[case]
    X = np.random.default_rng(0).standard_normal((n, D))
    mlp = MLP(D, (WIDTH,) * DEPTH, "relu", 1, SIGMA_W2, SIGMA_B2)
    params = mlp.init(0, networks)
    reference = numpy_empirical_ntk(params, X, mlp.multipliers, np.sqrt(SIGMA_B2))
    if implementation == "ours" and networks == 1:
        def run():
            return mlp.ntk(params, X)
    elif implementation == "ours":
        def run():  # parameters drawn inside, as a Monte-Carlo sweep does
            return empirical_kernels(X, None, "relu", DEPTH, WIDTH, networks, 0, SIGMA_W2, SIGMA_B2).ntk
    elif implementation == "baseline":
        def run():
            return numpy_empirical_ntk(mlp.init(0, networks) if networks > 1 else params, X, mlp.multipliers,
                                       np.sqrt(SIGMA_B2))
    else:
        nt_ntk = nt_empirical(DEPTH, WIDTH, SIGMA_W2, SIGMA_B2)

        def run():
            return nt_ntk(mlp.init(0, networks) if networks > 1 else params, X)

    def accuracy(result):
        return "reference" if implementation == "baseline" else f"vs baseline {_rel(result, reference):.1e}"

    measure(benchmark, case, implementation, run, accuracy, memory=implementation != "nt")
