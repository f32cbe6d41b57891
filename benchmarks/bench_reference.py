"""What the benchmarks compare against, written here from the definitions and independent of the package.

* Baselines: the plain NumPy layer loops of the NNGP/NTK recursion (ReLU: the arc-cosine kernel in arctan2 form;
  erf: the arcsine kernel), no fusion; the plain layer-wise empirical NTK of an MLP (one network at a time,
  ``a @ W.T``), the textbook way to write it.
* Exact values: on the diagonal the pre-activations of a layer are u = v = √k z with one z ~ N(0, 1), so each
  layer's Gaussian expectation is one-dimensional: closed forms for ReLU and erf, high-order Gauss-Hermite
  quadrature for smooth activations. Colinear pairs (x, c·x, no bias): the closed-form recursion in 40-digit
  mpmath arithmetic, where the cancellation of the angle near ρ = 1 is harmless (ReLU, erf).
* neural-tangents (optional): analytic and empirical kernels of the same networks, float64, jit-compiled.
"""

import mpmath
import numpy as np

SIGMA_W2, SIGMA_B2 = 2.0, 0.1  # the timed cases; the colinear check has no bias

# --------------------------------------------------------------------------------------------------------------
# Baselines: plain NumPy loops over layers
# --------------------------------------------------------------------------------------------------------------


def _relu_layer(k11, k12, k22, sw, sb):
    """E[relu(u) relu(v)] = √(k11 k22) (sin θ + (π - θ) cos θ) / 2π, E[H(u) H(v)] = (π - θ) / 2π (Cho & Saul 2009)."""
    det = np.sqrt(np.maximum(k11 * k22 - k12**2, 0.0))
    theta = np.arctan2(det, k12)
    kdot = sw * (np.pi - theta) / (2 * np.pi)
    return sb + sw * (det + (np.pi - theta) * k12) / (2 * np.pi), kdot


def _erf_layer(k11, k12, k22, sw, sb):
    """E[erf(u) erf(v)] = (2/π) arcsin(2 k12 / √((1 + 2k11)(1 + 2k22))), E[erf' erf'] = (4/π) / √((1+2k11)(1+2k22) - 4k12²)
    (Williams 1997)."""
    s = (1 + 2 * k11) * (1 + 2 * k22)
    return sb + sw * 2 / np.pi * np.arcsin(2 * k12 / np.sqrt(s)), sw * 4 / np.pi / np.sqrt(s - 4 * k12**2)


BASELINE_LAYERS = {"relu": _relu_layer, "erf": _erf_layer}


def numpy_loop(X, activation, depth, sw=SIGMA_W2, sb=SIGMA_B2):
    """(K^L, Θ^L) of K(X, X) by the plain NumPy loop over layers (the diagonal through the same formula)."""
    layer = BASELINE_LAYERS[activation]
    d = X.shape[1]
    k12 = sb + sw * (X @ X.T) / d
    k11 = np.diag(k12).copy()
    ntk = k12.copy()
    for _ in range(depth):
        a, b = k11[:, None], k11[None, :]
        k12, kdot = layer(a, k12, b, sw, sb)
        ntk = k12 + kdot * ntk
        k11 = layer(k11, k11, k11, sw, sb)[0]
    return k12, ntk


def numpy_empirical_ntk(params, X, multipliers, sb):
    """Θ(x, x') = Σ_l (δ^l(x)·δ^l(x')) (m_l² a^{l-1}(x)·a^{l-1}(x') + σ_b²) of each network of a ReLU MLP with one
    output, looping over networks; params as :meth:`theory.montecarlo.MLP.init` returns them."""
    out = []
    for e in range(params[0][0].shape[0]):
        acts, pres = [X], []
        for m, (W, b) in zip(multipliers[:-1], params[:-1]):
            pres.append(m * (acts[-1] @ W[e].T) + sb * b[e])
            acts.append(np.maximum(pres[-1], 0.0))
        delta = np.ones((X.shape[0], 1))
        theta = delta @ delta.T * (multipliers[-1] ** 2 * acts[-1] @ acts[-1].T + sb**2)
        for l in range(len(pres) - 1, -1, -1):
            delta = multipliers[l + 1] * (delta @ params[l + 1][0][e]) * (pres[l] > 0)
            theta += (delta @ delta.T) * (multipliers[l] ** 2 * acts[l] @ acts[l].T + sb**2)
        out.append(theta)
    return np.array(out)


# --------------------------------------------------------------------------------------------------------------
# Exact values for colinear pairs and the diagonal: one-dimensional Gaussian expectations
# --------------------------------------------------------------------------------------------------------------

