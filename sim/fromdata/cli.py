"""``crisis-sim calibrate CALLS.csv[.gz] --columns MAP.yaml [--crosswalk TYPES.csv] --out scenario.yaml
[--report fit.html]``: a scenario from a city's calls-for-service export."""
from __future__ import annotations

import sys


def _cmd(args) -> int:
    from .core import from_cad

    period = tuple(args.period) if args.period else None
    fit = from_cad(args.calls, args.columns, args.crosswalk, period=period,
                   include_self_initiated=args.include_self_initiated, include_cancelled=args.include_cancelled,
                   min_samples=args.min_samples, horizon_days=args.horizon_days, name=args.name)
    ex = fit.tables["exclusions"]
    print(f"{fit.calls.rows_in_file:,} rows in {args.calls}")
    for r in ex.iloc[1:].itertuples():
        print(f"  {r.rows:>9,}  {r.reason}")
    for r in fit.tables["channels"].itertuples():
        print(f"channel {r.channel}: {r.per_week:,.1f} calls a week ({r.profile_model}), daily_cv {r.daily_cv:.3f}")
    for n in fit.notes:
        print(f"note: {n}")
    out = fit.write(args.out)
    print(f"wrote {out}")
    if args.report:
        print(f"wrote {fit.report(args.report)}")
    if args.tables:
        fit.write_tables(args.tables)
        print(f"wrote {args.tables}/ (fit tables as CSV)")
    return 0


def register_cli(sub) -> None:
    from .columns import builtin_maps
    from .crosswalk import builtin_crosswalks

    p = sub.add_parser("calibrate", help="build a scenario from a calls-for-service (CAD) export")
    p.add_argument("calls", help="the export: CSV, optionally gzipped (.csv.gz)")
    p.add_argument("--columns", required=True, metavar="MAP",
                   help=f"column map YAML, or a built-in one: {', '.join(builtin_maps())}")
    p.add_argument("--crosswalk", default=None, metavar="TYPES",
                   help=f"call-type crosswalk CSV, or a built-in one: {', '.join(builtin_crosswalks())} "
                        "(default: every raw type is its own call type)")
    p.add_argument("--out", required=True, help="scenario YAML to write")
    p.add_argument("--report", default=None, help="also write the fit report (HTML)")
    p.add_argument("--tables", default=None, metavar="DIR", help="also write the fit tables as CSV files")
    p.add_argument("--period", nargs=2, metavar=("START", "END"), default=None,
                   help="calibrate on [START, END) local time only (default: the whole days of the data)")
    p.add_argument("--include-self-initiated", action="store_true", help="keep officer-initiated rows")
    p.add_argument("--include-cancelled", action="store_true", help="keep cancelled and duplicate rows")
    p.add_argument("--min-samples", type=int, default=30, help="fewest durations for a fit of its own (default 30)")
    p.add_argument("--horizon-days", type=float, default=28, help="horizon_days of the scenario written (default 28)")
    p.add_argument("--name", default=None, help="scenario name (default: the map's name and the period)")
    p.set_defaults(func=_cmd)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: crisis-sim calibrate ...")
