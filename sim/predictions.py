"""Predictive validation: figures the model was never fitted to (``crisis-sim validate-predictions``).

For every scenario file with ``basis: predicted`` targets, :func:`predict` gives two
intervals for each target's KPI:

* the 95% t-interval of the mean over ``replications`` runs of the file as written
  (simulation noise only; its verdict is calibrate-check's: within / outside / inconclusive);
* a 95% prediction interval with input uncertainty: ``samples`` Latin-hypercube points
  over the file's ``ranges:`` (:func:`sim.sensitivity.sample_inputs`), one replication
  each (replication ``i`` for point ``i``), and the 2.5th-97.5th percentiles of the KPI.
  ``covered`` says whether the published band meets that interval.

Every prediction is reported, hit or miss. :func:`write_report` writes
``docs/validation.md`` with the table and charts (predicted against published, and the
Denver curve of share served against STAR team-hours a week); the hand-written section
between ``<!-- notes:start -->`` and ``<!-- notes:end -->`` (the reason for each miss) is
kept when the file is regenerated.
"""
from __future__ import annotations

import platform
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from .argtypes import positive_int, seed as seed_type
from .basis import resolve
from .calibrate import _num, _one_line, load_any, replicate, simulate, verdict, yaml_files
from .results import write_csv, write_text
from .sensitivity import parse_sets, sample_inputs

DEFAULT_PATHS = ["scenarios"]
DEFAULT_OUT = Path("docs/validation.md")
NOTES = ("<!-- notes:start -->", "<!-- notes:end -->")
COLUMNS = ["scenario", "file", "metric", "published", "tolerance", "mean", "ci_low", "ci_high", "replications",
           "verdict", "pi_low", "pi_high", "samples", "covered", "team_hours_per_week", "source"]


def team_hours_per_week(scenario, pool: str) -> float:
    """Staffed team-hours a week of ``pool`` (its weekly schedule)."""
    return scenario.pools[pool].schedule().team_minutes(0, 7 * 1440) / 60.0


def _pool_of(metric: str, scenario) -> str | None:
    parts = metric.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in getattr(scenario, "pools", {}) else None


def predict_file(path: str | Path, replications: int = 10, samples: int = 20, seed: int | None = None,
                 overrides: dict | None = None, workers: int = 1) -> pd.DataFrame:
    """The predicted targets of one file (empty if none): see the module docstring."""
    s = load_any(path, overrides)
    targets = [t for t in s.targets if t.basis == "predicted"]
    if not targets:
        return pd.DataFrame(columns=COLUMNS)
    seed = s.seed if seed is None else seed
    summary = simulate(s, replications, seed, workers).set_index("metric")
    data = s.model_dump()
    nominal = {p: resolve(data, p) for p in s.ranges}
    points = sample_inputs(dict(s.ranges), nominal, samples, seed)
    draws = []
    for i, point in enumerate(points):
        kv = replicate(load_any(path, {**(overrides or {}), **point}), seed, i)
        draws.append(kv)
    rows = []
    for t in targets:
        if t.metric in summary.index:
            r = summary.loc[t.metric]
            m, lo, hi, n = float(r["mean"]), float(r["ci_low"]), float(r["ci_high"]), int(r["replications"])
        else:
            m = lo = hi = float("nan")
            n = 0
        vals = np.array([d.get(t.metric, np.nan) for d in draws], dtype=float)
        vals = vals[~np.isnan(vals)]
        p_lo, p_hi = (np.percentile(vals, [2.5, 97.5]) if len(vals) else (np.nan, np.nan))
        band = (t.published - t.tolerance, t.published + t.tolerance)
        pool = _pool_of(t.metric, s)
        rows.append({"scenario": s.name, "file": str(path), "metric": t.metric, "published": t.published,
                     "tolerance": t.tolerance, "mean": m, "ci_low": lo, "ci_high": hi, "replications": n,
                     "verdict": verdict(t.published, t.tolerance, m, lo, hi), "pi_low": float(p_lo),
                     "pi_high": float(p_hi), "samples": len(vals),
                     "covered": bool(len(vals) and p_lo <= band[1] and p_hi >= band[0]),
                     "team_hours_per_week": team_hours_per_week(s, pool) if pool else np.nan,
                     "source": _one_line(t.source)})
    return pd.DataFrame(rows, columns=COLUMNS)


