"""Call log -> KPIs.

``kpis(calls, pools)`` turns one replication's log and resource audit into a flat
``{metric: value}`` mapping; ``summarise`` turns many replications into mean and 95%
t-intervals. Only calls that arrived after the warm-up count. Everything is computed from
what the log recorded; nothing here reaches back into the model.

Metric names (minutes where timed):

* ``calls``, ``calls_per_day``
* ``response_time_mean`` / ``_p50`` / ``_p90``: received -> first unit on scene
* ``queue_wait_mean``: ready for dispatch -> team assigned; ``travel_time_mean``
* ``diversion_rate``: share of all calls closed with no police unit on scene
* ``eligible_diversion_rate``: the same among calls eligible for an alternative response
* ``fallback_rate``: share of eligible calls answered by police because no team was free in time
* ``police_backup_rate``: backup requests per call answered by a non-police team
* ``police_hours``: police unit-hours on calls (primary units to back in service, plus backups)
* ``police_response_time_p{k}_mean``: police-answered calls of priority k
* ``no_response_rate``: calls nobody answered within the path's waits
* ``utilisation.{pool}``: busy / on-duty team-minutes; ``cost_per_call.{pool}``

After the scene:

* ``transports.{facility}``: transports handed over there; ``transport_consent_refused``
* ``door_wait_hours``: team-hours lost waiting at facility doors
* ``occupancy_mean.{f}`` / ``occupancy_peak.{f}`` (beds, time-weighted over the measured window),
  ``refusal_rate.{f}`` (arrivals turned away because full), ``admissions.{f}``
* ``backups``, ``backup_delay_mean`` (request -> police unit on scene)
* ``followups_done``, ``followups_missed``
* ``unique_people``: distinct person ids served (calls and outreach); ``repeat_calls``: calls
  from people who called before; ``calls_prevented`` (case management); ``outreach_contacts``
* ``callback_time_mean``: received -> call returned, for pools that work by phone
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats


def _mean(x) -> float:
    x = np.asarray(x, dtype=float)
    x = x[~np.isnan(x)]
    return float(x.mean()) if len(x) else math.nan


def _q(x, q: float) -> float:
    x = np.asarray(x, dtype=float)
    x = x[~np.isnan(x)]
    return float(np.quantile(x, q)) if len(x) else math.nan


def _rate(num, den) -> float:
    return float(num) / float(den) if den else math.nan


def kpis(calls: pd.DataFrame, pools: pd.DataFrame, horizon_days: float,
         facilities: pd.DataFrame | None = None) -> dict[str, float]:
    """KPIs of one replication (see module docstring for names and units)."""
    measured = calls[~calls["warmup"]]
    proactive = measured["proactive"].to_numpy() if "proactive" in measured else np.zeros(len(measured), bool)
    prevented = (measured["outcome"] == "prevented").to_numpy()
    c = measured[~proactive & ~prevented]       # calls that happened and came in
    out: dict[str, float] = {}
    n = len(c)
    out["calls"] = float(n)
    out["calls_per_day"] = n / horizon_days
    rt = c["response_time"].to_numpy(dtype=float)
    out["response_time_mean"] = _mean(rt)
    out["response_time_p50"] = _q(rt, 0.5)
    out["response_time_p90"] = _q(rt, 0.9)
    out["queue_wait_mean"] = _mean(c["queue_wait"])
    out["travel_time_mean"] = _mean(c["travel_time"])
    diverted = c["diverted"].to_numpy()
    out["diversion_rate"] = _rate(diverted.sum(), n)
    eligible = c["eligible"].to_numpy()
    out["eligible_diversion_rate"] = _rate((diverted & eligible).sum(), eligible.sum())
    police_pool = c["police_pool"].to_numpy()
    fallback = c["fallback"].to_numpy()
    out["fallback_rate"] = _rate((eligible & fallback & police_pool).sum(), eligible.sum())
    served = c["pool"].notna().to_numpy()
    alt = served & ~police_pool
    out["police_backup_rate"] = _rate((c["backup"].to_numpy() & alt).sum(), alt.sum())
    out["no_response_rate"] = _rate((c["outcome"] == "no_response").sum(), n)
    primary = np.where(police_pool, c["t_team_free"] - c["t_dispatched"], 0.0)
    backup = np.nan_to_num(c["backup_delay"].to_numpy(float)) + np.nan_to_num(c["backup_on_scene"].to_numpy(float))
    out["police_hours"] = float(np.nansum(primary) + backup.sum()) / 60.0
    for prio in sorted(c["priority"].unique()):
        sel = police_pool & (c["priority"].to_numpy() == prio)
        out[f"police_response_time_p{prio}_mean"] = _mean(rt[sel])
    out.update(_aftercare(c, facilities))
    remote = pools.loc[pools.get("remote", pd.Series(False, index=pools.index)).astype(bool), "pool"]
    remote = [p for p in remote if not str(p).startswith("desk:")]
    if remote:
        out["callback_time_mean"] = _mean(c.loc[c["pool"].isin(remote), "response_time"])
    out["calls_prevented"] = float(prevented.sum())
    out["outreach_contacts"] = float(proactive.sum())
    people = measured.loc[measured["pool"].notna() & (measured["person"] >= 0), "person"]
    out["unique_people"] = float(people.nunique())        # calls and outreach alike
    for _, row in pools.iterrows():
        out[f"utilisation.{row['pool']}"] = _rate(row["busy_min"], row["on_duty_min"])
        if not str(row["pool"]).startswith("desk:"):
            out[f"cost_per_call.{row['pool']}"] = _rate(row["staffed_cost"], row["calls_served"])
    return out


def _aftercare(c: pd.DataFrame, facilities: pd.DataFrame | None) -> dict[str, float]:
    out: dict[str, float] = {}
    if "destination" in c:
        for fac, k in c["destination"].value_counts().items():
            out[f"transports.{fac}"] = float(k)
        out["transport_consent_refused"] = float(c["consent_refused"].sum())
        out["door_wait_hours"] = float(np.nansum(c["door_wait"].to_numpy(float))) / 60.0
    out["backups"] = float(c["backup"].sum())
    out["backup_delay_mean"] = _mean(c["backup_delay"])
    if "followup" in c:
        out["followups_done"] = float((c["followup"] == "done").sum())
        out["followups_missed"] = float((c["followup"] == "missed").sum())
    callers = c.loc[c["person"] >= 0, "person"]
    out["repeat_calls"] = float(len(callers) - callers.nunique())   # calls from people who called before
    if facilities is not None:
        for row in facilities.itertuples():
            out[f"occupancy_mean.{row.facility}"] = row.occupancy_mean
            out[f"occupancy_peak.{row.facility}"] = row.occupancy_peak
            out[f"admissions.{row.facility}"] = float(row.admissions)
            out[f"refusal_rate.{row.facility}"] = _rate(row.refusals, row.arrivals)
    return out


def t_interval(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of a 95% t-interval across replications; NaN bounds for n < 2."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan
    m = float(x.mean())
    if n < 2:
        return m, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return m, m - half, m + half


def summarise(kpi_long: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """Long KPI table (scenario, replication, metric, value) -> mean and 95% CI per metric.

    Columns: ``*by, metric, mean, ci_low, ci_high, replications``.
    """
    by = by or ["scenario"]
    rows = []
    for key, g in kpi_long.groupby(by + ["metric"], sort=False, observed=True):
        m, lo, hi = t_interval(g["value"])
        key = key if isinstance(key, tuple) else (key,)
        rows.append(dict(zip(by + ["metric"], key), mean=m, ci_low=lo, ci_high=hi,
                         replications=int(g["value"].notna().sum())))
    return pd.DataFrame(rows, columns=by + ["metric", "mean", "ci_low", "ci_high", "replications"])
