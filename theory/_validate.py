"""Argument checks shared by the numeric entry points: each raises a ValueError/TypeError naming the parameter."""

import numbers

import numpy as np

__all__ = ["inputs", "real_array", "count", "variance", "symbolic_variance"]

#: dtype kinds of real numbers: bool, signed and unsigned integers, floating point
_REAL_KINDS = "biuf"
_KIND_NAMES = {"c": "complex numbers", "U": "strings", "S": "byte strings", "O": "Python objects (e.g. None)",
               "M": "datetimes", "m": "time deltas", "V": "structured records"}


def real_array(x, name, what="a real array"):
    """``x`` as a float64 array; a TypeError saying what was given for complex, string, object or other non-real
    data (NumPy would drop an imaginary part, parse numeric strings, or report None as "NaN or inf")."""
    try:
        raw = np.asarray(x)
    except (TypeError, ValueError) as err:  # e.g. ragged nested lists
        raise TypeError(f"{name}: expected {what}, got {type(x).__name__} ({err})") from err
    if raw.dtype.kind not in _REAL_KINDS:
        given = _KIND_NAMES.get(raw.dtype.kind, f"dtype {raw.dtype}")
        raise TypeError(f"{name}: expected {what} of real numbers, got an array of {given} (dtype {raw.dtype})")
    return raw.astype(np.float64, copy=False)


def inputs(x, name, d=None, d_name="the first input's dimension"):
    """A finite float64 matrix of shape (N, d); ``d_name`` says where an expected ``d`` comes from."""
    arr = real_array(x, name, "a real (N, d) array")
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
    if type(value) is not int and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
        raise TypeError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    return int(value)


def variance(value, name, positive=False):
    """A finite real number, >= 0 (or > 0 with positive=True)."""
    if type(value) is not float and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
        raise TypeError(f"{name}: expected a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name}: expected a finite number {bound}, got {value}")
    return value


def symbolic_variance(value, name):
    """A variance for a symbolic derivation: a SymPy Symbol (kept as the parameter), or a finite real number >= 0
    (as an exact SymPy number). Strings and other expressions are rejected: ``sympify("abc")`` would silently make a
    new symbol, and a negative variance a square root of a negative number."""
    import sympy as sp

    if isinstance(value, sp.Symbol):
        return value
    if isinstance(value, sp.Basic):
        if not (value.is_number and value.is_real):
            raise TypeError(f"{name}: expected a number >= 0 or a SymPy Symbol, got the expression {value}")
        number = value
    elif isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number >= 0 or a SymPy Symbol, got {value!r}")
    else:
        number = sp.sympify(value)
    if number.is_finite is not True or number.is_negative is not False:
        raise ValueError(f"{name}: expected a finite number >= 0 (a variance), got {value}")
    return number
