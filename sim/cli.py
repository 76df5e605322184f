"""crisis-sim: simulate crisis-response capacity from scenario files (also ``python -m sim``).

The CLI is the only place that prints. A broken scenario prints one line (file, field,
line, what is allowed) and exits with code 2, without a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from . import __version__
from .argtypes import positive_int, seed as seed_type


def calls_fraction(text: str) -> float:
    """``--calls-sample``: sim.callsample.fraction, imported only when the option is given."""
    from .callsample import fraction
    return fraction(text)


# command -> (module whose register_cli(sub) adds it, or None for the two defined here; the
# line `crisis-sim --help` shows). A command's module is imported only when that command
# runs, so --help, validate and schema load no simulation, data-frame or plotting library.
# A new command is one line here (tests/test_startup.py checks the table against the modules).
COMMANDS: dict[str, tuple[str | None, str]] = {
    "validate": (None, "check scenario files; every problem of every file on its own line (exit 2 if any)"),
    "run": (None, "run one scenario with replications and write results"),
    "compare": ("sim.experiment", "run scenarios with common random numbers; KPIs and paired differences"),
    "sweep": ("sim.experiment", "run a grid over scenario fields; tidy KPIs per point"),
    "warmup": ("sim.experiment", "course of a measure from time 0 and a suggested warmup_days"),
    "report": ("sim.report", "write one self-contained HTML report (and PDF) from results folders"),
    "optimize": ("sim.optimize",
                 "the cheapest roster (crews per block, vehicles, beds) that meets targets at a stated "
                 "confidence"),
    "calibrate": ("sim.fromdata.cli", "build a scenario from a calls-for-service (CAD) export"),
    "calibrate-check": ("sim.calibrate",
                        "run scenarios with targets and compare them to published figures; exit 1 when a "
                        "required target is missed"),
    "validate-predictions": ("sim.predictions",
                             "run the predicted targets with input uncertainty and write docs/validation.md "
                             "(reports hits and misses; exit 0)"),
    "sensitivity": ("sim.sensitivity",
                    "one-at-a-time screening of the ranges: inputs (common random numbers); ranks the inputs"
                    " that move the headline KPIs most"),
    "violence": ("sim.violence.cli",
                 "violence-interruption programs (ONS, Cure Violence, focused deterrence)"),
    "schema": ("sim.schema",
               "write the JSON Schema of scenario files (for editors) and the generated references"),
}

EXIT_BAD_INPUT = 2
EXIT_ENVIRONMENT = 1
EXIT_STRICT = 3


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line (which command, what is wrong, where to
    look), exit code 2; subcommand parsers inherit the class."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def _cmd_validate(args) -> int:
    """Every file checked; each problem of each file on its own line; 2 if any failed."""
    from .scenario import ScenarioError, load_any, printable
    failed = 0
    for path in args.scenarios:
        try:
            s = load_any(path, args.set)
        except ScenarioError as e:
            failed += 1
            _print_error(e)
            continue
        print(f"ok  {printable(path)}: {printable(s.name)}")
    return EXIT_BAD_INPUT if failed else 0


def _cmd_run(args) -> int:
    from tqdm import tqdm

    from .scenario import load_scenario
    from .callsample import setting as calls_setting
    from .experiment import run_experiment
    from .results import manifest, write_run

    from .experiment import unfinished_warnings
    from .metrics import summarise
    from .results import can_replace
    from .scenario import printable

    s = load_scenario(args.scenario, args.set)
    seed = s.seed if args.seed is None else args.seed
    out = Path(args.out or Path("results") / Path(args.scenario).stem)
    can_replace(out)                             # before computing, not after
    with tqdm(total=args.replications, desc=printable(s.name)[:40], unit="rep", disable=args.quiet,
              file=sys.stderr) as bar:
        keep = calls_setting(args.no_calls, args.calls_sample)
        res = run_experiment(s, replications=args.replications, seed=seed, workers=args.workers,
                             progress=lambda n: bar.update(n - bar.n), keep_calls=keep)
    info = manifest([s], seed, args.replications, res.wall_s, scenario_file=str(args.scenario),
                    overrides=args.set or [], calls_stored="all" if keep is True else "none" if keep is False
                    else f"sample {keep:g}")
    kpis = res.one_scenario(res.kpis)
    summary = summarise(kpis)
    # the logs go from the store's files to the folder's, never all in memory at once
    write_run(out, s, res.log_parts("calls") if keep is not False else None, res.one_scenario(res.pools),
              res.one_scenario(res.hourly), kpis, summary, info, facilities=res.one_scenario(res.facilities),
              occupancy=res.one_scenario(res.occupancy), assignments=res.log_parts("assignments"))
    res.store.remove_temporary()
    _print_summary(summary)
    calls_file = "" if keep is False else "calls.parquet, "
    print(f"\nwrote {out}/ ({calls_file}summary.csv, scenario.resolved.yaml, manifest.json)")
    warnings = unfinished_warnings(summary)
    for w in warnings:
        print(w, file=sys.stderr)
    return EXIT_STRICT if warnings and args.strict else 0


def _print_summary(summary) -> None:
    rows = [(r.metric, f"{r.mean:,.3f}", "" if r.ci_low != r.ci_low else f"[{r.ci_low:,.3f}, {r.ci_high:,.3f}]")
            for r in summary.itertuples()]
    w = max(len(r[0]) for r in rows) if rows else 10
    for metric, mean, ci in rows:
        print(f"{metric:<{w}}  {mean:>14}  {ci}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``crisis-sim`` parser. ``only`` names the one command given its real options (its
    module is imported); the others get their name and help line only. Default: every one."""
    p = _Parser(prog="crisis-sim", description=__doc__.split("\n")[0])
    p.add_argument("--version", action="version", version=f"crisis-sim {__version__}")
    p.add_argument("--allow-large", action="store_true",
                   help="accept absurd sizes (horizon, calls, teams...) that validation refuses; "
                        "may be given anywhere on the line")
    sub = p.add_subparsers(dest="command", required=True)

    def add_set(sp):
        sp.add_argument("--set", action="append", metavar="FIELD=VALUE", default=[],
                        help="change a scenario field (repeatable): FIELD=VALUE, FIELD+=ITEM (append), "
                             "FIELD-=NAME (remove), e.g. pools.cahoots.shifts.0.teams=2")

    v = sub.add_parser("validate", help=COMMANDS["validate"][1])
    v.add_argument("scenarios", nargs="+")
    add_set(v)
    v.set_defaults(func=_cmd_validate)

    r = sub.add_parser("run", help=COMMANDS["run"][1])
    r.add_argument("scenario")
    r.add_argument("--replications", "-r", type=positive_int, default=10)
    r.add_argument("--seed", type=seed_type, default=None, help="default: the scenario's seed")
    r.add_argument("--out", default=None, help="results folder (default results/<scenario file stem>)")
    r.add_argument("--workers", type=positive_int, default=None, help="processes (default: all cores)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument("--strict", action="store_true",
                   help="exit 3 when calls were left unfinished (a starved pool), instead of a warning")
    r.add_argument("--no-calls", action="store_true", help="write no call log (KPIs still count every call)")
    r.add_argument("--calls-sample", type=calls_fraction, default=None, metavar="F",
                   help="write the call log of a share F of calls (0 < F <= 1); KPIs still count every call")
    add_set(r)
    r.set_defaults(func=_cmd_run)
    wanted = [module for name, (module, _) in COMMANDS.items() if module and only in (None, name)]
    for module in dict.fromkeys(wanted):
        importlib.import_module(module).register_cli(sub)
    for name, (_, text) in COMMANDS.items():
        if name not in sub.choices:
            sub.add_parser(name, help=text, add_help=False)
    return p


