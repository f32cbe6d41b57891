"""The one place where SymPy expressions become NumPy functions.

Every number the package computes from a formula comes through :func:`lambdify`: the symbolic expression is
the single source of truth, and this module only decides how it is printed as vectorized float64 NumPy code.

Printing rules beyond SymPy's SciPy printer:

* ``Heaviside(x)`` becomes ``numpy.heaviside(x, H0)`` (SymPy's convention H(0) = 1/2), ``Max``/``Min`` become
  nested ``numpy.maximum``/``numpy.minimum`` (no stacking of temporaries), ``Piecewise`` nested ``numpy.where``;
* package functions print themselves through a ``_numpy(printer, *args)`` hook (e.g. the angle between two
  inputs, computed without cancellation; see :class:`theory.gaussian.Angle`);
* package functions that need a runtime helper (the Gauss-Hermite fallback of
  :class:`theory.gaussian.GaussianExpectation`) provide ``_numeric_helper() -> (key, callable, args)``; the
  callable joins the namespace of the generated function and is called on the printed ``args``.

The same expressions can also become C (:func:`c_statements`, :func:`compile_c`): loops that would make a
dozen NumPy passes over large arrays (the layers of a kernel recursion) then run as one compiled loop. Package
functions print themselves in C through a ``_c(printer, *args)`` hook; an expression with anything C cannot
express (a runtime helper) has no C form, and its NumPy function is used.
"""

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import sympy as sp
from sympy.printing.c import C99CodePrinter
from sympy.printing.codeprinter import PrintMethodNotImplementedError
from sympy.printing.numpy import SciPyPrinter

__all__ = ["lambdify", "c_statements", "c_compiler", "compile_c"]


class _Printer(SciPyPrinter):
    def __init__(self, helper_names):
        super().__init__({"fully_qualified_modules": True, "inline": True, "allow_unknown_functions": False})
        self._helper_names = helper_names

    def _print_Heaviside(self, expr):
        h0 = expr.args[1] if len(expr.args) > 1 else sp.S.Half
        return f"{self._module_format('numpy.heaviside')}({self._print(expr.args[0])}, {self._print(h0)})"

    def _nested(self, name, args):
        out = self._print(args[0])
        for a in args[1:]:
            out = f"{self._module_format(name)}({out}, {self._print(a)})"
        return out

    def _print_Max(self, expr):
        return self._nested("numpy.maximum", expr.args)

    def _print_Min(self, expr):
        return self._nested("numpy.minimum", expr.args)

    def _print_Piecewise(self, expr):  # nested numpy.where, one pass a piece (SymPy prints a slower numpy.select)
        out = self._module_format("numpy.nan")
        for value, condition in reversed(expr.args):
            value = self._print(value)
            out = value if condition == sp.true else \
                f"{self._module_format('numpy.where')}({self._print(condition)}, {value}, {out})"
        return out

    def _print_Function(self, expr):
        if hasattr(expr, "_numpy"):
            return expr._numpy(self, *expr.args)
        if hasattr(expr, "_numeric_helper"):
            key, _, args = expr._numeric_helper()
            return f"{self._helper_names[key]}({', '.join(self._print(a) for a in args)})"
        return super()._print_Function(expr)


@lru_cache(maxsize=512)
def _cached(args, expr, cse):
    namespace, names = {}, {}
    for f in expr.atoms(sp.Function):
        if hasattr(f, "_numeric_helper"):
            key, helper, _ = f._numeric_helper()
            if key not in names:
                names[key] = f"_helper_{len(names)}"
                namespace[names[key]] = helper
    return sp.lambdify(args, expr, modules=[namespace, "scipy", "numpy"], printer=_Printer(names), cse=cse)


@lru_cache(maxsize=512)
def _broadcasting(args, expr, cse):
    raw = _cached(args, expr, cse)

    def full(value, shape):
        if type(value) is np.ndarray and value.shape == shape and value.dtype == np.float64:
            return value  # the common case, without broadcast_to's overhead (it matters for small arrays)
        return np.broadcast_to(np.asarray(value, dtype=np.float64), shape)

    def function(*values):
        shape = np.broadcast_shapes(*(np.shape(v) for v in values))
        out = raw(*values)
        return tuple(full(o, shape) for o in out) if isinstance(expr, sp.Tuple) else full(out, shape)

    return function


