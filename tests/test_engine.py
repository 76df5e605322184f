"""Deterministic totals, seed stability, parallel = sequential, directions under CRN."""
import math
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest
import simpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sim
import sim.model as model_mod
from sim.model import Model
from test_invariants import SHIPPED, scenarios

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fixed(scenario_path):
    return sim.load_scenario(scenario_path("tests/data/fixed.yaml"))


def test_fixed_durations_give_exact_times(fixed):
    calls = Model(fixed, seed=3).run().calls
    assert len(calls) > 50
    # every team starts from the west base centre (2, 2) and returns there after each call
    dist = (calls["x_km"] - 2.0).abs() + (calls["y_km"] - 2.0).abs()     # km = minutes at 60 km/h
    np.testing.assert_allclose(calls["response_time"], 3 + 2 + dist, atol=1e-9)
    np.testing.assert_allclose(calls["t_triaged"] - calls["t_received"], 3, atol=1e-9)
    np.testing.assert_allclose(calls["t_cleared"] - calls["t_on_scene"], 30, atol=1e-9)
    np.testing.assert_allclose(calls["t_team_free"] - calls["t_cleared"], dist, atol=1e-9)
    assert (calls["outcome"] == "resolved").all()
    assert calls["diverted"].all()


def test_fixed_durations_busy_time_adds_up(fixed):
    res = Model(fixed, seed=3).run()
    calls = res.calls
    busy = (calls["t_team_free"] - calls["t_dispatched"]).sum()
    # no warm-up and every call finishes within the horizon, except the drain tail
    assert res.pools.loc[0, "busy_min"] == pytest.approx(
        busy - (calls["t_team_free"].clip(lower=fixed.end_min) - fixed.end_min).sum())


def test_same_seed_same_log(scenario_path):
    s = sim.load_scenario(scenario_path("scenarios/validation/mmcc.yaml"), ["horizon_days=5"])
    a = Model(s, seed=9, replication=2).run().calls
    b = Model(s, seed=9, replication=2).run().calls
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    c = Model(s, seed=10, replication=2).run().calls
    assert not np.array_equal(a["t_received"].to_numpy(), c["t_received"].to_numpy()[: len(a)]) or len(a) != len(c)


def test_parallel_equals_sequential(scenario_path):
    s = sim.load_scenario(scenario_path("scenarios/validation/mmcc.yaml"), ["horizon_days=5"])
    seq = sim.run(s, replications=4, seed=2, workers=1)
    par = sim.run(s, replications=4, seed=2, workers=2)
    pd.testing.assert_frame_equal(seq.calls, par.calls, check_exact=True)
    pd.testing.assert_frame_equal(seq.summary, par.summary, check_exact=True)


def test_counterfactual_sees_the_same_calls(scenario_path):
    """Common random numbers: changing the response leaves every call's arrival and type alone."""
    path = scenario_path("scenarios/validation/mmcc.yaml")
    a = Model(sim.load_scenario(path, ["horizon_days=5"]), seed=4).run().calls
    b = Model(sim.load_scenario(path, ["horizon_days=5", "pools.crisis_team.teams=7"]), seed=4).run().calls
    pd.testing.assert_frame_equal(a[["t_received", "call_type", "zone", "x_km"]],
                                  b[["t_received", "call_type", "zone", "x_km"]])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_one_more_team_never_raises_p90(scenario_path, seed):
    path = scenario_path("scenarios/validation/mmc.yaml")
    p90 = []
    for teams in (9, 10, 11, 12):
        s = sim.load_scenario(path, [f"pools.team.teams={teams}", "horizon_days=20"])
        calls = Model(s, seed=seed).run().calls
        p90.append(calls.loc[~calls["warmup"], "response_time"].quantile(0.9))
    assert all(b <= a + 1e-9 for a, b in zip(p90, p90[1:])), p90


