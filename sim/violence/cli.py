"""``crisis-sim violence run|grid``: the type-2 programs from the command line."""
from __future__ import annotations

import json
from pathlib import Path

from ..results import manifest, write_csv, write_parquet, write_text
from ..scenario import resolved_yaml
from .experiment import run_violence, sensitivity_grid
from .kpis import check_targets
from .plots import plot_sensitivity
from .schema import load_violence_scenario


def _cmd_run(args) -> int:
    s = load_violence_scenario(args.scenario, args.set)
    res = run_violence(s, replications=args.replications, seed=args.seed)
    out = Path(args.out or Path("results") / Path(args.scenario).stem)
    targets = check_targets(s, res.summary)
    write_text(out / "scenario.resolved.yaml", resolved_yaml(s))
    write_parquet(out / "shootings.parquet", res.shootings)
    write_parquet(out / "responses.parquet", res.responses)
    write_csv(out / "kpis.csv", res.kpis)
    write_csv(out / "summary.csv", res.summary)
    write_csv(out / "targets.csv", targets)
    info = manifest([s], res.seed, args.replications, 0.0, kind="violence",
                    scenario_file=str(args.scenario), overrides=args.set or [])
    write_text(out / "manifest.json", json.dumps(info, indent=2) + "\n")
    for r in res.summary.itertuples():
        ci = "" if r.ci_low != r.ci_low else f"[{r.ci_low:,.3f}, {r.ci_high:,.3f}]"
        print(f"{r.metric:<40} {r.mean:>14,.3f}  {ci}")
    if len(targets):
        print("\ntargets:")
        for t in targets.itertuples():
            print(f"  {t.metric:<36} published {t.published:g} ± {t.tolerance:g}  simulated {t.mean:,.3f}"
                  f"  {t.verdict}{'' if t.required else '  (not required: ' + str(t.reason) + ')'}")
    print(f"\nwrote {out}/")
    return 0


def _cmd_grid(args) -> int:
    s = load_violence_scenario(args.scenario, args.set)
    try:
        grid = sensitivity_grid(s, replications=args.replications, seed=args.seed)
    except ValueError as e:       # e.g. the scenario has no incident-response program
        from ..scenario import ScenarioError
        raise ScenarioError(str(args.scenario), "programs", str(e)) from None
    out = Path(args.out or Path("results") / f"{Path(args.scenario).stem}_grid")
    write_csv(out / "sensitivity.csv", grid)
    write_text(out / "scenario.resolved.yaml", resolved_yaml(s))
    info = manifest([s], s.seed if args.seed is None else args.seed, args.replications, 0.0,
                    kind="sensitivity", scenario_file=str(args.scenario), overrides=args.set or [])
    write_text(out / "manifest.json", json.dumps(info, indent=2) + "\n")
    fig = plot_sensitivity(grid)
    fig.savefig(out / "sensitivity.png", dpi=120, bbox_inches="tight")
    print(f"wrote {out}/ (sensitivity.csv, sensitivity.png, manifest.json)")
    return 0


def register_cli(subparsers) -> None:
    v = subparsers.add_parser("violence", help="violence-interruption programs (ONS, Cure Violence, focused deterrence)")
    sub = v.add_subparsers(dest="violence_command", required=True)
    for name, func, help_ in (("run", _cmd_run, "run a violence scenario with replications"),
                              ("grid", _cmd_grid, "shootings averted over branching ratio n x interruption effect e")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("scenario")
        p.add_argument("--replications", "-r", type=int, default=10)
        p.add_argument("--seed", type=int, default=None)
        p.add_argument("--out", default=None)
        p.add_argument("--set", action="append", metavar="FIELD=VALUE", default=[])
        p.set_defaults(func=func)
