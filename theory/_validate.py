"""Argument checks shared by the numeric entry points: each raises a ValueError/TypeError naming the parameter."""

import numbers

import numpy as np

__all__ = ["inputs", "count", "variance"]


def inputs(x, name, d=None, d_name="the first input's dimension"):
    """A finite float64 matrix of shape (N, d); ``d_name`` says where an expected ``d`` comes from."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name}: expected a real (N, d) array, got {type(x).__name__}") from err
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array of shape (N, d), got shape {arr.shape}")
    if arr.shape[1] == 0:
        raise ValueError(f"{name}: the input dimension d must be at least 1, got shape {arr.shape}")
    if d is not None and arr.shape[1] != d:
        raise ValueError(f"{name}: input dimension {arr.shape[1]} does not match {d_name} {d}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: inputs must be finite (found NaN or inf)")
    return arr


def count(value, name, minimum=0):
    """An integer >= minimum (bools are rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    return int(value)


def variance(value, name, positive=False):
    """A finite real number, >= 0 (or > 0 with positive=True)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name}: expected a finite number {bound}, got {value}")
    return value
