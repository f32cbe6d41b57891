"""The real ``theory`` console script, in a subprocess: verify, derive, derivations, reports that compile."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from latex_tools import compile_pdf

REPO = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = pathlib.Path(sys.executable).parent / "theory"


def theory(*args, cwd=None, timeout=600):
    """The console script; where the package is not installed (a checkout run with PYTHONPATH), ``python -m theory``
    from this checkout."""
    if SCRIPT.exists():
        return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, cwd=cwd, timeout=timeout)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "theory", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env=env)


def test_verify_prints_a_green_table():
    run = theory("verify", "--quick", "nngp.mc_agreement.relu", "ntk.kernel_concentrates")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split() == ["claim", "prediction", "measured", "±", "SE", "verdict", "s"]
    assert any(line.startswith("nngp.mc_agreement.relu") and " holds " in line for line in lines)
    assert "every claim holds" in run.stdout and "claims |" in run.stderr  # the progress bar


def test_verify_json_is_one_object_with_the_documented_fields():
    run = theory("verify", "--quick", "--json", "--no-progress", "ntk.mc_agreement.erf")
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["passed"] is True and len(out["claims"]) == 1
    assert {"id", "statement", "source", "prediction", "estimate", "stderr", "passed"} <= set(out["claims"][0])


def test_verify_report_writes_markdown_latex_that_compiles_and_figures(tmp_path):
    run = theory("verify", "--quick", "--no-progress", "--report", str(tmp_path), "nngp.output_gaussian",
                 "ntk.mc_agreement.tanh")
    assert run.returncode == 0, run.stderr
    md = (tmp_path / "report.md").read_text()
    assert "nngp.output_gaussian" in md and "![ntk.mc_agreement.tanh](figures/ntk.mc_agreement.tanh.png)" in md
    assert (tmp_path / "figures" / "nngp.output_gaussian.png").stat().st_size > 5000
    compile_pdf(tmp_path / "report.tex")


def test_verify_perturb_rescores_a_claim_and_says_whether_each_perturbed_prediction_is_rejected():
    run = theory("verify", "--quick", "--no-progress", "--perturb", "0.1", "scaling.spectrum_decay.ntk")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "every perturbed prediction is rejected" in run.stdout
    out = json.loads(theory("verify", "--quick", "--no-progress", "--perturb", "0.1", "--json",
                            "scaling.spectrum_decay.ntk").stdout)
    (entry,) = out["claims"]
    assert out["passed"] and entry["rejected"] and [p["change"] for p in entry["perturbations"]] == ["x0.9", "x1.1"]
    assert all(p["ratio"] > 1 for p in entry["perturbations"])


def test_verify_usage_errors_are_one_line_with_exit_code_2():
    for args in (["verify", "no.such.claim"], ["verify", "--bogus"], ["verify", "--quick", "--full"],
                 ["verify", "--perturb", "2"], ["verify", "--perturb", "0.1", "--seeds", "0-1", "ntk"]):
        run = theory(*args)
        assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, (args, run.stderr)


def test_derive_prints_pretty_text_and_latex():
    run = theory("derive", "nngp", "--activation", "relu", "--depth", "2")
    assert run.returncode == 0 and "K⁽²⁾" in run.stdout and "θ(" in run.stdout
    run = theory("derive", "ntk", "--activation", "erf", "--depth", "1", "--latex", "--expanded")  # one expression
    assert run.returncode == 0 and run.stdout.startswith("\\Theta^{(1)}") and "\\theta\\left(" in run.stdout
    run = theory("derive", "ntk", "--depth", "5", "--sigma-w2", "2", "--sigma-b2", "0")
    assert run.returncode == 0 and "Θ⁽⁵⁾₁₂" in run.stdout  # beyond depth 2: the layer-by-layer system


@pytest.mark.parametrize("args", [["derive", "nope"], ["derive", "nngp", "--bogus", "1"],
                                  ["derive", "nngp", "--activation", "softsign"], ["derive", "nngp", "--depth", "-1"],
                                  ["derive", "nngp", "--sigma-w2", "x"], ["frobnicate"]])
def test_derive_errors_are_one_line_with_exit_code_2(args):
    run = theory(*args)
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr


def test_python_dash_m_is_the_same_command():
    run = subprocess.run([sys.executable, "-m", "theory", "verify", "--list", "ntk"], capture_output=True, text=True)
    assert run.returncode == 0 and "ntk.kernel_concentrates" in run.stdout


@pytest.mark.slow
def test_derivations_build_writes_markdown_and_latex_that_compiles(tmp_path):
    docs = tmp_path / "derivations"
    shutil.copytree(REPO / "derivations", docs, ignore=shutil.ignore_patterns("build"))
    names = sorted(p.stem for p in docs.glob("*.py"))
    assert "kernels" in names
    run = theory("derivations", "build", "--dir", str(docs), timeout=1200)
    assert run.returncode == 0, run.stderr
    for name in names:
        md = (docs / "build" / f"{name}.md").read_text()
        assert md.startswith("# ") and "$$" in md
        compile_pdf(docs / "build" / f"{name}.tex")
    assert theory("derivations", "build", "nope", "--dir", str(docs)).returncode == 2
