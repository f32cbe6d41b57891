r"""Claims of the dynamics issue: finite networks trained by gradient descent against the NTK solution.

Setting (shared by every claim): one hidden layer of erf units in the NTK parameterization (σ_w² = 2, σ_b² = 0.1),
D = 8 training and M = 4 test inputs on the sphere |x|² = d = 4, targets y = sin(2 u·x), full-batch gradient
descent on (1/2D) Σ (f - y)² (:func:`theory.montecarlo.train`) at lr = D/λ_max(Θ), half the largest stable rate.

What the claims measure, and the exponents they predict:

* ``dynamics.trajectory_mean`` / ``_variance`` -- an ensemble of width-1024 networks has the NTK-GP mean and
  variance (Lee et al. 2019) at every recorded step;
* ``dynamics.lazy.parameters`` -- ‖θ_T - θ_0‖/‖θ_0‖ ∝ n^{-1/2}: O(1) total motion spread over ~n parameters;
* ``dynamics.lazy.ntk``, ``dynamics.lazy.nngp`` -- the empirical kernels move by O(1/n): every term of dΘ/dt is
  odd in the readout weights, so the n^{-1/2} of Lee et al.'s bound cancels (Dyer & Gur-Ari 2020, Huang & Yau
  2020); measured here, the NTK and NNGP changes fall like 1/n, not n^{-1/2};
* ``dynamics.hierarchy`` -- dΘ/dt at initialization ∝ 1/n for the same reason (untrained networks, n = 16 .. 8192);
* ``dynamics.linearization`` -- the network departs from its first-order Taylor model by O(1/n) at a fixed
  training time (5 steps);
* ``dynamics.quadratic_model`` -- the second-order model's gap is one order higher in the training time
  τ = ηt, so its ratio to the linear model's gap vanishes like τ (τ varied through η at a fixed step count, the
  order measured per network);
* ``dynamics.mean_field`` -- with a 1/n readout (and lr ∝ n) the NTK moves by Θ(1) at every width.
"""

from functools import lru_cache

import numpy as np
import scipy.special
import sympy as sp

from .. import stats
from ..activations import activation as _activation
from ..dynamics import D, MSEDynamics, cross_entropy_flow, equations, lam, mode_decay
from ..kernels import nngp_ntk
from ..montecarlo import MLP, train
from ..numeric import lambdify
from ..symbols import eta, n, t, z
from .base import claim, combine, compare, compare_all, condition, power_law, seed_for, sized

ACTIVATION, SIGMA_W2, SIGMA_B2 = "erf", 2.0, 0.1
DIM, TRAIN, TEST, STEPS = 4, 8, 4, 40
#: The O(1/n) departure of the ensemble from its NTK-GP, bounded by BIAS/n in units of the prior scale (a stated
#: bound, not derived: the ensemble mean of the gap to the linearization, RMS over steps and inputs, was measured at
#: ~0.4/n over n = 64 .. 2048 with ~30 000 networks; one network's gap is ~4/n after 40 steps).
BIAS = 4.0
SOURCE_LEE = "Lee et al. 2019 (Wide neural networks of any depth evolve as linear models), eqs. 15-16; notes 001"
SOURCE_HIERARCHY = ("Dyer & Gur-Ari 2020 (Asymptotics of wide networks from Feynman diagrams); Huang & Yau 2020 "
                    "(neural tangent hierarchy); Lee et al. 2019 (an O(n^{-1/2}) bound); notes 001")


@lru_cache(maxsize=1)
def _data():
    """Training inputs (D, d), test inputs (M, d) on the sphere |x|² = d, targets (D, 1): part of the claims."""
    rng = np.random.default_rng(2019)
    x = rng.standard_normal((TRAIN + TEST, DIM))
    x *= np.sqrt(DIM) / np.linalg.norm(x, axis=1, keepdims=True)
    u = np.ones(DIM) / np.sqrt(DIM)
    return x[:TRAIN], x[TRAIN:], np.sin(2 * x[:TRAIN] @ u)[:, None]


@lru_cache(maxsize=1)
def _theory():
    """Infinite-width K and Θ on train + test inputs, the learning rate, and the NTK-GP of gradient descent."""
    X, X_test, Y = _data()
    K, theta = nngp_ntk(np.concatenate([X, X_test]), None, ACTIVATION, 1, SIGMA_W2, SIGMA_B2)
    lr = TRAIN / np.linalg.eigvalsh(theta[:TRAIN, :TRAIN]).max()
    return K, theta, lr, MSEDynamics(theta[:TRAIN, :TRAIN], Y, lr, nngp=K[:TRAIN, :TRAIN], discrete=True)


def _readout_only():
    """The rival of the trajectory claims: the same gradient descent with the NNGP K in place of Θ (the dynamics of
    training the readout layer alone)."""
    K, _, lr, _ = _theory()
    return MSEDynamics(K[:TRAIN, :TRAIN], _data()[2], lr, nngp=K[:TRAIN, :TRAIN], discrete=True)


def _mlp(width, **kwargs):
    return MLP(DIM, (width,), ACTIVATION, sigma_w2=SIGMA_W2, sigma_b2=SIGMA_B2, **kwargs)


def _outputs(run):
    """(T, E, D + M) outputs on train then test inputs from a :class:`~theory.montecarlo.Trajectory`."""
    return np.concatenate([run.f_train[..., 0], run.f_test[..., 0]], axis=2)


# --------------------------------------------------------------------------------------------------------------
# The ensemble along the trajectory
# --------------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _ensemble(seed, size):
    """Networks of width >= 1024 trained together; per test input and recorded step, control-variate estimates of
    the ensemble mean and variance of f_t(x) with their standard errors.

    With the predicted A_t and each network's own f_0, L = f_0(x) - A_t f_0(X) has mean 0 and, given the hidden
    layer, variance cᵀ K̂ c (c = (1, -A_t), K̂ the network's empirical NNGP on X and x): so with
    δ = f_t(x) - L - A_t Y, E f_t = A_t Y + E δ and Var f_t = E[cᵀK̂c] + 2 E[L δ] + Var δ, both estimated by means
    over networks of per-network terms. This holds for any A_t (the estimates are unbiased whatever the theory
    says) and is precise when the network follows its NTK-GP path (δ small).
    """
    width, networks = sized(size, 1024, 1024, 2048), sized(size, 24, 48, 160)
    X, X_test, Y = _data()
    K, theta, lr, dyn = _theory()
    mlp = _mlp(width)
    params = mlp.init(seed_for(seed, "dynamics.ensemble"), networks)
    run = train(mlp, params, X, Y, lr, STEPS, X_test=X_test, record_every=5)
    f = _outputs(run)[:, :, TRAIN:]  # (T, E, M)
    f0 = _outputs(run)[0]  # (E, D + M)
    A = dyn.weights(run.steps, theta[TRAIN:, :TRAIN])  # (T, M, D)
    L = f0[None, :, TRAIN:] - np.einsum("tmd,ed->tem", A, f0[:, :TRAIN])
    delta = f - L - (A @ Y)[:, None, :, 0]
    c = np.concatenate([-A, np.broadcast_to(np.eye(TEST), A.shape[:1] + (TEST, TEST))], axis=2)  # (T, M, D + M)
    k_hat = mlp.nngp(params, np.concatenate([X, X_test]))  # (E, N, N), train inputs first like c
    quad = np.einsum("tmi,eij,tmj->tem", c, k_hat, c)
    var_terms = quad + 2 * L * delta + (delta - delta.mean(1, keepdims=True)) ** 2 * networks / (networks - 1)
    mean = (A @ Y)[..., 0] + delta.mean(1)
    return dict(steps=run.steps, width=width, networks=networks, lr=lr, mean=mean,
                mean_se=delta.std(1, ddof=1) / np.sqrt(networks), var=var_terms.mean(1),
                var_se=var_terms.std(1, ddof=1) / np.sqrt(networks), raw_mean=f.mean(1), raw_var=f.var(1, ddof=1))


