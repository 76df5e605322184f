"""One record of every unit's work, one definition of every KPI, draws keyed to the call.

Each test replays a rule of issue 11 from the logs a run writes.
"""
import math

import numpy as np
import pytest

import sim
from sim.experiment import single_run
from sim.metrics import ELIGIBLE_CATEGORIES, GLOSSARY
from sim.model import Model
from sim.scenario import validate


def same_draw(a, b):
    """The same draw, call by call: durations are differences of clock times, so equal up to
    the rounding of the times (1e-9 min); a different draw differs by whole minutes."""
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=0, atol=1e-9)


def test_los_angeles_smart_books_every_unit(scenario_path):
    """SMART attends as the desk-sent second unit: its work, overtime and calls are booked."""
    s = sim.load_scenario(scenario_path("scenarios/los_angeles/meu_smart.yaml"), {"horizon_days": 14})
    res, k = single_run(s, s.seed, 0)
    pools = res.pools.set_index("pool")
    for name, row in pools.iterrows():             # busy <= on duty + overtime, every pool
        assert row.busy_min <= row.on_duty_min + row.overtime_min + 1e-6, name
    c = res.calls
    measured_second = c[~c["warmup"] & (c["second_pool"].astype(object) == "smart")]
    assert pools.loc["smart", "calls_served"] == len(measured_second) > 0
    assert math.isfinite(k["cost_per_call.smart"]) and k["cost_per_call.smart"] > 0
    assert pools.loc["smart", "overtime_min"] > 0          # SMART crews finish transports past shift end
    # the audit is the assignments log summed: busy minutes = sum of released - assigned
    w = res.assignments
    t0, t1 = s.warmup_min, s.end_min
    for name, row in pools.iterrows():
        g = w[w["pool"].astype(str) == name]
        assert row.busy_min == pytest.approx(float((g["t_released"].clip(t0, t1)
                                                     - g["t_assigned"].clip(t0, t1)).sum()), rel=1e-12, abs=1e-9)
    assert pools["busy_min"].sum() == pytest.approx(
        float((w["t_released"].clip(t0, t1) - w["t_assigned"].clip(t0, t1)).sum()), rel=1e-12)


def _three_tier(tmp_path):
    data = {
        "name": "crisis -> peer -> police", "horizon_days": 20, "warmup_days": 1,
        "roles": {"clinician": {"hourly_cost": 50}, "peer": {"hourly_cost": 30},
                  "officer": {"hourly_cost": 80, "sworn": True}},
        "call_types": {"crisis": {"priority": 2}, "crime": {"priority": 1}},
        "channels": {"911": {"volume": {"per_day": 60}, "mix": {"crisis": 0.6, "crime": 0.4}}},
        "triage": {"paths": {
            "crisis": {"call_types": ["crisis"], "pools": ["crisis_team", "peer_team", "police"],
                       "max_wait_min": [10, 10, None]},
            "crime": {"call_types": ["crime"], "pools": ["police"]}}},
        "pools": {
            "crisis_team": {"roles": ["clinician"], "shifts": [{"days": "daily", "start": "08:00", "end": "20:00",
                                                               "teams": 1}],
                            "on_scene_min": {"default": {"exponential": {"mean": 50}}},
                            "outcomes": {"default": {"resolved": 0.9, "backup": 0.1}}},
            "peer_team": {"roles": ["peer"], "shifts": [{"days": "weekdays", "start": "12:00", "end": "24:00",
                                                         "teams": 1}],
                          "on_scene_min": {"default": 40}},
            "police": {"roles": ["officer"], "teams": 6, "on_scene_min": {"default": {"exponential": {"mean": 40}}}}},
        "backup": {"pool": "police"},
    }
    return validate(data, "three_tier.yaml")


