# %% [markdown]
# # Finite-width corrections: the 1/n expansion around the Gaussian process
#
# At infinite width a network at initialization is a Gaussian process. At width $n$ its pre-activations are not
# Gaussian: their connected four-point function is $O(1/n)$ (Yaida 2020; Roberts, Yaida & Hanin 2022, "PDLT",
# ch. 4), and the neural tangent kernel fluctuates by $O(n^{-1/2})$ and moves during training by $O(1/n)$
# (Hanin & Nica 2020; Dyer & Gur-Ari 2020). This document derives these corrections with `theory`, finds the exact
# finite-width results where they exist, and checks everything against finite networks.
#
# Conventions: the NTK parameterization of the package. $z^0 = \sigma_w W^0 x/\sqrt{d} + \sigma_b b^0$ is the first
# pre-activation (exactly Gaussian) and $z^l$, $l = 1..L$, has $l$ nonlinearities below it; layer $l$ has width
# $n_l$. PDLT's layer $\ell$ (whose first layer is $z^{(1)}$) is our layer $\ell - 1$.

# %%
import numpy as np
import sympy as sp

import theory
from theory import finite_width as fw
from theory.gaussian import gaussian_expectation
from theory.symbols import n, q11, sigma_b2, sigma_w2, z

L = fw.depth_symbol

# %% [markdown]
# ## 1. The mechanism: Gaussian given the layer below
#
# Given the activations of layer $l$, the pre-activations of layer $l+1$ are, unit by unit, Gaussian with the
# random variance $\hat K^{l+1} = \sigma_b^2 + \sigma_w^2 |\phi(z^l)|^2/n_l$. So $E[z^4 | \hat K] = 3\hat K^2$, and
# the kurtosis of a pre-activation is the relative variance of its kernel:
#
# $$\kappa := \frac{E[z^4]}{3 E[z^2]^2} - 1 = \frac{\mathrm{Var}\,\hat K}{(E \hat K)^2}.$$
#
# (This $\kappa$ is one third of the usual excess kurtosis.) The Gaussian engine confirms the conditional moment:

# %%
Khat = sp.Symbol("Khat", positive=True)
gaussian_expectation(z**4, 1, Khat, 0, 1)

# %% [markdown]
# Given $\hat K^l$ the $n_l$ units of layer $l$ are iid $N(0, \hat K^l)$, so
# $E[\hat K^{l+1}|\hat K^l] = \sigma_b^2 + \sigma_w^2 \langle\phi^2\rangle_{\hat K^l}$ and
# $\mathrm{Var}(\hat K^{l+1}|\hat K^l) = \sigma_w^4 (\langle\phi^4\rangle - \langle\phi^2\rangle^2)_{\hat K^l}/n_l$.
# The one-variable expectations are derived from the activation; for ReLU they are closed forms:

# %%
fw.moments("relu")

# %% [markdown]
# ## 2. The recursion of the four-point vertex
#
# Write $\hat K^l = K^l + \delta$ with $E\delta = O(1/n)$ and $\mathrm{Var}\,\delta = V^l/n_{l-1}$. The law of total
# variance,
#
# $$\mathrm{Var}\,\hat K^{l+1} = E[\mathrm{Var}(\hat K^{l+1}|\hat K^l)] + \mathrm{Var}(E[\hat K^{l+1}|\hat K^l]),$$
#
# needs the conditional mean to first order in $\delta$. SymPy expands it:

# %%
K, eps = sp.symbols("K epsilon", positive=True)
phi2 = sp.Function(r"\langle\phi\phi\rangle")
mean_map = sigma_b2 + sigma_w2 * phi2(K + eps)
linear_part = sp.series(mean_map, eps, 0, 2).removeO().coeff(eps)
chi = sp.Symbol(r"\chi_\parallel")
sp.Eq(chi, linear_part.doit())

# %% [markdown]
# so $\mathrm{Var}(E[\hat K^{l+1}|\hat K^l]) = \chi_\parallel^2\, V^l/n_{l-1} + O(1/n^2)$, while the first term is
# $\sigma_w^4 (\langle\phi^4\rangle - \langle\phi^2\rangle^2)_{K^l}/n_l + O(1/n^2)$. Multiplying by $n_l$:

# %%
fw.vertex_recursion()

# %% [markdown]
# This is the single-input form of the issue (and of PDLT eq. 4.90 with $V^{(1)} = 0$, our $V^0 = 0$): it checks
# out. For ReLU the source is $\sigma_w^4 (3K^2/2 - K^2/4) = \tfrac54 \sigma_w^4 K^2$ and
# $\chi_\parallel = \sigma_w^2/2$:

