"""One self-contained HTML report for a working group, from results folders.

``build_report([dir1, dir2, ...], "report.html")`` reads the folders that ``crisis-sim run``
writes (``summary.csv``, ``kpis.csv``, ``calls.parquet``, ``hourly.parquet``,
``pools.parquet``, ``scenario.resolved.yaml``, ``manifest.json``; and, where present,
``occupancy.parquet`` and ``facilities.parquet`` from after-care), and the folders that
``crisis-sim compare`` / ``sweep`` write (``manifest.json`` with ``kind``, ``summary.csv``
over scenarios or sweep points, ``differences.csv``), and writes one HTML file with:

* a plain-language paragraph per scenario, and per comparison with the first scenario;
* KPI tables with 95% intervals;
* the charts of :mod:`sim.plots`, embedded as base64 PNG;
* each scenario's description, assumptions and sources, and its run manifest.

The file needs no network and no JavaScript: no external URL, no script, no stylesheet
link. Every piece of text that comes from a scenario file or a results folder is escaped
with :func:`html.escape`. The first folder is the baseline of comparisons; paired
differences (same seed and replication numbers, so common random numbers) come from the
per-replication ``kpis.csv`` through :func:`sim.metrics.t_interval`.
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from . import __version__, plots
from .metrics import t_interval
from .results import atomic_write, write_text
from .experiment import validate_any
from .scenario import Scenario, ScenarioError

HEADLINE = ["eligible_diversion_rate", "fallback_rate", "diversion_rate", "response_time_p50",
            "response_time_p90", "response_time_mean", "queue_wait_mean", "police_hours",
            "police_backup_rate", "no_response_rate", "calls_per_day"]
FOREST_METRICS = ["eligible_diversion_rate", "fallback_rate", "response_time_p90", "police_hours"]


class ReportError(ValueError):
    """A folder the report cannot use; ``str()`` is one line for the planner."""


@dataclass
class RunFolder:
    """What one results folder holds (missing files are None)."""

    path: Path
    name: str
    kind: str                       # run (one scenario), compare or sweep (manifest "kind")
    raw: dict                       # scenario.resolved.yaml as a mapping
    scenario: Scenario | None       # the same, validated (None if it no longer validates)
    manifest: dict
    summary: pd.DataFrame | None = None
    kpis: pd.DataFrame | None = None
    calls: pd.DataFrame | None = None
    pools: pd.DataFrame | None = None
    hourly: pd.DataFrame | None = None
    occupancy: pd.DataFrame | None = None
    facilities: pd.DataFrame | None = None
    compare: pd.DataFrame | None = None
    sweep: pd.DataFrame | None = None
    sensitivity: pd.DataFrame | None = None    # violence n x e grid
    notes: list[str] = field(default_factory=list)


def _read(path: Path) -> pd.DataFrame | None:
    if not path.exists():
        return None
    return _load_file(path, pd.read_parquet if path.suffix == ".parquet" else pd.read_csv)


def _load_file(path: Path, read, kind: type | None = None):
    """``read(path)``, or a one-line ReportError if the file is damaged (cut short, not
    UTF-8, not the format its name says) or holds the wrong kind of value."""
    try:
        value = read(path)
    except (OSError, ValueError, UnicodeDecodeError, yaml.YAMLError) as e:   # JSON, CSV, Arrow errors are ValueErrors
        why = (str(e).splitlines() or [""])[0][:160]
        raise ReportError(f"{path}: cannot be read ({type(e).__name__}: {why}); the file is damaged: "
                          "rerun the command that wrote this folder") from None
    if kind is not None and not isinstance(value, kind):
        raise ReportError(f"{path}: holds a {type(value).__name__}, not a {kind.__name__}; the file is "
                          "damaged: rerun the command that wrote this folder")
    return value


def _yaml_mapping(path: Path) -> dict:
    return _load_file(path, lambda p: yaml.safe_load(p.read_text(encoding="utf-8")) or {}, dict)


def load_results(path: str | Path) -> RunFolder:
    """Read one results folder; raises :class:`ReportError` if it is not one."""
    path = Path(path)
    if not path.is_dir():
        raise ReportError(f"{path}: not a folder (give the results folder a run wrote)")
    files = {p.name for p in path.iterdir()}
    if "summary.csv" not in files and "sensitivity.csv" not in files:
        raise ReportError(f"{path}: no summary.csv: not a results folder")
    raw: dict = {}
    scenario = None
    if "scenario.resolved.yaml" in files:
        raw = _yaml_mapping(path / "scenario.resolved.yaml")
        try:
            scenario = validate_any(dict(raw), str(path / "scenario.resolved.yaml"), None)
        except ScenarioError:
            scenario = None
    manifest = _load_file(path / "manifest.json", lambda p: json.loads(p.read_text(encoding="utf-8")), dict) \
        if "manifest.json" in files else {}
    f = RunFolder(path=path, name=str(raw.get("name") or (manifest.get("scenarios") or [path.name])[0]),
                  kind=str(manifest.get("kind") or "run"), raw=raw, scenario=scenario, manifest=manifest)
    for attr, fname in (("summary", "summary.csv"), ("kpis", "kpis.csv"), ("calls", "calls.parquet"),
                        ("pools", "pools.parquet"), ("hourly", "hourly.parquet"),
                        ("occupancy", "occupancy.parquet"), ("facilities", "facilities.parquet"),
                        ("compare", "differences.csv"), ("sensitivity", "sensitivity.csv")):
        setattr(f, attr, _read(path / fname))
    if f.kind == "sweep":
        f.sweep = f.summary
    if f.kind != "run" and manifest.get("scenarios"):
        f.name = ", ".join(map(str, manifest["scenarios"][:3])) + (" ..." if len(manifest["scenarios"]) > 3 else "")
    return f


# --------------------------------------------------------------------------- numbers -> words


def fmt_value(metric: str, v: float) -> str:
    """A KPI value in its unit: shares as percentages, minutes with one decimal."""
    if v is None or v != v:
        return "–"
    unit = plots.metric_label(metric)[1]
    if unit == "%":
        return f"{v:.1%}" if abs(v) < 0.1 else f"{v:.0%}"
    if unit == "min":
        return f"{v:,.1f} min"
    return f"{v:,.1f}" if abs(v) < 100 else f"{v:,.0f}"


def fmt_interval(metric: str, mean: float, lo: float, hi: float) -> str:
    """'71% [68–74%]' (interval left out when it is undefined)."""
    m = fmt_value(metric, mean)
    if lo != lo or hi != hi:
        return m
    unit = plots.metric_label(metric)[1]
    if unit == "%":
        return f"{m} [{lo:.0%}–{hi:.0%}]".replace("%–", "–") if abs(mean) >= 0.1 else \
            f"{m} [{lo:.1%}–{hi:.1%}]".replace("%–", "–")
    return f"{m} [{fmt_value(metric, lo).removesuffix(' min')}–{fmt_value(metric, hi)}]"


def _kpi(summary: pd.DataFrame | None, metric: str) -> tuple[float, float, float]:
    if summary is None:
        return math.nan, math.nan, math.nan
    row = summary[summary["metric"] == metric]
    if row.empty:
        return math.nan, math.nan, math.nan
    r = row.iloc[0]
    return float(r["mean"]), float(r["ci_low"]), float(r["ci_high"])


def fallback_window(calls: pd.DataFrame, share: float = 0.5) -> tuple[int, int, float] | None:
    """The shortest stretch of the day (whole hours, may wrap midnight) in which at least
    ``share`` of the eligible calls that fell back to police arrived: (start hour, end hour,
    share in it); None if no call fell back."""
    c = calls[~calls["warmup"].to_numpy(bool)] if "warmup" in calls else calls
    fell = c["eligible"].to_numpy(bool) & c["fallback"].to_numpy(bool) & c["police_pool"].to_numpy(bool)
    hours = (np.floor_divide(c["t_received"].to_numpy(float)[fell], 60) % 24).astype(int)
    counts = np.bincount(hours, minlength=24)
    total = counts.sum()
    if total == 0:
        return None
    twice = np.concatenate([counts, counts])
    for width in range(1, 25):
        sums = np.array([twice[s:s + width].sum() for s in range(24)])
        best = int(np.argmax(sums))
        if sums[best] >= share * total:
            return best, (best + width) % 24, float(sums[best] / total)
    return 0, 0, 1.0  # pragma: no cover (width 24 always holds everything)


def staffing_phrase(s: Scenario | None) -> str:
    """'3 crisis teams on duty around the clock' from the alternative pools' schedules (pool
    names without a trailing 'team': crisis_team -> crisis)."""
    if s is None:
        return "this staffing"
    parts = []
    for name, pool in s.pools.items():
        if s.pool_is_police(name):
            continue
        sched = pool.schedule()
        lo, hi = int(sched.per_minute.min()), sched.max_teams
        team_hours = sched.per_minute.sum() / 60.0
        label = re.sub(r"[_ ]?teams?$", "", name).replace("_", " ")      # crisis_team -> crisis
        label = f"{label} " if label else ""
        if lo == hi:
            parts.append(f"{hi} {label}team{'s' if hi != 1 else ''} on duty around the clock")
        else:
            span = f"up to {hi}" if lo == 0 else f"{lo}–{hi}"
            parts.append(f"{span} {label}teams on shifts ({team_hours:,.0f} team-hours a week)")
    return " and ".join(parts) if parts else "police units only"


def _pct(v: float) -> str:
    return f"{v:.0%}"


def _reps_phrase(f: RunFolder) -> str:
    reps = int(f.summary["replications"].max()) if f.summary is not None and len(f.summary) else 0
    days = f.raw.get("horizon_days")
    if not reps:
        return ""
    return (f"Based on {reps} replication{'s' if reps != 1 else ''}"
            + (f" of {days:g} days" if isinstance(days, (int, float)) else "") + "; "
            "brackets are 95% intervals across replications.")


def violence_paragraph(f: RunFolder) -> str:
    """Plain-language summary of a violence-interruption scenario (plain text)."""
    base = _kpi(f.summary, "counterfactual_per_year")
    off = _kpi(f.summary, "offspring_share")[0]
    averted = _kpi(f.summary, "shootings_averted_per_year")
    red = _kpi(f.summary, "reduction")
    out = []
    if base[0] == base[0]:
        out.append(f"Without a program the model gives {fmt_interval('shootings', *base)} shootings a year"
                   + (f", {off:.0%} of them retaliations" if off == off else "") + ". ")
    if averted[0] == averted[0] and averted[0] > 0:
        share = f"{red[0]:.0%}" + (f" [{red[1]:.0%}–{red[2]:.0%}]" if red[1] == red[1] else "")
        out.append(f"The program averts {fmt_interval('shootings', *averted)} a year ({share} of all shootings). ")
        r1 = _kpi(f.summary, "reached_24h.scene")[0]
        if r1 == r1:
            out.append(f"{r1:.0%} of shootings are reached by an interrupter within 24 h. ")
    elif base[0] == base[0]:
        out.append("This is the no-program counterfactual. ")
    out.append("How contagious shootings are (the branching ratio n) drives every figure: read "
               "them with the sensitivity grid. " + _reps_phrase(f))
    return "".join(out)


def scenario_paragraph(f: RunFolder) -> str:
    """The plain-language summary of one scenario (plain text, not yet escaped)."""
    if f.raw.get("kind") == "violence":
        return violence_paragraph(f)
    edr = _kpi(f.summary, "eligible_diversion_rate")
    fb = _kpi(f.summary, "fallback_rate")
    p50, p90 = _kpi(f.summary, "response_time_p50")[0], _kpi(f.summary, "response_time_p90")[0]
    out = [f"With {staffing_phrase(f.scenario)}, "]
    if edr[0] == edr[0]:
        out.append(f"{fmt_interval('eligible_diversion_rate', *edr)} of eligible calls are handled "
                   f"without police")
        if fb[0] == fb[0]:
            out.append(f"; {fmt_interval('fallback_rate', *fb)} fall back to police because no team "
                       f"was free in time")
            win = fallback_window(f.calls) if f.calls is not None and fb[0] > 0 else None
            if win and (win[1] - win[0]) % 24 <= 8:
                end = "midnight" if win[1] == 0 else f"{win[1]:02d}:00"
                out.append(f", {win[2]:.0%} of them between {win[0]:02d}:00 and {end}")
            elif win:
                out.append(", spread across the day rather than at one time")
        out.append(". ")
    else:
        out.append("no call is eligible for an alternative response. ")
    if p50 == p50:
        out.append(f"Half of the answered calls have help on scene within {p50:.0f} min, "
                   f"90% within {p90:.0f} min. ")
    out.append(_reps_phrase(f))
    return "".join(out)


def sensitivity_paragraph(grid: pd.DataFrame, metric: str = "reduction") -> str:
    """How much the result depends on the branching ratio n, from an n x e grid (plain text)."""
    g = grid[grid["metric"] == metric]
    if g.empty:
        return "The grid holds no reduction figures."
    top_e = g["e"].max()
    at = g[g["e"] == top_e].sort_values("n")
    lo, hi = at.iloc[0], at.iloc[-1]
    return (f"With an interruption effect of e = {top_e:g}, the program prevents {lo['mean']:.0%} of shootings "
            f"if violence is barely contagious (n = {lo['n']:g}) and {hi['mean']:.0%} if it is highly "
            f"contagious (n = {hi['n']:g}). The branching ratio n is uncertain (published estimates span "
            f"about 0.1 to 0.63), so any single figure should be read against this range.")


def compare_table(folders: list[RunFolder]) -> pd.DataFrame:
    """KPI means and intervals per scenario, and differences to the first scenario.

    Columns: scenario, metric, mean, ci_low, ci_high, diff_mean, diff_ci_low, diff_ci_high,
    replications, paired. Differences are paired by replication number when both runs used
    the same seed (common random numbers); otherwise only the difference of means is given.
    """
    base = folders[0]
    rows = []
    for f in folders:
        if f.kpis is None:
            continue
        paired = f is not base and base.kpis is not None and \
            f.manifest.get("seed") == base.manifest.get("seed") and f.manifest.get("seed") is not None
        for metric, g in f.kpis.groupby("metric", sort=False):
            m, lo, hi = t_interval(g["value"])
            d = (math.nan,) * 3
            if f is not base and base.kpis is not None:
                b = base.kpis[base.kpis["metric"] == metric].set_index("replication")["value"]
                v = g.set_index("replication")["value"]
                if paired:
                    common = v.index.intersection(b.index)
                    d = t_interval(v[common] - b[common]) if len(common) else d
                elif len(b):
                    d = (m - float(b.mean()), math.nan, math.nan)
            rows.append({"scenario": f.name, "metric": metric, "mean": m, "ci_low": lo, "ci_high": hi,
                         "diff_mean": d[0], "diff_ci_low": d[1], "diff_ci_high": d[2],
                         "replications": int(g["value"].notna().sum()), "paired": bool(paired)})
    return pd.DataFrame(rows, columns=["scenario", "metric", "mean", "ci_low", "ci_high", "diff_mean",
                                       "diff_ci_low", "diff_ci_high", "replications", "paired"])


def _diff_phrase(metric: str, d: float, lo: float, hi: float, more: str, less: str) -> str:
    """'19.1 percentage points more [+17.0 to +21.3]'; 'the same' for an exact zero."""
    unit = plots.metric_label(metric)[1]
    scale, suffix = (100.0, " percentage points") if unit == "%" else (1.0, f" {unit}" if unit else "")
    if d == 0 and (lo != lo or lo == hi == 0):
        return "the same"
    word = more if d >= 0 else less
    text = f"{abs(d) * scale:.1f}{suffix} {word}"
    if lo == lo:
        text += f" [{lo * scale:+.1f} to {hi * scale:+.1f}]"
        if lo <= 0 <= hi:
            text += " (not distinguishable from no difference)"
    return text


def comparison_paragraph(table: pd.DataFrame, base: str, name: str) -> str:
    """Plain-language difference of one scenario to the baseline (plain text); ``table`` in
    either layout :func:`sim.plots.differences` reads."""
    rows = plots.differences(table)[1]
    rows = rows[rows["scenario"].astype(str) == name].set_index("metric")

    def get(metric):
        if metric not in rows.index:
            return None
        r = rows.loc[metric]
        return float(r["diff_mean"]), float(r["diff_ci_low"]), float(r["diff_ci_high"])

    parts = []
    d = get("eligible_diversion_rate")
    if d and d[0] == d[0]:
        parts.append(f"handles {_diff_phrase('eligible_diversion_rate', *d, 'more', 'fewer')} of eligible "
                     f"calls without police")
    d = get("response_time_p90")
    if d and d[0] == d[0]:
        parts.append(f"its 90th-percentile response time is {_diff_phrase('response_time_p90', *d, 'longer', 'shorter')}")
    d = get("police_hours")
    if d and d[0] == d[0]:
        parts.append(f"police time on calls is {_diff_phrase('police_hours', *d, 'more', 'less')}")
    d = get("shootings")
    if d and d[0] == d[0]:
        parts.append(f"has {_diff_phrase('shootings', *d, 'more', 'fewer')} shootings")
        for metric, what in (("retaliations_averted", "retaliations"), ("background_averted", "background shootings")):
            d = get(metric)
            if d and d[0] == d[0]:
                parts.append(f"{_diff_phrase(metric, *d, 'more', 'fewer')} {what} averted")
    if not parts:
        return f"No shared KPIs to compare '{name}' with '{base}'."
    if "paired" not in rows:
        how = "Differences are paired by replication; brackets are 95% intervals."
    elif rows["paired"].any():
        how = ("Differences are paired by replication (same seed: both scenarios see the same calls); "
               "brackets are 95% intervals.")
    else:
        how = "The runs used different seeds, so differences are of means only, without intervals."
    return f"Compared with '{base}', '{name}' " + "; ".join(parts) + ". " + how


# --------------------------------------------------------------------------- HTML pieces


def figure_html(fig, alt: str) -> str:
    """A Figure as an embedded PNG (no file, no URL)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></figure>'


