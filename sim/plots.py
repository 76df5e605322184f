"""Charts for planners and working groups: one function per chart, DataFrame in, Figure out.

Every function takes the tidy tables a run writes (``calls``, ``hourly``, a summary, a
comparison or sweep table, bed occupancy) and returns a :class:`matplotlib.figure.Figure`
drawn on the Agg canvas, without touching pyplot's global state. The style is shared:
Okabe-Ito colours that stay apart in greyscale, each series also told apart by its line
style, marker or hatch; a title; axis labels with units; and a footnote naming the source
scenario(s) and the number of replications.

Charts:

* :func:`response_time_cdf` - response-time distribution per scenario, p50/p90 marked, target line
* :func:`fallback_by_hour` - eligible calls falling back (all units busy / none on shift) and handled
  without police, by hour of week
* :func:`utilisation_by_hour` - units busy against units on duty, by hour of week, per pool
* :func:`sweep_curve` - a KPI against a swept field with its 95% band
* :func:`bed_occupancy` - beds occupied over time per facility, and refusals per facility
* :func:`forest` - differences of KPIs to the first scenario, with 95% intervals
* :func:`zone_map` - zones coloured by a KPI (rectangles from ``rect_km``, else bars)

Calls that arrived during the warm-up (``warmup`` is True) are left out, as in the KPIs.
Every number a chart prints (a median, a p90, a share within the target, a utilisation) is
the KPI of :mod:`sim.metrics`, computed per replication and then averaged, read from a
summary table when one is given. Legends sit below the plot, never over the data; charts
are 6.4 inches wide so that their text stays readable on a 420-pixel phone screen, and
:func:`figure_svg` / :func:`figure_png` give SVG (text as text) or PNG at twice screen
resolution. Labels are in words (:func:`metric_label`, :func:`describe_field`).
"""
from __future__ import annotations

import io
import math
import re
import textwrap
from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

from .metrics import kpis, summarise, t_interval

# Colour, line style, marker, hatch per series: Okabe-Ito colours, ordered so that
# neighbours differ in lightness; line style, marker and hatch keep them apart in grey.
STYLES = [
    ("#000000", "-", "o", "//"),
    ("#E69F00", "--", "s", "\\\\"),
    ("#0072B2", ":", "^", ".."),
    ("#009E73", "-.", "D", "xx"),
    ("#CC79A7", (0, (5, 1, 1, 1, 1, 1)), "v", "++"),
    ("#56B4E9", (0, (1, 3)), "P", "--"),
    ("#D55E00", (0, (8, 2)), "X", "||"),
]
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
WEEK_HOURS = 168
SEQUENTIAL = "cividis"   # lightness rises monotonically: reads in greyscale

# KPI name -> (label, unit); unit "%" means a share plotted as a percentage. Names with a
# suffix (``.eligible``, ``.<pool>``...) are built by :func:`metric_label` from these heads.
METRIC_LABELS = {
    "calls": ("Calls", "calls"),
    "calls_per_day": ("Calls per day", "calls/day"),
    "response_time_mean": ("Mean response time", "min"),
    "response_time_p50": ("Median response time", "min"),
    "response_time_p90": ("90th percentile response time", "min"),
    "callback_time_mean": ("Mean time to a phone callback", "min"),
    "callback_time_p90": ("90th percentile time to a phone callback", "min"),
    "queue_wait_mean": ("Mean wait for a unit to be assigned", "min"),
    "travel_time_mean": ("Mean travel time", "min"),
    "diversion_rate": ("Calls closed without police on scene", "%"),
    "eligible_diversion_rate": ("Eligible calls handled without police", "%"),
    "fallback_rate": ("Eligible calls that fell back to a later responder", "%"),
    "fallback_busy_rate": ("Eligible calls that fell back: every program unit busy", "%"),
    "fallback_unstaffed_rate": ("Eligible calls that fell back: no program unit on shift", "%"),
    "answered_by_police_rate": ("Eligible calls answered by police", "%"),
    "police_backup_rate": ("Police backup requests per call a non-police unit answered", "%"),
    "no_response_rate": ("Calls nobody answered", "%"),
    "unfinished_rate": ("Calls still open when the run stopped", "%"),
    "unfinished_calls": ("Calls still open when the run stopped", "calls"),
    "police_hours": ("Police unit-hours on calls", "hours"),
    "utilisation": ("Utilisation (busy share of on-duty time)", "%"),
    "overtime_hours": ("Overtime past shift end", "hours"),
    "cost_per_call": ("Staffed cost per call", "{cur} per call"),
    "cost_total": ("Total cost of the measured period", "{cur}"),
    "cost_per_year": ("Total cost per year", "{cur} a year"),
    "transports": ("Transports to", "transports"),
    "transport_consent_refused": ("Transports the person declined", "transports"),
    "door_wait_hours": ("Team-hours waiting at facility doors", "hours"),
    "occupancy_mean": ("Mean beds occupied", "beds"),
    "occupancy_peak": ("Most beds occupied at once", "beds"),
    "refusal_rate": ("Arrivals turned away, facility full", "%"),
    "admissions": ("Admissions", "people"),
    "backups": ("Police backup requests", "requests"),
    "backup_delay_mean": ("Mean wait for police backup", "min"),
    "followups_done": ("Follow-up visits made", "visits"),
    "followups_missed": ("Follow-up visits missed", "visits"),
    "followups_preempted": ("Follow-up visits interrupted by an urgent call", "visits"),
    "repeat_calls": ("Calls from people who had called before", "calls"),
    "unique_people": ("People served", "people"),
    "calls_prevented": ("Calls prevented by case management", "calls"),
    "outreach_contacts": ("Outreach contacts", "contacts"),
    "shootings": ("Shootings", "shootings"),
}
# who answered (the call log's ``responder``), in plain words
RESPONDER_LABELS = {"police": "police", "co_responder": "co-responder teams", "civilian": "civilian teams",
                    "remote": "phone teams", "none": "nobody"}