# %%
fw.vertex_recursion("relu")

# %% [markdown]
# Composing it gives the first-order kurtosis of the output; `theory.finite_width.output_kurtosis` returns the
# expression and its value. At criticality ($\sigma_w^2 = 2$, $\sigma_b^2 = 0$) every ReLU layer adds $5/n$ (the "5"
# of Hanin & Nica); a linear network adds $2/n$; a tanh network at $\sigma_w^2 = 1.5$, $\sigma_b^2 = 0.1$ has a
# coefficient that comes from quadrature:

# %%
[fw.output_kurtosis("relu", 4, n, 2, 0, 1).expr, fw.output_kurtosis("identity", 4, n, 1, 0, 1).expr,
 fw.output_kurtosis("tanh", 4, n, sp.Rational(3, 2), sp.Rational(1, 10), 1).value]

# %% [markdown]
# With unequal widths each layer enters through its own width:

# %%
widths = sp.symbols("n_0 n_1 n_2", positive=True)
fw.output_kurtosis("relu", 3, widths, 2, 0, 1).expr

# %% [markdown]
# ## 3. Exact results at every width
#
# For positively homogeneous activations ($\phi(\lambda z) = \lambda\phi(z)$, $\lambda > 0$: ReLU, leaky ReLU,
# $|z|$, linear) the conditional moments are polynomials in $\hat K$: $\langle\phi^2\rangle = A_2\hat K$,
# $\langle\phi^4\rangle = A_4 \hat K^2$. So $(E\hat K, E\hat K^2)$ obey a closed linear recursion, exact at any width.
# With $\sigma_b^2 = 0$ the ratio $E\hat K^2/(E\hat K)^2$ gains the same factor in every layer, and the depth can stay
# a symbol:

# %%
[sp.Eq(sp.Symbol("kappa_relu"), fw.exact_kurtosis("relu", L, n, 2, 0, 1)),
 sp.Eq(sp.Symbol("kappa_linear"), fw.exact_kurtosis("identity", L, n, 1, 0, 1))]

# %% [markdown]
# These are the issue's $(1 + 5/n)^{l-1}$ and $(1 + 2/n)^{l-1}$ (its layer $l$ is our $l - 1$), for any $\sigma_w^2$.
# With biases the recursion still closes; its large-$n$ expansion starts with the first-order formula, and the
# remainder is $O(1/n^2)$:

# %%
exact = fw.exact_kurtosis("relu", 3, n, sp.Rational(9, 5), sp.Rational(1, 5), 1)
first = fw.output_kurtosis("relu", 3, n, sp.Rational(9, 5), sp.Rational(1, 5), 1).expr
[sp.limit(n * (exact - first), n, sp.oo), sp.limit(n**2 * (exact - first), n, sp.oo)]

# %% [markdown]
# ## 4. Criticality and large depth
#
# Criticality means $\chi_\parallel = \chi_\perp = 1$ at a fixed point $K^*$ of the kernel map. For scale-invariant
# activations $\chi_\parallel \equiv \chi_\perp \equiv \sigma_w^2 A_2$ and every $K^*$ is a fixed point at
# $\sigma_b^2 = 0$. Otherwise $K^* = 0$ needs $\phi(0) = 0$, and then $\chi_\perp = \sigma_w^2\phi'(0)^2$:

# %%
for a in ("relu", "identity", "tanh", "erf"):
    crit = fw.criticality(a)
    print(f"{a:8s} sigma_w2 = {crit.sigma_w2}, sigma_b2 = {crit.sigma_b2}, K* = {crit.fixed_point} ({crit.kind})")

# %% [markdown]
# At criticality a scale-invariant network has $K^l = K^0$, $\chi_\parallel = 1$, so $V$ grows by the same source every
# layer: $\kappa = (A_4/A_2^2 - 1) L/n$ at every depth (PDLT write $3A_4/A_2^2 - 1$ with their
# $A_4 = \langle\phi^4\rangle/3$).
#
# For the $K^* = 0$ class the kernel flows to zero. Expanding the maps at small $K$ from the Taylor series of $\phi$
# ($\langle z^{2k}\rangle = (2k-1)!!K^k$), tanh at $\sigma_w^2 = 1$ gives $K' = K + a_1 K^2$ and the source
# $s_0 K^2$:

