r"""Derivation documents: runnable Python scripts that derive one topic, built into Markdown and LaTeX.

A document is a Python file in the "percent" format (the one Jupytext and editors understand): cells are
separated by ``# %%`` lines, and ``# %% [markdown]`` cells hold prose as comment lines (Markdown with ``$math$``).
``python derivations/kernels.py`` simply runs it; :func:`build` runs it cell by cell, as a notebook would, and
writes ``build/NAME.md`` and ``build/NAME.tex``: the prose, the code, what the code printed, and the value of each
code cell's last expression -- SymPy objects and anything with ``latex()`` as display math, claim outcomes as a
table, matplotlib figures (e.g. ``result.figure()`` of a claim) as PNG images next to the documents.
"""

import ast
import contextlib
import io
import pathlib
import re
from dataclasses import dataclass

import sympy as sp

from . import latex as tex

__all__ = ["documents", "build", "folder"]

#: The documents of a source checkout: the top-level derivations/ next to this package.
SOURCE = pathlib.Path(__file__).resolve().parent.parent / "derivations"


def folder(directory=None):
    """The folder of the documents: ``directory`` if given; else ./derivations when it exists (a checkout's root),
    else the derivations/ of the source tree this package runs from (so the command works from any directory)."""
    if directory is not None:
        return pathlib.Path(directory)
    here = pathlib.Path("derivations")
    if here.is_dir() and any(here.glob("*.py")):
        return here
    if SOURCE.is_dir():
        return SOURCE
    raise ValueError("no derivations folder: neither ./derivations nor the package's source tree has one; "
                     "give --dir (the documents live in the repository's derivations/)")


@dataclass
class _Cell:
    kind: str  # "markdown" or "code"
    source: str
    printed: str = ""
    value: object = None


def documents(directory="derivations"):
    """The documents in ``directory``: {name: path} for every ``*.py`` file."""
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        raise ValueError(f"no derivations folder at {directory.resolve()}")
    return {p.stem: p for p in sorted(directory.glob("*.py"))}


def _cells(text):
    cells, kind, lines = [], "code", []
    for line in text.splitlines():
        if line.startswith("# %%"):
            if any(s.strip() for s in lines):
                cells.append(_Cell(kind, "\n".join(lines).strip("\n")))
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        elif kind == "markdown":
            lines.append(re.sub(r"^# ?", "", line))
        else:
            lines.append(line)
    if any(s.strip() for s in lines):
        cells.append(_Cell(kind, "\n".join(lines).strip("\n")))
    return cells


def _execute(cells, path, out):
    """Run the code cells; returns the paths of the figures saved."""
    images = []
    namespace = {"__name__": "__derivation__", "__file__": str(path)}
    for i, cell in enumerate(c for c in cells if c.kind == "code"):
        tree = ast.parse(cell.source)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(tree, str(path), "exec"), namespace)
            if last is not None:
                cell.value = eval(compile(ast.Expression(last.value), str(path), "eval"), namespace)
        cell.printed = printed.getvalue()
        if hasattr(cell.value, "savefig"):  # a matplotlib figure: saved beside the documents
            image = out / f"{path.stem}-{i}.png"
            cell.value.savefig(image, dpi=110)
            cell.value = _Image(image.name)
            images.append(image)
    return images


@dataclass
class _Image:
    name: str


def _is_math(value):
    return isinstance(value, sp.Basic) or (isinstance(value, (list, tuple)) and value
                                           and all(isinstance(e, sp.Eq) for e in value))


def _markdown(cells):
    out = []
    for cell in cells:
        if cell.kind == "markdown":
            out += [cell.source, ""]
            continue
        out += ["```python", cell.source, "```", ""]
        if cell.printed:
            out += ["```text", cell.printed.rstrip(), "```", ""]
        if cell.value is None:
            continue
        if isinstance(cell.value, _Image):
            out += [f"![]({cell.value.name})", ""]
        elif hasattr(cell.value, "_repr_markdown_"):
            out += [cell.value._repr_markdown_(), ""]
        elif _is_math(cell.value) or hasattr(cell.value, "latex"):
            out += ["$$", tex.latex(cell.value), "$$", ""]
        else:
            out += ["```text", repr(cell.value), "```", ""]
    return "\n".join(out)


def _prose_to_latex(source):
    """The Markdown subset of the documents: headings, paragraphs, lists, $math$, $$display$$, **bold**, `code`."""
    out = []
    for block in re.split(r"\n\s*\n", source.strip()):
        lines = block.splitlines()
        if all(line.startswith(("- ", "* ")) for line in lines):
            out += [r"\begin{itemize}"] + [r"\item " + _inline(line[2:]) for line in lines] + [r"\end{itemize}"]
        elif block.startswith("$$"):
            out.append("\\[\n" + block.strip("$").strip() + "\n\\]")
        elif block.startswith("#"):
            level = len(block) - len(block.lstrip("#"))
            command = {1: "section*", 2: "section*", 3: "subsection*"}.get(level, "paragraph")
            out.append(rf"\{command}{{{_inline(block.lstrip('#').strip())}}}")
        else:
            out.append(_inline(" ".join(lines)))
        out.append("")
    return "\n".join(out)


def _inline(text):
    parts = re.split(r"(\*\*[^*]+\*\*)", text)
    return "".join(r"\textbf{" + tex.text(p[2:-2]) + "}" if p.startswith("**") else tex.text(p) for p in parts)


def _latex(cells):
    body = []
    for cell in cells:
        if cell.kind == "markdown":
            body.append(_prose_to_latex(cell.source))
            continue
        body += [r"{\small", r"\begin{verbatim}", cell.source, r"\end{verbatim}", "}"]
        if cell.printed:
            body += [r"{\small", r"\begin{verbatim}", cell.printed.rstrip(), r"\end{verbatim}", "}"]
        if cell.value is None:
            continue
        if isinstance(cell.value, _Image):
            body += [r"\begin{center}", rf"\includegraphics[width=0.75\linewidth]{{{cell.value.name}}}",
                     r"\end{center}"]
        elif _is_math(cell.value) or (hasattr(cell.value, "latex") and not hasattr(cell.value, "rows")):
            body.append(tex.display(cell.value))
        elif hasattr(cell.value, "latex"):
            body += [r"\begin{center}", cell.value.latex(), r"\end{center}"]
        else:
            body += [r"\begin{verbatim}", repr(cell.value), r"\end{verbatim}"]
        body.append("")
    return "\n".join(body)


def build(name, directory="derivations"):
    """Run document ``name`` of ``directory`` and write build/NAME.md, build/NAME.tex and the figures
    build/NAME-K.png; returns the paths of every file written (.md, .tex, then the figures)."""
    docs = documents(directory)
    if name not in docs:
        raise ValueError(f"no derivation {name!r} in {directory}; documents: {', '.join(docs) or 'none'}")
    path = docs[name]
    cells = _cells(path.read_text(encoding="utf-8"))
    out = path.parent / "build"
    out.mkdir(exist_ok=True)
    images = _execute(cells, path, out)
    title = next((c.source.splitlines()[0].lstrip("# ").strip() for c in cells if c.kind == "markdown"), name)
    if cells and cells[0].kind == "markdown" and cells[0].source.startswith("# "):
        cells[0].source = "\n".join(cells[0].source.splitlines()[1:])  # the title heading becomes \title
    md, tex_path = out / f"{name}.md", out / f"{name}.tex"
    md.write_text(f"# {title}\n\n" + _markdown(cells), encoding="utf-8")
    tex_path.write_text(tex.document(title, _latex(cells)), encoding="utf-8")
    return (md, tex_path, *images)
