"""Compile LaTeX with a real pdflatex (Debian's texlive-latex-base/-recommended; .ci/run installs them)."""

import os
import shutil
import subprocess

import pytest


def compile_pdf(tex_path):
    """Run pdflatex on ``tex_path`` in its folder; fail the test on any LaTeX error. Returns the PDF path."""
    if shutil.which("pdflatex") is None:
        if os.environ.get("CI"):
            pytest.fail("pdflatex is missing: .ci/run installs texlive-latex-base and texlive-latex-recommended")
        pytest.skip("pdflatex is not installed")
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex_path.name],
                         cwd=tex_path.parent, capture_output=True, text=True, errors="replace", timeout=120)
    errors = [line for line in run.stdout.splitlines() if line.startswith("!")]
    assert run.returncode == 0 and not errors, f"pdflatex failed on {tex_path}: {errors or run.stdout[-2000:]}"
    pdf = tex_path.with_suffix(".pdf")
    assert pdf.stat().st_size > 1000
    return pdf
