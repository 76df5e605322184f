"""Input uncertainty: one-at-a-time (tornado) screening and sampled prediction intervals.

A scenario's ``ranges:`` mapping gives each ASSUMPTION input (a dotted ``--set`` path to a
number) the interval ``[low, high]`` it may plausibly take. Two uses:

* :func:`tornado` (``crisis-sim sensitivity SCENARIO``): each input is set to its low and
  then its high value, the others staying as the file has them, and the headline KPIs are
  re-estimated with the same replications from the same seed (common random numbers), so
  a change in a KPI is the input's effect, not noise. Inputs are ranked by the swing
  ``|KPI(high) - KPI(low)|`` of each KPI: a tornado chart.
* :func:`sample_inputs`: a Latin hypercube over all ranges at once (``scipy.stats.qmc``),
  used by :mod:`sim.predictions` to put input uncertainty into a prediction interval.

An input whose file value is an integer (teams) is rounded to the nearest integer.
Units: those of each input and KPI.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .argtypes import positive_int, seed as seed_type
from .basis import resolve
from .calibrate import load_any, simulate
from .results import write_csv
from .scenario import ScenarioError, load_raw

DEFAULT_KPIS = ["fallback_rate", "response_time_mean", "diversion_rate"]


def _value(nominal: Any, x: float) -> float | int:
    return int(round(x)) if isinstance(nominal, int) and not isinstance(nominal, bool) else float(x)


def nominal_values(path: str | Path, overrides: dict | None = None) -> dict[str, Any]:
    """Each ranged input's value in the file (after ``overrides``)."""
    s = load_any(path, overrides)
    data = s.model_dump()
    return {p: resolve(data, p) for p in s.ranges}


def headline_kpis(scenario) -> list[str]:
    """The scenario's target metrics, else :data:`DEFAULT_KPIS`."""
    return list(dict.fromkeys(t.metric for t in scenario.targets)) or list(DEFAULT_KPIS)


def tornado(path: str | Path, kpis: list[str] | None = None, replications: int = 3, seed: int | None = None,
            overrides: dict | None = None, workers: int = 1, progress=None) -> pd.DataFrame:
    """One row per (input, KPI): the KPI at the input's low, file and high values, the
    swing and the input's rank for that KPI (1 = moves it most). Raises ScenarioError
    when the file has no ``ranges:``."""
    overrides = dict(overrides or {})
    base = load_any(path, overrides)
    if not base.ranges:
        raise ScenarioError(str(path), "ranges", "no ranges: to screen; give ASSUMPTION inputs as "
                            "ranges: {dotted.path: [low, high]}")
    seed = base.seed if seed is None else seed
    kpis = kpis or headline_kpis(base)
    nominal = nominal_values(path, overrides)

    def means(extra: dict) -> pd.Series:
        s = load_any(path, {**overrides, **extra})
        return simulate(s, replications, seed, workers).set_index("metric")["mean"]

    at_nominal = means({})
    rows = []
    for inp, (low, high) in base.ranges.items():
        lo_v, hi_v = _value(nominal[inp], low), _value(nominal[inp], high)
        at_low, at_high = means({inp: lo_v}), means({inp: hi_v})
        for k in kpis:
            a, b = float(at_low.get(k, np.nan)), float(at_high.get(k, np.nan))
            rows.append({"input": inp, "low": lo_v, "value": nominal[inp], "high": hi_v, "kpi": k,
                         "at_low": a, "at_value": float(at_nominal.get(k, np.nan)), "at_high": b,
                         "swing": abs(b - a)})
        if progress:
            progress(inp)
    out = pd.DataFrame(rows)
    out["rank"] = out.groupby("kpi")["swing"].rank(ascending=False, method="first").astype(int)
    return out.sort_values(["kpi", "rank"], ignore_index=True)


