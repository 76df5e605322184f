"""After the scene: beds (Little's law, Erlang B), exact transport times, door waits,
message callbacks held for the volunteers' shift, follow-ups."""
import numpy as np
import pytest

import sim
from sim.metrics import t_interval
from sim.model import Model
from analytic import erlang_b

REPS = 10


@pytest.fixture
def path(scenario_path):
    return scenario_path("tests/data/aftercare.yaml")


def test_littles_law_uncapped_facility(path):
    res = sim.run(sim.load_scenario(path), replications=REPS, seed=21, workers=1)
    # every call is transported: admissions per minute x mean stay (240) = mean occupancy
    occ = res.kpis.query("metric == 'occupancy_mean.crisis_center'")["value"].to_numpy()
    adm = res.kpis.query("metric == 'transports.crisis_center'")["value"].to_numpy()
    rate_per_min = adm / (60 * 1440)
    diff = occ - rate_per_min * 240          # Little's law, replication by replication
    m, lo, hi = t_interval(diff)
    assert lo <= 0 <= hi, (m, lo, hi)
    assert 3.5 < occ.mean() < 4.5            # 1/h x 4 h = 4 beds busy on average
    # the facility counts admissions made after the warm-up (admission = hand-over start)
    adm_fac = res.kpis.query("metric == 'admissions.crisis_center'")["value"].to_numpy()
    c = res.calls_all                     # warm-up calls too: one may be handed over after it
    admitted = c[(c["destination"] == "crisis_center") & (c["t_handover"] - 15 >= 5 * 1440)]
    np.testing.assert_array_equal(adm_fac, admitted.groupby("replication").size().to_numpy())


@pytest.mark.parametrize("beds", [3, 5])
def test_full_facility_refuses_at_erlang_b_rate(path, beds):
    s = sim.load_scenario(path, {"facilities.crisis_center.beds": beds})
    res = sim.run(s, replications=REPS, seed=33, workers=1)
    refusal = res.kpis.query("metric == 'refusal_rate.crisis_center'")["value"]
    m, lo, hi = t_interval(refusal)
    expected = erlang_b(beds, 1 / 60 * 240)  # offered load 4 erlangs
    assert lo <= expected <= hi, (beds, expected, lo, hi)
    peak = res.kpis.query("metric == 'occupancy_peak.crisis_center'")["value"]
    assert (peak <= beds).all()
    # the refused went on to the ED: every transport ends somewhere
    calls = res.calls[~res.calls["warmup"]]
    assert calls["destination"].notna().all()
    assert (calls.loc[calls["transport_diverted"], "destination"] == "ed").all()


def test_fixed_transport_back_in_service_exactly(scenario_path):
    s = sim.load_scenario(scenario_path("tests/data/aftercare.yaml"), {
        "zones": {"a": {"share": 1, "rect_km": [0, 0, 6, 6]}},
        "travel": {"model": "manhattan", "speed_kmh": 60},
        "pools.van.base_zone": "a", "pools.van.after_call": "return_to_base",
        "facilities.crisis_center.zone": "a", "horizon_days": 3, "warmup_days": 0})
    c = Model(s, seed=2).run().calls
    # base and facility both at the zone centre (3, 3); 60 km/h = 1 km per minute
    d = (c["x_km"] - 3).abs() + (c["y_km"] - 3).abs()
    np.testing.assert_allclose(c["t_on_scene"] - c["t_dispatched"], d, atol=1e-9)
    np.testing.assert_allclose(c["t_cleared"] - c["t_on_scene"], 30, atol=1e-9)
    # on-scene end + drive to the facility + hand-over 15 + return (facility is at base: 0)
    np.testing.assert_allclose(c["t_team_free"], c["t_cleared"] + d + 15 + 0, atol=1e-9)
    np.testing.assert_allclose(c["t_handover"], c["t_cleared"] + d + 15, atol=1e-9)