# %%
taylor = lambda e: sp.expand(gaussian_expectation(sp.series(e, z, 0, 6).removeO(), 1, q11, 0, 1))
a1 = taylor(sp.tanh(z) ** 2).coeff(q11, 2)
s0 = sp.expand(taylor(sp.tanh(z) ** 4) - taylor(sp.tanh(z) ** 2) ** 2).coeff(q11, 2)
a1, s0

# %% [markdown]
# With $K \approx c/L$ the kernel recursion gives $c = -1/a_1$; with $V \approx A/L$ and
# $\chi_\parallel^2 \approx 1 + 4a_1K$
# the vertex recursion $V' - V = s_0K^2 + (\chi_\parallel^2 - 1)V$ balances at order $1/L^2$:

# %%
c, A, ell = sp.symbols("c A L", positive=True)
c_value = -1 / a1
A_value = sp.solve(sp.Eq(-A, s0 * c_value**2 + 4 * a1 * c_value * A), A)[0]
sp.simplify((A_value / ell) / (n * (c_value / ell) ** 2))

# %% [markdown]
# so $\kappa \approx s_0 L/(3n) = \tfrac23 L/n$, the same for every activation of the class. The package derives the
# same for each activation, and the composed recursion approaches it (sin, whose moments are all closed forms):

# %%
print({a: fw.kurtosis_asymptotics(a) for a in ("relu", "identity", "tanh", "erf", "sin")})
state = fw.first_order_state("sin", 2000, 1.0, 1.0, 0.0, 1.0)
float(state.var_kernel / state.kernel**2) / 2000

# %% [markdown]
# ## 5. Two inputs: the vertex as a tensor
#
# For two inputs the kernel has three entries $(K_{11}, K_{12}, K_{22})$ and the vertex is their covariance,
# $\Sigma^{l+1} = J\Sigma^l J^T + N^l/n_l$, with $J$ the Jacobian of the layer map over the entries (by Price's
# theorem, $\partial K'_{12}/\partial K_{12} = \sigma_w^2\langle\phi'\phi'\rangle$ and
# $\partial K'_{12}/\partial K_{11} = \tfrac12\sigma_w^2\langle\phi''(u)\phi(v)\rangle$: PDLT's $\chi$ with indices
# raised by $K^{-1}$) and $N = \sigma_w^4\,\mathrm{Cov}(\phi_u^2, \phi_u\phi_v, \phi_v^2)$. For a tanh network of
# depth 2,
# $n\,\mathrm{Cov}$:

# %%
50 * fw.vertex_tensor("tanh", 2, 50, (1.0, 0.3, 0.8), 1.5, 0.1)

# %% [markdown]
# The fluctuating kernel also shifts the mean of the next layer's, because the layer map is curved: with $H$ its
# Hessian over the three entries, $E\hat K^{l+1} = K^{l+1} + \mu^{l+1}$ with
# $\mu^{l+1} = J\mu^l + \tfrac12 H : \Sigma^l$ (`fw.kernel_shift`; the diagonal entries are the single-input shifts,
# and `theory verify nngp.mc_agreement` uses the shift as its bias). For ReLU at criticality, two orthogonal inputs
# at depth 2, and for the tanh network above ($n\,\mu$):

# %%
sp.simplify(fw.kernel_shift("relu", 2, n, (1, 0, 1), 2, 0)).evalf(6)

# %%
50 * fw.kernel_shift("tanh", 2, 50, (1.0, 0.3, 0.8), 1.5, 0.1)

# %% [markdown]
# ## 6. Fluctuations of the NTK
#
# The same conditioning carries the NTK. For a unit $k$ of layer $l$ the diagonal NTK $\Theta_{kk}$ is, given the
# layer below, $\hat K^l$ plus a quadratic form in the unit's weights, with conditional mean $\hat\Theta^l$. The state
# of a layer is $(K, \Theta)$, the covariance $\Sigma$ of $(\hat K, \hat\Theta)$, $\beta = E[\Theta_{km}^2]$ for
# $k \neq m$, the mean shifts $\mu_K, \mu_\Theta$, and $m$, the NTK along the direction of the activations, which the
# weights of the layer below add coherently and which shifts the NTK mean. Its one-layer update, for ReLU:

# %%
update = fw.single_input_layer("relu")
names = ("K'", r"\Theta'", r"\Sigma_{KK}'", r"\Sigma_{K\Theta}'", r"\Sigma_{\Theta\Theta}'", r"\beta'")
[sp.Eq(sp.Symbol(name), sp.simplify(value.xreplace({q11: sp.Symbol("K")})), evaluate=False)
 for name, value in zip(names, update[:6])]

