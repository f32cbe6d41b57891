# %% [markdown]
# # The NNGP and NTK of deep fully-connected networks
#
# A network in the NTK parameterization, with inputs $x \in \mathbb{R}^d$, weights and biases drawn from
# $N(0, 1)$ and scaled explicitly, $z^0 = \sigma_w W^0 x/\sqrt{d} + \sigma_b b^0$ and
# $z^l = \sigma_w W^l \phi(z^{l-1})/\sqrt{n} + \sigma_b b^l$, becomes a Gaussian process as the width $n$ grows
# (Neal 1996; Lee et al. 2018), and gradient descent trains it as a kernel machine with the neural tangent kernel
# (Jacot et al. 2018). The kernels obey a recursion over layers:
#
# $$K^0 = \sigma_b^2 + \sigma_w^2 \frac{x \cdot x'}{d}, \quad K^l = \sigma_b^2 + \sigma_w^2 \langle \phi(u)\phi(v) \rangle_{K^{l-1}}, \quad \dot K^l = \sigma_w^2 \langle \phi'(u)\phi'(v) \rangle_{K^{l-1}}, \quad \Theta^l = K^l + \dot K^l \Theta^{l-1}.$$
#
# Everything below is derived by `theory` from the activation function alone, then checked against finite networks.

# %%
import numpy as np
import sympy as sp

import theory
from theory.montecarlo import empirical_kernels
from theory.symbols import q12, sigma_w2

relu = theory.activation("relu")
relu

# %% [markdown]
# ## 1. The Gaussian expectation of the derivative: Sheppard's formula
#
# ReLU's derivative is the step function $H$. For $(u, v)$ Gaussian with covariance entries $q_{11}, q_{12}, q_{22}$,
# $E[H(u)H(v)]$ is the probability that both are positive, $(\pi - \theta)/2\pi$, where $\theta$ is the angle
# between the two inputs in feature space, $\cos\theta = q_{12}/\sqrt{q_{11} q_{22}}$.

# %%
step_kernel = theory.gaussian_expectation(relu.derivative, relu.derivative)
step_kernel

# %% [markdown]
# ## 2. The arc-cosine kernel, by Gaussian integration by parts
#
# Writing $\mathrm{relu}(u) = u H(u)$ and using Stein's lemma $E[u F] = q_{11} E[\partial_u F] + q_{12} E[\partial_v F]$,
# the package reduces $E[\mathrm{relu}(u)\,\mathrm{relu}(v)]$ to the delta and step expectations above and obtains
# the arc-cosine kernel of Cho & Saul (2009):

# %%
arccos_kernel = theory.gaussian_expectation(relu, relu)
arccos_kernel

# %% [markdown]
# Price's theorem says that differentiating with respect to the covariance $q_{12}$ gives the expectation of the
# derivatives. The two formulas were derived independently; their difference simplifies to zero:

# %%
sp.simplify((sp.diff(arccos_kernel, q12) - step_kernel).rewrite(sp.acos))

# %% [markdown]
# ## 3. One layer, its diagonal, and criticality
#
# On the diagonal ($x = x'$, $\theta = 0$) the maps become $K \mapsto \sigma_b^2 + \sigma_w^2 K/2$ and
# $\dot K = \sigma_w^2/2$. The network is critical (signals neither explode nor vanish, $\chi = \dot K = 1$) at:

# %%
layer = theory.layer("relu")
print("diagonal map:", layer.nngp_diag, "   derivative map:", layer.kdot_diag)
sp.solve(sp.Eq(layer.kdot_diag, 1), sigma_w2)

# %% [markdown]
# ## 4. Depth two
#
# Composing the layer map gives the depth-$L$ kernels. The layer-by-layer system stays compact at any depth (depth
# 100 is as cheap as depth 2); at criticality ($\sigma_w^2 = 2$, $\sigma_b^2 = 0$):

# %%
k = theory.mlp_kernels("relu", depth=2, sigma_w2=2, sigma_b2=0)
k.equations

# %% [markdown]
# For inputs on the sphere $|x|^2 = d$ the variances stay at $K(x, x) = 2$, and the layer map acts on the
# correlation $\rho = x \cdot x'/d$ alone, through the normalized arc-cosine map $J$:

# %%
from theory.symbols import g11, g12, g22, q11, q22, sigma_b2

J = sp.simplify(layer.nngp.subs({q11: 1, q22: 1, sigma_w2: 2, sigma_b2: 0}).rewrite(sp.acos))
J

# %% [markdown]
# and the closed-form depth-2 NNGP is exactly $2\,J(J(\rho))$: the difference of the two simplifies to zero.

# %%
on_sphere = k.nngp.subs({g11: 1, g22: 1}).rewrite(sp.acos)
sp.simplify(on_sphere - 2 * J.subs(q12, J.subs(q12, g12)))

# %% [markdown]
# ## 5. Numbers, and finite networks
#
# `theory.nngp_ntk` evaluates the same derived layer map on arrays (lambdified once, looped over layers). An
# ensemble of width-1024 networks measures the same kernels; each entry's $z$-score is (Monte Carlo mean minus
# theory) over its standard error.

# %%
X = np.random.default_rng(0).standard_normal((4, 8))
exact = theory.nngp_ntk(X, None, "relu", depth=2, sigma_w2=2.0)
mc = empirical_kernels(X, None, "relu", depth=2, width=1024, networks=100, seed=0, sigma_w2=2.0)
print("NTK (theory):\n", np.round(exact.ntk, 4))
print("z-scores of the Monte-Carlo NTK:\n", np.round((mc.ntk_mean - exact.ntk) / mc.ntk_se, 2))

# %% [markdown]
# ## 6. The claims
#
# The registered claims about these kernels, run at the quick size (`theory verify nngp ntk` runs them at the
# default size):

# %%
theory.claims.verify(["nngp", "ntk"], size="quick")

# %% [markdown]
# The figure of the NTK claim: every kernel entry's Monte-Carlo mean against the theory.

# %%
result, seconds = theory.claims.run(theory.claims.select(["ntk.mc_agreement.relu"])[0], size="quick")
result.figure()
