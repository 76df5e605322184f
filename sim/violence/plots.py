"""The n x e sensitivity chart: DataFrame in, Figure out.

The branching ratio n dominates every result, so the chart shows one line per n over the
interruption effect e, with the 95% interval of the replications as a band.
"""
from __future__ import annotations

import textwrap

import pandas as pd
from matplotlib.figure import Figure

LABELS = {
    "shootings_averted_per_year": "shootings averted per year",
    "reduction": "share of shootings averted (0-1)",
    "retaliations_averted": "retaliations averted over the horizon (shootings)",
    "shootings_averted": "shootings averted over the horizon (shootings)",
}


def plot_sensitivity(grid: pd.DataFrame, metric: str = "shootings_averted_per_year") -> Figure:
    """Line chart of ``metric`` over e, one line per n (from :func:`sensitivity_grid`)."""
    d = grid[grid["metric"] == metric].sort_values(["n", "e"])
    if d.empty:
        raise ValueError(f"the grid has no metric '{metric}'")
    fig = Figure(figsize=(7.5, 5.0), layout="constrained")
    ax = fig.add_subplot()
    for n, g in d.groupby("n"):
        line, = ax.plot(g["e"], g["mean"], marker="o", label=f"n = {n:g}")
        ax.fill_between(g["e"], g["ci_low"], g["ci_high"], color=line.get_color(), alpha=0.15, linewidth=0)
    scenario = ", ".join(sorted(d["scenario"].astype(str).unique()))
    reps = ", ".join(str(r) for r in sorted(d["replications"].unique()))
    ax.set_title(f"{LABELS.get(metric, metric).capitalize()} by branching ratio n and interruption effect e")
    ax.set_xlabel("interruption effect e (share of a reached shooting's pending retaliations cancelled, 0-1)")
    ax.set_ylabel(LABELS.get(metric, metric))
    ax.grid(True, alpha=0.3)
    ax.legend(title="branching ratio", loc="upper left")
    held = ("Background rates rescaled so the no-program number of shootings is the same for every n. "
            if "hold_total" in d and d["hold_total"].all() else "Background rates fixed: totals grow with n. ")
    note = (f"Scenario: {scenario}. {reps} replications per point; line = mean, band = 95% t-interval. "
            f"n = shootings triggered per shooting. {held}")
    fig.supxlabel(textwrap.fill(note, 130), fontsize=7.5, x=0.01, ha="left")
    return fig
