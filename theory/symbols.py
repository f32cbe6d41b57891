"""Shared SymPy symbols and their assumptions.

Every formula in the package is written in these symbols, so expressions from different modules combine
and substitute into each other. Import them from here; never re-create them elsewhere.
"""

import sympy as sp
from sympy.printing.pretty.stringpict import prettyForm

__all__ = [
    "z", "u", "v",
    "q11", "q12", "q22",
    "g11", "g12", "g22",
    "sigma_w2", "sigma_b2",
    "theta", "n", "eta", "t", "rho",
]


class _Scalar(sp.Symbol):
    """A symbol whose unicode pretty form differs from its name (``sigma_w^2`` pretty-prints as ``σ_w²``)."""

    _PRETTY = {"sigma_w^2": "σ_w²", "sigma_b^2": "σ_b²"}

    def _pretty(self, printer):
        return prettyForm(self._PRETTY.get(self.name, self.name))


#: The variable of an activation function φ(z).
z = sp.Symbol("z", real=True)
#: The two jointly Gaussian pre-activations of a Gaussian expectation E[φ(u) ψ(v)].
u, v = sp.symbols("u v", real=True)

#: Entries of the 2x2 covariance [[q11, q12], [q12, q22]] of (u, v). Variances are declared positive so that
#: SymPy may split square roots; zero variances are handled by the numeric printers (see ``gaussian.Angle``).
q11, q22 = sp.symbols("q_11 q_22", positive=True)
q12 = sp.Symbol("q_12", real=True)

#: Entries of the input Gram matrix divided by the input dimension: g12 = x.x'/d.
g11, g22 = sp.symbols("g_11 g_22", positive=True)
g12 = sp.Symbol("g_12", real=True)

#: Weight and bias variances of the NTK parameterization.
sigma_w2 = _Scalar("sigma_w^2", positive=True)
sigma_b2 = _Scalar("sigma_b^2", nonnegative=True)

#: The angle between two inputs in feature space, θ = arccos(q12/√(q11 q22)) in [0, π].
theta = sp.Symbol("theta", nonnegative=True)

#: Width, learning rate, time (or step), correlation.
n = sp.Symbol("n", positive=True, integer=True)
eta = sp.Symbol("eta", positive=True)
t = sp.Symbol("t", nonnegative=True)
rho = sp.Symbol("rho", real=True)
