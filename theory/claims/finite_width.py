r"""Claims of the finite-width topic: the 1/n expansion of the kurtosis and of the NTK, against finite networks.

The oracles here do not use the package's formulas: networks are sampled from their definition (single-input
forward sampling by Gaussian conditioning, :class:`theory.montecarlo.MLP` for gradients and the NTK, explicit
two-layer derivatives for the Dyer & Gur-Ari correlation functions), and only the activation's NumPy form is shared.
"""

from functools import lru_cache

import numpy as np
import sympy as sp

from .. import finite_width as fw
from .. import stats
from ..activations import activation as _activation
from ..montecarlo import MLP, empirical_kernels, train
from ..numeric import lambdify
from ..symbols import n
from .base import claim, combine, compare, compare_all, power_law, seed_for, sized

SOURCE_VERTEX = "Yaida 2020; Roberts, Yaida & Hanin 2022, ch. 4 (four-point vertex); Hanin & Nica 2020"
_CHUNK = 2**20  # floats per sampling block


# --------------------------------------------------------------------------------------------------------------
# Oracles and estimators
# --------------------------------------------------------------------------------------------------------------


def diagonal_kernels(activation, depth, width, networks, seed, sigma_w2, sigma_b2, q=1.0):
    r"""K̂^l(x, x), l = 0..L, for ``networks`` independent networks on one input with |x|²/d = q: (networks, L + 1).

    Exact in law, by the Gaussian conditioning of :func:`theory.montecarlo.layer_kernels` vectorized over the
    networks with one generator: given K̂^l the units of layer l are iid N(0, K̂^l), so
    K̂^{l+1} = σ_b² + σ_w² mean_j φ(√K̂^l ξ_j)², ξ_j ~ N(0, 1), K̂⁰ = σ_b² + σ_w² q.
    """
    phi, _ = _activation(activation).numpy
    rng = np.random.default_rng(seed)
    out = np.empty((networks, depth + 1))
    out[:, 0] = sigma_b2 + sigma_w2 * q
    step = max(1, _CHUNK // width)
    for start in range(0, networks, step):
        stop = min(start + step, networks)
        k = out[start:stop, 0]
        for l in range(depth):
            z = rng.standard_normal((stop - start, width))
            z *= np.sqrt(k)[:, None]
            k = sigma_b2 + sigma_w2 * np.mean(phi(z) ** 2, axis=1)
            out[start:stop, l + 1] = k
    return out


def relative_variance(samples):
    r"""mean(s²)/mean(s)² - 1 over the first axis and its delta-method standard error.

    For s = K̂^l this is E[z⁴]/(3E[z²]²) - 1 (z is Gaussian given K̂); for s = Θ it is Var Θ/(E Θ)². The
    estimator's O(1/N) bias is far below its standard error at the ensemble sizes used here.
    """
    s = np.asarray(samples, dtype=np.float64)
    a, b = np.mean(s**2, axis=0), np.mean(s, axis=0)
    da, db = s**2 - a, s - b
    grad_a, grad_b = 1 / b**2, -2 * a / b**3
    var = np.mean((grad_a * da + grad_b * db) ** 2, axis=0) / (len(s) - 1)
    return a / b**2 - 1, np.sqrt(var)


def _kurtosis_plot(result, title):
    def plot(fig):
        d = result.data
        left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
        layers = np.arange(d["kappa"].shape[1])
        for i, w in enumerate(d["widths"]):
            line = left.errorbar(layers, d["kappa"][i], yerr=2 * d["kappa_se"][i], fmt="o", ms=3, capsize=2,
                                 label=f"n = {w}")
            left.plot(layers, d["first_order"][i], "-", color=line[0].get_color(), lw=1)
        left.set(yscale="log", xlabel="layer l", ylabel=r"$E[z^4]/3E[z^2]^2 - 1$ (MC; lines: first order)",
                 title=title)
        left.legend(fontsize=7)
        x, y, y_se = d["x"], d["y"], d["y_se"]
        right.errorbar(x, y, yerr=2 * y_se, fmt="o", capsize=3, label="|MC - first order| (2 SE)")
        a, s = d["fit"][:2]
        right.plot(x, np.exp(a) * x**s, "-", label=f"fitted leading slope {s:.2f}")
        right.plot(x, y[0] * (x / x[0]) ** -2.0, "k--", label="slope -2")
        right.set(xscale="log", yscale="log", xlabel="width n", ylabel="residual at the output", title="residual")
        right.legend(fontsize=7)

    return plot


# --------------------------------------------------------------------------------------------------------------
# The kurtosis: first order against Monte Carlo, residual O(1/n²)
# --------------------------------------------------------------------------------------------------------------

#: name: (activation, depth, σ_w², σ_b², widths); inputs have |x|²/d = 1. Linear and tanh/erf are critical (the
#: scale-invariant and the K* = 0 classes), ReLU is off criticality with biases. The widths start where the 1/n
#: series converges fast enough for the fitted correction to absorb the higher orders.
KURTOSIS_CASES = {
    "linear": ("identity", 4, sp.S.One, sp.S.Zero, (6, 8, 12, 17, 24, 34, 48, 68, 96)),
    "relu": ("relu", 4, sp.Rational(9, 5), sp.Rational(1, 5), (6, 8, 12, 17, 24, 34, 48, 68, 96)),
    "tanh": ("tanh", 6, sp.S.One, sp.S.Zero, (4, 6, 8, 11, 16, 23, 32, 45, 64)),
    "erf": ("erf", 5, sp.pi / 4, sp.S.Zero, (4, 6, 8, 11, 16, 23, 32, 45, 64)),
}


def _kurtosis_prediction(name):
    act, depth, sw, sb, _ = KURTOSIS_CASES[name]
    first = fw.output_kurtosis(act, depth, n, sw, sb, 1).expr
    return sp.Eq(sp.Symbol("kappa"), first + sp.Order(n**-2, (n, sp.oo)), evaluate=False)


def _kurtosis_first_order(name, seed, size):
    act, depth, sw, sb, widths = KURTOSIS_CASES[name]
    sw, sb = float(sw), float(sb)
    networks = sized(size, 20_000, 80_000, 320_000)
    widths = np.array(widths)
    first = np.array([fw.first_order_state(act, l, widths, sw, sb).var_kernel
                      / fw.first_order_state(act, l, widths, sw, sb).kernel ** 2 for l in range(depth + 1)]).T
    kappa, kappa_se = [], []
    for w in widths:
        k = diagonal_kernels(act, depth, int(w), networks, seed_for(seed, f"finite_width.kurtosis.{name}", w), sw, sb)
        value, se = relative_variance(k)
        kappa.append(value)
        kappa_se.append(se)
    kappa, kappa_se = np.array(kappa), np.array(kappa_se)
    residual = kappa[:, -1] - first[:, -1]
    coefficient = _coefficient(widths, kappa[:, -1], kappa_se[:, -1], widths[0] * first[0, -1],
                               rivals={"one layer fewer": widths[0] * first[0, -2]})
    data = {"widths": widths, "kappa": kappa, "kappa_se": kappa_se, "first_order": first,
            "residual": residual, "networks": networks, "coefficient": coefficient.estimate,
            "coefficient_se": coefficient.stderr}
    result = combine(power_law(widths, np.abs(residual), kappa_se[:, -1], -2.0, correction=True, data=data),
                     coefficient)
    result.plot = _kurtosis_plot(result, f"{act}, depth {depth}")
    return result


def _coefficient(widths, kappa, kappa_se, predicted, rivals=None):
    """The measured c of κ = c/n + O(1/n²) (:func:`theory.stats.inverse_coefficient`: n κ̂ = c + b/n + d/n², its
    truncation bias is < 0.3 SE for the exactly solvable cases), compared with the predicted c."""
    c, c_se = stats.inverse_coefficient(widths, kappa, kappa_se)
    return compare(predicted, c, c_se, rivals=rivals, what="first-order coefficient c")


for _name, (_act, _depth, _sw, _sb, _) in KURTOSIS_CASES.items():
    claim(f"finite_width.kurtosis.{_name}",
          f"The first-order kurtosis $V/(nK^2)$ of the output of a depth-{_depth} {_name} network "
          f"($\\sigma_w^2 = {sp.latex(_sw)}$, $\\sigma_b^2 = {sp.latex(_sb)}$) matches finite networks: the "
          f"measured coefficient of $1/n$ is the predicted one and the residual falls like $n^{{-2}}$.", SOURCE_VERTEX, lambda nm=_name: _kurtosis_prediction(nm),
          )(lambda seed, size, nm=_name: _kurtosis_first_order(nm, seed, size))


# --------------------------------------------------------------------------------------------------------------
# Exact results at every width (positively homogeneous activations)
# --------------------------------------------------------------------------------------------------------------

EXACT_CASES = {"linear": ("identity", 4, 1.0), "relu": ("relu", 3, 2.0)}
EXACT_WIDTHS = (2, 3, 4, 8, 32, 128, 1024)


@lru_cache(maxsize=4)
def _exact(name):
    act, depth, sw = EXACT_CASES[name]
    return fw.exact_kurtosis(act, depth, n, sp.nsimplify(sw), 0, 1)


def _exact_run(name, seed, size):
    act, depth, sw = EXACT_CASES[name]
    widths = np.array(EXACT_WIDTHS)
    exact = lambdify([n], _exact(name))(widths.astype(float))
    first = lambdify([n], fw.output_kurtosis(act, depth, n, sp.nsimplify(sw), 0, 1).expr)(widths.astype(float))
    base = sized(size, 20_000, 100_000, 400_000)
    kappa, kappa_se = [], []
    for w in widths:
        networks = int(base * min(1.0, 32 / w))  # the SE falls with the width: fewer networks suffice
        k = diagonal_kernels(act, depth, int(w), networks, seed_for(seed, f"finite_width.exact.{name}", w), sw, 0.0)
        value, se = relative_variance(k[:, -1])
        kappa.append(value)
        kappa_se.append(se)
    kappa, kappa_se = np.array(kappa), np.array(kappa_se)

    def plot(fig):
        ax = fig.add_subplot()
        ax.errorbar(widths, kappa, yerr=2 * kappa_se, fmt="o", capsize=3, label="Monte Carlo (2 SE)")
        grid = np.geomspace(widths[0], widths[-1], 200)
        ax.plot(grid, lambdify([n], _exact(name))(grid), "-", label="exact")
        ax.plot(grid, lambdify([n], fw.output_kurtosis(act, depth, n, sp.nsimplify(sw), 0, 1).expr)(grid), "--",
                label="first order")
        ax.set(xscale="log", yscale="log", xlabel="width n", ylabel=r"$E[f^4]/3E[f^2]^2 - 1$",
               title=f"{name}, depth {depth}, critical")
        ax.legend()

    return compare_all(exact, kappa, kappa_se, shown=0, what="widths", rivals={"the first order alone": first},
                       data={"widths": widths, "exact": exact, "first_order": first, "kappa": kappa,
                             "kappa_se": kappa_se}, plot=plot)


for _name, (_act, _depth, _sw) in EXACT_CASES.items():
    claim(f"finite_width.exact.{_name}",
          f"For a critical depth-{_depth} {_name} network ($\\sigma_w^2 = {_sw:g}$, $\\sigma_b^2 = 0$) "
          f"$E[f^4]/(3E[f^2]^2) - 1$ is the exact finite-width result at every width, even $n = 2$.",
          "Hanin & Nica 2020 (ReLU); Yaida 2020; exact moment recursion", lambda nm=_name: sp.Eq(
              sp.Symbol("kappa"), _exact(nm), evaluate=False),
          )(lambda seed, size, nm=_name: _exact_run(nm, seed, size))


# --------------------------------------------------------------------------------------------------------------
# NTK fluctuations
# --------------------------------------------------------------------------------------------------------------

ONE_LAYER_CASES = (("relu", 2.0, 0.0), ("erf", 1.5, 0.3))
ONE_LAYER_WIDTHS = (4, 16, 64, 256, 1024)
_X = np.ones((1, 4))  # one input with |x|²/d = 1


@lru_cache(maxsize=8)
def _ntk_coefficient(act, depth, sw, sb):
    """n Var Θ/Θ² to first order (exact at depth 1), a SymPy number (a Float where quadrature entered)."""
    c = sp.simplify(n * fw.ntk_variance(act, depth, n, sp.nsimplify(sw), sp.nsimplify(sb), 1).expr)
    return c if c.is_Rational else sp.Float(c.evalf(), 12)


@claim("finite_width.ntk_variance.one_layer",
       "For one hidden layer the relative variance of the empirical NTK is exactly $c/n$ at every width, with $c$ "
       "from one-variable Gaussian integrals (relu and erf).",
       "Hanin & Nica 2020; Roberts, Yaida & Hanin 2022, ch. 8",
       lambda: sp.Eq(sp.Symbol("n Var Theta / Theta^2"), sp.Tuple(*(_ntk_coefficient(a, 1, sw, sb)
                                                                     for a, sw, sb in ONE_LAYER_CASES)),
                     evaluate=False))
def _ntk_one_layer(seed, size):
    networks = sized(size, 800, 3000, 12_000)
    widths = np.array(ONE_LAYER_WIDTHS)
    pred, est, se = [], [], []
    for act, sw, sb in ONE_LAYER_CASES:
        c = float(_ntk_coefficient(act, 1, sw, sb))
        for w in widths:
            theta = empirical_kernels(_X, None, act, depth=1, width=int(w), networks=networks, sigma_w2=sw,
                                      sigma_b2=sb, seed=seed_for(seed, "finite_width.ntk_variance.one_layer", act,
                                                                 w)).ntk[:, 0, 0]
            value, err = relative_variance(theta)
            pred.append(c)
            est.append(w * value)
            se.append(w * err)
    pred, est, se = (np.array(a).reshape(len(ONE_LAYER_CASES), len(widths)) for a in (pred, est, se))

    def plot(fig):
        ax = fig.add_subplot()
        for i, (act, _, _) in enumerate(ONE_LAYER_CASES):
            line = ax.errorbar(widths, est[i], yerr=2 * se[i], fmt="o", capsize=3, label=f"{act}: MC (2 SE)")
            ax.axhline(pred[i, 0], color=line[0].get_color(), lw=1, label=f"{act}: c = {pred[i, 0]:.4g}")
        ax.set(xscale="log", xlabel="width n", ylabel=r"$n\,\mathrm{Var}\,\Theta/\Theta^2$", title="one hidden layer")
        ax.legend()

    # exact at every width: each (activation, width) entry, and their inverse-variance mean per activation (SE /√5)
    weights = 1 / se**2
    pooled, pooled_se = np.sum(weights * est, axis=1) / np.sum(weights, axis=1), 1 / np.sqrt(np.sum(weights, axis=1))
    return combine(compare_all(pred, est, se, shown=(0, 0), what="(activation, width) pairs"),
                   compare_all(pred[:, 0], pooled, pooled_se, what="activations (mean of n Var/Theta^2 over widths)"),
                   data={"widths": widths, "prediction": pred, "estimate": est, "se": se, "pooled": pooled},
                   plot=plot)


DEEP_RELU_DEPTH = 3
#: Widths 16 .. 1024 (the sampler below costs O(depth) per network at any width), networks per width by size.
DEEP_RELU_WIDTHS = (16, 32, 64, 128, 256, 512, 1024)


def relu_ntk_samples(depth, width, networks, seed, q=1.0):
    r"""Θ̂(x, x) and K̂(x, x) of ``networks`` critical ReLU networks (σ_w² = 2, σ_b² = 0, every hidden width ``width``,
    |x|²/d = q): exact in law, O(depth) random numbers per network (Gaussian conditioning, as in Hanin & Nica 2020).

    Forward: given a^{l-1}, z^l = √(2/n) W^l a^{l-1} is N(0, K̂^l) per unit with K̂^l = 2|a^{l-1}|²/n (K̂⁰ = 2q), so
    with m_l ~ Bin(n, ½) active units K̂^{l+1} = (2/n) K̂^l χ²_{m_l}. Backward, g^l = ∂f/∂z^l: split
    W^l = (W^l â) âᵀ + W^l (I - â âᵀ), â = a^{l-1}/|a^{l-1}|; the second part is independent of the forward pass and
    of g^l, and z^l·g^l = f at every layer (f is 1-homogeneous in z^l), so

        |g^{l-1}|² = f²/|a^{l-1}|² + (2/n) |g^l|² χ²_{m_{l-1} - 1},   |g^L|² = 1,   f ~ N(0, K̂^L),

    with fresh χ² variables, and Θ̂ = Σ_{l=0}^{L} K̂^l |g^l|² (the weights of layer l contribute (2/n)|a^{l-1}|²|g^l|²;
    the readout l = L). Returns (Θ̂, K̂^L), each (networks,).
    """
    rng = np.random.default_rng(seed)
    kernel = np.empty((networks, depth + 1))
    kernel[:, 0] = 2.0 * q
    active = rng.binomial(width, 0.5, size=(networks, depth))
    for l in range(depth):  # an all-dead layer (probability 2^-n) has K̂ = 0 from there on
        kernel[:, l + 1] = (2 / width) * kernel[:, l] * rng.chisquare(np.maximum(active[:, l], 1)) * (active[:, l] > 0)
    f = np.sqrt(kernel[:, depth]) * rng.standard_normal(networks)
    grad2, theta = np.ones(networks), kernel[:, depth].copy()
    for l in range(depth, 0, -1):
        alive = kernel[:, l] > 0
        head = np.where(alive, 2 * f**2 / (width * np.where(alive, kernel[:, l], 1.0)), 0.0)
        fresh = rng.chisquare(np.maximum(active[:, l - 1] - 1, 1)) * (active[:, l - 1] > 1)
        grad2 = head + (2 / width) * grad2 * fresh
        theta += kernel[:, l - 1] * grad2
    return theta, kernel[:, depth]


@claim("finite_width.ntk_variance.deep_relu",
       f"For a critical depth-{DEEP_RELU_DEPTH} ReLU network the relative NTK variance is $c_L/n + O(n^{{-2}})$ "
       "with the derived coefficient $c_L$ (not the $5L$ of the first-order expansion of $e^{5L/n} - 1$).",
       "Hanin & Nica 2020 (exp(5 sum 1/n_l), up to constants); Roberts, Yaida & Hanin 2022, ch. 8",
       lambda: sp.Eq(sp.Symbol("c_L"), _ntk_coefficient("relu", DEEP_RELU_DEPTH, 2.0, 0.0), evaluate=False))
def _ntk_deep_relu(seed, size):
    """n Var Θ/Θ² of networks drawn exactly in law by :func:`relu_ntk_samples` at widths 16 .. 1024, fitted as
    c + b/n + d/n² (:func:`theory.stats.inverse_coefficient`): the intercept c is the first-order coefficient."""
    networks = sized(size, 40_000, 400_000, 2_000_000)
    widths = np.array(DEEP_RELU_WIDTHS, dtype=float)
    y, y_se = [], []
    for w in DEEP_RELU_WIDTHS:
        theta, _ = relu_ntk_samples(DEEP_RELU_DEPTH, w, networks,
                                    seed_for(seed, "finite_width.ntk_variance.deep_relu", w))
        value, err = relative_variance(theta)
        y.append(w * value)
        y_se.append(w * err)
    y, y_se = np.array(y), np.array(y_se)
    # n Var/Θ² = c + b/n + d/n²: weighted least squares; the intercept is the first-order coefficient
    fit = stats.wls(np.stack([widths**-k for k in range(3)], axis=1), y, y_se)
    coef, c_se = fit.coef, float(fit.stderr()[0])
    c_pred = float(_ntk_coefficient("relu", DEEP_RELU_DEPTH, 2.0, 0.0))

    def plot(fig):
        ax = fig.add_subplot()
        ax.errorbar(1 / widths, y, yerr=2 * y_se, fmt="o", capsize=3, label="Monte Carlo (2 SE)")
        grid = np.linspace(0, 1 / widths[0], 50)
        ax.plot(grid, coef[0] + coef[1] * grid + coef[2] * grid**2, "-",
                label=f"fit c + b/n + d/n²: c = {coef[0]:.3f} ± {c_se:.3f}")
        ax.plot([0], [c_pred], "k*", ms=12, label=f"derived $c_L$ = {c_pred:.4g}")
        ax.plot([0], [5 * DEEP_RELU_DEPTH], "rx", ms=10, label="5L")
        ax.set(xlabel="1/n", ylabel=r"$n\,\mathrm{Var}\,\Theta/\Theta^2$", title=f"ReLU, depth {DEEP_RELU_DEPTH}")
        ax.legend()

    return compare(c_pred, float(coef[0]), c_se, rivals={"5L": 5 * DEEP_RELU_DEPTH},
                   data={"widths": widths, "y": y, "y_se": y_se, "fit": coef, "hanin_nica_5L": 5 * DEEP_RELU_DEPTH},
                   plot=plot)


# --------------------------------------------------------------------------------------------------------------
# The dNTK and the cluster-graph rule
# --------------------------------------------------------------------------------------------------------------

#: E[ΔΘ²] for one gradient step: two copies of ∂²_{μν}f(x) ∂_νf(x') ∂_μf(x_α) f(x_α) (factors 0-3 and 4-7).
DNTK_GRAPH = (8, ((0, 1), (0, 2), (4, 5), (4, 6)))


#: The one-hidden-layer networks of ``finite_width.dntk``: widths 32 .. 16384 (2.7 decades; the cost per network
#: grows like n), networks ∝ n^{-3/4} (the narrow widths pin the 1/n correction).
DNTK_WIDE = (32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)


def _dntk_setup():
    """Four inputs in R^4 and their targets: part of the claim."""
    return np.random.default_rng(11).standard_normal((4, 4)), np.array([[0.5], [-1.0], [1.0], [0.2]])


def _ntk_step(mlp, params, x, y):
    """Per network, the mean over the 4 × 4 entries of (Θ̂_1 - Θ̂_0)² after one gradient-descent step at lr = 1."""
    after = train(mlp, params, x, y, lr=1.0, steps=1).params
    return np.mean((mlp.ntk(after, x) - mlp.ntk(params, x)) ** 2, axis=(1, 2))


@claim("finite_width.dntk",
       "One step of gradient descent changes the empirical NTK of a tanh network by $O(1/n)$, the Dyer & Gur-Ari "
       "exponent of $E[\\Delta\\Theta^2]$: its root mean square over networks (two hidden layers) and its typical "
       "size (the geometric mean over networks; one hidden layer, widths 32 to 16384) both fall like $1/n$.",
       "Dyer & Gur-Ari 2020; Roberts, Yaida & Hanin 2022, ch. 11 (dNTK)",
       lambda: n ** (fw.cluster_exponent(*DNTK_GRAPH) / 2))
def _dntk(seed, size):
    """Two measurements, each an exponent fitted with its leading 1/n correction. Two hidden layers (widths 16 .. 181,
    as in Dyer & Gur-Ari's deep networks): √E[ΔΘ²]. One hidden layer over 2.7 decades: ΔΘ is, to first order in the
    step, a product of two Gaussian fields (the residual and the dNTK), so ΔΘ² is heavy-tailed (its coefficient of
    variation is ~3) and its mean converges slowly; n ΔΘ converges in law, so the geometric mean over networks,
    exp E[½ log ΔΘ²] (a standard deviation of ~0.9 per network), has the same exponent."""
    x, y = _dntk_setup()
    widths = sized(size, (16, 23, 32, 45, 64, 91), (16, 23, 32, 45, 64, 91, 128, 181),
                   (16, 23, 32, 45, 64, 91, 128, 181, 256, 362))
    networks = sized(size, 100, 800, 2000)
    rms, rms_se = [], []
    for w in widths:
        mlp = MLP(4, (w, w), "tanh", sigma_w2=1.5, sigma_b2=0.1)
        sq = _ntk_step(mlp, mlp.init(seed_for(seed, "finite_width.dntk", w), networks), x, y)
        rms.append(np.sqrt(sq.mean()))
        rms_se.append(sq.std(ddof=1) / np.sqrt(networks) / (2 * rms[-1]))
    exponent = float(fw.cluster_exponent(*DNTK_GRAPH) / 2)
    # consistency only: over 16 .. 181 the interval is ±0.4 wide and reaches the rival n^-1/2 at 3 of 20 seeds; the
    # rival is excluded by the one-hidden-layer fit below
    deep = power_law(widths, rms, rms_se, exponent, correction=True, what="exponent of the RMS, two hidden layers")
    wide = sized(size, DNTK_WIDE[:7], DNTK_WIDE, DNTK_WIDE)
    base = sized(size, 600, 9000, 20000)
    typical, typical_se = [], []
    for w in wide:
        mlp = MLP(4, (w,), "tanh", sigma_w2=1.5, sigma_b2=0.1)
        params = mlp.init(seed_for(seed, "finite_width.dntk", "one layer", w), max(24, round(base * (64 / w) ** 0.75)))
        mean, se = stats.mean_se(0.5 * np.log(_ntk_step(mlp, params, x, y)))
        typical.append(np.exp(mean))
        typical_se.append(np.exp(mean) * se)
    shallow = power_law(wide, typical, typical_se, exponent, correction=True, rivals={"n^-1/2": exponent + 0.5},
                        what="exponent of the geometric mean, one hidden layer")
    result = combine(deep, shallow, headline=1)

    def plot(fig):
        ax = fig.add_subplot()
        for part, label in ((deep, "RMS, two hidden layers"), (shallow, "geometric mean, one hidden layer")):
            x_, y_ = part.data["x"], part.data["y"]
            ax.errorbar(x_, y_, yerr=2 * part.data["y_se"], fmt="o", ms=3, capsize=2, label=f"{label} (2 SE)")
        ax.plot(wide, typical[-1] * (np.array(wide) / wide[-1]) ** exponent, "k--", label=f"slope {exponent:g}")
        ax.set(xscale="log", yscale="log", xlabel="width n", ylabel=r"$\Delta\Theta$ (one step)", title="tanh")
        ax.legend()

    result.plot = plot
    return result


def _two_layer_units(x, u, v, sw):
    r"""Per-unit factors of f(x) = c Σ_j v_j tanh(h_j), h_j = a u_j·x, c = √(σ_w²/n), a = √(σ_w²/d), on inputs x (k, d):
    t = tanh(h), t1 = tanh'(h), t2 = tanh''(h), each (k, E, n). The gradient of unit j is (c t, c a v t1 x) over
    (v_j, u_j) and its Hessian block [[0, c a t1 xᵀ], [c a t1 x, c a² v t2 x xᵀ]] (f is a sum of units)."""
    h = np.sqrt(sw / u.shape[2]) * np.einsum("end,kd->ken", u, x)
    t = np.tanh(h)
    t1 = 1 - t**2
    return t, t1, -2 * t * t1


def _correlations(x, u, v, sw):
    """Per-network values of the :data:`CORRELATIONS`, contracted unit by unit in closed form from the gradient and
    Hessian blocks of :func:`_two_layer_units` (x: four inputs; G = x xᵀ)."""
    E, width, d = u.shape
    c2, a2 = sw / width, sw / d
    t, t1, t2 = _two_layer_units(x, u, v, sw)
    G = x @ x.T
    f = np.sqrt(c2) * np.sum(v * t, axis=2)
    ntk = c2 * np.sum(t[0] * t[1] + a2 * v**2 * t1[0] * t1[1] * G[0, 1], axis=1)
    dntk = c2**1.5 * a2 * np.sum(v * t1[2] * (t[0] * t1[1] * G[2, 1] + t[1] * t1[0] * G[2, 0])
                                 + a2 * v**3 * t1[0] * t2[2] * t1[1] * G[0, 2] * G[2, 1], axis=1) * f[3]
    hessian = c2 * a2 * np.sum(2 * t1[0] * t1[1] * G[0, 1] + a2 * v**2 * t2[0] * t2[1] * G[0, 1] ** 2, axis=1)
    # g_3ᵀ H_0 H_1 g_2: H_1 g_2 = (α, β x_1), H_0 (α, β x_1) = (γ, δ x_0)
    s_ = np.sqrt(c2 * a2) * v * t1[2] * G[1, 2]  # x_1 · (u-part of g_2)
    alpha = np.sqrt(c2 * a2) * t1[1] * s_
    beta = np.sqrt(c2 * a2) * t1[1] * np.sqrt(c2) * t[2] + np.sqrt(c2) * a2 * v * t2[1] * s_
    gamma = np.sqrt(c2 * a2) * t1[0] * beta * G[0, 1]
    delta = np.sqrt(c2 * a2) * t1[0] * alpha + np.sqrt(c2) * a2 * v * t2[0] * beta * G[0, 1]
    chain = np.sum(np.sqrt(c2) * t[3] * gamma + np.sqrt(c2 * a2) * v * t1[3] * delta * G[3, 0], axis=1)
    return ntk, dntk, hessian, chain


#: Correlation functions of the two-layer network and their cluster graphs (m factors, contracted pairs).
CORRELATIONS = (
    ("NTK: E[d_mu f(x0) d_mu f(x1)]", (2, ((0, 1),))),
    ("dNTK: E[d_mu f(x0) d_nu f(x1) d2_munu f(x2) f(x3)]", (4, ((0, 2), (1, 2)))),
    ("Hessian: E[d2_munu f(x0) d2_munu f(x1)]", (2, ((0, 1), (0, 1)))),
    ("chain: E[d2_munu f(x0) d2_nurho f(x1) d_mu f(x3) d_rho f(x2)]", (4, ((0, 1), (0, 3), (1, 2)))),
)


@claim("finite_width.cluster_graph",
       "On a two-layer tanh network, correlation functions of derivative tensors scale with the width as "
       "$n^{s_C}$, $s_C = n_e + n_o/2 - m/2$ from their cluster graph.",
       "Dyer & Gur-Ari 2020, Conjecture 1 (proved for polynomial activations by Aitken & Gur-Ari 2020)",
       lambda: sp.Tuple(*(fw.cluster_exponent(*graph) for _, graph in CORRELATIONS)))
def _cluster_graph(seed, size):
    widths = np.array(sized(size, (16, 32, 64, 128), (16, 32, 64, 128, 256), (16, 32, 64, 128, 256, 512)))
    networks = sized(size, 4000, 16_000, 64_000)
    sw, d = 1.5, 2
    x = np.array([[1.0, 0.3], [-0.4, 1.1], [0.8, -0.9], [0.2, 1.3]])
    values = np.zeros((len(CORRELATIONS), len(widths), networks))
    for i, w in enumerate(widths):
        rng = np.random.default_rng(seed_for(seed, "finite_width.cluster_graph", w))
        step = max(1, _CHUNK // (int(w) * 16))
        for start in range(0, networks, step):
            stop = min(start + step, networks)
            u = rng.standard_normal((stop - start, int(w), d))
            v = rng.standard_normal((stop - start, int(w)))
            values[:, i, start:stop] = _correlations(x, u, v, sw)
    fits = []
    for j, (name, graph) in enumerate(CORRELATIONS):
        mean = np.abs(values[j].mean(axis=1))
        se = values[j].std(axis=1, ddof=1) / np.sqrt(networks)
        rule = float(fw.cluster_exponent(*graph))
        fits.append(power_law(widths, mean, se, rule, correction=True, what=name, rivals={"n^1/2 off": rule + 0.5}))
    series = [(name.split(":")[0], f.data["y"], f.data["y_se"], f.estimate, f.prediction)
              for (name, _), f in zip(CORRELATIONS, fits)]
    headline = combine(*fits, headline=1, data={"widths": widths, "series": series})

    def plot(fig):
        ax = fig.add_subplot()
        for name, y, y_se, slope, rule in series:
            line = ax.errorbar(widths, y / y[0], yerr=2 * y_se / y[0], fmt="o", capsize=2,
                               label=f"{name}: fit {slope:.2f}, rule {rule:g}")
            ax.plot(widths, (widths / widths[0]) ** rule, "--", color=line[0].get_color(), lw=1)
        ax.set(xscale="log", yscale="log", xlabel="width n", ylabel="|C| / |C(n_min)|", title="two-layer tanh")
        ax.legend(fontsize=7)

    headline.plot = plot
    return headline
