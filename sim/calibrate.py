"""Calibration: does each program scenario reproduce its published figures?

A scenario's ``targets:`` block lists published figures (metric, published value,
tolerance, source). :func:`calibrate` runs each scenario with replications from a fixed
seed (``sim.experiment.single_run``: every KPI of :func:`sim.metrics.kpis`), adds the
per-pool, per-channel and per-zone counts of :func:`sim.metrics.program_kpis`, and
compares the 95% t-interval of each target's KPI to the band ``published ± tolerance``.
Violence-interruption files (``kind: violence``) are checked the same way on their own KPIs.

* ``within``: the whole interval lies inside the band (the model reproduces the figure,
  and enough replications were run to say so);
* ``outside``: the whole interval lies outside the band (the figure is missed);
* ``inconclusive``: the interval straddles an edge of the band (run more replications).

With one replication there is no interval and the mean alone is compared. A target is met
only when it is ``within``. A target the model cannot honestly meet carries
``required: false`` and its ``reason``; it stays in the table as missed. The check passes
when every required target is met.

Each target states its ``basis`` (:mod:`sim.basis`). The report leads with the
``predicted`` targets only (no input was set from them: "k of n predictions within
tolerance"); ``fitted``, ``input`` and ``derived`` targets follow as consistency checks,
each fitted one naming the parameters the file's ``calibrated:`` mapping set to meet it.

Only the KPIs are kept (no call logs): each replication streams its logs to scratch files
(``sim/calllog.py``), its standard KPIs gathered as the rows are written
(:class:`sim.metrics.StreamTotals`) and the calibration counts read back a batch at a time
(:func:`sim.metrics.program_kpis_from_file`), so memory follows the calls open at once and
the few bytes a call the KPIs keep (~12 for the quantiles; the zone figures are exact sums,
nothing a call), not the whole log.
Replications run in this process (``workers=1``) or in a process pool; replication ``r``
of a scenario always draws from streams keyed by ``(seed, r)``, so the table does not
depend on the number of workers.
"""
from __future__ import annotations

import argparse
import math
import platform
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

from .basis import fitted_params
from .calllog import LogFiles
from .experiment import single_run, validate_any
from .metrics import program_kpis_from_file, summarise
from .results import write_text
from .scenario import Scenario, ScenarioError, apply_overrides, load_raw

COLUMNS = ["scenario", "file", "metric", "published", "tolerance", "mean", "ci_low", "ci_high",
           "replications", "within", "verdict", "required", "source", "reason", "basis", "fitted_params",
           "inputs"]
DEFAULT_OUT = Path("docs/calibration.md")


# --------------------------------------------------------------------------- which files


def _kind(path: Path) -> str | None:
    """Top-level ``kind:`` of a file or of the files it extends (violence models are
    another schema), if any."""
    try:
        data, _ = load_raw(path)
    except ScenarioError:
        return None           # load_scenario will report the problem properly
    return data.get("kind")


def _is_optimize_targets(path: Path) -> bool:
    """An optimizer's targets file (``decisions:`` + ``targets:``, see sim/optimize.py),
    which may sit beside the scenario it optimises but is not a scenario."""
    try:
        data, _ = load_raw(path)
    except ScenarioError:
        return False          # load_scenario will report the problem properly
    return "decisions" in data and "name" not in data


def yaml_files(paths: list[str | Path]) -> list[Path]:
    """Scenario YAML files named, or found under folders (sorted; optimizer targets files
    found in folders are left out)."""
    files: list[Path] = []
    for p in map(Path, paths):
        files.extend([f for f in sorted(p.rglob("*.yaml")) if not _is_optimize_targets(f)] if p.is_dir() else [p])
    return files


def scenario_files(paths: list[str | Path]) -> list[Path]:
    """The crisis-response scenario files among ``paths`` (without ``kind: violence`` files)."""
    return [f for f in yaml_files(paths) if _kind(f) != "violence"]


