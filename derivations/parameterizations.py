# %% [markdown]
# # abc-parameterizations: the scaling calculus, Table 1, and the coordinate check
#
# Whether a wide network learns features or stays a kernel machine is decided by how the width $n$ enters its
# initialization, its multipliers and its learning rate. Yang & Hu (2021) write an MLP with $L$ hidden layers as
# $h^1 = W^1 \xi$, $x^l = \phi(h^l)$, $h^{l+1} = W^{l+1} x^l$, $f = W^{L+1} x^L$, with $W^l = n^{-a_l} w^l$,
# $w^l_{\alpha\beta} \sim N(0, n^{-2 b_l})$ and the SGD step
# $w^l \leftarrow w^l - \eta n^{-c} \nabla_{w^l} \mathcal{L}$.
# A parameterization is the data $(a_l, b_l, c)$ and the optimizer; everything below is derived from it by one small
# calculus, then measured on finite networks.

# %%
import numpy as np
import sympy as sp

import theory
from theory.parameterizations import MF, MUP, MUP_ADAM, NTK, SP, abc, symbolic

MUP(3)

# %% [markdown]
# ## 1. The scaling calculus
#
# Track the exponent $e$ of a vector's typical coordinate, $\Theta(n^e)$. Two rules decide every exponent: a sum of
# $n$ independent terms of size $n^e$ has size $n^{e + 1/2}$, a sum of $n$ aligned (correlated) terms has size
# $n^{e+1}$; a sum over a fixed number of terms keeps $n^e$ and several contributions take the largest exponent.
# Applied to the forward pass, back-propagation and the update $\Delta W^l \propto n^{-2a_l - c}\, \partial_{h^l}
# \mathcal{L} \otimes x^{l-1}$ (a low-rank matrix whose product with $x^{l-1}$ is an aligned sum), they give the
# sizes at initialization and after each step. For a one-hidden-layer network in the NTK parameterization, the
# calculus recovers the lecture notes' count: the hidden pre-activations move like $n^{-1/2}$ while $f$ moves
# $\Theta(1)$.

# %%
NTK(1).sizes(steps=1)

# %% [markdown]
# The same calculus with the exponents left as symbols, under the stability ansatz (every forward and backward
# vector keeps its $\Theta(1)$ size, as in the paper's inductive proof), gives Yang & Hu's $r$ (Definition 3.2:
# $\Delta x^L = \Theta(n^{-r})$), the stability conditions of their Theorem 3.3, nontriviality and the
# feature-learning / kernel dichotomy:

# %%
generic = symbolic(2)
generic.summary()

# %% [markdown]
# The derived $r$ is a minimum of four linear forms. Definition 3.2 writes it as
# $\min(a_{L+1}+b_{L+1}, 2a_{L+1}+c) + c - 1 + \min_l [2a_l + \mathbb{I}(l=1)]$; expanding both minima gives the same
# four forms, which SymPy confirms term by term:

# %%
a1, a2, a3, b3, c = sp.symbols("a_1 a_2 a_3 b_3 c", real=True)
yang = [g + c - 1 + m for g in (a3 + b3, 2 * a3 + c) for m in (2 * a1 + 1, 2 * a2)]
set(map(sp.expand, yang)) == set(generic.r.args)

# %% [markdown]
# ## 2. Table 1
#
# The named members, one entry each, at depth $L = 3$ (mean field at $L = 1$). Columns: $r$, stable, nontrivial,
# feature learning, kernel regime, and $\varepsilon_{\max}$, the largest $\varepsilon$ such that learning rates
# $\eta\, n^{\varepsilon - c_l}$ keep the network stable ($-1$: the rate must shrink like $1/n$). Standard
# parameterization with $c = 0$ is unstable; with $c = 1$ (Yang & Hu's "SP with learning rate $1/n$") it is a kernel
# machine like NTK, with $r = 1/2$; mean field and $\mu$P learn features with $r = 0$.

# %%
members = {"SP (c = 0)": SP(3), "SP (c = 1)": SP(3, c=1), "NTK": NTK(3), "MF": MF(1), "muP": MUP(3),
           "muP-Adam": MUP_ADAM(3)}
print(f"{'':11s}" + "".join(f"{h:>11s}" for h in ("r", "stable", "nontrivial", "features", "kernel", "eps_max")))
for name, p in members.items():
    row = (p.r, p.stable, p.nontrivial, p.feature_learning, p.kernel_regime, p.max_lr_exponent())
    print(f"{name:11s}" + "".join(f"{str(v):>11s}" for v in row))

# %% [markdown]
# Why SP with $c = 0$ fails, in the calculus' words:

# %%
for line in SP(3).failures():
    print(line)

# %% [markdown]
# ## 3. Solving for the family
#
# With a symbol left free the conditions are SymPy relations. The learning-rate exponents $c$ that make the
# standard parameterization stable, nontrivial and feature-learning:

