"""Shootings log -> KPIs of one replication, and the published targets check.

Only shootings after the warm-up count (``warmup`` is False); programs start then too.
Everything is computed from the logs the run wrote (shootings, responses, actions, staff
audit), never from the model's internals.

Metric names (counts over the measured horizon unless they say otherwise):

* ``counterfactual_shootings``: shootings without any program (the whole history);
  ``counterfactual_per_year``; ``offspring_share``: share of those that are retaliations
* ``shootings``: shootings that still happen; ``shootings_averted`` (and ``_per_year``),
  split as ``background_averted`` / ``retaliations_averted`` (by the kind of shooting
  averted) and ``averted.<reason>`` (by what cancelled it: response, fellowship,
  canvassing, call_in, enforcement, or ancestor = descendant of an averted shooting)
* ``reduction``: shootings_averted / counterfactual_shootings
* ``counterfactual_deaths_per_year``, ``deaths_per_year``: fatal shootings per year
  without / with the programs; ``deaths_averted``, ``injuries_averted``: averted
  shootings by their ``fatal`` flag
* ``reached_1h.<response>``, ``reached_24h.<response>``: share of the shootings a response
  program serves (all, or non-fatal for hospital response) that a worker reached within
  1 h / 24 h of the shooting; ``missed.<response>``: those not reached within the
  program's window (count); ``no_capacity.<response>``: missed because no worker was free
  on shift in time or the week's hours were spent
* ``utilisation.<staff>``: time spent on responses / time on shift
* ``caseload_fill``: mean share of fellowship slots filled; ``caseload_coverage``: share
  of no-program shootings fired by someone who was a fellow at the time
* ``canvass_coverage``: mean weekly coverage of canvassed areas (0-1)
* ``call_ins``, ``enforcement_actions``: focused-deterrence actions (counts)
* ``program_cost``: staff of the programs + other costs, over the horizon (currency);
  ``social_cost_averted``: per-injury or per-homicide social cost of each averted shooting
  (whether a shooting is fatal is drawn with the scenario's ``contagion.fatality_share``);
  ``cost_per_shooting_averted`` = program_cost / shootings_averted (NaN if none averted);
  ``net_social_benefit`` = social_cost_averted - program_cost
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .schema import ViolenceScenario

REASONS = ("response", "fellowship", "canvassing", "call_in", "enforcement", "ancestor")


def kpis(s: ViolenceScenario, shootings: pd.DataFrame, responses: pd.DataFrame,
         actions: pd.DataFrame, staff: pd.DataFrame) -> dict[str, float]:
    """KPIs of one replication (see the module docstring for names and units)."""
    years = s.horizon_days / 365.0
    sh = shootings[~shootings["warmup"]]
    cancelled = sh["cancelled"].to_numpy()
    retaliation = sh["generation"].to_numpy() > 0
    fatal = sh["fatal"].to_numpy()
    out: dict[str, float] = {}
    n_cf = len(sh)
    averted = int(cancelled.sum())
    out["counterfactual_shootings"] = float(n_cf)
    out["counterfactual_per_year"] = n_cf / years
    out["offspring_share"] = float(retaliation.mean()) if n_cf else math.nan
    out["shootings"] = float(n_cf - averted)
    out["shootings_averted"] = float(averted)
    out["shootings_averted_per_year"] = averted / years
    out["background_averted"] = float((cancelled & ~retaliation).sum())
    out["retaliations_averted"] = float((cancelled & retaliation).sum())
    reasons = sh["reason"].to_numpy()
    for r in REASONS:
        out[f"averted.{r}"] = float((reasons == r).sum())
    out["reduction"] = averted / n_cf if n_cf else math.nan
    out["counterfactual_deaths_per_year"] = float(fatal.sum()) / years
    out["deaths_per_year"] = float((fatal & ~cancelled).sum()) / years
    out["deaths_averted"] = float((cancelled & fatal).sum())
    out["injuries_averted"] = float((cancelled & ~fatal).sum())

    p = s.programs
    if p is not None:
        _response_kpis(p, responses, s.start_min, out)
        _program_kpis(s, sh, actions, staff, out)
    cost = _program_cost(s)
    social = (out["deaths_averted"] * s.social_cost.per_homicide
              + out["injuries_averted"] * s.social_cost.per_injury)
    out["program_cost"] = cost
    out["social_cost_averted"] = social
    out["cost_per_shooting_averted"] = cost / averted if averted else math.nan
    out["net_social_benefit"] = social - cost
    return out


def _response_kpis(p, responses: pd.DataFrame, start_min: float, out: dict) -> None:
    rs = responses[responses["shot_min"] >= start_min]
    for name in p.responses:
        g = rs[rs["response"] == name]
        delay = (g["arrived_min"] - g["shot_min"]).to_numpy(dtype=float)
        n = len(g)
        out[f"reached_1h.{name}"] = float(np.sum(delay <= 60.0)) / n if n else math.nan
        out[f"reached_24h.{name}"] = float(np.sum(delay <= 1440.0)) / n if n else math.nan
        outcome = g["outcome"].to_numpy()
        out[f"missed.{name}"] = float(np.sum(outcome != "reached"))
        out[f"no_capacity.{name}"] = float(np.isin(outcome, ("no_worker", "no_hours")).sum())


def _program_kpis(s: ViolenceScenario, sh: pd.DataFrame, actions: pd.DataFrame,
                  staff: pd.DataFrame, out: dict) -> None:
    p = s.programs
    t0, t1 = s.start_min, s.end_min
    responding = {r.staff for r in p.responses.values()}
    for _, row in staff.iterrows():
        if row["staff"] in responding:
            out[f"utilisation.{row['staff']}"] = (row["response_busy_min"] / row["on_duty_min"]
                                                  if row["on_duty_min"] else math.nan)
    if p.fellowship:
        enrolled = actions[(actions["program"] == "fellowship") & (actions["action"] == "enrolled")]
        start = enrolled["time_min"].to_numpy(dtype=float)
        end = np.minimum(start + p.fellowship.duration_days * 1440.0, t1)
        slots = s.staff[p.fellowship.staff].workers * p.fellowship.caseload
        filled = np.clip(end - np.maximum(start, t0), 0, None).sum()
        out["caseload_fill"] = filled / (slots * (t1 - t0))
        out["caseload_coverage"] = float(sh["fellow"].mean()) if len(sh) else math.nan
    if p.canvassing:
        weeks = actions[(actions["program"] == "canvassing") & (actions["action"] == "week")]
        out["canvass_coverage"] = float(weeks["value"].mean()) if len(weeks) else 0.0
    if p.focused_deterrence:
        fd = actions[actions["program"] == "focused_deterrence"]
        out["call_ins"] = float((fd["action"] == "call_in").sum())
        out["enforcement_actions"] = float((fd["action"] == "enforcement").sum())


def _program_cost(s: ViolenceScenario) -> float:
    """Staff of the programs plus other costs, over the measured horizon (currency)."""
    if s.programs is None:
        return 0.0
    per_year = sum(s.staff[n].workers * s.staff[n].cost_per_year for n in s.programs.staff_used())
    return (per_year + s.other_cost_per_year) * s.horizon_days / 365.0


def check_targets(s: ViolenceScenario, summary: pd.DataFrame) -> pd.DataFrame:
    """Published targets against the simulated 95% intervals, one row per target.

    The rule is the calibration check's: ``within`` when the whole interval lies inside
    ``published ± tolerance``, ``outside`` when it lies wholly outside, else
    ``inconclusive`` (with one replication the mean alone is compared). Columns: scenario,
    metric, published, tolerance, mean, ci_low, ci_high, replications, within, verdict,
    required, source, reason.
    """
    by_metric = summary.set_index("metric")
    rows = []
    for t in s.targets:
        m = lo = hi = math.nan
        n = 0
        if t.metric in by_metric.index:
            r = by_metric.loc[t.metric]
            m, lo, hi, n = float(r["mean"]), float(r["ci_low"]), float(r["ci_high"]), int(r["replications"])
        band = (t.published - t.tolerance, t.published + t.tolerance)
        if math.isnan(m):
            v = "no value"
        elif math.isnan(lo):
            v = "within" if band[0] <= m <= band[1] else "outside"
        else:
            v = ("within" if band[0] <= lo and hi <= band[1] else
                 "outside" if hi < band[0] or lo > band[1] else "inconclusive")
        rows.append({"scenario": s.name, "metric": t.metric, "published": t.published, "tolerance": t.tolerance,
                     "mean": m, "ci_low": lo, "ci_high": hi, "replications": n, "within": v == "within",
                     "verdict": v, "required": t.required, "source": t.source, "reason": t.reason})
    return pd.DataFrame(rows, columns=["scenario", "metric", "published", "tolerance", "mean", "ci_low",
                                       "ci_high", "replications", "within", "verdict", "required", "source",
                                       "reason"])