def predict(paths: list[str | Path], replications: int = 10, samples: int = 20, seed: int | None = None,
            overrides: dict | None = None, workers: int = 1, progress=None) -> pd.DataFrame:
    """:func:`predict_file` for every YAML file under ``paths`` with predicted targets."""
    frames = []
    for f in yaml_files(paths):
        s = load_any(f, overrides)
        if not any(t.basis == "predicted" for t in s.targets):
            continue
        frames.append(predict_file(f, replications, samples, seed, overrides, workers))
        if progress:
            progress(f)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)


# --------------------------------------------------------------------------- charts and report


def _savefig(fig, out: Path) -> None:
    import matplotlib.pyplot as plt
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out)


def chart_predictions(table: pd.DataFrame, out: str | Path) -> Path:
    """Each prediction as a ratio to its published figure: the published band (grey), the
    prediction interval with input uncertainty (line) and the mean of the file as written (dot)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    out = Path(out)
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(table) + 2.0))
    for i, r in enumerate(table.itertuples()):
        p = r.published
        ax.barh(i, 2 * r.tolerance / p, left=(p - r.tolerance) / p, color="#cccccc", height=0.6,
                label="published ± tolerance" if i == 0 else None)
        ax.plot([r.pi_low / p, r.pi_high / p], [i, i], color="#4c72b0", lw=2,
                label="95% prediction interval (input ranges)" if i == 0 else None)
        ax.plot(r.mean / p, i, "o", color="#c44e52", label="file as written (mean)" if i == 0 else None)
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_yticks(range(len(table)), [f"{Path(r.file).parent.name}/{Path(r.file).stem}\n{r.metric}"
                                      for r in table.itertuples()], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("predicted / published")
    ax.set_title("Predictions against published figures", fontsize=9)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, frameon=False)
    fig.tight_layout()
    _savefig(fig, out)
    return out


def chart_curve(table: pd.DataFrame, metric: str, out: str | Path, title: str) -> Path | None:
    """Share served (``metric``) against team-hours a week, predicted and published."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    g = table[(table["metric"] == metric) & table["team_hours_per_week"].notna()].sort_values("team_hours_per_week")
    if len(g) < 2:
        return None
    out = Path(out)
    fig, ax = plt.subplots(figsize=(6, 4))
    x = g["team_hours_per_week"].to_numpy()
    ax.fill_between(x, g["pi_low"], g["pi_high"], color="#4c72b0", alpha=0.2, label="95% prediction interval")
    ax.plot(x, g["mean"], "o-", color="#4c72b0", label="predicted (file as written)")
    ax.errorbar(x, g["published"], yerr=g["tolerance"], fmt="s", color="black", capsize=4, label="published")
    for r in g.itertuples():
        ax.annotate(r.scenario.split("(")[0].split("—")[-1].strip(), (r.team_hours_per_week, r.published),
                    textcoords="offset points", xytext=(5, -12), fontsize=7)
    ax.set_xlabel("STAR team-hours a week")
    ax.set_ylabel(metric)
    ax.set_ylim(0, 1.05 if g["pi_high"].max() <= 1 else None)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    _savefig(fig, out)
    return out


