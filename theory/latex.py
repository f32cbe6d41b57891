r"""LaTeX export: expressions, equation systems, claims and whole documents, all from SymPy objects.

* :func:`latex` -- any SymPy expression, an ``Eq`` list (an ``aligned`` block), or an object with ``latex()``;
* :func:`text` -- prose with ``$...$`` math, escaped for LaTeX outside the math;
* :func:`claim` -- a claim (statement, source, prediction) and optionally its measured result;
* :func:`document` -- a standalone article that ``pdflatex`` compiles with Debian's texlive-latex-base and
  texlive-latex-recommended.
"""

import re

import sympy as sp

__all__ = ["latex", "Equations", "text", "claim", "document", "display", "unicode"]

_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
            "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "$": r"\$"}
_UNICODE = {"σ": r"$\sigma$", "θ": r"$\theta$", "ρ": r"$\rho$", "η": r"$\eta$", "μ": r"$\mu$", "Θ": r"$\Theta$",
            "≤": r"$\le$", "≥": r"$\ge$", "±": r"$\pm$", "→": r"$\to$", "∝": r"$\propto$", "−": "-", "²": r"$^2$",
            "×": r"$\times$", "…": r"\ldots{}", "–": "--", "—": "---", "’": "'", "“": "``", "”": "''"}


def latex(obj):
    """LaTeX of a SymPy object, a sequence of ``Eq`` (as an ``aligned`` block), or anything with ``latex()``."""
    if hasattr(obj, "latex") and not isinstance(obj, sp.Basic):
        return obj.latex()
    if isinstance(obj, (list, tuple)) and obj and all(isinstance(e, sp.Eq) for e in obj):
        return "\\begin{aligned}\n" + " \\\\\n".join(_rows(e) for e in obj) + "\n\\end{aligned}"
    return sp.latex(sp.sympify(obj))


class Equations:
    """Mixin for objects with an ``equations`` list of ``Eq``: ``latex()`` is their ``aligned`` block, which Jupyter
    shows as math."""

    def latex(self):
        """The equations as a LaTeX ``aligned`` block."""
        return latex(self.equations)

    def _repr_latex_(self):
        return f"$\\displaystyle {self.latex()}$"


def _rows(eq, width=160):
    """``lhs &= rhs`` for an aligned block; a long sum is broken after its terms, one line per ~``width`` chars."""
    terms = sp.Add.make_args(eq.rhs) if isinstance(eq.rhs, sp.Add) else (eq.rhs,)
    lines, line = [], ""
    for term in terms:
        piece = sp.latex(term)
        piece = piece if not line or piece.startswith("-") else "+ " + piece
        if line and len(line) + len(piece) > width:
            lines.append(line)
            line = ""
        line += " " + piece
    lines.append(line)
    return rf"{sp.latex(eq.lhs)} &= {lines[0]}" + "".join(rf" \\ &\quad {rest}" for rest in lines[1:])


def _escape(plain):
    out = "".join(_SPECIAL.get(c, c) for c in plain)
    return "".join(_UNICODE.get(c, c) for c in out)


def text(prose):
    """Escape prose for LaTeX, keeping ``$...$`` math and ``\\(...\\)`` untouched; `code` becomes \\texttt."""
    parts = re.split(r"(\$[^$]+\$|`[^`]+`)", prose)
    out = []
    for part in parts:
        if part.startswith("$") and part.endswith("$") and len(part) > 1:
            out.append(part)
        elif part.startswith("`") and part.endswith("`") and len(part) > 1:
            out.append(r"\texttt{" + _escape(part[1:-1]) + "}")
        else:
            out.append(_escape(part))
    return "".join(out)


#: Longer single expressions cannot be typeset usefully (nor, past ~16000 pt, at all): they are summarized.
MAX_DISPLAY = 3000


def display(obj):
    """A display-math block for ``obj``: long expressions are shrunk to the line width, huge ones summarized."""
    body = latex(obj)
    if "\\begin{aligned}" in body or len(body) <= 400:
        return "\\[\n" + body + "\n\\]"
    if len(body) <= MAX_DISPLAY:
        return "\\[\n\\resizebox{\\linewidth}{!}{$\\displaystyle " + body + "$}\n\\]"
    return (rf"\begin{{center}}\emph{{(an expression of {len(body)} characters of \LaTeX, too long to typeset; "
            r"its layer-by-layer form is compact)}\end{center}")


def claim(c, result=None):
    """A claim as LaTeX: statement, source, predicted formula and, given a Result, the measurement and verdict."""
    lines = [rf"\paragraph{{\texttt{{{_escape(c.id)}}}}} {text(c.statement)}", "",
             rf"\emph{{Source:}} {text(c.source)}", "", r"\emph{Prediction:}", display(c.prediction())]
    if result is not None:
        verdict = "holds" if result.passed else "FAILS"
        lines += [rf"Predicted {result.prediction:.6g}, measured {result.estimate:.6g} $\pm$ {result.stderr:.2g} "
                  rf"(1 SE): the claim \textbf{{{verdict}}}. Criterion: {text(result.criterion)}.", ""]
    return "\n".join(lines)


