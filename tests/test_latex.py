"""LaTeX export: a few exact strings for heads, escaping, and documents that compile."""

import sys

import sympy as sp

import theory
from latex_tools import compile_pdf
from theory import claims, latex, report
from theory.gaussian import Angle
from theory.symbols import q11, q12, q22, sigma_w2, z


def test_heads_print_as_documented():
    assert sp.latex(Angle(q11, q12, q22)) == r"\theta\left(q_{11}, q_{12}, q_{22}\right)"
    assert sp.latex(sigma_w2) == r"\sigma^{2}_{w}"
    assert theory.activation("relu").latex() == r"\phi(z) = \max\left(0, z\right)"
    assert latex.latex([sp.Eq(sp.Symbol("K_12^(1)"), q12)]) == "\\begin{aligned}\nK^{(1)}_{12} &=  q_{12}\n\\end{aligned}"


def test_text_escapes_outside_math_only():
    assert latex.text("a_b & 50% $x_1^2$ `c_d`") == r"a\_b \& 50\% $x_1^2$ \texttt{c\_d}"
    assert latex.text("σ ≤ 1") == r"$\sigma$ $\le$ 1"


def test_sympy_objects_render_in_jupyter():
    assert theory.mlp_kernels("erf", 2)._repr_latex_().startswith("$\\displaystyle \\begin{aligned}")
    assert theory.activation("tanh")._repr_latex_() == r"$\phi(z) = \tanh{\left(z \right)}$"
    assert theory.gaussian_expectation("tanh", "tanh")._repr_latex_().startswith(r"$\displaystyle \left\langle")
    assert claims.select(["ntk.kernel_concentrates"])[0]._repr_latex_() == r"$\displaystyle \frac{1}{\sqrt{n}}$"


def test_a_topic_document_and_a_claim_report_compile(tmp_path, monkeypatch):
    k = theory.mlp_kernels("gelu", 2)
    body = "\n".join([latex.text("The GELU kernels, layer by layer (x_1 & x_2):"), latex.display(k),
                      latex.display(theory.gaussian_expectation("tanh", z)), latex.display(k.ntk)])
    path = tmp_path / "gelu.tex"
    path.write_text(latex.document("GELU kernels", body))
    compile_pdf(path)

    outcomes = claims.verify(["ntk.mc_agreement.relu"], size="quick")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # without matplotlib the report says so
    md, tex, figures = report.write(tmp_path / "report", outcomes, "a test run")
    assert figures is None and report.SKIPPED in md.read_text() and "matplotlib is not installed" in tex.read_text()
    compile_pdf(tex)