# ``eligible_share.<category>`` in plain words (sim.metrics.ELIGIBLE_CATEGORIES)
SHARE_LABELS = {
    "program_no_police": "Program team, no police on scene",
    "program_police_on_scene": "Program team, police also on scene (co-responder or backup)",
    "fallback_busy": "Police (or the next responder): every program unit was busy",
    "fallback_unstaffed": "Police (or the next responder): no program unit was on shift",
    "police_first": "Police, sent there first (by the call's path or by screening)",
    "unanswered": "Nobody answered within the waits",
    "unfinished": "Still open when the run stopped",
}
_STATS = {"mean": "Mean", "p50": "Median", "p90": "90th percentile"}


def words(name) -> str:
    """A pool, facility, call type or field name in plain words: 'hospital_ed' -> 'hospital ed'."""
    return str(name).replace("_", " ").replace(".", " ").strip()


def metric_label(metric: str, currency: str = "USD") -> tuple[str, str]:
    """(plain-language label, unit) of a KPI name (every name :func:`sim.metrics.kpis` writes):
    ``utilisation.crisis_team`` -> ('Utilisation (busy share of on-duty time): crisis team', '%');
    ``response_time_p90.eligible.civilian`` -> ('90th percentile response time, eligible calls
    answered by civilian teams', 'min'). Costs are in ``currency``. No label keeps a ``_`` or ``.``."""
    def done(label: str, unit: str) -> tuple[str, str]:
        return label, unit.replace("{cur}", currency)
    if metric in METRIC_LABELS:
        return done(*METRIC_LABELS[metric])
    m = re.fullmatch(r"response_time_(mean|p50|p90)\.(.+)", metric)
    if m:
        stat, rest = _STATS[m.group(1)], m.group(2)
        if rest == "eligible":
            return f"{stat} response time, eligible calls", "min"
        if rest == "not_eligible":
            return f"{stat} response time, calls not eligible", "min"
        if rest.startswith("eligible."):
            kind = rest.removeprefix("eligible.")
            return f"{stat} response time, eligible calls answered by {RESPONDER_LABELS.get(kind, words(kind))}", "min"
        if rest.startswith("type."):
            return f"{stat} response time, {words(rest.removeprefix('type.'))} calls", "min"
    m = re.fullmatch(r"share_within_([0-9.]+)(\.eligible)?", metric)
    if m:
        who = "Eligible calls" if m.group(2) else "Calls"
        return f"{who} reached on scene within {m.group(1)} min", "%"
    m = re.fullmatch(r"police_response_time_p(\d+)_mean", metric)
    if m:
        return f"Police mean response time, priority {m.group(1)}", "min"
    head, _, rest = metric.partition(".")
    if head == "eligible_share" and rest:
        return f"Eligible calls: {SHARE_LABELS.get(rest, words(rest)).lower()}", "%"
    if head in METRIC_LABELS and rest:
        label, unit = METRIC_LABELS[head]
        return done(f"{label} {words(rest)}" if head == "transports" else f"{label}: {words(rest)}", unit)
    text = words(metric)
    return text[:1].upper() + text[1:], ""


def axis_label(metric: str, currency: str = "USD") -> str:
    label, unit = metric_label(metric, currency)
    return f"{label} ({unit})" if unit else label


def describe_field(path: str) -> str:
    """A swept field path in plain words: 'pools.crisis_team.teams' -> 'Teams on duty, crisis team
    (24/7)', 'pools.cahoots.shifts.1.teams' -> 'Teams on duty, cahoots, shift 2'."""
    parts = str(path).split(".")
    m = re.fullmatch(r"pools\.([^.]+)\.teams", path)
    if m:
        return f"Teams on duty, {words(m.group(1))} (24/7)"
    m = re.fullmatch(r"pools\.([^.]+)\.shifts\.(-?\d+)\.teams", path)
    if m:
        k = int(m.group(2))
        return f"Teams on duty, {words(m.group(1))}, {'last shift' if k == -1 else f'shift {k + 1}'}"
    m = re.fullmatch(r"vehicles\.([^.]+)", path)
    if m:
        return f"Vehicles, {words(m.group(1))}"
    m = re.fullmatch(r"facilities\.([^.]+)\.beds", path)
    if m:
        return f"Beds at {words(m.group(1))}"
    m = re.fullmatch(r"triage\.paths\.([^.]+)\.max_wait_min(?:\.(\d+))?", path)
    if m:
        return f"Longest wait for the first responder, {words(m.group(1))} calls (min)"
    text = " ".join(words(p) for p in parts if not p.isdigit())
    return text[:1].upper() + text[1:]


# --------------------------------------------------------------------------- helpers

WIDTH = 6.4          # inches: at 420 px the text still reads (scale about 0.6)