def _solved(i):
    """Equation ``i`` of the gradient-descent solution with A_t(x) written out."""
    eqs = equations(True)
    return eqs[i].xreplace({eqs[3].lhs: eqs[3].rhs})


def _trajectory_plot(e, key, theory_curve, label):
    def plot(fig):
        ax = fig.add_subplot()
        steps = np.arange(STEPS + 1)
        curve = theory_curve(steps)
        for m in range(TEST):
            line, = ax.plot(steps, curve[:, m], "-", lw=1)
            ax.errorbar(e["steps"], e[key][:, m], yerr=5 * e[f"{key}_se"][:, m], fmt="o", ms=3, capsize=2,
                        color=line.get_color())
        ax.plot([], [], "k-", lw=1, label="NTK-GP (theory)")
        ax.errorbar([], [], yerr=[], fmt="ko", ms=3, label=f"{e['networks']} networks of width {e['width']} (5 SE)")
        ax.set(xlabel="gradient-descent step t", ylabel=label, title="erf, one hidden layer, 4 test inputs")
        ax.legend()

    return plot


@claim("dynamics.trajectory_mean",
       "Over random initializations, the mean output of wide networks trained by gradient descent follows the "
       "NTK-GP mean $\\mu_t(x) = \\Theta(x, X)\\Theta^{-1}(I - (I - \\eta\\Theta/D)^t) Y$ at every step.",
       SOURCE_LEE, lambda: _solved(5))
def _trajectory_mean(seed, size):
    e = _ensemble(seed, size)
    K, theta, _, dyn = _theory()
    predicted = dyn.predict(e["steps"], ntk_test=theta[TRAIN:, :TRAIN])[..., 0]
    bias = BIAS / e["width"] * np.sqrt(np.diag(K)[TRAIN:])
    plot = _trajectory_plot(e, "mean", lambda s: dyn.predict(s, ntk_test=theta[TRAIN:, :TRAIN])[..., 0],
                            "mean of $f_t(x)$")
    readout = _readout_only().predict(e["steps"], ntk_test=K[TRAIN:, :TRAIN])[..., 0]
    return compare_all(predicted, e["mean"], e["mean_se"], bias=np.broadcast_to(bias, predicted.shape),
                       rivals={"the NNGP as the kernel (readout-only training)": readout},
                       what="(step, test input) pairs", data={**e, "predicted": predicted}, plot=plot)


@claim("dynamics.trajectory_variance",
       "Over random initializations, the variance of wide trained networks follows the NTK-GP covariance "
       "$\\Sigma_t(x, x)$, which involves both the NNGP $K$ and the NTK $\\Theta$, at every step.",
       SOURCE_LEE, lambda: _solved(6))
def _trajectory_variance(seed, size):
    e = _ensemble(seed, size)
    K, theta, _, dyn = _theory()

    def variance(steps):
        cov = dyn.covariance(steps, theta[TRAIN:, :TRAIN], K[TRAIN:, :TRAIN], K[TRAIN:, TRAIN:])
        return np.diagonal(cov, axis1=-2, axis2=-1)

    predicted = variance(e["steps"])
    bias = BIAS / e["width"] * np.diag(K)[TRAIN:]
    readout = np.diagonal(_readout_only().covariance(e["steps"], K[TRAIN:, :TRAIN], K[TRAIN:, :TRAIN],
                                                     K[TRAIN:, TRAIN:]), axis1=-2, axis2=-1)
    return compare_all(predicted, e["var"], e["var_se"], bias=np.broadcast_to(bias, predicted.shape),
                       rivals={"the NNGP as the kernel (readout-only training)": readout},
                       what="(step, test input) pairs", data={**e, "predicted": predicted},
                       plot=_trajectory_plot(e, "var", variance, "variance of $f_t(x)$"))


# --------------------------------------------------------------------------------------------------------------
# The width sweep: lazy training, the hierarchy, the linearization
# --------------------------------------------------------------------------------------------------------------


def _widths(size):
    """The widths of the mean-field and cross-entropy sweeps."""
    return sized(size, [64, 128, 256, 512, 1024], [64, 128, 256, 512, 1024, 2048, 4096],
                 [64, 128, 256, 512, 1024, 2048, 4096, 8192])


def _networks(base, width):
    """Fewer networks where they fluctuate less: ~ base·(64/n)^{1/4}, at least 6."""
    return max(6, int(round(base * (64 / width) ** 0.25)))


def _relative(a, b):
    """‖a - b‖_F / ‖b‖_F per network, over the trailing two axes."""
    return np.linalg.norm(a - b, axis=(-2, -1)) / np.linalg.norm(b, axis=(-2, -1))


def _flat(params):
    return np.concatenate([p.reshape(p.shape[0], -1) for pair in params for p in pair], axis=1)


def _kernel_velocity(mlp, params, X, Y, inputs, eps=1e-3):
    """dΘ/dt at initialization under gradient flow θ' = -∇L, by a central difference in θ (error O(eps²))."""
    residual = mlp.apply(params, X) - Y
    grads = mlp.grads(params, X, residual / len(X))

    def moved(sign):
        return [(W - sign * eps * gW, b - sign * eps * gb) for (W, b), (gW, gb) in zip(params, grads)]

    return (mlp.ntk(moved(1), inputs) - mlp.ntk(moved(-1), inputs)) / (2 * eps)


def _design(size, bases, minimum):
    """(width, networks) of a width sweep: widths 64 .. 8192 (2.1 decades; below 64 some networks start with
    λ_max(Θ̂_0) beyond the stable 2D/lr and diverge, and at n = 32 the NTK already moves by ~12 %: the 1/n series
    converges slowly), networks ∝ n^{-1/2} (``bases``: at n = 64, per size; at least ``minimum``): the cost per
    network grows like n, and the narrow widths pin the fits' 1/n corrections."""
    widths = sized(size, [64, 128, 256, 512, 1024], [64, 128, 256, 512, 1024, 2048, 4096, 8192],
                   [64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384])
    return [(w, max(minimum, int(round(sized(size, *bases) * (64 / w) ** 0.5)))) for w in widths]


@lru_cache(maxsize=4)
def _sweep(seed, size):
    """Per width: relative changes of θ, Θ̂, K̂ over training."""
    X, X_test, Y = _data()
    inputs = np.concatenate([X, X_test])
    _, _, lr, _ = _theory()
    rows = {k: [] for k in ("parameters", "ntk", "nngp")}
    design = _design(size, (24, 560, 1200), 8)
    for width, count in design:
        mlp = _mlp(width)
        params = mlp.init(seed_for(seed, "dynamics.sweep", width), count)
        run = train(mlp, params, X, Y, lr, STEPS, record_every=STEPS)
        per_network = {
            "parameters": np.linalg.norm(_flat(run.params) - _flat(params), axis=1) / np.linalg.norm(_flat(params),
                                                                                                    axis=1),
            "ntk": _relative(mlp.ntk(run.params, inputs), mlp.ntk(params, inputs)),
            "nngp": _relative(mlp.nngp(run.params, inputs), mlp.nngp(params, inputs)),
        }
        for key, values in per_network.items():
            rows[key].append(stats.mean_se(values))
    return {key: np.array(v) for key, v in rows.items()} | {"widths": np.array([w for w, _ in design], float)}