_NODES = np.arange(-800, 801) * 0.05  # |z| <= 40
_WEIGHTS = 0.05 * np.exp(-_NODES**2 / 2) / np.sqrt(2 * np.pi)


def _quad1(f, g, a, b):
    """E[f(a z) g(b z)], z ~ N(0, 1), by the trapezoidal rule with step 0.05 on |z| <= 40 (a, b arrays of the same
    shape): for integrands analytic in the strip |Im z| < τ its error is ~exp(-2πτ/0.05), below the rounding for
    tanh up to variance ~10 (τ = π/(2√q)). A 200-point Gauss-Hermite rule is off by 1e-7 for sech⁴ at variance 3."""
    x = _NODES
    return (f(a[..., None] * x) * g(b[..., None] * x)) @ _WEIGHTS


def _tanh_d(z):
    return 1 / np.cosh(z) ** 2


_COLINEAR = {
    # E[φ(az) φ(bz)], E[φ'(az) φ'(bz)] for a, b >= 0
    "relu": lambda a, b: (a * b / 2, np.full_like(a, 0.5)),
    "erf": lambda a, b: (2 / np.pi * np.arcsin(2 * a * b / np.sqrt((1 + 2 * a**2) * (1 + 2 * b**2))),
                         4 / np.pi / np.sqrt(1 + 2 * a**2 + 2 * b**2)),
    "tanh": lambda a, b: (_quad1(np.tanh, np.tanh, a, b), _quad1(_tanh_d, _tanh_d, a, b)),
}


def exact_colinear(activation, g11, g12, g22, depth, sw, sb):
    """(K^L, Θ^L) for pairs whose pre-activations stay perfectly correlated at every layer (the diagonal x = x';
    colinear pairs without bias for positively homogeneous φ): K = sb + sw E[φ(√k1 z) φ(√k2 z)],
    K̇ = sw E[φ'(√k1 z) φ'(√k2 z)], Θ = K + K̇ Θ."""
    pair = _COLINEAR[activation]
    k1, k2 = sb + sw * g11, sb + sw * g22
    k12 = sb + sw * g12
    ntk = k12
    for _ in range(depth):
        e12, d12 = pair(np.sqrt(k1), np.sqrt(k2))
        k12, ntk = sb + sw * e12, sb + sw * e12 + sw * d12 * ntk
        k1, k2 = sb + sw * pair(np.sqrt(k1), np.sqrt(k1))[0], sb + sw * pair(np.sqrt(k2), np.sqrt(k2))[0]
    return k12, ntk


def colinear_inputs(d=64, bases=4, seed=1):
    """Inputs x_i and c·x_i for c in (1, 0.5, 2, 7): (X, pairs) with pairs the (row, col) indices of colinear pairs."""
    X0 = np.random.default_rng(seed).standard_normal((bases, d))
    scales = np.array([1.0, 0.5, 2.0, 7.0])
    X = (scales[:, None, None] * X0[None]).reshape(-1, d)
    idx = np.arange(X.shape[0]).reshape(len(scales), bases)
    pairs = [(idx[s, i], idx[t, i]) for i in range(bases) for s in range(len(scales)) for t in range(len(scales))
             if s != t]
    return X, tuple(np.array(p) for p in zip(*pairs))


def _mp_relu(k11, k12, k22):
    theta = mpmath.acos(k12 / mpmath.sqrt(k11 * k22))
    return (mpmath.sqrt(k11 * k22) * (mpmath.sin(theta) + (mpmath.pi - theta) * mpmath.cos(theta)) / (2 * mpmath.pi),
            (mpmath.pi - theta) / (2 * mpmath.pi))


def _mp_erf(k11, k12, k22):
    s = (1 + 2 * k11) * (1 + 2 * k22)
    return 2 / mpmath.pi * mpmath.asin(2 * k12 / mpmath.sqrt(s)), 4 / mpmath.pi / mpmath.sqrt(s - 4 * k12**2)


_MP_PAIRS = {"relu": _mp_relu, "erf": _mp_erf}  # E[φ(u)φ(v)], E[φ'(u)φ'(v)] for the closed-form activations