def sample_inputs(ranges: dict[str, tuple[float, float]], nominal: dict[str, Any], n: int,
                  seed: int) -> list[dict[str, float | int]]:
    """``n`` Latin-hypercube points over ``ranges`` (uniform in each), as override dicts."""
    from scipy.stats import qmc
    if not ranges:
        return [{} for _ in range(n)]
    names = list(ranges)
    u = qmc.LatinHypercube(d=len(names), seed=np.random.default_rng(seed)).random(n)
    lows = np.array([ranges[k][0] for k in names])
    highs = np.array([ranges[k][1] for k in names])
    x = qmc.scale(u, lows, highs) if np.all(highs > lows) else lows + u * (highs - lows)
    return [{k: _value(nominal[k], row[j]) for j, k in enumerate(names)} for row in x]


def tornado_chart(table: pd.DataFrame, kpi: str, out: str | Path, title: str = "") -> Path:
    """Horizontal bars: the KPI at each input's low and high value around the file's value."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    g = table[table["kpi"] == kpi].sort_values("swing")
    fig, ax = plt.subplots(figsize=(8.5, 0.5 * len(g) + 1.5))
    centre = float(g["at_value"].iloc[0]) if len(g) else 0.0
    for i, r in enumerate(g.itertuples()):
        ax.barh(i, r.at_low - centre, left=centre, color="#4c72b0", label="low" if i == 0 else None)
        ax.barh(i, r.at_high - centre, left=centre, color="#dd8452", label="high" if i == 0 else None)
    ax.axvline(centre, color="black", lw=1)
    ax.set_yticks(range(len(g)), [f"{r.input}\n[{r.low:g}, {r.high:g}]" for r in g.itertuples()], fontsize=7)
    ax.set_xlabel(f"{kpi} (file's values: {centre:.4g})")
    ax.set_title(title or f"One-at-a-time sensitivity of {kpi}", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out)
    return out


# --------------------------------------------------------------------------- CLI


def parse_sets(items: list[str], file: str | None = None) -> dict[str, Any]:
    """``--set`` strings -> an overrides dict, every form ``--set`` takes elsewhere
    (``field=value``, ``list+=item``, ``list-=name``: :func:`sim.overrides.pairs`)."""
    from .overrides import pairs
    try:
        return pairs(items)
    except ScenarioError as e:
        raise ScenarioError(file, None, e.message) from None


def _cmd(args) -> int:
    overrides = parse_sets(args.set, args.scenario)
    load_raw(args.scenario)                       # a missing file: one line, exit 2
    table = tornado(args.scenario, args.kpi or None, args.replications, args.seed, overrides, args.workers,
                    None if args.quiet else (lambda i: print(f"  screened {i}", file=sys.stderr)))
    out = Path(args.out)
    write_csv(out / "sensitivity.csv", table)
    for k, g in table.groupby("kpi", sort=False):
        tornado_chart(table, k, out / f"tornado_{k.replace('/', '_')}.png")
        print(f"{k} (file's values: {g['at_value'].iloc[0]:.4g})")
        for r in g.itertuples():
            print(f"  {r.rank:>2}. {r.input:<55} [{r.low:g}, {r.high:g}] -> {r.at_low:.4g} .. {r.at_high:.4g}"
                  f"  (swing {r.swing:.4g})")
    print(f"wrote {out}/sensitivity.csv and tornado charts")
    return 0


def register_cli(sub) -> None:
    """Add ``sensitivity SCENARIO`` to a CLI's subparsers."""
    c = sub.add_parser("sensitivity", help="one-at-a-time screening of the ranges: inputs (common random "
                                           "numbers); ranks the inputs that move the headline KPIs most")
    c.add_argument("scenario")
    c.add_argument("--kpi", action="append", default=[], help="KPI to rank by (repeatable; default: the "
                                                                "file's target metrics)")
    c.add_argument("--replications", "-r", type=positive_int, default=3)
    c.add_argument("--seed", type=seed_type, default=None, help="default: the scenario's own seed")
    c.add_argument("--workers", type=positive_int, default=1)
    c.add_argument("--set", action="append", metavar="FIELD=VALUE", default=[],
                   help="override a field first, e.g. horizon_days=60 (repeatable)")
    c.add_argument("--out", default="results/sensitivity", help="folder for sensitivity.csv and charts")
    c.add_argument("--quiet", action="store_true")
    c.set_defaults(func=_cmd)