# %%
c = sp.Symbol("c", real=True)
sp_c = abc(SP(2).a, SP(2).b, c)
[sp_c.solve(c), sp_c.solve(c, "nontrivial"), sp_c.solve(c, "feature_learning")]

# %% [markdown]
# No learning rate lets SP learn features; $\mu$P's initialization does at $c = 0$:

# %%
abc(MUP(2).a, MUP(2).b, c).solve(c, "feature_learning")

# %% [markdown]
# ## 4. The symmetry
#
# $W^l = n^{-a_l - \theta} (n^{\theta} w^l)$: shifting $(a_l, b_l, c) \to (a_l + \theta, b_l - \theta, c - 2\theta)$
# (Adam: $c - \theta$, since Adam's step ignores the gradient's scale) describes the same network and training;
# $\theta$ may differ per layer. Every derived quantity is unchanged, e.g. $r$ of the generic parameterization:

# %%
theta = sp.Symbol("theta", real=True)
sp.expand(generic.shift(theta).r - generic.r)

# %% [markdown]
# $\mu$P for Adam in the form of Yang et al. (2022, Table 3: no multipliers, readout variance $1/n^2$, learning rates
# $\eta$ for the input layer and $\eta/n$ elsewhere) is Yang & Hu's $\mu$P exponents with per-layer rates:

# %%
MUP_ADAM(2).shift([-sp.S.Half, 0, sp.S.Half])

# %% [markdown]
# ## 5. Coordinate sizes per layer
#
# The exact calculus (no stability assumption) for each member at depth 2: rows give the exponents of
# $h^1_0, h^2_0$, then of $\Delta h^1, \Delta h^2, \Delta f$ after steps 1 and 2. Under SP with $c = 0$ the sizes keep
# growing with the steps. (Beyond the first step of an unstable parameterization these are leading orders that
# finite widths reach late: the aligned products need $\Delta h \gg h$.)

# %%
rows = []
for p in [SP(2), SP(2, c=1), NTK(2), MUP(2), MUP_ADAM(2)]:
    s = p.sizes(2)
    rows.append(list(s.h) + [e for t in range(2) for e in (*s.dh[t], s.df[t])])
sp.Matrix(rows)

# %% [markdown]
# ## 6. The standard parameterization's NNGP and NTK
#
# In the standard parameterization ($W^l \sim N(0, \sigma_w^2/n_{l-1})$, $b^l \sim N(0, \sigma_b^2)$, both trained
# directly) the NNGP is the NTK parameterization's, but each layer adds $n_{l-1} \partial K^l/\partial\sigma_w^2 +
# \partial K^l/\partial\sigma_b^2$ to the NTK instead of $\sigma_w^2 \partial K^l/\partial\sigma_w^2 + \sigma_b^2
# \partial K^l/\partial\sigma_b^2$: it grows linearly with the width. A learning rate $\eta/n$ makes the
# function-space kernel $\Theta/n$ finite, and its limit keeps only the hidden and readout weights' terms. At
# widths $n = 10^2, 10^3, 10^4, 10^5$:

# %%
X = np.random.default_rng(0).standard_normal((3, 4))
standard = [theory.nngp_ntk(X, None, "relu", 2, 2.0, 0.1, parameterization="standard", widths=w)
            for w in (100, 1000, 10_000, 100_000)]
ntk = theory.nngp_ntk(X, None, "relu", 2, 2.0, 0.1)
print("same NNGP:", all(np.array_equal(k.nngp, ntk.nngp) for k in standard))
widths = (100, 1000, 10_000, 100_000)
print("Theta_SP(x1, x2) / n:", [round(float(k.ntk[0, 1]) / w, 6) for k, w in zip(standard, widths)])
print("Theta_NTK(x1, x2):   ", round(float(ntk.ntk[0, 1]), 6))

# %% [markdown]
# ## 7. The coordinate check
#
# Finite ReLU networks of widths 64 to 2048 (`theory verify`; 64 to 1024 and four networks per width here, at the
# quick size), trained two steps of full-batch SGD (Adam for $\mu$P-Adam) on one fixed batch, with the per-layer mean
# $|$coordinate$|$ of $\Delta h^l$ and $\Delta f$ fitted against the width on a log-log scale. Each claim holds when
# every fitted slope's interval covers the calculus' exponent (the intervals are 1% family-wise; $\Delta f$
# fluctuates most between networks, so its intervals are the widest; `theory verify` tightens them all):

# %%
outcomes = theory.claims.verify(["parameterizations"], size="quick")
outcomes

# %% [markdown]
# The fitted slopes with their intervals, per parameterization (name: measured slope [interval] against the
# predicted exponent):

