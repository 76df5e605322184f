"""The engine against closed-form queueing results (Erlang C, Erlang B).

Each test runs independent replications with a fixed seed and asserts that the analytic
value lies inside the 95% t-interval of the replication means.
"""
import pytest

import sim
from sim.metrics import t_interval
from analytic import erlang_b, erlang_c, mmc_mean_wait

REPS = 12


def _per_rep(res, fn):
    calls = res.calls[~res.calls["warmup"]]
    return [fn(g) for _, g in calls.groupby("replication")]


def test_mmc_matches_erlang_c(scenario_path):
    s = sim.load_scenario(scenario_path("scenarios/validation/mmc.yaml"))
    res = sim.run(s, replications=REPS, seed=11, workers=1)
    c, lam, mean_service = 10, 8 / 60, 60.0
    mean_wait = mmc_mean_wait(c, lam, mean_service)
    p_wait = erlang_c(c, lam * mean_service)
    m, lo, hi = t_interval(_per_rep(res, lambda g: g["queue_wait"].mean()))
    assert lo <= mean_wait <= hi, f"Erlang C mean wait {mean_wait:.2f} outside [{lo:.2f}, {hi:.2f}]"
    m, lo, hi = t_interval(_per_rep(res, lambda g: (g["queue_wait"] > 0).mean()))
    assert lo <= p_wait <= hi, f"Erlang C P(wait) {p_wait:.4f} outside [{lo:.4f}, {hi:.4f}]"
    # Little's law on the queue: the time-average number waiting (waits summed over the
    # measured window) matches Erlang C's L_q = lambda * W_q
    horizon = s.horizon_days * 1440.0
    m, lo, hi = t_interval(_per_rep(res, lambda g: g["queue_wait"].sum() / horizon))
    assert lo <= lam * mean_wait <= hi, f"L_q {lam * mean_wait:.3f} outside [{lo:.3f}, {hi:.3f}]"
    # utilisation = a / c
    m, lo, hi = t_interval(res.kpis.query("metric == 'utilisation.team'")["value"])
    assert lo <= 0.8 <= hi


@pytest.mark.parametrize("on_scene", [
    None,                                             # exponential, as in the file
    "{lognormal: {mean: 60, sd: 120}}",               # same mean, very different shape
])
def test_loss_system_matches_erlang_b(scenario_path, on_scene):
    overrides = [f"pools.crisis_team.on_scene_min.default={on_scene}"] if on_scene else []
    s = sim.load_scenario(scenario_path("scenarios/validation/mmcc.yaml"), overrides)
    res = sim.run(s, replications=REPS, seed=5, workers=1)
    blocked = erlang_b(2, 2.5)
    m, lo, hi = t_interval(res.kpis.query("metric == 'fallback_rate'")["value"])
    assert lo <= blocked <= hi, f"Erlang B {blocked:.4f} outside [{lo:.4f}, {hi:.4f}] ({on_scene})"
    # a loss system never queues: every call is answered at once by the team or police
    calls = res.calls
    assert (calls["queue_wait"].fillna(0) == 0).all()
    assert set(calls.loc[calls["tier"] > 0, "pool"]) == {"police"}