def test_more_alternative_teams_never_raise_fallback(scenario_path):
    path = scenario_path("scenarios/validation/mmcc.yaml")
    rates = []
    for teams in (1, 2, 3, 4):
        s = sim.load_scenario(path, [f"pools.crisis_team.teams={teams}", "horizon_days=10"])
        calls = Model(s, seed=8).run().calls
        rates.append((calls["tier"] > 0).mean())
    assert all(b <= a for a, b in zip(rates, rates[1:])), rates


def test_arrival_profile_shapes_hourly_counts(scenario_path):
    """A 168-hour profile with all weight on Monday 09:00-10:00 puts every call there."""
    profile = [0.0] * 168
    profile[9] = 1.0
    s = sim.load_scenario(scenario_path("scenarios/validation/mmc.yaml"),
                          {"channels.911.profile": {"hourly": profile}, "channels.911.volume": {"per_week": 500},
                           "horizon_days": 28, "warmup_days": 0})
    calls = Model(s, seed=1).run().calls
    hour_of_week = (calls["t_received"] // 60 % 168).astype(int)
    assert (hour_of_week == 9).all()
    # 4 weeks x 500 expected: Poisson count within 4 sd
    assert abs(len(calls) - 2000) < 4 * np.sqrt(2000)


def test_shift_ends_mid_call_records_overtime(scenario_path):
    s = sim.load_scenario(scenario_path("tests/data/fixed.yaml"), {
        "pools.van.teams": None, "pools.van.shifts": [{"days": "daily", "start": "08:00", "end": "16:00", "teams": 1}],
        "channels.911.volume": {"per_day": 30}})
    res = Model(s, seed=2).run()
    c = res.calls
    served = c.dropna(subset=["t_dispatched"])
    minute_of_day = served["t_dispatched"] % 1440
    assert ((minute_of_day >= 480) & (minute_of_day <= 960)).all(), "a team started a call off shift"
    work = res.assignments
    late = work[work["overtime"] > 0]
    assert len(late) > 0
    # the crew's shift ends at 16:00: every minute it works after that is booked as overtime
    np.testing.assert_allclose(late["overtime"], late["t_released"] % 1440 - 960, atol=1e-9)
    worked_past = (work["t_released"] % 1440 > 960) & (work["t_assigned"] % 1440 < 960)
    assert worked_past.sum() == len(late)
    assert res.pools.loc[0, "overtime_min"] > 0


def test_calls_do_not_wait_for_a_pool_nobody_staffs_in_time(scenario_path):
    """max_wait 30 on a day team (08:00-16:00): night calls fall back to police at once;
    a call 15 minutes before the shift waits for it."""
    s = sim.load_scenario(scenario_path("scenarios/validation/mmcc.yaml"), {
        "pools.crisis_team.teams": None,
        "pools.crisis_team.shifts": [{"days": "daily", "start": "08:00", "end": "16:00", "teams": 2}],
        "triage.paths.behavioral.max_wait_min": [30, None], "horizon_days": 10, "warmup_days": 0})
    c = Model(s, seed=4).run().calls
    minute = c["t_received"] % 1440
    night = c[(minute < 7 * 60) | (minute >= 16 * 60)]
    assert (night["pool"] == "police").all() and (night["queue_wait"] == 0).all()
    early = c[(minute >= 7 * 60 + 30) & (minute < 8 * 60)]
    assert len(early) > 0
    assert (early.loc[early["pool"] == "crisis_team", "t_dispatched"] % 1440 >= 8 * 60 - 1e-9).all()
    assert (early["pool"] == "crisis_team").any()


def test_co_responder_fallback_follows_erlang_b_and_diverts_nothing(scenario_path):
    """A co-responder team has a sworn officer: its calls are not diversions, but a busy
    team still sends eligible calls to patrol at the Erlang B rate."""
    from analytic import erlang_b
    from sim.metrics import t_interval
    s = sim.load_scenario(scenario_path("scenarios/validation/mmcc.yaml"), ["roles.clinician.sworn=true"])
    res = sim.run(s, replications=8, seed=12, workers=1)
    m, lo, hi = t_interval(res.kpis.query("metric == 'fallback_rate'")["value"])
    assert lo <= erlang_b(2, 2.5) <= hi
    assert res.kpi("diversion_rate") == 0 and res.kpi("eligible_diversion_rate") == 0


def test_a_team_without_a_vehicle_cannot_leave(scenario_path):
    """Two teams sharing one van behave as one server: the loss rate is Erlang B with c=1."""
    from analytic import erlang_b
    from sim.metrics import t_interval
    s = sim.load_scenario(scenario_path("scenarios/validation/mmcc.yaml"),
                          {"vehicles": {"van": 1}, "pools.crisis_team.vehicles": "van"})
    res = sim.run(s, replications=8, seed=13, workers=1)
    m, lo, hi = t_interval(res.kpis.query("metric == 'fallback_rate'")["value"])
    assert lo <= erlang_b(1, 2.5) <= hi, (m, lo, hi)
    c = res.calls[res.calls["pool"] == "crisis_team"].sort_values(["replication", "t_dispatched"])
    for _, g in c.groupby("replication"):   # never two crisis-team calls at once
        assert (g["t_dispatched"].to_numpy()[1:] >= g["t_team_free"].to_numpy()[:-1] - 1e-9).all()


def test_pilot_path_limited_to_zones(scenario_path):
    """A path with zones: only calls from the pilot zone reach the crisis team; elsewhere the
    same call type goes to police, and is not eligible there."""
    s = sim.load_scenario(scenario_path("scenarios/validation/mmcc.yaml"), {
        "zones": {"pilot": {"share": 0.4}, "rest": {"share": 0.6}},
        "triage.paths": {
            "pilot": {"call_types": ["crisis"], "zones": ["pilot"], "pools": ["crisis_team", "police"],
                      "max_wait_min": [0, None]},
            "elsewhere": {"call_types": ["crisis"], "zones": ["rest"], "pools": ["police"]}},
        "horizon_days": 5})
    c = Model(s, seed=3).run().calls
    pilot = c["zone"] == "pilot"
    assert (c.loc[~pilot, "pool"] == "police").all() and (c.loc[~pilot, "path"] == "elsewhere").all()
    assert (c.loc[pilot, "pool"] == "crisis_team").any() and (c.loc[pilot, "path"] == "pilot").all()
    assert c.loc[pilot, "eligible"].all() and not c.loc[~pilot, "eligible"].any()


# --- the call source starts each call's process at once (model._CallProcess) --------------

def _trace(start, arrivals, services, servers):
    """Who gets a server when, in an M/M/c-like system whose customers are started by
    ``start(env, generator)`` from one source process (ties in arrival time included)."""
    env = simpy.Environment()
    res = simpy.Resource(env, servers)
    log = []

    def customer(i, service):
        log.append(("arrive", i, env.now))
        with res.request() as req:
            yield req
            log.append(("serve", i, env.now))
            yield env.timeout(service)
        log.append(("leave", i, env.now))
        return i

    def source():
        for i, (t, s) in enumerate(zip(arrivals, services)):
            if t > env.now:
                yield env.timeout(t - env.now)
            p = start(env, customer(i, s))
            log.append(("started", i, env.now))
            if i % 3 == 0:            # someone waits on every third customer's process
                env.process(waiter(p, i))

    def waiter(p, i):
        value = yield p
        log.append(("waited", i, value, env.now))

    env.process(source())
    env.run()
    return log


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 4)), min_size=1, max_size=30),
       st.integers(1, 3))
