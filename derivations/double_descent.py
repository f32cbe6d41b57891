# %% [markdown]
# # Double descent and the Deep Bootstrap
#
# The test risk of least squares, as a function of the number of parameters p at fixed n (model-wise) or of n at fixed
# p (sample-wise), rises to a peak at the interpolation threshold p = n and falls again beyond it: double descent
# (Belkin et al. 2019; Hastie, Montanari, Rosset & Tibshirani 2019; Nakkiran 2019). Optimal regularization removes the
# peak. Random-features regression (Mei & Montanari 2019) shows the same curve in the number of features N. The
# Deep Bootstrap (Nakkiran, Neyshabur & Sedghi 2021) compares a Real World that reuses n samples with an Ideal World
# that sees fresh ones; the ridgeless risk turns out to be its bootstrap error in the well-specified linear toy.

# %%
import numpy as np
import sympy as sp

import theory
import theory.claims.deep_bootstrap  # noqa: F401  (registers the claims of this document)
import theory.claims.double_descent  # noqa: F401
from theory import deep_bootstrap as bs
from theory import double_descent as dd
from theory.symbols import n

# %% [markdown]
# ## 1. Ridgeless least squares
#
# With isotropic Gaussian features $x \sim N(0, I_p)$, $y = x \cdot \beta + \varepsilon$, $|\beta|^2 = r^2$ and noise
# variance $\sigma^2$, the min-norm least-squares fit has an exact finite-n risk (inverse-Wishart means; the bias
# $r^2(1 - n/p)$ is the part of $\beta$ outside the row space of the data):

# %%
dd.ridgeless_formula(finite=True)

# %% [markdown]
# At $p = \gamma n$, $n \to \infty$ it tends to the HMRT limit, infinite at $\gamma = 1$:

# %%
finite, hmrt = dd.ridgeless_formula(finite=True), dd.ridgeless_formula()
limits = [sp.limit(finite.args[i][0].xreplace({dd.p: dd.gamma * n}), n, sp.oo) for i in (0, 1)]  # p < n, p > n
print("limit minus HMRT branch, simplified:", [sp.simplify(lim - hmrt.args[i][0]) for i, lim in enumerate(limits)])
sp.Eq(sp.Symbol("R"), hmrt)

# %% [markdown]
# ## 2. Ridge, through the Marchenko-Pastur law
#
# The Stieltjes transform $m(z)$ of the spectrum of $X^T X/n$ solves $m = 1/(1 - \gamma - z - \gamma z m)$; its
# positive root for $z < 0$ gives the ridge risk $r^2\lambda^2 m'(-\lambda) + \sigma^2\gamma(m(-\lambda) - \lambda m'(-\lambda))$:

# %%
[sp.Eq(sp.Symbol("m(z)"), dd.stieltjes_transform()), sp.Eq(sp.Symbol("R(lambda)"), dd.ridge_formula())]

# %% [markdown]
# Ridge with $\lambda^* = \sigma^2\gamma/r^2$ is the posterior mean for the prior $\beta \sim N(0, r^2 I/p)$; the
# derivative of the risk vanishes there, and the optimal risk is finite for every $\gamma$ -- no peak:

# %%
derivative = sp.simplify(sp.diff(dd.ridge_formula(), dd.lam).xreplace({dd.lam: dd.optimal_ridge()}))
print("dR/dlambda at lambda* =", derivative)
sp.Eq(sp.Symbol("R^*"), dd.optimal_ridge_risk())

# %%
gammas = np.array([0.25, 0.5, 0.9, 1.0, 1.1, 2.0, 4.0])
for g, a, b in zip(gammas, dd.ridgeless_risk(gammas, 1.0, 0.25), dd.ridgeless_risk(gammas, 1.0, 0.25, ridge="optimal")):
    print(f"gamma = {g:4.2f}   ridgeless {a:8.4f}   optimal ridge {b:.4f}")

# %% [markdown]
# ## 3. Random features (Mei & Montanari 2019)
#
# Features $\sigma(\langle\theta_a, x\rangle/\sqrt d)$ with $x, \theta_a$ uniform on the sphere of radius $\sqrt d$,
# $\psi_1 = N/d$, $\psi_2 = n/d$. The activation enters through $\zeta = \mu_1/\mu_*$; the risk is a rational function of
# $\chi = \nu_1\nu_2$, where $(\nu_1, \nu_2)$ solve two fixed-point equations. In the ridgeless limit one of the $\nu$'s
# diverges and $\chi$ solves a quadratic in $\psi = \min(\psi_1, \psi_2)$, derived by SymPy from the equations:

