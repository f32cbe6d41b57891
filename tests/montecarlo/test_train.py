"""Gradient descent on finite networks."""

import numpy as np
import pytest

from theory.montecarlo import MLP, train


def _data(seed, D=6, d=3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((D, d)), rng.standard_normal((D, 1))


def test_a_model_linear_in_its_parameters_follows_the_function_space_solution_exactly():
    """Depth 0 is linear in θ, so f_t = y + (I - ηΘ/D)^t (f_0 - y) holds exactly with the empirical NTK Θ."""
    X, Y = _data(0)
    mlp = MLP(3, (), "identity", sigma_w2=1.3, sigma_b2=0.5)
    params = mlp.init(1, networks=2)
    run = train(mlp, params, X, Y, lr=0.7, steps=25)
    theta = mlp.ntk(params, X)
    for e in range(2):
        step = np.eye(6) - 0.7 * theta[e] / 6
        expected = Y + np.linalg.matrix_power(step, 25) @ (run.f_train[0, e] - Y)
        np.testing.assert_allclose(run.f_train[-1, e], expected, rtol=1e-11, atol=1e-12)


def test_training_reduces_the_loss_and_records_as_asked():
    X, Y = _data(1)
    mlp = MLP(3, (64, 64), "tanh", sigma_w2=1.5)
    run = train(mlp, mlp.init(0, networks=3), X, Y, lr=0.5, steps=40, X_test=X[:2], record_every=15)
    assert list(run.steps) == [0, 15, 30, 40]
    assert run.f_train.shape == (4, 3, 6, 1) and run.f_test.shape == (4, 3, 2, 1) and run.loss.shape == (4, 3)
    np.testing.assert_allclose(run.f_test[:, :, :2], run.f_train[:, :, :2])
    assert np.all(run.loss[-1] < 0.5 * run.loss[0])
    np.testing.assert_allclose(run.loss[0], 0.5 * np.sum((run.f_train[0] - Y) ** 2, axis=(1, 2)) / 6)


def test_a_zero_learning_rate_freezes_its_layer():
    X, Y = _data(2)
    mlp = MLP(3, (8,), "relu")
    params = mlp.init(0)
    run = train(mlp, params, X, Y, lr=[0.0, 0.3], steps=5)
    np.testing.assert_array_equal(run.params[0][0], params[0][0])
    assert not np.array_equal(run.params[1][0], params[1][0])


@pytest.mark.parametrize("kwargs, match", [(dict(lr=-1.0), "lr"), (dict(lr=[0.1]), "lr"), (dict(steps=-1), "steps"),
                                           (dict(Y=np.ones((6, 2))), "Y"), (dict(X=np.ones((6, 2))), "X")])
def test_bad_arguments(kwargs, match):
    X, Y = _data(3)
    mlp = MLP(3, (4,), "relu")
    args = {"X": X, "Y": Y, "lr": 0.1, "steps": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        train(mlp, mlp.init(0), **args)