def _figure(nrows: int = 1, ncols: int = 1, size=(WIDTH, 4.2), **kw) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    for ax in axes.flat:
        ax.grid(True, color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.tick_params(labelsize=9)
    return fig, axes


def _style(i: int) -> dict:
    color, ls, marker, hatch = STYLES[i % len(STYLES)]
    return {"color": color, "linestyle": ls, "marker": marker, "hatch": hatch}


def _names(df: pd.DataFrame, col: str = "scenario") -> list[str]:
    if col not in df:
        return []
    return [str(v) for v in pd.unique(df[col].astype(object))]


def source_note(df: pd.DataFrame, extra: str | None = None) -> str:
    """'Source: scenarios A and B; 10 replications each.' from a table's own columns."""
    names = _names(df)
    parts = []
    if names:
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        parts.append(f"Source: scenario{'s' if len(names) > 1 else ''} {shown}")
    reps = None
    if "replication" in df and len(df):
        per = df.groupby("scenario", observed=True)["replication"].nunique() if names else \
            pd.Series([df["replication"].nunique()])
        reps = (int(per.min()), int(per.max()))
    elif "replications" in df and (df["replications"] > 0).any():     # a KPI no replication had: not a count
        r = df.loc[df["replications"] > 0, "replications"]
        reps = (int(r.min()), int(r.max()))
    if reps:
        lo, hi = reps
        each = " each" if len(names) > 1 else ""
        parts.append(f"{lo} replication{'s' if lo != 1 else ''}{each}" if lo == hi
                     else f"{lo} to {hi} replications")
    if extra:
        parts.append(extra)
    return "; ".join(parts) + "." if parts else ""


def _finish(fig: Figure, title: str, note: str) -> Figure:
    width = int(fig.get_figwidth() * 8.5)          # characters of a bold 12 pt title per line
    fig.suptitle(textwrap.fill(title, width), fontsize=12, fontweight="bold")
    if note:
        text = textwrap.fill(note, int(fig.get_figwidth() * 15))
        lines = text.count("\n") + 1
        bottom = (0.16 + 0.125 * lines) / fig.get_figheight()
        fig.get_layout_engine().set(rect=(0, bottom, 1, 1 - bottom))      # left, bottom, width, height
        fig.text(0.01, 0.08 / fig.get_figheight(), text, fontsize=8, color="#333333", ha="left", va="bottom",
                 gid="footnote")
    return fig


def _legend_below(fig: Figure, ax, ncols: int = 1, handles_from=None, **kw) -> None:
    """The legend under ``ax`` (below its x label: give the bottom axes), outside every plot,
    so it never covers data; entries from ``handles_from`` (default ``ax``), wrapped to the
    figure's width."""
    handles, labels = (handles_from or ax).get_legend_handles_labels()
    if handles:
        chars = int(fig.get_figwidth() * 13 / ncols)
        labels = [textwrap.fill(label, chars) for label in labels]
        ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=ncols, fontsize=9,
                  frameon=False, **kw)


def figure_svg(fig: Figure) -> str:
    """The figure as SVG text (text kept as text, so it scales and can be searched), with no
    date and a fixed id salt: the same chart gives the same bytes."""
    from matplotlib import rc_context
    buf = io.StringIO()
    # text.parse_math off: a scenario named "Budget $5M" is text, not an unbalanced formula
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "crisis-sim", "text.parse_math": False}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def figure_png(fig: Figure, dpi: int = 200) -> bytes:
    """The figure as PNG at ``dpi`` (200: twice a 100-dpi screen)."""
    from matplotlib import rc_context
    buf = io.BytesIO()
    with rc_context({"text.parse_math": False}):
        fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def _measured(calls: pd.DataFrame) -> pd.DataFrame:
    return calls[~calls["warmup"].to_numpy(bool)] if "warmup" in calls else calls


def _week_axis(ax, label: str = "Hour of the week the call came in") -> None:
    ax.set_xlim(0, WEEK_HOURS)
    ax.set_xticks(np.arange(0, WEEK_HOURS + 1, 24), labels=[""] * 8)
    ax.set_xticks(np.arange(12, WEEK_HOURS, 24), labels=DAYS, minor=True)
    ax.tick_params(axis="x", which="minor", length=0)
    ax.set_xlabel(label)


