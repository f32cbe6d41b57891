"""Topics of ``theory derive``: named derivations with options, each returning SymPy objects.

A topic is registered with :func:`topic`; its options become command-line flags (``--activation relu``). The
result of a derivation is a SymPy expression, an ``Eq``, or a list of ``Eq`` (an equation system); it prints as
pretty text or as LaTeX (:mod:`theory.latex`).
"""

from dataclasses import dataclass
from typing import Callable

import sympy as sp

from . import symbols as sym
from .kernels import kernels

__all__ = ["Option", "Topic", "topic", "topics", "render"]


@dataclass(frozen=True)
class Option:
    """A topic option: ``--name`` on the command line; ``parse`` turns the text into a value (None: a flag)."""

    name: str
    default: object
    help: str
    parse: Callable[[str], object] = str


@dataclass(frozen=True)
class Topic:
    name: str
    help: str
    options: tuple
    derive: Callable[..., object]


_TOPICS: dict[str, Topic] = {}


def topic(name, help, *options):
    """Register the decorated function (keyword arguments = option names) as a ``theory derive`` topic."""
    def register(fn):
        if name in _TOPICS:
            raise ValueError(f"derive topic {name!r} is registered twice")
        _TOPICS[name] = Topic(name, help, options, fn)
        return fn

    return register


def topics():
    """All registered topics, by name."""
    return dict(_TOPICS)


def render(result, latex=False):
    """Pretty text (or LaTeX) of a derivation's result."""
    from . import latex as tex

    if latex:
        return tex.latex(result)
    if isinstance(result, (list, tuple)):
        return "\n\n".join(sp.pretty(e, use_unicode=True, wrap_line=False) for e in result)
    return sp.pretty(result, use_unicode=True, wrap_line=False)


def _number(text):
    try:
        value = sp.Rational(text)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number, got {text!r}") from None
    if value < 0:
        raise ValueError(f"expected a number >= 0 (a variance), got {text}")
    return value


def _depth(text):
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise ValueError(f"expected an integer >= 0 (the number of nonlinearities), got {value}")
    return value


_KERNEL_OPTIONS = (
    Option("activation", "relu", "activation name or spec, e.g. relu, erf, 'leaky_relu(1/10)'"),
    Option("depth", 1, "number of nonlinearities L", _depth),
    Option("sigma_w2", sym.sigma_w2, "weight variance (a number >= 0; default: the symbol)", _number),
    Option("sigma_b2", sym.sigma_b2, "bias variance (a number >= 0; default: the symbol)", _number),
    Option("expanded", False, "print K^L (or Θ^L) as one expression in g_ab instead of the layer-by-layer system "
           "(its size grows exponentially with the depth)", None),
)


def _kernel(kind, activation, depth, sigma_w2, sigma_b2, expanded):
    k = kernels(activation, depth, sigma_w2, sigma_b2)
    if not expanded:
        return k.equations
    lhs = sp.Symbol(f"K^({depth})" if kind == "nngp" else f"Theta^({depth})")
    return sp.Eq(lhs, getattr(k, kind).doit(), evaluate=False)


@topic("nngp", "the NNGP kernel K^L(x, x') of a depth-L network (NTK parameterization), in g_ab = x_a.x_b/d",
       *_KERNEL_OPTIONS)
def _nngp(**options):
    return _kernel("nngp", **options)


@topic("ntk", "the neural tangent kernel Θ^L(x, x') of a depth-L network, in g_ab = x_a.x_b/d", *_KERNEL_OPTIONS)
def _ntk(**options):
    return _kernel("ntk", **options)


@topic("kernel", "the layer-by-layer NNGP/NTK system of any network of theory.layers, e.g. "
       "--net 'Dense(2) Relu Residual(Relu Dense(1)) Dense(1)' (see theory.layers.spec)",
       Option("net", "Dense Relu Dense", "the network, layers separated by spaces"))
def _network_kernel(net):
    from .layers.spec import parse

    return parse(net).kernels.equations