def load_any(path: str | Path, overrides=None):
    """A scenario file of either kind (crisis response, or ``kind: violence``)."""
    data, positions = load_raw(path)
    return validate_any(apply_overrides(data, overrides, str(path)), str(path), positions)


# --------------------------------------------------------------------------- running


def replicate(scenario: Scenario, seed: int, replication: int) -> dict[str, float]:
    """KPIs of one replication: the standard set plus the calibration counts (violence
    scenarios: their own KPIs)."""
    if getattr(scenario, "kind", None) == "violence":
        from .violence.experiment import single_run as violence_run
        return violence_run(scenario, seed, replication)[3]
    # the logs stream to scratch files (the counts read back a batch at a time): memory
    # follows the calls open at once and what the KPIs keep per call, not the horizon
    with tempfile.TemporaryDirectory(prefix="crisis-sim-calibrate-") as tmp:
        files = LogFiles(Path(tmp) / "calls.parquet", Path(tmp) / "assignments.parquet")
        _, out = single_run(scenario, seed, replication, stream=files)
        out.update(program_kpis_from_file(files.calls.path, scenario.horizon_days))
    return out


def simulate(scenario: Scenario, replications: int, seed: int, workers: int = 1) -> pd.DataFrame:
    """Summary (metric, mean, ci_low, ci_high, replications) of ``replications`` runs."""
    if replications < 1:
        raise ValueError("replications must be at least 1")
    reps = range(replications)
    if workers <= 1 or replications == 1:
        values = [replicate(scenario, seed, r) for r in reps]
    else:
        with ProcessPoolExecutor(max_workers=min(workers, replications)) as pool:
            values = list(pool.map(replicate, [scenario] * replications, [seed] * replications, reps))
    long = pd.DataFrame([{"scenario": scenario.name, "replication": r, "metric": m, "value": v}
                         for r, kv in zip(reps, values) for m, v in kv.items()])
    return summarise(long)


def verdict(published: float, tolerance: float, mean: float, low: float, high: float) -> str:
    """``within`` / ``outside`` / ``inconclusive`` (see module docstring)."""
    lo_band, hi_band = published - tolerance, published + tolerance
    if mean != mean:
        return "no value"
    if low != low or high != high:            # one replication: the mean alone
        return "within" if lo_band <= mean <= hi_band else "outside"
    if lo_band <= low and high <= hi_band:
        return "within"
    if high < lo_band or low > hi_band:
        return "outside"
    return "inconclusive"


def check(scenario: Scenario, summary: pd.DataFrame, file: str = "") -> pd.DataFrame:
    """One row per target of ``scenario`` against a simulated ``summary``."""
    by_metric = summary.set_index("metric")
    rows = []
    for t in scenario.targets:
        if t.metric in by_metric.index:
            r = by_metric.loc[t.metric]
            m, lo, hi, n = float(r["mean"]), float(r["ci_low"]), float(r["ci_high"]), int(r["replications"])
        else:
            m = lo = hi = math.nan
            n = 0
        v = verdict(t.published, t.tolerance, m, lo, hi)
        reason = _one_line(t.reason or "")
        if n == 0:
            reason = (reason + "; " if reason else "") + f"the model produced no KPI '{t.metric}'"
        rows.append({"scenario": scenario.name, "file": file, "metric": t.metric, "published": t.published,
                     "tolerance": t.tolerance, "mean": m, "ci_low": lo, "ci_high": hi, "replications": n,
                     "within": v == "within", "verdict": v, "required": t.required, "source": _one_line(t.source),
                     "reason": reason, "basis": t.basis or "unstated",
                     "fitted_params": ", ".join(fitted_params(scenario, t)), "inputs": ", ".join(t.inputs)})
    return pd.DataFrame(rows, columns=COLUMNS)


