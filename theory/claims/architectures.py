r"""Claims of the layer algebra (:mod:`theory.layers`): beyond the MLP, the infinite-width NNGP and NTK derived from
a declaration are the mean empirical kernels of finite networks of the same declaration.

For each architecture -- a residual MLP (3 blocks), a LayerNorm MLP, a 1-D CNN with global average pooling, a 2-D
CNN with average pooling and Flatten, a 1-D CNN with residual blocks -- ``architectures.<name>.nngp`` and
``.ntk`` compare every entry of the kernel of six fixed inputs with the ensemble mean, within the run's
family-wise significance level plus a stated bias bound: the ensemble mean of a width-n network's kernel is
shifted by O(1/n) from its limit, a shift bounded here by 2 (L - 1)/n √(K(x,x) K(x',x')) with L the number of
nonlinear layers (Activation, LayerNorm) on the deepest path -- the bound the MLP claims use (``nngp.mc_agreement``;
the first nonlinearity's input is exactly Gaussian, so L = 1 is unbiased). Each claim's rival is the same network
without the feature under test (the skip connections, the LayerNorms, the average pooling, global pooling replaced
by Flatten), which the same measurements must reject.
"""

from functools import lru_cache

import numpy as np

from ..layers import AvgPool, Conv, Dense, Erf, Flatten, GlobalAvgPool, LayerNorm, Relu, Residual, serial
from .base import claim, compare_all, seed_for, sized

SOURCE = ("Novak et al. 2019 (CNN-GP, neural-tangents); Arora et al. 2019 (CNTK); Yang 2019 (tensor programs: any "
          "architecture); He et al. 2016 (residual blocks); Ba, Kiros & Hinton 2016 (LayerNorm)")


def _resmlp(skip=True):
    if skip:
        return serial(Dense(1.0, 0.1), *[Residual(Relu(), Dense(1.0, 0.1)) for _ in range(3)], Relu(),
                      Dense(1.0, None))
    return serial(Dense(1.0, 0.1), *[layer for _ in range(3) for layer in (Relu(), Dense(1.0, 0.1))], Relu(),
                  Dense(1.0, None))


def _lnmlp(norm=True):
    ln = [LayerNorm()] if norm else []
    return serial(Dense(2.0, 0.1), *ln, Erf(), Dense(2.0, 0.1), *ln, Erf(), Dense(1.0, None))


def _cnn1d(pool=True):
    return serial(Conv((3,), "SAME", 2.0, 0.1), Relu(), Conv((3,), "SAME", 2.0, 0.1), Relu(),
                  GlobalAvgPool() if pool else Flatten(), Dense(1.0, None))


def _cnn2d(pool=True):
    avg = [AvgPool((2, 2), strides=(2, 2))] if pool else []
    return serial(Conv((3, 3), "SAME", 2.0, 0.1), Relu(), Conv((3, 3), "SAME", 2.0, 0.1), Relu(), *avg, Flatten(),
                  Dense(1.0, None))


def _rescnn(skip=True):
    def block():
        branch = (Relu(), Conv((3,), "SAME", 1.0, 0.1))
        return [Residual(*branch)] if skip else list(branch)
    return serial(Conv((3,), "SAME", 1.0, 0.1), *block(), *block(), Relu(), GlobalAvgPool(), Dense(1.0, None))


def _inputs(shape):
    """Six fixed inputs of ``shape`` (part of the claim, not of the seed), of norms 0.5-2x the typical one, with a
    sign-flipped copy of the first (antipodal, where the kernels' angle dependence is strongest)."""
    x = np.random.default_rng(14).standard_normal((6, *shape))
    x *= np.array([1.0, 0.5, 1.5, 1.0, 2.0, 0.8]).reshape(-1, *([1] * len(shape)))
    x[3] = -x[0]
    return x