def document(title, body, author="theory"):
    """A standalone LaTeX article around ``body`` (already LaTeX)."""
    return "\n".join([
        r"\documentclass[11pt]{article}",
        r"\usepackage[utf8]{inputenc}",
        r"\usepackage[T1]{fontenc}",
        r"\usepackage{amsmath,amssymb}",
        r"\usepackage{graphicx}",
        r"\usepackage[margin=2.5cm]{geometry}",
        r"\allowdisplaybreaks",
        rf"\title{{{text(title)}}}",
        rf"\author{{{text(author)}}}",
        r"\date{}",
        r"\begin{document}",
        r"\maketitle",
        body,
        r"\end{document}",
        "",
    ])


_GREEK = {name: chr(code) for name, code in (
    ("alpha", 0x3B1), ("beta", 0x3B2), ("gamma", 0x3B3), ("delta", 0x3B4), ("epsilon", 0x3B5), ("zeta", 0x3B6),
    ("eta", 0x3B7), ("theta", 0x3B8), ("iota", 0x3B9), ("kappa", 0x3BA), ("lambda", 0x3BB), ("mu", 0x3BC),
    ("nu", 0x3BD), ("xi", 0x3BE), ("pi", 0x3C0), ("rho", 0x3C1), ("sigma", 0x3C3), ("tau", 0x3C4), ("phi", 0x3C6),
    ("chi", 0x3C7), ("psi", 0x3C8), ("omega", 0x3C9), ("Gamma", 0x393), ("Delta", 0x394), ("Theta", 0x398),
    ("Lambda", 0x39B), ("Pi", 0x3A0), ("Sigma", 0x3A3), ("Phi", 0x3A6), ("Psi", 0x3A8), ("Omega", 0x3A9))}
_SYMBOLS = {"le": "≤", "leq": "≤", "ge": "≥", "geq": "≥", "ne": "≠", "neq": "≠", "sim": "~", "approx": "≈",
            "propto": "∝", "to": "→", "infty": "∞", "cdot": "·", "times": "×", "sum": "Σ", "prod": "Π",
            "partial": "∂", "pm": "±", "in": "∈", "log": "log", "exp": "exp", "sin": "sin", "cos": "cos",
            "ldots": "…", "dots": "…", ",": " ", ";": " ", "!": "", "quad": " ", "left": "", "right": ""}
_SUPER = str.maketrans("0123456789+-=()*ntils", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾*ⁿᵗⁱˡˢ")
_SUB = str.maketrans("0123456789+-=()aeiklmnoprst", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑᵢₖₗₘₙₒₚᵣₛₜ")
_SUB_CHARS = set("0123456789+-=()aeiklmnoprst")
_SUPER_CHARS = set("0123456789+-=()*ntils")


def _script(body, table, allowed, mark):
    """``body`` as Unicode super/subscript characters when each has one, else ``mark`` + body (bracketed)."""
    if body and set(body) <= allowed:
        return body.translate(table)
    return mark + (body if len(body) == 1 else f"({body})")


def _math_unicode(math):
    """One LaTeX math segment as plain Unicode text: Greek letters, relations, fractions, roots, scripts."""
    group = r"\{([^{}]*)\}"
    for _ in range(4):  # nested groups, innermost first
        math = re.sub(r"\\(?:mathrm|text|mathbf|mathit|operatorname)" + group, r"\1", math)
        math = re.sub(r"\\frac" + group + group + r"\s*", _fraction, math)
        math = re.sub(r"\\sqrt" + group, lambda m: "√" + (m[1] if len(m[1]) == 1 else f"({m[1]})"), math)
    math = re.sub(r"\\([A-Za-z]+|[,;!])", lambda m: _GREEK.get(m[1], _SYMBOLS.get(m[1], m[1])), math)
    math = re.sub(r"\^" + group + r"|\^(.)", lambda m: _script(m[1] or m[2], _SUPER, _SUPER_CHARS, "^"), math)
    math = re.sub(r"_" + group + r"|_(.)", lambda m: _script(m[1] or m[2], _SUB, _SUB_CHARS, "_"), math)
    return math.replace("{", "").replace("}", "")


def _fraction(m):
    """a/b for \\frac{a}{b}, bracketed when something follows it directly (as in 1/n Σ)."""
    follows = m.end() < len(m.string) and m.string[m.end()] not in "=<>+-)],."
    out = f"{_wrap(m[1])}/{_wrap(m[2])}"
    return f"({out}) " if follows else out + m[0][len(m[0].rstrip()):]


def _wrap(term):
    return term if re.fullmatch(r"[\w\\.]+", term) else f"({term})"


def unicode(prose):
    r"""Prose with ``$...$`` LaTeX math rendered as plain Unicode text for a terminal: ``$\eta = 4/\lambda_0$`` ->
    ``η = 4/λ₀``, ``$\sigma_w^2 = \frac{9}{5}$`` -> ``σ_w² = 9/5`` (LaTeX stays the form for reports)."""
    return re.sub(r"\$([^$]*)\$", lambda m: _math_unicode(m[1]), prose)