def kpi_table_html(columns: list[tuple[str, pd.DataFrame]]) -> str:
    """Metrics as rows, one column per (label, summary table): 'mean [low–high]'."""
    columns = [(label, t) for label, t in columns if t is not None and len(t)]
    if not columns:
        return ""
    metrics = list(dict.fromkeys(m for _, t in columns for m in t["metric"]))
    metrics = [m for m in HEADLINE if m in metrics] + [m for m in metrics if m not in HEADLINE]
    head = "".join(f"<th>{html.escape(label)}</th>" for label, _ in columns)
    body = []
    for m in metrics:
        label, unit = plots.metric_label(m)
        cells = "".join(f"<td>{html.escape(fmt_interval(m, *_kpi(t, m)))}</td>" for _, t in columns)
        body.append(f"<tr><th scope='row'>{html.escape(label)}<span class='unit'>"
                    f"{html.escape(unit)}</span></th>{cells}</tr>")
    reps = ", ".join(html.escape(f"{label}: {int(t['replications'].max())}") for label, t in columns)
    return (f"<table class='kpi'><thead><tr><th>KPI</th>{head}</tr></thead><tbody>{''.join(body)}"
            f"</tbody></table><p class='note'>Mean across replications [95% t-interval]. Replications: "
            f"{reps}.</p>")


