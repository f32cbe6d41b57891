"""Learning-rate sweeps: the training against independent references, the argmin interval, divergence, data."""

import concurrent.futures
import math
import sys

import numpy as np
import pytest

from theory.montecarlo import sweep as sweep_module
from theory.montecarlo.data import Task, digits, teacher
from theory.montecarlo.sweep import _Adam, lr_sweep, network, quadratic_argmin
from theory.parameterizations import MUP, MUP_ADAM, NTK, SP


def _task(D=12, d=3, out=1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((D, d))
    return Task(X, rng.standard_normal((D, out)), X[:4] + 0.1, rng.standard_normal((4, out)))


def _params(p, task, n, seed, networks, **kw):
    """The initial weights lr_sweep gives network e at width n: child e of the child n of the root seed."""
    mlp, rates = network(p, task.d, n, task.out, **kw)
    root = np.random.SeedSequence(seed)
    return mlp, rates, mlp.init(np.random.SeedSequence(root.entropy, spawn_key=(n,)), networks)


def _reference(mlp, params, e, task, lr, rates, steps, loss):
    """Full-batch gradient descent of one network of depth 1, written out by hand (no MLP methods)."""
    (W1, _), (W2, _) = [(W[e].copy(), b[e]) for W, b in params]
    m1, m2 = mlp.multipliers
    X, Y = task.X, task.Y
    D = len(X)

    def forward(W1, W2):
        h = m1 * X @ W1.T
        return h, m2 * np.maximum(h, 0) @ W2.T

    for _ in range(steps):
        h, f = forward(W1, W2)
        if loss == "mse":
            g = (f - Y) / D
        else:
            p = np.exp(f - f.max(axis=1, keepdims=True))
            g = (p / p.sum(axis=1, keepdims=True) - Y) / D
        a = np.maximum(h, 0)
        dW2 = m2 * g.T @ a
        dW1 = m1 * ((g @ W2) * m2 * (h > 0)).T @ X
        W1 = W1 - lr * rates[0] * dW1
        W2 = W2 - lr * rates[1] * dW2
    f = forward(W1, W2)[1]
    if loss == "mse":
        return 0.5 * np.sum((f - Y) ** 2) / D
    logp = f - f.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    return -np.sum(Y * logp) / D


@pytest.mark.parametrize("p, loss, out", [(MUP(1), "mse", 1), (SP(1), "mse", 1), (NTK(1), "cross_entropy", 3)])
def test_every_entry_of_the_sweep_is_the_hand_written_training_of_that_network(p, loss, out):
    task = _task(out=out)
    if loss == "cross_entropy":
        labels = np.argmax(task.Y, axis=1)
        task = Task(task.X, np.eye(out)[labels], task.X_test, np.eye(out)[np.argmax(task.Y_test, axis=1)])
    lrs = [0.01, 0.04]
    run = lr_sweep(p, [16, 40], lrs, task, steps=7, networks=3, seed=5, loss=loss, base_width=16)
    for w, n in enumerate([16, 40]):
        mlp, rates, params = _params(p, task, n, 5, 3, base_width=16)
        for k, lr in enumerate(lrs):
            for e in range(3):
                expected = _reference(mlp, params, e, task, lr, rates, 7, loss)
                np.testing.assert_allclose(run.train[w, k, e], expected, rtol=1e-10)
    assert not run.diverged.any() and run.test.shape == run.train.shape


def test_one_minibatch_of_all_points_is_full_batch_and_chunking_does_not_change_a_run(monkeypatch):
    task = _task()
    full = lr_sweep(MUP(1), [20], [0.1, 0.3], task, 5, 4, seed=1, base_width=20)
    whole = lr_sweep(MUP(1), [20], [0.1, 0.3], task, 5, 4, seed=1, base_width=20, batch_size=len(task.X))
    np.testing.assert_allclose(whole.train, full.train, rtol=1e-12)
    small = lr_sweep(MUP(1), [20], [0.1, 0.3], task, 5, 4, seed=1, base_width=20, batch_size=3)
    monkeypatch.setattr(sweep_module, "_CHUNK_FLOATS", 1)  # one member per unit of work
    np.testing.assert_array_equal(lr_sweep(MUP(1), [20], [0.1, 0.3], task, 5, 4, seed=1, base_width=20,
                                           batch_size=3).train, small.train)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        np.testing.assert_array_equal(lr_sweep(MUP(1), [20], [0.1, 0.3], task, 5, 4, seed=1, base_width=20,
                                               batch_size=3, executor=pool).train, small.train)


def test_adam_step_is_the_textbook_update():
    """Kingma & Ba's Algorithm 1, element by element in plain Python, against the batched in-place step."""
    rng = np.random.default_rng(3)
    W, b = rng.standard_normal((2, 3, 2)), rng.standard_normal((2, 3))
    params = [(W.copy(), b.copy())]
    rates = [np.array([0.01, 0.3])]
    opt = _Adam(params, eps=1e-3)
    grads_seq = [(rng.standard_normal(W.shape), rng.standard_normal(b.shape)) for _ in range(4)]
    ref = [W.copy(), b.copy()]
    moments = [[np.zeros_like(x), np.zeros_like(x)] for x in ref]
    for t, (gW, gb) in enumerate(grads_seq, 1):
        opt.step(params, [(gW.copy(), gb.copy())], rates, t)
        for x, g, (m, v) in zip(ref, (gW, gb), moments):
            for idx in np.ndindex(x.shape):
                m[idx] = 0.9 * m[idx] + 0.1 * g[idx]
                v[idx] = 0.999 * v[idx] + 0.001 * g[idx] ** 2
                m_hat, v_hat = m[idx] / (1 - 0.9**t), v[idx] / (1 - 0.999**t)
                x[idx] -= rates[0][idx[0]] * m_hat / (math.sqrt(v_hat) + 1e-3)
    np.testing.assert_allclose(params[0][0], ref[0], rtol=1e-12)
    np.testing.assert_allclose(params[0][1], ref[1], rtol=1e-12)


def test_base_width_makes_every_parameterization_the_standard_one_at_the_base():
    sp_net, sp_rates = network(SP(2), 5, 32, base_width=32)
    for p in (MUP(2), NTK(2), MUP_ADAM(2)):
        net, rates = network(p, 5, 32, base_width=32)
        np.testing.assert_allclose(net.multipliers, sp_net.multipliers, rtol=1e-14)
        np.testing.assert_allclose(net.init_stds, sp_net.init_stds, rtol=1e-14)
        np.testing.assert_allclose(rates, sp_rates, rtol=1e-14)
    # at 4x the base, muP's readout multiplier is SP's times 4^{-1/2} and its input rate factor is 1
    net, rates = network(MUP(2), 5, 128, base_width=32)
    sp_net, sp_rates = network(SP(2), 5, 128, base_width=32)
    assert net.multipliers[-1] == pytest.approx(sp_net.multipliers[-1] / 2)
    assert net.multipliers[0] == pytest.approx(sp_net.multipliers[0] * 2)
    zero, _ = network(MUP(2), 5, 128, base_width=32, zero_readout=True)
    assert zero.init_stds[-1] == 0.0


def test_diverged_networks_are_recorded_and_left_out_of_the_means():
    task = _task()
    run = lr_sweep(SP(1), [64], [1e-3, 1e3], task, steps=10, networks=3, seed=0)
    assert not run.diverged[0, 0].any() and run.diverged[0, 1].all()
    assert np.all(np.isinf(run.train[0, 1])) and np.all(np.isinf(run.test[0, 1]))
    mean, se, count = run.mean()
    assert np.isfinite(mean[0, 0]) and mean[0, 1] == np.inf and list(count[0]) == [3, 0]
    assert not np.isnan(mean).any()
    assert run.max_stable_lr()[0] == 1e-3
    # one survivor: its loss is the mean, without an SE
    mixed = sweep_module.Sweep(run.widths, run.lrs[:1], run.train[:, :1], None,
                               np.array([[[True, False, True]]]), steps=10)
    mean, se, count = mixed.mean()
    assert mean[0, 0] == run.train[0, 0, 1] and np.isnan(se[0, 0]) and count[0, 0] == 1


def test_the_argmin_interval_covers_at_its_level():
    """Curves c (x - x*)² + a random offset, slope and noise per network (errors correlated across x, as on the
    same networks): the 90% Fieller interval covers x* in 90% of 2000 synthetic ensembles (binomial SE 0.0067)."""
    rng = np.random.default_rng(0)
    x = np.linspace(-1.0, 1.0, 5)
    covered, reps = 0, 2000
    for _ in range(reps):
        E = 6
        offset = rng.normal(0, 0.3, (E, 1))
        slope = rng.normal(0, 0.2, (E, 1))
        y = 1.5 * (x - 0.2) ** 2 + offset + slope * x + rng.normal(0, 0.05, (E, x.size))
        _, _, (lo, hi), _, _ = quadratic_argmin(x, y, level=0.9)
        covered += lo <= 0.2 <= hi
    assert abs(covered / reps - 0.9) < 4 * math.sqrt(0.9 * 0.1 / reps)


def test_the_argmin_of_exact_quadratics_and_an_unbracketed_minimum():
    x = np.linspace(0, 4, 5)
    y = np.stack([(x - 1.3) ** 2 + c for c in (0.0, 0.1, 0.2)]) + np.array([[0.0], [1e-3], [-1e-3]]) * x
    star, se, (lo, hi), y_min, _ = quadratic_argmin(x, y)
    assert star == pytest.approx(1.3, abs=1e-3) and lo < star < hi and y_min == pytest.approx(0.1, abs=1e-3)
    flat = np.stack([x * 0 + c for c in (0.0, 0.1, 0.2)]) + np.array([[0.01], [-0.01], [0.0]]) * x
    assert quadratic_argmin(x, flat)[2] == (-math.inf, math.inf)


def test_the_optimum_and_exponent_of_a_sweep_with_a_known_optimum():
    """A synthetic sweep whose log-loss is (log₂ η - s log₂ n)² per network: the exponent is s."""
    widths, lrs = np.array([64, 128, 256, 512]), 2.0 ** np.arange(-8.0, 2.1, 0.5)
    rng = np.random.default_rng(1)
    s = -0.5
    loss = np.exp((np.log2(lrs)[None, :, None] - (s * np.log2(widths) + 1)[:, None, None]) ** 2 / 4
                  + rng.normal(0, 0.01, (len(widths), len(lrs), 5)))
    run = sweep_module.Sweep(widths, lrs, loss, None, np.zeros(loss.shape, bool))
    fit = run.exponent(level=0.99)
    assert fit.interval[0] < s < fit.interval[1] and abs(fit.slope - s) < 0.05
    assert run.optimum().bracketed.all()
    fig = run.figure()
    assert fig.axes[0].get_xlabel().startswith("$\\log_2$")


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(optimizer="rmsprop"), ValueError, "optimizer"), (dict(loss="hinge"), ValueError, "loss"),
    (dict(lrs=[0.1, -1.0]), ValueError, "lrs"), (dict(lrs=[]), ValueError, "lrs"),
    (dict(widths=[]), ValueError, "widths"), (dict(widths=[0]), ValueError, "widths"),
    (dict(batch_size=100), ValueError, "batch_size"), (dict(steps=0), ValueError, "steps"),
    (dict(data=np.ones((3, 2))), TypeError, "data"), (dict(param="muP"), TypeError, "param"),
    (dict(loss="cross_entropy"), ValueError, "cross-entropy"), (dict(eps=-1.0), ValueError, "eps"),
    (dict(base_width=0), ValueError, "base_width")])
