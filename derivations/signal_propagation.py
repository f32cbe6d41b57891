# %% [markdown]
# # Signal propagation: the order-to-chaos transition and its depth scales
#
# A deep random network maps two inputs to two pre-activations whose variance $q^l$ and correlation $c^l$ evolve
# layer by layer. At infinite width the evolution is deterministic (Poole et al. 2016; Schoenholz et al. 2017;
# Roberts, Yaida & Hanin 2022, "PDLT", ch. 5): the variance flows to a fixed point $q^*$ within a few layers, and the
# correlation then flows to its own fixed point $c^*$ over a depth $\xi_c$ that diverges on the order-to-chaos
# line. This document derives the maps, their fixed points, the susceptibilities and depth scales with `theory`,
# draws the phase diagram, and measures the depth scales in finite networks.
#
# Conventions: the NTK parameterization of the package, $z^0 = \sigma_w W^0 x/\sqrt{d} + \sigma_b b^0$,
# $z^l = \sigma_w W^l \phi(z^{l-1})/\sqrt{n} + \sigma_b b^l$.

# %%
import numpy as np
import sympy as sp

import theory
import theory.claims.signal  # noqa: F401  (registers the claims of this document)

# %% [markdown]
# ## 1. The length and correlation maps
#
# Both maps are the package's derived one-layer NNGP map (`theory.layer`): on the diagonal it is the length map
# $q \mapsto \sigma_b^2 + \sigma_w^2 E[\phi(\sqrt{q} z)^2]$; off the diagonal, at equal variances $q$, it gives the
# correlation map $c \mapsto K^{l+1}(x, x')/K^{l+1}(x, x)$. For erf both are closed forms:

# %%
erf = theory.signal.maps("erf")
sp.Eq(sp.Symbol("q^{l+1}"), erf.length), sp.Eq(sp.Symbol("c^{l+1}"), erf.correlation)

# %% [markdown]
# For tanh the expectations have no closed form; they stay unevaluated and lambdify to quadrature. The whole
# statement at one point of the plane prints as LaTeX:

# %%
tanh = theory.signal_propagation("tanh", 2.5, 0.05)
tanh.equations

# %% [markdown]
# ## 2. Fixed points, susceptibilities, depth scales
#
# At a fixed point $q^*$ the correlation map has the fixed point $c = 1$ with slope
# $\chi_1 = \sigma_w^2 E[\phi'(\sqrt{q^*} z)^2]$ ($\chi_\perp$ in PDLT). If $\chi_1 < 1$ it attracts (ordered
# phase: all inputs become alike); if $\chi_1 > 1$ a fixed point $c^* < 1$ attracts instead (chaotic phase).
# Deviations decay like $e^{-l/\xi}$ with $\xi_q = -1/\log\chi_\parallel$, $\chi_\parallel = dq^{l+1}/dq^l$, and
# $\xi_c = -1/\log\chi_c$, $\chi_c = dc^{l+1}/dc^l$ at $c^*$ (Schoenholz et al., eqs. 7-9). The numbers come from
# root finding on the lambdified maps:

# %%
for sw in (1.2, 1.76, 2.5, 3.5):
    print(theory.signal_propagation("tanh", sw, 0.05), f"xi_q = {theory.signal_propagation('tanh', sw, 0.05).xi_q:.3f}")

# %% [markdown]
# ReLU is scale-invariant: $\chi_1 = \sigma_w^2/2$ at every $q$, the length map is linear and SymPy solves it,
# $q^* = \sigma_b^2/(1 - \sigma_w^2/2)$ below $\sigma_w^2 = 2$; at $(2, 0)$ every $q$ is a fixed point and the
# network is critical; above, the variance diverges.

# %%
theory.signal_propagation("relu", 1.5, 0.1).q_star_expr

# %% [markdown]
# ## 3. The order-to-chaos line
#
# On the line $\chi_1 = 1$ at the fixed point: $\sigma_w^2 = 1/E[\phi'^2]_{q^*}$ and
# $\sigma_b^2 = q^* - E[\phi^2]_{q^*}/E[\phi'^2]_{q^*}$, solved for $q^*$ at each $\sigma_b^2$. For tanh and erf:

# %%
biases = np.array([0.0, 0.01, 0.05, 0.1, 0.3])
for name in ("tanh", "erf"):
    print(name, dict(zip(biases.tolist(), np.round(theory.order_chaos_line(name, biases), 6).tolist())))