# %%
print("ReLU: (mu_0, mu_1, mu_*^2) =", dd.random_features_coefficients("relu"))
dd.random_features_equations() + [sp.Eq(dd.chi, dd.random_features_chi())]

# %% [markdown]
# The risk (linear target with $F_1^2 = 1$, noise $\tau^2 = 1/4$, $\psi_2 = 2$) peaks at $N = n$; ridge smooths the peak:

# %%
psis = np.array([0.5, 1.0, 1.8, 2.2, 4.0, 10.0])
for p1, a, b in zip(psis, dd.random_features_risk(psis, 2.0, tau2=0.25).risk,
                    dd.random_features_risk(psis, 2.0, tau2=0.25, ridge=0.05).risk):
    print(f"psi_1 = {p1:5.2f}   ridgeless {a:7.4f}   ridge 0.05 {b:.4f}")

# %% [markdown]
# ## 4. The Deep Bootstrap toy
#
# A linear model $f_\beta(x) = \langle\beta, x\rangle$, $x \sim N(0, I/d)$, labels $y = \sigma(\langle\beta^*, x\rangle)$,
# trained by SGD. In the Ideal World (fresh samples) with $\sigma(x) = x$ the error contracts by a factor $\rho$ per step,
# derived from the update $e' = (I - \eta\hat C)e$ with Isserlis' theorem:

# %%
sp.Eq(sp.Symbol("rho"), bs.ideal_world_rate())

# %% [markdown]
# The Real World reuses n < d samples, so it converges to the min-norm interpolant: its test error is the ridgeless
# risk $r^2(1 - n/d)$ -- the bootstrap error is large. With $\sigma = \mathrm{sign}$ the best linear predictor
# $c\beta^*$, $c = \sqrt{2/\pi}$, leaves $s^2 = 1 - 2/\pi$, and with n = 100 > d = 10 the Real World's excess is only
# the least-squares variance $s^2 d/(n-d-1)$:

# %%
c, s2 = bs.misspecification("sign")
(real_id, ideal_id), (real_sign, ideal_sign) = bs.predictions("identity"), bs.predictions("sign")
[sp.Eq(sp.Symbol("c"), c), sp.Eq(sp.Symbol("s^2"), s2),
 sp.Eq(sp.Symbol("L_real^identity"), real_id), sp.Eq(sp.Symbol("L_ideal^identity(t)"), ideal_id),
 sp.Eq(sp.Symbol("L_real^sign"), real_sign), sp.Eq(sp.Symbol("L_ideal^sign"), ideal_sign)]

# %%
for act in ("identity", "sign"):
    cfg = theory.claims.deep_bootstrap.LINEAR[act]
    w = bs.linear_worlds(act, cfg["n"], cfg["d"], cfg["steps"], cfg["batch"], cfg["lr"], 60, 0)
    T = bs.stopping_time(w.real_train, w.floor)
    real, ideal = w.real_test[:, T].mean(), w.ideal_test[:, T].mean()
    print(f"sigma = {act:8s} n = {cfg['n']:3d} d = {cfg['d']}: T(n) = {T:3d}, Real {real:.3f}, Ideal {ideal:.3f}, "
          f"bootstrap error {real - ideal:.3f} ({(real - ideal) / real:.0%} of the test error)")

# %% [markdown]
# ## 5. The claims
#
# Run at the quick size (`theory verify double_descent deep_bootstrap` runs the default size):

# %%
theory.claims.verify(["double_descent", "deep_bootstrap"], size="quick")

# %% [markdown]
# Model-wise double descent at n = 50: the Monte-Carlo risk of min-norm least squares against the exact formula,
# with its peak at the interpolation threshold p = n.

# %%
result, seconds = theory.claims.run(theory.claims.select(["double_descent.finite_n"])[0], size="quick")
result.figure()

# %% [markdown]
# The two worlds of the well-specified toy: the Real World stalls at the ridgeless risk while the Ideal World follows
# $\rho^t$ to zero.

# %%
result, seconds = theory.claims.run(theory.claims.select(["deep_bootstrap.linear"])[0], size="quick")
result.figure()