def test_eligible_shares_add_up_and_match_the_log(tmp_path):
    s = _three_tier(tmp_path)
    res, k = single_run(s, 4, 0)
    shares = [k[f"eligible_share.{c}"] for c in ELIGIBLE_CATEGORIES]
    assert sum(shares) == pytest.approx(1.0, abs=1e-12)
    c = res.calls[~res.calls["warmup"]]
    e = c[c["eligible"]]
    # the definitions, replayed from the log: first tier answered without police, later
    # tiers by reason; answered by police is the answering pool, whatever the tier
    first = e["tier"] == 0
    assert k["eligible_share.program_no_police"] == pytest.approx((first & ~e["police_on_scene"]).mean())
    assert k["eligible_share.program_police_on_scene"] == pytest.approx((first & e["police_on_scene"]).mean())
    busy = (e["tier"] > 0) & (e["fallback_reason"] == "busy")
    unstaffed = (e["tier"] > 0) & (e["fallback_reason"] == "unstaffed")
    assert k["fallback_busy_rate"] == pytest.approx(busy.mean()) and busy.any()
    assert k["fallback_unstaffed_rate"] == pytest.approx(unstaffed.mean()) and unstaffed.any()
    assert k["fallback_rate"] == pytest.approx(k["fallback_busy_rate"] + k["fallback_unstaffed_rate"])
    assert k["answered_by_police_rate"] == pytest.approx((e["pool"].astype(object) == "police").mean())
    # the peer team (tier 1) answers some calls; those are fallbacks that did not reach police
    peer = e["pool"].astype(object) == "peer_team"
    assert peer.any() and (e.loc[peer, "tier"] == 1).all()
    assert k["answered_by_police_rate"] < k["fallback_rate"]
    # an unstaffed fallback means no crisis-team crew was on duty: calls outside 08:00-20:00
    minute = (e.loc[unstaffed, "t_triaged"] % 1440)
    assert ((minute < 480) | (minute >= 1200)).all()


def test_dekalb_fallbacks_are_mostly_unstaffed(scenario_path):
    s = sim.load_scenario(scenario_path("scenarios/dekalb/mobile_crisis.yaml"), {"horizon_days": 60})
    _, k = single_run(s, s.seed, 0)
    assert k["fallback_rate"] > 0
    assert k["fallback_unstaffed_rate"] > k["fallback_busy_rate"]
    assert k["fallback_unstaffed_rate"] / k["fallback_rate"] > 0.5


@pytest.mark.parametrize("what,low,high", [
    ("triage.desks.meu_triage.staff", 2, 3),          # the desk's service times
    ("pools.smart.shifts.0.teams", 4, 5),             # the second unit's crews
])
def test_common_random_numbers_key_every_draw_to_the_call(scenario_path, what, low, high):
    """2 vs 3 desk staff (and 1 vs 2 SMART crews): every duration drawn for a call that both
    configurations give the same unit kind is identical, call by call."""
    path = scenario_path("scenarios/los_angeles/meu_smart.yaml")
    a = Model(sim.load_scenario(path, {"horizon_days": 7, what: low}), seed=3).run()
    b = Model(sim.load_scenario(path, {"horizon_days": 7, what: high}), seed=3).run()
    ca, cb = a.calls.set_index("call_id"), b.calls.set_index("call_id")
    assert len(ca) == len(cb) and (ca["t_received"] == cb["t_received"]).all()
    wa, wb = a.assignments, b.assignments

    def per_call(w, task):
        g = w[w["task"] == task]
        return (g["t_released"] - g["t_assigned"]).groupby(g["call_id"]).sum()

    desk_a, desk_b = per_call(wa, "desk"), per_call(wb, "desk")   # desk service, keyed to the call
    both = desk_a.index.intersection(desk_b.index)
    assert len(both) > 50
    same_draw(desk_a[both].to_numpy(), desk_b[both].to_numpy())
    # on-scene time of the answering unit, for calls the same pool answered
    same = (ca["pool"].astype(object) == cb["pool"].astype(object)) & ca["t_on_scene"].notna() & cb["t_on_scene"].notna()
    same &= (ca["second_pool"].isna() & cb["second_pool"].isna())
    assert same.sum() > 50
    # (patrol consults the desk from the scene: its wait and service come off the scene time)
    on_a = (ca["t_cleared"] - ca["t_on_scene"] - ca["desk_wait"].fillna(0) - desk_a.reindex(ca.index).fillna(0))[same]
    on_b = (cb["t_cleared"] - cb["t_on_scene"] - cb["desk_wait"].fillna(0) - desk_b.reindex(cb.index).fillna(0))[same]
    same_draw(on_a.to_numpy(), on_b.to_numpy())
    # a second unit's time on scene and a transport's stay, where both sent one
    two = ca["t_second_on_scene"].notna() & cb["t_second_on_scene"].notna()
    same_draw((ca["t_cleared"] - ca["t_second_on_scene"])[two].to_numpy(),
                                  (cb["t_cleared"] - cb["t_second_on_scene"])[two].to_numpy())
    stays = ca["stay"].notna() & cb["stay"].notna() & (ca["destination"].astype(object) == cb["destination"].astype(object))
    assert stays.sum() > 0
    same_draw(ca.loc[stays, "stay"].to_numpy(), cb.loc[stays, "stay"].to_numpy())


