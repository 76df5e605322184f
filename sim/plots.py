"""Charts for planners and working groups: one function per chart, DataFrame in, Figure out.

Every function takes the tidy tables a run writes (``calls``, ``hourly``, a summary, a
comparison or sweep table, bed occupancy) and returns a :class:`matplotlib.figure.Figure`
drawn on the Agg canvas, without touching pyplot's global state. The style is shared:
Okabe-Ito colours that stay apart in greyscale, each series also told apart by its line
style, marker or hatch; a title; axis labels with units; and a footnote naming the source
scenario(s) and the number of replications.

Charts:

* :func:`response_time_cdf` - response-time distribution per scenario, p50/p90 marked, target line
* :func:`fallback_by_hour` - eligible calls handled without police / falling back to police, by hour of week
* :func:`utilisation_by_hour` - teams busy against teams on duty, by hour of week, per pool
* :func:`sweep_curve` - a KPI against a swept field with its 95% band
* :func:`bed_occupancy` - beds occupied over time per facility, and refusals per facility
* :func:`forest` - differences of KPIs to the first scenario, with 95% intervals
* :func:`zone_map` - zones coloured by a KPI (rectangles from ``rect_km``, else bars)

Calls that arrived during the warm-up (``warmup`` is True) are left out, as in the KPIs.
"""
from __future__ import annotations

import math
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
from matplotlib.ticker import MaxNLocator, PercentFormatter

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

# KPI name -> (label, unit); unit "%" means a share plotted as a percentage.
METRIC_LABELS = {
    "calls": ("Calls", "calls"),
    "calls_per_day": ("Calls per day", "calls/day"),
    "response_time_mean": ("Mean response time", "min"),
    "response_time_p50": ("Median response time", "min"),
    "response_time_p90": ("90th percentile response time", "min"),
    "queue_wait_mean": ("Mean wait for a team", "min"),
    "travel_time_mean": ("Mean travel time", "min"),
    "diversion_rate": ("Calls closed without police", "%"),
    "eligible_diversion_rate": ("Eligible calls handled without police", "%"),
    "fallback_rate": ("Eligible calls that fell back to police", "%"),
    "police_backup_rate": ("Police backup requests per team call", "%"),
    "no_response_rate": ("Calls nobody answered", "%"),
    "police_hours": ("Police unit-hours on calls", "hours"),
    "utilisation": ("Utilisation", "%"),
    "cost_per_call": ("Staffed cost per call", "currency/call"),
}


def metric_label(metric: str) -> tuple[str, str]:
    """(plain-language label, unit) of a KPI name; ``utilisation.crisis`` -> ('Utilisation of crisis', '%')."""
    if metric in METRIC_LABELS:
        return METRIC_LABELS[metric]
    head, _, pool = metric.partition(".")
    if head in METRIC_LABELS and pool:
        label, unit = METRIC_LABELS[head]
        return f"{label}: {pool}", unit
    if metric.startswith("police_response_time_p") and metric.endswith("_mean"):
        prio = metric.removeprefix("police_response_time_p").removesuffix("_mean")
        return f"Police mean response time, priority {prio}", "min"
    return metric.replace("_", " "), ""


def axis_label(metric: str) -> str:
    label, unit = metric_label(metric)
    return f"{label} ({unit})" if unit else label


# --------------------------------------------------------------------------- helpers


