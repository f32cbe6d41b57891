# %% [markdown]
# # Training dynamics of wide networks: the NTK solution, and where it breaks
#
# Gradient descent on the loss $L = \frac{1}{2D}\sum_{\alpha=1}^{D} (f(x_\alpha) - y_\alpha)^2$ moves every output
# along the neural tangent kernel: $\frac{d f_t(x)}{dt} = -\frac{\eta}{D}\sum_\alpha \Theta_t(x, x_\alpha)
# (f_t(x_\alpha) - y_\alpha)$. In the infinite-width limit of the NTK parameterization the kernel is deterministic and
# frozen at its initial value (Jacot et al. 2018), so the equation is linear and can be solved exactly (Lee et al.
# 2019). This document derives that solution with `theory`, then puts finite networks against it: where it holds
# (lazy training, linearization) and where it does not (the mean-field scaling).

# %%
import numpy as np
import sympy as sp

import theory
from theory import dynamics
from theory.symbols import eta, t

# %% [markdown]
# ## 1. One mode
#
# In the eigenbasis of the training-set kernel $\Theta = V \Lambda V^T$ the residual $r = v_i^T(f_t(X) - Y)$ obeys
# $\dot r = -\frac{\eta\lambda}{D} r$. SymPy's `dsolve` gives its solution, and `rsolve` that of gradient descent,
# $r_{t+1} = r_t - \frac{\eta\lambda}{D} r_t$:

# %%
flow, descent = dynamics.mode_decay(), dynamics.mode_decay(discrete=True)
sp.Tuple(flow, descent)

# %% [markdown]
# A test point does not feed back into the training set: it integrates the training residual,
# $f_t(x) = f_0(x) - \Theta(x, X) V \mathrm{diag}(g_t) V^T (f_0(X) - Y)$, with the gain of each mode
# $g_t(\lambda) = \frac{\eta}{D}\int_0^t r_s\, ds$ (a sum over the steps for gradient descent):

# %%
sp.Tuple(dynamics.mode_gain(), dynamics.mode_gain(discrete=True))

# %% [markdown]
# Both gains are $(1 - r_t/r_0)/\lambda$, which is how $\Theta^{-1}(I - e^{-\eta\Theta t/D})$ arises. At $t \to \infty$ the
# gain is $1/\lambda$: the trained network is kernel regression with the NTK.

# %%
sp.simplify(dynamics.mode_gain() - (1 - flow) / dynamics.lam), sp.limit(dynamics.mode_gain(), t, sp.oo)

# %% [markdown]
# ## 2. Stability: the largest learning rate
#
# A mode of gradient descent contracts while $|1 - \eta\lambda/D| < 1$. The top eigenvalue sets the bound:

# %%
dynamics.max_learning_rate()

# %% [markdown]
# ## 3. The whole solution, lifted to matrices
#
# Lifting the modes to matrix functions, $F(\Theta) = V F(\Lambda) V^T$, gives the training and test trajectories.
# Over initializations $f_0$ is the NNGP, a Gaussian process with kernel $K$, so $f_t(x)$ is Gaussian with a mean
# that involves only the NTK and a covariance that involves both kernels (Lee et al. 2019, eqs. 15-16). The NNGP
# posterior (exact Bayesian inference) is listed last, for comparison:

# %%
dynamics.equations()

# %% [markdown]
# ## 4. Numbers: one eigendecomposition for every time
#
# For a ReLU network of depth 2 on eight points in $\mathbb{R}^3$, the NTK-GP mean and standard deviation at two test
# points, at four times at once, next to the NNGP posterior:

# %%
rng = np.random.default_rng(0)
x = rng.standard_normal((10, 3))
y = np.sin(x[:8, 0])
K, Theta = theory.nngp_ntk(x, None, "relu", depth=2, sigma_w2=2.0)
gd = dynamics.MSEDynamics(Theta[:8, :8], y, lr=1.0, nngp=K[:8, :8])
mean, cov = gd.gaussian([0.0, 10.0, 100.0, np.inf], Theta[8:, :8], K[8:, :8], K[8:, 8:])
posterior = dynamics.nngp_posterior(K[:8, :8], y, K[8:, :8], K[8:, 8:])
print("NTK-GP mean at t = 0, 10, 100, inf:\n", np.round(mean, 4))
print("NTK-GP std:\n", np.round(np.sqrt(np.diagonal(cov, axis1=1, axis2=2)), 4))
print("NNGP posterior mean, std:", np.round(posterior.mean, 4), np.round(np.sqrt(np.diag(posterior.covariance)), 4))
print("largest stable learning rate 2D/lambda_max:", round(gd.max_lr, 4))

# %% [markdown]
# ## 5. Spectral bias
#
# The residual along eigenvector $i$ decays as $(1 - \eta\lambda_i/D)^t$: the top modes are learned in a few steps,
# the bottom ones last.

# %%
descent_gd = dynamics.MSEDynamics(Theta[:8, :8], y, lr=0.5 * gd.max_lr, discrete=True)
print("eigenvalues:", np.round(descent_gd.eigenvalues, 3))
print("|residual| per mode after 0, 5, 50 steps:\n", np.round(np.abs(descent_gd.modes([0, 5, 50])), 4))

# %% [markdown]
# ## 6. Cross-entropy
#
# With the cross-entropy the same function-space flow, $\dot f = -\frac{\eta}{D}\Theta(p(f) - Y)$, is no longer
# linear; `cross_entropy_flow` integrates it with `scipy.integrate.solve_ivp`. Three classes, the training logits'
# predicted class at times 0, 1 and 20 against the labels:

# %%
labels = np.arange(8) % 3
ce = dynamics.cross_entropy_flow(Theta[:8, :8], np.eye(3)[labels], [0.0, 1.0, 20.0], lr=5.0)
print("labels:   ", labels)
print("predicted:", ce.train.argmax(axis=2))