#: name: (declaration (its argument False gives the rival), the rival's description, input shape, nonlinear layers
#: on the deepest path, networks (quick, default, full)).
ARCHITECTURES = {
    "resmlp": (_resmlp, "without the skip connections", (8,), 4, (60, 600, 2400)),
    "lnmlp": (_lnmlp, "without the LayerNorms", (8,), 4, (60, 400, 1600)),
    "cnn1d": (_cnn1d, "Flatten in place of the global average pooling", (8, 3), 2, (30, 100, 400)),
    "cnn2d": (_cnn2d, "without the average pooling", (6, 6, 2), 2, (16, 50, 200)),
    "rescnn": (_rescnn, "without the skip connections", (8, 3), 3, (30, 100, 400)),
}
WIDTH = 256
_STATEMENTS = {
    "resmlp": "a residual MLP (three ReLU blocks x + Dense(ReLU(x)))",
    "lnmlp": "an MLP with LayerNorm before each erf",
    "cnn1d": "a 1-D ReLU CNN with global average pooling",
    "cnn2d": "a 2-D ReLU CNN with 2x2 average pooling and Flatten",
    "rescnn": "a 1-D CNN with two residual ReLU-Conv blocks",
}


@lru_cache(maxsize=8)
def _ensemble(name, size, seed):
    """The finite ensemble of one architecture, shared by its NNGP and NTK claims."""
    make, _, shape, _, networks = ARCHITECTURES[name]
    width = sized(size, 128, WIDTH, 2 * WIDTH)
    count = sized(size, *networks)
    mc = make().network(width).empirical_kernels(_inputs(shape), networks=count,
                                                  seed=seed_for(seed, "architectures", name))
    return mc, width


def _agreement(name, kernel, seed, size):
    make, rival_text, shape, depth, _ = ARCHITECTURES[name]
    x = _inputs(shape)
    mc, width = _ensemble(name, size, seed)
    exact = getattr(make().nngp_ntk(x), kernel)
    rival = getattr(make(False).nngp_ntk(x), kernel)
    mean, se = getattr(mc, f"{kernel}_mean"), getattr(mc, f"{kernel}_se")
    scale = np.sqrt(np.outer(np.diag(exact), np.diag(exact)))
    bias = 2 * (depth - 1) / width * scale

    def plot(fig):
        ax = fig.add_subplot()
        iu = np.triu_indices_from(exact)
        ax.errorbar(exact[iu], mean[iu], yerr=3 * se[iu] + bias[iu], fmt="o", ms=4, capsize=2,
                    label=f"width {width}, {len(getattr(mc, kernel))} networks (3 SE + bias)")
        ax.plot(exact[iu], rival[iu], "x", label=f"rival: {rival_text}")
        lim = [min(exact.min(), mean.min()), max(exact.max(), mean.max())]
        ax.plot(lim, lim, "k--", lw=1, label="infinite width")
        ax.set(xlabel=f"{kernel.upper()} (theory)", ylabel=f"{kernel.upper()} (Monte Carlo mean)", title=name)
        ax.legend()

    return compare_all(exact, mean, se, bias=bias, rivals={rival_text: rival}, shown=(0, 1), what="kernel entries",
                       data={"exact": exact, "mean": mean, "se": se, "rival": rival, "width": width}, plot=plot)


def _prediction(name, kernel):
    def build():
        system = ARCHITECTURES[name][0]().kernels
        return system.equations[-1] if kernel == "ntk" else system.equations[-3]
    return build


for _name in ARCHITECTURES:
    for _kernel, _what in (("nngp", "NNGP (output covariance)"), ("ntk", "NTK")):
        claim(f"architectures.{_name}.{_kernel}",
              f"The infinite-width {_what} of {_STATEMENTS[_name]}, derived layer by layer from its declaration, is "
              f"the mean empirical {_kernel.upper()} of finite networks of the same declaration (up to the O(1/n) "
              f"bias); the same network {ARCHITECTURES[_name][1]} is rejected.", SOURCE,
              _prediction(_name, _kernel),
              )(lambda seed, size, n=_name, k=_kernel: _agreement(n, k, seed, size))