SWEEP_META = {"scenario", "point", "metric", "mean", "ci_low", "ci_high", "replications", "error", "baseline"}


def _store_table(path: Path) -> pd.DataFrame | None:
    """A table an experiment stored Hive-partitioned by scenario/point/replication, or None."""
    if not path.is_dir():
        return None
    try:
        df = pd.read_parquet(path)
    except (OSError, ValueError):
        return None
    for col in ("scenario", "replication"):
        if col in df:
            df[col] = df[col].astype(str if col == "scenario" else int)
    return df


def _experiment_section(f: RunFolder, idx: int, target_min: float | None) -> str:
    """A compare or sweep folder: its KPI table, differences and sweep curve, manifest."""
    notes: list[str] = []
    out = [f"<section id='scenario-{idx}'><h2>{html.escape(f.kind.capitalize())}: {html.escape(f.name)}</h2>"]
    summary = f.summary
    if f.kind == "sensitivity" and f.sensitivity is not None:
        out.append(f"<p class='summary'>{html.escape(sensitivity_paragraph(f.sensitivity))}</p>")
        from .violence.plots import plot_sensitivity
        out.append(_try_chart(lambda: plot_sensitivity(f.sensitivity), f"Sensitivity: {f.name}", notes))
        out.append(f"<h3>Run manifest</h3>" + manifest_html(f) + "</section>")
        return "".join(out)
    if f.kind == "sweep":
        fields = [c for c in summary.columns if c not in SWEEP_META]
        keys = summary[fields].drop_duplicates() if fields else summary[["scenario"]].drop_duplicates()
        columns = [(", ".join(f"{k}={v}" for k, v in row.items()),
                    summary.loc[(summary[list(row.index)] == row.values).all(axis=1)])
                   for _, row in keys.iterrows()]
        metric = next((m for m in HEADLINE if m in set(summary["metric"])), None)
        if fields and metric:
            out.append(_try_chart(lambda: plots.sweep_curve(
                summary, fields[0], metric, by=fields[1] if len(fields) > 1 else None),
                f"Sweep of {fields[0]}", notes))
    else:
        columns = [(str(k), g) for k, g in summary.groupby("scenario", sort=False)]
        calls = _store_table(f.path / "calls")
        if calls is not None and len(calls):
            out.append(_try_chart(lambda: plots.response_time_cdf(calls, target_min=target_min),
                                  f"Response-time distribution: {f.name}", notes))
            out.append(_try_chart(lambda: plots.fallback_by_hour(calls), f"Fallback by hour: {f.name}", notes))
    if f.compare is not None and len(f.compare):
        base, diffs = plots.differences(f.compare)
        for name in dict.fromkeys(diffs["scenario"].astype(str)):
            out.append(f"<p class='summary'>{html.escape(comparison_paragraph(f.compare, base, name))}</p>")
        metrics = [m for m in FOREST_METRICS if m in set(diffs["metric"])]
        out.append(_try_chart(lambda: plots.forest(f.compare, metrics=metrics or None),
                              f"Differences to {base}", notes))
    out.append("<h3>Key figures</h3>" + kpi_table_html(columns))
    if f.kind == "compare":
        for k, member in enumerate(_compare_members(f)):
            out.append(_scenario_section(member, f"{idx}-{k}", target_min, level=3))
    out.append(f"<h3>Run manifest</h3><p class='note'>Folder: {html.escape(str(f.path))}</p>" + manifest_html(f))
    if notes:
        out.append("<h3>Not shown</h3>" + _list_html(notes, ""))
    out.append("</section>")
    return "".join(out)


