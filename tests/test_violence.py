"""Violence interruption: the self-exciting process and cancellation, against numbers
that could be wrong.

* validation: no program, mean shootings = background x horizon / (1 - n) and the share
  of retaliations = n, inside the 95% t-interval of the replications (fixed seed);
* extreme values: e = 0 reproduces the counterfactual exactly; e = 1 with unlimited
  instant interrupters leaves no retaliation of a reached shooting;
* deterministic: hand-built histories for cancelling descendants and for capacity (one
  interrupter, a burst of shootings, reached share computed here by hand);
* invariants under random program settings (hypothesis).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings, strategies as st

from sim.metrics import t_interval
from sim.violence import History, People, load_violence_scenario, run_violence, single_run

BASE = {
    "kind": "violence",
    "name": "test",
    "horizon_days": 365,
    "warmup_days": 1460,
    "groups": {
        "a": {"area": "north", "background_per_year": 150, "members": 60},
        "b": {"area": "south", "background_per_year": 50, "members": 40},
    },
    "seasonality": {"amplitude": 0.3, "peak_day": 200},
    "contagion": {"branching_ratio": 0.5},
}
UNLIMITED_INSTANT = {"workers": 500}   # no shifts (24/7), no hour budgets
INSTANT = {"staff": "team", "notify_delay_min": 0, "travel_min": 0, "busy_min": 60}


def load(tmp_path, data: dict, overrides=None):
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return load_violence_scenario(path, overrides)


def with_(base: dict, **top) -> dict:
    return {**base, **top}


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("n, seed", [(0.2, 3), (0.6, 4)])
def test_no_program_mean_and_offspring_share(tmp_path, n, seed):
    """Steady state: rate mu / (1 - n), a share n of shootings are retaliations.

    The seasonal background averages to its annual rate over the whole-year horizon."""
    s = load(tmp_path, BASE, [f"contagion.branching_ratio={n}"])
    res = run_violence(s, replications=40, seed=seed)
    per_rep = res.kpis.pivot(index="replication", columns="metric", values="value")
    expected = 200 * 1.0 / (1 - n)           # background per year x 1 year / (1 - n)
    m, lo, hi = t_interval(per_rep["counterfactual_shootings"])
    assert lo <= expected <= hi, f"mean shootings {m:.1f} [{lo:.1f}, {hi:.1f}], expected {expected:.1f}"
    m, lo, hi = t_interval(per_rep["offspring_share"])
    assert lo <= n <= hi, f"offspring share {m:.3f} [{lo:.3f}, {hi:.3f}], expected {n}"
    # no program: nothing cancelled, shootings = counterfactual
    assert not res.shootings["cancelled"].any()


def test_retaliations_follow_the_two_part_kernel(tmp_path):
    """Delays parent -> child: mixture of exponentials, mean w_f*14 + w_s*125 days."""
    s = load(tmp_path, with_(BASE, warmup_days=0, horizon_days=3000))
    res = run_violence(s, replications=3, seed=2)
    sh = res.shootings
    kids = sh[sh["parent_id"].notna()]
    parent_time = sh.set_index(["replication", "shooting_id"])["time_min"]
    born = parent_time.loc[list(zip(kids["replication"], kids["parent_id"].astype(int)))].to_numpy()
    delay_days = (kids["time_min"].to_numpy() - born) / 1440.0
    # children after the horizon are never generated: use parents at least 1500 days
    # before it, whose children are cut with probability exp(-1500 / 125) ~ 6e-6
    early = born < 1500 * 1440.0
    mean = 0.3 * 14 + 0.7 * 125
    assert abs(delay_days[early].mean() - mean) / mean < 0.1
    assert np.mean(delay_days[early] < 28) == pytest.approx(0.3 * (1 - math.exp(-2)) + 0.7 * (1 - math.exp(-28 / 125)),
                                                            abs=0.05)


# --------------------------------------------------------------------------- extreme values


def test_effect_zero_is_exactly_the_counterfactual(tmp_path):
    data = with_(BASE, horizon_days=365, staff={"team": {"workers": 2, "shifts": [
        {"days": "daily", "start": "18:00", "end": "24:00", "teams": 1}]}},
        programs={"responses": {"scene": {**INSTANT, "busy_min": 600, "effect": 0.0}}})
    program = run_violence(load(tmp_path, data), replications=3, seed=9)
    none = run_violence(load(tmp_path, data, ["programs=null"]), replications=3, seed=9)
    # the same shootings (the scenario labels differ: one says programs=None)
    pd.testing.assert_frame_equal(program.shootings.drop(columns="scenario"), none.shootings.drop(columns="scenario"),
                                  check_exact=True)
    assert not program.shootings["cancelled"].any()
    # the program did work: some shootings reached, some missed for lack of capacity
    outcomes = set(program.responses["outcome"])
    assert "reached" in outcomes and "no_worker" in outcomes


def test_effect_one_with_unlimited_instant_interrupters_stops_all_retaliation(tmp_path):
    data = with_(BASE, staff={"team": UNLIMITED_INSTANT},
                 programs={"responses": {"scene": {**INSTANT, "effect": 1.0}}})
    res = run_violence(load(tmp_path, data), replications=3, seed=5)
    sh, rs = res.shootings, res.responses
    happened_after_start = sh[~sh["warmup"] & ~sh["cancelled"]]
    reached = rs[rs["outcome"] == "reached"]
    # every shooting after the start is reached, at once
    assert len(reached) == len(happened_after_start)
    assert (reached["arrived_min"] == reached["shot_min"]).all()
    # no retaliation of a reached shooting happens
    key = ["replication", "parent_id"]
    kids = sh.merge(reached.rename(columns={"shooting_id": "parent_id"})[["replication", "parent_id"]], on=key)
    assert len(kids) > 50 and kids["cancelled"].all()
    assert set(kids["reason"]) <= {"response"}
    # and retaliations still happening after the start are all children of warm-up shootings
    parents = sh.set_index(["replication", "shooting_id"])["warmup"]
    live_kids = happened_after_start[happened_after_start["parent_id"].notna()]
    assert parents.loc[list(zip(live_kids["replication"], live_kids["parent_id"].astype(int)))].all()


# --------------------------------------------------------------------------- hand-built histories

START = 1440.0   # warmup_days: 1


def history(times, parents, persons=None, fatal=None, risk=(10.0, 1.0, 1.0)) -> History:
    n = len(times)
    parent = np.asarray(parents, dtype=np.int64)
    gen = np.zeros(n, dtype=np.int64)
    for i in range(n):
        gen[i] = 0 if parent[i] < 0 else gen[parent[i]] + 1
    return History(
        time=np.asarray(times, dtype=float), parent=parent, generation=gen,
        group=np.zeros(n, dtype=np.int64),
        person=np.asarray(persons if persons is not None else [1] * n, dtype=np.int64),
        fatal=np.asarray(fatal if fatal is not None else [False] * n),
        u_prevent=np.full(n, 0.5), u_interrupt=np.full(n, 0.5),
        people=People(group=np.zeros(len(risk), dtype=np.int64), risk=np.asarray(risk)))


def why(sh: pd.DataFrame) -> dict[int, str | None]:
    """shooting id -> reason it was cancelled (None: it happened)."""
    return {int(i): (str(r) if c else None) for i, r, c in zip(sh["shooting_id"], sh["reason"], sh["cancelled"])}


SMALL = with_(BASE, warmup_days=1, horizon_days=30,
              groups={"a": {"area": "north", "background_per_year": 1, "members": 3}})
#            id: 0      1     2     3     4     5     6     7     8     9
TREE_TIMES = [1000, 2000, 3000, 3500, 4000, 5000, 6000, 7000, 8000, 9000]
TREE_PARENTS = [-1, -1, 1, 1, 2, 4, 3, -1, 7, 8]
TREE_PERSONS = [0, 1, 0, 1, 2, 2, 1, 2, 0, 1]     # person 0 is the highest risk


def test_cancelling_a_shooting_removes_exactly_its_descendants(tmp_path):
    """Person 0 becomes the only fellow when the program starts (minute 1440), with
    rate factor 0: each shooting person 0 fires after that is prevented, and with it
    every shooting down its line -- and nothing else."""
    data = with_(SMALL, staff={"agents": {"workers": 1}}, programs={"fellowship": {
        "staff": "agents", "caseload": 1, "take_up": 1.0, "rate_factor": 0.0}})
    s = load(tmp_path, data)
    sh, _, _, k = single_run(s, seed=1, replication=0,
                             history=history(TREE_TIMES, TREE_PARENTS, TREE_PERSONS))
    reasons = why(sh)
    assert reasons == {0: None,            # person 0, but in the warm-up (no program yet)
                       1: None,
                       2: "fellowship",    # person 0 -> its line 4, 5 goes
                       3: None, 4: "ancestor", 5: "ancestor",
                       6: None,            # child of 3, which happened
                       7: None,
                       8: "fellowship",    # person 0 again -> 9 goes
                       9: "ancestor"}
    assert k["shootings_averted"] == 5 and k["averted.fellowship"] == 2 and k["averted.ancestor"] == 3
    assert k["retaliations_averted"] == 5 and k["background_averted"] == 0
    assert k["caseload_coverage"] == pytest.approx(2 / 9)   # 2 of the 9 measured shootings by the fellow


def test_reached_shooting_loses_its_retaliations_and_their_lines(tmp_path):
    data = with_(SMALL, staff={"team": UNLIMITED_INSTANT},
                 programs={"responses": {"scene": {**INSTANT, "effect": 1.0}}})
    sh, rs, _, _ = single_run(load(tmp_path, data), seed=1, replication=0,
                              history=history(TREE_TIMES, TREE_PARENTS, TREE_PERSONS))
    reasons = why(sh)
    # 0 is in the warm-up (no response); 1 and 7 are reached; everything below them goes
    assert reasons == {0: None, 1: None, 2: "response", 3: "response", 4: "ancestor", 5: "ancestor",
                       6: "ancestor", 7: None, 8: "response", 9: "ancestor"}
    assert sorted(rs.loc[rs["outcome"] == "reached", "shooting_id"]) == [1, 7]


@pytest.mark.parametrize("burst", [1, 3, 7, 8, 12, 20])
def test_one_interrupter_and_a_burst_of_shootings(tmp_path, burst):
    """One interrupter, always on shift, FIFO. Each response takes travel 30 + busy 180 =
    210 minutes; the j-th shooting of the burst (j = 0, 1, ...) gets the worker at
    j x 210 and arrives at j x 210 + 30, so it is reached within the 24 h window when
    j x 210 + 30 <= 1440: j <= 6, i.e. 7 shootings. Reached share = min(k, 7) / k."""
    capacity = math.floor((1440 - 30) / 210) + 1
    data = with_(SMALL, staff={"team": {"workers": 1}}, programs={"responses": {"scene": {
        "staff": "team", "travel_min": 30, "busy_min": 180, "window_h": 24, "effect": 0.5}}})
    times = [2000 + 0.001 * j for j in range(burst)]
    _, rs, _, k = single_run(load(tmp_path, data), seed=1, replication=0,
                             history=history(times, [-1] * burst))
    assert k["reached_24h.scene"] == pytest.approx(min(burst, capacity) / burst)
    assert k["no_capacity.scene"] == max(0, burst - capacity)
    reached = rs[rs["outcome"] == "reached"].sort_values("shooting_id")
    assert np.allclose(reached["arrived_min"] - 2000, np.arange(len(reached)) * 210 + 30, atol=0.01)


@pytest.mark.parametrize("canvass_h, expected", [(0, 2), (3.5, 3)])
def test_weekly_hours_budget_limits_responses(tmp_path, canvass_h, expected):
    """7 incident-response hours a week = two 210-minute responses; responses then borrow
    canvassing hours (3.5 h = one more) before shootings go unanswered ("no_hours")."""
    hours = {"incident_response": 7, "canvassing": canvass_h}
    data = with_(SMALL, warmup_days=7, staff={"team": {"workers": 1, "hours_per_week": hours}},
                 programs={"responses": {"scene": {"staff": "team", "travel_min": 30, "busy_min": 180,
                                                   "effect": 0.5}}})
    week_start = 7 * 1440.0
    times = [week_start + 1440.0 * d for d in range(5)]      # one a day, Monday to Friday
    _, rs, _, _ = single_run(load(tmp_path, data), seed=1, replication=0,
                             history=history(times, [-1] * 5))
    assert list(rs.sort_values("shooting_id")["outcome"]) == ["reached"] * expected + ["no_hours"] * (5 - expected)


# --------------------------------------------------------------------------- invariants


@settings(max_examples=12, deadline=None)
@given(n=st.floats(0.0, 0.8), e=st.floats(0.0, 1.0), workers=st.integers(1, 4),
       factor=st.floats(0.0, 1.0), effect=st.floats(0.0, 1.0))
def test_cancellation_invariants(tmp_path_factory, n, e, workers, factor, effect):
    """Whatever the programs: a cancelled shooting's children are all cancelled (as
    ancestors), only they carry that reason, and averted + happened = no-program total."""
    data = with_(BASE, horizon_days=120, warmup_days=200, contagion={"branching_ratio": n},
                 staff={"team": {"workers": workers, "hours_per_week": {"incident_response": 6, "canvassing": 6}}},
                 programs={"responses": {"scene": {"staff": "team", "travel_min": 20, "busy_min": 240, "effect": e}},
                           "fellowship": {"staff": "team", "caseload": 5, "take_up": 0.5, "rate_factor": factor},
                           "canvassing": {"staff": "team", "full_coverage_hours_per_week": 5, "effect": effect,
                                          "cooling_days": 14},
                           "focused_deterrence": {"interval_days": 30, "rate_factor": factor,
                                                  "enforcement": {"rate_factor": factor}}})
    sh, _, _, k = single_run(load(tmp_path_factory.mktemp("s"), data), seed=7, replication=0)
    cancelled = sh["cancelled"].to_numpy()
    parent = sh["parent_id"].to_numpy(dtype=float, na_value=-1).astype(int)
    parent_cancelled = np.where(parent >= 0, cancelled[np.maximum(parent, 0)], False)
    assert cancelled[parent_cancelled].all()
    assert ((sh["reason"] == "ancestor").to_numpy() == parent_cancelled).all()
    assert sh.loc[cancelled, "reason"].notna().all() and sh.loc[~cancelled, "reason"].isna().all()
    assert not sh.loc[sh["warmup"], "cancelled"].any()
    assert k["shootings"] + k["shootings_averted"] == k["counterfactual_shootings"]
    assert k["background_averted"] + k["retaliations_averted"] == k["shootings_averted"]