def exact_pair(activation, x, y, depth, sw, sb):
    """(K^L, Θ^L) of one pair of inputs by the closed-form recursion in 40-digit arithmetic (exact to float64:
    the angle's cancellation near ρ = 1 costs ~20 of the 40 digits)."""
    pair = _MP_PAIRS[activation]
    with mpmath.workdps(40):
        x, y = [mpmath.mpf(float(v)) for v in x], [mpmath.mpf(float(v)) for v in y]
        d = len(x)
        k11 = sb + sw * mpmath.fsum(a * a for a in x) / d
        k22 = sb + sw * mpmath.fsum(b * b for b in y) / d
        k12 = sb + sw * mpmath.fsum(a * b for a, b in zip(x, y)) / d
        ntk = k12
        for _ in range(depth):
            e12, d12 = pair(k11, k12, k22)
            k12 = sb + sw * e12
            ntk = k12 + sw * d12 * ntk
            k11, k22 = sb + sw * pair(k11, k11, k11)[0], sb + sw * pair(k22, k22, k22)[0]
        return float(k12), float(ntk)


def max_rel(actual, exact):
    return float(np.max(np.abs(np.asarray(actual) - exact) / np.abs(exact)))


def diag_error(X, activation, depth, K, ntk, sw=SIGMA_W2, sb=SIGMA_B2):
    """Max relative error of the diagonals of K and Θ against the exact one-dimensional recursion."""
    g = np.einsum("ij,ij->i", X, X) / X.shape[1]
    k, t = exact_colinear(activation, g, g, g, depth, sw, sb)
    return max(max_rel(np.diag(K), k), max_rel(np.diag(ntk), t))


def colinear_error(kernel_fn, activation, depth, sw=SIGMA_W2):
    """Max relative error of K and Θ on colinear pairs without bias (kernel_fn(X) -> (K, Θ) with σ_b² = 0) against
    :func:`exact_pair`; None for activations without a closed form."""
    if activation not in _MP_PAIRS:
        return None
    X, (r, c) = colinear_inputs()
    K, ntk = (np.asarray(k) for k in kernel_fn(X))
    exact = np.array([exact_pair(activation, X[i], X[j], depth, sw, 0.0) for i, j in zip(r, c)])
    return max(max_rel(K[r, c], exact[:, 0]), max_rel(ntk[r, c], exact[:, 1]))


# --------------------------------------------------------------------------------------------------------------
# neural-tangents (optional)
# --------------------------------------------------------------------------------------------------------------

try:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import neural_tangents as nt
    from neural_tangents import stax
except ImportError:  # the optional benchmark environment is absent
    nt = None

NT_ACTIVATIONS = {"relu": lambda: stax.Relu(), "erf": lambda: stax.Erf()}


def nt_network(activation, depth, width=512, sw=SIGMA_W2, sb=SIGMA_B2, out=1):
    """stax Dense -> (φ -> Dense) x depth in the NTK parameterization: (init_fn, apply_fn, kernel_fn)."""
    b_std = np.sqrt(sb) if sb > 0 else None
    layers = [stax.Dense(width, W_std=np.sqrt(sw), b_std=b_std)]
    for l in range(depth):
        layers += [NT_ACTIVATIONS[activation](), stax.Dense(width if l < depth - 1 else out, W_std=np.sqrt(sw),
                                                            b_std=b_std)]
    return stax.serial(*layers)


def nt_kernel(activation, depth, sw=SIGMA_W2, sb=SIGMA_B2):
    """X -> (K, Θ) as NumPy arrays: neural-tangents' analytic kernel_fn(X, None, ('nngp', 'ntk')), jit-compiled."""
    kernel_fn = jax.jit(nt_network(activation, depth, sw=sw, sb=sb)[2], static_argnames="get")

    def run(X):
        k = kernel_fn(jnp.asarray(X), None, ("nngp", "ntk"))
        return np.asarray(k[0]), np.asarray(k[1])

    return run


def nt_empirical(depth, width, sw, sb):
    """(params, X) -> Θ of shape (E, N, N): neural-tangents' empirical NTK (structured derivatives, jit) of the
    same ReLU MLP, one network at a time; params as :meth:`theory.montecarlo.MLP.init` returns them."""
    apply_fn = nt_network("relu", depth, width, sw, sb)[1]
    ntk = jax.jit(nt.empirical_ntk_fn(apply_fn, vmap_axes=0,
                                      implementation=nt.NtkImplementation.STRUCTURED_DERIVATIVES))

    def run(params, X):
        out = []
        for e in range(params[0][0].shape[0]):
            p = []
            for l, (W, b) in enumerate(params):
                p.append((jnp.asarray(W[e].T), jnp.asarray(b[e])))
                if l < len(params) - 1:
                    p.append(())
            out.append(np.asarray(ntk(jnp.asarray(X), None, p)))
        return np.array(out)

    return run
