"""Invariants on random small scenarios (hypothesis).

Whatever the scenario: every call ends in exactly one recorded outcome and its timestamps
are ordered; no team serves two calls at once or starts one off shift; busy time never
exceeds on-duty time plus overtime; calls are conserved.
"""
import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from sim.callpath import OUTCOME_NAMES
from sim.model import Model
from sim.scenario import validate

TYPES = ["mental_health", "welfare", "violent"]


def shift_list(draw):
    n = draw(st.integers(1, 3))
    out = []
    for _ in range(n):
        start = draw(st.integers(0, 23))
        length = draw(st.integers(1, 24))
        out.append({"days": draw(st.sampled_from(["daily", "weekdays", "weekends", ["mon", "fri"]])),
                    "start": f"{start:02d}:00", "end": f"{(start + length) % 24 if length < 24 else 24:02d}:00"
                    if (start + length) % 24 != start else "24:00",
                    "teams": draw(st.integers(1, 3))})
    return out


@st.composite
def scenarios(draw):
    geo = draw(st.booleans())
    alt_shifts = shift_list(draw)
    for e in alt_shifts:
        if e["end"] == f"{int(e['start'][:2]):02d}:00":
            e["end"] = "24:00" if e["start"] == "00:00" else e["end"]
    alt = {"roles": ["crisis_worker"], "takes": ["mental_health", "welfare"], "shifts": alt_shifts,
           "on_scene_min": {"default": draw(st.sampled_from([{"exponential": {"mean": 40}}, 25,
                                                             {"lognormal": {"mean": 50, "sd": 30}}]))},
           "outcomes": {"default": {"resolved": 0.9, "backup": 0.05, "transport": 0.03, "follow_up": 0.02}},
           "after_call": draw(st.sampled_from(["stay", "return_to_base"])),
           "transport": {"destinations": {"obs": 0.7, "ed": 0.3}, "consent": draw(st.sampled_from([1.0, 0.7]))},
           "follow_ups": {"delay_min": {"exponential": {"mean": 120}}, "expires_after_min": 600,
                          "on_scene_min": 20}}
    if draw(st.booleans()):
        alt["vehicles"] = "vans"
    police = {"roles": ["officer"], "teams": draw(st.integers(1, 4)),
              "on_scene_min": {"default": {"exponential": {"mean": 35}}}}
    wait = draw(st.sampled_from([0, 10, 30]))
    data = {
        "name": "random", "horizon_days": 2, "warmup_days": 0, "drain_days": 1,
        "roles": {"crisis_worker": {"hourly_cost": 40}, "officer": {"hourly_cost": 70, "sworn": True},
                  "nurse": {"hourly_cost": 50}},
        "call_types": {"mental_health": {"priority": 2}, "welfare": {"priority": 3}, "violent": {"priority": 1}},
        "channels": {"911": {"volume": {"per_day": draw(st.integers(5, 80))},
                             "mix": {"mental_health": 0.4, "welfare": 0.4, "violent": 0.2}}},
        "triage": {"processing_min": draw(st.sampled_from([0, 2, {"exponential": {"mean": 1.5}}])),
                   "paths": {
                       "behavioral": {"call_types": ["mental_health", "welfare"], "pools": ["alt", "police"],
                                      "max_wait_min": wait,
                                      "misroute": {"to": "police_only", "probability": draw(st.sampled_from([0, 0.1]))}},
                       "police_only": {"call_types": ["violent"], "pools": ["police"],
                                       "misroute": {"to": "behavioral", "probability": draw(st.sampled_from([0, 0.2]))}}}},
        "pools": {"alt": alt, "police": police},
        "vehicles": {"vans": draw(st.integers(1, 2))},
        "facilities": {
            "obs": {"beds": draw(st.integers(1, 3)), "length_of_stay_min": {"exponential": {"mean": 600}},
                    "when_full": draw(st.sampled_from(["divert", "wait"])), "divert_to": "ed",
                    "handover_min": 10, "step_down": {"to": "short", "probability": 0.5}},
            "short": {"beds": 2, "when_full": "wait", "length_of_stay_min": {"exponential": {"mean": 3000}, "max": 4000}},
            "ed": {"handover_min": {"exponential": {"mean": 30}}}},
        "backup": {"pool": "police"},
    }
    if geo:
        data["zones"] = {"a": {"share": 0.5, "rect_km": [0, 0, 3, 3]}, "b": {"share": 0.5, "rect_km": [3, 0, 8, 3]}}
        data["travel"] = {"model": draw(st.sampled_from(["manhattan", "euclidean"])), "speed_kmh": 30,
                          "turnout_min": 1, "variation_cv": 0.3}
        alt["base_zone"] = "a"
        police["base_zone"] = "b"
    if draw(st.booleans()):   # LAPD-style consult on the police-only path
        data["triage"]["desks"] = {"meu": {"staff": 1, "service_min": 5, "roles": ["nurse"]}}
        data["pools"]["smart"] = {"roles": ["officer", "nurse"], "teams": 1,
                                  "on_scene_min": {"default": 45}}
        data["triage"]["paths"]["police_only"]["consult"] = {
            "desk": "meu", "second_pool": "smart", "p_second": 0.5, "max_wait_min": 20,
            "first_unit": draw(st.sampled_from(["waits", "hands_over"]))}
    return validate(data, "random.yaml")