# %% [markdown]
# At $\sigma_b^2 = 0$ the line starts at the $K^* = 0$ critical point $\sigma_w^2 = 1/\phi'(0)^2$ (1 for tanh,
# $\pi/4$ for erf). PDLT's criticality asks more, $\chi_\parallel = \chi_\perp = 1$: by Stein's lemma
# $\chi_\parallel - \chi_\perp = \sigma_w^2 E[\phi\phi'']$, which vanishes only at $K^* = 0$ for tanh, but at a
# $K^* > 0$ for GELU and SWISH, with $\sigma_b^2 > 0$ (the half-stable class, PDLT §5.3.4):

# %%
[theory.critical_points(a) for a in ("tanh", "gelu", "swish")]

# %% [markdown]
# ## 4. The phase diagram (Schoenholz et al. 2017, Fig. 1)
#
# $\xi_c$ over the plane, with the critical line where it diverges:

# %%
theory.phase_diagram("tanh")

# %% [markdown]
# ## 5. The depth scales in finite networks
#
# The claims sample ensembles of finite networks exactly in law by Gaussian conditioning
# (`theory.montecarlo.layer_kernels`), with inputs at the fixed-point variance $q^*$. On the ordered side
# ($\sigma_w^2 = 1.2$) the deviation is $1 - c^l$ from $c^0 = 0.98$; on the chaotic side ($\sigma_w^2 = 3.5$) it is the
# difference of the correlations of two input pairs started at $c^* \pm 0.25$ (the symmetric difference cancels the
# second order of the map). Its decay rate is fitted over $2.5\,\xi_c$ layers and bootstrapped over the networks;
# the rivals are $\xi_q$ and the rate set by $\chi_1$ at $c = 1$ instead of $\chi_c$ at $c^*$. On the critical line
# $1 - c^l$ falls like $1/l$: $1/(1 - c^l)$ grows like a power of depth (the infinite-width map's exponent over the
# window, 1 as $l \to \infty$, since $1 - c' = (1 - c) - b(1 - c)^2$), and the exponential fit's rate excludes the
# rates $1/\xi_c$ at $\sigma_w^2 \mp 10\%$. Quick size here (`theory verify signal` runs the default size):

# %%
outcomes = theory.claims.verify(["signal"], size="quick")
outcomes

# %%
results = {c.id: r for c, r, _ in outcomes}
depth = results["signal.depth_scale"].data
for sw, predicted, measured, se in zip(depth["sigma_w2"], depth["xi_c"], depth["measured"], depth["se"]):
    print(f"sigma_w2 = {sw}: xi_c predicted {predicted:.3f}, measured {measured:.3f} +- {se:.3f}")
results["signal.depth_scale"].figure()

# %%
results["signal.critical_line"].figure()

# %% [markdown]
# **Closing note** (default size: width 2000 and 2000 networks on the chaotic side, 1000 and 500 on the ordered
# side; seed 0; the claims hold, and reject every prediction perturbed by 10 %, at seeds 0 to 3). Critical
# $\sigma_w^2$ for tanh: 1.424205 at $\sigma_b^2 = 0.01$, 1.760955 at 0.05, 1.986073 at 0.1, 2.505127 at 0.3 (1 at
# 0; erf: $\pi/4$ at 0, 1.375839 at 0.05). Depth scales at $\sigma_b^2 = 0.05$: ordered ($\sigma_w^2 = 1.2$)
# $\xi_c = 5.945$ predicted, $5.971 \pm 0.026$ measured (the fit's transient on the infinite-width sequence: 0.017);
# chaotic ($\sigma_w^2 = 3.5$) $\xi_c = 7.768$ predicted, $7.969 \pm 0.069$ measured (transient 0.163: the same fit
# on the infinite-width sequence gives 7.93). The rivals $\xi_q$ (1.81, 0.95) and $1/|\log\chi_1|$ (4.08 on the
# chaotic side) are far outside. On the line the exponent of $1/(1 - c^l)$ over $l = 10..60$ is $1.070 \pm 0.010$
# (infinite-width sequence: 1.060; at $\sigma_w^2 \mp 10\%$: 1.88, 0.63) and the exponential rate
# $0.0242 \pm 0.0002$ (sequence: 0.0240; rivals $1/\xi_c$ = 0.041 ordered, 0.031 chaotic).
