"""Issue 17: bad and extreme input gives a correct finite answer or a clear error naming the parameter; custom
activations finish; the command line stops cleanly and prints what a person can read.

The table ``CASES`` is (call, expected outcome); the other tests need more than one line each.
"""

import math
import os
import re
import pathlib
import shutil
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import theory
from theory import symbols as sym
from theory.activations import names
from theory.symbols import z

from oracles import gaussian_expectation_quadrature

REPO = pathlib.Path(__file__).resolve().parents[1]
X = np.array([[1.0, 0.2, -0.3], [0.5, -1.1, 0.4], [-0.7, 0.3, 0.9], [0.2, 0.8, 0.1]])


def _dyn():
    K, T = theory.nngp_ntk(X, activation="erf", depth=2)
    return theory.MSEDynamics(T, np.sin(X[:, 0]), nngp=K)


# (id, call, expected exception type, regex the message must match)
CASES = [
    ("complex inputs", lambda: theory.nngp_ntk(X + 1j), TypeError, r"X1: .*complex"),
    ("numeric strings", lambda: theory.nngp_ntk(X.astype(str)), TypeError, r"X1: .*strings"),
    ("object array with None", lambda: theory.nngp_ntk(np.array([[1.0, None], [0.5, 2.0]], dtype=object)),
     TypeError, r"X1: .*objects"),
    ("complex X2", lambda: theory.nngp(X, X * 1j), TypeError, r"X2: .*complex"),
    ("pole 1/z", lambda: theory.nngp_ntk(X, activation=1 / z), ValueError, r"singular at z = 0.*diverges"),
    ("pole 1/(z - 3/10)", lambda: theory.nngp(X, activation=1 / (z - sp.Rational(3, 10))), ValueError,
     r"singular at z = 3/10"),
    ("sqrt|z| has E[phi'^2] infinite", lambda: theory.nngp_ntk(X, activation=sp.sqrt(sp.Abs(z))), ValueError,
     r"E\[φ'\(u\)²\] diverges"),
    ("exp(z^2) grows too fast", lambda: theory.nngp(X, activation=sp.exp(z**2)), ValueError, r"grows"),
    ("huge depth", lambda: theory.nngp_ntk(X, depth=10**6), ValueError, r"depth: expected an integer <= 10000"),
    ("erf at 1e80", lambda: theory.nngp_ntk(X * 1e80, activation="erf"), ValueError, r"X1: row \d has \|x\|²/d"),
    ("relu with bias at 1e150", lambda: theory.nngp_ntk(X * 1e150, sigma_b2=0.1), ValueError, r"with a bias"),
    ("symbolic sigma_w2 < 0", lambda: theory.mlp_kernels("relu", 2, sigma_w2=-1), ValueError, r"sigma_w2: .*>= 0"),
    ("symbolic sigma_w2 string", lambda: theory.mlp_kernels("relu", 2, sigma_w2="abc"), TypeError,
     r"sigma_w2: expected a number >= 0 or a SymPy Symbol"),
    ("symbolic sigma_b2 nan", lambda: theory.mlp_kernels("relu", 2, sigma_b2=float("nan")), ValueError, r"sigma_b2"),
    ("standard error of one network",
     lambda: theory.montecarlo.empirical_kernels(X, width=4, networks=1).ntk_se, ValueError, r"networks >= 2"),
    ("empty training set", lambda: theory.MSEDynamics(np.zeros((0, 0)), np.zeros(0)), ValueError,
     r"ntk: .*at least one training point"),
    ("decay('a')", lambda: _dyn().decay("a"), TypeError, r"^t: .*strings"),
]