def test_a_call_process_started_at_once_runs_as_env_process_does(calls, servers):
    # arrivals on whole minutes (many ties) and services of 0-4 minutes (zero-length ones too)
    arrivals = sorted(float(t) for t, _ in calls)
    services = [float(s) for _, s in calls]
    via_env = _trace(lambda env, g: env.process(g), arrivals, services, servers)
    at_once = _trace(model_mod._CallProcess, arrivals, services, servers)
    # the same events in the same order, except that a customer's first step ("arrive", and a
    # "serve" that needs no wait) now comes before the source's next line ("started")
    key = [e for e in via_env if e[0] != "started"]
    assert [e for e in at_once if e[0] != "started"] == key
    assert sorted(via_env) == sorted(at_once)
    first = {e[1]: k for k, e in enumerate(at_once) if e[0] == "arrive"}
    started = {e[1]: k for k, e in enumerate(at_once) if e[0] == "started"}
    assert all(first[i] < started[i] for i in first)


def test_a_call_process_started_at_once_can_be_interrupted_and_fails_loudly():
    env = simpy.Environment()
    seen = []

    def task():
        try:
            yield env.timeout(10)
        except simpy.Interrupt as i:
            seen.append((env.now, i.cause))

    def boss():
        p = model_mod._CallProcess(env, task())
        yield env.timeout(3)
        p.interrupt("pre-empted")
    env.process(boss())
    env.run()
    assert seen == [(3, "pre-empted")]

    def broken():
        raise ValueError("bad call")
        yield                                       # (a generator)
    env = simpy.Environment()
    model_mod._CallProcess(env, broken())
    with pytest.raises(ValueError, match="bad call"):
        env.run()


