"""The layer maps of :mod:`theory.kernels.maps` printed as one C loop over a tile's pairs and all layers."""

import ctypes
from functools import lru_cache

import sympy as sp

from ..numeric import c_statements, compile_c
from .. import symbols as sym
from ..symbols import g12, q11, q12, q22
from .maps import (_COS, _ENDS, _FAN_IN, _GAP_MINUS, _GAP_PLUS, _INPUT_NTK, _NEAR, _NTK_IN, _SIN, Layer,
                   _input_angle_map, _step, layer)

__all__ = []

_C_NAMES = {q11: "q11", q12: "q12", q22: "q22", sym.theta: "th", _SIN: "s", _COS: "c", _NTK_IN: "ntk",
            sym.sigma_w2: "sw", sym.sigma_b2: "sb", _FAN_IN: "n_in", _GAP_MINUS: "gm", _GAP_PLUS: "gp",
            _ENDS[0]: "G", _ENDS[1]: "H", g12: "g"}
_POINTER, _LONG, _DOUBLE = ctypes.c_void_p, ctypes.c_long, ctypes.c_double
_C_ARGS = (_LONG,) * 4 + (_POINTER,) * 5 + (_POINTER, _LONG) * 2 + (_POINTER, _DOUBLE, _DOUBLE, ctypes.c_int) \
    + (_POINTER,) * 4 + (_LONG,)
_DIAG_ARGS = (_LONG, _LONG, _POINTER, _DOUBLE, _DOUBLE, _POINTER, _LONG)


def _costly(e):
    return e.has(sp.Function) or any(not x.exp.is_integer for x in e.atoms(sp.Pow))


def _diagonal_parts(exprs):
    """The maximal subexpressions of ``exprs`` that depend on one side's diagonal only (q11 or q22, besides σ_w²
    and σ_b²) and cost a function call (√(q11), √(σ_b² + σ_w² q11/2), ...), as functions of q11: computed once
    per row and column (and layer) rather than once per pair."""
    found = set()

    def visit(e, q):
        if (e.is_Pow or isinstance(e, sp.Function)) and q in e.free_symbols \
                and e.free_symbols <= {q, sym.sigma_w2, sym.sigma_b2} and _costly(e):
            found.add(e.xreplace({q22: q11}))
        else:
            for a in e.args:
                visit(a, q)

    for e in exprs:
        visit(e, q11)
        visit(e, q22)
    return tuple(sorted(found, key=sp.default_sort_key))


def _rebuild(e, mapping):
    """``e`` with the subexpressions in ``mapping`` replaced, rebuilt without evaluation (no sign decisions)."""
    if e in mapping:
        return mapping[e]
    if not e.args:
        return e
    return e.func(*(_rebuild(a, mapping) for a in e.args), evaluate=False)