@pytest.mark.parametrize("call, error, match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gives_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_symbols_are_accepted_as_symbolic_variances():
    s = sp.Symbol("s", positive=True)
    k = theory.mlp_kernels("relu", 1, sigma_w2=s, sigma_b2=0)
    assert s in k.nngp.free_symbols and sym.sigma_b2 not in k.nngp.free_symbols
    assert float(theory.mlp_kernels("relu", 1, sigma_w2=2.0).sigma_w2) == 2.0


# ---------------------------------------------------------------------------------------------------------------
# Large norms
# ---------------------------------------------------------------------------------------------------------------


def test_relu_kernels_scale_exactly_at_large_norms():
    """The issue's cases: rows scaled by 1e100, 1e150 (relu, depth 3); K and Θ are bilinear in the row scales."""
    K, T = theory.nngp_ntk(X, depth=3)
    for s in (1e100, 1e150):
        Y = X.copy()
        Y[0] *= s
        K2, T2 = theory.nngp_ntk(Y, depth=3)
        scale = np.ones(len(X))
        scale[0] = s
        np.testing.assert_allclose(K2, K * np.outer(scale, scale), rtol=1e-13)
        np.testing.assert_allclose(T2, T * np.outer(scale, scale), rtol=1e-13)


def test_overflow_is_inf_with_a_warning_only_where_the_true_value_overflows():
    Y = X.copy()
    Y[0] *= 1e200  # K(x0, x0) ~ 1e400 overflows; K(x0, x1) ~ 1e200 does not
    with pytest.warns(RuntimeWarning, match="exceed float64"):
        K, T = theory.nngp_ntk(Y, depth=3)
    assert np.isinf(K[0, 0]) and np.isinf(T[0, 0]) and not np.isnan(K).any() and not np.isnan(T).any()
    K1, _ = theory.nngp_ntk(X, depth=3)
    np.testing.assert_allclose(K[0, 1:], K1[0, 1:] * 1e200, rtol=1e-13)
    np.testing.assert_allclose(K[1:, 1:], K1[1:, 1:], rtol=1e-13)


def _kernel(act, Y, depth):
    return [theory.nngp(Y, activation=act, depth=depth)] if act in ("step", "sign") else \
        list(theory.nngp_ntk(Y, activation=act, depth=depth))


_HOMOGENEOUS = {"relu": 1, "leaky_relu": 1, "abs": 1, "step": 0, "sign": 0, "identity": 1, "monomial(2)": 2}
_ALL = sorted(set(names()) - {"monomial", "polynomial"} | {"monomial(2)", "polynomial(1, 1/2, 1/4)"})


@pytest.mark.parametrize("act", _ALL)
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(exponents=st.lists(st.integers(-150, 150), min_size=2, max_size=2))
def test_any_norm_gives_the_exact_scaling_or_a_clear_error(act, exponents):
    """Rows of norms 10^e, e in -150..150: for positively homogeneous activations (degree k) the kernel is the
    unit-norm kernel times (|x||x'|)^(k^L) -- finite wherever that is representable; for the others finite, or a
    ValueError naming the input scale (beyond 1e100 for σ_w²|x|²/d)."""
    depth = 2
    unit = X[:2] / np.linalg.norm(X[:2], axis=1, keepdims=True)
    scale = 10.0 ** np.array(exponents, dtype=float)
    Y = unit * scale[:, None]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the overflow warning, tested above
            got = _kernel(act, Y, depth)
    except ValueError as err:
        # beyond 1e100 (1e3 on the quadrature path) for the layer-0 variance |x|²/d
        assert act not in _HOMOGENEOUS and "|x|²/d" in str(err) and max(exponents) > 1
        return
    assert not any(np.isnan(g).any() for g in got)
    if act not in _HOMOGENEOUS:
        assert all(np.isfinite(g).all() for g in got)
        return
    power = _HOMOGENEOUS[act] ** depth
    log_factor = power * (np.log(scale)[:, None] + np.log(scale)[None, :])
    for g, ref in zip(got, _kernel(act, unit, depth)):
        with np.errstate(over="ignore"):
            expected = np.sign(ref) * np.exp(np.log(np.abs(ref) + 1e-300) + log_factor)
        finite = np.abs(np.log(np.abs(ref) + 1e-300) + log_factor) < 700  # representable, not near the edges
        np.testing.assert_allclose(g[finite], expected[finite], rtol=1e-12)
        assert np.all(np.isinf(g[(np.log(np.abs(ref)) + log_factor > 710) & (ref != 0)]))


# ---------------------------------------------------------------------------------------------------------------
# Custom activations finish, and agree with closed forms and an independent quadrature
# ---------------------------------------------------------------------------------------------------------------


def _arc_cosine(n, a, c, b):
    """Cho & Saul (2009): E[H(u)u^n H(v)v^n] = (ab)^(n/2) J_n(θ) / (2π)."""
    theta = math.acos(max(-1.0, min(1.0, c / math.sqrt(a * b))))
    J = {0: math.pi - theta, 1: math.sin(theta) + (math.pi - theta) * math.cos(theta),
         2: 3 * math.sin(theta) * math.cos(theta) + (math.pi - theta) * (1 + 2 * math.cos(theta) ** 2)}[n]
    return (a * b) ** (n / 2) * J / (2 * math.pi)


def _oracle(f, G):
    n = len(G)
    return np.array([[gaussian_expectation_quadrature(f, f, G[i, i], G[i, j], G[j, j]) for j in range(n)]
                     for i in range(n)])


_CUSTOM = [
    ("arc-cosine 0", sp.Heaviside(z), lambda x: np.where(x > 0, 1.0, 0.0), 0),
    ("arc-cosine 1", sp.Heaviside(z) * z, lambda x: np.maximum(x, 0.0), 1),
    ("arc-cosine 2", sp.Heaviside(z) * z**2, lambda x: np.where(x > 0, x**2, 0.0), 2),
    ("leaky", z * sp.Heaviside(z) + sp.Rational(1, 10) * z * sp.Heaviside(-z), lambda x: np.where(x > 0, x, x / 10),
     None),
    ("gaussian bump", sp.exp(-z**2 / 2), lambda x: np.exp(-x**2 / 2), None),
    ("cubic", z**3 - z, lambda x: x**3 - x, None),
    ("cos 2z", sp.cos(2 * z), lambda x: np.cos(2 * x), None),
    ("softplus", sp.log(1 + sp.exp(z)), lambda x: np.logaddexp(0.0, x), None),
]


@pytest.mark.parametrize("expr, f, order", [c[1:] for c in _CUSTOM], ids=[c[0] for c in _CUSTOM])
def test_custom_activations_finish_and_agree_with_an_independent_quadrature(expr, f, order):
    """Depth 1, σ_w² = 1, σ_b² = 0: K¹ = E[φ(u)φ(v)] over N(0, XXᵀ/d). Within the symbolic budget (5 s CPU) a
    closed form runs; past it (z²H(z)) the quadrature path, accurate to ~1e-6 for that non-smooth φ."""
    start = time.process_time()  # CPU seconds (the budget's measure): a loaded machine must not fail the test
    K = theory.nngp(X, activation=expr, depth=1)
    seconds = time.process_time() - start
    assert seconds < 15, f"{seconds:.1f} s of CPU"
    G = X @ X.T / X.shape[1]
    ref = _oracle(f, G)
    np.testing.assert_allclose(K, ref, rtol=2e-6, atol=2e-6 * np.abs(ref).max())
    if order is not None:
        closed = np.array([[_arc_cosine(order, G[i, i], G[i, j], G[j, j]) for j in range(len(G))]
                           for i in range(len(G))])
        np.testing.assert_allclose(ref, closed, rtol=1e-10)  # the oracle itself, against Cho & Saul
        np.testing.assert_allclose(K, closed, rtol=2e-6, atol=2e-6 * np.abs(closed).max())


def test_a_derivation_past_its_budget_falls_back_to_quadrature_with_a_one_line_note(capfd, monkeypatch):
    """With a budget of 10 ms of CPU every derivation of a new user expression is cut short: the quadrature path
    runs, says so once on stderr, and still agrees with the independent quadrature."""
    from theory import _budget, gaussian

    monkeypatch.setattr(_budget, "SYMBOLIC_SECONDS", 0.01)
    expr = sp.exp(-z**2) * z**2 + z / 3  # has a closed form, not derived before in this session
    K = theory.nngp(X, activation=expr, depth=1)
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "quadrature path" in err, err
    f = lambda x: np.exp(-x**2) * x**2 + x / 3  # noqa: E731
    ref = _oracle(f, X @ X.T / X.shape[1])
    np.testing.assert_allclose(K, ref, rtol=1e-10, atol=1e-12)  # smooth: Mehler's series is exact to rounding
    theory.nngp(X, activation=expr, depth=1)
    assert capfd.readouterr().err == ""  # noted once
    e = theory.gaussian_expectation(sp.cos(z) * z + z / 5, sp.cos(z) * z + z / 5)
    assert isinstance(e, gaussian.GaussianExpectation) and "using quadrature" in capfd.readouterr().err


# ---------------------------------------------------------------------------------------------------------------
# Symbolic output that a person can read
# ---------------------------------------------------------------------------------------------------------------


def test_deep_symbolic_kernels_print_compactly_and_evaluate_like_the_numeric_loop():
    for depth in (5, 50):
        start = time.perf_counter()
        k = theory.mlp_kernels("relu", depth)
        texts = str(k.nngp), repr(k.ntk), sp.latex(k.ntk), sp.pretty(k.nngp)
        assert time.perf_counter() - start < 10 and max(map(len, texts)) < 120, texts
    assert str(theory.mlp_kernels("relu", 5).nngp) == "K_12^(5)(g_11, g_12, g_22, sigma_b^2, sigma_w^2)"
    assert theory.mlp_kernels("relu", 5).nngp == theory.mlp_kernels("relu", 5).nngp
    k = theory.mlp_kernels("erf", 3, sigma_w2=sp.Rational(3, 2), sigma_b2=sp.Rational(1, 10))
    f = theory.numeric.lambdify((sym.g11, sym.g12, sym.g22), (k.nngp, k.ntk))
    G = X @ X.T / X.shape[1]
    d = np.diag(G)
    K, T = theory.nngp_ntk(X, activation="erf", depth=3, sigma_w2=1.5, sigma_b2=0.1)
    np.testing.assert_allclose(f(d[:, None], G, d[None, :])[0], K, rtol=1e-12)
    np.testing.assert_allclose(f(d[:, None], G, d[None, :])[1], T, rtol=1e-12)
    value = k.nngp.subs({sym.g11: G[0, 0], sym.g12: G[0, 1], sym.g22: G[1, 1]}).evalf()
    assert abs(float(value) - K[0, 1]) < 1e-12
    assert k.nngp.doit().has(sym.g12) and not k.nngp.doit().has(type(k.nngp))


def test_latex_prose_renders_as_plain_unicode():
    from theory.latex import unicode

    assert unicode(r"boundary $\eta = 4/\lambda_0$") == "boundary η = 4/λ₀"
    assert unicode(r"$\sigma_w^2 = \frac{9}{5}$, $n^{-1/2}$") == "σ_w² = 9/5, n^(-1/2)"
    assert unicode(r"$\frac{1}{n}\sum_i v_i \phi(z_i)$") == "(1/n) Σᵢ vᵢ φ(zᵢ)"


def test_bound_predictions_show_their_direction():
    from theory.claims.base import Claim, Outcomes, compare

    r = compare(4.0, 9.0, 1.0, data={"bound": ">"})
    row = Outcomes([(Claim("x.y", "s", "src", lambda: 0, None), r, 1.0)]).rows()[0]
    assert row[1] == "> 4"


def test_readme_dynamics_example_has_a_meaningful_covariance():
    """The README's MSEDynamics lines, run as written: at t = 0 the covariance of f_t(T) is the NNGP prior K(T, T);
    at t = ∞ it has shrunk but is not zero."""
    text = (REPO / "README.md").read_text()
    text = text[:text.index("```", text.index("dyn.gaussian("))]  # the REPL lines up to the dynamics example
    lines = [line[4:] for line in text.splitlines() if line.startswith(">>> ")]
    starts = ("import numpy", "X = ", "Y = ", "T = ", "K, Theta = theory.nngp_ntk(", "Kt", "dyn")
    wanted = [line for line in lines if line.startswith(starts)]
    wanted = [line for line in wanted if "parameterization=" not in line]
    namespace = {"theory": theory, "np": np}
    for line in wanted[:-1]:
        exec(line, namespace)
    mean, cov = eval(wanted[-1], namespace)
    assert cov.shape[0] == 3 and np.abs(cov[0]).max() > 0.01
    np.testing.assert_allclose(cov[0], namespace["Ktt"], rtol=1e-10)
    assert np.trace(cov[-1]) < np.trace(cov[0])


# ---------------------------------------------------------------------------------------------------------------
# The command line (the module, as `python -m theory`)
# ---------------------------------------------------------------------------------------------------------------


def _cli(capsys, *args):
    """``theory ARGS`` in this process: (exit code, stdout, stderr)."""
    from theory.cli import main

    try:
        code = main(list(args))
    except SystemExit as err:  # argparse: usage errors, --version
        code = err.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("args, match", [
    (["verify", "--seed", "-1"], r"argument --seed: expected an integer >= 0, got -1"),
    (["verify", "--report", "/proc/x", "ntk"], r"argument --report: cannot write into /proc/x"),
    (["verify", "--report", "/etc/hostname", "ntk"], r"argument --report: /etc/hostname exists and is not a dir"),
    (["derive", "nngp", "--depth", "-3"], r"argument --depth: expected an integer >= 0 .*got -3"),
    (["derive", "nngp", "--sigma-w2", "-2"], r"argument --sigma-w2: expected a number >= 0"),
    (["verify", "--pdf", "ntk"], r"--pdf"),
])
def test_usage_errors_name_the_option_and_exit_2(capsys, args, match):
    code, out, err = _cli(capsys, *args)
    assert code == 2 and len(err.strip().splitlines()) == 1 and out == "", err
    assert re.search(match, err), err


def test_pdf_without_pdflatex_is_a_clear_message_and_with_it_a_pdf(capsys, tmp_path):
    docs = tmp_path / "derivations"
    docs.mkdir()
    (docs / "tiny.py").write_text("# %% [markdown]\n# # Tiny\n# Some $x^2$.\n# %%\n1 + 1\n")
    code, out, err = _cli(capsys, "derivations", "build", "--pdf", "--dir", str(docs))
    if shutil.which("pdflatex") is None:
        assert code == 2 and "--pdf needs pdflatex" in err and out == ""
    else:
        assert code == 0 and (docs / "build" / "tiny.pdf").stat().st_size > 1000


def test_version_list_and_labelled_phases(capsys):
    code, out, _ = _cli(capsys, "--version")
    assert code == 0 and out.strip() == f"theory {theory.__version__}"
    code, out, _ = _cli(capsys, "verify", "--list", "catapult")
    assert code == 0 and "$" not in out and "\\" not in out and "η = 4/λ₀" in out
    code, out, _ = _cli(capsys, "derive", "catapult", "--phases")
    assert code == 0 and all(f"{name} =" in out for name in ("lazy", "catapult", "divergent", "stable set"))


def test_derive_prints_the_recursion_by_default_and_the_expansion_on_request(capsys):
    code, out, _ = _cli(capsys, "derive", "nngp", "--activation", "relu", "--depth", "2")
    assert code == 0 and max(map(len, out.splitlines())) < 200 and "K⁽²⁾₁₂" in out
    code, out, _ = _cli(capsys, "derive", "nngp", "--activation", "relu", "--depth", "2", "--expanded")
    assert code == 0 and "K⁽²⁾ =" in out and max(map(len, out.splitlines())) > 1000  # as requested


def test_derivations_build_works_from_any_directory_and_lists_every_file(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = _cli(capsys, "derivations", "build", "--help")
    assert code == 0 and "kernels" in out and "parameterizations" in out  # found from tmp_path
    docs = tmp_path / "derivations"
    docs.mkdir()
    (docs / "tiny.py").write_text("# %% [markdown]\n# # Tiny\n# %%\nfrom matplotlib.figure import Figure\n"
                                  "fig = Figure()\nfig.add_subplot().plot([0, 1])\nfig\n")
    code, out, err = _cli(capsys, "derivations", "build")
    written = out.split()
    assert code == 0, err
    assert [pathlib.Path(p).name for p in written] == ["tiny.md", "tiny.tex", "tiny-0.png"]
    assert all((tmp_path / p).stat().st_size > 0 for p in written)


def _children(pid):
    return subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()


def test_ctrl_c_stops_verify_quickly_with_one_line_and_no_workers_left():
    env = dict(os.environ, PYTHONPATH=str(REPO))
    run = subprocess.Popen([sys.executable, "-m", "theory", "verify", "--jobs", "2", "--no-progress", "ntk"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    deadline = time.monotonic() + 90
    while not _children(run.pid) and time.monotonic() < deadline:  # until the workers run claims
        time.sleep(0.2)
    time.sleep(1.0)
    assert run.poll() is None and _children(run.pid)
    start = time.perf_counter()
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=30)
    seconds = time.perf_counter() - start
    assert run.returncode == 130 and seconds < 5, (run.returncode, seconds, err)  # ~1 s on an idle machine
    assert err.strip() == "theory verify: interrupted" and "Traceback" not in out  # one line, from the real command
    left = subprocess.run(["pgrep", "-s", str(run.pid)], capture_output=True, text=True).stdout.split()
    assert left == []
