"""Invariants on random small scenarios (hypothesis) and on every shipped scenario.

The generator builds what the rules must survive: crews on shifted, back-to-back and
overlapping hours in every pool (answering, backup, desk-sent second unit, follow-up),
a tier of two pools, posts, shared vans, pre-emption and a shift-end cut-off. The checks
(tests/invariants.py) replay each rule from the call log and the assignments log, including
that every first response went to a closest unit that was free (``closest_violations``).
"""
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from invariants import check_invariants, closest_violations
from sim.model import Model
from sim.scenario import load_raw, load_scenario, validate

ROOT = Path(__file__).resolve().parents[1]


def shift_list(draw, max_teams=2):
    out = []
    for k in range(draw(st.integers(1, 3))):
        start = draw(st.integers(0, 23))
        length = draw(st.integers(1, 24))
        end = (start + length) % 24
        out.append({"days": draw(st.sampled_from(["daily", "weekdays", "weekends", ["mon", "fri"]])),
                    "start": f"{start:02d}:00", "end": "24:00" if end == start or end == 0 else f"{end:02d}:00",
                    "teams": draw(st.integers(1, max_teams)), "name": f"s{k}"})
        if out[-1]["start"] == "00:00" and out[-1]["end"] == "24:00":
            out[-1]["end"] = "23:00"
    if draw(st.booleans()):   # back-to-back crews: the day crew hands over to the night crew
        out += [{"days": "daily", "start": "08:00", "end": "16:00", "teams": 1, "name": "day"},
                {"days": "daily", "start": "16:00", "end": "24:00", "teams": 1, "name": "night"}]
    return out


@st.composite
def scenarios(draw):
    geo = draw(st.booleans())
    alt = {"roles": ["crisis_worker"], "takes": ["mental_health", "welfare"], "shifts": shift_list(draw),
           "on_scene_min": {"default": draw(st.sampled_from([{"exponential": {"mean": 40}}, 25,
                                                             {"lognormal": {"mean": 50, "sd": 30}}]))},
           "outcomes": {"default": {"resolved": 0.85, "backup": 0.05, "transport": 0.05, "follow_up": 0.05}},
           "after_call": draw(st.sampled_from(["stay", "return_to_base"])),
           "transport": {"destinations": {"obs": 0.7, "ed": 0.3}, "consent": draw(st.sampled_from([1.0, 0.7]))},
           "follow_ups": {"delay_min": {"exponential": {"mean": 120}}, "expires_after_min": 600,
                          "on_scene_min": 20, "by": draw(st.sampled_from([None, "peer"]))}}
    if draw(st.booleans()):
        alt["vehicles"] = "vans"
    if draw(st.booleans()):
        alt["shift_end_cutoff"] = {"minutes": 30, "except_priority": 2}
    peer = {"roles": ["peer"], "takes": ["mental_health", "welfare"],
            "shifts": shift_list(draw, max_teams=1), "on_scene_min": {"default": 30},
            "preemption": {"priority": 2}} if True else None
    police = {"roles": ["officer"], "on_scene_min": {"default": {"exponential": {"mean": 35}}}}
    if draw(st.booleans()):
        police["teams"] = draw(st.integers(1, 4))
    else:   # crews: shifted and overlapping police hours (backups come from these crews too)
        police["shifts"] = [{"days": "daily", "start": "06:00", "end": "18:00", "teams": draw(st.integers(1, 2))},
                            {"days": "daily", "start": "14:00", "end": "06:00", "teams": draw(st.integers(1, 2))}]
    wait = draw(st.sampled_from([0, 10, 30]))
    tier_form = draw(st.booleans())
    behavioral = {"call_types": ["mental_health", "welfare"],
                  "misroute": {"to": "police_only", "probability": draw(st.sampled_from([0, 0.1]))}}
    if tier_form:
        behavioral["tiers"] = [{"pools": ["alt", "peer"], "max_wait_min": wait}, {"pools": ["police"]}]
    else:
        behavioral.update(pools=["alt", "police"], max_wait_min=wait)
    data = {
        "name": "random", "horizon_days": 2, "warmup_days": 0, "drain_days": 1,
        "roles": {"crisis_worker": {"hourly_cost": 40}, "officer": {"hourly_cost": 70, "sworn": True},
                  "nurse": {"hourly_cost": 50}, "peer": {"hourly_cost": 30}},
        "call_types": {"mental_health": {"priority": 2}, "welfare": {"priority": 3}, "violent": {"priority": 1}},
        "channels": {"911": {"volume": {"per_day": draw(st.integers(5, 80))},
                             "mix": {"mental_health": 0.4, "welfare": 0.4, "violent": 0.2}}},
        "triage": {"processing_min": draw(st.sampled_from([0, 2, {"exponential": {"mean": 1.5}}])),
                   "paths": {
                       "behavioral": behavioral,
                       "police_only": {"call_types": ["violent"], "pools": ["police"],
                                       "misroute": {"to": "behavioral", "probability": draw(st.sampled_from([0, 0.2]))}}}},
        "pools": {"alt": alt, "police": police, "peer": peer},
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
        if "shifts" in police:
            police["shifts"][0]["post"] = [7.5, 2.5]
    if draw(st.booleans()):   # LAPD-style consult on the police-only path, second unit on shifts
        data["triage"]["desks"] = {"meu": {"shifts": [{"days": "daily", "start": "00:00", "end": "20:00",
                                                       "teams": 1}], "service_min": 5, "roles": ["nurse"]}}
        data["pools"]["smart"] = {"roles": ["officer", "nurse"], "shifts": shift_list(draw, max_teams=1),
                                  "on_scene_min": {"default": 45}, "outcomes": {"default": {
                                      "resolved": 0.7, "transport": 0.3}},
                                  "transport": {"destinations": {"ed": 1.0}}}
        data["triage"]["paths"]["police_only"]["consult"] = {
            "desk": "meu", "second_pool": "smart", "p_second": 0.5, "max_wait_min": 20,
            "first_unit": draw(st.sampled_from(["waits", "hands_over"]))}
    return validate(data, "random.yaml")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True)
@given(scenarios(), st.integers(0, 2**31 - 1))
def test_invariants_on_random_scenarios(s, seed):
    res = Model(s, seed=seed).run()
    check_invariants(res, s)
    assert not closest_violations(res, s)[:3]     # every first response went to a closest free unit


def _is_program(path) -> bool:
    data, _ = load_raw(path)
    return isinstance(data, dict) and data.get("kind") != "violence" and "channels" in data


SHIPPED = sorted(p for p in (ROOT / "scenarios").rglob("*.yaml") if _is_program(p))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT / "scenarios")))
def test_invariants_on_every_shipped_scenario(path):
    """Every shipped program scenario, on a short horizon, keeps every invariant."""
    days = 0.25 if "scale" in path.parts else 3     # synthetic big cities: hours hold thousands of calls
    s = load_scenario(path, {"horizon_days": days, "warmup_days": 1, "drain_days": 2})
    res = Model(s, seed=11).run()
    check_invariants(res, s)
    # every first response went to a closest free unit (the synthetic big cities: the first 1,000)
    assert not closest_violations(res, s, 1000 if "scale" in path.parts else None)[:3]
