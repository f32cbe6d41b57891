"""Reports of a ``theory verify`` run: Markdown, LaTeX (compiles with pdflatex) and PNG figures."""

import pathlib

from . import latex as tex

__all__ = ["write", "SKIPPED"]

SKIPPED = "Figures were skipped: matplotlib is not installed (pip install 'theory[plot]')."


def _figures(outcomes, directory):
    """Draw every result's figure into directory/figures; returns {claim id: path} or None without matplotlib."""
    try:
        import matplotlib.figure  # noqa: F401
    except ImportError:
        return None
    paths = {}
    (directory / "figures").mkdir(parents=True, exist_ok=True)
    for c, r, _ in outcomes:
        fig = r.figure()
        if fig is not None:
            paths[c.id] = directory / "figures" / f"{c.id}.png"
            fig.savefig(paths[c.id], dpi=120)
    return paths


def _markdown(outcomes, figures, header):
    lines = [f"# theory verify: {header}", "", outcomes._repr_markdown_(), "", SKIPPED if figures is None else ""]
    for c, r, _ in outcomes:
        verdict = r.verdict if r.passed else r.verdict.upper()
        lines += [f"## `{c.id}`", "", c.statement, "", f"*Source:* {c.source}", "", "*Prediction:*", "",
                  f"$$ {tex.latex(c.prediction())} $$", "", f"*Criterion:* {r.criterion} — **{verdict}**", ""]
        if figures and c.id in figures:
            lines += [f"![{c.id}](figures/{c.id}.png)", ""]
    return "\n".join(lines)


def _latex(outcomes, figures, header):
    body = [outcomes.latex(), ""]
    if figures is None:
        body += [tex.text(SKIPPED), ""]
    for c, r, _ in outcomes:
        body.append(tex.claim(c, r))
        if figures and c.id in figures:
            body += [r"\begin{center}", rf"\includegraphics[width=0.75\linewidth]{{figures/{c.id}.png}}",
                     r"\end{center}"]
        body.append("")
    return tex.document(f"theory verify: {header}", "\n".join(body))


def write(directory, outcomes, header):
    """Write report.md, report.tex and figures/*.png for ``outcomes`` (:class:`~theory.claims.Outcomes`)."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    figures = _figures(outcomes, directory)
    (directory / "report.md").write_text(_markdown(outcomes, figures, header), encoding="utf-8")
    (directory / "report.tex").write_text(_latex(outcomes, figures, header), encoding="utf-8")
    return directory / "report.md", directory / "report.tex", figures
