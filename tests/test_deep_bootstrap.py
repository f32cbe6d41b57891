"""The Deep Bootstrap toys: exact test errors and the Ideal World's rate against Monte Carlo, the two worlds' limits,
and kernel gradient descent against explicit iteration on sampled Gaussian-process targets."""

import numpy as np
import pytest
import sympy as sp

import theory.claims.deep_bootstrap  # noqa: F401  (registers the claims)
from theory import deep_bootstrap as bs
from theory import claims
from theory import scaling as sc
from theory.derive import render, topics
from theory.numeric import lambdify
from theory.symbols import q11, q12, q22


def test_misspecification_of_sign_and_identity():
    """E[sign(u) u] = √(2/π), so the best linear predictor leaves 1 - 2/π; the identity leaves nothing."""
    c, s2 = bs.misspecification("sign")
    assert sp.simplify(c - sp.sqrt(2 / sp.pi)) == 0 and sp.simplify(s2 - (1 - 2 / sp.pi)) == 0
    assert bs.misspecification("identity") == (1, 0)


@pytest.mark.parametrize("activation", ["identity", "sign", "relu"])
def test_test_error_against_monte_carlo(activation):
    rng = np.random.default_rng(0)
    star, beta = rng.standard_normal(6), rng.standard_normal(6)
    x = rng.standard_normal((400_000, 6)) / np.sqrt(6)
    sigma = {"identity": lambda u: u, "sign": np.sign, "relu": lambda u: np.maximum(u, 0)}[activation]
    sample = (x @ beta - sigma(x @ star)) ** 2
    exact = lambdify((q11, q12, q22), bs.test_error(activation))(star @ star / 6, star @ beta / 6, beta @ beta / 6)
    assert abs(sample.mean() - exact) <= 5 * sample.std() / np.sqrt(sample.size)


def test_ideal_world_rate_against_one_sgd_step():
    """E|e'|² / |e|² for e' = (I - ηĈ)e, Ĉ from b fresh Gaussian samples (5 SE)."""
    rng = np.random.default_rng(1)
    d_, b_, eta_ = 8, 3, 0.9
    e = rng.standard_normal(d_)
    x = rng.standard_normal((200_000, b_, d_)) / np.sqrt(d_)
    step = e - eta_ * np.einsum("nbd,nb->nd", x, x @ e) / b_
    ratio = np.sum(step**2, axis=1) / (e @ e)
    rho = lambdify((bs.d, bs.eta, bs.b), bs.ideal_world_rate())(d_, eta_, b_)
    assert abs(ratio.mean() - rho) <= 5 * ratio.std() / np.sqrt(ratio.size)


def test_linear_worlds_follow_their_predictions():
    """σ(x) = x, n = 10 < d = 25: the Ideal World's mean error is ρ^t at every step (5 SE); the Real World ends at
    the ridgeless risk 1 - n/d (5 SE + the bound n·train/(d λ_min(XXᵀ)) on its unconverged part)."""
    w = bs.linear_worlds("identity", 10, 25, 1000, 5, 1.0, 300, 2)
    rho = lambdify((bs.d, bs.eta, bs.b), bs.ideal_world_rate())(25, 1.0, 5)
    steps = np.array([0, 5, 20, 50, 100])
    mean, se = w.ideal_test[:, steps].mean(0), w.ideal_test[:, steps].std(0) / np.sqrt(300)
    assert np.all(np.abs(mean - rho**steps) <= 5 * se + 1e-12)
    smallest = np.linalg.eigvalsh(w.inputs @ np.transpose(w.inputs, (0, 2, 1)))[:, 0]
    bound = np.mean(10 * w.real_train[:, -1] / (25 * smallest))
    assert bound < 1e-3
    final = w.real_test[:, -1]
    assert abs(final.mean() - (1 - 10 / 25)) <= 5 * final.std() / np.sqrt(final.size) + bound
    real, _ = bs.predictions("identity")
    assert real.xreplace({bs.n: 10, bs.d: 25}) == sp.Rational(3, 5)


@pytest.mark.slow
def test_sign_world_stated_bias_components():
    """The claim's bias allowance: at T(n) each world is within 0.01 of its limit (Real: its converged value at
    2000 steps; Ideal: s²), and the converged Real World is s²(1 + d/(n - d - 1)) within 5 SE + s²/n."""
    w = bs.linear_worlds("sign", 100, 10, 2000, 20, 0.1, 200, 3)
    T = bs.stopping_time(w.real_train, w.floor)
    s2 = 1 - 2 / np.pi
    assert abs(w.real_test[:, T].mean() - w.real_test[:, -1].mean()) < 0.01
    assert 0 <= w.ideal_test[:, T].mean() - s2 < 0.01
    final = w.real_test[:, -1]
    assert abs(final.mean() - s2 * (1 + 10 / 89)) <= 5 * final.std() / np.sqrt(final.size) + s2 / 100