def _figure(nrows: int = 1, ncols: int = 1, size=(8.0, 4.5), **kw) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    fig.get_layout_engine().set(rect=(0, 0.06, 1, 0.94))  # room for the footnote
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    for ax in axes.flat:
        ax.grid(True, color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
    return fig, axes


def _style(i: int) -> dict:
    color, ls, marker, hatch = STYLES[i % len(STYLES)]
    return {"color": color, "linestyle": ls, "marker": marker, "hatch": hatch}


def _names(df: pd.DataFrame, col: str = "scenario") -> list[str]:
    if col not in df:
        return []
    return [str(v) for v in pd.unique(df[col].astype(object))]


def source_note(df: pd.DataFrame, extra: str | None = None) -> str:
    """'Source: scenario 'A' and 'B'; 10 replications each.' from a table's own columns."""
    names = _names(df)
    parts = []
    if names:
        shown = ", ".join(f"'{n}'" for n in names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        parts.append(f"Source: scenario{'s' if len(names) > 1 else ''} {shown}")
    reps = None
    if "replication" in df and len(df):
        per = df.groupby("scenario", observed=True)["replication"].nunique() if names else \
            pd.Series([df["replication"].nunique()])
        reps = (int(per.min()), int(per.max()))
    elif "replications" in df and len(df):
        reps = (int(df["replications"].min()), int(df["replications"].max()))
    if reps:
        lo, hi = reps
        each = " each" if len(names) > 1 else ""
        parts.append(f"{lo} replication{'s' if lo != 1 else ''}{each}" if lo == hi
                     else f"{lo}-{hi} replications")
    if extra:
        parts.append(extra)
    return "; ".join(parts) + "." if parts else ""


def _finish(fig: Figure, title: str, note: str) -> Figure:
    width = int(fig.get_figwidth() * 8.5)          # characters of a bold 12 pt title per line
    fig.suptitle(textwrap.fill(title, width), fontsize=12, fontweight="bold")
    if note:
        fig.text(0.01, 0.01, note, fontsize=7.5, color="#333333", ha="left", va="bottom", wrap=True,
                 gid="footnote")
    return fig


def _measured(calls: pd.DataFrame) -> pd.DataFrame:
    return calls[~calls["warmup"].to_numpy(bool)] if "warmup" in calls else calls


def _week_axis(ax, label: str = "Hour of week (Monday 00:00 = 0)") -> None:
    ax.set_xlim(0, WEEK_HOURS)
    ax.set_xticks(np.arange(0, WEEK_HOURS + 1, 24))
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


# --------------------------------------------------------------------------- charts


def response_time_cdf(calls: pd.DataFrame, target_min: float | None = None, by: str = "scenario",
                      title: str = "Time until help arrives", points: int = 400) -> Figure:
    """Cumulative share of answered calls with help on scene within x minutes, one line per
    ``by`` value (pooled over replications), the median (p50) and p90 marked, and a vertical
    line at ``target_min`` minutes with each scenario's share within it in the legend."""
    fig, axes = _figure()
    ax = axes[0, 0]
    c = _measured(calls)
    q = np.linspace(0.0, 1.0, points + 1)
    xmax = 0.0
    for i, name in enumerate(_names(c, by)):
        rt = c.loc[c[by].astype(object) == name, "response_time"].to_numpy(float)
        rt = rt[~np.isnan(rt)]
        if not len(rt):
            continue
        st = _style(i)
        x = np.quantile(rt, q)
        p50, p90 = np.quantile(rt, [0.5, 0.9])
        label = f"{name}: p50 {p50:.0f} min, p90 {p90:.0f} min"
        if target_min is not None:
            label += f", {np.mean(rt <= target_min):.0%} within {target_min:g} min"
        ax.plot(x, q, color=st["color"], linestyle=st["linestyle"], linewidth=1.8, label=label,
                gid=f"cdf:{name}")
        ax.plot([p50, p90], [0.5, 0.9], linestyle="none", marker=st["marker"], color=st["color"],
                markersize=7, markerfacecolor="white", markeredgewidth=1.5, gid=f"pct:{name}")
        xmax = max(xmax, float(np.quantile(rt, 0.99)))
    if target_min is not None:
        ax.axvline(target_min, color="#555555", linestyle=(0, (2, 2)), linewidth=1.2, gid="target")
        ax.annotate(f"target {target_min:g} min", (target_min, 0.02), xytext=(4, 0),
                    textcoords="offset points", fontsize=8, color="#333333")
        xmax = max(xmax, target_min * 1.1)
    for level in (0.5, 0.9):
        ax.axhline(level, color="#999999", linewidth=0.6)
    ax.set_xlim(0, xmax * 1.05 if xmax > 0 else 1)
    ax.set_ylim(0, 1.0)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("Response time: call received to first unit on scene (min)")
    ax.set_ylabel("Answered calls with help on scene (%)")
    ax.legend(loc="best", fontsize=8, title="markers: p50 and p90", title_fontsize=8)
    return _finish(fig, title, source_note(c, "warm-up excluded; x axis cut at the 99th percentile"))


def fallback_by_hour(calls: pd.DataFrame, by: str = "scenario",
                     title: str = "When teams run out: eligible calls by hour of week") -> Figure:
    """Two panels over the 168 hours of the week (by hour the call arrived, pooled over
    replications): the share of eligible calls that fell back to police because no team
    was free in time, and the share handled without police. One line per ``by`` value."""
    fig, axes = _figure(2, 1, size=(9.0, 6.0), sharex=True)
    c = _measured(calls)
    c = c[c["eligible"].to_numpy(bool)]
    hours = np.arange(WEEK_HOURS)
    for i, name in enumerate(_names(c, by)):
        g = c[c[by].astype(object) == name]
        how = hour_of_week(g["t_received"])
        n = np.bincount(how, minlength=WEEK_HOURS).astype(float)
        fell = g["fallback"].to_numpy(bool) & g["police_pool"].to_numpy(bool)
        fb = np.bincount(how, weights=fell, minlength=WEEK_HOURS) / np.where(n > 0, n, np.nan)
        dv = np.bincount(how, weights=g["diverted"].to_numpy(bool), minlength=WEEK_HOURS) / np.where(n > 0, n, np.nan)
        st = _style(i)
        kw = dict(color=st["color"], linestyle=st["linestyle"], linewidth=1.4, label=name,
                  drawstyle="steps-post")
        axes[0, 0].plot(hours, fb, gid=f"fallback:{name}", **kw)
        axes[1, 0].plot(hours, dv, gid=f"diverted:{name}", **kw)
    axes[0, 0].set_ylabel("Fell back to police\n(% of eligible calls)")
    axes[1, 0].set_ylabel("Handled without police\n(% of eligible calls)")
    for ax in axes[:, 0]:
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylim(bottom=0)
    _week_axis(axes[1, 0])
    axes[0, 0].legend(fontsize=8, loc="upper left")
    return _finish(fig, title, source_note(c, "eligible calls after warm-up, by hour of arrival"))


def utilisation_by_hour(hourly: pd.DataFrame, hours, pools: list[str] | None = None,
                        scenario: str | None = None,
                        title: str = "Teams busy against teams on duty, by hour of week") -> Figure:
    """Per pool, mean teams on duty (the shift schedule as run) as a step line and mean teams
    busy as a hatched area, for each hour of the week, averaged over replications.

    ``hours``: how many times each hour of the week was measured, a 168-array from
    :func:`hours_observed` (or a number of whole weeks). ``scenario`` picks one scenario if
    ``hourly`` holds several (default: the first)."""
    names = _names(hourly)
    scenario = scenario if scenario is not None else (names[0] if names else None)
    h = hourly[hourly["scenario"].astype(object) == scenario] if scenario is not None else hourly
    pools = pools or _names(h, "pool")
    reps = max(h["replication"].nunique(), 1) if "replication" in h else 1
    counts = np.broadcast_to(np.asarray(hours, dtype=float), (WEEK_HOURS,))
    fig, axes = _figure(len(pools), 1, size=(9.0, 1.2 + 2.3 * len(pools)), sharex=True)
    x = np.arange(WEEK_HOURS + 1)
    for ax, pool in zip(axes[:, 0], pools):
        g = h[h["pool"].astype(object) == pool].groupby("hour_of_week")[["on_duty_min", "busy_min"]].sum()
        g = g.reindex(range(WEEK_HOURS), fill_value=0.0)
        denom = 60.0 * reps * np.where(counts > 0, counts, np.nan)
        duty = g["on_duty_min"].to_numpy() / denom
        busy = g["busy_min"].to_numpy() / denom
        util = g["busy_min"].sum() / g["on_duty_min"].sum() if g["on_duty_min"].sum() else math.nan
        ax.fill_between(x, np.append(busy, busy[-1]), step="post", facecolor="#bbbbbb",
                        edgecolor="#444444", hatch="//", linewidth=0.0, label="teams busy (mean)",
                        gid=f"busy:{pool}")
        ax.plot(x, np.append(duty, duty[-1]), drawstyle="steps-post", color="black", linewidth=1.6,
                label="teams on duty (shift schedule)", gid=f"duty:{pool}")
        ax.set_title(f"{pool}: busy {util:.0%} of on-duty time" if util == util else pool,
                     fontsize=10, loc="left")
        ax.set_ylabel("Teams")
        ax.set_ylim(bottom=0)
    axes[0, 0].legend(fontsize=8, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2, frameon=False)
    _week_axis(axes[-1, 0])
    return _finish(fig, title, source_note(h, "team-minutes after warm-up; busy includes overtime past shift end"))


def sweep_curve(sweep: pd.DataFrame, field: str, metric: str, by: str | None = None,
                target: float | None = None, title: str | None = None,
                field_label: str | None = None) -> Figure:
    """``metric`` (mean and 95% band) against the swept ``field``, one line per ``by`` value.

    ``sweep`` has the sweep summary columns: the point fields, ``metric``, ``mean``,
    ``ci_low``, ``ci_high`` (and ``replications``). With ``target``, a horizontal line marks
    it and the smallest swept value whose mean reaches it is labelled."""
    d = sweep[sweep["metric"] == metric].sort_values(field)
    if d.empty:
        raise ValueError(f"no rows for metric '{metric}' in the sweep; metrics: "
                         f"{', '.join(map(str, pd.unique(sweep['metric'])))}")
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
                marker=st["marker"], linewidth=1.8, label=f"{by} = {key}" if by else "mean, 95% band",
                gid=f"mean:{key}")
        if target is not None:
            m = g["mean"].to_numpy(float)
            rising = len(m) < 2 or m[-1] >= m[0]
            ok = np.flatnonzero(m >= target if rising else m <= target)
            if len(ok):
                ax.annotate(f"{field_label or field} = {x[ok[0]]:g}", (x[ok[0]], m[ok[0]]),
                            xytext=(6, -14 if rising else 8), textcoords="offset points", fontsize=8,
                            gid="reached")
    if target is not None:
        ax.axhline(target, color="#555555", linestyle=(0, (2, 2)), linewidth=1.2, gid="target")
    _percent_axis(ax, unit)
    if np.all(np.mod(d[field].to_numpy(float), 1) == 0):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(field_label or field)
    ax.set_ylabel(axis_label(metric))
    if by is not None or target is not None:
        ax.legend(fontsize=8)
    return _finish(fig, title or f"{label} by {field_label or field}",
                   source_note(d, "band: 95% t-interval across replications"))


def _step_on_grid(t: np.ndarray, v: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Value of a step function (v from time t on) at each grid time; 0 before the first."""
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    i = np.searchsorted(t, grid, side="right") - 1
    return np.where(i >= 0, v[np.clip(i, 0, None)], 0.0)


def bed_occupancy(occupancy: pd.DataFrame, refusals: pd.DataFrame | Mapping | None = None,
                  scenario: str | None = None, points: int = 500,
                  title: str = "After-care beds: occupancy and refusals") -> Figure:
    """Beds occupied over time per facility (mean over replications, with the number of beds
    dashed) and, if given, refusals per facility (mean per replication with 95% interval).

    ``occupancy``: scenario, replication, facility, t (min), occupied, beds; each row is the
    level from ``t`` on. ``refusals``: a table with facility and refusals (and replication,
    per replication) or a mapping facility -> count."""
    names = _names(occupancy)
    scenario = scenario if scenario is not None else (names[0] if names else None)
    occ = occupancy[occupancy["scenario"].astype(object) == scenario] if scenario is not None else occupancy
    facilities = _names(occ, "facility")
    ncols = 2 if refusals is not None else 1
    fig, axes = _figure(1, ncols, size=(10.0 if ncols == 2 else 8.0, 4.5),
                        **({"width_ratios": [3, 1]} if ncols == 2 else {}))
    ax = axes[0, 0]
    grid = np.linspace(float(occ["t"].min()), float(occ["t"].max()), points)
    for i, fac in enumerate(facilities):
        f = occ[occ["facility"].astype(object) == fac]
        reps = [g for _, g in f.groupby("replication")] if "replication" in f else [f]
        occupied = np.mean([_step_on_grid(g["t"].to_numpy(float), g["occupied"].to_numpy(float), grid)
                            for g in reps], axis=0)
        beds = np.max([_step_on_grid(g["t"].to_numpy(float), g["beds"].to_numpy(float), grid)
                       for g in reps], axis=0)
        st = _style(i)
        ax.plot(grid / 1440.0, occupied, color=st["color"], linestyle=st["linestyle"], linewidth=1.5,
                label=f"{fac}: occupied", gid=f"occupied:{fac}")
        ax.plot(grid / 1440.0, beds, color=st["color"], linestyle=(0, (4, 2)), linewidth=1.0,
                alpha=0.8, label=f"{fac}: beds", gid=f"beds:{fac}")
    ax.set_xlabel("Time (days from Monday 00:00 of week 0)")
    ax.set_ylabel("Beds occupied (mean over replications)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="upper left")
    if refusals is not None:
        rx = axes[0, 1]
        if isinstance(refusals, Mapping):
            refusals = pd.DataFrame({"facility": list(refusals), "refusals": list(refusals.values())})
        if scenario is not None and "scenario" in refusals:
            refusals = refusals[refusals["scenario"].astype(object) == scenario]
        facs = _names(refusals, "facility")
        stats = [t_interval(refusals.loc[refusals["facility"].astype(object) == f, "refusals"]) for f in facs]
        means = np.array([s[0] for s in stats])
        err = np.array([[m - lo, hi - m] if lo == lo else [0, 0] for m, lo, hi in stats]).T
        bars = rx.bar(range(len(facs)), means, color="#dddddd", edgecolor="black", gid="refusals")
        for k, b in enumerate(bars):
            b.set_hatch(_style(k)["hatch"])
        if len(facs):
            rx.errorbar(range(len(facs)), means, yerr=err, fmt="none", ecolor="black", capsize=4)
        rx.set_xticks(range(len(facs)), labels=facs, rotation=20, ha="right")
        rx.set_ylabel("Refusals (per replication)")
        rx.set_title("Refused for lack of a bed", fontsize=10)
    return _finish(fig, title, source_note(occ, "refusals: mean with 95% interval"))


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
           title: str | None = None) -> Figure:
    """Differences of each scenario to the baseline, one panel per metric, with 95%
    intervals; a marker is filled where the interval leaves out zero.

    ``compare``: either layout :func:`differences` reads (the baseline's own rows are skipped)."""
    base, others = differences(compare)
    metrics = metrics or [m for m in pd.unique(others["metric"])]
    scen = _names(others)
    fig, axes = _figure(len(metrics), 1, size=(8.0, 1.0 + len(metrics) * (0.55 * len(scen) + 0.9)))
    for ax, metric in zip(axes[:, 0], metrics):
        d = others[others["metric"] == metric]
        d = d.set_index(d["scenario"].astype(object)).reindex(scen)
        y = np.arange(len(scen))[::-1]
        label, unit = metric_label(metric)
        for k, (yy, name) in enumerate(zip(y, scen)):
            m, lo, hi = d.loc[name, ["diff_mean", "diff_ci_low", "diff_ci_high"]].astype(float)
            clear = lo == lo and (lo > 0 or hi < 0)
            st = _style(k + 1)
            xerr = [[m - lo], [hi - m]] if lo == lo else None
            eb = ax.errorbar([m], [yy], xerr=xerr, fmt=st["marker"], color="black", capsize=4, markersize=7,
                             markerfacecolor="black" if clear else "white")
            eb.lines[0].set_gid(f"diff:{metric}:{name}")
        ax.axvline(0.0, color="#555555", linewidth=1.0, linestyle=(0, (2, 2)))
        ax.set_yticks(y, labels=scen)
        ax.set_ylim(-0.7, len(scen) - 0.3)
        ax.set_title(label, fontsize=10, loc="left")
        ax.set_xlabel(f"Difference from '{base}' ({'percentage points' if unit == '%' else unit or 'units'})")
        if unit == "%":
            ax.xaxis.set_major_formatter(PercentFormatter(1.0, symbol=" pp"))
    return _finish(fig, title or f"Each scenario against '{base}'",
                   source_note(compare, "95% intervals of paired differences; filled marker: interval excludes 0"))


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
        fig, axes = _figure(size=(7.5, 6.0))
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
            ax.text((x0 + x1) / 2, (y0 + y1) / 2, f"{z}\n{fmt(v) if v == v else 'no calls'}",
                    ha="center", va="center", fontsize=9, color="black" if light else "white")
        xs = [r[0] for r in rects.values()] + [r[2] for r in rects.values()]
        ys = [r[1] for r in rects.values()] + [r[3] for r in rects.values()]
        ax.set_xlim(min(xs), max(xs))
        ax.set_ylim(min(ys), max(ys))
        ax.set_aspect("equal")
        ax.set_xlabel("x (km)")
        ax.set_ylabel("y (km)")
        cb = fig.colorbar(ScalarMappable(norm, cmap), ax=ax)
        cb.set_label(axis_label(metric))
        if unit == "%":
            cb.ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    else:
        fig, axes = _figure(size=(8.0, 1.2 + 0.45 * len(rects)))
        ax = axes[0, 0]
        zs = list(rects)
        t = table.reindex(zs)
        m = t["mean"].to_numpy(float)
        err = np.vstack([m - t["ci_low"].to_numpy(float), t["ci_high"].to_numpy(float) - m])
        y = np.arange(len(zs))[::-1]
        ax.barh(y, np.nan_to_num(m), color="#cccccc", edgecolor="black", hatch="//", gid="zones")
        ax.errorbar(np.nan_to_num(m), y, xerr=np.nan_to_num(err), fmt="none", ecolor="black", capsize=3)
        ax.set_yticks(y, labels=zs)
        ax.set_xlabel(axis_label(metric))
        ax.set_ylabel("Zone")
        _percent_axis(ax, unit, axis="x")
    return _finish(fig, title or f"{label} by zone", source_note(c, "per zone, calls after warm-up"))