def lambdify(args, expr, cse=True):
    """Compile ``expr`` (a SymPy expression or a tuple of them) into a vectorized float64 NumPy function of ``args``.

    The function returns float64 arrays of the broadcast shape of its arguments (a constant expression too, as a
    read-only broadcast view). Results are cached: lambdifying the same expression twice returns the same function.
    Common subexpressions are computed once unless ``cse=False``: SymPy's CSE turns a shared denominator into a
    reciprocal, which overflows where the denominator is subnormal.
    """
    args = tuple(args)
    if isinstance(expr, (list, tuple)):
        expr = sp.Tuple(*expr)
    return _broadcasting(args, sp.sympify(expr), cse)


# --------------------------------------------------------------------------------------------------------------
# C
# --------------------------------------------------------------------------------------------------------------


class _CPrinter(C99CodePrinter):
    def __init__(self):
        super().__init__({"strict": True})

    def _print_Function(self, expr):
        if hasattr(expr, "_c"):
            return expr._c(self, *expr.args)
        return super()._print_Function(expr)


def c_statements(names, outputs, cse=True, prefix="t"):
    """C99 statements ``const double out = ...;`` computing ``outputs`` (a dict C name -> SymPy expression) from
    the variables ``names`` (a dict SymPy symbol -> C name), common subexpressions first (named ``prefix``_0,
    ...) unless ``cse=False``.

    Returns None when an expression has no C form (e.g. a quadrature helper).
    """
    rename = {s: sp.Symbol(n) for s, n in names.items()}
    exprs = [sp.sympify(e).xreplace(rename) for e in outputs.values()]
    shared, exprs = sp.cse(exprs, symbols=sp.numbered_symbols(f"{prefix}_")) if cse else ([], exprs)
    printer = _CPrinter()
    try:
        return "\n".join([f"const double {s} = {printer.doprint(e)};" for s, e in shared]
                         + [f"const double {n} = {printer.doprint(e)};" for n, e in zip(outputs, exprs)])
    except PrintMethodNotImplementedError:
        return None


#: The C compiler (``THEORY_CC``; empty or ``none`` disables C, so that every function is NumPy's) and its flags:
#: IEEE arithmetic kept (no -ffast-math, no contraction into fused multiply-adds), errno not set by sqrt.
_CFLAGS = ("-O2", "-fno-math-errno", "-ffp-contract=off", "-fPIC", "-shared")


def c_compiler():
    """The C compiler command that :func:`compile_c` uses, or None when C is disabled or no such command exists."""
    return _compiler(os.environ.get("THEORY_CC", "cc"), os.environ.get("PATH"))


@lru_cache(maxsize=16)
def _compiler(cc, path):  # looked up once per (THEORY_CC, PATH): shutil.which stats the PATH's directories
    return None if cc.lower() in ("", "none") or shutil.which(cc, path=path) is None else cc


def _cache_dir():
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "theory"


@lru_cache(maxsize=64)
def _library(source, cc):
    key = hashlib.sha256("\0".join((cc, *_CFLAGS, source)).encode()).hexdigest()[:24]
    target = _cache_dir() / f"{key}.so"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            src, lib = Path(tmp) / "kernel.c", Path(tmp) / "kernel.so"
            src.write_text(source)
            try:
                subprocess.run([cc, *_CFLAGS, "-o", str(lib), str(src), "-lm"], check=True, capture_output=True)
            except (OSError, subprocess.CalledProcessError):
                return None
            os.replace(lib, target)  # atomic: processes compiling the same source at once all load a whole file
    return ctypes.CDLL(str(target))


def compile_c(source, function, argtypes):
    """The C function ``function`` of the C99 ``source`` (compiled once per machine, cached under
    ``$XDG_CACHE_HOME/theory``), as a ctypes function with ``argtypes``; None when no C compiler works. ctypes
    releases the GIL during the call, so threads run compiled loops in parallel."""
    cc = c_compiler()
    lib = None if cc is None else _library(source, cc)
    if lib is None:
        return None
    f = getattr(lib, function)
    f.argtypes, f.restype = argtypes, None
    return f
