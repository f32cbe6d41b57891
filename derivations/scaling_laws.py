# %% [markdown]
# # Neural scaling laws in solvable models
#
# Bahri, Dyer, Kaplan, Lee & Sharma (2021) explain power-law learning curves with models that can be solved: a
# student-teacher random-feature model, kernel regression, and the geometry of data on a low-dimensional manifold.
# They distinguish a **variance-limited** regime (one of D or P is held fixed, the other grows: the loss approaches
# its limit like 1/D or 1/P) from a **resolution-limited** regime (both large: the loss falls like $D^{-\alpha}$ or
# $P^{-\alpha}$ with an exponent set by the spectrum of the features, or by the dimension of the data manifold).
# This document derives the resolution-limited exponents with `theory.scaling` and measures them.

# %%
import numpy as np
import sympy as sp

import theory
import theory.claims.scaling  # noqa: F401  (registers the scaling claims)
from theory import scaling as sc

# %% [markdown]
# ## 1. The tail of a power-law spectrum
#
# If the teacher's feature covariance has eigenvalues $\lambda_i = i^{-(1+\alpha)}$, a student that could resolve
# exactly the top D eigenfeatures would leave the tail $\sum_{i > D} \lambda_i$ unlearned. SymPy gives the sum as a
# Hurwitz zeta function and its integral approximation (note the $1/\alpha$):

# %%
exact_tail, integral_tail = sc.tail_sum()
[sp.Eq(sp.Symbol("T(D)"), exact_tail), sp.Eq(sp.Symbol("T(D)"), integral_tail)]

# %% [markdown]
# ## 2. The deterministic equivalent: where the exponent comes from
#
# Least-squares interpolation does not pick the top eigenfeatures; it is described by the deterministic equivalent
# of ridgeless kernel regression. A scale $\kappa$ is fixed by $\sum_i \lambda_i/(\lambda_i + \kappa) = D$ and the loss
# (averaged over an isotropic teacher $\omega \sim N(0, I/S)$) is $D\kappa/S$:

# %%
sc.deterministic_equivalent()

# %% [markdown]
# For a power law the sum becomes an integral that SymPy evaluates, $\int_0^\infty dx/(1 + \kappa x^{1+\alpha})$,
# giving $\kappa \propto D^{-(1+\alpha)}$ and the loss $\propto D^{-\alpha}$: the resolution-limited exponent is the
# spectral exponent $\alpha$.

# %%
sc.power_law_limit()

# %% [markdown]
# The two prefactors differ: for $\alpha = 1$ the deterministic equivalent is $(\pi/2)^2 \approx 2.47$ times the
# oracle tail, the price of not knowing the eigenbasis.

# %%
ratio = (sc.power_law_limit()[1].rhs * sc.S / integral_tail).xreplace({sc.alpha: 1})
sp.simplify(ratio), sp.N(ratio)

# %% [markdown]
# ## 3. The student-teacher model, simulated exactly
#
# Teacher features $F(x) \sim N(0, C)$ with $C = \mathrm{diag}(i^{-2})$, S = 1024; student features $f = \mathcal{P}F$
# with a Gaussian $P \times S$ projection. `student_teacher_loss` returns the test loss of the least-squares student
# averaged exactly over test points and teachers. The two limits -- $P = \infty$ as a function of D, $D = \infty$ as a
# function of P -- are the same function of a Gaussian matrix (the duality $\alpha_D = \alpha_P$), and both follow the
# deterministic equivalent:

# %%
rng = np.random.default_rng(0)
spectrum = sc.power_law_spectrum(1024, 1.0)
sizes = np.unique(np.round(8 * 2 ** (np.arange(9) / 2)).astype(int))
by_data = np.array([[sc.student_teacher_loss(spectrum, None, rng.standard_normal((m, 1024)) * np.sqrt(spectrum))
                     for _ in range(16)] for m in sizes])
by_params = np.array([[sc.student_teacher_loss(spectrum, rng.standard_normal((m, 1024)), None) for _ in range(16)]
                      for m in sizes])
theory_curve = sc.spectral_loss(spectrum, sizes)
for row in zip(sizes, by_data.mean(1), by_params.mean(1), theory_curve):
    print("D = P = %4d   L(D; P = oo) = %.3e   L(P; D = oo) = %.3e   D kappa / S = %.3e" % row)

# %% [markdown]
# `fit_power_law` fits $L = C_0 D^{-\alpha}(1 + b/D) + C_\infty$ (the offset absorbs the finite S, the correction the
# approach to the asymptotic law) and returns a profile-likelihood interval for $\alpha$:

