"""The ``theory`` command: ``verify`` the registered claims, ``derive`` a topic, build the ``derivations``.

Exit codes: 0 success (every selected claim holds; with ``--perturb``, every perturbed prediction is rejected),
1 a claim fails or is inconclusive (a perturbed prediction is not rejected), 2 a usage error (one line on stderr).
"""

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """Usage errors are one line on stderr and exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _verify(args):
    from . import claims, report, stats

    if args.list:
        from .latex import unicode

        for c in claims.select(args.patterns):
            print(f"{c.id:32s} {unicode(c.statement)}")  # LaTeX math as plain text in a terminal
        return 0
    if args.pdf and not args.report:
        raise ValueError("--pdf compiles the report: give --report DIR too")
    size = "quick" if args.quick else "full" if args.full else "default"
    seeds = [args.seed] if args.seeds is None else args.seeds
    if args.report and len(seeds) > 1:
        raise ValueError("--report writes the run of one seed: give --seed, not --seeds")
    if args.perturb is not None and (args.seeds is not None or args.report):
        raise ValueError("--perturb re-scores the run of one seed: give --seed, not --seeds or --report")
    runs, seconds = _sweep(args, seeds, size)
    if args.seeds is not None:
        return _robustness(runs, size, seconds, args.json)
    outcomes = runs[args.seed]
    if args.perturb is not None:
        return _perturbed(outcomes, args.perturb, f"seed {args.seed}, {size} size", args.json)
    header = f"seed {args.seed}, {size} size, {len(outcomes)} claims, {seconds:.0f} s"
    if args.json:
        json.dump({"passed": outcomes.passed, "seed": args.seed, "size": size, "claims": [
            {"id": c.id, "statement": c.statement, "source": c.source, "prediction": r.prediction,
             "estimate": r.estimate, "stderr": r.stderr, "interval": r.interval, "criterion": r.criterion,
             "verdict": r.verdict, "passed": r.passed, "seconds": round(s, 3)} for c, r, s in outcomes]},
            sys.stdout, indent=1)
        print()
    else:
        print(outcomes, end="\n\n")
        for c, r, _ in outcomes:
            print(f"{c.id}: {r.criterion}")
        failed = [c.id for c, r, _ in outcomes if r.verdict == "fails"]
        unsure = [c.id for c, r, _ in outcomes if r.verdict == "inconclusive"]
        print(f"\n{header} (family-wise level {stats.ALPHA:g}): "
              + "; ".join([f"{len(failed)} FAILED ({', '.join(failed)})"] * bool(failed)
                          + [f"{len(unsure)} INCONCLUSIVE ({', '.join(unsure)})"] * bool(unsure))
              + ("every claim holds" if not failed + unsure else ""))
    if args.report:
        md, tex, figures = report.write(args.report, outcomes, header)
        note = report.SKIPPED if figures is None else f"{len(figures)} figures"
        print(f"report: {md}, {tex} ({note})", file=sys.stderr)
        if args.pdf:
            print(f"report: {_pdf(tex)}", file=sys.stderr)
    return 0 if outcomes.passed else 1


def _perturbed(outcomes, delta, header, as_json):
    """``--perturb``: every claim's criteria re-scored with the prediction x(1 -+ delta) (exponents shifted) on the
    same measurements; exit code 0 only if every perturbed prediction is rejected (or exempt with a reason)."""
    rows = [(c, r, r.perturb(delta)) for c, r, _ in outcomes]
    ok = {c.id: bool(p) and all(q.rejected for q in p) for c, _, p in rows}
    if as_json:
        json.dump({"passed": all(ok.values()), "delta": delta, "claims": [
            {"id": c.id, "verdict": r.verdict, "rejected": ok[c.id],
             "perturbations": [{"criterion": q.criterion, "change": q.change, "ratio": q.ratio if q.rescored else None,
                                "exempt": q.exempt} for q in p]} for c, r, p in rows]}, sys.stdout, indent=1)
        print()
        return 0 if all(ok.values()) else 1
    table = [("claim", "verdict", "worst ratio", "perturbed prediction")]
    notes = []
    for c, r, p in rows:
        ratios = [q.ratio for q in p if q.rescored]
        worst = f"{min(ratios):.3g}" if ratios else "-"
        state = "rejected" if ok[c.id] else "NOT rejected" if p else "NOT rejected (no criterion to re-score)"
        table.append((c.id, r.verdict, worst, state))
        notes += [f"{c.id}: {q.criterion} {q.change}: |error|/tolerance = {q.ratio:.3g}" for q in p
                  if q.rescored and not q.rejected]
        notes += [f"{c.id}: exempt ({q.exempt})" if q.exempt else f"{c.id}: cannot be re-scored ({q.criterion})"
                  for q in p if not q.rescored]
    widths = [max(len(t[i]) for t in table) for i in range(4)]
    for i, row in enumerate(table):
        print("  ".join(cell.rjust(w) if j == 2 else cell.ljust(w) for j, (cell, w) in enumerate(zip(row, widths)))
              .rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    if notes:
        print("\n" + "\n".join(notes))
    missed = [k for k, v in ok.items() if not v]
    print(f"\n{header}, predictions x{1 - delta:g} and x{1 + delta:g} (exponents {-delta:+g}/{delta:+g} of their value)"
          f": " + (f"{len(missed)} claims do NOT reject them ({', '.join(missed)})" if missed
                   else "every perturbed prediction is rejected"))
    return 0 if not missed else 1


def _fraction(text):
    """``--perturb``: a relative perturbation in (0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number such as 0.1, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a relative perturbation in (0, 1), got {text!r}")
    return value


def _sweep(args, seeds, size):
    """Run the selected claims at ``seeds`` where ``--jobs``/``--scheduler`` say: ({seed: Outcomes}, seconds)."""
    from .claims import select, sweep
    from .distributed import cores, executor

    jobs = args.jobs
    if jobs is None and args.scheduler is None:  # one process per core, but no more than there are runs
        jobs = min(cores(), len(select(args.patterns)) * len(seeds))
    start = time.perf_counter()
    try:
        with executor(jobs, args.scheduler) as pool:
            runs = sweep(args.patterns, seeds, size, progress=not args.no_progress, executor=pool)
    except (ImportError, OSError) as err:  # no dask, or no scheduler at that address
        if args.scheduler is None:
            raise
        raise ValueError(f"--scheduler {args.scheduler}: {err}") from err
    return runs, time.perf_counter() - start


def _robustness(runs, size, seconds, as_json):
    """``--seeds``: per claim, the seeds it holds at and those it fails at; exit code 0 only if it holds at all."""
    seeds = list(runs)
    rows = [(c, [s for s in seeds if not runs[s][k][1].passed], sum(runs[s][k][2] for s in seeds) / len(seeds))
            for k, (c, _, _) in enumerate(runs[seeds[0]])]
    passed = not any(failing for _, failing, _ in rows)
    if as_json:
        json.dump({"passed": passed, "seeds": seeds, "size": size, "claims": [
            {"id": c.id, "statement": c.statement, "holds": len(seeds) - len(failing), "runs": len(seeds),
             "failing_seeds": failing, "seconds": round(mean, 3)} for c, failing, mean in rows]}, sys.stdout, indent=1)
        print()
        return 0 if passed else 1
    table = [("claim", "holds", "failing seeds", "mean s")] + [
        (c.id, f"{len(seeds) - len(failing)}/{len(seeds)}", " ".join(map(str, failing)) or "-", f"{mean:.1f}")
        for c, failing, mean in rows]
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    for i, row in enumerate(table):
        cells = zip(row, widths)
        print("  ".join(cell.ljust(w) if j in (0, 2) else cell.rjust(w) for j, (cell, w) in enumerate(cells)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    flaky = [c.id for c, failing, _ in rows if failing]
    print(f"\nseeds {_span(seeds)}, {size} size, {len(rows)} claims, {seconds:.0f} s: "
          + (f"{len(flaky)} fail at some seed ({', '.join(flaky)})" if flaky else "every claim holds at every seed"))
    return 0 if passed else 1


def _span(seeds):
    return f"{seeds[0]}-{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) else ",".join(map(str, seeds))


def _seeds(text):
    """``--seeds``: ``0-9``, ``3,5,8`` or a mix (``0-4,10``)."""
    seeds = []
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        try:
            low, high = int(first), int(last or first)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected seeds such as 0-9 or 1,4,7, got {text!r}") from None
        if low < 0 or high < low:
            raise argparse.ArgumentTypeError(f"expected ranges low-high of seeds >= 0 with low <= high, got {part!r}")
        seeds += range(low, high + 1)
    return list(dict.fromkeys(seeds))


def _derive(args):
    from .derive import render, topics

    chosen = topics()[args.topic]
    options = {o.name: getattr(args, o.name) for o in chosen.options}
    try:
        result = chosen.derive(**options)
    except (ValueError, TypeError) as err:
        print(f"theory derive {args.topic}: error: {err}", file=sys.stderr)
        return 2
    print(render(result, latex=args.latex))
    return 0


def _derivations(args):
    from .derivations import build, documents, folder

    try:
        directory = folder(args.dir)
        names = args.topics or sorted(documents(directory))
        for name in names:
            for path in build(name, directory):
                print(path)
                if args.pdf and path.suffix == ".tex":
                    print(_pdf(path))
    except ValueError as err:
        print(f"theory derivations: error: {err}", file=sys.stderr)
        return 2
    return 0


def _seed(text):
    """``--seed``: an integer >= 0 (NumPy's SeedSequence takes no negative seeds)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def _report_dir(text):
    """``--report DIR``: a directory that can be written into, created if needed -- checked before any claim runs."""
    import tempfile

    path = pathlib.Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise argparse.ArgumentTypeError(f"cannot write into {text}: {err.strerror or err}") from None
    return text


PDFLATEX_MISSING = ("--pdf needs pdflatex, which is not on PATH (Debian: apt install texlive-latex-base "
                    "texlive-latex-recommended); without --pdf the .tex is written for compiling elsewhere")


def _pdf(tex):
    """Compile ``tex`` with pdflatex in its folder; the PDF's path. A ValueError with pdflatex's first error."""
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name], cwd=tex.parent,
                         capture_output=True, text=True, errors="replace", timeout=300)
    if run.returncode != 0:
        errors = [line for line in run.stdout.splitlines() if line.startswith("!")]
        raise ValueError(f"pdflatex failed on {tex}: {errors[0] if errors else run.stdout[-300:]}")
    return tex.with_suffix(".pdf")


def _version():
    from importlib import metadata

    from . import __version__

    try:
        return metadata.version("theory")
    except metadata.PackageNotFoundError:  # run from a source tree (PYTHONPATH)
        return __version__


def _typed(parse):
    """An option's parser whose ValueError/TypeError becomes argparse's "argument --name: <reason>"."""
    def typed(text):
        try:
            return parse(text)
        except (ValueError, TypeError) as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    typed.__name__ = getattr(parse, "__name__", "value")
    return typed


def _parser():
    from .derive import topics

    parser = _Parser(prog="theory", description="Derive the formulas of wide-network theory, export them as "
                     "LaTeX, and verify them against finite networks.")
    parser.add_argument("--version", action="version", version=f"theory {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    verify = commands.add_parser("verify", help="run the registered claims and print a table")
    verify.add_argument("patterns", nargs="*", help="claim ids, prefixes (ntk) or globs (nngp.*); default: all")
    seed = verify.add_mutually_exclusive_group()
    seed.add_argument("--seed", type=_seed, default=0, help="the run's seed (results are deterministic given it)")
    seed.add_argument("--seeds", type=_seeds, metavar="0-9", help="run every claim at each of these seeds and "
                      "report at how many it holds (a robustness check)")
    size = verify.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small experiments (smoke test)")
    size.add_argument("--full", action="store_true", help="large experiments (tighter statistics, slower)")
    verify.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    verify.add_argument("--report", metavar="DIR", type=_report_dir,
                        help="write report.md, report.tex and figures/ into DIR")
    verify.add_argument("--pdf", action="store_true", help="also compile report.tex into report.pdf (needs pdflatex)")
    verify.add_argument("--perturb", type=_fraction, metavar="DELTA", help="re-score every claim with its predictions "
                        "x(1 - DELTA) and x(1 + DELTA) (exponents shifted by DELTA of their value) on the same "
                        "measurements; exit code 0 only if each is rejected")
    verify.add_argument("--list", action="store_true", help="list the selected claims without running them")
    verify.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    where = verify.add_mutually_exclusive_group()
    where.add_argument("--jobs", type=int, metavar="N", help="run the claims on N local processes (default: one per "
                       "core; 1 runs them in this process)")
    where.add_argument("--scheduler", metavar="ADDRESS", help="run the claims on a Dask distributed cluster, e.g. "
                       "tcp://host:8786 (needs pip install 'theory[dask]')")
    verify.set_defaults(run=_verify)

    derive = commands.add_parser("derive", help="print a derived expression (pretty text, or LaTeX)")
    derive_topics = derive.add_subparsers(dest="topic", required=True, parser_class=_Parser, metavar="TOPIC")
    for t in topics().values():
        p = derive_topics.add_parser(t.name, help=t.help, description=t.help)
        for o in t.options:
            flag = "--" + o.name.replace("_", "-")
            if o.parse is None:
                p.add_argument(flag, dest=o.name, action="store_true", help=o.help)
            else:
                p.add_argument(flag, dest=o.name, default=o.default, type=_typed(o.parse), help=f"{o.help} (default: {o.default})")
        p.add_argument("--latex", action="store_true", help="print LaTeX instead of pretty text")
    derive.set_defaults(run=_derive)

    from .derivations import documents as _documents, folder

    try:
        names = ", ".join(sorted(_documents(folder(None))))
    except ValueError:
        names = "none found"
    documents = commands.add_parser("derivations", help="build the derivation documents")
    build = documents.add_subparsers(dest="action", required=True, parser_class=_Parser, metavar="ACTION")
    b = build.add_parser("build", help="run documents and write DIR/build/TOPIC.tex, .md and figures",
                         description=f"Run derivation documents and write DIR/build/NAME.md, NAME.tex and their PNG "
                         f"figures, printing every file written. Documents: {names}.")
    b.add_argument("topics", nargs="*", metavar="NAME", help=f"document names (default: all): {names}")
    b.add_argument("--dir", default=None, help="the folder of the documents (default: ./derivations if it exists, "
                   "else the derivations/ of the source tree this package runs from)")
    b.add_argument("--pdf", action="store_true", help="also compile each .tex into a PDF (needs pdflatex)")
    documents.set_defaults(run=_derivations)
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    if getattr(args, "pdf", False) and shutil.which("pdflatex") is None:
        print(f"theory {args.command}: error: {PDFLATEX_MISSING}", file=sys.stderr)
        return 2
    try:
        return args.run(args)
    except KeyboardInterrupt:  # Ctrl-C: the executor has ended its worker processes; one line, the shell's code
        print(f"\ntheory {args.command}: interrupted", file=sys.stderr)
        return 130
    except ValueError as err:  # e.g. a claim pattern that matches nothing
        print(f"theory {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `theory derive ... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