def test_wait_at_door_raises_other_calls_response_times(path):
    """Common random numbers: same calls; a full 2-bed center with wait-at-door ties up
    the teams and slows everyone else's response."""
    base = {"pools.van.teams": 3, "pools.van.outcomes.default": {"resolved": 0.6, "transport": 0.4},
            "channels.911.volume": {"per_hour": 2}, "horizon_days": 20}
    ample = sim.load_scenario(path, {**base, "facilities.crisis_center.beds": 50})
    tight = sim.load_scenario(path, {**base, "facilities.crisis_center.beds": 2,
                                     "facilities.crisis_center.when_full": "wait"})
    a, b = (Model(x, seed=5).run().calls for x in (ample, tight))
    assert (a["t_received"].to_numpy() == b["t_received"].to_numpy()).all()
    assert b["door_wait"].sum() > 0 and np.nansum(a["door_wait"]) == 0
    assert b["response_time"].mean() > a["response_time"].mean() * 1.05


def test_monday_messages_returned_in_friday_shift(scenario_path):
    """MH First: messages left on Monday wait for the Friday-night volunteers, in order."""
    profile = [0.0] * 168
    for h in range(9, 17):
        profile[h] = 1.0                     # Monday 09:00-17:00 only
    s = sim.load_scenario(scenario_path("tests/data/aftercare.yaml"), {
        "channels": {"messages": {"volume": {"per_week": 40}, "profile": {"hourly": profile}, "mix": {"crisis": 1}}},
        "pools.van": {"roles": ["medic"], "remote": True, "on_scene_min": {"default": 20},
                      "shifts": [{"days": "fri", "start": "18:00", "end": "24:00", "teams": 2}]},
        "facilities": {}, "horizon_days": 21, "warmup_days": 0, "drain_days": 14})
    c = Model(s, seed=7).run().calls
    assert len(c) > 60
    assert (c["outcome"] == "resolved").all()                  # no message lost
    day = (c["t_dispatched"] // 1440).astype(int)
    assert ((day % 7) == 4).all()                              # returned on a Friday...
    assert (c["t_dispatched"] % 1440 >= 18 * 60).all()         # ...in the evening shift
    week_left = (c["t_received"] // (7 * 1440)).astype(int)
    week_done = (c["t_dispatched"] // (7 * 1440)).astype(int)
    assert (week_done >= week_left).all()                      # never before it was left
    # each Friday shift starts on the backlog at 18:00 sharp, oldest message first
    first = c.groupby(week_done)["t_dispatched"].min()
    np.testing.assert_allclose(first.to_numpy(), first.index.to_numpy() * 7 * 1440 + 4 * 1440 + 18 * 60)
    # callbacks: returned at dispatch by phone, never an on-scene response
    assert c["t_on_scene"].isna().all() and (c["t_callback"] == c["t_dispatched"]).all()
    assert np.all(np.diff(c["t_dispatched"].to_numpy()) >= 0)  # in order (FCFS)


def test_followups_done_when_idle_and_missed_when_busy(path):
    fu = {"delay_min": 60, "expires_after_min": 120, "on_scene_min": 30}
    base = {"pools.van.outcomes.default": {"resolved": 0.5, "follow_up": 0.5}, "pools.van.follow_ups": fu,
            "horizon_days": 10}
    idle = Model(sim.load_scenario(path, base), seed=3).run().calls
    f = idle[idle["outcome"] == "follow_up"]
    assert (f["followup"] == "done").all()
    np.testing.assert_allclose(f["t_followup_done"], f["t_team_free"] + 60 + 30, atol=1e-9)
    run = Model(sim.load_scenario(path, {**base, "pools.van.teams": 1}), seed=3).run()
    busy = run.calls
    fb = busy[busy["outcome"] == "follow_up"]
    assert (fb["followup"] == "missed").any() and (fb["followup"] == "done").any()
    # follow-ups rank below live calls: while a live call waits for the team, the team never
    # starts a follow-up (replayed from the assignments log against the calls' waits)
    waited = busy[(busy["queue_wait"] > 0) & busy["pool"].notna()]
    assert len(waited) > 10
    starts = run.assignments.loc[run.assignments["task"] == "follow_up", "t_assigned"].to_numpy()
    assert len(starts) > 10
    inside = (starts[:, None] > waited["t_triaged"].to_numpy()[None, :] + 1e-9) & (
        starts[:, None] < waited["t_dispatched"].to_numpy()[None, :] - 1e-9)
    assert not inside.any(), "a follow-up started while a live call waited"


def test_case_management_lowers_repeat_calls(path):
    """Same calls (CRN); enrolment thins enrolled people's calls, so repeat calls fall, and
    a zero-capacity caseload changes nothing at all."""
    base = {"persons": {"population": 150, "propensity_cv": 2.0}, "channels.911.identified": 1.0,
            "pools.van.outcomes.default": {"resolved": 1.0}, "horizon_days": 30, "warmup_days": 0}
    cm = {"min_contacts": 3, "window_days": 30, "caseload": 20, "duration_days": 60, "call_factor": 0.3}
    without = sim.run(sim.load_scenario(path, base), replications=4, seed=4, workers=1)
    with_cm = sim.run(sim.load_scenario(path, {**base, "case_management": cm}), replications=4, seed=4, workers=1)
    rep0, rep1 = without.kpi("repeat_calls"), with_cm.kpi("repeat_calls")
    assert with_cm.kpi("calls_prevented") > 0
    assert rep1 < rep0 * 0.9, (rep0, rep1)
    c0, c1 = without.calls, with_cm.calls
    assert (c0["t_received"].to_numpy() == c1["t_received"].to_numpy()).all()
    kept = c1["outcome"] != "prevented"
    assert (c1.loc[kept, "call_type"] == c0.loc[kept, "call_type"]).all()
    # a prevented call was from someone enrolled: nobody is prevented before their k-th contact
    first_prevented = c1[~kept].groupby(["replication", "person"])["t_received"].min()
    contacts = c1[kept].groupby(["replication", "person"]).size()
    assert (contacts.reindex(first_prevented.index) >= 3).all()


def test_outreach_adds_contacts_only_when_idle(path):
    s = sim.load_scenario(path, {
        "pools.van.teams": 1, "pools.van.outreach": {"per_idle_team_hour": 1.0, "call_type": "crisis", "on_scene_min": 20},
        "pools.van.outcomes.default": {"resolved": 1.0}, "persons": {"population": 400, "propensity_cv": 0},
        "channels.911.volume": {"per_hour": 0.5}, "horizon_days": 10, "warmup_days": 0})
    res = sim.run(s, replications=1, seed=6, workers=1)
    c = res.calls
    out = c[c["proactive"]]
    assert len(out) > 50 and (out["channel"] == "outreach").all()
    # the one team never does two things at once, calls and outreach together
    spans = c.sort_values("t_dispatched")
    assert (spans["t_dispatched"].to_numpy()[1:] >= spans["t_team_free"].to_numpy()[:-1] - 1e-9).all()
    # people served counts persons met on outreach; KPIs about calls ignore outreach rows
    assert res.kpi("unique_people") == out["person"].nunique()
    assert res.kpi("calls") == (~c["proactive"]).sum()
    assert res.kpi("outreach_contacts") == len(out)


def test_message_line_escalation_and_advocacy(scenario_path):
    s = sim.load_scenario(scenario_path("tests/data/aftercare.yaml"), {
        "pools.van": {"roles": ["medic"], "remote": True, "teams": 3, "on_scene_min": {"default": 15},
                      "escalation": {"share": 0.2, "on_scene_min": 60, "advocacy_share": 0.5, "advocacy_min": 120}},
        "facilities": {}, "horizon_days": 20, "warmup_days": 0})
    c = Model(s, seed=3).run().calls
    esc = c[c["escalated"]]
    assert 0.12 < len(esc) / len(c) < 0.28
    assert (c.loc[~c["escalated"], "t_team_free"] - c.loc[~c["escalated"], "t_callback"]).round(9).eq(15).all()
    busy = esc["t_team_free"] - esc["t_callback"]
    np.testing.assert_allclose(busy, 15 + 60 + np.where(esc["advocacy"], 120, 0), atol=1e-9)
    assert esc["advocacy"].any() and (~esc["advocacy"]).any()


def test_police_contacts_followed_up_by_crisis_unit(scenario_path):
    """DeKalb: the crisis unit follows up on police mental-health contacts when idle."""
    s = sim.load_scenario(scenario_path("tests/data/aftercare.yaml"), {
        "roles": {"medic": {"hourly_cost": 40}, "officer": {"hourly_cost": 80, "sworn": True}},
        "triage.paths.alt.pools": ["police"],
        "pools+": {"police": {"roles": ["officer"], "teams": 20, "on_scene_min": {"default": 30},
                              "outcomes": {"default": {"resolved": 0.5, "follow_up": 0.5}},
                              "follow_ups": {"by": "van", "delay_min": 60, "expires_after_min": 1440,
                                             "on_scene_min": 45}}},
        "pools.van.teams": 2, "horizon_days": 10, "warmup_days": 0})
    res = Model(s, seed=8).run()
    c = res.calls
    f = c[c["outcome"] == "follow_up"]
    assert (c["pool"] == "police").all() and (f["followup"] == "done").mean() > 0.9
    van = res.pools.set_index("pool").loc["van"]
    assert van["busy_min"] == pytest.approx(45 * (f["t_followup_done"] <= s.end_min).sum(), rel=0.02)


def test_desk_sent_second_unit_drives_the_transport(scenario_path):
    """LAPD flow with fixed times: patrol on scene, 5 min at the desk, SMART sent, SMART
    works 40 min and drives the person to the facility; patrol hands over on SMART's arrival."""
    s = sim.load_scenario(scenario_path("tests/data/aftercare.yaml"), {
        "roles": {"medic": {"hourly_cost": 40}, "officer": {"hourly_cost": 80, "sworn": True}},
        "zones": {"a": {"share": 1, "rect_km": [0, 0, 6, 6]}},
        "travel": {"model": "manhattan", "speed_kmh": 60},
        "triage.desks": {"meu": {"staff": 2, "service_min": 5}},
        "triage.paths.alt": {"call_types": ["crisis"], "pools": ["patrol"],
                             "consult": {"desk": "meu", "second_pool": "smart", "p_second": 1.0}},
        "pools": {"patrol": {"roles": ["officer"], "teams": 30, "base_zone": "a", "on_scene_min": {"default": 20}},
                  "smart": {"roles": ["officer", "medic"], "teams": 30, "base_zone": "a", "on_scene_min": {"default": 40},
                            "outcomes": {"default": {"resolved": 0, "transport": 1}},
                            "transport": {"destinations": {"crisis_center": 1}}}},
        "facilities.crisis_center.zone": "a", "horizon_days": 2, "warmup_days": 0})
    c = Model(s, seed=1).run().calls
    d = (c["x_km"] - 3).abs() + (c["y_km"] - 3).abs()
    np.testing.assert_allclose(c["t_second_on_scene"], c["t_on_scene"] + c["desk_wait"] + 5 + d, atol=1e-9)
    np.testing.assert_allclose(c["t_team_free"], c["t_second_on_scene"], atol=1e-9)   # patrol handed over
    np.testing.assert_allclose(c["t_cleared"], c["t_second_on_scene"] + 40, atol=1e-9)
    np.testing.assert_allclose(c["t_handover"], c["t_cleared"] + d + 15, atol=1e-9)   # drive back to centre
    assert (c["outcome"] == "transport").all() and (c["destination"] == "crisis_center").all()
    assert (c["second_pool"] == "smart").all() and c["police_on_scene"].all()
    # SMART stays at the facility after the hand-over; both sworn units count as police time
    np.testing.assert_allclose(c["t_second_free"], c["t_handover"], atol=1e-9)
    np.testing.assert_allclose(c["t_second_dispatched"], c["t_on_scene"] + c["desk_wait"] + 5, atol=1e-9)
    np.testing.assert_allclose(c["police_minutes"], (c["t_team_free"] - c["t_dispatched"])
                               + (c["t_second_free"] - c["t_second_dispatched"]), atol=1e-9)