def _loglog(result, ylabel, title):
    """Points, the fitted law with its corrections (b₁/n + …), and the predicted slope."""
    def plot(fig):
        ax = fig.add_subplot()
        x, y, y_se = result.data["x"], result.data["y"], result.data["y_se"]
        ax.errorbar(x, y, yerr=2 * y_se, fmt="o", capsize=3, label="networks (2 SE)")
        a, s, *b = result.data["fit"]
        grid = np.geomspace(x[0], x[-1], 50)
        ax.plot(grid, np.exp(a + s * np.log(grid) + sum(c * grid ** -(j + 1) for j, c in enumerate(b))), "-",
                label=f"fit with its leading correction{'s' if len(b) > 1 else ''}: slope {s:.3f}")
        ax.plot(x, y[-1] * (x / x[-1]) ** result.prediction, "k--", label=f"predicted slope {result.prediction:g}")
        ax.set(xscale="log", yscale="log", xlabel="width n", ylabel=ylabel, title=title)
        ax.legend()

    return plot


def _sweep_claim(key, exponent, ylabel, seed, size, rival):
    """The fitted exponent of ``key`` against the width, with a leading 1/n correction."""
    s = _sweep(seed, size)
    result = power_law(s["widths"], s[key][:, 0], s[key][:, 1], exponent, correction=True, rivals=rival)
    result.plot = _loglog(result, ylabel, "erf, one hidden layer, NTK parameterization")
    return result


@claim("dynamics.lazy.parameters",
       "Lazy training: the relative change of the parameters between initialization and the end of training falls "
       "like $n^{-1/2}$.", SOURCE_LEE, n ** sp.Rational(-1, 2))
def _lazy_parameters(seed, size):
    return _sweep_claim("parameters", -0.5, r"$\|\theta_T - \theta_0\| / \|\theta_0\|$", seed, size,
                        {"1/n (like the kernels)": -1.0})


@claim("dynamics.lazy.ntk",
       "Lazy training: the relative change of the empirical NTK during training falls like $1/n$ (faster than "
       "the $n^{-1/2}$ bound).", SOURCE_HIERARCHY, 1 / n)
def _lazy_ntk(seed, size):
    return _sweep_claim("ntk", -1.0, r"$\|\hat\Theta_T - \hat\Theta_0\| / \|\hat\Theta_0\|$", seed, size,
                        {"the n^-1/2 bound": -0.5})


@claim("dynamics.lazy.nngp",
       "Lazy training: the relative change of the empirical NNGP (the readout's kernel) during training falls "
       "like $1/n$.", SOURCE_HIERARCHY, 1 / n)
def _lazy_nngp(seed, size):
    return _sweep_claim("nngp", -1.0, r"$\|\hat K_T - \hat K_0\| / \|\hat K_0\|$", seed, size,
                        {"the n^-1/2 bound": -0.5})


def _loss_controlled(values, f0_train):
    """The mean over networks of ``values`` and its SE, with the initial loss ‖f_0(X) - Y‖² as a control variate
    (:func:`theory.stats.controlled_mean`): its mean tr K(X, X) + ‖Y‖² is exact at one hidden layer."""
    K, Y = _theory()[0], _data()[2]
    loss = np.sum((f0_train - Y[:, 0]) ** 2, axis=1)
    return stats.controlled_mean(values, loss, np.trace(K[:TRAIN, :TRAIN]) + np.sum(Y**2))


#: ``dynamics.hierarchy``: widths 16 .. 8192 (nearly three decades; the velocity needs no training, so the range is
#: cheap), networks ∝ n^{-0.6} (an equal share of the cost per decade would be n^{-1}; the narrow widths also pin the
#: 1/n correction).
HIERARCHY_WIDTHS = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192]


@lru_cache(maxsize=4)
def _velocity(seed, size):
    """Per width, ‖dΘ̂/dt‖_F/‖Θ‖_F at initialization (Θ the infinite-width NTK on the train and test inputs) with its
    standard error: the mean over networks with the initial loss as a control variate (‖f_0(X) - Y‖² has the exact
    mean tr K(X, X) + ‖Y‖² at one hidden layer, and drives the velocity: it removes ~half its variance).

    The velocity is odd in the readout weights (v, b) -> -(v, b), like f_0: the joint law of (n dΘ̂/dt, f_0), sums over
    the units, has no odd cumulants, so the mean norm is c/n (1 + O(1/n)) -- the fit's 1/n correction. It is
    normalized by the infinite-width Θ (a constant), so that only the velocity fluctuates."""
    X, X_test, Y = _data()
    inputs = np.concatenate([X, X_test])
    theta = _theory()[1]
    widths = sized(size, HIERARCHY_WIDTHS[1:-2], HIERARCHY_WIDTHS, HIERARCHY_WIDTHS + [16384])
    base = sized(size, 60, 400, 1200)
    rows = []
    for width in widths:
        mlp = _mlp(width)
        count = max(12, int(round(base * (64 / width) ** 0.6)))
        params = mlp.init(seed_for(seed, "dynamics.hierarchy", width), count)
        velocity = np.linalg.norm(_kernel_velocity(mlp, params, X, Y, inputs), axis=(1, 2)) / np.linalg.norm(theta)
        rows.append(_loss_controlled(velocity, mlp.apply(params, X)[..., 0]))
    return np.array(widths, float), np.array(rows)


@claim("dynamics.hierarchy",
       "At initialization the NTK's velocity $d\\Theta/dt$, the second equation of the hierarchy, is suppressed "
       "like $1/n$.", SOURCE_HIERARCHY, 1 / n)
def _hierarchy(seed, size):
    widths, rows = _velocity(seed, size)
    result = power_law(widths, rows[:, 0], rows[:, 1], -1.0, correction=True, rivals={"n^-1/2": -0.5})
    result.plot = _loglog(result, r"$\|d\hat\Theta/dt\|_F / \|\Theta\|_F$ at $t = 0$",
                          "erf, one hidden layer, NTK parameterization")
    return result


#: ``dynamics.linearization``: the gap after LINEAR_STEPS steps, over the lazy sweep's widths (:func:`_design`),
#: networks in chunks of at most 2^20 units.
LINEAR_STEPS = 5