def test_common_random_numbers_with_more_teams(scenario_path):
    """2 vs 3 crisis teams: backups' time on scene, stays and follow-ups keyed to the call."""
    path = scenario_path("scenarios/dekalb/mobile_crisis.yaml")
    base = sim.load_scenario(path)
    entry = base.pools["mcu"].shifts[0].model_dump()
    runs = []
    for teams in (2, 3):
        s = sim.load_scenario(path, {"horizon_days": 20, "pools.mcu.shifts": [dict(entry, teams=teams)]})
        runs.append(Model(s, seed=5).run().calls.set_index("call_id"))
    ca, cb = runs
    same = (ca["pool"].astype(object) == cb["pool"].astype(object)) & ca["t_on_scene"].notna() & cb["t_on_scene"].notna()
    assert same.sum() > 100
    same_draw((ca["t_cleared"] - ca["t_on_scene"])[same & ~ca["backup"] & ~cb["backup"]],
                                  (cb["t_cleared"] - cb["t_on_scene"])[same & ~ca["backup"] & ~cb["backup"]])
    both_backup = ca["backup"] & cb["backup"]
    same_draw(ca.loc[both_backup, "backup_on_scene"], cb.loc[both_backup, "backup_on_scene"])
    stays = ca["stay"].notna() & cb["stay"].notna() & (ca["destination"].astype(object) == cb["destination"].astype(object))
    same_draw(ca.loc[stays, "stay"], cb.loc[stays, "stay"])


def test_remote_callbacks_are_never_on_scene_responses(scenario_path):
    s = sim.load_scenario(scenario_path("scenarios/sacramento/mh_first.yaml"), {"horizon_days": 20})
    res, k = single_run(s, s.seed, 0)
    c = res.calls[~res.calls["warmup"] & ~res.calls["proactive"]]
    remote = c["responder"] == "remote"
    assert remote.any() and c.loc[remote, "response_time"].isna().all()
    assert c.loc[remote, "callback_time"].notna().all()
    on_scene = c["response_time"].dropna()          # (NaN when no call was answered on scene)
    np.testing.assert_allclose(k["response_time_mean"], on_scene.mean() if len(on_scene) else np.nan)
    assert k["callback_time_mean"] == pytest.approx(c.loc[remote, "callback_time"].mean())
    # share within 30: callbacks left out of the denominator, unanswered calls count as misses
    den = c[~remote]
    np.testing.assert_allclose(k["share_within_30"],
                               (den["response_time"].fillna(np.inf) <= 30).mean() if len(den) else np.nan)
    # escalated scene visits are not on-scene responses either: the call was answered by phone
    assert c["escalated"].any() and c.loc[c["escalated"], "response_time"].isna().all()


def test_share_within_counts_unanswered_calls_as_misses(tmp_path):
    s = _three_tier(tmp_path)
    s = validate({**s.to_dict(), "triage": {"paths": {
        "crisis": {"call_types": ["crisis"], "pools": ["crisis_team"], "max_wait_min": 0},
        "crime": {"call_types": ["crime"], "pools": ["police"]}}}, "backup": None,
        "pools": {**s.to_dict()["pools"], "crisis_team": {**s.to_dict()["pools"]["crisis_team"],
                                                          "outcomes": {"default": {"resolved": 1.0}}}}}, "x.yaml")
    res, k = single_run(s, 4, 0)
    c = res.calls[~res.calls["warmup"]]
    e = c[c["eligible"]]
    assert (e["outcome"] == "no_response").any()
    assert k["share_within_30.eligible"] == pytest.approx((e["response_time"].fillna(np.inf) <= 30).mean())
    assert k["share_within_30.eligible"] < (e["response_time"].dropna() <= 30).mean()