def _compare_members(f: RunFolder) -> list[RunFolder]:
    """Each scenario of a compare folder as its own (manifest-less) folder view, so it gets
    the same per-scenario charts, assumptions and sources as a single run."""
    cells = _read(f.path / "cells.csv")
    if cells is None:
        return []
    tables = {name: _store_table(f.path / name) for name in ("calls", "hourly", "occupancy", "facilities")}
    members = []
    for key in dict.fromkeys(cells["scenario"].astype(str)):
        resolved = f.path / "resolved" / f"{key}-p0.yaml"
        raw = _yaml_mapping(resolved) if resolved.exists() else {}
        try:
            scenario = validate_any(dict(raw), str(resolved), None) if raw else None
        except ScenarioError:
            scenario = None
        pick = {name: (t[t["scenario"] == key] if t is not None and "scenario" in t else None)
                for name, t in tables.items()}
        summary = f.summary[f.summary["scenario"].astype(str) == key] if f.summary is not None else None
        members.append(RunFolder(path=f.path, name=str(raw.get("name") or key), kind="run", raw=raw,
                                 scenario=scenario, manifest={}, summary=summary, **pick))
    return members


def _list_html(items, empty: str) -> str:
    if not items:
        return f"<p class='note'>{html.escape(empty)}</p>"
    return "<ul>" + "".join(f"<li>{html.escape(str(i))}</li>" for i in items) + "</ul>"