@lru_cache(maxsize=128)
def _c_layers(act, mode, bias, cc):
    """A tile of the kernel by one compiled C loop (compiler ``cc``), generated from the same expressions as
    :func:`_step`: per pair, the input angle (Kahan's formula near ρ = ±1), then per layer the fused step, the
    angle map (branches to the series instead of masked patches) and the diagonal reset, in registers; the parts
    that depend on one input only come precomputed per row and column (:func:`_diagonal_parts`). Returns
    ``(layers, diagonals, w)``, two C functions and the rows per layer in D1, or None when an expression has no C
    form or no compiler works.

    ``layers(n, m, depth, d, x1, x2, g11, g22, G12, D1, ld1, D2, ld2, fan, sw, sb, diagonal, K, KM, T, TM, ldo)``:
    x1, x2 the tile's inputs (n×d, m×d), g11, g22 their squared norms over d, G12 the tile's Gram matrix over d;
    D1[(l*w + k)*ld1 + i] the diagonal K^l(x_i, x_i) (k = 0) and its parts (k = 1..w-1), D2 the same for the
    columns; fan the fan-ins; K, T the tile's place in the outputs (row stride ldo) and KM, TM, when not NULL, its
    mirror image's (the transposed tile, for symmetric kernels). A diagonal tile computes j >= i only.

    ``diagonals(n, depth, g, sw, sb, D, ld)`` fills D (as D1 above, row stride ld) for inputs of squared norms over d
    ``g``: per input, K⁰(x, x) = σ_b² + σ_w² g, its parts, and the diagonal map K^{l+1}(x, x) of each layer, all in
    registers (small problems pay per call, not per entry).
    """
    step = _step(act, mode, bias)
    outputs = {"k_out": step.outputs[0]}
    if mode is not None:
        outputs["ntk_out"] = step.outputs[1]
    angle = step.angle
    if angle is not None:
        outputs["gm"], outputs["gp"] = step.outputs[-2:]
    exprs = list(outputs.values())
    if angle is not None:
        ends, _, minus, plus = angle.forms
        exprs += [*ends, *minus[1:], *plus[1:]]
    parts = _diagonal_parts(exprs)
    row = {e: sp.Symbol(f"r_{k}") for k, e in enumerate(parts)}
    col = {e.xreplace({q11: q22}): sp.Symbol(f"w_{k}") for k, e in enumerate(parts)}

    def hoist(e):
        return _rebuild(e, {**row, **col})

    names = {**_C_NAMES, **{v: v.name for v in (*row.values(), *col.values())}}
    fused = c_statements(names, {k: hoist(e) for k, e in outputs.items()})
    input_ntk = c_statements(names, {"ntk": _INPUT_NTK[mode]}) if mode is not None else ""
    if angle is not None:
        entry = _input_angle_map() if bias else None  # without bias, K⁰ has the inputs' angle
        blocks = (c_statements(_C_NAMES, {"gm": entry.gaps[0], "gp": entry.gaps[1]}) if bias else "",
                  entry.c(_C_NAMES) if bias else "", angle.c(names, hoist))
    if fused is None or angle is not None and None in blocks:
        return None
    width = 1 + len(parts)
    loads = "".join(f"const double r_{k} = D1[(l * {width} + {k + 1}) * ld1 + i];" for k in range(len(parts)))
    loads_col = "".join(f"const double w_{k} = D2[(l * {width} + {k + 1}) * ld2 + j];" for k in range(len(parts)))
    state = "a_k[j] = sb + sw * g;"
    if mode is not None:
        state += f"{{ const double n_in = fan[0]; {input_ntk} a_ntk[j] = ntk; }}"
    if angle is not None:
        state += f"""
            double th, s, c;
            {{
                const double norm = sqrt(g11[i] * g22[j]);
                const double rx = norm > 0 ? fmin(1.0, fmax(-1.0, g / norm)) : 0.0;
                const double k11 = sb + sw * g11[i], k22 = sb + sw * g22[j], k12 = sb + sw * g;
                const double r0 = sb > 0 ? fmin(1.0, fmax(-1.0, k12 / sqrt(k11 * k22))) : 1.0;
                if (fabs(r0) <= {_NEAR!r}) {{  /* the angle of K⁰ is exact from its entries */
                    th = acos(r0); s = sqrt((1 - r0) * (1 + r0)); c = r0;
                }} else {{  /* from the inputs' angle, through the input layer's angle map when there is a bias */
                    if (fabs(rx) > {_NEAR!r}) {{
                        double minus = 0.0, plus = 0.0;
                        const double u = 1 / sqrt(g11[i] * d), v = 1 / sqrt(g22[j] * d);
                        for (long k = 0; k < d; k++) {{
                            const double a = x1[i * d + k] * u, b = x2[j * d + k] * v;
                            minus += (a - b) * (a - b); plus += (a + b) * (a + b);
                        }}
                        th = 2 * atan2(sqrt(minus), sqrt(plus)); s = sin(th); c = cos(th);
                    }} else {{
                        th = acos(rx); s = sqrt((1 - rx) * (1 + rx)); c = rx;
                    }}
                    if (sb > 0) {{
                        const double q11 = g11[i], q22 = g22[j];
                        {blocks[0]}
                        {blocks[1]}
                    }}
                }}
            }}
            a_th[j] = th; a_s[j] = s; a_c[j] = c;"""
    carried = "double th = a_th[j], s = a_s[j], c = a_c[j];" if angle is not None else ""
    source = f"""#define _DEFAULT_SOURCE
#include <math.h>
#include <stdlib.h>

void layers(long n, long m, long depth, long d, const double *x1, const double *x2, const double *g11,
            const double *g22, const double *G12, const double *D1, long ld1, const double *D2, long ld2,
            const double *fan, double sw, double sb, int diagonal, double *K, double *KM, double *T, double *TM,
            long ldo)
{{
    double *a_k = calloc(5 * m, sizeof(double));
    double *a_ntk = a_k + m, *a_th = a_k + 2 * m, *a_s = a_k + 3 * m, *a_c = a_k + 4 * m;
    for (long i = 0; i < n; i++) {{
        const long j0 = diagonal ? i : 0;
        for (long j = j0; j < m; j++) {{
            const double g = G12[i * m + j];
            {state}
        }}
        for (long l = 0; l < depth; l++) {{
            const double q11 = D1[l * {width} * ld1 + i], n_in = fan[l + 1];
            {loads}
            for (long j = j0; j < m; j++) {{
                const double q22 = D2[l * {width} * ld2 + j], q12 = a_k[j], ntk = a_ntk[j];
                {loads_col}
                {carried}
                {fused}
                {blocks[2] if angle is not None else ""}
                a_k[j] = diagonal && i == j ? D1[(l + 1) * {width} * ld1 + i] : k_out;
                {"a_ntk[j] = ntk_out;" if mode is not None else ""}
                {"a_th[j] = th; a_s[j] = s; a_c[j] = c;" if angle is not None else ""}
            }}
        }}
        for (long j = j0; j < m; j++) {{
            K[i * ldo + j] = a_k[j];
            if (KM) KM[j * ldo + i] = a_k[j];
            if (T) T[i * ldo + j] = a_ntk[j];
            if (TM) TM[j * ldo + i] = a_ntk[j];
        }}
    }}
    free(a_k);
}}
"""
    lay = layer(act) if bias else Layer(*(e.xreplace({sym.sigma_b2: 0}) for e in layer(act)))
    rows = c_statements(_C_NAMES, {**{f"p_{k}": e for k, e in enumerate(parts)}, "next": lay.nngp_diag})
    if rows is None:
        return None
    stores = "".join(f"D[(l * {width} + {k + 1}) * ld + i] = p_{k};" for k in range(len(parts)))
    source += f"""
void diagonals(long n, long depth, const double *g, double sw, double sb, double *D, long ld)
{{
    for (long i = 0; i < n; i++) {{
        double q11 = sb + sw * g[i];
        for (long l = 0; l <= depth; l++) {{
            {rows}
            D[l * {width} * ld + i] = q11;
            {stores}
            q11 = next;
        }}
    }}
}}
"""
    function = compile_c(source, "layers", _C_ARGS)
    if function is None:
        return None
    return function, compile_c(source, "diagonals", _DIAG_ARGS), width
