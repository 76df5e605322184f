"""Invariants every run must satisfy, replayed from its call log and its assignments log.

``check_invariants(res, scenario)`` is used on random scenarios (tests/test_invariants.py),
on every shipped scenario, and by the fuzzer. Each check names the rule it replays.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from sim.callpath import OUTCOME_NAMES
from sim.shifts import on_duty_intervals

EPS = 1e-6
DISPATCHED = {"respond", "callback", "second_unit", "backup", "follow_up", "outreach", "desk"}


def unit_duty(res, s) -> dict[int, list[tuple[float, float]]]:
    """Each unit's on-duty intervals over the run, from its crew's weekly hours."""
    end = float(res.info["end_min"]) + 1.0
    crews = {}
    for name, p in s.pools.items():
        crews[name] = p.crews()
    for name, d in s.triage.desks.items():
        crews[f"desk:{name}"] = d.crews()
    out, seen = {}, {}
    for row in res.units.itertuples():
        k = seen.get(row.pool, 0)
        seen[row.pool] = k + 1
        crew = crews[row.pool][k]
        assert crew.name == row.crew, (row.pool, crew.name, row.crew)
        out[row.unit] = on_duty_intervals(crew, 0.0, end)
    return out


def _inside(t: float, intervals) -> bool:
    return any(a - EPS <= t < b + EPS for a, b in intervals)


def _off_duty_part(a: float, b: float, intervals) -> float:
    on = sum(max(0.0, min(b, y) - max(a, x)) for x, y in intervals)
    return (b - a) - on


def check_invariants(res, s) -> None:
    c, w, pools = res.calls, res.assignments, res.pools
    capped = res.info["end_min"] >= s.end_min + s.drain_days * 1440 - EPS

    # calls conserved: one row per generated call, ids 0..n-1, each with one known outcome
    assert c["call_id"].tolist() == list(range(len(c)))
    assert c["outcome"].notna().all() and set(c["outcome"].astype(str)) <= set(OUTCOME_NAMES)
    if not capped:
        assert not c["unfinished"].any(), "a call was left open although the run ended by itself"
    assert (c["unfinished"] == (c["outcome"] == "unfinished")).all()
    done = c[c["outcome"].isin(["resolved", "backup", "transport", "follow_up"])]
    # (a first unit that hands over to a desk-sent second unit is free before the call clears)
    alone = done["second_unit"] < 0
    for a, b in [("t_received", "t_triaged"), ("t_triaged", "t_dispatched"),
                 ("t_dispatched", "t_on_scene"), ("t_on_scene", "t_cleared"), ("t_cleared", "t_team_free")]:
        ok = done[a].isna() | done[b].isna() | (done[b] >= done[a] - EPS) | (~alone if b == "t_team_free" else False)
        assert ok.all(), (a, b)
    # a served call has a pool and a unit, and is either on scene or called back, never both
    assert done["pool"].notna().all() and (done["unit"] >= 0).all()
    assert (done["t_on_scene"].notna() ^ done["t_callback"].notna()).all()
    assert (c.loc[c["responder"] == "remote", "response_time"].isna()).all(), "a callback counted as on scene"
    assert not (done["diverted"] & done["police_on_scene"]).any()
    assert not (c["diverted"] & c["police_pool"]).any()
    # fallback reasons: only calls not answered by their first tier have one
    answered_first = c["tier"] == 0
    assert (c.loc[answered_first, "fallback_reason"] == "none").all()
    assert (c.loc[c["tier"] > 0, "fallback_reason"] != "none").all()

    # the record of work: the answering, backup and second units of every call have spans
    first = w[w["task"].isin(["respond", "callback"])]
    got = dict(zip(first["call_id"], first["unit"]))
    served = c[c["unit"] >= 0]
    reactive = served[~served["proactive"]]
    assert all(got.get(i) == u for i, u in zip(reactive["call_id"], reactive["unit"])), "answering unit not booked"
    for task, col in (("backup", "backup_unit"), ("second_unit", "second_unit")):
        rows = w[w["task"] == task]
        booked = dict(zip(rows["call_id"], rows["unit"]))
        had = c[c[col] >= 0]
        assert all(booked.get(i) == u for i, u in zip(had["call_id"], had[col])), f"{task} not booked"
    out = w[w["task"] == "outreach"]
    assert len(out) == int(c["proactive"].sum()) and (out["call_id"] >= 0).all()

    # no unit works two spans at once; a unit starts a task only while on duty; every
    # minute of a span outside the crew's hours is booked as that span's overtime
    duty = unit_duty(res, s)
    for unit, g in w.groupby("unit"):
        g = g.sort_values(["t_assigned", "t_released"], kind="stable")
        a, r = g["t_assigned"].to_numpy(float), g["t_released"].to_numpy(float)
        assert (r >= a - EPS).all()
        assert np.all(a[1:] >= r[:-1] - EPS), f"unit {unit} works two tasks at once"
        iv = duty[unit]
        for task, t0, t1, ot, at_end in zip(g["task"], a, r, g["overtime"], g["open_at_end"]):
            if task in DISPATCHED:
                assert _inside(t0, iv), f"unit {unit} started {task} at {t0} off duty"
            if not at_end:
                assert abs(_off_duty_part(t0, t1, iv) - ot) < 1e-4, (unit, task, t0, t1, ot)

    # the audit is the assignments log, summed: busy = sum of spans, busy <= on duty + overtime
    t0, t1 = s.warmup_min, s.end_min
    for row in pools.itertuples():
        g = w[w["pool"].astype(str) == row.pool]
        busy = float((g["t_released"].clip(t0, t1) - g["t_assigned"].clip(t0, t1)).sum())
        assert abs(row.busy_min - busy) < 1e-6 * max(1.0, busy), row.pool
        assert row.busy_min <= row.on_duty_min + row.overtime_min + 1e-6, row.pool
        assert row.busy_on_duty_min <= row.on_duty_min + 1e-6, row.pool           # utilisation <= 1
        measured = set(c.loc[~c["warmup"], "call_id"])
        serving = g[g["task"].isin(["respond", "callback", "second_unit", "backup", "desk"])]
        assert row.calls_served == len(set(serving["call_id"]) & measured), row.pool
    # police minutes: the sworn units' spans on the call, assigned -> back in service
    sw = w[w["sworn"] & (w["call_id"] >= 0)]
    per_call = (sw["t_released"] - sw["t_assigned"]).groupby(sw["call_id"]).sum()
    pm = pd.Series(0.0, index=c["call_id"])
    pm.loc[per_call.index] = per_call.to_numpy()
    np.testing.assert_allclose(c["police_minutes"].to_numpy(), pm.to_numpy(), atol=1e-6)
    assert (c.loc[c["diverted"] & ~c["backup"], "police_minutes"] == 0).all()

    # beds: occupancy never exceeds beds; every transport hands over before the unit is free
    for fac, g in res.occupancy.groupby("facility"):
        beds = s.facilities[fac].beds
        assert (g["occupied"] >= 0).all()
        if beds is not None:
            assert (g["occupied"] <= beds).all(), fac
    tr = c[c["destination"].notna()]
    assert (tr["t_handover"] >= tr["t_cleared"] - EPS).all()
    by_first = tr["second_unit"] < 0       # else the second unit drove the person
    assert ((tr["t_team_free"] >= tr["t_handover"] - EPS) | tr["t_team_free"].isna() | ~by_first).all()
    by_second = tr[~by_first]
    assert ((by_second["t_second_free"] >= by_second["t_handover"] - EPS) | by_second["t_second_free"].isna()).all()
    assert not (c["consent_refused"] & c["destination"].notna()).any()
    assert (c.loc[c["consent_refused"], "outcome"] == "resolved").all()   # declined: ends on scene
    assert set(c.loc[c["followup"] != "none", "outcome"].astype(str)) <= {"follow_up"}