def calibrate(paths: list[str | Path], replications: int = 10, seed: int | None = None,
              overrides: dict[str, Any] | list[str] | None = None, workers: int = 1,
              progress=None) -> pd.DataFrame:
    """Run every scenario file with targets (folders are searched) and check its targets.

    ``seed`` defaults to each scenario's own ``seed``; ``overrides`` (``--set``) apply to
    every file, e.g. ``{"horizon_days": 90}`` for a quick check: every calibration KPI is
    a rate or a share, so shorter horizons estimate the same quantities with wider
    intervals (except counts of distinct people, which grow with the horizon).
    Returns the table of :data:`COLUMNS` (empty if no file has targets).
    """
    frames = []
    for f in yaml_files(paths):
        s = load_any(f, overrides)
        if not s.targets:
            continue
        summary = simulate(s, replications, s.seed if seed is None else seed, workers)
        frames.append(check(s, summary, str(f)))
        if progress:
            progress(f, s)
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat(frames, ignore_index=True)


def passed(table: pd.DataFrame) -> bool:
    """Every required target within tolerance."""
    req = table[table["required"].astype(bool)]
    return bool(req["within"].astype(bool).all())


def predictions(table: pd.DataFrame) -> pd.DataFrame:
    """The rows whose basis is ``predicted`` (the only ones that validate anything)."""
    return table[table["basis"] == "predicted"]


def headline(table: pd.DataFrame) -> str:
    """"k of n predictions within tolerance" (predicted targets only)."""
    pred = predictions(table)
    return f"{int(pred['within'].sum())} of {len(pred)} predictions within tolerance"


# --------------------------------------------------------------------------- report


def _num(x: float) -> str:
    if x != x:
        return "–"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.4g}"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _row(r, with_scenario: bool) -> str:
    ci = "" if r.ci_low != r.ci_low else f" [{_num(r.ci_low)}, {_num(r.ci_high)}]"
    gate = not with_scenario and not r.required           # predictions never gate: no "not required"
    note = r.source + (f" — **not required:** {r.reason}" if r.reason and gate else
                       (f" — {r.reason}" if r.reason else ""))
    basis = r.basis + (f" ({r.fitted_params})" if r.fitted_params else "")
    cells = ([r.scenario] if with_scenario else []) + [
        f"`{r.metric}`", f"{_num(r.published)} ± {_num(r.tolerance)}", f"{_num(r.mean)}{ci}", r.verdict,
        *([] if with_scenario else [basis, "yes" if r.required else "no"]), note]
    return "| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |"


def markdown(table: pd.DataFrame, replications: int, seed: int | None, overrides=None) -> str:
    """The calibration table as Markdown (docs/calibration.md): predictions first, then
    the consistency checks (fitted, input, derived targets) file by file."""
    lines = ["# Calibration", "",
             "Generated by `crisis-sim calibrate-check`; do not edit by hand. Each target's KPI is "
             "simulated with replications from a fixed seed; *within* means the 95% interval lies "
             "inside published ± tolerance, *outside* that it lies wholly outside, *inconclusive* "
             "that it straddles an edge. Each target states its basis (`sim/basis.py`): only a "
             "*predicted* target, one no input was set from, tests the model; *fitted* (a parameter "
             "was set to meet it, named in brackets), *input* (arithmetic on an input) and *derived* "
             "(true by construction) targets are consistency checks. Targets marked not required are "
             "figures the model cannot honestly reproduce, or predictions that never gate; the reason is given.", "",
             f"- replications per scenario: {replications}",
             f"- seed: {'each scenario’s own `seed`' if seed is None else seed}",
             f"- overrides: {overrides or 'none (each file as written)'}",
             f"- python {platform.python_version()} on {platform.machine()}", ""]
    if table.empty:
        return "\n".join(lines + ["No scenario with targets.", ""])
    req = table[table["required"].astype(bool)]
    checks = table[table["basis"] != "predicted"]
    counts = ", ".join(f"{int((checks['basis'] == b).sum())} {b}" for b in ("fitted", "input", "derived", "unstated")
                       if (checks["basis"] == b).any())
    lines += [f"**{headline(table)}**.", "",
              f"Consistency checks (not validation): {int(checks['within'].sum())} of {len(checks)} met "
              f"({counts}); {int(req['within'].sum())} of {len(req)} required targets met"
              f"{'' if passed(table) else ' — CHECK FAILS'}.", "",
              "## Predictions", "",
              "Targets no input was set from; each is reported whether it hits or misses "
              "(predictions with input uncertainty and charts: `docs/validation.md`).", ""]
    pred = predictions(table)
    if pred.empty:
        lines += ["No predicted target.", ""]
    else:
        lines += ["| scenario | metric | published ± tolerance | simulated mean [95% CI] | result | source / reason |",
                  "|---|---|---|---|---|---|"]
        lines += [_row(r, True) for r in pred.itertuples()]
        lines.append("")
    lines += ["## Consistency checks", ""]
    for (name, file), g in checks.groupby(["scenario", "file"], sort=False):
        lines += [f"### {name}", "", f"`{file}`", "",
                  "| metric | published ± tolerance | simulated mean [95% CI] | result | basis | required | source / reason |",
                  "|---|---|---|---|---|---|---|"]
        lines += [_row(r, False) for r in g.itertuples()]
        lines.append("")
    return "\n".join(lines)


