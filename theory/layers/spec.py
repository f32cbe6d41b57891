"""A small text syntax for networks (``theory derive kernel --net ...``):

    Dense(2) Relu Residual(Relu Dense(1, 0.1)) Dense(1)
    Conv(3x3, SAME, 2) Relu AvgPool(2x2) Flatten Dense

Layers are separated by spaces; arguments in parentheses, by commas: ``Dense(σ_w², σ_b²)`` (``none`` for no bias),
``Conv(kernel, padding, σ_w², σ_b²)`` with the kernel ``3`` or ``3x3``, ``AvgPool(window, strides, padding)``,
``Activation(name)`` or a bare activation name (``Relu``, ``erf``, ``tanh``, ``gelu``, ...), ``LayerNorm``,
``Flatten``, ``GlobalAvgPool``, ``Residual(layers; alpha)`` whose argument is itself a network (``;`` before its
branch scale, when given).
"""

import re

from ..activations import names as activation_names
from .combinators import Residual
from .elementwise import Activation, LayerNorm
from .linear import AvgPool, Conv, Dense, Flatten, GlobalAvgPool
from .network import serial

__all__ = ["parse"]

_NAME = re.compile(r"\s*([A-Za-z_]\w*)")


def _number(text, layer):
    text = text.strip()
    if text.lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{layer}: expected a number (or none), got {text!r}") from None


def _shape(text, layer):
    try:
        return tuple(int(v) for v in text.strip().lower().split("x"))
    except ValueError:
        raise ValueError(f"{layer}: expected a size such as 3 or 3x3, got {text.strip()!r}") from None


def _split(text):
    return [a for a in (p.strip() for p in text.split(",")) if a]


def _layer(name, args):
    key = name.lower()
    parts = _split(args) if args is not None else []
    if key == "dense":
        if len(parts) > 2:
            raise ValueError(f"Dense: takes (sigma_w2, sigma_b2), got {len(parts)} arguments")
        return Dense(*(_number(p, "Dense") for p in parts))
    if key == "conv":
        if not parts:
            raise ValueError("Conv: give the kernel size, e.g. Conv(3) or Conv(3x3, SAME, 2, 0.1)")
        rest = parts[1:]
        padding = rest.pop(0).upper() if rest and rest[0].upper() in ("SAME", "VALID") else "SAME"
        return Conv(_shape(parts[0], "Conv"), padding, *(_number(p, "Conv") for p in rest))
    if key == "avgpool":
        if not parts:
            raise ValueError("AvgPool: give the window, e.g. AvgPool(2x2)")
        padding = parts.pop().upper() if parts[-1].upper() in ("SAME", "VALID") else "VALID"
        strides = _shape(parts[1], "AvgPool") if len(parts) > 1 else None
        return AvgPool(_shape(parts[0], "AvgPool"), strides, padding)
    simple = {"flatten": Flatten, "globalavgpool": GlobalAvgPool, "layernorm": LayerNorm}
    if key in simple:
        if parts:
            raise ValueError(f"{name}: takes no arguments")
        return simple[key]()
    if key == "activation":
        return Activation(args)
    if key in activation_names():
        return Activation(name.lower() if args is None else f"{key}({args})")
    raise ValueError(f"unknown layer {name!r}: expected Dense, Conv, AvgPool, GlobalAvgPool, Flatten, LayerNorm, "
                     f"Residual, Activation or an activation name ({', '.join(activation_names())})")


def _closing(text, start):
    depth = 0
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return i
    raise ValueError(f"unbalanced parentheses in {text!r}")


def _layers(text):
    out, i = [], 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        match = _NAME.match(text, i)
        if match is None:
            raise ValueError(f"expected a layer name at {text[i:]!r}")
        name, i = match.group(1), match.end()
        args = None
        if i < len(text) and text[i] == "(":
            end = _closing(text, i)
            args, i = text[i + 1:end], end + 1
        if name.lower() == "residual":
            if not args:
                raise ValueError("Residual: give its branch, e.g. Residual(Relu Dense)")
            branch, _, alpha = args.partition(";")
            out.append(Residual(*_layers(branch), alpha=_number(alpha, "Residual") if alpha.strip() else 1.0))
        else:
            out.append(_layer(name, args))
    return out


def parse(text):
    """The :class:`~theory.layers.Network` of a spec (see the module); ValueError naming the bad layer."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("net: expected a network spec such as 'Dense Relu Dense'")
    return serial(*_layers(text))