def markdown(table: pd.DataFrame, replications: int, samples: int, charts: list[Path], notes: str) -> str:
    hits = int((table["verdict"] == "within").sum())
    covered = int(table["covered"].sum())
    lines = ["# Predictive validation", "",
             "Generated by `crisis-sim validate-predictions`; the notes section is written by hand and kept "
             "when the file is regenerated. Each row is a published figure no input of its file was set from "
             "(`basis: predicted`); every one is reported, hit or miss. *simulated* is the mean of the file as "
             "written with its 95% interval over replications (simulation noise); *result* is calibrate-check's "
             "verdict on it. *with input uncertainty* is the 2.5th-97.5th percentile over a Latin hypercube of "
             "the file's `ranges:` (one replication per point); *covers* says whether that interval meets the "
             "published band.", "",
             f"- replications (file as written): {replications}; input samples: {samples}",
             f"- python {platform.python_version()} on {platform.machine()}", "",
             f"**{hits} of {len(table)} predictions within tolerance** (file as written); "
             f"{covered} of {len(table)} published figures inside the interval with input uncertainty.", "",
             "| scenario | metric | published ± tolerance | simulated mean [95% CI] | result | with input uncertainty | covers | source |",
             "|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        ci = "" if r.ci_low != r.ci_low else f" [{_num(r.ci_low)}, {_num(r.ci_high)}]"
        lines.append(f"| {r.scenario} | `{r.metric}` | {_num(r.published)} ± {_num(r.tolerance)} | {_num(r.mean)}{ci} "
                     f"| {r.verdict} | [{_num(r.pi_low)}, {_num(r.pi_high)}] | {'yes' if r.covered else 'no'} "
                     f"| {r.source.replace('|', '/')} |")
    lines.append("")
    for c in charts:
        lines += [f"![{c.stem}](validation/{c.name})", ""]
    lines += [NOTES[0], notes.strip("\n"), NOTES[1], ""]
    return "\n".join(lines)


def _old_notes(out: Path) -> str:
    if not out.exists():
        return "\n## Why each prediction hits or misses\n\n(not written yet)\n"
    text = out.read_text(encoding="utf-8")
    if NOTES[0] in text and NOTES[1] in text:
        return text.split(NOTES[0], 1)[1].split(NOTES[1], 1)[0]
    return "\n(not written yet)\n"


def write_report(table: pd.DataFrame, out: str | Path, replications: int, samples: int) -> list[Path]:
    """docs/validation.md, its charts and the table as CSV (in a ``validation/`` folder beside it)."""
    out = Path(out)
    folder = out.parent / "validation"
    charts = [chart_predictions(table, folder / "predictions.png")]
    curve = chart_curve(table, "pool_share.star", folder / "denver_share_served.png",
                        "Denver STAR: share of eligible calls served against capacity")
    if curve:
        charts.append(curve)
    write_csv(folder / "predictions.csv", table)
    write_text(out, markdown(table, replications, samples, charts, _old_notes(out)))
    return charts


# --------------------------------------------------------------------------- CLI


def _cmd(args) -> int:
    overrides = parse_sets(args.set)
    table = predict(args.paths, args.replications, args.samples, args.seed, overrides or None, args.workers,
                    None if args.quiet else (lambda f: print(f"  predicted {f}", file=sys.stderr)))
    if table.empty:
        print("no predicted targets found")
        return 0
    write_report(table, args.out, args.replications, args.samples)
    for r in table.itertuples():
        print(f"{'hit ' if r.verdict == 'within' else 'miss'} {r.scenario[:40]:<40} {r.metric:<28} "
              f"published {_num(r.published)} ± {_num(r.tolerance)}; predicted {_num(r.mean)} "
              f"[{_num(r.pi_low)}, {_num(r.pi_high)}]")
    print(f"\n{int((table['verdict'] == 'within').sum())} of {len(table)} predictions within tolerance; "
          f"wrote {args.out}")
    return 0


def register_cli(sub) -> None:
    """Add ``validate-predictions [PATHS...]`` to a CLI's subparsers."""
    c = sub.add_parser("validate-predictions", help="run the predicted targets with input uncertainty and "
                                                    "write docs/validation.md (reports hits and misses; exit 0)")
    c.add_argument("paths", nargs="*", default=DEFAULT_PATHS)
    c.add_argument("--replications", "-r", type=positive_int, default=10)
    c.add_argument("--samples", "-n", type=positive_int, default=20, help="Latin-hypercube points over ranges:")
    c.add_argument("--seed", type=seed_type, default=None)
    c.add_argument("--workers", type=positive_int, default=1)
    c.add_argument("--set", action="append", metavar="FIELD=VALUE", default=[])
    c.add_argument("--out", default=str(DEFAULT_OUT))
    c.add_argument("--quiet", action="store_true")
    c.set_defaults(func=_cmd)