# %%
for claim_, result, _ in outcomes:
    for label, (slope, (lo, hi), predicted) in result.data.get("slopes", {}).items():
        print(f"{claim_.id.split('.')[1]:22s} {label:6s} {slope:+.3f} [{lo:+.3f}, {hi:+.3f}]  predicted {predicted:+g}")

# %% [markdown]
# ## 8. $\mu$Transfer: the optimal learning rate across widths
#
# The practical payoff of $\mu$P (Yang et al. 2022, Tensor Programs V): tune the learning rate on a narrow network
# and use it unchanged on a wide one. Why it cannot work in the standard parameterization is one line of the
# calculus. Scale every layer's rate by $n^{\varepsilon}$ and ask for the largest $\varepsilon$ that keeps the
# network stable: `max_lr_exponent` runs the stability conditions with $c_l \to c_l - \varepsilon$ and reads off
# each linear piece's bound. Under SP with one rate for all layers ($c = 0$) the readout's update
# $\Delta W^{L+1} x^L$ is an aligned sum of $n$ terms of size $\eta$, so it grows like $\eta n$: the largest stable
# rate shrinks like $n^{-1}$ (Adam's sign-like steps make the hidden layers' updates aligned too, $n^{-3/2}$ from two
# hidden layers on). Under NTK and $\mu$P the exponent is 0: the same rate is stable at every width.

# %%
sp_adam = abc(SP(1).a, SP(1).b, 0, "adam", "SP-Adam")
for p in (SP(1), NTK(1), MUP(1), MUP_ADAM(1), sp_adam, abc(SP(2).a, SP(2).b, 0, "adam", "SP-Adam")):
    print(f"{p.name:9s} L = {p.depth}, {p.optimizer:4s}: largest stable rate ~ n^({p.max_lr_exponent()})")
print(*SP(1).failures(), sep="\n")

# %% [markdown]
# The optimum of a finite training run sits below the largest stable rate, so under SP it must drift at least as
# fast once the edge catches up with it; under $\mu$P every width trains the same limit dynamics and the optimum
# stays. `theory.montecarlo.lr_sweep` measures this: ensembles of networks trained at every width $\times$ rate of
# one width-independent grid, the loss after a fixed number of steps, and the optimum per width from a quadratic
# fit of log loss against $\log_2 \eta$ around the grid's best rate (Fieller's interval for its argmin; per-network
# fits carry the correlation between rates, since every rate trains the same networks).
#
# The settings are the claims' (`theory.claims.parameterizations.TRANSFER`), and each one matters: a zero
# readout at initialization (under $\mu$P the random initial output shrinks like $n^{-1/2}$, a width-dependent
# handicap otherwise), per-layer rates from the parameterization, a base width $n_0 = 128$ at which $\mu$P *is* SP
# (so the constants are those of a tuned standard network), minibatches of 4 (full-batch descent keeps improving
# up to the stability edge, so the optimum sits on a cliff rather than in a valley), and 400 steps. One hidden
# ReLU layer on a student–teacher task in $d = 16$; here at the quick size (widths 128, 256, 512, 2048, three networks).

# %%
from matplotlib.figure import Figure

from theory.claims import parameterizations as transfer

sweeps = {name: transfer._transfer(name, 0, "quick") for name in ("sp_sgd", "mup_sgd", "mup_adam")}
figure = Figure(figsize=(10, 3.4), layout="constrained")
for ax, (name, title) in zip(figure.subplots(1, 3), [("sp_sgd", "SP, SGD"), ("mup_sgd", r"$\mu$P, SGD"),
                                                     ("mup_adam", r"$\mu$P, Adam")]):
    sweeps[name].figure(ax, label=title)
figure

# %% [markdown]
# The optimum per width ($\log_2 \eta^*$ with its delta-method SE) and the width exponent of $\eta^*$:

# %%
for name, s in sweeps.items():
    opt, fit = s.optimum(), s.exponent()
    cells = ", ".join(f"{n}: {x:+.2f} ± {e:.2f}" for n, x, e in zip(s.widths, opt.log2_lr, opt.se))
    print(f"{name:9s} {cells};  exponent {fit.slope:+.3f} ± {fit.se:.3f}")

# %% [markdown]
# The claims test it at the default size (widths 128 to 2048): $\mu$P's exponent is 0 for SGD and Adam with SP's
# $-1$ excluded, and the loss at the optimum does not grow with the width; SP's exponent excludes 0 and is
# consistent with the edge's $-1$ (it approaches it from above: $\eta^* \approx 1/(1/\eta_{\rm noise} + n/c)$ is
# noise-limited at narrow widths and at the edge at wide ones); and the largest stable rate of full-batch
# descent follows `max_lr_exponent` for SP, NTK and $\mu$P.

# %%
results = theory.claims.verify(["parameterizations.mup_transfer", "parameterizations.sp_lr_shift",
                                "parameterizations.sp_max_lr"], size="quick")
results

# %%
results[2][1].figure()
