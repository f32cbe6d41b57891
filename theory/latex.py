r"""LaTeX export: expressions, equation systems, claims and whole documents, all from SymPy objects.

* :func:`latex` -- any SymPy expression, an ``Eq`` list (an ``aligned`` block), or an object with ``latex()``;
* :func:`text` -- prose with ``$...$`` math, escaped for LaTeX outside the math;
* :func:`claim` -- a claim (statement, source, prediction) and optionally its measured result;
* :func:`document` -- a standalone article that ``pdflatex`` compiles with Debian's texlive-latex-base and
  texlive-latex-recommended.
"""

import re

import sympy as sp

__all__ = ["latex", "text", "claim", "document", "display"]

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
