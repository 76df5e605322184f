"""``from_cad``: a calls-for-service export -> fitted tables -> a scenario that runs.

The scenario written is the city *as the data shows it* (the status quo): every call type
goes to the kind of responder that answered it in the data (a type answered by several kinds
is split: ``medical`` and ``medical_police``), a type seen at several priorities is split
into ``<type>_p<k>`` (the scenario has one priority per type and serves waiting calls by
it), each with the fitted on-scene time of its type and responder,
and the crosswalk's eligible types are declared ``eligible: true`` so a program variant
(``extends:`` the written file, adds a crisis-team pool to the eligible path) counts the
same calls. What the data cannot say (staffing, outcomes, costs) is written as a marked
ASSUMPTION in ``assumptions:``.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .columns import INTERVALS, ColumnMap, load_column_map
from .crosswalk import Crosswalk, identity, load_crosswalk
from .fit import (DistFit, ProfileFit, daily_cv, exposure_hours, fit_duration, fit_profile, how_bin,
                  interval_minutes)
from .read import CallTable, read_calls

ROLE_OF = {"police": ("officer", True), "fire": ("firefighter", False), "ems": ("medic", False),
           "civilian": ("crisis_worker", False), "co_responder": ("clinician", False)}
GROUP_PATH = {"civilian": "civilian_eligible", "co_responder": "co_responder_eligible", "police": "police"}
TARGET_UTILISATION = 0.75
PLACEHOLDER_ON_SCENE = {"lognormal": {"mean": 45.0, "sd": 30.0}}


def _snake(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_")
    return s if re.match(r"^[a-z]", s) else f"c_{s}" if s else "unknown"


@dataclass
class CadFit:
    """Everything ``from_cad`` fitted, the scenario built from it and the tables behind it."""

    calls: CallTable
    cmap: ColumnMap
    crosswalk: Crosswalk | None
    profiles: dict[str, ProfileFit]
    daily_cv: dict[str, tuple[float, int]]
    processing: DistFit | None
    turnout: DistFit | None
    travel: dict[str, DistFit]            # zone -> fit ('*' = all zones)
    on_scene: dict[tuple[str, str], DistFit]   # (responder, call type or '*') -> fit
    tables: dict[str, pd.DataFrame]
    scenario_dict: dict
    notes: list[str] = field(default_factory=list)
    major: dict[str, str] = field(default_factory=dict)   # crosswalk type -> majority responder
    used: pd.DataFrame | None = None                      # used rows with stype, bin, intervals

    @property
    def scenario(self):
        from ..scenario import validate
        return validate(self.scenario_dict, "<calibrated scenario>")

    def yaml_text(self) -> str:
        head = [f"# Written by crisis-sim calibrate on {_dt.date.today():%Y-%m-%d} from {Path(self.calls.file).name}",
                f"# (column map: {self.cmap.name}; crosswalk: {Path(self.crosswalk.where).name if self.crosswalk else 'none'}).",
                "# Fitted from the data: channel volumes, hour-of-week profiles, daily_cv, call-type mix, zone",
                "# shares, priorities, processing, turnout, travel and on-scene times. Everything else is an",
                "# ASSUMPTION listed under assumptions: (staffing, outcomes, costs). Edit them before use."]
        return "\n".join(head) + "\n" + yaml.dump(self.scenario_dict, Dumper=_Dumper, sort_keys=False,
                                                  allow_unicode=True, width=110)

    def write(self, path: str | Path) -> Path:
        """Write the scenario YAML atomically; it loads with :func:`sim.load_scenario`."""
        from ..results import write_text
        path = Path(path)
        write_text(path, self.yaml_text())
        return path

    def write_tables(self, folder: str | Path) -> list[Path]:
        from ..results import write_csv
        folder = Path(folder)
        out = []
        for name, t in self.tables.items():
            write_csv(folder / f"{name}.csv", t)
            out.append(folder / f"{name}.csv")
        return out

    def report(self, path: str | Path) -> Path:
        """Write the fit report (self-contained HTML)."""
        from .report import write_report
        return write_report(self, path)

    def holdout(self, other: CallTable, level: float = 0.9) -> dict[str, float]:
        """Coverage of another period's data (same map) by this fit's prediction intervals."""
        from .holdout import coverage
        return coverage(self, other, level)


class _Dumper(yaml.SafeDumper):
    """Lists of numbers or names on one (wrapped) line, as the hand-written scenarios have them."""


def _flow_lists(dumper, data):
    flow = all(isinstance(v, (int, float, str)) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _flow_lists)


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def classify(used: pd.DataFrame, cw: Crosswalk | None, major: dict[str, str] | None = None) -> pd.DataFrame:
    """Scenario call type ``stype`` per row: the crosswalk's type, split by responder where
    a type has several (the majority responder keeps the name, others get ``_<responder>``;
    ``major`` gives those majorities, default: this data's); and its path ``group``."""
    m = cw.apply(used["call_type"]) if cw is not None else identity(used["call_type"])
    base, group = m["call_type"], m["path"]
    out = pd.DataFrame({"base_type": base, "group": group, "rule": m["rule"], "responder": used["responder"]},
                       index=used.index)
    if major is None:
        major = out.groupby("base_type")["responder"].agg(lambda s: s.value_counts().idxmax()).to_dict()
    own = out["responder"].to_numpy() == out["base_type"].map(major).to_numpy()
    out["rtype"] = np.where(own, out["base_type"], out["base_type"] + "_" + out["responder"].map(_snake))
    # one priority per scenario call type: a type seen at several priorities is split into
    # <type>_p<k> (a call with no priority takes its type's most common one)
    pri = used["priority"]
    known = pri.notna()
    out["stype"] = out["rtype"]
    if known.any():
        modal = pri[known].groupby(out.loc[known, "rtype"]).agg(lambda v: int(v.value_counts().idxmax()))
        several = pri[known].groupby(out.loc[known, "rtype"]).nunique() > 1
        p = pri.astype("Float64").fillna(out["rtype"].map(modal).astype("Float64"))
        split = out["rtype"].map(several).fillna(False).astype(bool) & p.notna()
        out.loc[split, "stype"] = out.loc[split, "rtype"] + "_p" + p[split].astype(int).astype(str)
    return out


def _dist_row(what: str, key: dict, f: DistFit | None, n: int) -> dict:
    row = dict(interval=what, **key, n=n)
    if f is None:
        row.update(family="(too few: pooled fit used)", mean_min=np.nan, sd_min=np.nan)
        return row
    row.update(family=f.family, mean_min=f.mean, sd_min=f.sd,
               p50_min=float(np.median(f.sample)), p90_min=float(np.quantile(f.sample, 0.9)),
               **{f"aic_{k}": v for k, v in f.aic.items()})
    return row


def from_cad(calls: str | Path, columns: str | Path | dict | ColumnMap, crosswalk: str | Path | None = None, *,
             period=None, include_self_initiated: bool = False, include_cancelled: bool = False,
             min_samples: int = 30, horizon_days: float = 28, warmup_days: float = 3,
             name: str | None = None) -> CadFit:
    """Calibrate a scenario from a calls-for-service export.

    ``calls``: CSV (``.csv.gz`` too); ``columns``: a column map (YAML path, built-in name such
    as ``"decc"``, a mapping or a ColumnMap); ``crosswalk``: CSV path or built-in name (None:
    every raw type is its own call type); ``period``: (start, end) local datetimes, [start,
    end) (default: the whole days from the first to the last used call). Self-initiated and
    cancelled calls are excluded and counted unless ``include_*``. Durations are minutes.
    """
    if isinstance(columns, ColumnMap):
        cmap, where = columns, columns.name
    else:
        cmap, where = load_column_map(columns)
    cw = load_crosswalk(crosswalk)
    ct = read_calls(calls, cmap, where, period=period, include_self_initiated=include_self_initiated,
                    include_cancelled=include_cancelled)
    used = ct.used.copy()
    cls = classify(used, cw)
    used = used.join(cls[["base_type", "group", "rule", "rtype", "stype"]])
    start, end = ct.period
    notes = list(ct.notes)
    tables: dict[str, pd.DataFrame] = {}

    ex = ct.exclusions()
    tables["exclusions"] = pd.concat([pd.DataFrame({"reason": ["rows in file"], "rows": [ct.rows_in_file]}), ex],
                                     ignore_index=True)

    # --- arrivals by channel ---------------------------------------------------------
    exposure = exposure_hours(start, end, cmap.timezone)
    weeks = float(exposure.sum()) / 168.0
    profiles, dcv, prof_rows, chan_rows = {}, {}, [], []
    used["bin"] = how_bin(used["received"])
    for ch, g in used.groupby("channel", sort=False):
        pf = fit_profile(g["bin"].to_numpy(), exposure)
        profiles[str(ch)] = pf
        dcv[str(ch)] = daily_cv(g["received"], start, end)
        if dcv[str(ch)][1] < 8:
            notes.append(f"channel {ch}: daily_cv 0, not estimable (it needs two or more of a weekday; "
                         f"the period has {dcv[str(ch)][1]} days)")
        notes += [f"channel {ch}: {n}" for n in pf.notes]
        for b in range(168):
            prof_rows.append(dict(channel=ch, bin=b, day=b // 24, hour=b % 24, calls=pf.counts[b],
                                  exposure_h=pf.exposure[b], rate_per_h=pf.rate[b]))
        chan_rows.append(dict(channel=ch, calls=len(g), weeks_observed=weeks, per_week=pf.per_week,
                              expected_calls=float((pf.rate * pf.exposure).sum()), profile_model=pf.model,
                              aic_hour_of_week=pf.aic.get("hour_of_week", np.nan), aic_day_x_hour=pf.aic["day_x_hour"],
                              daily_cv=dcv[str(ch)][0], days=dcv[str(ch)][1]))
    order = sorted(profiles, key=lambda c: -len(used[used["channel"] == c]))
    tables["channels"] = pd.DataFrame(chan_rows).sort_values("calls", ascending=False, ignore_index=True)
    tables["hour_of_week"] = pd.DataFrame(prof_rows)

    # --- mix, priorities, zones, crosswalk coverage -------------------------------------
    mix = used.groupby(["channel", "stype"]).size().rename("calls").reset_index()
    mix["share"] = mix["calls"] / mix.groupby("channel")["calls"].transform("sum")
    tables["mix"] = mix.sort_values(["channel", "calls"], ascending=[True, False], ignore_index=True)
    pri = used.groupby(["rtype", "priority"], dropna=False).size().rename("calls").reset_index()
    pri["share"] = pri["calls"] / pri.groupby("rtype")["calls"].transform("sum")
    tables["priority"] = pri.rename(columns={"rtype": "call_type"})
    known = used["priority"].notna()
    modal = used[known].groupby("stype")["priority"].agg(lambda s: int(s.value_counts().idxmax()))
    if not known.any():
        notes.append("no priority in the data: every call type gets priority 3 (ASSUMPTION)")
    zones = used["zone"].dropna().astype(str)
    zone_tab = zones.value_counts().rename_axis("zone").reset_index(name="calls")
    zone_tab["share"] = zone_tab["calls"] / max(len(zones), 1)
    tables["zones"] = zone_tab
    if len(zones) < len(used) and len(zones):
        notes.append(f"{len(used) - len(zones)} used calls have no zone: zone shares are over the other {len(zones)}")
    cov = used.groupby(["call_type", "base_type", "group", "rule"]).size().rename("calls").reset_index()
    cov = cov.rename(columns={"call_type": "raw_type", "base_type": "call_type", "group": "path"})
    tables["crosswalk"] = cov.sort_values("calls", ascending=False, ignore_index=True)

    # --- durations ----------------------------------------------------------------------
    ledger, iv = [], {}
    for name_, (froms, tos) in INTERVALS.items():
        a = next((s for s in froms if s in cmap.timestamps or s in cmap.durations), None)
        b = next((s for s in tos if s in cmap.timestamps or s in cmap.durations), None)
        if a is None or b is None:
            continue
        d, status = interval_minutes(used, a, b, cmap.max_min(name_))
        iv[name_] = (d, status)
        vc = pd.Series(status).replace("", "(used)").value_counts()
        for reason, n in vc.items():
            ledger.append(dict(interval=f"{name_} ({a} -> {b})", reason=reason, rows=int(n)))
    tables["interval_exclusions"] = pd.DataFrame(ledger, columns=["interval", "reason", "rows"])

    def ok(name_):
        d, s = iv[name_]
        return pd.Series(np.where(s == "", d, np.nan), index=used.index)

    processing = turnout = None
    travel: dict[str, DistFit] = {}
    on_scene: dict[tuple[str, str], DistFit] = {}
    drows = []
    if "processing" in iv:
        x = ok("processing").dropna().to_numpy()
        processing = fit_duration(x, min_samples)
        drows.append(_dist_row("processing", {}, processing, len(x)))
    if "turnout" in iv:
        x = ok("turnout").dropna().to_numpy()
        turnout = fit_duration(x, min_samples)
        drows.append(_dist_row("turnout", {}, turnout, len(x)))
    if "travel" in iv:
        tv = ok("travel")
        x = tv.dropna().to_numpy()
        allz = fit_duration(x, min_samples)
        if allz is not None:
            travel["*"] = allz
        drows.append(_dist_row("travel", {"zone": "(all)"}, allz, len(x)))
        for z, g in tv.groupby(used["zone"].astype(str).where(used["zone"].notna())):
            x = g.dropna().to_numpy()
            f = fit_duration(x, min_samples)
            if f is not None:
                travel[str(z)] = f
            drows.append(_dist_row("travel", {"zone": z}, f, len(x)))
    if "on_scene" in iv:
        osd = ok("on_scene")
        for r, g in osd.groupby(used["responder"]):
            x = g.dropna().to_numpy()
            f = fit_duration(x, min_samples)
            if f is not None:
                on_scene[(r, "*")] = f
            drows.append(_dist_row("on_scene", {"responder": r, "call_type": "(all)"}, f, len(x)))
            for t, h in g.groupby(used.loc[g.index, "rtype"]):
                x = h.dropna().to_numpy()
                f = fit_duration(x, min_samples)
                if f is not None:
                    on_scene[(r, t)] = f
                drows.append(_dist_row("on_scene", {"responder": r, "call_type": t}, f, len(x)))
    tables["durations"] = pd.DataFrame(drows) if drows else pd.DataFrame(
        columns=["interval", "n", "family", "mean_min", "sd_min"])     # no stage stamps in the export

    fit = CadFit(calls=ct, cmap=cmap, crosswalk=cw, profiles=profiles, daily_cv=dcv, processing=processing,
                 turnout=turnout, travel=travel, on_scene=on_scene, tables=tables, scenario_dict={}, notes=notes,
                 major=cls.groupby("base_type")["responder"].agg(lambda s: s.value_counts().idxmax()).to_dict(),
                 used=used)
    for name_ in iv:
        used[f"{name_}_min"] = ok(name_)
    fit.scenario_dict = _scenario(fit, used, order, modal, zone_tab, name, horizon_days, warmup_days)
    fit.scenario  # noqa: B018  (validates; a problem here is a bug, not bad data)
    return fit


def _zone_rects(used: pd.DataFrame, cmap: ColumnMap, zones: list[str] | None) -> dict[str, list[float]]:
    """zone -> [x0, y0, x1, y1] km: the 5th-95th percentile box of its calls' locations, with
    the city's south-west corner at (0, 0); zones with no located call get none."""
    if cmap.coordinates_km is None or "x" not in cmap.fields or "y" not in cmap.fields:
        return {}
    ok = used["x"].notna() & used["y"].notna()
    if not ok.any():
        return {}
    x, y = used.loc[ok, "x"] * cmap.coordinates_km, used.loc[ok, "y"] * cmap.coordinates_km
    x0, y0 = float(x.quantile(0.01)), float(y.quantile(0.01))
    key = used.loc[ok, "zone"].astype(str) if zones else pd.Series("city", index=x.index)
    out = {}
    for z, idx in key.groupby(key).groups.items():
        if zones and z not in zones:
            continue
        qx, qy = x[idx].quantile([0.05, 0.95]), y[idx].quantile([0.05, 0.95])
        out[z] = [round(max(float(qx.iloc[0]) - x0, 0.0), 3), round(max(float(qy.iloc[0]) - y0, 0.0), 3),
                  round(max(float(qx.iloc[1]) - x0, 0.0), 3), round(max(float(qy.iloc[1]) - y0, 0.0), 3)]
    return out


def _scenario(fit: CadFit, used: pd.DataFrame, channels: list[str], modal: pd.Series, zone_tab: pd.DataFrame,
              name: str | None, horizon_days: float, warmup_days: float) -> dict:
    ct, cmap, cw = fit.calls, fit.cmap, fit.crosswalk
    start, end = ct.period
    labels = cw.labels() if cw is not None else {}
    assumptions = [
        "Fitted, not assumed: channel volumes and hour-of-week profiles, daily_cv, call-type mix, zone shares, "
        "priority (a type seen at several priorities is split into <type>_p<k>), processing, turnout, travel and on-scene times (see the fit report).",
        f"ASSUMPTION: teams on duty 24/7 sized for {TARGET_UTILISATION:.0%} utilisation of the offered load "
        "(calls x busy time); the export does not say how many units were on shift.",
        "ASSUMPTION: every contact ends resolved (no transports, backup or follow-ups); costs are 0.",
        "ASSUMPTION: one unit per call (multi-unit responses are not in the fit).",
    ]
    if fit.processing is not None and "queued" not in cmap.timestamps and "queued" not in cmap.durations:
        assumptions.append("The processing delay is received -> dispatched: it includes any wait for a free "
                           "unit, which the simulation adds again (no queued stamp in the export).")
    types = sorted(used["stype"].unique())
    first = used.drop_duplicates("stype").set_index("stype")
    call_types = {}
    for t in types:
        g = first.loc[t, "group"]
        p = int(modal.get(t, 3))
        entry = {"priority": max(p, 1), "eligible": bool(g != "police")}
        base, rtype = first.loc[t, "base_type"], first.loc[t, "rtype"]
        if base in labels:
            entry["label"] = (labels[base] + ("" if rtype == base else f", answered by {first.loc[t, 'responder']}")
                              + ("" if t == rtype else f", priority {p}"))
        call_types[t] = entry
    zones_present = len(zone_tab) > 0
    zones = ({str(z): {"share": round(float(s), 8)} for z, s in zip(zone_tab["zone"], zone_tab["share"])}
             if zones_present else {"city": {"share": 1.0}})
    for z, rect in _zone_rects(used, cmap, list(zones) if zones_present else None).items():
        zones[z]["rect_km"] = rect
    tot = sum(v["share"] for v in zones.values())
    if zones_present:
        last = next(reversed(zones))
        zones[last]["share"] = round(zones[last]["share"] + 1.0 - tot, 10)

    chans = {}
    for ch in channels:
        pf = fit.profiles[ch]
        g = used[used["channel"] == ch]
        mix = g["stype"].value_counts(normalize=True)
        mixd = {t: round(float(v), 8) for t, v in mix.items()}
        k = next(iter(mixd))
        mixd[k] = round(mixd[k] + 1.0 - sum(mixd.values()), 10)
        chans[_snake(ch) if not str(ch).isdigit() else str(ch)] = {
            "volume": {"per_week": round(pf.per_week, 4)},
            "profile": {"hourly": [round(float(v), 5) for v in pf.rate]},
            "mix": mixd,
            "daily_cv": round(fit.daily_cv[ch][0], 4),
        }
    # paths: (group, responder) of each type
    resp_of = {t: first.loc[t, "responder"] for t in types}
    paths: dict[str, dict] = {}
    for t in types:
        r, g = resp_of[t], first.loc[t, "group"]
        pname = GROUP_PATH[g] if r == "police" else (_snake(r) if g == "police" else f"{GROUP_PATH[g]}_by_{_snake(r)}")
        paths.setdefault(pname, {"call_types": [], "pools": [_snake(r)]})["call_types"].append(t)

    # pools
    rate_per_min = {t: 0.0 for t in types}
    for ch in channels:
        g = used[used["channel"] == ch]
        share = g["stype"].value_counts(normalize=True)
        for t, s in share.items():
            rate_per_min[t] += fit.profiles[ch].per_week * s / (7 * 1440)
    travel_mean = fit.travel["*"].mean if "*" in fit.travel else 0.0
    turnout_mean = fit.turnout.mean if fit.turnout else 0.0
    roles, pools = {}, {}
    for r in sorted(set(resp_of.values())):
        role, sworn = ROLE_OF.get(r, (_snake(r), False))
        roles[role] = {"hourly_cost": 0.0, "sworn": sworn}
        default = fit.on_scene.get((r, "*"))
        osm = {"default": default.dist() if default else dict(PLACEHOLDER_ON_SCENE)}
        if default is None:
            assumptions.append(f"ASSUMPTION: on-scene time of '{r}' is a placeholder lognormal mean 45 min, "
                               "sd 30: the export has no usable on-scene times for it.")
        load = 0.0
        for t in types:
            if resp_of[t] != r:
                continue
            f = fit.on_scene.get((r, first.loc[t, "rtype"]))      # on-scene time by type, any priority
            if f is not None:
                osm[t] = f.dist()
            m = (f or default).mean if (f or default) else PLACEHOLDER_ON_SCENE["lognormal"]["mean"]
            load += rate_per_min[t] * (m + travel_mean + turnout_mean)
        pools[_snake(r)] = {"roles": [role], "teams": max(1, math.ceil(load / TARGET_UTILISATION)),
                            "on_scene_min": osm}
    travel = {"model": "none"}
    if fit.travel:
        znames = list(zones)
        allz = fit.travel.get("*")
        per = {z: (fit.travel[z].mean if z in fit.travel else allz.mean) for z in znames}
        # pooled within-zone spread of log travel -> lognormal noise CV
        logs = [np.log(f.sample) for z, f in fit.travel.items() if z != "*"] or [np.log(allz.sample)]
        ss = sum(float(((v - v.mean()) ** 2).sum()) for v in logs)
        dof = sum(len(v) - 1 for v in logs)
        cv = math.sqrt(math.expm1(ss / dof)) if dof > 0 else 0.0
        travel = {"model": "matrix", "matrix_min": {a: {b: round(per[b], 3) for b in znames} for a in znames},
                  "variation_cv": round(cv, 4)}
        assumptions.append("Travel: a matrix whose every row is the mean first-unit travel time to the call's "
                           "zone (the export has no unit positions), with lognormal noise of the pooled CV.")
    if fit.turnout is not None:
        travel["turnout_min"] = fit.turnout.dist()
    triage = {"paths": paths}
    if fit.processing is not None:
        triage["processing_min"] = fit.processing.dist()
    src = Path(ct.file)
    return {
        "name": name or f"{cmap.name}: {start:%Y-%m-%d} to {(end - pd.Timedelta(days=1)):%Y-%m-%d} (from data)",
        "description": (f"Calibrated by crisis-sim from {src.name}: {len(used)} calls used of "
                        f"{ct.rows_in_file} rows over {(end - start).days} days."),
        "assumptions": assumptions,
        "sources": [f"{src.name} (sha256 {_sha256(ct.file)[:16]}...)", f"column map: {cmap.name}"
                    + (f" ({cmap.source})" if cmap.source else ""),
                    f"crosswalk: {Path(cw.where).name}" if cw else "crosswalk: none (raw types)"],
        "seed": 1,
        "horizon_days": horizon_days,
        "warmup_days": warmup_days,
        "roles": roles,
        "call_types": call_types,
        "zones": zones,
        "travel": travel,
        "channels": chans,
        "triage": triage,
        "pools": pools,
    }