def test_stopping_time():
    train = np.array([[1.0, 0.5, 0.2, 0.105, 0.1], [1.0, 0.5, 0.2, 0.105, 0.1]])
    assert bs.stopping_time(train, np.array([0.1, 0.1])) == 3
    assert bs.stopping_time(train, np.array([0.1, 0.1]), tolerance=0.001) == 4
    assert bs.stopping_time(train[:, :3], np.array([0.1, 0.1])) is None


def test_kernel_worlds_against_explicit_gradient_descent():
    """Sample GP targets on train + test points, run f ← f - (η/n) K (f(X) - y) explicitly, average (5 SE)."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((40, 3))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    angles = np.arccos(np.clip(x @ x.T, -1, 1))
    np.fill_diagonal(angles, 0.0)
    gram = sc.sphere_kernel(angles, depth=2, sigma_w2=2.0, sigma_b2=0.1)
    n_, lr, steps = 25, 0.5, 30
    exact = bs.kernel_worlds(gram[:n_, :n_], gram[:n_, n_:], np.diag(gram)[n_:], lr, steps)
    root = np.linalg.cholesky(gram + 1e-10 * np.eye(40))
    targets = root @ rng.standard_normal((40, 20_000))
    f = np.zeros_like(targets)
    errors = [np.mean((f[n_:] - targets[n_:]) ** 2, axis=0)]
    for _ in range(steps):
        f -= lr / n_ * gram[:, :n_] @ (f[:n_] - targets[:n_])
        errors.append(np.mean((f[n_:] - targets[n_:]) ** 2, axis=0))
    errors = np.array(errors)
    assert np.all(np.abs(errors.mean(1) - exact) <= 5 * errors.std(1) / np.sqrt(errors.shape[1]) + 1e-12)


def test_kernel_worlds_limits():
    """t = 0: the prior variance; t -> ∞: the GP posterior variance (kernel interpolation)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((30, 3))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    gram = sc.sphere_kernel(np.arccos(np.clip(x @ x.T, -1, 1)) * (1 - np.eye(30)), depth=2, kind="nngp",
                            sigma_w2=2.0, sigma_b2=0.1)
    curve = bs.kernel_worlds(gram[:20, :20], gram[:20, 20:], np.diag(gram)[20:], 1.0, 100_000)
    posterior = np.diag(gram)[20:] - np.sum(gram[:20, 20:] * np.linalg.solve(gram[:20, :20], gram[:20, 20:]), axis=0)
    assert curve[0] == pytest.approx(np.mean(np.diag(gram)[20:]))
    assert curve[-1] == pytest.approx(np.mean(posterior), rel=1e-3)


def test_ideal_kernel_error_starts_at_the_trace():
    spectrum = sc.kernel_spectrum(3, 30, kind="nngp", depth=2, sigma_w2=2.0, sigma_b2=0.1)
    curve = bs.ideal_kernel_error(spectrum, 0.5, 10)
    assert curve[0] == pytest.approx(np.sum(spectrum.eigenvalue * spectrum.multiplicity))
    assert np.all(np.diff(curve) < 0)


def test_bad_input():
    with pytest.raises(ValueError, match="lr"):
        bs.linear_worlds("identity", 5, 5, 10, 2, 0.0, 3, 0)
    with pytest.raises(TypeError, match="batch"):
        bs.linear_worlds("identity", 5, 5, 10, 2.5, 0.1, 3, 0)


def test_claims_are_registered_and_derive_renders():
    assert [c.id for c in claims.select(["deep_bootstrap"])] == ["deep_bootstrap.kernel", "deep_bootstrap.linear", "deep_bootstrap.sign"]
    for activation in ("identity", "sign"):
        assert render(topics()["deep_bootstrap"].derive(activation=activation), latex=True)


@pytest.mark.slow
@pytest.mark.parametrize("claim_id", ["deep_bootstrap.linear", "deep_bootstrap.sign"])
def test_claims_hold_at_quick_size(claim_id):
    (_, result, _), = claims.verify([claim_id], size="quick")
    assert result.passed, result.criterion