@lru_cache(maxsize=4)
def _gaps(seed, size):
    """Per width, the mean over networks of the RMS gap |f_t - f^lin_t| over the train and test inputs at
    t = LINEAR_STEPS, f^lin the network's own linearization (its f_0 and Θ̂_0, trained by the same gradient descent,
    :meth:`theory.dynamics.MSEDynamics.predict`), with its standard error.

    The mean uses the initial loss ‖f_0(X) - Y‖² as a control variate: its mean tr K(X, X) + ‖Y‖² is exact at one
    hidden layer, and the gap grows with it (correlation ~0.7: half the variance is removed)."""
    X, X_test, Y = _data()
    inputs = np.concatenate([X, X_test])
    lr = _theory()[2]
    rows, design = [], _design(size, (800, 6000, 16000), 16)
    for width, count in design:
        mlp = _mlp(width)
        root = seed_for(seed, "dynamics.linearization", width)
        gap, start_train, chunk = [], [], max(1, 2**20 // width)
        for start in range(0, count, chunk):
            params = mlp.init(root, min(chunk, count - start), start=start)
            run = train(mlp, params, X, Y, lr, LINEAR_STEPS, X_test=X_test, record_every=LINEAR_STEPS)
            f0, f = _outputs(run)
            linear = np.array([MSEDynamics(k[:TRAIN, :TRAIN], Y[:, 0], lr, discrete=True).predict(
                [LINEAR_STEPS], f0[e, :TRAIN], k[:, :TRAIN], f0[e])[0] for e, k in enumerate(mlp.ntk(params, inputs))])
            gap.append(np.sqrt(np.mean((f - linear) ** 2, axis=1)))
            start_train.append(f0[:, :TRAIN])
        rows.append(_loss_controlled(np.concatenate(gap), np.concatenate(start_train)))
    return np.array([w for w, _ in design], float), np.array(rows)


@claim("dynamics.linearization",
       "A network trained by gradient descent departs from its first-order Taylor model around initialization, "
       "trained the same way, by $O(1/n)$ at a fixed training time.", SOURCE_LEE + "; " + SOURCE_HIERARCHY, 1 / n)
def _linearization(seed, size):
    """The exponent of the mean gap after t = LINEAR_STEPS = 5 steps (:func:`_gaps`; by then the expected training
    loss has fallen 15-fold), fitted with its 1/n and 1/n² corrections; the rival is Lee et al.'s bound n^{-1/2}.

    Why these corrections: the gap is (G + c)/n + O(n^{-3/2}), with G a sum over units of terms odd in each unit's
    readout weight (the second-order Taylor terms of the updates) and c its mean; the n^{-3/2} terms are fluctuations
    of even sums, uncorrelated with G at leading order, so the mean gap is a series in 1/n. Its first coefficient is
    large (b₁ ≈ -15: at n = 64 the mean is ~25 % below its limit), so one correction alone can bias the slope by
    ~0.02 (0.003-0.023 in three independent sweeps).
    Why an early time: the finite-width corrections grow with the training time. After 40 steps, n × the mean gap
    still grows by 4.6 ± 0.6 % from n = 512 to 1024 (32 000 and 16 000 networks), and the same two-correction fit
    over widths 64 .. 8192 (~30 000 networks) gives a slope of -0.963 ± 0.015 after 40 steps against -1.003 ± 0.015
    after 5; the early gap is also cheaper to measure (5 steps per network instead of 40)."""
    widths, rows = _gaps(seed, size)
    result = power_law(widths, rows[:, 0], rows[:, 1], -1.0, correction=2, rivals={"the n^-1/2 bound": -0.5})
    result.plot = _loglog(result, f"RMS $|f_t - f^{{\\mathrm{{lin}}}}_t|$ after $t = {LINEAR_STEPS}$ steps",
                          "erf, one hidden layer, NTK parameterization")
    return result


# --------------------------------------------------------------------------------------------------------------
# The second-order Taylor model
# --------------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _activation_derivatives():
    act = _activation(ACTIVATION)
    return (lambdify([z], act.expr), lambdify([z], act.derivative),
            lambdify([z], sp.diff(act.derivative, z)))


def _taylor(mlp, params, X, Y, inputs, lr, steps, order):
    """Gradient descent on the order-1 or order-2 Taylor model of a one-hidden-layer MLP around ``params``, written
    from f = m₁ W¹ φ(z) + σ_b b¹, z = m₀ W⁰ x + σ_b b⁰: with Δz = m₀ ΔW⁰ x + σ_b Δb⁰,

        f₁ = f₀ + m₁ ΔW¹ φ(z) + m₁ W¹ (φ'(z) Δz) + σ_b Δb¹,      f₂ = f₁ + m₁ ΔW¹ (φ'(z) Δz) + ½ m₁ W¹ (φ''(z) Δz²).

    Returns the outputs on ``inputs`` (the training inputs first) after each step in ``steps``: (len(steps), E, N).
    """
    phi, dphi, d2phi = _activation_derivatives()
    (W0, b0), (W1, b1) = params
    m0, m1 = mlp.multipliers
    sb = np.sqrt(mlp.sigma_b2)
    z0 = m0 * np.einsum("end,xd->exn", W0, inputs) + sb * b0[:, None, :]
    p0, p1, p2 = phi(z0), dphi(z0), d2phi(z0)
    v = W1[:, 0]
    f0 = m1 * np.einsum("en,exn->ex", v, p0) + sb * b1
    dW0, db0, dv, db1 = np.zeros_like(W0), np.zeros_like(b0), np.zeros_like(v), np.zeros_like(b1)
    D, out = len(X), []
    for step in range(max(steps) + 1):
        dz = m0 * np.einsum("end,xd->exn", dW0, inputs) + sb * db0[:, None, :]
        feature, back = p0, v[:, None, :] * p1  # ∂f/∂ΔW¹ and ∂f/∂Δz of the model at Δ
        if order == 2:
            feature, back = p0 + p1 * dz, back + dv[:, None, :] * p1 + v[:, None, :] * p2 * dz
        f = f0 + m1 * np.einsum("en,exn->ex", dv, p0) + m1 * np.einsum("en,exn->ex", v, p1 * dz) + sb * db1
        if order == 2:
            f = f + m1 * np.einsum("en,exn->ex", dv, p1 * dz) + 0.5 * m1 * np.einsum("en,exn->ex", v, p2 * dz**2)
        if step in steps:
            out.append(f)
        g = (f[:, :D] - Y[:, 0]) / D
        gz = m1 * back[:, :D] * g[:, :, None]
        dv -= lr * m1 * np.einsum("ex,exn->en", g, feature[:, :D])
        dW0 -= lr * m0 * np.einsum("exn,xd->end", gz, X)
        db0 -= lr * sb * gz.sum(1)
        db1 -= lr * sb * g.sum(1)[:, None]
    return np.array(out)


#: ``dynamics.quadratic_model``: STEPS_QUADRATIC steps of gradient descent at rates η = f·D/λ_max(Θ), f over
#: QUADRATIC_RATES (a factor 32): the training time τ = ηt is varied through η at a fixed number of steps, so the
#: discrete-time terms (polynomials in 1/t) do not enter the τ-dependence.
STEPS_QUADRATIC, QUADRATIC_RATES = 8, (0.0025, 0.005, 0.01, 0.02, 0.04, 0.08)


def _order_slopes(eta, ratio, terms):
    """Per network, the slope s of log ratio = a + s log η + b₁η + … + b_kη^k (k = ``terms``), fitted exactly
    through the rates: ratio (len(eta), E) -> (E,)."""
    design = np.stack([np.ones_like(eta), np.log(eta)] + [eta**k for k in range(1, terms + 1)], axis=1)
    return np.linalg.lstsq(design, np.log(ratio), rcond=None)[0][1]


@claim("dynamics.quadratic_model",
       "The second-order Taylor model tracks the network more closely than the first-order one at the same width: "
       "its gap is one order higher in the training time $\\tau = \\eta t$, so the ratio of the gaps grows like "
       "$\\tau$.", "Dyer & Gur-Ari 2020; Huang & Yau 2020; Bai & Lee 2020 (quadratic models); notes 001", t)
def _quadratic(seed, size):
    """Each network is trained, with its first- and second-order Taylor models around its initialization, for t =
    STEPS_QUADRATIC steps at each rate η: the ratio of the gaps to the network is a smooth function of τ = ηt per
    network, r(τ) = c τ (1 + b τ + O(τ²)) if the quadratic model's gap is one order higher. The exponent is measured
    per network (paired over the rates: a network's c cancels from the slope) by fitting log r = a + s log η + bη;
    the criterion is the mean slope ± its SE over networks, with the truncation of the series as the bias: the
    change of the mean slope when the next term (η²) is fitted too."""
    width, networks = sized(size, 1024, 1024, 1024), sized(size, 4, 12, 40)
    X, X_test, Y = _data()
    inputs = np.concatenate([X, X_test])
    eta = np.array(QUADRATIC_RATES) * _theory()[2]
    mlp = _mlp(width)
    params = mlp.init(seed_for(seed, "dynamics.quadratic_model"), networks)
    gaps = []  # (rates, 2, E)
    for lr in eta:
        net = _outputs(train(mlp, params, X, Y, lr, STEPS_QUADRATIC, X_test=X_test))[-1]
        gaps.append([np.sqrt(np.mean((net - _taylor(mlp, params, X, Y, inputs, lr, [STEPS_QUADRATIC], k)[0]) ** 2,
                                     axis=1)) for k in (1, 2)])
    gaps = np.array(gaps)
    ratio = gaps[:, 1] / gaps[:, 0]
    slopes, finer = _order_slopes(eta, ratio, 1), _order_slopes(eta, ratio, 2)
    estimate, se = stats.mean_se(slopes)
    truncation = abs(estimate - finer.mean())
    tau = eta * STEPS_QUADRATIC

    def plot(fig):
        ax = fig.add_subplot()
        ax.plot(tau, gaps[:, 0].mean(1), "o-", label="first-order (linear) model")
        ax.plot(tau, gaps[:, 1].mean(1), "s-", label="second-order (quadratic) model")
        ax.plot(tau, ratio.mean(1), "^-", label="ratio of the gaps")
        ax.plot(tau, ratio.mean(1)[0] * tau / tau[0], "k--", lw=1, label=r"$\propto \tau$")
        ax.set(xscale="log", yscale="log", xlabel=rf"training time $\tau = \eta t$ (t = {STEPS_QUADRATIC} steps)",
               ylabel="RMS gap to the network", title=f"width {width}, {networks} networks")
        ax.legend()

    return compare(1.0, estimate, se, bias=truncation, rivals={"half an order (tau^1/2)": 0.5},
                   what="exponent of the ratio of the gaps in tau",
                   data={"tau": tau, "linear_gap": gaps[:, 0].mean(1), "quadratic_gap": gaps[:, 1].mean(1),
                         "slopes": slopes, "truncation": truncation}, plot=plot)


# --------------------------------------------------------------------------------------------------------------
# Mean-field contrast
# --------------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _mean_field(seed, size):
    """Relative NTK change of two-layer networks with readout multiplier 1/n (no biases), lr ∝ n."""
    X, _, Y = _data()
    rows = []
    for width in _widths(size):
        mlp = MLP(DIM, (width,), ACTIVATION, sigma_w2=SIGMA_W2, sigma_b2=0.0,
                  multipliers=(np.sqrt(SIGMA_W2 / DIM), 1.0 / width))
        params = mlp.init(seed_for(seed, "dynamics.mean_field", width), _networks(sized(size, 8, 16, 64), width))
        ntk0 = mlp.ntk(params, X)
        lr = TRAIN / np.linalg.eigvalsh(ntk0.mean(0)).max()  # ∝ n: n Θ̂ is O(1)
        run = train(mlp, params, X, Y, lr, STEPS, record_every=STEPS)
        change = _relative(mlp.ntk(run.params, X), ntk0)
        rows.append((change.mean(), change.std(ddof=1) / np.sqrt(len(change)), lr / width, run.loss[-1].mean()))
    return np.array(_widths(size), float), np.array(rows)


@claim("dynamics.mean_field",
       "With mean-field scaling (readout $\\frac{1}{n}\\sum_i v_i \\phi(z_i)$, learning rate $\\propto n$) the "
       "NTK changes by $\\Theta(1)$ at every width: the relative change scales like $n^0$.",
       "Mei, Montanari & Nguyen 2018; Chizat & Bach 2018; notes 001 and 003", sp.S.One)
def _mean_field_claim(seed, size):
    widths, rows = _mean_field(seed, size)
    lazy = _sweep(seed, size)
    result = power_law(widths, rows[:, 0], rows[:, 1], 0.0, correction=True, rivals={"the lazy 1/n": -1.0},
                       data={"lr_over_n": rows[:, 2], "final_loss": rows[:, 3]})

    def plot(fig):
        ax = fig.add_subplot()
        ax.errorbar(widths, rows[:, 0], yerr=2 * rows[:, 1], fmt="o-", capsize=3, label="mean field: readout 1/n")
        ax.errorbar(lazy["widths"], lazy["ntk"][:, 0], yerr=2 * lazy["ntk"][:, 1], fmt="s-", capsize=3,
                    label=r"NTK parameterization: readout $1/\sqrt{n}$")
        ax.set(xscale="log", yscale="log", xlabel="width n", ylabel=r"$\|\hat\Theta_T - \hat\Theta_0\| / "
               r"\|\hat\Theta_0\|$", title="relative NTK change during training")
        ax.legend()

    result.plot = plot
    return result


# --------------------------------------------------------------------------------------------------------------
# Cross-entropy: finite networks against the frozen-NTK flow
# --------------------------------------------------------------------------------------------------------------

#: Binary cross-entropy on the training inputs of ``_data`` (labels 1{y > 0}, one logit): gradient descent at
#: CE_FRACTION·D/λ_max(Θ) for CE_STEPS steps (to λ_max t/D = 25), logits recorded every CE_EVERY steps; the 1/n law
#: is measured at λ_max t/D = CE_TIME, early enough that the leading order dominates (the gap's higher orders grow
#: with the time trained).
CE_FRACTION, CE_STEPS, CE_EVERY, CE_TIME = 0.25, 100, 10, 10.0
#: More networks for the exponent, trained to CE_TIME only: CE_EXTRA·(64/n)^{1/2} per width at the default size
#: (1/8 of it at the quick size, twice at the full size).
CE_EXTRA = 2000
SOURCE_CE = ("Lee et al. 2019, Sec. 2.3 (the linearized network under any loss); Dyer & Gur-Ari 2020 (the NTK moves by "
             "O(1/n)); notes 001: the logits' deviation from the kernel flow appears later in training as the width "
             "grows")


def _ce_descent(mlp, params, X, labels, lr, steps, every):
    """Logits (T, E, D) every ``every`` steps of gradient descent on (1/D) Σ [log(1 + e^f) - y f]."""
    out = []
    for k in range(steps + 1):
        f, cache = mlp.forward(params, X)
        if k % every == 0:
            out.append(f[..., 0])
        if k == steps:
            break
        grads = mlp._grads(params, cache, (scipy.special.expit(f) - labels) / len(X))
        params = [(W - lr * dW, b - lr * db) for (W, b), (dW, db) in zip(params, grads)]
    return np.array(out)


def _ce_gaps(mlp, params, X, labels, lr, steps):
    """(T, E): per network, the RMS gap between its logits and those of its linearization -- the same gradient
    descent with the network's own empirical NTK and initial logits, frozen (:func:`theory.cross_entropy_flow` with
    ``discrete=True``, exact: no discretization error to remove) -- every CE_EVERY steps up to ``steps``."""
    ntk0 = mlp.ntk(params, X)
    logits = _ce_descent(mlp, params, X, labels, lr, steps, CE_EVERY)
    recorded = np.arange(0, steps + 1, CE_EVERY)
    linear = np.stack([cross_entropy_flow(k, labels, recorded, lr, f0=f[:, None], discrete=True).train[..., 0]
                       for k, f in zip(ntk0, logits[0])], axis=1)
    return np.sqrt(np.mean((logits - linear) ** 2, axis=2))


@lru_cache(maxsize=4)
def _cross_entropy(seed, size):
    """Per width, the gaps (T, E) of :func:`_ce_gaps` over the whole run (λ_max t/D up to 25), and the gaps at
    λ_max t/D = CE_TIME of those networks and of more networks trained only that far (∝ n^{-1/2}: the narrow widths
    pin the fit's 1/n correction)."""
    X, _, Y = _data()
    labels = (Y > 0).astype(float)
    _, theta, _, _ = _theory()
    top = np.linalg.eigvalsh(theta[:TRAIN, :TRAIN]).max()
    lr = CE_FRACTION * TRAIN / top
    at = int(round(CE_TIME / CE_FRACTION))  # the step at λ_max t/D = CE_TIME, a multiple of CE_EVERY
    widths = _widths(size)
    gaps, fixed = [], []
    for width in widths:
        mlp = _mlp(width)
        root, count = seed_for(seed, "dynamics.cross_entropy", width), _networks(sized(size, 8, 96, 192), width)
        gaps.append(_ce_gaps(mlp, mlp.init(root, count), X, labels, lr, CE_STEPS))
        extra = int(round(sized(size, CE_EXTRA // 8, CE_EXTRA, 2 * CE_EXTRA) * (64 / width) ** 0.5))
        more = _ce_gaps(mlp, mlp.init(root, extra, start=count), X, labels, lr, at)[-1]
        fixed.append(np.concatenate([gaps[-1][at // CE_EVERY], more]))
    return np.array(widths, float), np.arange(0, CE_STEPS + 1, CE_EVERY) * CE_FRACTION, gaps, fixed


def _onset(times, gap, level):
    """The first time at which ``gap`` (a curve over ``times``) reaches ``level``, interpolated linearly; inf if never."""
    above = np.flatnonzero(gap >= level)
    if not above.size:
        return np.inf
    k = above[0]
    if k == 0:
        return times[0]
    return times[k - 1] + (level - gap[k - 1]) * (times[k] - times[k - 1]) / (gap[k] - gap[k - 1])


@claim("dynamics.cross_entropy",
       "Wide networks trained by gradient descent on the cross-entropy follow their linearization (the same descent "
       "with the NTK frozen at initialization): their logits depart from it by $O(1/n)$ at a fixed time (rival "
       "$n^{-1/2}$), and the departure appears later in training the wider the network.", SOURCE_CE, 1 / n)
def _cross_entropy_claim(seed, size):
    """The exponent of the gap at λ_max t/D = CE_TIME over widths 64 .. 4096 (~6 600 networks at the default size),
    fitted with its leading 1/n correction, and the ordering of the onset times.

    Per width the geometric mean of the networks' gaps, exp E[log gap] (n·gap converges in law, so its exponent is
    the arithmetic mean's): the gap is heavy-tailed (one network once made a width's arithmetic mean 20 % high).
    The comparison is with the frozen-NTK gradient descent, which has no discretization error; it replaced a
    comparison with the gradient flow through a Richardson extrapolation in η, which needed two runs per network
    (at η and η/2) and left the exponent at ±0.2."""
    widths, times, gaps, fixed_time = _cross_entropy(seed, size)
    at = int(np.argmin(np.abs(times - CE_TIME)))
    log_mean, log_se = np.array([stats.mean_se(np.log(g)) for g in fixed_time]).T
    fixed = np.stack([np.exp(log_mean), np.exp(log_mean) * log_se], axis=1)
    slope = stats.log_slope(widths, fixed[:, 0], fixed[:, 1], correction=True)
    what = f"logit gap at lambda t/D = {times[at]:g}"
    fit = compare_all(-1.0, slope.slope, slope.stderr, rivals={f"{what}: n^-1/2": -0.5}, what=what)
    mean = [g.mean(axis=1) for g in gaps]
    level = mean[-1][-1] / 2  # half the widest networks' final gap: every width reaches it within the run
    onset = np.array([_onset(times, m, level) for m in mean])
    later = condition(bool(np.all(np.diff(onset) > 0)),
                      "the gap reaches half the widest networks' final gap later the wider the network (onset "
                      "lambda t/D = " + ", ".join(f"{t:.3g}" for t in onset) + ")",
                      exempt="an ordering (the onset time has no predicted exponent)")
    def plot(fig):
        ax = fig.add_subplot()
        colors = [None] * len(widths)
        for i, (w, g) in enumerate(zip(widths, gaps)):
            line, = ax.plot(times, g.mean(axis=1), "-", lw=1.2, label=f"n = {int(w)}")
            colors[i] = line.get_color()
            if np.isfinite(onset[i]):
                ax.plot([onset[i]], [level], "o", ms=3, color=colors[i])
        ax.axhline(level, color="k", lw=0.6, ls=":")
        ax.axvline(times[at], color="k", lw=0.6, ls="--")
        ax.set(yscale="log", xlabel=r"time $\lambda_{\max} \eta t / D$", ylabel="RMS logit gap to the frozen-NTK descent",
               title="erf, one hidden layer, binary cross-entropy")
        ax.legend(fontsize=7)

    return combine(fit, later, headline=0, data={"widths": widths, "gap": fixed, "onset": onset, "times": times},
                   plot=plot)


# --------------------------------------------------------------------------------------------------------------
# Spectral bias: each spherical-harmonic degree is learned at its own Funk-Hecke rate
# --------------------------------------------------------------------------------------------------------------

#: S^2 (inputs of norm √3), a one-hidden-layer ReLU network (σ_w² = 2, σ_b² = 0), D points of a Fibonacci lattice
#: (a near-uniform design: (1/D) Σ_x integrates the kernel's low harmonics to ~0.5 %, where iid points miss by
#: ~1/√D), a target Σ_k Y_k/√3 of unit-norm zonal harmonics of degrees 1, 2, 4 about random axes.
BIAS_DIM, BIAS_POINTS, BIAS_DEGREES = 3, 400, (1, 2, 4)
#: Each degree's rate is fitted over its first quarter e-fold, t <= max(2, 0.25/rate): over longer windows the
#: spread of a finite network's kernel eigenvalues (first order in Θ̂ - Θ, zero mean) bends log a_k(t) at second
#: order (a mixture of exponentials decays slower than the exponential of its mean rate).
BIAS_WINDOW = 0.25
SOURCE_BIAS = ("Rahaman et al. 2019 (spectral bias); Basri et al. 2019, 2020 (frequency bias of the NTK on the "
               "sphere); Bietti & Mairal 2019 (Funk-Hecke eigenvalues of the ReLU NTK); notes 001")


def _fibonacci_sphere(points):
    """The Fibonacci lattice on S^2, scaled to norm √3: z_i = 1 - (2i + 1)/D, azimuth i·π(3 - √5)."""
    i = np.arange(points)
    z = 1 - (2 * i + 1) / points
    azimuth = np.pi * (3 - np.sqrt(5)) * i
    r = np.sqrt(1 - z**2)
    return np.sqrt(BIAS_DIM) * np.stack([r * np.cos(azimuth), r * np.sin(azimuth), z], axis=1)


@lru_cache(maxsize=1)
def _bias_setup():
    """Inputs X (D, 3), the harmonics Y_k(X) (D, 3), the target (D, 1), the Funk-Hecke μ_k of the network's NTK,
    the learning rate D/λ_max(Θ(X, X)) and the infinite-width kernel-descent solution on X."""
    from .. import scaling as sc

    X = _fibonacci_sphere(BIAS_POINTS)
    axes = np.random.default_rng(16).standard_normal((len(BIAS_DEGREES), BIAS_DIM))
    harmonics = np.stack([sc.zonal_harmonic(k, BIAS_DIM, X, u) for k, u in zip(BIAS_DEGREES, axes)], axis=1)
    Y = harmonics.sum(axis=1, keepdims=True) / np.sqrt(len(BIAS_DEGREES))
    mu = sc.kernel_spectrum(BIAS_DIM, max(BIAS_DEGREES), "relu", 1, "ntk", 2.0, 0.0).eigenvalue[list(BIAS_DEGREES)]
    theta = nngp_ntk(X, None, "relu", 1, 2.0, 0.0).ntk
    lr = BIAS_POINTS / np.linalg.eigvalsh(theta).max()
    return X, harmonics, Y, mu, lr, MSEDynamics(theta, Y[:, 0], lr, discrete=True)


def _bias_rates(mu, lr):
    """The per-step decay rate of degree k under gradient descent, -log(1 - ημ_k): (1 - ημ_k)^t = e^{-rate·t},
    from the derived per-mode decay with λ/D -> μ_k (the kernel operator's eigenvalue for the uniform measure)."""
    decay = lambdify((lam, D, eta), mode_decay(True).xreplace({t: 1}))
    return -np.log(decay(np.asarray(mu) * BIAS_POINTS, BIAS_POINTS, lr))


def _degree_amplitudes(residual, harmonics):
    """a_k(t): least-squares coefficients of the residual (..., D) on the harmonics: (k, ...)."""
    flat = residual.reshape(-1, residual.shape[-1]).T
    coef = np.linalg.lstsq(harmonics, flat, rcond=None)[0]
    return coef.reshape((harmonics.shape[1],) + residual.shape[:-1])


def _fitted_rates(amplitudes, steps, rates):
    """-slope of log|a_k(t)| over t <= max(2, BIAS_WINDOW/rate_k), per degree and trailing index: (k, ...)."""
    out = []
    for a, rate in zip(amplitudes, rates):
        window = steps <= max(2.0, np.ceil(BIAS_WINDOW / rate))
        logs = np.log(np.abs(a[window])).reshape(window.sum(), -1)
        out.append(-np.polyfit(steps[window], logs, 1)[0].reshape(a.shape[1:]))
    return np.array(out)


def _antisymmetric(mlp_half, seed, networks):
    """Parameters of width-2m networks whose two halves are copies with opposite readouts: f_0 = 0 exactly and the
    empirical NTK is that of the half (so it converges to Θ), and every residual is the target's."""
    (W0, b0), (W1, b1) = mlp_half.init(seed, networks)
    return [(np.concatenate([W0, W0], axis=1), np.concatenate([b0, b0], axis=1)),
            (np.concatenate([W1, -W1], axis=2), np.zeros_like(b1))]


@claim("dynamics.spectral_bias",
       "Gradient descent on a wide one-hidden-layer ReLU network on $S^2$ learns the degree-$k$ spherical-harmonic "
       "component of its target at the rate $-\\log(1 - \\eta\\mu_k)$ per step, with $\\mu_k$ the Funk-Hecke "
       "eigenvalue of the NTK (degrees 1, 2, 4): high frequencies are learned later.",
       SOURCE_BIAS, lambda: sp.Eq(sp.Symbol("a_k(t)/a_k(0)"), mode_decay(True).xreplace({lam: sp.Symbol("mu_k") * D})))
def _spectral_bias(seed, size):
    width, networks = sized(size, 512, 1024, 2048), sized(size, 8, 20, 48)
    X, harmonics, Y, mu, lr, dyn = _bias_setup()
    predicted = _bias_rates(mu, lr)
    steps = int(np.ceil(BIAS_WINDOW / predicted.min()))
    mlp = MLP(BIAS_DIM, (width,), "relu", sigma_w2=2.0, sigma_b2=0.0)
    half = MLP(BIAS_DIM, (width // 2,), "relu", sigma_w2=2.0, sigma_b2=0.0)
    run = train(mlp, _antisymmetric(half, seed_for(seed, "dynamics.spectral_bias"), networks), X, Y, lr, steps)
    amplitudes = _degree_amplitudes(run.f_train[..., 0] - Y[:, 0], harmonics)  # (k, T, E)
    measured = _fitted_rates(amplitudes, run.steps, predicted)  # (k, E)
    kernel = _fitted_rates(_degree_amplitudes(dyn.predict(run.steps) - Y[:, 0], harmonics)[..., None], run.steps,
                           predicted)[:, 0]
    # the design's quadrature error: the infinite-width kernel's own rates on X against the Funk-Hecke ones
    bias = np.abs(kernel - predicted)
    estimate, se = measured.mean(axis=1), measured.std(axis=1, ddof=1) / np.sqrt(networks)
    equal = np.full(predicted.shape, np.exp(np.mean(np.log(predicted))))

    def plot(fig):
        ax = fig.add_subplot()
        grid = np.arange(0, steps + 1)
        for j, k_ in enumerate(BIAS_DEGREES):
            line, = ax.plot(grid, np.exp(-predicted[j] * grid), "-", lw=1, label=f"degree {k_}: $(1-\\eta\\mu_{k_})^t$")
            mean = np.abs(amplitudes[j]).mean(axis=-1) * np.sqrt(len(BIAS_DEGREES))
            ax.plot(run.steps, mean, "o", ms=3, color=line.get_color())
        ax.set(yscale="log", ylim=(1e-3, 1.5), xlabel="gradient-descent step t",
               ylabel="$|a_k(t)/a_k(0)|$ (residual per degree)",
               title=f"ReLU, one hidden layer, $S^2$: {networks} networks of width {width}")
        ax.legend()

    return compare_all(predicted, estimate, se, bias=bias, rivals={"equal rates": equal},
                       what="degrees (1, 2, 4)",
                       data={"degrees": BIAS_DEGREES, "mu": mu, "lr": lr, "predicted": predicted,
                             "measured": estimate, "measured_se": se, "kernel_on_X": kernel, "width": width,
                             "networks": networks, "steps": run.steps, "amplitudes": amplitudes.mean(axis=-1)},
                       plot=plot)


# --------------------------------------------------------------------------------------------------------------
# The parameter-space solution
# --------------------------------------------------------------------------------------------------------------


def _jacobian(mlp, params, X):
    """∇_θf_0(X) of every network, (E, D·out, P), rows in the order of f(X).reshape(E, D·out): one backward pass per
    input and output unit (MLP.grads on that input alone with a unit cotangent)."""
    E = params[0][0].shape[0]
    rows = []
    for a in range(len(X)):
        for k in range(mlp.out):
            unit = np.zeros((E, 1, mlp.out))
            unit[:, 0, k] = 1.0
            rows.append(_flat(mlp.grads(params, X[a:a + 1], unit)))
    return np.stack(rows, axis=1)


#: Outputs of the networks of ``dynamics.parameter_solution``, each fitted to the same targets: a network then gives
#: 4 D-dimensional errors instead of one, and its relative errors spread 0.25 (row space) and 0.11 (outside)
#: between networks instead of 0.46 and 0.21 -- 0.3 of the variance at ~1.8 times the cost per network.
PARAMETER_OUTPUTS = 4
#: Widths 96 .. 1024 in steps of 2^{1/8} (many points: degrees of freedom for the fit's χ² test), then a cluster of
#: wide networks far out: with a cost ∝ n per network the slope and its 1/n correction are pinned best by many
#: networks near n = 100 and a few wide ones (a near-optimal design for the fit's covariance).
_PARAMETER_WIDTHS = [int(round(2 ** (np.log2(96) + i / 8))) for i in range(28)]
_PARAMETER_WIDE = {"quick": [4096], "default": [3444, 4096, 4871, 5793], "full": [4096, 4871, 5793, 6889, 8192]}


def _parameter_design(size):
    """(width, networks) pairs: ∝ 1/n networks at the narrow widths (an equal cost per width), at least enough
    for each point's SE -- few networks make the estimated SEs, hence the fit's weights, noisy -- and a fixed
    number at the wide cluster."""
    narrow = _PARAMETER_WIDTHS[::3] if size == "quick" else _PARAMETER_WIDTHS
    least, scale, wide = sized(size, 8, 16, 40), sized(size, 40, 200, 500), sized(size, 8, 32, 64)
    return ([(w, max(least, int(round(scale * 96 / w)))) for w in narrow]
            + [(w, wide) for w in sized(size, *_PARAMETER_WIDE.values())])


@lru_cache(maxsize=4)
def _parameter_sweep(seed, size):
    """Per width, mean and SE over networks of: the row-space error ‖P_J Δθ - Δθ_lin‖/‖Δθ_lin‖ and the fraction
    ‖Δθ - P_J Δθ‖/‖Δθ‖ outside the row space of J = ∇_θf_0(X), Δθ = θ_T - θ_0 of real gradient descent and Δθ_lin
    Lee et al.'s formula with the network's own Θ̂ = JJᵀ (all D·out rows) and f_0."""
    X, _, Y = _data()
    lr = _theory()[2]
    targets = np.repeat(Y, PARAMETER_OUTPUTS, axis=1)
    design = _parameter_design(size)
    rows = []
    for width, count in design:
        mlp = _mlp(width, out=PARAMETER_OUTPUTS)
        params = mlp.init(seed_for(seed, "dynamics.parameter_solution", width), count)
        run = train(mlp, params, X, targets, lr, STEPS)
        moved = _flat(run.params) - _flat(params)
        f0 = mlp.apply(params, X).reshape(count, -1)
        chunk = max(1, int(2**23 // (f0.shape[1] * moved.shape[1])))  # Jacobians of <= 64 MB at a time
        row_error, outside = [], []
        for lo in range(0, count, chunk):
            J = _jacobian(mlp, [(W[lo:lo + chunk], b[lo:lo + chunk]) for W, b in params], X)
            for j, e in enumerate(range(lo, min(lo + chunk, count))):
                gram = J[j] @ J[j].T
                linear = MSEDynamics(gram, targets.reshape(-1), lr, discrete=True, loss_scale=1 / len(X)) \
                    .parameter_change(STEPS, J[j], f0[e])
                projected = J[j].T @ np.linalg.solve(gram, J[j] @ moved[e])
                row_error.append(np.linalg.norm(projected - linear) / np.linalg.norm(linear))
                outside.append(np.linalg.norm(moved[e] - projected) / np.linalg.norm(moved[e]))
        rows.append([np.mean(row_error), np.std(row_error, ddof=1) / np.sqrt(count),
                     np.mean(outside), np.std(outside, ddof=1) / np.sqrt(count)])
    return np.array([w for w, _ in design], float), np.array(rows)


@claim("dynamics.parameter_solution",
       "In wide networks trained by gradient descent the parameters move as Lee et al.'s linearized solution "
       "$\\theta_t - \\theta_0 = -\\nabla_\\theta f_0(X)^T \\Theta^{-1}(I - (I - \\eta\\Theta/D)^t)(f_0(X) - Y)$ "
       "(the network's own empirical NTK and Jacobian) within the Jacobian's row space, with relative error "
       "$O(1/n)$; the motion outside those directions is a fraction $O(n^{-1/2})$, from the Jacobian's own "
       "$O(n^{-1/2})$ change.", SOURCE_LEE + "; " + SOURCE_HIERARCHY, lambda: _solved(-1))
def _parameter_solution(seed, size):
    """Measured on networks with 4 outputs (all fitted to the same targets), widths 96 .. 5793. Each exponent is
    fitted with the leading finite-width correction, relative 1/n: the row space takes a share D·out/P ∝ 1/n of
    the P parameters, and the empirical NTK's O(n^{-1/2}) fluctuations enter the ensemble means of the norms at
    second order. Measured on a pooled sweep (5 seeds of this design's networks at 32 .. 5793, ~20 000 networks):
    without the correction the slopes drift with the narrowest width (χ²/dof 10 and 18 from n = 64); with it they
    are -0.981 ± 0.005 and -0.494 ± 0.002 from n = 64 (χ²/dof 1.05, 1.30), -0.991 ± 0.007 and -0.500 ± 0.004 from
    n = 128 (0.84, 1.17). A relative n^{-1/2} correction instead overshoots (-1.026 and -0.523 from n = 64, and
    -1.029, -0.522 from n = 128)."""
    widths, rows = _parameter_sweep(seed, size)
    inside = power_law(widths, rows[:, 0], rows[:, 1], -1.0, rivals={"n^-1/2": -0.5}, correction=True,
                       what="exponent of the row-space error")
    outside = power_law(widths, rows[:, 2], rows[:, 3], -0.5, rivals={"n^-1 (only D directions move)": -1.0},
                        correction=True, what="exponent of the fraction outside the row space")

    def plot(fig):
        ax = fig.add_subplot()
        ax.errorbar(widths, rows[:, 0], yerr=2 * rows[:, 1], fmt="o", ms=3, capsize=2,
                    label=r"row space: $\|P_J\Delta\theta - \Delta\theta_{\mathrm{lin}}\| / "
                          r"\|\Delta\theta_{\mathrm{lin}}\|$")
        ax.errorbar(widths, rows[:, 2], yerr=2 * rows[:, 3], fmt="s", ms=3, capsize=2,
                    label=r"outside: $\|\Delta\theta - P_J\Delta\theta\| / \|\Delta\theta\|$")
        for result, style in ((inside, "-"), (outside, "-.")):
            a, s, b = result.data["fit"]
            ax.plot(widths, np.exp(a + s * np.log(widths) + b / widths), "k" + style, lw=1,
                    label=f"fit with its $1/n$ correction: slope {s:.3f}")
        ax.set(xscale="log", yscale="log", xlabel="width n", ylabel="relative size (2 SE)",
               title=f"erf, one hidden layer, {PARAMETER_OUTPUTS} outputs, {STEPS} steps of gradient descent")
        ax.legend(fontsize="small")

    return combine(inside, outside, data={"widths": widths, "row_space_error": rows[:, :2],
                                          "outside_fraction": rows[:, 2:]}, plot=plot)