# %%
se = by_data.std(1, ddof=1) / 4
fit = sc.fit_power_law(sizes, by_data.mean(1), se, offset=True, correction=True, se_dof=15)
print(f"alpha_D = {fit.exponent:.3f}, 99% interval [{fit.interval[0]:.3f}, {fit.interval[1]:.3f}]")

# %% [markdown]
# ## 4. The spectrum of our own kernels on the sphere
#
# A dot-product kernel on $S^{d-1}$ is diagonalized by spherical harmonics; the degree-k eigenvalue has multiplicity
# $N(d, k)$ and is given by the Funk-Hecke formula in the Legendre polynomial of dimension d:

# %%
[sc.funk_hecke(), sp.Eq(sp.Symbol("N(d, k)"), sc.multiplicity()), sp.Eq(sp.Symbol("P_k^(d)(t)"), sc.legendre())]

# %% [markdown]
# Counting eigenvalues: if $\mu_k \propto k^{-\beta}$, the degrees up to K hold $\propto K^{d-1}$ eigenvalues, so the
# i-th largest is $\lambda_i \propto i^{-\beta/(d-1)}$ and the spectral exponent is

# %%
sp.Eq(sc.alpha, sc.implied_exponent())

# %% [markdown]
# `kernel_spectrum` evaluates the Funk-Hecke integral for the package's NNGP and NTK (depth-2 ReLU network,
# $\sigma_w^2 = 2$, $\sigma_b^2 = 0.1$). The integral cancels from $O(\kappa(1))$ down to $\mu_k$, which falls like
# $k^{-d}$ (NTK; Bietti & Mairal 2019) and $k^{-(d+2)}$ (NNGP; Bach 2017): at $d = 8$, $k = 400$ that is $10^{-18}$ and
# $10^{-23}$, far below float64's $10^{-16}\kappa(1)$. So the kernel is printed for mpmath from its symbolic form
# and the Clenshaw-Curtis sums are taken in fixed-point integers ($2^{-224}$); each $\mu_k$ carries an error bound
# (the half rule's difference), and `reliable` is the last degree known to 0.1 % (kernels computed by a float64
# quadrature, such as tanh's, stop there). The exponents fitted on $k \in [100, 400]$ with the leading $1/k$
# correction, and on $[200, 400]$ (closer still: the next correction is $O(d^2/k^2)$):

# %%
for dim in (3, 5, 8):
    for kind, beta_ in (("ntk", dim), ("nngp", dim + 2)):
        spectrum = sc.kernel_spectrum(dim, 400, kind=kind, depth=2, sigma_w2=2.0, sigma_b2=0.1)
        fitted = []
        for low in (100, 200):
            k = np.arange(low, 401)
            fit = sc.fit_power_law(k, spectrum.eigenvalue[k], 1e-3 * spectrum.eigenvalue[k], offset=False,
                                   correction=True, bounds=(0.0, 16.0))
            fitted.append(round(fit.exponent, 4))
        print(f"d = {dim} {kind:4s}: beta = {beta_}, fitted on [100, 400], [200, 400]: {fitted};  mu_400 = "
              f"{spectrum.eigenvalue[400]:.4g} +- {spectrum.error[400]:.1g}, reliable to k = {spectrum.reliable}")

# %% [markdown]
# ## 5. Geometry: nearest neighbours and interpolation
#
# On a flat d-torus the distance from a query to the nearest of D uniform samples has an exact mean, falling like
# $D^{-1/d}$; a piecewise-linear interpolant errs by $O(h^2)$ with $h \propto D^{-1/d}$, so its MSE falls like $D^{-4/d}$:

# %%
[sp.Eq(sp.Symbol("E r_NN"), sc.nearest_neighbour_distance()), sp.Eq(sp.Symbol("alpha_interp"),
                                                                     sc.interpolation_exponent())]

# %% [markdown]
# ## 6. The claims
#
# Every exponent above is a registered claim measured on simulated data (here at the quick size; `theory verify
# scaling` runs the default size):

# %%
theory.claims.verify(["scaling"], size="quick")

# %% [markdown]
# The duality: $L(D)$ at $P = \infty$ and $L(P)$ at $D = \infty$ on one curve, the deterministic equivalent.

# %%
result, seconds = theory.claims.run(theory.claims.select(["scaling.duality"])[0], size="quick")
result.figure()

# %% [markdown]
# The learning curve of NTK regression on $S^2$ against the exponent $\alpha = 1/2$ implied by the spectrum.

# %%
result, seconds = theory.claims.run(theory.claims.select(["scaling.learning_curve.ntk"])[0], size="quick")
result.figure()