def _intervals_disjoint(starts, ends) -> bool:
    order = np.argsort(starts, kind="stable")
    s, e = np.asarray(starts)[order], np.asarray(ends)[order]
    return bool(np.all(s[1:] >= e[:-1] - 1e-9))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.integers(0, 2**31 - 1))
def test_invariants(s, seed):
    res = Model(s, seed=seed).run()
    c, pools = res.calls, res.pools

    # calls conserved: one row per generated call, ids 0..n-1
    assert c["call_id"].tolist() == list(range(len(c)))
    # exactly one outcome each, from the known set; only the drain cap leaves calls unfinished
    assert c["outcome"].notna().all() and set(c["outcome"].astype(str)) <= set(OUTCOME_NAMES)
    if res.info["end_min"] < s.end_min + s.drain_days * 1440:
        assert not (c["outcome"] == "unfinished").any()
    done = c[c["outcome"].isin(["resolved", "backup", "transport", "follow_up"])]
    for a, b in [("t_received", "t_triaged"), ("t_triaged", "t_dispatched"),
                 ("t_dispatched", "t_on_scene"), ("t_on_scene", "t_cleared")]:
        assert (done[b] >= done[a] - 1e-9).all(), (a, b)
    # a served call has a pool and a team; diversion means no police on scene
    assert done["pool"].notna().all() and (done["team"] >= 0).all()
    assert not (done["diverted"] & done["police_on_scene"]).any()
    assert not (c["diverted"] & c["police_pool"]).any()
    # police time: none on a diverted call, all of it on a police-answered one
    assert (c["police_minutes"] >= 0).all() and (c.loc[c["diverted"], "police_minutes"] == 0).all()
    pol = done[done["police_pool"]]
    assert (pol["police_minutes"] >= (pol["t_team_free"] - pol["t_dispatched"]) - 1e-9).all()

    # no team serves two calls at once (primary, backup and second units alike)
    spans = [c[["pool", "team", "t_dispatched", "t_team_free"]].rename(columns={"t_dispatched": "start", "t_team_free": "end"})]
    for _, g in spans[0].dropna().groupby(["pool", "team"], observed=True):
        assert _intervals_disjoint(g["start"], g["end"])

    # never started off shift: team k is on duty when the schedule has more than k teams
    for pname, g in c.dropna(subset=["t_dispatched"]).groupby("pool", observed=True):
        sched = s.pools[pname].schedule()
        for t, k in zip(g["t_dispatched"], g["team"]):
            assert sched.count_at(t) > k or sched.count_at(t - 1e-6) > k, (pname, t, k)

    # busy <= on duty (+ overtime past shift end) per pool
    for row in pools.itertuples():
        assert row.busy_on_duty_min <= row.on_duty_min + 1e-6          # utilisation <= 1
        assert row.busy_on_duty_min <= row.busy_min + 1e-6
        assert row.busy_min <= row.on_duty_min + row.overtime_min + 1e-6 + _open_tail(c, row.pool, s)
    # beds: occupancy never exceeds beds; every transport hands over before the team is free
    for fac, g in res.occupancy.groupby("facility"):
        beds = s.facilities[fac].beds
        assert (g["occupied"] >= 0).all()
        if beds is not None:
            assert (g["occupied"] <= beds).all(), fac
    tr = c[c["destination"].notna()]
    assert (tr["t_handover"] >= tr["t_cleared"] - 1e-9).all()
    assert (tr["t_team_free"] >= tr["t_handover"] - 1e-9).all()
    assert not (c["consent_refused"] & c["destination"].notna()).any()
    assert (c.loc[c["consent_refused"], "outcome"] == "resolved").all()   # declined: ends on scene
    assert set(c.loc[c["followup"] != "none", "outcome"].astype(str)) <= {"follow_up"}
    # every measured served call is counted by exactly one pool
    assert pools.loc[~pools["pool"].str.startswith("desk:"), "calls_served"].sum() == int(
        c.loc[~c["warmup"], "pool"].notna().sum())


def _open_tail(c, pool, s):
    """Busy minutes of calls still running (team not back) when the measured window closed,
    whose overtime is not yet booked: bounded by their time in the window."""
    g = c[(c["pool"] == pool) & (c["t_team_free"].isna() | (c["t_team_free"] > s.end_min))]
    return float((s.end_min - g["t_dispatched"].clip(upper=s.end_min)).fillna(0).sum())
