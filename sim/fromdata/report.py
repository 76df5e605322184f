"""The fit report: one self-contained HTML file (the main report's style and figure helper).

Sections: counts in and out (every exclusion reason with its count, rows and intervals),
channels and their hour-of-week profile against the data, KS tests of the arrivals
(Kim & Whitt 2014), call-type mix and priorities, durations with AIC and sample sizes, QQ
plots of on-scene times, crosswalk coverage (unmapped raw types with counts), notes.
"""
from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from .fit import poisson_tests

DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def _table(df: pd.DataFrame, max_rows: int = 40, floatfmt: str = "{:,.3f}") -> str:
    if df is None or df.empty:
        return "<p class='note'>(none)</p>"
    shown = df.head(max_rows)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    body = []
    for r in shown.itertuples(index=False):
        cells = []
        for v in r:
            if isinstance(v, (bool, np.bool_)):
                txt = str(v)
            elif isinstance(v, (int, np.integer)):
                txt = f"{v:,}"
            elif isinstance(v, (float, np.floating)):
                txt = "" if not np.isfinite(v) else (f"{v:,.1f}" if abs(v) >= 100 else floatfmt.format(v))
            else:
                txt = "" if v is None or v is pd.NA else str(v)
            cells.append(f"<td>{html.escape(txt)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = f"<p class='note'>First {max_rows} of {len(df)} rows.</p>" if len(df) > max_rows else ""
    return f"<table class='kpi'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"


def _profile_figure(fit, channel: str):
    import matplotlib.pyplot as plt
    pf = fit.profiles[channel]
    fig, ax = plt.subplots(figsize=(10, 3.2))
    x = np.arange(168)
    raw = pf.raw_rate
    with np.errstate(invalid="ignore", divide="ignore"):
        err = np.where(pf.exposure > 0, 1.96 * np.sqrt(np.maximum(pf.counts, 1)) / pf.exposure, np.nan)
    ax.errorbar(x, raw, yerr=err, fmt=".", ms=3, lw=0.5, color="#888", label="data (calls / observed hours, ±1.96 √n)")
    ax.step(x, pf.rate, where="mid", color="#1f5fa8", lw=1.4, label=f"fitted ({pf.model})")
    ax.set_xticks(np.arange(0, 168, 24), DAYS)
    ax.set_xlim(-1, 168)
    ax.set_ylabel("calls per hour")
    ax.set_title(f"Channel '{channel}': hour-of-week rate, {pf.per_week:,.0f} calls a week")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def _qq_figure(fit, keys):
    import matplotlib.pyplot as plt
    from matplotlib import ticker
    n = len(keys)
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.1 * rows), squeeze=False)
    for ax, key in zip(axes.ravel(), keys):
        f = fit.on_scene[key]
        q = (np.arange(400) + 0.5) / 400                 # 400 quantiles: enough to see the fit
        x, m = np.quantile(f.sample, q), f.ppf(q)
        lo = max(min(x.min(), m.min()), 0.1)             # below 6 s is placeholder territory
        hi = max(x.max(), m.max()) * 1.2
        keep = (x >= lo) & (m >= lo)
        ax.plot(m[keep], x[keep], ".", ms=2, color="#1f5fa8")
        ax.plot([lo, hi], [lo, hi], color="#c33", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        for axis in (ax.xaxis, ax.yaxis):                # plain labels: mathtext 10^k is slow
            axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            axis.set_minor_locator(ticker.NullLocator())
        ax.set_title(f"{key[0]} / {key[1]} (n={f.n}, {f.family})", fontsize=8)
        ax.set_xlabel("fitted quantile (min, from 0.1)", fontsize=8)
        ax.set_ylabel("data (min)", fontsize=8)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def build_html(fit) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from ..report import CSS, figure_html

    ct, t = fit.calls, fit.tables
    start, end = ct.period
    used = fit.used
    title = f"Fit report: {Path(ct.file).name}"
    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p class='summary'>{len(used):,} of {ct.rows_in_file:,} rows used, from "
             f"{start:%Y-%m-%d} to {(end - pd.Timedelta(days=1)):%Y-%m-%d} ({(end - start).days} days, "
             f"{t['channels']['weeks_observed'].iloc[0]:.2f} weeks of exposure). Column map: "
             f"{html.escape(fit.cmap.name)}; crosswalk: "
             f"{html.escape(Path(fit.crosswalk.where).name if fit.crosswalk else 'none')}.</p>"]
    parts.append("<h2>Counts in and out</h2><p class='note'>Each row is used or excluded for the first reason "
                 "that holds; the counts add up to the rows in the file.</p>" + _table(t["exclusions"]))
    parts.append("<h3>Durations: intervals not used</h3><p class='note'>Rows used for arrivals whose interval "
                 "could not be used for a duration fit, by reason.</p>" + _table(t["interval_exclusions"], 60))
    parts.append("<h2>Arrivals</h2>" + _table(t["channels"]))
    for ch in list(t["channels"]["channel"])[:4]:
        fig = _profile_figure(fit, ch)
        parts.append(figure_html(fig, f"Hour-of-week profile, channel {ch}"))
        plt.close(fig)
    tests = []
    for ch in list(t["channels"]["channel"]):
        g = used[used["channel"] == ch]
        for r in poisson_tests(g["received"], start, fit.profiles[ch].rate):
            tests.append(dict(channel=ch, **r))
    parts.append("<h3>Are the arrivals Poisson? KS tests after the time-rescaling transforms</h3>"
                 "<p class='note'>Kim &amp; Whitt (2014): within each clock hour a piecewise-constant-rate "
                 "Poisson process puts its arrivals uniformly (conditional uniform), and the Lewis transform "
                 "of those order statistics is the more powerful variant. A small p-value rejects the Poisson "
                 "model within hours (batches, rounding of stamps). The last test rescales time with the fitted "
                 "hour-of-week rates; it also rejects when whole days are busier than the profile (daily_cv).</p>"
                 + _table(pd.DataFrame(tests), 60, "{:.4g}"))
    parts.append("<h2>Call-type mix and priorities</h2>" + _table(t["mix"], 60)
                 + "<h3>Priority by call type (1 = most urgent)</h3>" + _table(t["priority"], 60))
    if len(t["zones"]):
        parts.append(f"<h2>Zones</h2><p class='note'>{len(t['zones'])} zones.</p>" + _table(t["zones"], 30))
    parts.append("<h2>Durations</h2><p class='note'>Minutes. Lognormal, gamma and empirical (histogram) "
                 "fitted to each group; the lowest AIC is used. Groups with fewer values than the minimum use "
                 "the pooled fit.</p>" + _table(t["durations"], 80))
    keys = sorted((k for k in fit.on_scene if k[1] != "*"), key=lambda k: -fit.on_scene[k].n)[:6]
    if keys:
        fig = _qq_figure(fit, keys)
        parts.append("<h3>QQ plots of on-scene times</h3>" + figure_html(fig, "QQ plots of on-scene times"))
        plt.close(fig)
    cov = t["crosswalk"]
    by_rule = cov.assign(rule=cov["rule"].replace("", "unmapped -> other")).groupby("rule")["calls"].sum()
    mapped = float(by_rule.drop("unmapped -> other", errors="ignore").sum()) / max(cov["calls"].sum(), 1)
    unm = cov[cov["rule"] == ""][["raw_type", "calls"]]
    parts.append(f"<h2>Crosswalk coverage</h2><p class='summary'>{mapped:.1%} of used calls matched a crosswalk "
                 f"rule; {int(unm['calls'].sum()):,} calls of {len(unm)} raw types matched none and are "
                 "'other'.</p>" + _table(by_rule.rename_axis("rule").reset_index())
                 + "<h3>By path</h3>" + _table(cov.groupby("path")["calls"].sum().rename_axis("path").reset_index())
                 + "<h3>Unmapped raw types</h3>" + _table(unm, 40) + "<h3>All raw types</h3>" + _table(cov, 60))
    notes = fit.notes + list(fit.scenario_dict.get("assumptions", []))
    parts.append("<h2>Notes and assumptions</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'><link rel='icon' href='data:,'>"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>" + "".join(parts)
            + "</body></html>\n")


def write_report(fit, path) -> Path:
    from ..results import write_text
    path = Path(path)
    write_text(path, build_html(fit))
    return path
