"""Crews that change shift (issue 10): each shift entry is its own crew with its own hours.

Every test replays one rule on every row of the assignments log, with each unit's on-duty
intervals recomputed from the scenario's shift entries (not read from the engine):

* new work starts only while the unit's crew is on duty;
* a row's overtime is exactly the part of it outside the crew's on-duty hours (a crew whose
  shift ends mid-call finishes the call and books the rest to itself);
* so busy <= on duty + overtime, per unit and per pool (the resource audit too).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from replay import ROLES, busy_in_window, crew_of_units, duty_intervals, overlap, pool, runs, scenario

DAY = 1440.0


def _scenario(shifts, per_hour: float = 1.0, days: float = 14, mean: float = 90.0, wait: float = 20):
    return scenario({
        "name": "crews", "horizon_days": days, "roles": ROLES, "call_types": {"crisis": {"priority": 2}},
        "channels": {"911": {"volume": {"per_hour": per_hour}, "mix": {"crisis": 1.0}}},
        "triage": {"paths": {"all": {"call_types": ["crisis"],
                                     "tiers": [{"pools": ["team"], "max_wait_min": wait}, {"pools": ["police"]}]}}},
        "pools": {"team": pool(None, mean, shifts=shifts),
                  "police": {"roles": ["officer"], "teams": 30, "on_scene_min": {"default": 45}}}})


def _replay(s, res) -> pd.DataFrame:
    """Check the crew rules on every row of the team's assignments; return those rows with
    the crew name and the overtime the rule gives."""
    units = res.units[res.units["pool"].astype(str) == "team"]
    end = float(res.info["end_min"]) + 1.0
    duty = duty_intervals(s, units, 0.0, end)
    crew = {u: c.name for u, c in crew_of_units(s, units).items()}
    a = res.assignments[res.assignments["unit"].isin(list(duty))].copy()
    assert len(a) > 0
    a["crew_name"] = a["unit"].map(crew)
    expected = []
    for r in a.itertuples():
        iv = duty[int(r.unit)]
        assert any(lo <= r.t_assigned < hi for lo, hi in iv), (
            f"{crew[int(r.unit)]} started work at {r.t_assigned:.1f} (minute of day "
            f"{r.t_assigned % DAY:.0f}) while off duty")
        expected.append((r.t_released - r.t_assigned) - overlap(iv, r.t_assigned, r.t_released))
    a["overtime_rule"] = expected
    np.testing.assert_allclose(a["overtime"], a["overtime_rule"], atol=1e-6,
                               err_msg="overtime is not the time worked outside the crew's hours")
    # busy <= on duty + overtime, per unit over the whole run and per pool in the audit
    busy = busy_in_window(a, 0.0, end)
    for u, iv in duty.items():
        on = overlap(iv, 0.0, end)
        ot = a.loc[a["unit"] == u, "overtime"].sum()
        assert busy.get(u, 0.0) <= on + ot + 1e-6, f"unit {u}: busy {busy.get(u, 0.0):.1f} > {on:.1f} + {ot:.1f}"
    for p in res.pools.itertuples():
        assert p.busy_min <= p.on_duty_min + p.overtime_min + 1e-6, p
    # the team's audit over the measured window, recomputed from the rows and the crews' hours
    t0, t1 = s.warmup_min, s.end_min
    audit = res.pools.set_index("pool").loc["team"]
    inside = [(max(r.t_assigned, t0), min(r.t_released, t1), duty[int(r.unit)]) for r in a.itertuples()]
    busy_w = sum(max(0.0, hi - lo) for lo, hi, _ in inside)
    off_w = sum(max(0.0, hi - lo) - overlap(iv, lo, hi) for lo, hi, iv in inside if hi > lo)
    assert audit["on_duty_min"] == pytest.approx(sum(overlap(iv, t0, t1) for iv in duty.values()), abs=1e-6)
    assert audit["busy_min"] == pytest.approx(busy_w, abs=1e-6)
    assert audit["overtime_min"] == pytest.approx(off_w, abs=1e-6)
    return a


def test_back_to_back_shifts_are_two_crews():
    """08-16 x 1 plus 16-24 x 1: a call running past 16:00 books its overtime to the day crew
    while the night crew takes new calls from 16:00."""
    s = _scenario([{"days": "daily", "start": "08:00", "end": "16:00", "teams": 1, "name": "day"},
                   {"days": "daily", "start": "16:00", "end": "24:00", "teams": 1, "name": "night"}])
    res = runs(s, seed=3, replications=1)[0]
    a = _replay(s, res)
    day, night = a[a["crew_name"] == "day"], a[a["crew_name"] == "night"]
    assert len(day) > 30 and len(night) > 30
    assert ((day["t_assigned"] % DAY >= 480) & (day["t_assigned"] % DAY < 960)).all()
    assert ((night["t_assigned"] % DAY >= 960) & (night["t_assigned"] % DAY < DAY)).all()
    late = day[day["overtime"] > 0]
    assert len(late) >= 5, "no day-crew call ran past 16:00"
    shift_end = (late["t_assigned"] // DAY) * DAY + 960
    np.testing.assert_allclose(late["overtime"], late["t_released"] - shift_end, atol=1e-6)
    # while a day crew finishes past 16:00, the night crew is already taking calls
    took_over = 0
    for r in late.itertuples():
        end16 = (r.t_assigned // DAY) * DAY + 960
        took_over += int(((night["t_assigned"] >= end16) & (night["t_assigned"] < r.t_released)).any())
    assert took_over >= 1, "the night crew never took a call while the day crew worked past 16:00"
    assert res.pools.set_index("pool").loc["team", "overtime_min"] > 0
    # fallback to police: "unstaffed" when no crew is on shift for the whole 20-minute wait
    # (00:00-07:35), "busy" when one is on shift (08:00-23:40) but none is free in time
    c = res.calls
    minute = c["t_received"] % DAY
    police = c["pool"].astype(str) == "police"
    night, staffed = minute < 455, (minute >= 480) & (minute < 1420)     # (edge: see the test below)
    assert police[night].all() and (c.loc[night, "fallback_reason"].astype(str) == "unstaffed").all()
    assert (police & staffed).sum() >= 3
    assert (c.loc[police & staffed, "fallback_reason"].astype(str) == "busy").all()
    assert (c.loc[~police, "fallback_reason"].astype(str) == "none").all()


def test_overlapping_shifts_send_home_the_crew_whose_shift_ended():
    """06-14 x 1 and 10-18 x 1: at 14:00 the early crew leaves and the late crew stays."""
    s = _scenario([{"days": "daily", "start": "06:00", "end": "14:00", "teams": 1, "name": "early"},
                   {"days": "daily", "start": "10:00", "end": "18:00", "teams": 1, "name": "late"}])
    a = _replay(s, runs(s, seed=4, replications=1)[0])
    minute = a["t_assigned"] % DAY
    early, late = a["crew_name"] == "early", a["crew_name"] == "late"
    assert ((minute[early] >= 360) & (minute[early] < 840)).all()
    assert ((minute[late] >= 600) & (minute[late] < 1080)).all()
    assert (late & (minute >= 840)).sum() > 5, "the late crew took no calls after 14:00"
    assert (early & (minute < 600)).sum() > 5, "the early crew took no calls before 10:00"
    released = a["t_released"] - (a["t_assigned"] // DAY) * DAY          # minutes after that midnight
    crossing_14 = (minute < 840) & (released > 840)
    stays = crossing_14 & late & (released <= 1080)                       # late crew, done by 18:00
    assert stays.sum() >= 3 and (a.loc[stays, "overtime"] == 0).all()
    assert (crossing_14 & early).sum() >= 3
    np.testing.assert_allclose(a.loc[crossing_14 & early, "overtime"], released[crossing_14 & early] - 840, atol=1e-6)


def test_by_hour_curve_books_overtime_only_where_it_drops():
    """Curve 1 (00-08), 2 (08-12), 3 (12-24): rises at 08:00 and 12:00 end no shift; only the
    drop at midnight does (the stacked bands 2 and 3 leave)."""
    s = _scenario([{"days": "daily", "by_hour": [1] * 8 + [2] * 4 + [3] * 12}], per_hour=1.5, mean=120)
    a = _replay(s, runs(s, seed=5, replications=1)[0])
    day0 = (a["t_assigned"] // DAY) * DAY
    crosses = lambda m: (a["t_assigned"] < day0 + m) & (a["t_released"] > day0 + m)   # noqa: E731
    rises = crosses(480) | crosses(720)
    assert rises.sum() >= 5 and (a.loc[rises & ~crosses(DAY), "overtime"] == 0).all()
    ot = a[a["overtime"] > 0]
    assert len(ot) >= 3
    assert (ot["t_released"] > day0[ot.index] + DAY).all(), "overtime booked at a rise of the curve"


def test_by_hour_curve_with_no_drop_books_no_overtime():
    """A flat curve written hour by hour in two entries (weekdays and weekends) never ends a shift."""
    s = _scenario([{"days": "weekdays", "by_hour": [2] * 24}, {"days": "weekends", "by_hour": [2] * 24}],
                  per_hour=1.2, mean=120)
    res = runs(s, seed=6, replications=1)[0]
    a = _replay(s, res)
    assert len(a) > 100
    assert (a["overtime"] == 0).all()
    assert res.pools.set_index("pool").loc["team", "overtime_min"] == 0


def test_call_whose_wait_ends_before_the_shift_starts_goes_on_at_once():
    """Day crew from 08:00, wait 20 min: a call at 07:38-07:40 cannot be reached by the crew
    within its wait, so it goes to police at once, and no crew was on shift: 'unstaffed'."""
    s = _scenario([{"days": "daily", "start": "08:00", "end": "16:00", "teams": 1, "name": "day"}],
                  per_hour=6.0, days=20, mean=5.0)
    c = runs(s, seed=7, replications=1)[0].calls
    minute = c["t_received"] % DAY
    edge = c[(minute >= 458) & (minute < 460)]
    assert len(edge) >= 3
    assert (edge["t_dispatched"] - edge["t_triaged"]).abs().max() < 1e-9
    assert (edge["fallback_reason"].astype(str) == "unstaffed").all()


def test_shift_end_cutoff_takes_no_routine_call_in_the_last_half_hour():
    """shift_end_cutoff {minutes: 30, except_priority: 1}: from 15:30 the day crew takes only
    priority-1 calls; routine calls then go to police (or wait for a crew free of the cut-off)."""
    data = {
        "name": "cutoff", "horizon_days": 30, "roles": ROLES,
        "call_types": {"urgent": {"priority": 1}, "routine": {"priority": 3}},
        "channels": {"911": {"volume": {"per_hour": 1.5}, "mix": {"urgent": 0.3, "routine": 0.7}}},
        "triage": {"paths": {"all": {"call_types": ["urgent", "routine"],
                                     "tiers": [{"pools": ["team"], "max_wait_min": 10}, {"pools": ["police"]}]}}},
        "pools": {"team": pool(None, 40.0, shifts=[{"days": "daily", "start": "08:00", "end": "16:00", "teams": 2}],
                               shift_end_cutoff={"minutes": 30, "except_priority": 1}),
                  "police": {"roles": ["officer"], "teams": 30, "on_scene_min": {"default": 45}}}}
    s = scenario(data)
    res = runs(s, seed=10, replications=1)[0]
    a = _replay(s, res)
    minute = a["t_assigned"] % DAY
    last_half_hour = (minute >= 930) & (minute < 960)
    assert (a.loc[last_half_hour, "priority"] == 1).all(), "a routine call was taken in the cut-off"
    assert (last_half_hour & (a["priority"] == 1)).sum() >= 3
    assert ((minute >= 900) & (minute < 930) & (a["priority"] == 3)).sum() >= 3
