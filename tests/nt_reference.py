"""The architectures compared with neural-tangents, declared in both libraries.

Imported by tests/test_layers.py (our declarations, ``NETS``); run as a script by an interpreter that has
neural-tangents (``python nt_reference.py``), it writes neural-tangents' analytic kernels of the same networks on
the same inputs to a temporary .npz file and prints its path. Nothing here imports the other side's code."""

import numpy as np


def inputs():
    r = np.random.default_rng(3)
    return {"vec": r.standard_normal((5, 6)), "1d": r.standard_normal((4, 8, 3)), "2d": r.standard_normal((3, 6, 6, 2))}


def _ours(name):
    from theory.layers import (AvgPool, Conv, Dense, Erf, Flatten, Gelu, GlobalAvgPool, LayerNorm, Relu, Residual,
                               serial)
    return {
        "mlp_erf": lambda: serial(Dense(1.5, .1), Erf(), Dense(1.5, .1)),
        "resmlp": lambda: serial(Dense(1.0, .1), *[Residual(Erf(), Dense(1.0, .1)) for _ in range(3)], Erf(),
                                 Dense(1.0, None)),
        "lnmlp": lambda: serial(Dense(1.0, .1), LayerNorm(), Erf(), Dense(2.0, .1), LayerNorm(), Erf(),
                                Dense(1.0, None)),
        "cnn1d_gap": lambda: serial(Conv((3,), "SAME", 2, .1), Erf(), Conv((3,), "SAME", 2, .1), Erf(),
                                    GlobalAvgPool(), Dense(1.0, None)),
        "cnn2d_pool": lambda: serial(Conv((3, 3), "SAME", 2, None), Relu(), Conv((3, 3), "VALID", 2, .1), Gelu(),
                                     AvgPool((2, 2), strides=(2, 2)), Flatten(), Dense(1.0, None)),
        "rescnn": lambda: serial(Conv((3,), "SAME", 1, None),
                                 *[Residual(Erf(), Conv((3,), "SAME", 1, .1), Erf(), Conv((3,), "SAME", 1, None))
                                   for _ in range(2)], Erf(), Flatten(), Dense(1.0, None)),
    }[name]()


_KINDS = {"mlp_erf": "vec", "resmlp": "vec", "lnmlp": "vec", "cnn1d_gap": "1d", "cnn2d_pool": "2d", "rescnn": "1d"}
NETS = {name: ((lambda name=name: _ours(name)), kind) for name, kind in _KINDS.items()}


def _theirs():
    from neural_tangents import stax

    def res(branch):
        return stax.serial(stax.FanOut(2), stax.parallel(stax.serial(*branch), stax.Identity()), stax.FanInSum())

    s = np.sqrt
    return {
        "mlp_erf": stax.serial(stax.Dense(1, s(1.5), s(.1)), stax.Erf(), stax.Dense(1, s(1.5), s(.1))),
        "resmlp": stax.serial(stax.Dense(1, 1.0, s(.1)), *[res([stax.Erf(), stax.Dense(1, 1.0, s(.1))])
                                                          for _ in range(3)], stax.Erf(), stax.Dense(1)),
        "lnmlp": stax.serial(stax.Dense(1, 1.0, s(.1)), stax.LayerNorm(), stax.Erf(), stax.Dense(1, s(2.), s(.1)),
                             stax.LayerNorm(), stax.Erf(), stax.Dense(1)),
        "cnn1d_gap": stax.serial(stax.Conv(1, (3,), padding="SAME", W_std=s(2), b_std=s(.1)), stax.Erf(),
                                 stax.Conv(1, (3,), padding="SAME", W_std=s(2), b_std=s(.1)), stax.Erf(),
                                 stax.GlobalAvgPool(), stax.Dense(1)),
        "cnn2d_pool": stax.serial(stax.Conv(1, (3, 3), padding="SAME", W_std=s(2)), stax.Relu(),
                                  stax.Conv(1, (3, 3), padding="VALID", W_std=s(2), b_std=s(.1)),
                                  stax.Gelu(approximate=False), stax.AvgPool((2, 2), strides=(2, 2)), stax.Flatten(),
                                  stax.Dense(1)),
        "rescnn": stax.serial(stax.Conv(1, (3,), padding="SAME"),
                              *[res([stax.Erf(), stax.Conv(1, (3,), padding="SAME", b_std=s(.1)), stax.Erf(),
                                     stax.Conv(1, (3,), padding="SAME")]) for _ in range(2)],
                              stax.Erf(), stax.Flatten(), stax.Dense(1)),
    }


if __name__ == "__main__":
    import tempfile

    from jax import config

    config.update("jax_enable_x64", True)
    values = {}
    for name, (_, _, kernel_fn) in _theirs().items():
        x = inputs()[_KINDS[name]]
        k = kernel_fn(x, x, ("nngp", "ntk"))
        values[f"{name}_nngp"], values[f"{name}_ntk"] = np.asarray(k.nngp), np.asarray(k.ntk)
    path = tempfile.NamedTemporaryFile(suffix=".npz", delete=False).name
    np.savez(path, **values)
    print(path)