def manifest_html(f: RunFolder) -> str:
    if not f.manifest:
        return "<p class='note'>No manifest.json in this folder.</p>"
    rows = "".join(
        f"<tr><th scope='row'>{html.escape(str(k))}</th><td>"
        f"{html.escape(', '.join(map(str, v)) if isinstance(v, list) else str(v))}</td></tr>"
        for k, v in f.manifest.items())
    return f"<table class='manifest'>{rows}</table>"


def _try_chart(make, alt: str, notes: list[str]) -> str:
    """Draw one chart; a chart that cannot be drawn from this data is named, not fatal."""
    try:
        return figure_html(make(), alt)
    except (KeyError, ValueError, IndexError) as e:
        notes.append(f"{alt}: not drawn ({type(e).__name__}: {e})")
        return ""


def _scenario_section(f: RunFolder, idx, target_min: float | None, level: int = 2) -> str:
    notes: list[str] = []
    out = [f"<section id='scenario-{idx}'><h{level}>{html.escape(f.name)}</h{level}>"]
    desc = f.raw.get("description")
    if desc:
        out.append(f"<p>{html.escape(str(desc))}</p>")
    out.append(f"<p class='summary'>{html.escape(scenario_paragraph(f))}</p>")
    s = f.scenario
    if f.hourly is not None and s is not None and len(f.hourly):
        alt_pools = [p for p in s.pools if not s.pool_is_police(p)] or list(s.pools)
        out.append(_try_chart(lambda: plots.utilisation_by_hour(
            f.hourly, plots.hours_observed(s), pools=alt_pools,
            title=f"Teams busy against teams on duty: {f.name}"), f"Utilisation by hour: {f.name}", notes))
    if f.calls is not None and s is not None and len(s.zones) > 1:
        out.append(_try_chart(lambda: plots.zone_map(f.calls, s.zones, title=f"Eligible calls handled "
                              f"without police, by zone: {f.name}"), f"Zones: {f.name}", notes))
    if f.occupancy is not None and len(f.occupancy):
        out.append(_try_chart(lambda: plots.bed_occupancy(f.occupancy, f.facilities,
                              title=f"After-care beds: {f.name}"), f"Beds: {f.name}", notes))
    out.append("<h3>Assumptions</h3>" + _list_html(f.raw.get("assumptions"), "None stated in the scenario file."))
    out.append("<h3>Sources</h3>" + _list_html(f.raw.get("sources"), "None stated in the scenario file."))
    if f.manifest:
        out.append(f"<h3>Run manifest</h3><p class='note'>Folder: {html.escape(str(f.path))}</p>" + manifest_html(f))
    if s is None and f.raw:
        notes.append("scenario.resolved.yaml no longer validates with this version; staffing and "
                     "per-hour charts are left out")
    if notes:
        out.append("<h3>Not shown</h3>" + _list_html(notes, ""))
    out.append("</section>")
    return "".join(out)


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;max-width:1000px;
margin:2em auto;padding:0 1em;color:#111;line-height:1.45}
h1{font-size:1.6em;margin-bottom:0.2em} h2{border-bottom:2px solid #333;padding-bottom:0.2em;margin-top:2em}
h3{margin-bottom:0.3em} .summary{font-size:1.08em;background:#f3f3f3;border-left:4px solid #333;padding:0.6em 0.9em}
table{border-collapse:collapse;margin:0.5em 0;font-size:0.92em} th,td{border:1px solid #bbb;padding:0.25em 0.6em;
text-align:left;vertical-align:top} thead th{background:#e6e6e6} td{font-variant-numeric:tabular-nums}
.unit{color:#555;font-weight:normal;font-size:0.85em;margin-left:0.4em} .unit:empty{display:none}
.note{color:#444;font-size:0.88em} figure{margin:1em 0} img{max-width:100%;height:auto;border:1px solid #ddd}
nav ul{columns:2} @media print{h2{page-break-before:always}}
"""


def build_report(results_dirs, out_path, title: str | None = None,
                 target_min: float | None = None, charts_dir=None) -> Path:
    """Write one self-contained HTML report for ``results_dirs`` (the first is the baseline of
    comparisons) to ``out_path``; ``target_min`` draws a response-time target (minutes).
    With ``charts_dir``, every chart is also saved there as a PNG file (see :func:`save_charts`)."""
    every = [load_results(d) for d in results_dirs]
    if not every:
        raise ReportError("give at least one results folder")
    folders = [f for f in every if f.kind == "run"]           # one scenario each
    experiments = [f for f in every if f.kind != "run"]
    title = title or ("crisis-sim: " + " vs ".join(f.name for f in every[:3])
                      + (" ..." if len(every) > 3 else ""))
    notes: list[str] = []
    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p class='note'>Written {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')} by crisis-sim "
             f"{html.escape(__version__)} from {len(every)} results folder{'s' if len(every) > 1 else ''}. "
             "Simulated numbers: what these scenarios imply under their stated assumptions, not forecasts.</p>"]
    parts.append("<h2>Summary</h2>" if folders else "")
    for f in folders:
        parts.append(f"<h3>{html.escape(f.name)}</h3><p class='summary'>{html.escape(scenario_paragraph(f))}</p>")
    table = compare_table(folders) if len(folders) > 1 else None
    if table is not None and len(table):
        for f in folders[1:]:
            parts.append(f"<p class='summary'>{html.escape(comparison_paragraph(table, folders[0].name, f.name))}</p>")
    if folders:
        parts.append("<h2>Key figures</h2>" + kpi_table_html([(f.name, f.summary) for f in folders]))
    calls = [f.calls for f in folders if f.calls is not None]
    if calls:
        parts.append("<h2>Charts</h2>")
        allcalls = pd.concat(calls, ignore_index=True)
        allcalls["scenario"] = allcalls["scenario"].astype(str)
        parts.append(_try_chart(lambda: plots.response_time_cdf(allcalls, target_min=target_min),
                                "Response-time distribution", notes))
        parts.append(_try_chart(lambda: plots.fallback_by_hour(allcalls), "Fallback by hour of week", notes))
    if table is not None and len(table) and table["scenario"].nunique() > 1:
        metrics = [m for m in FOREST_METRICS if m in set(table["metric"])]
        parts.append(_try_chart(lambda: plots.forest(table, metrics=metrics or None),
                                "Differences to the first scenario", notes))
    if notes:
        parts.append("<h3>Not shown</h3>" + _list_html(notes, ""))
    for i, f in enumerate(every):
        parts.append(_scenario_section(f, i, target_min) if f.kind == "run" else _experiment_section(f, i, target_min))
    nav = "".join(f"<li><a href='#scenario-{i}'>{html.escape(f.name)}</a></li>" for i, f in enumerate(every))
    doc = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
           "<meta name='viewport' content='width=device-width, initial-scale=1'>"
           "<link rel='icon' href='data:,'>"
           f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
           + parts[0] + parts[1] + f"<nav><ul>{nav}</ul></nav>" + "".join(parts[2:]) + "</body></html>\n")
    out = Path(out_path)
    write_text(out, doc)
    if charts_dir is not None:
        save_charts(doc, charts_dir)
    return out


def save_charts(doc: str, folder) -> list[Path]:
    """Write the PNG charts embedded in a report to ``folder``, named after their titles."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for k, (alt, data) in enumerate(re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,([^"]+)"', doc)):
        slug = re.sub(r"[^a-z0-9]+", "-", html.unescape(alt).lower()).strip("-")[:60] or "chart"
        path = folder / f"{k + 1:02d}-{slug}.png"
        payload = base64.b64decode(data)
        atomic_write(path, lambda tmp: Path(tmp).write_bytes(payload))
        written.append(path)
    return written


# --------------------------------------------------------------------------- CLI


def _cmd_report(args) -> int:
    import sys
    try:
        out = build_report(args.results, args.out, title=args.title, target_min=args.target_min,
                           charts_dir=args.charts_dir)
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


def register_cli(subparsers) -> None:
    """Add ``crisis-sim report RESULTS_DIR... --out report.html`` to the CLI."""
    p = subparsers.add_parser("report", help="write one self-contained HTML report from results folders")
    p.add_argument("results", nargs="+", metavar="RESULTS_DIR",
                   help="results folders written by 'crisis-sim run'; the first is the baseline")
    p.add_argument("--out", default="report.html", help="HTML file to write (default report.html)")
    p.add_argument("--title", default=None, help="report title (default: the scenario names)")
    p.add_argument("--target-min", type=float, default=None,
                   help="response-time target in minutes, drawn on the response-time chart")
    p.add_argument("--charts-dir", default=None, help="also save every chart there as a PNG file")
    p.set_defaults(func=_cmd_report)
