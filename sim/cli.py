"""crisis-sim: simulate crisis-response capacity from scenario files (also ``python -m sim``).

The CLI is the only place that prints. A broken scenario prints one line (file, field,
line, what is allowed) and exits with code 2, without a traceback.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from . import __version__
from .calibrate import register_cli as register_calibrate_cli
from .predictions import register_cli as register_predictions_cli
from .sensitivity import register_cli as register_sensitivity_cli
from .experiment import register_cli as register_experiment_cli
from .fromdata.cli import register_cli as register_fromdata_cli
from .report import register_cli as register_report_cli
from .scenario import ScenarioError, load_scenario
from .violence.cli import register_cli as register_violence_cli

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line (which command, what is wrong, where to
    look), exit code 2; subcommand parsers inherit the class."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def _cmd_validate(args) -> int:
    for path in args.scenarios:
        s = load_scenario(path, args.set)
        print(f"ok  {path}: {s.name}")
    return 0


def _cmd_run(args) -> int:
    from .experiment import run
    from .results import manifest, write_run

    s = load_scenario(args.scenario, args.set)
    seed = s.seed if args.seed is None else args.seed
    out = Path(args.out or Path("results") / Path(args.scenario).stem)
    with tqdm(total=args.replications, desc=s.name[:40], unit="rep", disable=args.quiet,
              file=sys.stderr) as bar:
        res = run(s, replications=args.replications, seed=seed, workers=args.workers,
                  progress=lambda n: bar.update(n - bar.n))
    info = manifest([s], seed, args.replications, res.wall_s, scenario_file=str(args.scenario),
                    overrides=args.set or [])
    write_run(out, s, res.calls_all, res.pools, res.hourly, res.kpis, res.summary, info,
              facilities=res.facilities, occupancy=res.occupancy)
    _print_summary(res.summary)
    print(f"\nwrote {out}/ (calls.parquet, summary.csv, scenario.resolved.yaml, manifest.json)")
    return 0


def _print_summary(summary) -> None:
    rows = [(r.metric, f"{r.mean:,.3f}", "" if r.ci_low != r.ci_low else f"[{r.ci_low:,.3f}, {r.ci_high:,.3f}]")
            for r in summary.itertuples()]
    w = max(len(r[0]) for r in rows) if rows else 10
    for metric, mean, ci in rows:
        print(f"{metric:<{w}}  {mean:>14}  {ci}")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="crisis-sim", description=__doc__.split("\n")[0])
    p.add_argument("--version", action="version", version=f"crisis-sim {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def add_set(sp):
        sp.add_argument("--set", action="append", metavar="FIELD=VALUE", default=[],
                        help="change a scenario field (repeatable): FIELD=VALUE, FIELD+=ITEM (append), "
                             "FIELD-=NAME (remove), e.g. pools.cahoots.shifts.0.teams=2")

    v = sub.add_parser("validate", help="check scenario files and exit 0, or 2 on the first problem")
    v.add_argument("scenarios", nargs="+")
    add_set(v)
    v.set_defaults(func=_cmd_validate)

    r = sub.add_parser("run", help="run one scenario with replications and write results")
    r.add_argument("scenario")
    r.add_argument("--replications", "-r", type=int, default=10)
    r.add_argument("--seed", type=int, default=None, help="default: the scenario's seed")
    r.add_argument("--out", default=None, help="results folder (default results/<scenario file stem>)")
    r.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    add_set(r)
    r.set_defaults(func=_cmd_run)
    register_report_cli(sub)
    register_violence_cli(sub)
    register_experiment_cli(sub)
    register_calibrate_cli(sub)
    register_predictions_cli(sub)
    register_sensitivity_cli(sub)
    register_fromdata_cli(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ScenarioError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