def test_every_kpi_has_one_glossary_entry(tmp_path):
    """Every KPI a run reports matches exactly one glossary pattern."""
    import re
    s = _three_tier(tmp_path)
    _, k = single_run(s, 4, 0)
    patterns = {name: re.compile("^" + re.sub(r"<[A-Za-z]+>", r"[^.]+", re.escape(name).replace(r"\<", "<")
                                               .replace(r"\>", ">")) + "$") for name in GLOSSARY}
    for metric in k:
        hits = [n for n, rx in patterns.items() if rx.match(metric)]
        assert len(hits) >= 1, f"KPI {metric} has no glossary entry"


def test_precision_can_target_the_paired_differences(scenario_path, tmp_path):
    """--precision on a comparison judged on the paired differences: it stops when every
    difference's half-width is within the target, which the stored KPIs confirm."""
    from sim.experiment import compare, precision_table
    co = [scenario_path("scenarios/template/police_only.yaml"), scenario_path("scenarios/template/co_responder.yaml")]
    over = {"horizon_days": 5, "warmup_days": 0}
    res = compare(co, replications=3, seed=7, overrides=over, precision=0.5, precision_on="differences",
                  precision_metrics=["police_hours"], max_replications=30, workers=1, out=tmp_path / "d")
    table = res.precision
    assert set(table["scenario"]) == {res.cells["scenario"].iloc[1]}     # differences: the baseline is not judged
    assert table["within"].all() and res.met
    # replayed from the per-replication KPIs: the paired difference's half-width is within 50%
    k = res.kpis[res.kpis["metric"] == "police_hours"].pivot(index="replication", columns="scenario", values="value")
    base, other = res.cells["scenario"].iloc[0], res.cells["scenario"].iloc[1]
    d = (k[other] - k[base]).to_numpy()
    from sim.metrics import t_interval
    m, lo, hi = t_interval(d)
    assert (hi - lo) / 2 <= 0.5 * abs(m) + 1e-12
    # each scenario's own mean is precise long before the difference is: judged on means,
    # the first 3 replications would already have been enough
    first = res.kpis[res.kpis["replication"] < 3]
    assert precision_table(first, 0.5, ["police_hours"])["within"].all()
    assert res.replications > 3
    # and the rule stops at the first prefix that meets the target
    prefix = res.kpis[res.kpis["replication"] < res.replications - 1]
    assert not precision_table(prefix, 0.5, ["police_hours"], base)["within"].all()


def test_eugene_summary_shows_eligible_response_by_responder(scenario_path, tmp_path):
    """The default comparison's summary.csv carries eligible-call response time per responder
    and the share reached within 30 minutes counting unanswered calls as misses."""
    import pandas as pd
    from sim.experiment import compare
    files = [scenario_path("scenarios/eugene/police_only.yaml"), scenario_path("scenarios/eugene/cahoots.yaml")]
    res = compare(files, replications=2, seed=3, overrides={"horizon_days": 7, "warmup_days": 1},
                  workers=1, out=tmp_path / "eugene")
    summary = pd.read_csv(tmp_path / "eugene" / "summary.csv")
    keys = list(res.cells["scenario"])
    have = {(r.scenario, r.metric) for r in summary.itertuples()}
    assert (keys[0], "response_time_p50.eligible.police") in have
    for m in ("response_time_p50.eligible.civilian", "response_time_p90.eligible.civilian",
              "response_time_p50.eligible.police", "share_within_30.eligible"):
        assert (keys[1], m) in have, m
    # the share counts every eligible call, answered or not, replayed from the stored log
    calls = res.calls[(res.calls["scenario"] == keys[1]) & res.calls["eligible"] & ~res.calls["proactive"]]
    per_rep = calls.groupby("replication").apply(
        lambda g: ((g["response_time"].fillna(np.inf) <= 30) & (g["responder"] != "remote")).sum()
        / (g["responder"] != "remote").sum())
    row = summary[(summary["scenario"] == keys[1]) & (summary["metric"] == "share_within_30.eligible")]
    assert float(row["mean"].iloc[0]) == pytest.approx(per_rep.mean(), rel=1e-9)