def _percent_axis(ax, unit: str, axis: str = "y") -> None:
    if unit == "%":
        (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(PercentFormatter(1.0))


def hour_of_week(t_min) -> np.ndarray:
    """Minutes from Monday 00:00 -> hour of the week, 0..167."""
    return (np.floor_divide(np.asarray(t_min, dtype=float), 60.0) % WEEK_HOURS).astype(int)


def hours_observed(scenario) -> np.ndarray:
    """How often each of the 168 hours of the week lies in the measured window of a run of
    ``scenario`` (whole hours from the end of the warm-up to the end of the horizon), the
    divisor that turns the ``hourly`` team-minutes into teams per hour."""
    h0, h1 = math.ceil(scenario.warmup_min / 60.0), math.floor(scenario.end_min / 60.0)
    return np.bincount(np.arange(h0, h1) % WEEK_HOURS, minlength=WEEK_HOURS)


def kpi_means(calls: pd.DataFrame, by: str = "scenario") -> dict[str, dict[str, float]]:
    """``{by value: {KPI: mean over replications}}`` from a call log alone, through
    :func:`sim.metrics.kpis` (the one definition); for charts drawn without a summary table.
    Only KPIs that need no pools or scenario are meaningful here (response times, shares)."""
    empty_pools = pd.DataFrame(columns=["pool", "busy_min", "on_duty_min", "overtime_min", "busy_on_duty_min",
                                        "staffed_cost", "calls_served", "remote"])
    out = {}
    for name in _names(calls, by):
        g = calls[calls[by].astype(object) == name]
        reps = [r for _, r in g.groupby("replication", observed=True)] if "replication" in g else [g]
        per = pd.DataFrame([kpis(r, empty_pools, math.nan) for r in reps])
        out[name] = {k: float(np.nanmean(v)) if np.isfinite(v).any() else math.nan
                     for k, v in per.astype(float).items()}
    return out


def _summary_means(summary: pd.DataFrame | None) -> dict[str, dict[str, float]]:
    """``{scenario: {KPI: mean}}`` from a summary table (scenario, metric, mean)."""
    if summary is None or not len(summary):
        return {}
    s = summary if "scenario" in summary else summary.assign(scenario="")
    return {str(k): dict(zip(g["metric"], g["mean"].astype(float))) for k, g in s.groupby("scenario", sort=False)}


# --------------------------------------------------------------------------- charts


def response_time_cdf(calls: pd.DataFrame, target_min: float | None = None, by: str = "scenario",
                      title: str = "Time until help arrives", points: int = 400, eligible_only: bool = False,
                      summary: pd.DataFrame | None = None) -> Figure:
    """Share of calls reached on scene within x minutes, one line per ``by`` value: in each
    replication the empirical distribution of on-scene response times (the calls the
    ``response_time_*`` KPIs count), averaged over replications. The median (p50) and p90
    markers and the share within ``target_min`` in the legend are the KPIs themselves
    (per replication, then averaged): read from ``summary`` (scenario, metric, mean) when
    given, else computed by :func:`sim.metrics.kpis` from the log. ``eligible_only``: only
    calls eligible for the program (the ``.eligible`` KPIs)."""
    fig, axes = _figure()
    ax = axes[0, 0]
    c = _measured(calls)
    if "proactive" in c:
        c = c[~c["proactive"].to_numpy(bool)]
    if "outcome" in c:
        c = c[c["outcome"].astype(object) != "prevented"]
    if eligible_only:
        c = c[c["eligible"].to_numpy(bool)]
    suffix = ".eligible" if eligible_only else ""
    means = _summary_means(summary) if summary is not None else kpi_means(calls, by)
    xmax = 0.0
    for i, name in enumerate(_names(c, by)):
        g = c[c[by].astype(object) == name]
        reps = [r for _, r in g.groupby("replication", observed=True)] if "replication" in g else [g]
        samples = [np.sort(r["response_time"].to_numpy(float)) for r in reps]
        samples = [s[~np.isnan(s)] for s in samples]
        samples = [s for s in samples if len(s)]
        if not samples:
            continue
        xmax = max(xmax, float(np.mean([np.quantile(s, 0.95) for s in samples])) * 1.25)
        st = _style(i)
        k = means.get(name, {})
        p50, p90 = k.get(f"response_time_p50{suffix}", math.nan), k.get(f"response_time_p90{suffix}", math.nan)
        label = f"{name}: median {p50:.0f} min, p90 {p90:.0f} min"
        share = k.get(f"share_within_{target_min:g}{suffix}", math.nan) if target_min is not None else math.nan
        if share == share:
            label += f", {share:.0%} within {target_min:g} min"
        grid = np.linspace(0.0, float(max(s[-1] for s in samples)), points + 1)
        y = np.mean([np.searchsorted(s, grid, side="right") / len(s) for s in samples], axis=0)
        ax.plot(grid, y, color=st["color"], linestyle=st["linestyle"], linewidth=1.8, label=label,
                gid=f"cdf:{name}")
        ax.plot([p50, p90], [0.5, 0.9], linestyle="none", marker=st["marker"], color=st["color"],
                markersize=7, markerfacecolor="white", markeredgewidth=1.5, gid=f"pct:{name}")
    if target_min is not None:
        ax.axvline(target_min, color="#555555", linestyle=(0, (2, 2)), linewidth=1.2, gid="target")
        ax.annotate(f"target {target_min:g} min", (target_min, 0.03), xytext=(4, 0),
                    textcoords="offset points", fontsize=9, color="#333333")
        xmax = max(xmax, target_min * 1.1)
    for level in (0.5, 0.9):
        ax.axhline(level, color="#999999", linewidth=0.6)
    ax.set_xlim(0, xmax * 1.05 if xmax > 0 else 1)
    ax.set_ylim(0, 1.0)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("Minutes from the call to the first unit on scene")
    ax.set_ylabel(f"{'Eligible calls' if eligible_only else 'Calls'} reached (%)")
    _legend_below(fig, ax, title="markers: median and 90th percentile", title_fontsize=9)
    what = "eligible calls reached on scene" if eligible_only else "calls reached on scene"
    return _finish(fig, title, source_note(c, f"{what}, after the warm-up; x axis ends past the 95th percentile"))


def fallback_by_hour(calls: pd.DataFrame, by: str = "scenario",
                     title: str = "When eligible calls go to police instead, by hour of the week") -> Figure:
    """Panels over the 168 hours of the week (by the hour the call came in, pooled over
    replications), as shares of the eligible calls of that hour: answered by a later tier
    because every unit of the first tier was busy (``fallback_reason`` busy), because none was
    on shift (unstaffed), and handled without police. One line per ``by`` value. A fallback
    panel no call of any line falls into is left out (no empty panels)."""
    c = _measured(calls)
    c = c[c["eligible"].to_numpy(bool)]
    later = pd.to_numeric(c["tier"], errors="coerce").fillna(-1).to_numpy() > 0
    reason = c["fallback_reason"].astype(object).to_numpy()
    panels = [(key, text, later & (reason == key)) for key, text in
              (("busy", "Every program unit busy"), ("unstaffed", "No program unit on shift"))]
    panels = [p for p in panels if p[2].any()] + [("diverted", "Handled without police", c["diverted"].to_numpy(bool))]
    fig, axes = _figure(len(panels), 1, size=(WIDTH, 1.9 + 1.9 * len(panels)), sharex=True)
    how_all = hour_of_week(c["t_received"])
    names = c[by].astype(object).to_numpy() if by in c else np.full(len(c), "")
    for i, name in enumerate(_names(c, by)):
        mine = names == name
        how = how_all[mine]
        n = np.bincount(how, minlength=WEEK_HOURS).astype(float)
        n = np.where(n > 0, n, np.nan)
        st = _style(i)
        kw = dict(color=st["color"], linestyle=st["linestyle"], linewidth=1.3, drawstyle="steps-post")
        for k, (key, _, sel) in enumerate(panels):
            axes[k, 0].plot(np.arange(WEEK_HOURS), np.bincount(how, weights=sel[mine], minlength=WEEK_HOURS) / n,
                            gid=f"{key}:{name}", label=name if k == 0 else None, **kw)
    for k, (_, text, _) in enumerate(panels):
        ax = axes[k, 0]
        ax.set_title(text, fontsize=10, loc="left")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_ylim(bottom=0)
    axes[len(panels) // 2, 0].set_ylabel("Share of the eligible calls of that hour")
    _week_axis(axes[-1, 0])
    _legend_below(fig, axes[-1, 0], ncols=1, handles_from=axes[0, 0])
    return _finish(fig, title, source_note(c, "eligible calls after the warm-up, by the hour they came in"))


def utilisation_by_hour(hourly: pd.DataFrame, hours, pools: list[str] | None = None,
                        scenario: str | None = None,
                        title: str = "Units busy against units on duty, by hour of the week",
                        summary: pd.DataFrame | None = None) -> Figure:
    """Per pool, mean units on duty (the shift schedule as run) as a step line and mean units
    busy while on duty (busy minus overtime past a shift's end, as the ``utilisation.<pool>``
    KPI counts) as a hatched area, for each hour of the week, averaged over replications.
    The panel title gives the KPI: from ``summary`` when given, else (busy - overtime) /
    on duty over the whole table.

    ``hours``: how many times each hour of the week was measured, a 168-array from
    :func:`hours_observed` (or a number of whole weeks). ``scenario`` picks one scenario if
    ``hourly`` holds several (default: the first)."""
    names = _names(hourly)
    scenario = scenario if scenario is not None else (names[0] if names else None)
    h = hourly[hourly["scenario"].astype(object) == scenario] if scenario is not None else hourly
    pools = pools or _names(h, "pool")
    reps = max(h["replication"].nunique(), 1) if "replication" in h else 1
    counts = np.broadcast_to(np.asarray(hours, dtype=float), (WEEK_HOURS,))
    kpi = _summary_means(summary)
    kpi = kpi.get(str(scenario), next(iter(kpi.values()), {})) if kpi else {}
    fig, axes = _figure(len(pools), 1, size=(WIDTH, 1.6 + 2.0 * len(pools)), sharex=True)
    x = np.arange(WEEK_HOURS + 1)
    for ax, pool in zip(axes[:, 0], pools):
        cols = ["on_duty_min", "busy_min"] + (["overtime_min"] if "overtime_min" in h else [])
        g = h[h["pool"].astype(object) == pool].groupby("hour_of_week")[cols].sum()
        g = g.reindex(range(WEEK_HOURS), fill_value=0.0)
        on_duty_busy = g["busy_min"] - (g["overtime_min"] if "overtime_min" in g else 0.0)
        denom = 60.0 * reps * np.where(counts > 0, counts, np.nan)
        duty = g["on_duty_min"].to_numpy() / denom
        busy = on_duty_busy.to_numpy() / denom
        util = kpi.get(f"utilisation.{pool}", math.nan)
        if util != util and g["on_duty_min"].sum():
            util = on_duty_busy.sum() / g["on_duty_min"].sum()
        ax.fill_between(x, np.append(busy, busy[-1]), step="post", facecolor="#bbbbbb",
                        edgecolor="#444444", hatch="//", linewidth=0.0, label="units busy while on duty (mean)",
                        gid=f"busy:{pool}")
        ax.plot(x, np.append(duty, duty[-1]), drawstyle="steps-post", color="black", linewidth=1.6,
                label="units on duty (shift schedule)", gid=f"duty:{pool}")
        ax.set_title(f"{words(pool)}: busy {util:.0%} of on-duty time" if util == util else words(pool),
                     fontsize=10, loc="left")
        ax.set_ylabel("Units")
        ax.set_ylim(bottom=0, top=max(float(np.nanmax(duty)) if np.isfinite(duty).any() else 1.0, 1.0) * 1.15)
    _week_axis(axes[-1, 0], "Hour of the week")
    _legend_below(fig, axes[-1, 0], ncols=2, handles_from=axes[0, 0])
    return _finish(fig, title, source_note(h, "unit-minutes after the warm-up; overtime past a shift's end is "
                                              "left out, as in the utilisation figure"))


def smallest_meeting(sweep: pd.DataFrame, field: str, metric: str, target: float,
                     at_least: bool | None = None) -> dict | None:
    """The smallest swept value of ``field`` whose mean ``metric`` meets ``target`` (at least
    it for a rising metric, at most for a falling one, or as ``at_least`` says): a dict with
    value, mean, ci_low, ci_high, sure (the whole 95% interval meets the target) and at_least;
    None if no value meets it."""
    d = sweep[sweep["metric"] == metric].sort_values(field)
    if d.empty:
        return None
    m = d["mean"].to_numpy(float)
    if at_least is None:
        at_least = len(m) < 2 or m[-1] >= m[0]
    ok = np.flatnonzero(m >= target if at_least else m <= target)
    if not len(ok):
        return None
    r = d.iloc[ok[0]]
    lo, hi = float(r["ci_low"]), float(r["ci_high"])
    sure = (lo >= target) if at_least else (hi <= target)
    return {"value": r[field], "mean": float(r["mean"]), "ci_low": lo, "ci_high": hi, "sure": bool(sure),
            "at_least": bool(at_least)}


def sweep_curve(sweep: pd.DataFrame, field: str, metric: str, by: str | None = None,
                target: float | None = None, title: str | None = None,
                field_label: str | None = None, at_least: bool | None = None) -> Figure:
    """``metric`` (mean and 95% band) against the swept ``field``, one line per ``by`` value.

    ``sweep`` has the sweep summary columns: the point fields, ``metric``, ``mean``,
    ``ci_low``, ``ci_high`` (and ``replications``). With ``target``, a horizontal line marks
    it and the smallest swept value whose mean meets it (:func:`smallest_meeting`) is
    labelled. The x axis is labelled in words (``field_label``, default :func:`describe_field`)."""
    d = sweep[sweep["metric"] == metric].sort_values(field)
    if d.empty:
        raise ValueError(f"no rows for metric '{metric}' in the sweep; metrics: "
                         f"{', '.join(map(str, pd.unique(sweep['metric'])))}")
    xlabel = field_label or describe_field(field)
    label, unit = metric_label(metric)
    fig, axes = _figure()
    ax = axes[0, 0]
    groups = [(None, d)] if by is None else list(d.groupby(by, sort=False))
    for i, (key, g) in enumerate(groups):
        st = _style(i)
        x = g[field].to_numpy(float)
        ax.fill_between(x, g["ci_low"].to_numpy(float), g["ci_high"].to_numpy(float), facecolor=st["color"],
                        alpha=0.18, edgecolor=st["color"], hatch=st["hatch"], linewidth=0.0,
                        gid=f"band:{key}")
        ax.plot(x, g["mean"].to_numpy(float), color=st["color"], linestyle=st["linestyle"],
                marker=st["marker"], linewidth=1.8,
                label=f"{describe_field(by)} = {key}" if by else "mean, with its 95% band",
                gid=f"mean:{key}")
        if target is not None:
            best = smallest_meeting(g, field, metric, target, at_least)
            if best is not None:
                ax.annotate(f"{best['value']:g}: smallest meeting the target", (best["value"], best["mean"]),
                            xytext=(6, -14 if best["at_least"] else 8), textcoords="offset points", fontsize=9,
                            gid="reached")
    if target is not None:
        ax.axhline(target, color="#555555", linestyle=(0, (2, 2)), linewidth=1.2, gid="target",
                   label=f"target {fmt_unit(target, unit)}")
    _percent_axis(ax, unit)
    if np.all(np.mod(d[field].to_numpy(float), 1) == 0):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(axis_label(metric))
    _legend_below(fig, ax, ncols=2)
    return _finish(fig, title or f"{label} by {xlabel[:1].lower() + xlabel[1:]}",
                   source_note(d, "band: 95% t-interval across replications"))


def fmt_unit(v: float, unit: str) -> str:
    """A value in its unit: '80%', '30 min', '1,200 hours'."""
    if unit == "%":
        return f"{v:.0%}" if abs(v) >= 0.1 or v == 0 else f"{v:.1%}"
    return f"{v:,.4g} {unit}".strip()


def _step_on_grid(t: np.ndarray, v: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Value of a step function (v from time t on) at each grid time; 0 before the first."""
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    i = np.searchsorted(t, grid, side="right") - 1
    return np.where(i >= 0, v[np.clip(i, 0, None)], 0.0)


def limited_facilities(occupancy: pd.DataFrame) -> list[str]:
    """Facilities with a number of beds that someone occupied (unlimited ones, ``beds`` null,
    and unused ones would be empty panels, so they have no bed chart)."""
    if occupancy is None or not len(occupancy) or "beds" not in occupancy:
        return []
    beds = pd.to_numeric(occupancy["beds"], errors="coerce")
    used = occupancy[beds.notna() & np.isfinite(beds) & (pd.to_numeric(occupancy["occupied"]) > 0)]
    return _names(used, "facility")


def bed_occupancy(occupancy: pd.DataFrame, refusals: pd.DataFrame | Mapping | None = None,
                  scenario: str | None = None, points: int = 500,
                  title: str = "After-care beds: occupancy and refusals") -> Figure:
    """Beds occupied over time per facility (mean over replications, with the number of beds
    dashed) and, if given, refusals per facility (mean per replication with 95% interval).
    Facilities with unlimited beds are left out (:func:`limited_facilities`); a ValueError
    if none is left.

    ``occupancy``: scenario, replication, facility, t (min), occupied, beds; each row is the
    level from ``t`` on. ``refusals``: a table with facility and refusals (and replication,
    per replication) or a mapping facility -> count."""
    names = _names(occupancy)
    scenario = scenario if scenario is not None else (names[0] if names else None)
    occ = occupancy[occupancy["scenario"].astype(object) == scenario] if scenario is not None else occupancy
    facilities = limited_facilities(occ)
    if not facilities:
        raise ValueError("no facility with a limited number of beds was used")
    occ = occ[occ["facility"].astype(object).isin(facilities)]
    if isinstance(refusals, Mapping):
        refusals = pd.DataFrame({"facility": list(refusals), "refusals": list(refusals.values())})
    if refusals is not None and scenario is not None and "scenario" in refusals:
        refusals = refusals[refusals["scenario"].astype(object) == scenario]
    none_refused = refusals is not None and not (pd.to_numeric(
        refusals.loc[refusals["facility"].astype(object).isin(facilities), "refusals"]) > 0).any()
    if none_refused:
        refusals = None                      # an all-zero panel says less than the footnote
    ncols = 2 if refusals is not None else 1
    fig, axes = _figure(ncols, 1, size=(WIDTH, 4.2 + 2.6 * (ncols - 1)),
                        **({"height_ratios": [3, 2]} if ncols == 2 else {}))
    ax = axes[0, 0]
    grid = np.linspace(float(occ["t"].min()), float(occ["t"].max()), points)
    for i, fac in enumerate(facilities):
        f = occ[occ["facility"].astype(object) == fac]
        reps = [g for _, g in f.groupby("replication", observed=True)] if "replication" in f else [f]
        occupied = np.mean([_step_on_grid(g["t"].to_numpy(float), g["occupied"].to_numpy(float), grid)
                            for g in reps], axis=0)
        beds = np.max([_step_on_grid(g["t"].to_numpy(float), g["beds"].to_numpy(float), grid)
                       for g in reps], axis=0)
        st = _style(i)
        ax.plot(grid / 1440.0, occupied, color=st["color"], linestyle=st["linestyle"], linewidth=1.5,
                label=f"{words(fac)}: occupied", gid=f"occupied:{fac}")
        ax.plot(grid / 1440.0, beds, color=st["color"], linestyle=(0, (4, 2)), linewidth=1.0,
                alpha=0.8, label=f"{words(fac)}: beds", gid=f"beds:{fac}")
    ax.set_xlabel("Days from the start of the run")
    ax.set_ylabel("Beds occupied (mean)")
    ax.set_ylim(bottom=0)
    if refusals is not None:
        rx = axes[1, 0]
        facs = [f for f in _names(refusals, "facility") if f in facilities]
        stats = [t_interval(refusals.loc[refusals["facility"].astype(object) == f, "refusals"]) for f in facs]
        means = np.array([s[0] for s in stats])
        err = np.array([[m - lo, hi - m] if lo == lo else [0, 0] for m, lo, hi in stats]).T
        bars = rx.barh(range(len(facs))[::-1], means, color="#dddddd", edgecolor="black", gid="refusals")
        for k, b in enumerate(bars):
            b.set_hatch(_style(k)["hatch"])
        if len(facs):
            rx.errorbar(means, range(len(facs))[::-1], xerr=err, fmt="none", ecolor="black", capsize=4)
        rx.set_yticks(range(len(facs))[::-1], labels=[words(f) for f in facs])
        rx.set_xlabel("Refused for lack of a bed (per replication)")
    _legend_below(fig, ax, ncols=2)
    return _finish(fig, title, source_note(occ, "no arrival was turned away for lack of a bed" if none_refused
                                           else "refusals: mean with 95% interval"))


def _plain_number(v: float, millions: bool = False) -> str:
    """A tick label without an offset or exponent: 1,500; in millions on an axis that reaches
    a million: 0.4M, 1.2M."""
    if millions:
        text = "0" if v == 0 else f"{v / 1e6:,.1f}M"
    else:
        text = f"{v:,.0f}" if abs(v) >= 100 else f"{v:g}"
    return text.replace("-", "\N{MINUS SIGN}")             # as matplotlib's own ticks


def differences(compare: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """(baseline, rows of the other scenarios with diff_mean, diff_ci_low, diff_ci_high) from
    either comparison layout:

    * per-scenario KPIs with differences: scenario, metric, mean, ci_low, ci_high, diff_mean,
      diff_ci_low, diff_ci_high - the first scenario is the baseline;
    * paired differences only: scenario, baseline, metric, mean, ci_low, ci_high (the mean
      and interval are of the difference scenario - baseline)."""
    if "diff_mean" in compare:
        base = _names(compare)[0]
        return base, compare[compare["scenario"].astype(object) != base]
    if "baseline" not in compare:
        raise ValueError("a comparison table needs diff_mean/diff_ci_low/diff_ci_high or a baseline column")
    d = compare.rename(columns={"mean": "diff_mean", "ci_low": "diff_ci_low", "ci_high": "diff_ci_high"})
    return str(d["baseline"].iloc[0]), d


def forest(compare: pd.DataFrame, metrics: list[str] | None = None,
           title: str | None = None, currency: str = "USD", titles: Mapping | None = None) -> Figure:
    """Differences of each scenario to the baseline, one panel per metric, with 95%
    intervals; a marker is filled where the interval leaves out zero. ``titles``: panel
    titles to use instead of the metric's label (e.g. to name the period a count is over).

    ``compare``: either layout :func:`differences` reads (the baseline's own rows are skipped)."""
    base, others = differences(compare)
    metrics = metrics or [m for m in pd.unique(others["metric"])]
    scen = _names(others)
    fig, axes = _figure(len(metrics), 1, size=(WIDTH, 1.4 + len(metrics) * (0.4 * len(scen) + 0.85)))
    for ax, metric in zip(axes[:, 0], metrics):
        d = others[others["metric"] == metric]
        d = d.set_index(d["scenario"].astype(object)).reindex(scen)
        y = np.arange(len(scen))[::-1]
        label, unit = metric_label(metric, currency)
        for k, (yy, name) in enumerate(zip(y, scen)):
            m, lo, hi = d.loc[name, ["diff_mean", "diff_ci_low", "diff_ci_high"]].astype(float)
            clear = lo == lo and (lo > 0 or hi < 0)
            st = _style(k + 1)
            xerr = [[m - lo], [hi - m]] if lo == lo else None
            eb = ax.errorbar([m], [yy], xerr=xerr, fmt=st["marker"], color="black", capsize=4, markersize=7,
                             markerfacecolor="black" if clear else "white")
            eb.lines[0].set_gid(f"diff:{metric}:{name}")
        ax.axvline(0.0, color="#555555", linewidth=1.0, linestyle=(0, (2, 2)))
        ax.set_yticks(y, labels=[textwrap.fill(s, 22) for s in scen])
        ax.set_ylim(-0.7, len(scen) - 0.3)
        text = (titles or {}).get(metric) or label + (f" ({'percentage points' if unit == '%' else unit})"
                                                      if unit else "")
        ax.set_title(textwrap.fill(text, 70), fontsize=10, loc="left")
        if unit == "%":
            ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0, symbol=" pp"))
        else:
            ax.xaxis.set_major_formatter(FuncFormatter(
                lambda v, _pos, ax=ax: _plain_number(v, millions=max(map(abs, ax.get_xlim())) >= 1e6)))
    axes[-1, 0].set_xlabel(textwrap.fill(f"Difference from {base}", int(fig.get_figwidth() * 11)))
    return _finish(fig, title or f"Each scenario against {base}",
                   source_note(compare, "95% intervals of paired differences; filled marker: the interval "
                                        "leaves out 0"))


def _rects(zones) -> dict[str, tuple | None]:
    """zone name -> rect_km, from a mapping of rectangles or of Scenario Zone objects."""
    return {str(k): (tuple(getattr(z, "rect_km", z)) if getattr(z, "rect_km", z) is not None else None)
            for k, z in zones.items()}


def zone_kpis(calls: pd.DataFrame, metric: str, horizon_days: float = math.nan) -> pd.DataFrame:
    """``metric`` per zone: zone, metric, mean, ci_low, ci_high, replications (via sim.metrics)."""
    empty_pools = pd.DataFrame(columns=["pool", "busy_min", "on_duty_min", "staffed_cost", "calls_served"])
    rows = []
    for (zone, rep), g in calls.groupby(["zone", "replication"], observed=True):
        value = kpis(g, empty_pools, horizon_days).get(metric, math.nan)
        rows.append({"zone": str(zone), "replication": rep, "metric": metric, "value": value})
    return summarise(pd.DataFrame(rows, columns=["zone", "replication", "metric", "value"]), by=["zone"])


def zone_map(calls: pd.DataFrame, zones, metric: str = "eligible_diversion_rate",
             scenario: str | None = None, title: str | None = None) -> Figure:
    """Zones coloured by ``metric`` (computed per zone with :mod:`sim.metrics`), each labelled
    with its name and value; a bar chart with 95% intervals when a zone has no ``rect_km``.

    ``zones``: mapping zone -> (x0, y0, x1, y1) km or None (e.g. ``scenario.zones``)."""
    names = _names(calls)
    scenario = scenario if scenario is not None else (names[0] if names else None)
    c = calls[calls["scenario"].astype(object) == scenario] if scenario is not None else calls
    table = zone_kpis(c, metric).set_index("zone")
    rects = _rects(zones)
    label, unit = metric_label(metric)
    fmt = (lambda v: f"{v:.0%}") if unit == "%" else (lambda v: f"{v:,.1f}")
    values = {z: float(table["mean"].get(z, math.nan)) for z in rects}
    if all(r is not None for r in rects.values()):
        fig, axes = _figure(size=(WIDTH, 5.6))
        ax = axes[0, 0]
        finite = [v for v in values.values() if v == v]
        # shares on a fixed 0-100% scale, so a small gap does not look like a large one
        norm = Normalize(0.0, 1.0) if unit == "%" else Normalize(min(finite, default=0), max(finite, default=1))
        cmap = colormaps[SEQUENTIAL]
        for z, (x0, y0, x1, y1) in rects.items():
            v = values[z]
            face = cmap(norm(v)) if v == v else "white"
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, facecolor=face, edgecolor="black",
                                   hatch=None if v == v else "//", gid=f"zone:{z}"))
            light = v != v or norm(v) > 0.55
            ax.text((x0 + x1) / 2, (y0 + y1) / 2, f"{words(z)}\n{fmt(v) if v == v else 'no calls'}",
                    ha="center", va="center", fontsize=9, color="black" if light else "white")
        xs = [r[0] for r in rects.values()] + [r[2] for r in rects.values()]
        ys = [r[1] for r in rects.values()] + [r[3] for r in rects.values()]
        ax.set_xlim(min(xs), max(xs))
        ax.set_ylim(min(ys), max(ys))
        ax.set_aspect("equal")
        ax.set_xlabel("x (km)")
        ax.set_ylabel("y (km)")
        cb = fig.colorbar(ScalarMappable(norm, cmap), ax=ax, shrink=0.7)
        cb.set_label(axis_label(metric))
        if unit == "%":
            cb.ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    else:
        fig, axes = _figure(size=(WIDTH, 1.4 + 0.45 * len(rects)))
        ax = axes[0, 0]
        zs = list(rects)
        t = table.reindex(zs)
        m = t["mean"].to_numpy(float)
        err = np.vstack([m - t["ci_low"].to_numpy(float), t["ci_high"].to_numpy(float) - m])
        y = np.arange(len(zs))[::-1]
        ax.barh(y, np.nan_to_num(m), color="#cccccc", edgecolor="black", hatch="//", gid="zones")
        ax.errorbar(np.nan_to_num(m), y, xerr=np.nan_to_num(err), fmt="none", ecolor="black", capsize=3)
        ax.set_yticks(y, labels=[words(z) for z in zs])
        ax.set_xlabel(axis_label(metric))
        ax.set_ylabel("Zone")
        _percent_axis(ax, unit, axis="x")
    return _finish(fig, title or f"{label} by zone", source_note(c, "per zone, calls after warm-up"))