def test_bad_arguments(kwargs, error, match):
    args = dict(param=MUP(1), widths=[8], lrs=[0.1], data=_task(), steps=2, networks=2)
    with pytest.raises(error, match=match):
        lr_sweep(**{**args, **kwargs})


def test_teacher_task():
    task = teacher(d=6, train=50, test=20, width=32, seed=3)
    assert task.X.shape == (50, 6) and task.X_test.shape == (20, 6)
    np.testing.assert_allclose(np.sum(task.X**2, axis=1), 6.0)
    assert np.mean(task.Y**2) == pytest.approx(1.0)
    labels = teacher(d=6, train=50, test=0, classes=3, seed=3)
    assert labels.Y.shape == (50, 3) and labels.X_test is None and np.all(labels.Y.sum(axis=1) == 1)
    with pytest.raises(ValueError, match="classes"):
        teacher(classes=1)


def test_digits_is_the_bundled_data_set():
    task = digits(train=300, classes=3, seed=0)
    assert task.d == 64 and task.out == 3 and len(task.X) == 300
    assert len(task.X) + len(task.X_test) == 537  # the 0s, 1s and 2s of the 1,797 images
    np.testing.assert_allclose(np.sum(task.X**2, axis=1), 64.0)
    np.testing.assert_array_equal(task.Y.sum(axis=1), 1.0)
    assert set(np.unique(np.argmax(task.Y, axis=1))) == {0, 1, 2}
    with pytest.raises(ValueError, match="train"):
        digits(train=600, classes=3)
    with pytest.raises(ValueError, match="classes"):
        digits(classes=11)


