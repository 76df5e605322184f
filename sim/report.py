"""One self-contained HTML report (and, with ``--pdf``, the same page as PDF) for a working group.

``build_report([dir1, dir2, ...], "report.html")`` reads the folders ``crisis-sim run``
writes (``summary.csv``, ``kpis.csv``, ``calls.parquet``, ``hourly.parquet``,
``pools.parquet``, ``scenario.resolved.yaml``, ``manifest.json``; where present
``occupancy.parquet`` and ``facilities.parquet``) and the folders ``crisis-sim compare`` /
``sweep`` write (``manifest.json`` with ``kind``, ``summary.csv``, ``differences.csv`` and
the per-replication tables stored by scenario/point/replication). The page has, in order:

1. **The brief**, readable in 30 seconds, in words, naming the scenarios by their names and
   giving the period: for crisis callers (eligible calls) the median and 90th percentile
   response and the share reached within the target, by who answered, against the first
   scenario (the counterfactual), said plainly when it is worse; the share of eligible calls
   the program takes and why the rest go to police (from ``eligible_share.*``, which add up
   to 100%), with the hours of the week when they do; police hours freed per year and their
   value at the scenario's police hourly cost; each scenario's annual cost (staff hours by
   role, vehicles, beds) and the difference; one sentence of caveats. A sweep's brief is
   the smallest configuration that meets the target, with its confidence.
2. **Charts** (SVG, legends below the data), whose numbers are the KPIs of the brief.
3. **Appendix**: every KPI in words with units (rows that are zero everywhere folded away),
   each scenario's description, assumptions, sources and run manifest, and a glossary
   (:func:`sim.metrics.glossary` and the report's own terms).

Every number is a KPI of :mod:`sim.metrics` (per replication, then averaged, with 95%
t-intervals); differences to the first scenario are paired by replication when the runs
shared a seed (common random numbers). The file needs no network and no JavaScript; every
text from a scenario file or results folder is escaped. No KPI name (``a_b.c``) appears in
the brief or the main tables: :func:`sim.plots.metric_label` names each one.

Heavy libraries (pandas, matplotlib) are imported on first use, so that importing this
module for the CLI stays fast.
"""
from __future__ import annotations

import datetime as _dt
import html
import importlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__