def write_report(table: pd.DataFrame, out: str | Path, replications: int, seed: int | None,
                 overrides=None) -> None:
    write_text(Path(out), markdown(table, replications, seed, overrides))


# --------------------------------------------------------------------------- CLI


def _cmd_calibrate(args) -> int:
    def progress(f, s):
        if not args.quiet:
            print(f"  ran {f} ({s.name})", file=sys.stderr)

    table = calibrate(args.paths, args.replications, args.seed, args.set, args.workers, progress)
    write_report(table, args.out, args.replications, args.seed, args.set)
    for r in table.itertuples():
        ci = "" if r.ci_low != r.ci_low else f" [{_num(r.ci_low)}, {_num(r.ci_high)}]"
        flag = "ok  " if r.within else ("MISS" if r.required else "miss")
        print(f"{flag} {r.scenario[:38]:<38} {r.metric:<42} {_num(r.published):>9} ± {_num(r.tolerance):<7} "
              f"{_num(r.mean):>9}{ci}")
    ok = passed(table)
    print(f"\n{headline(table)}")
    print(f"{'ok' if ok else 'FAILED'}: {int(table['within'][table['required'].astype(bool)].sum())} of "
          f"{int(table['required'].astype(bool).sum())} required targets met; wrote {args.out}")
    return 0 if ok else 1


def register_cli(sub) -> None:
    """Add ``calibrate-check [PATHS...]`` to a CLI's subparsers."""
    c = sub.add_parser("calibrate-check", help="run scenarios with targets and compare them to published "
                                               "figures; exit 1 when a required target is missed")
    c.add_argument("paths", nargs="*", default=["scenarios"], help="scenario files or folders (default scenarios/)")
    c.add_argument("--replications", "-r", type=int, default=10)
    c.add_argument("--seed", type=int, default=None, help="default: each scenario's own seed")
    c.add_argument("--out", default=str(DEFAULT_OUT), help=f"Markdown table (default {DEFAULT_OUT})")
    c.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    c.add_argument("--set", action="append", metavar="FIELD=VALUE", default=[],
                   help="override a field in every scenario, e.g. horizon_days=90 (repeatable)")
    c.add_argument("--quiet", action="store_true")
    c.set_defaults(func=_cmd_calibrate)


def main(argv: list[str] | None = None) -> int:
    """``python -m sim.calibrate ...`` until the command is wired into ``sim.cli``."""
    p = argparse.ArgumentParser(prog="crisis-sim")
    register_cli(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(["calibrate-check", *(argv if argv is not None else sys.argv[1:])])
    try:
        return args.func(args)
    except ScenarioError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