def test_a_call_process_nobody_waits_on_ends_without_an_event():
    # SimPy schedules every ended process as an event; a call's process nobody waits on is
    # done at once (one event a call fewer), yet reads as ended to anyone who looks later
    env = simpy.Environment()

    def task():
        yield env.timeout(2)
        return "done"
    p = model_mod._CallProcess(env, task())
    env.step()                                     # the timeout: the process ends in it
    assert not env._queue                          # no event left for its end
    assert p.processed and not p.is_alive and p.ok and p.value == "done"
    got = []

    def late():
        got.append((yield p))                      # an ended process: its value at once
    env.process(late())
    env.run()
    assert got == ["done"] and env.now == 2


def test_no_time_of_a_call_reads_before_its_receipt(scenario_path, monkeypatch):
    # From the clock at 3.261 no delay lands SimPy's clock (now + delay, rounded) on 14.69:
    # the two candidates sit one ulp either side (ties to even). The second call is then
    # received when the clock says, so a call answered at once (M/M/c: no processing, no
    # travel, teams free) reads a response time of exactly 0, never -7e-15.
    early, late = 3.261, 14.69
    assert all(early + d != late for d in (late - early, np.nextafter(late - early, 0),
                                           np.nextafter(late - early, np.inf)))
    s = sim.load_scenario(scenario_path("scenarios/validation/mmc.yaml"), {"horizon_days": 1, "warmup_days": 0})
    blocks = model_mod.CallSource.__iter__

    def shifted(self):
        for k, block in enumerate(blocks(self)):
            if k == 0:
                assert block.t[2] > late
                block.t[:2] = early, late
            yield block
    monkeypatch.setattr(model_mod.CallSource, "__iter__", shifted)
    calls = Model(s, seed=1).run().calls
    assert calls["t_received"].iloc[0] == early
    assert calls["t_received"].iloc[1] in (np.nextafter(late, 0), np.nextafter(late, np.inf))
    answered = calls["t_on_scene"].notna()
    assert (calls.loc[answered, "response_time"] >= 0).all()
    assert calls["response_time"].iloc[1] == 0.0
    assert (calls["t_triaged"] >= calls["t_received"]).all()


def test_a_store_of_cities_with_and_without_facilities_reads_whole_with_pandas(scenario_path, tmp_path):
    # a city with no facility stores its destination, facilities and occupancy columns with
    # the same types as one with facilities, so pandas on the store's folder (which takes the
    # first file's schema) keeps the second city's destinations, beds and occupancy
    from sim.experiment import compare
    ss = [sim.load_scenario(scenario_path("scenarios/validation/mmc.yaml"), {"horizon_days": 1, "warmup_days": 0}),
          sim.load_scenario(scenario_path("scenarios/eugene/cahoots.yaml"), {"horizon_days": 2, "warmup_days": 0})]
    out = tmp_path / "store"
    compare(ss, replications=1, seed=1, labels=["a_none", "b_cahoots"], workers=1, out=out)
    for table, column in (("calls", "destination"), ("facilities", "beds"), ("occupancy", "occupied")):
        part = pd.read_parquet(out / table / "scenario=b_cahoots" / "point=0" / "replication=0" / "part-0.parquet")
        assert part[column].notna().sum() > 0
        folder = pd.read_parquet(out / table)
        assert folder[column].notna().sum() == part[column].notna().sum(), table