# %% [markdown]
# ## 7. Finite networks
#
# The claims train real networks (one hidden layer of erf units, NTK parameterization, $D = 8$ points in
# $\mathbb{R}^4$) with full-batch gradient descent and compare:
#
# - the ensemble mean and variance of $f_t(x)$ at width 1024 with the NTK-GP, step by step;
# - the relative motion of the parameters ($\propto n^{-1/2}$) and of the empirical NTK and NNGP ($\propto 1/n$: every
#   term of $d\Theta/dt$ is odd in the readout weights, so the $n^{-1/2}$ of the general bound cancels; Dyer &
#   Gur-Ari 2020), and the NTK's velocity at initialization ($\propto 1/n$);
# - the gap between the network and its first-order Taylor model ($\propto 1/n$), and the second-order model, whose
#   gap is one order higher in the training time;
# - the mean-field scaling (readout $\frac{1}{n}\sum_i v_i\phi(z_i)$, learning rate $\propto n$), whose kernel moves by
#   $\Theta(1)$ at every width.
#
# At the quick size (`theory verify dynamics` runs the default size):

# %%
outcomes = theory.claims.verify(["dynamics"], size="quick")
outcomes

# %% [markdown]
# The figures of three of them: lazy training of the NTK, the linearization gap, and the mean-field contrast.

# %%
results = {c.id: r for c, r, _ in outcomes}
results["dynamics.lazy.ntk"].figure()

# %%
results["dynamics.linearization"].figure()

# %%
results["dynamics.mean_field"].figure()

# %% [markdown]
# ## 8. The parameter-space solution
#
# The linearized network moves its parameters along its Jacobian, $\dot\theta = -\frac{\eta}{D}\nabla_\theta
# f_0(X)^T (f_t(X) - Y)$; integrating the residual mode by mode with the same gain $g_t(\lambda)$ gives (Lee et al.
# 2019, eq. 10), for the network's own empirical NTK $\hat\Theta = \nabla_\theta f_0 \nabla_\theta f_0^T$:

# %%
dynamics.equations()[-1], dynamics.equations(discrete=True)[-1]

# %% [markdown]
# `MSEDynamics.parameter_coefficients(t, f0)` returns $c_t = -\Theta^{-1}(I - e^{-\eta\Theta t/D})(f_0(X) - Y)$, so that
# $\theta_t - \theta_0 = \nabla_\theta f_0(X)^T c_t$ is one back-propagation with cotangent $c_t$
# (`MLP.grads(params, X, c_t)`), and `parameter_change(t, J, f0)` assembles it from an explicit Jacobian. Only the
# $D$ directions of the Jacobian's row space move. For a model linear in $\theta$ this is exact (here random
# features, against the $P \times P$ matrix exponential of the flow in parameter space):

# %%
import scipy.linalg

features = rng.standard_normal((8, 20))  # D = 8 points, P = 20 parameters
theta0 = rng.standard_normal(20)
linear = dynamics.MSEDynamics(features @ features.T, y, lr=1.0)
generator = np.zeros((21, 21))
generator[:20, :20], generator[:20, 20] = -features.T @ features / 8, features.T @ y / 8
exact = scipy.linalg.expm(5.0 * generator) @ np.append(theta0, 1.0)
print("max |formula - matrix exponential| at t = 5:",
      np.abs(linear.parameter_change(5.0, features, features @ theta0) - (exact[:20] - theta0)).max())

# %% [markdown]
# In a real network the Jacobian itself moves, by $O(n^{-1/2})$ per coordinate and coherently (the lazy regime), so a
# fraction $O(n^{-1/2})$ of the parameter motion leaves the initial row space; projected back onto it
# ($\nabla_\theta f_0 \, (\nabla_\theta f_t - \nabla_\theta f_0)^T r$ sums $n$ terms odd in the readout weights,
# like the NTK's change) the error is $O(1/n)$. The claim `dynamics.parameter_solution` measures both in erf
# networks of widths 64 to 4096 (here at the quick size):

# %%
results["dynamics.parameter_solution"].figure()

# %% [markdown]
# ## 9. Spectral bias on the sphere
#
# On $S^{d-1}$ with uniformly spread inputs the kernel operator $\frac{1}{D}\Theta(X, X)$ has the spherical harmonics
# as eigenvectors and the Funk-Hecke eigenvalues $\mu_k$ (`theory.scaling.kernel_spectrum`) as eigenvalues, so the
# degree-$k$ part of the residual decays like $(1 - \eta\mu_k)^t$: low frequencies are learned first. For a
# one-hidden-layer ReLU network ($\sigma_w^2 = 2$) on $S^2$:

# %%
from theory import scaling

mu_relu = scaling.kernel_spectrum(3, 4, "relu", 1, "ntk", 2.0, 0.0).eigenvalue
print("mu_1, mu_2, mu_4 =", np.round(mu_relu[[1, 2, 4]], 5), "  (mu_0 =", round(mu_relu[0], 5), ")")

# %% [markdown]
# The claim `dynamics.spectral_bias` trains such networks (antisymmetric initialization, so $f_0 = 0$) on 400 points
# of a Fibonacci lattice with the target $(Y_1 + Y_2 + Y_4)/\sqrt{3}$, unit-norm zonal harmonics of degrees 1, 2
# and 4 (`theory.scaling.zonal_harmonic`), at $\eta = D/\lambda_{\max}$, and fits each degree's decay rate; the rival
# is one rate for all degrees. The residual per degree against the theory curves $(1 - \eta\mu_k)^t$ (quick size):

# %%
results["dynamics.spectral_bias"].figure()