# %% [markdown]
# The output's relative variance is $(\Sigma_{\Theta\Theta} + 2\beta)/\Theta^2$. With one hidden layer $\Theta$ is a
# mean of
# $n$ iid terms, so this is exactly $c/n$ (ReLU at criticality: $\mathrm{Var}(2z^2H + 2Kw^2H) = 12K^2$ over $(2K)^2$):

# %%
[fw.ntk_variance("relu", 1, n, 2, 0, 1).expr,
 fw.ntk_variance("erf", 1, n, sp.Rational(3, 2), sp.Rational(3, 10), 1).value]

# %% [markdown]
# For deep critical ReLU networks the recursion is a pair of random walks; unrolled, the first-order coefficient is a
# sum that SymPy closes:

# %%
l = sp.Symbol("l", integer=True, nonnegative=True)
noise = 5 * (L - l) ** 2 + 2 * (L - l) * (l + 1) + 5 * (l + 1) ** 2  # per layer l, in units of K²/n
c_L = sp.factor(sp.summation(noise, (l, 0, L - 1)) / (L + 1) ** 2)
print([sp.simplify(n * fw.ntk_variance("relu", d, n, 2, 0, 1).expr - c_L.subs(L, d)) for d in range(1, 6)])
[c_L, sp.limit(c_L / L, L, sp.oo)]

# %% [markdown]
# So $\mathrm{Var}\,\Theta/\Theta^2 = c_L/n$ with $c_1 = 3$, $c_3 = 10$ and $c_L \approx \tfrac{11}{3}L$ at large depth.
# Hanin & Nica's $E[\Theta^2]/E[\Theta]^2 \simeq e^{5\sum_l 1/n_l}$ is a two-sided bound up to constant factors
# (their "$\simeq$"), not a first-order identity: expanding it would give $5L/n$, which the Monte Carlo below
# rejects. The 5 is the kurtosis' (forward) rate; the NTK's is smaller. The NTK mean moves too, by $O(1/n)$
# (zero for ReLU, whose mean NTK is exact):

# %%
[fw.finite_width("relu", 3, n, 2, 0, 1).ntk_shift,
 fw.finite_width("tanh", 2, n, sp.Rational(3, 2), sp.Rational(1, 5), 1).ntk_shift]

# %% [markdown]
# ## 7. The dNTK and the cluster-graph rule
#
# Dyer & Gur-Ari's rule: a correlation function of $m$ derivative tensors whose summed derivative indices form a
# cluster graph with $n_e$ even and $n_o$ odd components is $O(n^{s_C})$, $s_C = n_e + n_o/2 - m/2$. The NTK is
# $O(1)$, $E[\partial f\,\partial f\,\partial^2 f\, f]$ (which drives the NTK's change) is $O(1/n)$, and the mean
# square of the one-step change of the NTK, two copies of $\partial^2 f\,\partial f\,\partial f\,f$, is $O(1/n^2)$:

# %%
[fw.cluster_exponent(2, [(0, 1)]), fw.cluster_exponent(4, [(0, 2), (1, 2)]),
 fw.cluster_exponent(8, [(0, 1), (0, 2), (4, 5), (4, 6)])]

# %% [markdown]
# ## 8. The claims
#
# Every statement above is measured on finite networks: single-input ensembles sampled exactly in law by Gaussian
# conditioning (up to $10^5$ networks per width), the package's MLPs for the NTK and a gradient step, and explicit
# two-layer derivatives for the correlation functions. At the quick size:

# %%
outcomes = theory.claims.verify(["finite_width"], size="quick")
outcomes

# %% [markdown]
# For each activation, the first-order coefficient $c$ of $\kappa = c/n + O(1/n^2)$, predicted and measured (the
# claim's weighted fit of $n\hat\kappa = c + b/n + d/n^2$ over the widths), and the fitted order of the residual:

# %%
for claim_, result, _ in outcomes:
    if ".kurtosis." in claim_.id:
        d, (low, high) = result.data, result.interval
        print(f"{claim_.id.split('.')[-1]:7s} c: predicted {d['widths'][0] * d['first_order'][0, -1]:.4f}, "
              f"measured {d['coefficient']:.4f} +- {d['coefficient_se']:.4f}; "
              f"residual ~ n^{result.estimate:.2f}, 99%: [{low:.2f}, {high:.2f}]")
