"""Invariants every run must satisfy, replayed from its call log and its assignments log.

``check_invariants(res, scenario)`` is used on random scenarios (tests/test_invariants.py),
on every shipped scenario, and by the fuzzer. Each check names the rule it replays.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from replay import expected_drive
from sim.callpath import OUTCOME_NAMES
from sim.columns import nullify
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


def _null_typed(t) -> bool:
    return pa.types.is_null(t) or (pa.types.is_dictionary(t) and pa.types.is_null(t.value_type))


def check_stored_types(res) -> None:
    """Every table of a run is stored with a definite Arrow type per column, empty or not:
    none of Arrow's null type, which a reader combining several scenarios' files (pandas or
    pyarrow on the store's folder) would take as the column's type for all of them, dropping
    the other files' values."""
    for name in ("calls", "assignments", "pools", "hourly", "facilities", "occupancy"):
        schema = pa.Table.from_pandas(nullify(getattr(res, name)), preserve_index=False).schema
        assert not [f.name for f in schema if _null_typed(f.type)], name


def check_invariants(res, s) -> None:
    check_stored_types(res)
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
        # exactly, no tolerance: every time is a reading of the clock, the receipt included
        ok = done[a].isna() | done[b].isna() | (done[b] >= done[a]) | (~alone if b == "t_team_free" else False)
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


def closest_violations(res, s, max_dispatches: int | None = None) -> list[str]:
    """Replay of "closest by travel time" for every first response (``respond``/``callback``)
    of any scenario: no unit that was clearly available at the dispatch instant had a
    shorter expected drive to the call than the unit sent.

    A candidate is a unit of the tier that answered the call (the call's path, its ``tier``).
    It is *clearly* available when it was on duty, no span of it covered the instant or
    began or ended exactly then (several events at one instant have an order the log does not
    keep: such units are left out, never counted against the rule), its pool had a vehicle
    free even counting every unit dispatched at that instant, and, for a call less urgent
    than the pool's shift-end cut-off, its crew was not within the cut-off. Its position: its
    post at the start of its shift or if its pool returns to base, else where its last task
    left it. ``max_dispatches``: replay only the first that many (a city of thousands of
    units costs ~a millisecond per dispatch)."""
    w, units = res.assignments, res.units
    if not len(w):
        return []
    calls = res.calls
    c_path = calls["path"].astype(object).to_numpy()
    c_tier = calls["tier"].to_numpy()
    c_x, c_y = calls["x_km"].to_numpy(float), calls["y_km"].to_numpy(float)
    c_zone = calls["zone"].astype(object).to_numpy()
    duty = unit_duty(res, s)
    pool_of = dict(zip(units["unit"].astype(int), units["pool"].astype(str)))
    post = {int(r.unit): (r.post_x, r.post_y, str(r.post_zone)) for r in units.itertuples()}
    model = s.travel.model
    spans = {}
    for u, g in w.groupby("unit"):
        g = g.sort_values("t_released")
        spans[int(u)] = (g["t_assigned"].to_numpy(float), g["t_released"].to_numpy(float),
                         g["x_to"].to_numpy(float), g["y_to"].to_numpy(float), g["call_id"].to_numpy())
    units_of: dict[str, list[int]] = {}
    for u, p in pool_of.items():
        units_of.setdefault(p, []).append(u)
    vehicle_units = {v: [u for p, spec in s.pools.items() if spec.vehicles == v for u in units_of.get(p, [])]
                     for v in s.vehicles}

    def covering(u, t) -> int:
        sp = spans.get(u)
        if sp is None:
            return 0
        return int(((sp[0] <= t + EPS) & (sp[1] >= t - EPS)).sum())

    def position(u, t):
        lo = max((x for x, y in duty[u] if x <= t), default=0.0)
        sp = spans.get(u)
        j = -1 if sp is None else int(np.searchsorted(sp[1], t - EPS)) - 1     # last span released before t
        if j < 0 or s.pools[pool_of[u]].after_call == "return_to_base" or sp[1][j] < lo:
            return post[u]
        call = int(sp[4][j])
        zone = str(c_zone[call]) if 0 <= call < len(c_zone) else post[u][2]
        return (sp[2][j], sp[3][j], zone)

    out = []
    first = w[w["task"].astype(str).isin(["respond", "callback"])].sort_values("t_assigned", kind="stable")
    for row in first.head(max_dispatches if max_dispatches is not None else len(first)).itertuples():
        t, chosen, call = float(row.t_assigned), int(row.unit), int(row.call_id)
        to = (c_x[call], c_y[call], str(c_zone[call]))
        # the sent unit's expected drive from where the replay puts it, against the logged one
        # (a unit also released or pre-empted at this instant: from where the log says it was)
        if covering(chosen, t) == 1:
            frm = position(chosen, t)
            cost = expected_drive(s, frm, to)
            if abs(cost - row.travel_expected) > 1e-6:
                out.append(f"call {call} at {t:.3f}: unit {chosen} logged {row.travel_expected:.3f} min "
                           f"of expected drive, the replay gives {cost:.3f}")
        elif model == "matrix":
            cost = row.travel_expected
        else:
            cost = expected_drive(s, (row.x_from, row.y_from, None), to)
        for p in s.triage.paths[str(c_path[call])].tier_pools()[int(c_tier[call])]:
            spec = s.pools[p]
            cut = spec.shift_end_cutoff
            for u in units_of.get(p, []):
                if u == chosen or not any(x + EPS < t < y - EPS for x, y in duty[u]) or covering(u, t):
                    continue
                if cut is not None and row.priority > cut.except_priority and any(
                        x <= t < y and y - t <= cut.minutes + EPS for x, y in duty[u]):
                    continue
                if spec.vehicles is not None:
                    if sum(covering(v, t) for v in vehicle_units[spec.vehicles]) >= s.vehicles[spec.vehicles]:
                        continue
                frm = position(u, t)
                other = expected_drive(s, frm, to)
                if other < cost - 1e-9:
                    out.append(f"call {call} at {t:.3f}: unit {chosen} sent ({cost:.3f} min) while unit {u} "
                               f"of {p} was free {other:.3f} min away")
    return out