def _command(argv: list[str]) -> str:
    """The command named on the line ('' when none): the first word that is not an option."""
    word = next((a for a in argv if not a.startswith("-")), "")
    return word if word in COMMANDS else ""


def _print_error(e) -> None:
    """A ScenarioError, one line per problem."""
    for line in e.lines():
        print(f"error: {line}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run a command; every failure is one line on stderr: exit 2 for bad input (a scenario,
    an option, a results folder), 1 for the environment (disk full, permission, no memory,
    an unreachable scheduler) or an internal error (``CRISIS_SIM_DEBUG=1`` re-raises it with
    its traceback), 3 for ``--strict`` warnings."""
    import os
    from .limits import ALLOW_LARGE_ENV

    argv = list(sys.argv[1:] if argv is None else argv)
    if "--allow-large" in argv:                  # accepted anywhere on the line
        argv = [a for a in argv if a != "--allow-large"]
        os.environ[ALLOW_LARGE_ENV] = "1"
    args = build_parser(only=_command(argv)).parse_args(argv)
    from .scenario import ScenarioError, printable
    debug = os.environ.get("CRISIS_SIM_DEBUG", "") not in ("", "0")
    try:
        return args.func(args)
    except ScenarioError as e:
        _print_error(e)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the CLI's last word: one line, never a traceback
        if debug:
            raise
        from .report import ReportError
        if isinstance(e, ReportError):
            print(f"error: {printable(str(e))}", file=sys.stderr)
            return EXIT_BAD_INPUT
        print(f"error: {printable(_environment_message(e))}", file=sys.stderr)
        return EXIT_ENVIRONMENT


def _environment_message(e: BaseException) -> str:
    """One line for a failure that is not the input's fault."""
    if isinstance(e, OSError):
        where = f"{e.filename}: " if e.filename else ""
        return f"{where}{e.strerror or e}" + (f" (errno {e.errno})" if e.errno else "")
    if isinstance(e, MemoryError):
        return "out of memory; use a shorter horizon, fewer replications or fewer workers"
    first = str(e).splitlines()[0] if str(e) else ""
    return (f"internal error: {type(e).__name__}: {first} "
            "(set CRISIS_SIM_DEBUG=1 for the traceback and please report it)")