# --- the drive and the time on scene as one event (callpath.call_process) --------------

_call_process = model_mod.call_process


def _two_events(m, i, c):
    """``call_process`` with the drive and the time on scene as two events, as before: every
    merged end would fall past the cap."""
    m.cap = -math.inf
    return _call_process(m, i, c)


def _check_one_event_is_two(s, seed: int) -> None:
    merged = Model(s, seed=seed)
    a = merged.run()
    two = Model(s, seed=seed)
    with mock.patch.object(model_mod, "call_process", _two_events):
        b = two.run()
    for name in ("calls", "assignments", "pools", "hourly", "facilities", "occupancy"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True, obj=name)
    # events saved: at most one per call that drove to the scene, sent no backup and consulted
    # no desk, in a city without case management (whose contacts count from the arrival);
    # some when there was any (the merge is nearly always exact)
    c = a.calls
    could = 0 if merged.casemgmt is not None else int(
        ((c["t_on_scene"] > c["t_dispatched"]) & ~c["backup"] & c["desk_wait"].isna()).sum())
    saved = next(two.env._eid) - next(merged.env._eid)
    assert 0 <= saved <= could and (saved > 0) == (could > 0), (saved, could)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT / "scenarios")))
def test_one_event_for_the_drive_and_the_time_on_scene_gives_the_run_of_two_on_every_shipped_scenario(path):
    days = 0.25 if "scale" in path.parts else 3
    _check_one_event_is_two(sim.load_scenario(path, {"horizon_days": days, "warmup_days": 1}), 5)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.integers(0, 2**31 - 1))
def test_one_event_for_the_drive_and_the_time_on_scene_gives_the_run_of_two_on_random_scenarios(s, seed):
    # (horizon 2 days, drain 1: calls still on scene at the cap are booked as they were)
    _check_one_event_is_two(s, seed)


def test_a_unit_on_scene_when_the_run_stops_has_its_arrival_booked(scenario_path):
    # every call is still on scene at the cap (3,000 minutes on scene, half a day of drain):
    # its drive and its time on scene could not be one event, and its arrival is booked
    s = sim.load_scenario(scenario_path("tests/data/fixed.yaml"),
                          ["horizon_days=1", "drain_days=0.5", "pools.van.on_scene_min.default=3000"])
    res = Model(s, seed=3).run()
    c = res.calls
    assert len(c) > 20 and (c["outcome"] == "unfinished").all() and c["t_cleared"].isna().all()
    dist = (c["x_km"] - 2.0).abs() + (c["y_km"] - 2.0).abs()
    np.testing.assert_allclose(c["t_on_scene"] - c["t_dispatched"], 2 + dist, atol=1e-9)
    work = res.assignments.set_index("call_id").loc[c["call_id"]]
    np.testing.assert_array_equal(work["t_arrived"].to_numpy(), c["t_on_scene"].to_numpy())
    assert work["open_at_end"].all()


def test_a_read_of_an_input_the_scenario_does_not_make_stops_the_run(scenario_path):
    # the M/M/c validation city has no travel: its calls carry no travel draw (None), so a
    # call path that read one would stop the run, never go on with a made-up number
    s = sim.load_scenario(scenario_path("scenarios/validation/mmc.yaml"), ["horizon_days=1"])
    seen = []

    def reads_travel(m, i, c):
        seen.append((c.u_travel, c.u_turnout, c.u_on_scene))
        return _call_process(m, i, c._replace(u_on_scene=c.u_on_scene + c.u_travel))
    with mock.patch.object(model_mod, "call_process", reads_travel), \
            pytest.raises(TypeError, match="NoneType"):
        Model(s, seed=1).run()
    assert seen[0][:2] == (None, None) and 0 < seen[0][2] < 1     # (what the call path does read is there)
