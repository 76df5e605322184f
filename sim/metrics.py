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
* ``fallback_rate``: share of eligible calls answered by a later pool in their path's preference
  order (usually police) because no team of an earlier pool was free in time
* ``police_backup_rate``: backup requests per call answered by a non-police team
* ``police_hours``: police unit-hours on calls (the log's ``police_minutes``: answering units to
  back in service, backups on the way and on scene, desk-sent sworn second units)
* ``police_response_time_p{k}_mean``: police-answered calls of priority k
* ``no_response_rate``: calls nobody answered within the path's waits
* ``utilisation.{pool}``: busy team-minutes while on duty / on-duty team-minutes (overtime past
  a shift's end is in ``pools.overtime_min``, not here); ``cost_per_call.{pool}``

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
    c = _incoming(calls)                        # calls that happened and came in
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
    out["fallback_rate"] = _rate((eligible & fallback).sum(), eligible.sum())
    served = c["pool"].notna().to_numpy()
    alt = served & ~police_pool
    out["police_backup_rate"] = _rate((c["backup"].to_numpy() & alt).sum(), alt.sum())
    out["no_response_rate"] = _rate((c["outcome"] == "no_response").sum(), n)
    out["police_hours"] = float(c["police_minutes"].sum()) / 60.0
    for prio in sorted(c["priority"].unique()):
        sel = police_pool & (c["priority"].to_numpy() == prio)
        out[f"police_response_time_p{prio}_mean"] = _mean(rt[sel])
    out.update(_aftercare(c, facilities))
    remote = pools.loc[pools.get("remote", pd.Series(False, index=pools.index)).astype(bool), "pool"]
    remote = [p for p in remote if not str(p).startswith("desk:")]
    if remote:
        out["callback_time_mean"] = _mean(c.loc[c["pool"].isin(remote), "response_time"])
    out["calls_prevented"] = float((measured["outcome"] == "prevented").sum())
    out["outreach_contacts"] = float(measured["proactive"].sum()) if "proactive" in measured else 0.0
    people = measured.loc[measured["pool"].notna() & (measured["person"] >= 0), "person"]
    out["unique_people"] = float(people.nunique())        # calls and outreach alike
    for _, row in pools.iterrows():
        out[f"utilisation.{row['pool']}"] = _rate(row["busy_on_duty_min"], row["on_duty_min"])
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


# --------------------------------------------------------------------------- calibration KPIs
# Counts the published program figures are stated in (calls a pool attended per year,
# per month from one channel, per zone). Kept apart from ``kpis`` so the standard summary
# stays as it is; ``sim.calibrate`` adds them to every replication.


def program_kpis(calls: pd.DataFrame, horizon_days: float) -> dict[str, float]:
    """Per-pool, per-channel and per-zone KPIs of one replication (rates scale counts in
    the measured window to a year of 365 days, a month of 365/12 days, a day).

    * ``pool_calls.P``: calls pool P attended, as the answering unit or as the second unit
      a desk sent (LAPD SMART); ``pool_calls_per_year.P`` / ``_per_month.P`` / ``_per_day.P``
    * ``pool_share.P``: pool_calls.P / calls (the "20% of all 911 calls" figure)
    * ``pool_calls_per_month.P.CH``: the same, counting only calls from channel CH
    * ``pool_response_time_mean.P``: received -> P's unit on scene (minutes)
    * ``pool_no_police_rate.P``: share of calls P answered that closed with no police on scene
    * ``pool_unique_people.P``: distinct person ids P met, on calls and on its own outreach
    * ``channel_calls_per_year.CH``; ``backups_per_year``
    * ``zone_calls_per_year.Z``, ``zone_diversion_rate.Z``, ``zone_eligible_diversion_rate.Z``,
      ``zone_response_time_mean.Z``, ``zone_police_hours_per_year.Z`` (see :func:`zone_comparison`)

    Like :func:`kpis`, only calls that came in after the warm-up count (no outreach rows,
    no calls case management prevented).
    """
    measured = calls[~calls["warmup"]]
    c = _incoming(calls)
    n = len(c)
    year, month = 365.0 / horizon_days, 365.0 / 12.0 / horizon_days
    out: dict[str, float] = {"backups_per_year": float(c["backup"].sum()) * year}
    rt = c["response_time"].to_numpy(float)
    second_rt = (c["t_second_on_scene"] - c["t_received"]).to_numpy(float)
    pool = c["pool"].astype(object).to_numpy()
    second = c["second_pool"].astype(object).to_numpy()
    channel = c["channel"].astype(object).to_numpy()
    for p in _categories(c["pool"]):
        first, by_desk = pool == p, second == p
        attended = first | by_desk
        k = float(attended.sum())
        out[f"pool_calls.{p}"] = k
        out[f"pool_calls_per_year.{p}"] = k * year
        out[f"pool_calls_per_month.{p}"] = k * month
        out[f"pool_calls_per_day.{p}"] = k / horizon_days
        out[f"pool_share.{p}"] = _rate(k, n)
        out[f"pool_response_time_mean.{p}"] = _mean(np.where(by_desk, second_rt, rt)[attended])
        out[f"pool_no_police_rate.{p}"] = _rate((first & ~c["police_on_scene"].to_numpy()).sum(), first.sum())
        out[f"pool_unique_people.{p}"] = float(measured.loc[(measured["pool"] == p) & (measured["person"] >= 0),
                                                            "person"].nunique())
        for ch in _categories(c["channel"]):
            out[f"pool_calls_per_month.{p}.{ch}"] = float((attended & (channel == ch)).sum()) * month
    for ch in _categories(c["channel"]):
        out[f"channel_calls_per_year.{ch}"] = float((channel == ch).sum()) * year
    for _, row in zone_comparison(calls, {}, horizon_days, by="zone").iterrows():
        for m in ("calls_per_year", "diversion_rate", "eligible_diversion_rate", "response_time_mean",
                  "police_hours_per_year"):
            out[f"zone_{m}.{row['group']}"] = row[m]
    return out


def zone_comparison(calls: pd.DataFrame, groups: dict[str, list[str]] | list[str], horizon_days: float,
                    by: str = "group") -> pd.DataFrame:
    """Pilot zones against the rest of the city, from the call log's ``zone`` column.

    ``groups`` maps a label to zone names (``{"pilot": ["east", "west"]}``); zones in no
    group are ``rest``. A plain list of zones means ``{"pilot": zones}``. ``by="zone"``
    gives one row per zone instead. Works on a log of many scenarios and replications:
    one row per scenario, replication and group, with ``calls_per_year``,
    ``diversion_rate``, ``eligible_diversion_rate``, ``fallback_rate``,
    ``response_time_mean`` (minutes) and ``police_hours_per_year``.
    """
    if isinstance(groups, list):
        groups = {"pilot": groups}
    label = {z: g for g, zones in groups.items() for z in zones}
    c = _incoming(calls)
    zone = c["zone"].astype(object)
    key = zone if by == "zone" else zone.map(lambda z: label.get(z, "rest"))
    frame = pd.DataFrame({
        "scenario": c["scenario"].astype(object) if "scenario" in c else "",
        "replication": c["replication"] if "replication" in c else 0,
        "group": key.to_numpy(),
        "diverted": c["diverted"].to_numpy(), "eligible": c["eligible"].to_numpy(),
        "eligible_diverted": (c["diverted"] & c["eligible"]).to_numpy(),
        "fallback": (c["eligible"] & c["fallback"]).to_numpy(),      # as fallback_rate in kpis()
        "response_time": c["response_time"].to_numpy(float),
        "police_min": c["police_minutes"].to_numpy(float)})
    g = frame.groupby(["scenario", "replication", "group"], sort=True)
    out = g.agg(calls=("diverted", "size"), diverted=("diverted", "sum"), eligible=("eligible", "sum"),
                eligible_diverted=("eligible_diverted", "sum"), fallback=("fallback", "sum"),
                response_time_mean=("response_time", "mean"), police_min=("police_min", "sum")).reset_index()
    out["calls_per_year"] = out["calls"] * 365.0 / horizon_days
    out["diversion_rate"] = out["diverted"] / out["calls"]
    elig = out["eligible"].where(out["eligible"] > 0)
    out["eligible_diversion_rate"] = out["eligible_diverted"] / elig
    out["fallback_rate"] = out["fallback"] / elig
    out["police_hours_per_year"] = out["police_min"] / 60.0 * 365.0 / horizon_days
    return out[["scenario", "replication", "group", "calls", "calls_per_year", "diversion_rate",
                "eligible_diversion_rate", "fallback_rate", "response_time_mean", "police_hours_per_year"]]


def _incoming(calls: pd.DataFrame) -> pd.DataFrame:
    """Measured calls that came in (as :func:`kpis` counts them)."""
    c = calls[~calls["warmup"]]
    keep = c["outcome"] != "prevented"
    if "proactive" in c:
        keep &= ~c["proactive"]
    return c[keep]


def _categories(col: pd.Series) -> list[str]:
    return [str(x) for x in (col.cat.categories if hasattr(col, "cat") else pd.unique(col.dropna()))]