class _Lazy:
    """A module imported on first attribute access (keeps ``crisis-sim --help`` fast)."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr):
        return getattr(importlib.import_module(self._name), attr)


np = _Lazy("numpy")
pd = _Lazy("pandas")
yaml = _Lazy("yaml")
plots = _Lazy("sim.plots")
metrics = _Lazy("sim.metrics")

FOREST_METRICS = ["response_time_p50.eligible", "response_time_p90.eligible", "share_within_{T}.eligible",
                  "eligible_diversion_rate", "police_hours", "cost_per_year"]
# KPIs of the program itself: not applicable (shown as –) in a scenario without a program
PROGRAM_ONLY = ("fallback_rate", "fallback_busy_rate", "fallback_unstaffed_rate",
                "eligible_share.program_no_police", "eligible_share.program_police_on_scene",
                "eligible_share.fallback_busy", "eligible_share.fallback_unstaffed")
NOT_APPLICABLE = "–"
MAX_TABLE_COLUMNS = 4           # a table with more value columns folds into several tables

# Words the report uses, for the glossary (the KPIs' own entries come from sim.metrics).
TERMS = {
    "eligible call": "A call of a type the program may take (its path lists a program pool): the crisis "
                     "callers the program is for. Other calls always go to police.",
    "program": "The non-police responders a scenario adds (civilian, co-responder or phone teams).",
    "counterfactual": "The first scenario of the report: the same calls answered without the program "
                      "(or with the staffing compared against).",
    "fallback": "An eligible call answered by a later tier of its path (usually police) because the program "
                "could not take it: every program unit was busy within the wait, or none was on shift.",
    "diversion": "A call closed with no police unit on scene.",
    "median, p50": "Half of the callers were reached sooner, half later.",
    "90th percentile, p90": "Nine in ten callers were reached within this time; the slowest tenth waited longer.",
    "percentage points (pp)": "The difference of two percentages: 45% against 40% is 5 percentage points.",
    "95% interval": "The range that holds the long-run mean with 95% confidence, from the spread across "
                    "replications (a t-interval).",
    "replication": "One independent simulated run of the whole period; figures are averaged over replications.",
    "paired difference": "A difference taken replication by replication between scenarios that saw the same "
                         "calls (same seed: common random numbers), so it is not blurred by chance differences "
                         "in the calls.",
    "unit-hour": "One unit (a patrol car or a team) busy for one hour; police hours on calls are unit-hours.",
    "warm-up": "Simulated days before the measured period, left out of every figure so the run starts busy.",
}


class ReportError(ValueError):
    """A folder the report cannot use; ``str()`` is one line for the planner."""


@dataclass
class RunFolder:
    """What one results folder (or one scenario of a compare folder) holds; missing files are None."""

    path: Path
    name: str
    kind: str                       # run (one scenario), compare, sweep (manifest "kind") or optimize
    raw: dict                       # scenario.resolved.yaml as a mapping
    scenario: object | None         # the same, validated (None if it no longer validates)
    manifest: dict
    summary: object | None = None   # pandas DataFrames
    kpis: object | None = None
    calls: object | None = None
    pools: object | None = None
    hourly: object | None = None
    occupancy: object | None = None
    facilities: object | None = None
    compare: object | None = None
    sweep: object | None = None
    sensitivity: object | None = None    # violence n x e grid, or a tornado screening
    optimize: dict | None = None         # an optimisation: result.json, roster, kpis, frontier chart
    source: str | None = None            # the fsspec URL it was read from (None: the folder ``path``)
    notes: list[str] = field(default_factory=list)


def _read(path: Path):
    """A table, None if the file is not there, a :class:`ReportError` naming it if it cannot be read."""
    if not path.exists():
        return None
    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as e:  # noqa: BLE001 - any reader failure is a corrupt input file
        raise ReportError(f"{path}: cannot be read ({type(e).__name__}); write the folder again") from None


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ReportError(f"{path}: cannot be read ({type(e).__name__}); write the folder again") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path}: not a manifest (a JSON object); write the folder again")
    return data


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except Exception as e:  # noqa: BLE001 - a YAML or encoding error: a corrupt file
        raise ReportError(f"{path}: cannot be read ({type(e).__name__}); write the folder again") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path}: not a scenario (a YAML mapping); write the folder again")
    return data


def _validated(raw: dict, where: str):
    from .experiment import validate_any
    from .scenario import ScenarioError
    try:
        return validate_any(dict(raw), where, None) if raw else None
    except ScenarioError:
        return None


def is_url(where: str | Path) -> bool:
    """An fsspec URL of a results folder (``s3://bucket/prefix``...; ``file://`` is a folder)."""
    return isinstance(where, str) and "://" in where and not where.startswith("file://")


def fetch(url: str, into: Path) -> Path:
    """Copy the results folder at ``url`` (what ``compare --out s3://...`` writes) into the
    folder ``into`` to be read as a local one: its top-level files (summaries, manifest,
    scenarios, a run's logs) and ``resolved/``. The partitioned tables of an experiment stay
    at the URL: :func:`compare_members` reads them through the store, committed parts only."""
    from .store import ObjectStore
    from .scenario import ScenarioError
    try:
        store = ObjectStore(url, [])
    except ScenarioError as e:          # no such filesystem, or its package is missing
        raise ReportError(str(e)) from None
    fs, base = store.fs, store.base
    try:
        if not fs.isdir(base):
            raise ReportError(f"{url}: not a results folder (nothing there)")
        for sub in ("", "resolved"):
            folder = f"{base}/{sub}" if sub else base
            if sub and not fs.isdir(folder):
                continue
            (into / sub).mkdir(parents=True, exist_ok=True)
            for entry in fs.ls(folder, detail=True):
                name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
                if entry["type"] == "file" and not name.startswith((".", "_")):
                    fs.get_file(entry["name"], str(into / sub / name))
    except OSError as e:
        raise ReportError(f"{url}: cannot be read ({type(e).__name__}: {e})") from None
    return into


def load_results(path: str | Path, source: str | None = None) -> RunFolder:
    """Read one results folder (``source``: the URL it was fetched from, see :func:`fetch`);
    raises :class:`ReportError` if it is not one or a file in it is corrupt."""
    path = Path(path)
    if not path.is_dir():
        raise ReportError(f"{path}: not a folder (give the results folder a run wrote)")
    files = {p.name for p in path.iterdir()}
    if "result.json" in files and "evaluations.csv" in files:      # a `crisis-sim optimize` folder
        return _optimize_folder(path, files)
    if "summary.csv" not in files and "sensitivity.csv" not in files:
        raise ReportError(f"{path}: no summary.csv: not a results folder")
    raw = _read_yaml(path / "scenario.resolved.yaml") if "scenario.resolved.yaml" in files else {}
    scenario = _validated(raw, str(path / "scenario.resolved.yaml"))
    manifest = _read_json(path / "manifest.json") if "manifest.json" in files else {}
    f = RunFolder(path=path, name=str(raw.get("name") or (manifest.get("scenarios") or [path.name])[0]),
                  kind=str(manifest.get("kind") or "run"), raw=raw, scenario=scenario, manifest=manifest,
                  source=source)
    for attr, fname in (("summary", "summary.csv"), ("kpis", "kpis.csv"), ("calls", "calls.parquet"),
                        ("pools", "pools.parquet"), ("hourly", "hourly.parquet"),
                        ("occupancy", "occupancy.parquet"), ("facilities", "facilities.parquet"),
                        ("compare", "differences.csv"), ("sensitivity", "sensitivity.csv")):
        setattr(f, attr, _read(path / fname))
    for attr, cols in (("summary", {"metric", "mean"}), ("kpis", {"metric", "value"})):
        t = getattr(f, attr)
        if t is not None and not cols <= set(t.columns):
            raise ReportError(f"{path / (attr + '.csv')}: has no {' and '.join(sorted(cols))} columns; "
                              "write the folder again")
    if f.kind == "sweep":
        f.sweep = f.summary
    if f.kind != "run" and manifest.get("scenarios"):
        f.name = ", ".join(map(str, manifest["scenarios"][:3])) + (" ..." if len(manifest["scenarios"]) > 3 else "")
    return f


def _optimize_folder(path: Path, files: set[str]) -> RunFolder:
    """An optimisation's output folder (result.json, roster.csv, kpis.csv, frontier.png)."""
    result = _read_json(path / "result.json")
    raw = _read_yaml(path / "scenario.yaml") if "scenario.yaml" in files else {}
    f = RunFolder(path=path, name=str(raw.get("name") or result.get("scenario") or path.name), kind="optimize",
                  raw=raw, scenario=None, manifest=result)
    f.optimize = {"result": result, "roster": _read(path / "roster.csv") if "roster.csv" in files else None,
                  "kpis": _read(path / "kpis.csv") if "kpis.csv" in files else None,
                  "frontier": (path / "frontier.png") if "frontier.png" in files else None}
    return f


def optimize_html(f: RunFolder) -> str:
    """The smallest roster an optimisation found: what it costs, the roster, whether each
    target holds at the stated confidence, and the cost-against-target frontier."""
    import base64
    o = f.optimize
    res = o["result"]
    out = [f"<h3>Smallest roster meeting the targets: {html.escape(f.name)}</h3>"]
    if res.get("status") != "optimal":
        out.append(f"<p class='summary'>{html.escape(str(res.get('message', 'No roster found.')))}</p>")
    else:
        conf = float(res.get("confidence") or 0.95)
        cost = f"{float(res.get('cost') or 0):,.0f}"
        out.append(f"<p class='summary'>The cheapest roster found costs {html.escape(cost)}"
                   f" a year ({html.escape(str(res.get('objective', 'cost_per_year')))}); every target holds with "
                   f"{conf:.0%} confidence, confirmed on fresh random numbers. {html.escape(str(res.get('message', '')))}"
                   "</p>")
        roster = o["roster"]
        if roster is not None and len(roster):
            out.append("<div class='scroll'>" + _table(
                ["Decision", "Item", "Chosen", "Allowed"],
                [[f"{r.kind} {r.target}", str(r.item), str(r.value), f"{r.min}–{r.max}"]
                 for r in roster.itertuples()]) + "</div>")
        k = o["kpis"]
        if k is not None and len(k):
            rows = [[plots.metric_label(str(r.kpi))[0] if hasattr(r, "kpi") else str(r.target),
                     f"{r.mean:.3g} [{r.ci_low:.3g}–{r.ci_high:.3g}]", f"{r.one_sided:.3g}",
                     "yes" if bool(r.holds) else "no"]
                    for r in k.itertuples() if str(r.target) != "objective"]
            out.append("<div class='scroll'>" + _table(["Target", "Mean [95% interval]", "One-sided bound",
                                                        "Holds"], rows) + "</div>")
    out.append(f"<p class='note'>{int(res.get('evaluations', 0))} rosters evaluated, "
               f"{int(res.get('replications', 0))} replications.</p>")
    if o["frontier"] is not None:
        data = base64.b64encode(o["frontier"].read_bytes()).decode("ascii")
        out.append("<figure><img alt='What each step towards the target costs' "
                   f"src='data:image/png;base64,{data}'><figcaption class='note'>Screened rosters: the "
                   "frontier is the cheapest roster reaching each level of the target.</figcaption></figure>")
    return "".join(out)


def _store_table(f: RunFolder, store, name: str):
    """A table an experiment stored Hive-partitioned by scenario/point/replication, or None:
    the rows of committed, successful replications only, read as the store reads them (a
    replication killed before its record, or one that failed, is in no figure)."""
    where = f"{f.source or f.path}/{name}"
    try:
        if not (store.fs.isdir(f"{store.base}/{name}") if f.source else (f.path / name).is_dir()):
            return None
        df = store.read(name)
    except Exception as e:  # noqa: BLE001 - a corrupt committed part file
        raise ReportError(f"{where}: cannot be read ({type(e).__name__}); write the folder again") from None
    for col in ("scenario", "replication"):
        if col in df:
            df[col] = df[col].astype(str if col == "scenario" else int)
    return df


def compare_members(f: RunFolder) -> list[RunFolder]:
    """Each scenario of a compare folder as its own folder view (its summary, per-replication
    KPIs, call log, pools, hourly and bed tables, resolved scenario, seed), so it gets the same
    brief, charts, assumptions and sources as a single run."""
    cells = _read(f.path / "cells.csv")
    if cells is None:
        return []
    from .store import ObjectStore, Store
    keys = [str(k) for k in cells["scenario"].drop_duplicates()]
    store = ObjectStore(f.source, keys) if f.source else Store(f.path, keys)
    tables = {name: _store_table(f, store, name)
              for name in ("kpis", "calls", "pools", "hourly", "occupancy", "facilities")}
    members = []
    for _, cell in cells.drop_duplicates("scenario").iterrows():
        key = str(cell["scenario"])
        resolved = f.path / "resolved" / f"{key}-p0.yaml"
        raw = _read_yaml(resolved) if resolved.exists() else {}
        pick = {name: (t[t["scenario"] == key].assign(scenario=str(raw.get("name") or key))
                       if t is not None and "scenario" in t else None)
                for name, t in tables.items()}
        summary = f.summary[f.summary["scenario"].astype(str) == key] if f.summary is not None else None
        seed = cell.get("seed", f.manifest.get("seed"))
        members.append(RunFolder(path=f.path, source=f.source, name=str(raw.get("name") or cell.get("name") or key),
                                 kind="run",
                                 raw=raw, scenario=_validated(raw, str(resolved)),
                                 manifest={"seed": None if seed is None else int(seed)},
                                 summary=summary, **pick))
    return members


# --------------------------------------------------------------------------- numbers -> words


def fmt_value(metric: str, v: float, currency: str = "USD") -> str:
    """A KPI value in its unit: shares as percentages, minutes with one decimal, money rounded."""
    if v is None or v != v:
        return NOT_APPLICABLE
    unit = plots.metric_label(metric, currency)[1]
    if unit == "%":
        return f"{v:.1%}" if abs(v) < 0.1 else f"{v:.0%}"
    if unit == "min":
        return f"{v:,.1f} min"
    if unit.startswith(currency) and currency:
        return money(v, currency)
    return f"{v:,.1f}" if abs(v) < 100 else f"{v:,.0f}"


def money(v: float, currency: str) -> str:
    """'USD 15.46M', 'USD 147', 'EUR 2,300'."""
    if v != v:
        return NOT_APPLICABLE
    sign = "−" if v < 0 else ""
    a = abs(v)
    text = f"{a / 1e6:,.2f}M" if a >= 1e6 else f"{a:,.0f}"
    return f"{sign}{currency} {text}"


def fmt_interval(metric: str, mean: float, lo: float, hi: float, currency: str = "USD") -> str:
    """'71% [68–74%]' (interval left out when it is undefined)."""
    m = fmt_value(metric, mean, currency)
    if lo != lo or hi != hi or mean != mean:
        return m
    unit = plots.metric_label(metric, currency)[1]
    if unit == "%":
        return f"{m} [{lo:.0%}–{hi:.0%}]".replace("%–", "–") if abs(mean) >= 0.1 else \
            f"{m} [{lo:.1%}–{hi:.1%}]".replace("%–", "–")
    if unit.startswith(currency) and currency:
        return f"{m} [{money(lo, currency)}–{money(hi, currency)}]".replace(f"–{currency} ", "–")
    return f"{m} [{fmt_value(metric, lo, currency).removesuffix(' min')}–{fmt_value(metric, hi, currency)}]"


def _kpi(summary, metric: str) -> tuple[float, float, float]:
    if summary is None:
        return math.nan, math.nan, math.nan
    row = summary[summary["metric"] == metric]
    if row.empty:
        return math.nan, math.nan, math.nan
    r = row.iloc[0]
    return float(r["mean"]), float(r["ci_low"]), float(r["ci_high"])


def _pct(v: float, digits: int = 0) -> str:
    return NOT_APPLICABLE if v != v else f"{v:.{digits}%}"


def period_phrase(f: RunFolder) -> str:
    """'a year (365 days after a 7-day warm-up)' from the scenario's horizon."""
    days, warm = f.raw.get("horizon_days"), f.raw.get("warmup_days") or 0
    if not isinstance(days, (int, float)):
        return "the simulated period"
    what = {365: "a year", 366: "a year", 7: "a week", 14: "two weeks"}.get(int(days) if days == int(days) else 0,
                                                                         f"{days:g} days")
    detail = f"{days:g} days" if what != f"{days:g} days" else ""
    if warm:
        detail = (detail + " " if detail else "") + f"after a {warm:g}-day warm-up"
    return what + (f" ({detail})" if detail else "")


def per_year(f: RunFolder) -> float:
    """Factor from the measured period to a year of 365 days (NaN without a horizon)."""
    days = f.raw.get("horizon_days")
    return 365.0 / float(days) if isinstance(days, (int, float)) and days > 0 else math.nan


def currency_of(f: RunFolder) -> str:
    costs = f.raw.get("costs") or {}
    return str(costs.get("currency") or "USD") if isinstance(costs, dict) else "USD"


def program_pools(f: RunFolder) -> list[str]:
    """The non-police pools of a scenario: its program (empty for a police-only scenario)."""
    s = f.scenario
    if s is None or not hasattr(s, "pools"):          # a violence-interruption scenario has no pools
        return []
    return [p for p in s.pools if not s.pool_is_police(p)]


def program_name(f: RunFolder) -> str:
    """'CAHOOTS teams' / 'crisis team and street team teams' from the program pools' names,
    spelled as the scenario's name spells them when it names them."""
    pools = program_pools(f)
    if not pools:
        return "the program"
    out = []
    for p in pools:
        w = plots.words(p)
        m = re.search(re.escape(w), f.name, flags=re.I)
        w = m.group(0) if m else w
        out.append(w if re.search(r"teams$", w, flags=re.I) else f"{w}s" if re.search(r"team$", w, flags=re.I)
                   else f"{w} teams")
    return " and ".join(out)


def fallback_window(calls, share: float = 0.5, reason: str | None = None) -> tuple[int, int, float] | None:
    """The shortest stretch of the day (whole hours, may wrap midnight) in which at least
    ``share`` of the eligible calls answered by a later tier (fallback; with ``reason``, only
    that ``fallback_reason``) came in: (start hour, end hour, share in it); None if none did."""
    c = calls[~calls["warmup"].to_numpy(bool)] if "warmup" in calls else calls
    fell = _fell_back(c, reason)
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


def _fell_back(c, reason: str | None = None):
    """Eligible calls answered by a later tier (as ``fallback_rate`` counts them)."""
    later = pd.to_numeric(c["tier"], errors="coerce").fillna(-1).to_numpy() > 0
    sel = c["eligible"].to_numpy(bool) & later
    if reason is not None:
        sel &= c["fallback_reason"].astype(object).to_numpy() == reason
    return sel


def busiest_day(calls, reason: str | None = None) -> tuple[str, float] | None:
    """The day of the week on which most fallback calls came in, and its share of them."""
    c = calls[~calls["warmup"].to_numpy(bool)] if "warmup" in calls else calls
    fell = _fell_back(c, reason)
    if not fell.any():
        return None
    days = (np.floor_divide(c["t_received"].to_numpy(float)[fell], 1440) % 7).astype(int)
    counts = np.bincount(days, minlength=7)
    k = int(np.argmax(counts))
    names = ("Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays", "Sundays")
    return names[k], float(counts[k] / counts.sum())


def when_phrase(calls, reason: str) -> str:
    """'mostly between 14:00 and 22:00 (61% of them), most on Saturdays (17%)' or ''."""
    win = fallback_window(calls, reason=reason)
    if win is None:
        return ""
    day = busiest_day(calls, reason)
    start, end, share = win
    end_txt = "midnight" if end == 0 else f"{end:02d}:00"
    text = (f"{share:.0%} of them came in between {start:02d}:00 and {end_txt}" if (end - start) % 24 <= 10
            else "they were spread across the day")
    if day and day[1] >= 0.2:
        text += f", the most on {day[0]} ({day[1]:.0%})"
    return text


def staffing_phrase(s) -> str:
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


def _reps(f: RunFolder) -> int:
    return int(f.summary["replications"].max()) if f.summary is not None and len(f.summary) else 0


def _reps_phrase(f: RunFolder) -> str:
    reps = _reps(f)
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
    if not program_pools(f) and f.scenario is not None:
        out.append("every call is answered by police. ")
    elif edr[0] == edr[0]:
        out.append(f"{fmt_interval('eligible_diversion_rate', *edr)} of eligible calls are handled "
                   f"without police")
        if fb[0] == fb[0]:
            out.append(f"; {fmt_interval('fallback_rate', *fb)} fall back to police because no team "
                       f"was free in time or none was on shift")
        out.append(". ")
    else:
        out.append("no call is eligible for an alternative response. ")
    if p50 == p50:
        out.append(f"Half of the calls reached on scene have help within {p50:.0f} min, "
                   f"90% within {p90:.0f} min. ")
    out.append(_reps_phrase(f))
    return "".join(out)


def sensitivity_paragraph(grid, metric: str = "reduction") -> str:
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


def compare_table(folders: list[RunFolder]):
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
            m, lo, hi = metrics.t_interval(g["value"])
            d = (math.nan,) * 3
            if f is not base and base.kpis is not None:
                b = base.kpis[base.kpis["metric"] == metric].set_index("replication")["value"]
                v = g.set_index("replication")["value"]
                if paired:
                    common = v.index.intersection(b.index)
                    d = metrics.t_interval(v[common] - b[common]) if len(common) else d
                elif len(b):
                    d = (m - float(b.mean()), math.nan, math.nan)
            rows.append({"scenario": f.name, "metric": metric, "mean": m, "ci_low": lo, "ci_high": hi,
                         "diff_mean": d[0], "diff_ci_low": d[1], "diff_ci_high": d[2],
                         "replications": int(g["value"].notna().sum()), "paired": bool(paired)})
    return pd.DataFrame(rows, columns=["scenario", "metric", "mean", "ci_low", "ci_high", "diff_mean",
                                       "diff_ci_low", "diff_ci_high", "replications", "paired"])


def _diff_phrase(metric: str, d: float, lo: float, hi: float, more: str, less: str, scale_by: float = 1.0,
                 currency: str = "USD") -> str:
    """'19.1 percentage points more [+17.0 to +21.3]'; 'the same' for an exact zero."""
    unit = plots.metric_label(metric, currency)[1]
    if d == 0 and (lo != lo or lo == hi == 0):
        return "the same"
    word = more if d >= 0 else less
    if unit.startswith(currency) and currency:
        text = f"{money(abs(d) * scale_by, currency)} {word}"
        if lo == lo:
            text += f" [{money(lo * scale_by, currency)} to {money(hi * scale_by, currency)}]"
    else:
        scale, suffix = (100.0, " percentage points") if unit == "%" else (scale_by, f" {unit}" if unit else "")
        digits = 1 if abs(d) * scale < 1000 else 0
        text = f"{abs(d) * scale:,.{digits}f}{suffix} {word}"
        if lo == lo:
            text += f" [{lo * scale:+,.{digits}f} to {hi * scale:+,.{digits}f}]"
    if lo == lo and lo <= 0 <= hi:
        text += " (not distinguishable from no difference)"
    return text


def comparison_paragraph(table, base: str, name: str) -> str:
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
        return f"No shared figures to compare {name} with {base}."
    if "paired" not in rows:
        how = "Differences are paired by replication; brackets are 95% intervals."
    elif rows["paired"].any():
        how = ("Differences are paired by replication (same seed: both scenarios see the same calls); "
               "brackets are 95% intervals.")
    else:
        how = "The runs used different seeds, so differences are of means only, without intervals."
    return f"Compared with {base}, {name} " + "; ".join(parts) + ". " + how


# --------------------------------------------------------------------------- the brief


def shares_to_100(values: dict[str, float], digits: int = 1) -> dict[str, float]:
    """Percentages (as fractions) rounded to ``digits`` decimals of a percent so that they add
    up to exactly 100% when the shares add up to 1 (largest remainder); NaN stays NaN."""
    units = 10 ** (digits + 2)
    finite = {k: v for k, v in values.items() if v == v}
    if not finite or abs(sum(finite.values()) - 1.0) > 1e-6:
        return {k: (round(v * units) / units if v == v else v) for k, v in values.items()}
    scaled = {k: v * units for k, v in finite.items()}
    out = {k: math.floor(v) for k, v in scaled.items()}
    left = units - sum(out.values())
    for k in sorted(scaled, key=lambda k: scaled[k] - out[k], reverse=True)[:left]:
        out[k] += 1
    return {k: (out[k] / units if k in out else v) for k, v in values.items()}


def _diff(table, name: str, metric: str) -> tuple[float, float, float]:
    if table is None or not len(table):
        return math.nan, math.nan, math.nan
    r = table[(table["scenario"] == name) & (table["metric"] == metric)]
    if r.empty:
        return math.nan, math.nan, math.nan
    r = r.iloc[0]
    return float(r["diff_mean"]), float(r["diff_ci_low"]), float(r["diff_ci_high"])


def target_of(views: list[RunFolder], target_min: float | None) -> float | None:
    """The response target T (minutes) of the brief: ``target_min`` if the KPIs hold
    ``share_within_<T>``, else the first T the scenarios' KPIs hold."""
    have = set()
    for f in views:
        if f.summary is not None:
            have |= {float(m.group(1)) for m in map(re.compile(r"share_within_([0-9.]+)\.eligible$").match,
                                                   f.summary["metric"].astype(str)) if m}
    if target_min is not None and float(target_min) in have:
        return float(target_min)
    return min(have) if have else None


def _cell(text: str, cls: str = "") -> str:
    return f"<td{f' class={chr(39)}{cls}{chr(39)}' if cls else ''}>{html.escape(text)}</td>"


def _table(head: list[str], rows: list[list[str]], cls: str = "kpi", row_heads: bool = True) -> str:
    """An escaped table in its own horizontal scroll box (so a wide one never widens the page)."""
    h = "".join(f"<th scope='col'>{html.escape(x)}</th>" for x in head)
    body = []
    for r in rows:
        first = f"<th scope='row'>{html.escape(r[0])}</th>" if row_heads else _cell(r[0])
        body.append("<tr>" + first + "".join(_cell(x) for x in r[1:]) + "</tr>")
    return f"<div class='scroll'><table class='{cls}'><thead><tr>{h}</tr></thead><tbody>{''.join(body)}" \
           f"</tbody></table></div>"


def _kinds(f: RunFolder) -> list[str]:
    """Responder kinds with an eligible response-time KPI in ``f`` (program kinds first)."""
    have = set(f.summary["metric"].astype(str)) if f.summary is not None else set()
    return [k for k in ("civilian", "co_responder", "remote", "police") if f"response_time_p50.eligible.{k}" in have]


def response_html(views: list[RunFolder], table, T: float | None) -> str:
    """Crisis callers: median, p90 and share within T of eligible calls, by who answered."""
    within = f"share_within_{T:g}.eligible" if T is not None else None
    head = ["Scenario and who answered", "Median wait", "90th percentile", f"Reached within {T:g} min" if T else ""]
    rows = []
    for f in views:
        kinds = _kinds(f)
        only = kinds[0] if len(kinds) == 1 else None
        label = f"{f.name}: all eligible calls" + (
            f" (all answered by {plots.RESPONDER_LABELS[only]})" if only else "")
        rows.append([label, fmt_value("response_time_p50", _kpi(f.summary, "response_time_p50.eligible")[0]),
                     fmt_value("response_time_p90", _kpi(f.summary, "response_time_p90.eligible")[0]),
                     _pct(_kpi(f.summary, within)[0], 1) if within else ""])
        if len(kinds) > 1:
            for k in kinds:
                who = program_name(f) if k != "police" and len(program_pools(f)) == 1 else plots.RESPONDER_LABELS[k]
                rows.append([f"… answered by {who}",
                             fmt_value("response_time_p50", _kpi(f.summary, f"response_time_p50.eligible.{k}")[0]),
                             fmt_value("response_time_p90", _kpi(f.summary, f"response_time_p90.eligible.{k}")[0]),
                             NOT_APPLICABLE])
    if T is None:
        head, rows = head[:3], [r[:3] for r in rows]
    out = ["<h3>Crisis callers: how long until help is on scene</h3>", _table(head, rows)]
    note = "Eligible calls reached on scene; mean over replications of each replication's median and 90th percentile."
    if T is not None:
        note += (f" The share within {T:g} min counts every eligible call (nobody reached counts as not reached) "
                 f"and is given for all eligible calls, not by who answered.")
    out.append(f"<p class='note'>{html.escape(note)}</p>")
    base = views[0]
    for f in views[1:]:
        out.append(f"<p class='summary'>{html.escape(response_sentence(base, f, table, T))}</p>")
    return "".join(out)


def _change(metric: str, d: tuple[float, float, float], better_if_lower: bool, more: str, less: str) -> str:
    """'17.8 min later [+17.1 to +18.6] (worse)' for one paired difference."""
    m, lo, hi = d
    text = _diff_phrase(metric, m, lo, hi, more, less)
    if text == "the same" or "not distinguishable" in text:
        return text
    worse = (m > 0) == better_if_lower
    return f"{text} ({'worse' if worse else 'better'})"


def response_sentence(base: RunFolder, f: RunFolder, table, T: float | None) -> str:
    """One sentence: what the program does to eligible callers' waits, worse said as worse."""
    p50, p90 = _kpi(f.summary, "response_time_p50.eligible")[0], _kpi(f.summary, "response_time_p90.eligible")[0]
    b50, b90 = _kpi(base.summary, "response_time_p50.eligible")[0], _kpi(base.summary, "response_time_p90.eligible")[0]
    parts = [f"For eligible callers, {f.name} has the median wait at {p50:.1f} min against {b50:.1f} min with "
             f"{base.name}: " + _change("response_time_p50", _diff(table, f.name, "response_time_p50.eligible"),
                                        True, "longer", "shorter"),
             f"the 90th percentile at {p90:.1f} min against {b90:.1f} min: "
             + _change("response_time_p90", _diff(table, f.name, "response_time_p90.eligible"), True, "longer",
                       "shorter")]
    if T is not None:
        key = f"share_within_{T:g}.eligible"
        s, b = _kpi(f.summary, key)[0], _kpi(base.summary, key)[0]
        parts.append(f"{_pct(s)} are reached within {T:g} min against {_pct(b)}: "
                     + _change(key, _diff(table, f.name, key), False, "more", "fewer"))
    return "; ".join(parts) + "."


def has_program(f: RunFolder) -> bool:
    """Whether some eligible calls go to a program first (else the program KPIs do not apply)."""
    if f.scenario is not None:
        return bool(program_pools(f))
    police_first = _kpi(f.summary, "eligible_share.police_first")[0]
    return not (police_first == police_first and police_first >= 1.0 - 1e-9)


def shares_html(views: list[RunFolder]) -> str:
    """Where eligible calls go: the ``eligible_share.*`` partition, adding up to 100% per scenario."""
    cats = list(metrics.ELIGIBLE_CATEGORIES)
    shares = {}
    for f in views:
        raw = {c: _kpi(f.summary, f"eligible_share.{c}")[0] for c in cats}
        shares[f.name] = shares_to_100(raw)
    shown = [c for c in cats if any((shares[f.name][c] or 0) > 0 for f in views)]
    rows = []
    for c in shown:
        row = [plots.SHARE_LABELS[c]]
        for f in views:
            v = shares[f.name][c]
            row.append(NOT_APPLICABLE if (not has_program(f) and f"eligible_share.{c}" in PROGRAM_ONLY)
                       else _pct(v, 1))
        rows.append(row)
    rows.append(["All eligible calls"] + [_pct(sum(v for v in shares[f.name].values() if v == v), 1)
                                          for f in views])
    out = ["<h3>Where eligible calls go</h3>", _table(["Eligible calls answered by"] + [f.name for f in views], rows)]
    note = "Share of the eligible calls of each scenario (means over replications); each column adds up to 100%."
    if any(not has_program(f) for f in views):
        note += f" {NOT_APPLICABLE}: the scenario has no program, so it has no program calls and no fallback."
    out.append(f"<p class='note'>{html.escape(note)}</p>")
    for f in views:
        if has_program(f):
            out.append(f"<p class='summary'>{html.escape(shares_sentence(f, shares[f.name]))}</p>")
    return "".join(out)


def shares_sentence(f: RunFolder, s: dict[str, float]) -> str:
    """'With CAHOOTS, CAHOOTS teams take 76.7% of eligible calls ...; 18.3% go to police because ...'."""
    prog = program_name(f)
    take = (s["program_no_police"] or 0) + (s["program_police_on_scene"] or 0)
    out = [f"In {f.name}, {prog} take {take:.1%} of eligible calls"
           + (f" ({s['program_police_on_scene']:.1%} of all with police on scene too)"
              if (s["program_police_on_scene"] or 0) > 0 else "") + "."]
    rest = []
    for key, why in (("fallback_busy", f"every one of the {prog} was busy"),
                     ("fallback_unstaffed", f"none of the {prog} was on shift")):
        v = s[key] or 0
        if v > 0:
            when = when_phrase(f.calls, key.removeprefix("fallback_")) if f.calls is not None else ""
            rest.append(f"{v:.1%} because {why}" + (f" ({when})" if when else ""))
        else:
            rest.append(f"none because {why}")
    if (s["police_first"] or 0) > 0:
        rest.append(f"{s['police_first']:.1%} are sent to police first (their path or dispatch screening)")
    out.append(" The rest go to police: " + "; ".join(rest) + ".")
    lost = [(s[k] or 0, w) for k, w in (("unanswered", "nobody answered within the waits"),
                                        ("unfinished", "were still open when the run stopped"))]
    lost = [f"{v:.1%} {w}" for v, w in lost if v > 0]
    if lost:
        out.append(" " + " and ".join(lost).capitalize() + ".")
    return "".join(out)


def police_cost_per_hour(f: RunFolder) -> float:
    """Cost of one police unit-hour: the hourly costs of the roles of the police pool (the
    backup pool if the scenario names one, else its first all-sworn pool). NaN if none."""
    s = f.scenario
    if s is None:
        return math.nan
    pools = [p for p in s.pools if s.responder_kind(p) == "police"] or [p for p in s.pools if s.pool_is_police(p)]
    if not pools:
        return math.nan
    pool = s.backup.pool if s.backup is not None and s.backup.pool in pools else pools[0]
    return float(sum(s.roles[r].hourly_cost for r in s.pools[pool].roles if r in s.roles))


def police_html(views: list[RunFolder], table) -> str:
    """Police unit-hours per year, freed against the first scenario, and what they are worth."""
    base = views[0]
    rows = []
    for f in views:
        m, lo, hi = (v * per_year(f) for v in _kpi(f.summary, "police_hours"))
        rows.append([f.name, fmt_interval("police_hours", m, lo, hi)])
    out = ["<h3>Police time</h3>", _table(["Scenario", "Police unit-hours on calls a year"], rows)]
    for f in views[1:]:
        d, lo, hi = (v * per_year(f) for v in _diff(table, f.name, "police_hours"))
        if d != d:
            continue
        cur, rate = currency_of(f), police_cost_per_hour(f)
        freed = -d
        text = (f"With {f.name}, police spend {abs(d):,.0f} {'fewer' if freed > 0 else 'more'} unit-hours a year on "
                f"calls than with {base.name}" + (f" [{-hi:,.0f} to {-lo:,.0f} freed]" if lo == lo else "") + ".")
        if rate == rate and rate > 0:
            text += (f" At {money(rate, cur)} per police unit-hour (the hourly cost of the police pool's roles in "
                     f"the scenario), that time is worth {money(freed * rate, cur)} a year"
                     + (f" [{money(-hi * rate, cur)} to {money(-lo * rate, cur)}]" if lo == lo else "")
                     + ": time freed for other police work, not money saved unless police staffing changes.")
        out.append(f"<p class='summary'>{html.escape(text)}</p>")
    return "".join(out)


def cost_parts(f: RunFolder) -> dict[str, float]:
    """What one scenario costs a year, by part: staff hours by role (on duty and overtime, at
    the role's hourly cost, from the pools table as ``cost_total`` counts them), vehicles and
    beds at the scenario's costs. Means over replications, scaled to 365 days; they add up to
    the ``cost_per_year`` KPI."""
    s, parts = f.scenario, {}
    if s is None or f.pools is None or not len(f.pools):
        return parts
    reps = f.pools["replication"].nunique() if "replication" in f.pools else 1
    year = per_year(f)
    for r in f.pools.itertuples():
        pool = str(r.pool)
        roles = (s.pools[pool].roles if pool in s.pools else
                 s.triage.desks[pool.removeprefix("desk:")].roles if pool.removeprefix("desk:") in s.triage.desks
                 else None)
        hours = (float(r.on_duty_min) + float(getattr(r, "overtime_min", 0.0) or 0.0)) / 60.0
        if roles is None:
            parts[f"Staff: {plots.words(pool)}"] = parts.get(f"Staff: {plots.words(pool)}", 0.0) + \
                float(r.staffed_cost) * year / reps
            continue
        for role in roles:
            key = f"Staff hours: {plots.words(role)}"
            parts[key] = parts.get(key, 0.0) + hours * s.roles[role].hourly_cost * year / reps
    for v, cost in s.costs.vehicle_per_year.items():
        parts[f"Vehicles: {plots.words(v)}"] = s.vehicles.get(v, 0) * cost
    for fac, cost in s.costs.bed_per_day.items():
        parts[f"Beds: {plots.words(fac)}"] = (s.facilities[fac].beds or 0) * cost * 365.0
    return parts


def cost_html(views: list[RunFolder], table) -> str:
    """Each scenario's annual cost by part and in total, and the difference to the first."""
    base = views[0]
    currencies = {currency_of(f) for f in views}
    cur = currency_of(base)
    parts = {f.name: cost_parts(f) for f in views}
    keys = list(dict.fromkeys(k for f in views for k in parts[f.name]))
    pairs = len(views) == 2
    head = ["Cost a year"] + [f.name for f in views] + (["Difference"] if pairs else [])
    rows = []
    for k in keys:
        vals = [parts[f.name].get(k, 0.0) for f in views]
        if not any(vals):
            continue
        rows.append([k] + [money(v, cur) for v in vals] + ([money(vals[1] - vals[0], cur)] if pairs else []))
    totals = [_kpi(f.summary, "cost_per_year") for f in views]
    row = ["Total"] + [money(t[0], cur) for t in totals]
    if pairs:
        d = _diff(table, views[1].name, "cost_per_year")
        row.append(money(d[0], cur) if d[0] == d[0] else money(totals[1][0] - totals[0][0], cur))
    rows.append(row)
    out = ["<h3>What it costs</h3>", _table(head, rows)]
    costed = [w for w, has in (("vehicles", any(f.scenario is not None and f.scenario.costs.vehicle_per_year
                                                 for f in views)),
                               ("beds", any(f.scenario is not None and f.scenario.costs.bed_per_day for f in views)))
              if has]
    note = (f"In {cur}, as the scenario states its costs; staff hours at each role's hourly cost, whether busy or "
            f"not" + (f", plus {' and '.join(costed)}" if costed else "; no vehicle or bed costs are given") + ".")
    if len(currencies) > 1:
        note += f" The scenarios state different currencies ({', '.join(sorted(currencies))}): do not add them up."
    out.append(f"<p class='note'>{html.escape(note)}</p>")
    for f, t in zip(views[1:], totals[1:]):
        d, lo, hi = _diff(table, f.name, "cost_per_year")
        if d != d:
            continue
        text = (f"{f.name} costs {money(t[0], cur)} a year against {money(totals[0][0], cur)} for {base.name}: "
                + (f"{money(abs(d), cur)} {'more' if d > 0 else 'less'}" if d else "the same")
                + (f" [{money(lo, cur)} to {money(hi, cur)}]" if lo == lo and hi - lo > 1e-6 * max(abs(d), 1) else "")
                + ".")
        out.append(f"<p class='summary'>{html.escape(text)}</p>")
    return "".join(out)


def screening_inputs(screening, top: int = 2) -> list[str]:
    """The inputs that moved the KPIs most in a one-at-a-time screening (``sensitivity.csv``
    with input, low, high, swing), in words with their ranges."""
    if screening is None or not {"input", "swing"} <= set(screening.columns):
        return []
    best = screening.sort_values("swing", ascending=False).drop_duplicates("input").head(top)
    return [f"{plots.describe_field(r.input).lower()} ({r.low:g} to {r.high:g})" for r in best.itertuples()]


def caveat(views: list[RunFolder], screening=None) -> str:
    """One sentence: what the figures rest on and what they are not."""
    inputs = screening_inputs(screening)
    costed = any(f.scenario is not None and (f.scenario.costs.vehicle_per_year or f.scenario.costs.bed_per_day)
                 for f in views)
    rest = (f"most of all on {' and '.join(inputs)}, the inputs that moved the results most in the sensitivity "
            "screening" if inputs else
            f"{sum(len(f.raw.get('assumptions') or []) for f in views[:2])} listed in the appendix, not screened for "
            "sensitivity here (crisis-sim sensitivity ranks them)")
    return (f"Caveat: these are simulated figures that rest on the scenarios' assumptions, {rest}; "
            + ("costs count staff hours only, not supervision, training or overhead; " if not costed else "")
            + "police hours freed are capacity for other work, not cash.")


def key_points(base: RunFolder, f: RunFolder, table, T: float | None) -> list[str]:
    """Four one-line points, each scenario against the first: the eligible callers' waits,
    where the program's calls go, police time, cost (the tables below give the intervals)."""
    def k(view, metric):
        return _kpi(view.summary, metric)[0]

    def cmp(metric: str, lower_is_better: bool = True) -> str:
        """better / worse from the paired difference; no clear difference when its interval holds 0."""
        d, lo, hi = _diff(table, f.name, metric)
        if d != d or d == 0:
            return "the same"
        if lo == lo and lo <= 0 <= hi:
            return "no clear difference"
        return "better" if (d < 0) == lower_is_better else "worse"

    p50, b50 = k(f, "response_time_p50.eligible"), k(base, "response_time_p50.eligible")
    p90, b90 = k(f, "response_time_p90.eligible"), k(base, "response_time_p90.eligible")
    wait = (f"Crisis callers (eligible calls) in {f.name}: median wait {p50:.0f} min against {b50:.0f} min in "
            f"{base.name} ({cmp('response_time_p50.eligible')}), 90th percentile {p90:.0f} min against {b90:.0f} "
            f"min ({cmp('response_time_p90.eligible')})")
    if T is not None:
        key = f"share_within_{T:g}.eligible"
        wait += f"; {_pct(k(f, key))} reached within {T:g} min against {_pct(k(base, key))} ({cmp(key, False)})"
    points = [wait + "."]
    if has_program(f):
        take = k(f, "eligible_share.program_no_police") + k(f, "eligible_share.program_police_on_scene")
        busy, off = k(f, "eligible_share.fallback_busy"), k(f, "eligible_share.fallback_unstaffed")
        when = when_phrase(f.calls, "busy") if f.calls is not None and busy > 0 else ""
        points.append(f"{program_name(f)} take {_pct(take)} of eligible calls; {_pct(busy)} go to police because "
                      f"every unit was busy" + (f" ({when})" if when else "") + f", {_pct(off)} because none was on "
                      "shift.")
    d = _diff(table, f.name, "police_hours")[0] * per_year(f)
    rate = police_cost_per_hour(f)
    if d == d:
        points.append(f"Police time: {abs(d):,.0f} unit-hours a year {'freed' if d < 0 else 'more'}"
                      + (f", worth {money(abs(d) * rate, currency_of(f))} at {money(rate, currency_of(f))} an hour"
                         if rate == rate and rate > 0 else "") + ".")
    c, cb = k(f, "cost_per_year"), k(base, "cost_per_year")
    if c == c and cb == cb:
        points.append(f"Cost: {money(c, currency_of(f))} a year against {money(cb, currency_of(base))} "
                      f"({'+' if c >= cb else ''}{money(c - cb, currency_of(f))}).")
    return points


def brief_html(views: list[RunFolder], table, target_min: float | None, screening=None) -> str:
    """The first screen of the report (see the module docstring)."""
    if not views:
        return ""
    if all(f.raw.get("kind") == "violence" for f in views):
        out = [f"<p class='summary'>{html.escape(violence_paragraph(f))}</p>" for f in views]
        if table is not None and len(table) and len(views) > 1:
            out += [f"<p class='summary'>{html.escape(comparison_paragraph(table, views[0].name, f.name))}</p>"
                    for f in views[1:]]
        return "".join(out)
    base = views[0]
    T = target_of(views, target_min)
    reps = min((_reps(f) for f in views), default=0)
    paired = table is not None and len(table) and bool(table["paired"].any())
    names = " against ".join(f.name for f in views[1:] + views[:1]) if len(views) > 1 else base.name
    intro = (f"{names}: what the model gives for {period_phrase(base)}, averaged over {reps} replication"
             f"{'s' if reps != 1 else ''}" + (" that see the same calls in every scenario" if paired else "")
             + ". Brackets are 95% intervals" + (" of paired differences" if paired else "") + ".")
    if len(views) == 1:
        intro += " No counterfactual was given: add a police-only run as the first folder to compare against."
    points = [p for f in views[1:] for p in key_points(base, f, table, T)]
    out = [f"<p class='lead'>{html.escape(intro)}</p>",
           ("<ul class='points'>" + "".join(f"<li>{html.escape(p)}</li>" for p in points) + "</ul>") if points else "",
           response_html(views, table, T), shares_html(views),
           police_html(views, table), cost_html(views, table),
           f"<p class='caveat'>{html.escape(caveat(views, screening))}</p>"]
    return "".join(out)


# --------------------------------------------------------------------------- charts


@dataclass
class Chart:
    """A drawn chart: its title (alt text and file name) and the figure."""

    alt: str
    fig: object


def figure_html(fig, alt: str) -> str:
    """A Figure as an embedded SVG image (no file, no URL, no script)."""
    import base64
    data = base64.b64encode(plots.figure_svg(fig).encode("utf-8")).decode("ascii")
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/svg+xml;base64,{data}"></figure>'


def _try_chart(make, alt: str, notes: list[str], charts: list[Chart]) -> str:
    """Draw one chart; a chart that cannot be drawn from this data is named, not fatal."""
    try:
        fig = make()
    except (KeyError, ValueError, IndexError) as e:
        notes.append(f"{alt}: not drawn ({type(e).__name__}: {e})")
        return ""
    charts.append(Chart(alt, fig))
    return figure_html(fig, alt)


def _summaries(views: list[RunFolder]):
    parts = [f.summary.assign(scenario=f.name) for f in views if f.summary is not None]
    return pd.concat(parts, ignore_index=True) if parts else None


def charts_html(views: list[RunFolder], table, target_min, notes, charts) -> str:
    """The comparison's charts, then each scenario's own (utilisation, zones, beds)."""
    crisis = [f for f in views if f.raw.get("kind") != "violence"]
    out = []
    T = target_of(crisis, target_min) if crisis else None
    calls = [f.calls for f in crisis if f.calls is not None and len(f.calls)]
    summary = _summaries(crisis)
    if calls:
        allcalls = pd.concat([c.assign(scenario=c["scenario"].astype(str)) for c in calls], ignore_index=True)
        out.append(_try_chart(lambda: plots.response_time_cdf(
            allcalls, target_min=T if T is not None else target_min, eligible_only=True, summary=summary,
            title="Eligible calls: time until help is on scene"),
            "Eligible calls: time until help is on scene", notes, charts))
        prog = [f.calls for f in crisis if f.calls is not None and has_program(f)]
        if prog:
            pc = pd.concat([c.assign(scenario=c["scenario"].astype(str)) for c in prog], ignore_index=True)
            out.append(_try_chart(lambda: plots.fallback_by_hour(pc), "When eligible calls go to police instead",
                                  notes, charts))
    if table is not None and len(table) and table["scenario"].nunique() > 1:
        have = set(table["metric"])
        wanted = [m.replace("{T}", f"{T:g}") if T is not None else m for m in FOREST_METRICS]
        use = [m for m in wanted if m in have and "{T}" not in m]
        days = views[0].raw.get("horizon_days")
        over = {"police_hours": f"Police unit-hours on calls over the {days:g} measured days (hours)"} \
            if isinstance(days, (int, float)) else None
        out.append(_try_chart(lambda: plots.forest(table, metrics=use or None, currency=currency_of(views[0]),
                                                   title=f"Each scenario against {views[0].name}", titles=over),
                              f"Differences to {views[0].name}", notes, charts))
    for f in crisis:
        s = f.scenario
        if f.hourly is not None and s is not None and len(f.hourly):
            out.append(_try_chart(lambda: plots.utilisation_by_hour(
                f.hourly, plots.hours_observed(s), pools=list(s.pools), summary=f.summary.assign(scenario=f.name)
                if f.summary is not None else None, scenario=str(f.hourly["scenario"].iloc[0])
                if "scenario" in f.hourly else None,
                title=f"Units busy against units on duty: {f.name}"), f"Utilisation by hour: {f.name}", notes, charts))
        if f.calls is not None and s is not None and len(s.zones) > 1 and has_program(f):
            out.append(_try_chart(lambda: plots.zone_map(f.calls, s.zones, title=f"Eligible calls handled "
                                  f"without police, by zone: {f.name}"), f"Zones: {f.name}", notes, charts))
        if f.occupancy is not None and len(f.occupancy) and plots.limited_facilities(f.occupancy):
            out.append(_try_chart(lambda: plots.bed_occupancy(f.occupancy, f.facilities,
                                  title=f"After-care beds: {f.name}"), f"Beds: {f.name}", notes, charts))
    return "".join(out)


# --------------------------------------------------------------------------- sweep


SWEEP_META = {"scenario", "point", "metric", "mean", "ci_low", "ci_high", "replications", "error", "baseline"}


def parse_goal(text: str) -> tuple[str, bool, float]:
    """'share_within_30.eligible>=0.8' -> (KPI, at_least, value); ReportError if malformed."""
    m = re.fullmatch(r"\s*([A-Za-z0-9_.:-]+)\s*(>=|<=)\s*([-+0-9.eE]+%?)\s*", text or "")
    if not m:
        raise ReportError(f"--goal '{text}': write KPI>=VALUE or KPI<=VALUE, e.g. "
                          "share_within_30.eligible>=0.8 or response_time_p90.eligible<=60")
    value = float(m.group(3).rstrip("%")) / (100.0 if m.group(3).endswith("%") else 1.0)
    return m.group(1), m.group(2) == ">=", value


def sweep_html(f: RunFolder, goal, notes, charts) -> str:
    """A sweep: the curve of the goal's KPI (or a headline KPI) against the first swept field
    with the target as a line, the smallest configuration meeting it with its confidence, and
    the key figures of every configuration in tables of at most four columns."""
    summary = f.summary
    fields = [c for c in summary.columns if c not in SWEEP_META]
    out = []
    metric, at_least, target = goal if goal else (None, None, None)
    have = set(summary["metric"])
    if metric is not None and metric not in have:
        raise ReportError(f"--goal: the sweep in {f.path} has no KPI '{metric}'; it has e.g. "
                          f"{', '.join(sorted(have)[:6])}")
    metric = metric or next((m for m in ("eligible_diversion_rate", "response_time_p90.eligible",
                                         "response_time_p90") if m in have), None)
    if fields and metric:
        x = fields[0]
        label, unit = plots.metric_label(metric)
        if target is not None:
            ok = summary[summary["error"].isna()] if "error" in summary else summary
            best = plots.smallest_meeting(ok, x, metric, target, at_least)
            goal_txt = f"{label.lower()} {'at least' if at_least else 'at most'} {plots.fmt_unit(target, unit)}"
            if best is None:
                text = f"No swept setting of {plots.describe_field(x).lower()} meets the target ({goal_txt})."
            else:
                iv = fmt_interval(metric, best["mean"], best["ci_low"], best["ci_high"])
                conf = ("with 95% confidence: the whole interval meets it" if best["sure"] else
                        "on average only: the 95% interval reaches past the target, so run more replications "
                        "or take the next value to be sure")
                text = (f"The smallest setting of {plots.describe_field(x).lower()} that meets the target ({goal_txt}) is "
                        f"{best['value']:g}, with {iv}; it meets it {conf}.")
            out.append(f"<p class='summary'>{html.escape(text)}</p>")
        out.append(_try_chart(lambda: plots.sweep_curve(summary, x, metric, by=fields[1] if len(fields) > 1 else None,
                                                        target=target, at_least=at_least),
                              f"Sweep of {plots.describe_field(x)}", notes, charts))
    keys = summary[fields].drop_duplicates() if fields else summary[["scenario"]].drop_duplicates()
    columns = [(", ".join(f"{plots.describe_field(k)} = {v}" for k, v in row.items()),
                summary.loc[(summary[list(row.index)] == row.values).all(axis=1)])
               for _, row in keys.iterrows()]
    out.append("<h3>Key figures by configuration</h3>" + kpi_table_html(columns, headline_only=True))
    return "".join(out)


# --------------------------------------------------------------------------- tables and appendix


HEADLINE = ["response_time_p50.eligible", "response_time_p90.eligible", "share_within_{T}.eligible",
            "eligible_diversion_rate", "fallback_busy_rate", "fallback_unstaffed_rate", "police_hours",
            "cost_per_year", "response_time_p50", "response_time_p90", "no_response_rate", "unfinished_rate"]


def kpi_table_html(columns: list[tuple[str, object]], currency: str = "USD", headline_only: bool = False,
                   no_program: set[str] = frozenset()) -> str:
    """Metrics in words as rows, one column per (label, summary table): 'mean [low–high]'.
    Rows that are zero (or empty) in every column are folded into a closed details box; more
    than :data:`MAX_TABLE_COLUMNS` columns fold into several tables. ``no_program``: labels
    of columns without a program, whose program KPIs read –."""
    columns = [(label, t) for label, t in columns if t is not None and len(t)]
    if not columns:
        return ""
    metrics_ = list(dict.fromkeys(m for _, t in columns for m in t["metric"]))
    heads = [h.replace("{T}", m.group(1)) for h in HEADLINE for m in
             [re.match(r"share_within_([0-9.]+)\.eligible$", x) for x in metrics_] if m and "{T}" in h] + \
        [h for h in HEADLINE if "{T}" not in h]
    first = [m for m in heads if m in metrics_]
    metrics_ = first + ([] if headline_only and first else [m for m in metrics_ if m not in first])
    out = []
    for k in range(0, len(columns), MAX_TABLE_COLUMNS):
        chunk = columns[k:k + MAX_TABLE_COLUMNS]
        shown, folded = [], []
        for m in metrics_:
            label, unit = plots.metric_label(m, currency)
            vals = [_kpi(t, m) for _, t in chunk]
            cells = [NOT_APPLICABLE if (lab in no_program and m in PROGRAM_ONLY) else fmt_interval(m, *v, currency)
                     for (lab, _), v in zip(chunk, vals)]
            row = [label + (f" ({unit})" if unit and unit.lower() not in label.lower() else "")] + cells
            zero = all((v[0] == 0 or v[0] != v[0]) for v in vals)
            (folded if zero else shown).append(row)
        out.append(_table(["Figure"] + [label for label, _ in chunk], shown))
        if folded:
            out.append(f"<details><summary>{len(folded)} more figure{'s' if len(folded) != 1 else ''} "
                       f"that are zero or empty in every column</summary>"
                       + _table(["Figure"] + [label for label, _ in chunk], folded) + "</details>")
    reps = ", ".join(f"{label}: {int(t['replications'].max())}" for label, t in columns)
    out.append(f"<p class='note'>Mean across replications [95% t-interval]. Replications: {html.escape(reps)}.</p>")
    return "".join(out)


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
    return f"<div class='scroll'><table class='manifest'>{rows}</table></div>"


def scenario_appendix(f: RunFolder, level: int = 3) -> str:
    """A scenario's description, staffing, assumptions and sources."""
    h = f"h{level}"
    out = [f"<{h}>{html.escape(f.name)}</{h}>"]
    if f.raw.get("description"):
        out.append(f"<p>{html.escape(str(f.raw['description']))}</p>")
    out.append(f"<p>{html.escape(scenario_paragraph(f))}</p>")
    out.append("<h4>Assumptions</h4>" + _list_html(f.raw.get("assumptions"), "None stated in the scenario file."))
    out.append("<h4>Sources</h4>" + _list_html(f.raw.get("sources"), "None stated in the scenario file."))
    if f.scenario is None and f.raw:
        f.notes.append(f"{f.name}: scenario.resolved.yaml no longer validates with this version; staffing and "
                       "per-hour charts are left out")
    return "".join(out)


def glossary_html() -> str:
    """The report's own terms, then every KPI family of :func:`sim.metrics.glossary`."""
    terms = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in TERMS.items())
    kp = "".join(f"<dt>{html.escape(plots.metric_label(k.replace('<stat>', 'mean').replace('<T>', 'T'))[0])}"
                 f" <code>{html.escape(k)}</code></dt><dd>{html.escape(v)}</dd>"
                 for k, v in metrics.glossary().items())
    return f"<h3>Glossary</h3><h4>Terms</h4><dl>{terms}</dl><h4>Figures</h4><dl>{kp}</dl>"


CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;max-width:60em;margin:0 auto;
padding:0.8em;color:#111;line-height:1.45;overflow-wrap:break-word}
h1{font-size:1.5em;margin:0.3em 0} h2{border-bottom:2px solid #333;padding-bottom:0.2em;margin-top:1.6em}
h3{margin:1.2em 0 0.3em} h4{margin:0.8em 0 0.2em}
.lead{font-size:1.05em} .summary{background:#f3f3f3;border-left:4px solid #333;padding:0.5em 0.8em}
.caveat{border-left:4px solid #a60;padding:0.4em 0.8em;background:#fbf4ea}
.scroll{overflow-x:auto;max-width:100%} ul.points{font-size:1.05em;padding-left:1.2em} ul.points li{margin:0.3em 0}
table{border-collapse:collapse;margin:0.4em 0;font-size:0.9em}
th,td{border:1px solid #bbb;padding:0.25em 0.5em;text-align:left;vertical-align:top}
thead th{background:#e6e6e6} td{font-variant-numeric:tabular-nums}
table.kpi td{white-space:nowrap} table.manifest td{word-break:break-all}
.note{color:#444;font-size:0.86em} figure{margin:1em 0}
figure img{display:block;width:100%;max-width:44em;height:auto;border:1px solid #ddd}
nav ul{display:flex;flex-wrap:wrap;gap:0.2em 1.2em;list-style:none;padding:0;margin:0.4em 0}
nav li{break-inside:avoid}
details summary{cursor:pointer;color:#333} dt{font-weight:600;margin-top:0.5em} dd{margin-left:1em}
code{font-size:0.85em;color:#555}
@media (max-width:480px){body{padding:0.5em;font-size:15px} table{font-size:0.82em}
th,td{padding:0.2em 0.3em} table.kpi td{white-space:normal}}
@page{size:A4;margin:14mm}
@media print{body{max-width:none;padding:0} section.page{break-before:page}
table,tr,.scroll,figure,.summary,.caveat,dl>dt{break-inside:avoid} h2,h3,h4{break-after:avoid}
.scroll{overflow:visible} figure img{max-width:100%;max-height:245mm;width:auto} details{display:none} a{color:inherit}}
"""


def build_report(results_dirs, out_path, title: str | None = None, target_min: float | None = None,
                 charts_dir=None, goal: str | None = None, pdf=None):
    """Write one self-contained HTML report for ``results_dirs`` (folders, or fsspec URLs of
    folders an experiment wrote there; the first scenario is the counterfactual of
    comparisons) to ``out_path``; ``target_min``: the response target in
    minutes (default: the scenarios' first ``response_targets_min``); ``goal``: a sweep's
    target, 'KPI>=VALUE' or 'KPI<=VALUE'. With ``charts_dir``, every chart is also saved there
    (SVG and PNG at 200 dpi, see :func:`save_charts`); with ``pdf``, the page is also printed
    to that PDF file by headless Chromium (:func:`print_pdf`)."""
    import tempfile
    # a folder at a URL is copied here for as long as the report is being built
    with tempfile.TemporaryDirectory(prefix="crisis-sim-report-") as fetched:
        every = [load_results(fetch(d, Path(fetched) / str(k)), source=d) if is_url(d) else load_results(d)
                 for k, d in enumerate(results_dirs)]
        return _write_report(every, out_path, title, target_min, charts_dir, goal, pdf)


def _write_report(every: list[RunFolder], out_path, title, target_min, charts_dir, goal, pdf):
    """:func:`build_report` of the folders it read."""
    from .results import write_text
    if not every:
        raise ReportError("give at least one results folder")
    parsed_goal = parse_goal(goal) if goal else None
    views: list[RunFolder] = []
    for f in every:
        if f.kind == "run" and f.summary is not None:
            views.append(f)
        elif f.kind == "compare":
            views.extend(compare_members(f) or [])
    sweeps = [f for f in every if f.kind == "sweep"]
    optimized = [f for f in every if f.kind == "optimize"]
    grids = [f for f in every if f.kind == "sensitivity" and f.sensitivity is not None]
    screening = next((f.sensitivity for f in every if f.sensitivity is not None
                      and "swing" in f.sensitivity.columns), None)
    title = title or ("crisis-sim: " + " vs ".join(f.name for f in (views or every)[:3])
                      + (" ..." if len(views or every) > 3 else ""))
    table = compare_table(views) if len(views) > 1 else None
    notes: list[str] = []
    charts: list[Chart] = []
    sections = []
    brief = brief_html(views, table, target_min, screening)
    for f in sweeps:
        brief += f"<h3>{html.escape(f.name)}: staffing sweep</h3>" + sweep_html(f, parsed_goal, notes, charts)
    for f in grids:
        brief += f"<p class='summary'>{html.escape(sensitivity_paragraph(f.sensitivity))}</p>"
    for f in optimized:
        brief += optimize_html(f)
    sections.append(("brief", "The brief", brief))
    chart_parts = charts_html(views, table, target_min, notes, charts)
    for f in grids:
        from .violence.plots import plot_sensitivity
        chart_parts += _try_chart(lambda: plot_sensitivity(f.sensitivity), f"Sensitivity: {f.name}", notes, charts)
    if chart_parts:
        sections.append(("charts", "Charts", chart_parts))
    appendix = []
    if views:
        cur = currency_of(views[0])
        appendix.append("<h3>Every figure</h3>" + kpi_table_html(
            [(f.name, f.summary) for f in views], currency=cur,
            no_program={f.name for f in views if not has_program(f)}))
    for f in views:
        appendix.append(scenario_appendix(f))
    appendix.append("<h3>Run manifests</h3>")
    for f in every:
        appendix.append(f"<h4>{html.escape(f.name)}</h4><p class='note'>Folder: {html.escape(str(f.source or f.path))}</p>"
                        + manifest_html(f))
    notes += [n for f in views for n in f.notes]
    if notes:
        appendix.append("<h3>Not shown</h3>" + _list_html(notes, ""))
    appendix.append(glossary_html())
    sections.append(("appendix", "Appendix", "".join(appendix)))
    nav = "".join(f"<li><a href='#{sid}'>{html.escape(head)}</a></li>" for sid, head, _ in sections)
    head = (f"<h1>{html.escape(title)}</h1><p class='note'>Written {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')} "
            f"by crisis-sim {html.escape(__version__)} from {len(every)} results folder"
            f"{'s' if len(every) > 1 else ''}. Simulated numbers: what these scenarios imply under their stated "
            f"assumptions, not forecasts.</p><nav><ul>{nav}</ul></nav>")
    body = "".join(f"<section id='{sid}' class='{'page' if k else 'first'}'><h2>{html.escape(h)}</h2>{content}"
                   f"</section>" for k, (sid, h, content) in enumerate(sections))
    doc = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
           "<meta name='viewport' content='width=device-width, initial-scale=1'>"
           "<link rel='icon' href='data:,'>"
           f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>{head}{body}</body></html>\n")
    out = Path(out_path)
    write_text(out, doc)
    if charts_dir is not None:
        save_charts(charts, charts_dir)
    if pdf is not None:
        print_pdf(out, pdf)
    return out


def chart_slug(alt: str) -> str:
    """A whole-word file name for a chart title: 'Utilisation by hour: Eugene — CAHOOTS (2019)' ->
    'utilisation-by-hour-eugene-cahoots-2019' (cut at a word boundary past 80 characters)."""
    slug = re.sub(r"[^a-z0-9]+", "-", alt.lower()).strip("-") or "chart"
    if len(slug) > 80:
        slug = slug[:81].rsplit("-", 1)[0]
    return slug


def save_charts(charts: list[Chart], folder) -> list[Path]:
    """Write each chart to ``folder`` as ``NN-<title>.svg`` and ``.png`` (200 dpi), after
    removing the ``NN-*.svg`` / ``.png`` files an earlier report left there."""
    from .results import atomic_write
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():                 # charts of an earlier report, so no stale one stays
        if re.fullmatch(r"\d\d-[a-z0-9-]+\.(svg|png)", old.name):
            old.unlink()
    written = []
    for k, c in enumerate(charts):
        base = folder / f"{k + 1:02d}-{chart_slug(c.alt)}"
        svg, png = plots.figure_svg(c.fig).encode("utf-8"), plots.figure_png(c.fig)
        for path, payload in ((base.with_suffix(".svg"), svg), (base.with_suffix(".png"), png)):
            atomic_write(path, lambda tmp, payload=payload: Path(tmp).write_bytes(payload))
            written.append(path)
    return written


def chromium() -> str | None:
    """The headless Chromium on this machine (``make browser`` installs Debian's), or None."""
    import shutil
    return next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)


class BrowserMissing(RuntimeError):
    """No headless Chromium to print the PDF with."""


def print_pdf(html_path, pdf_path, timeout_s: float = 180.0) -> Path:
    """Print ``html_path`` to ``pdf_path`` with headless Chromium (A4, no header or footer;
    the page's print styles break pages between sections, not inside tables or charts).
    Written atomically with the umask's mode. :class:`BrowserMissing` without Chromium."""
    import subprocess
    import tempfile
    from .results import atomic_write
    exe = chromium()
    if exe is None:
        raise BrowserMissing("--pdf needs headless Chromium: run 'make browser' (apt-get install chromium)")
    pdf_path = Path(pdf_path)

    def write(tmp: str) -> None:
        with tempfile.TemporaryDirectory(prefix="crisis-sim-chromium-") as profile:
            proc = subprocess.run(
                [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                 "--no-pdf-header-footer", f"--print-to-pdf={tmp}", Path(html_path).resolve().as_uri()],
                capture_output=True, text=True, timeout=timeout_s)
        if proc.returncode != 0 or Path(tmp).stat().st_size == 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise BrowserMissing(f"chromium could not print {html_path} to PDF: {last}")
    atomic_write(pdf_path, write)
    return pdf_path


# --------------------------------------------------------------------------- CLI


def _cmd_report(args) -> int:
    import sys
    from .scenario import printable
    pdf = None
    if args.pdf is not None:
        pdf = Path(args.pdf) if args.pdf else Path(args.out).with_suffix(".pdf")
    try:
        out = build_report(args.results, args.out, title=args.title, target_min=args.target_min,
                           charts_dir=args.charts_dir, goal=args.goal, pdf=pdf)
    except ReportError as e:
        print(f"error: {printable(str(e))}", file=sys.stderr)
        return 2
    except BrowserMissing as e:
        print(f"error: {printable(str(e))}", file=sys.stderr)
        return 1
    print(f"wrote {out}" + (f" and {pdf}" if pdf else ""))
    return 0


def register_cli(subparsers) -> None:
    """Add ``crisis-sim report RESULTS_DIR... --out report.html [--pdf]`` to the CLI."""
    from .argtypes import positive_float
    p = subparsers.add_parser("report", help="write one self-contained HTML report (and PDF) from results folders")
    p.add_argument("results", nargs="+", metavar="RESULTS_DIR",
                   help="results folders written by run, compare or sweep, or their object-store URLs "
                        "(s3://bucket/prefix, as compare --out wrote them); the first scenario is the "
                        "counterfactual the others are compared with")
    p.add_argument("--out", default="report.html", help="HTML file to write (default report.html)")
    p.add_argument("--title", default=None, help="report title (default: the scenario names)")
    p.add_argument("--target-min", type=positive_float, default=None,
                   help="response target in minutes for the brief and charts (default: the scenario's first "
                        "response_targets_min)")
    p.add_argument("--goal", default=None, metavar="KPI>=VALUE",
                   help="a sweep's target, e.g. share_within_30.eligible>=0.8 or response_time_p90.eligible<=60: "
                        "drawn as a line, and the smallest configuration meeting it is named")
    p.add_argument("--charts-dir", default=None, help="also save every chart there (SVG and 200-dpi PNG)")
    p.add_argument("--pdf", nargs="?", const="", default=None, metavar="PDF",
                   help="also print the report to PDF with headless Chromium (default: the --out name with .pdf)")
    p.set_defaults(func=_cmd_report)