def test_digits_without_scikit_learn_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"theory\[data\]"):
        digits()


def test_a_task_checks_its_arrays():
    with pytest.raises(ValueError, match="Y"):
        Task(np.ones((3, 2)), np.ones(4))
    with pytest.raises(ValueError, match="X_test, Y_test"):
        Task(np.ones((3, 2)), np.ones(3), X_test=np.ones((2, 2)))
    with pytest.raises(ValueError, match="X_test"):
        Task(np.ones((3, 2)), np.ones(3), np.ones((2, 3)), np.ones(2))


def test_the_executor_of_theory_verify_runs_a_sweep_in_processes():
    from theory.distributed import executor

    task = teacher(d=4, train=16, test=8, seed=1)
    here = lr_sweep(MUP(1), [16, 32], [0.01, 0.1], task, 5, 3, seed=2, batch_size=4)
    with executor(jobs=2) as pool:
        there = lr_sweep(MUP(1), [16, 32], [0.01, 0.1], task, 5, 3, seed=2, batch_size=4, executor=pool)
    np.testing.assert_array_equal(there.train, here.train)
    np.testing.assert_array_equal(there.test, here.test)


def test_a_width_without_a_minimum_in_its_window_is_not_fitted():
    """A zigzag around the grid's best rate whose least-squares quadratic is concave: its stationary point is a
    maximum, so that width is marked unfitted and left out of the exponent."""
    widths, lrs = np.array([64, 128, 256, 512]), 2.0 ** np.arange(-8.0, 0.1, 0.5)
    x = np.log2(lrs)
    logs = np.stack([(x + 4) ** 2 / 4] * 4)
    logs[1] = 5.0
    logs[1, 6:11] = [-0.5, 0.5, -0.6, 0.5, -0.5]  # best rate in the middle, a concave fit around it
    loss = np.exp(logs[:, :, None] + np.random.default_rng(0).normal(0, 0.01, (4, len(lrs), 3)))
    run = sweep_module.Sweep(widths, lrs, loss, None, np.zeros(loss.shape, bool))
    opt = run.optimum()
    assert list(opt.fitted) == [True, False, True, True] and opt.bracketed[1]
    assert abs(run.exponent().slope) < 0.05
