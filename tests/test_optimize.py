"""crisis-sim optimize: the cheapest roster whose targets hold at a stated confidence.

Small problems only (a 10-day M/M/c, a 7-day peaked city): the suite budget is tight.
"""
import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import sim
from analytic import erlang_b as ref_erlang_b
from analytic import erlang_c as ref_erlang_c
from analytic import mmc_mean_wait
from sim import optimize as opt
from sim.cli import main
from sim.store import Store

MMC = "scenarios/validation/mmc.yaml"
PEAKED = "tests/data/optimize_peaked.yaml"
WAIT = 8.0                       # minutes: M/M/c mean wait target (8 calls/h, 60 min service)
MMC_SPEC = {"decisions": [{"pool": "team", "blocks": {"hours": 24}, "min": 1, "max": 13}],
            "targets": [{"kpi": "response_time_mean", "at_most": WAIT}],
            "overrides": {"horizon_days": 10, "warmup_days": 1},
            "search": {"start": "upper"}}       # walk down from 13: the search, not the formula, decides
PEAKED_SPEC = {"decisions": [{"pool": "crisis", "blocks": {"hours": 6}, "min": 0, "max": 10}],
               "targets": [{"kpi": "fallback_rate", "at_most": 0.10}]}


def _yaml(path, spec):
    import yaml
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def mmc_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("mmc")
    return opt.optimize(MMC, MMC_SPEC, out / "run", workers=1), out


@pytest.fixture(scope="module")
def peaked_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("peaked") / "run"
    return opt.optimize(PEAKED, PEAKED_SPEC, out, workers=1)


# --------------------------------------------------------------------------- formulas


def test_queueing_formulas_match_the_reference_ones():
    for c, a in [(1, 0.5), (5, 3.2), (10, 8.0), (30, 24.5)]:
        assert opt.erlang_b(c, a) == pytest.approx(ref_erlang_b(c, a), rel=1e-12)
        assert opt.erlang_c(c, a) == pytest.approx(ref_erlang_c(c, a), rel=1e-12)
        assert opt.mean_wait(c, a, 60.0) == pytest.approx(mmc_mean_wait(c, a / 60.0, 60.0), rel=1e-12)
    assert opt.wait_exceeds(10, 8.0, 0.0, 60.0) == pytest.approx(ref_erlang_c(10, 8.0))
    # analytic start for a mean-wait target: the smallest c with W_q(c) <= W
    c = opt.hourly_requirement(8.0, 60.0, None, [opt.TargetSpec(kpi="response_time_mean", at_most=WAIT)])
    assert mmc_mean_wait(c, 8 / 60, 60) <= WAIT < mmc_mean_wait(c - 1, 8 / 60, 60)


def test_pattern_cover_is_the_cheapest_integer_cover():
    import itertools
    hours = np.zeros((3, 6), bool)
    hours[0, 0:3] = hours[1, 2:5] = hours[2, 4:6] = True      # three overlapping patterns
    req = np.array([2, 1, 3, 2, 4, 1])
    cost = np.array([3.0, 3.0, 2.0])
    x = opt.cover(req, hours, cost, np.zeros(3), np.full(3, 5.0))
    best = min((float(cost @ np.array(y)), y) for y in itertools.product(range(6), repeat=3)
               if (hours.T.astype(int) @ np.array(y) >= req).all())
    assert float(cost @ x) == best[0] and (hours.T.astype(int) @ x >= req).all()


# --------------------------------------------------------------------------- must hold


def test_single_block_mmc_returns_the_erlang_c_minimal_c(mmc_run):
    res, _ = mmc_run
    c_star = next(c for c in range(9, 20) if mmc_mean_wait(c, 8 / 60, 60) <= WAIT)
    assert res.status == "optimal"
    assert res.x == (c_star,)
    # c* - 1 was screened and found wanting; nothing cheaper was accepted
    ev = res.evaluations
    below = ev[(ev["x.block.team.00:00-24:00"] == c_star - 1) & (ev["stage"] == "screening")]
    assert len(below) == 1 and below["response_time_mean"].iloc[0] > WAIT


def test_the_confirmation_replays_from_the_stored_replications(mmc_run):
    """The stated bound is the one-sided t bound of the confirmation replications in the store."""
    res, _ = mmc_run
    key = res.evaluations.loc[res.evaluations["stage"] == "confirmation", "roster"].iloc[-1]
    k = pd.concat([Store(f, [key]).read("kpis") for f in (res.out / "evals").glob("s20201027-*")])
    x = k[(k["scenario"].astype(str) == key) & (k["metric"] == "response_time_mean")]["value"].to_numpy()
    row = res.kpis[res.kpis["kpi"] == "response_time_mean"].iloc[0]
    n, alpha = len(x), (1 - 0.95) / (1 * 3)           # Bonferroni over 1 target x 3 looks
    upper = x.mean() + stats.t.ppf(1 - alpha, n - 1) * x.std(ddof=1) / math.sqrt(n)
    assert n == row["replications"] and row["one_sided"] == pytest.approx(upper)
    assert upper <= WAIT and row["holds"]


def test_returned_roster_holds_in_an_independent_long_run(peaked_run):
    res = peaked_run
    assert res.status == "optimal"
    s = sim.load_scenario(res.scenario_file)          # the written scenario loads and runs
    shifts = {f"{e.start}-{e.end}": e.teams for e in s.pools["crisis"].shifts}
    assert shifts == {r.item: r.value for r in res.roster.itertuples() if r.value}
    ind = sim.run(s, replications=30, seed=424242, workers=1)       # fresh streams
    x = ind.kpis.loc[ind.kpis["metric"] == "fallback_rate", "value"].to_numpy()
    lo = x.mean() - stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    # the independent 95% interval does not lie above the target
    assert lo <= 0.10, f"independent run: fallback {x.mean():.4f}, 95% low {lo:.4f} > 0.10"
    assert x.mean() <= 0.10 + 0.5 * x.std(ddof=1)


def test_peaked_demand_is_cheaper_than_the_cheapest_uniform_roster(peaked_run):
    res = peaked_run
    sw = sim.sweep(PEAKED, {"pools.crisis.teams": [5, 6, 7, 8, 9]}, replications=8, seed=99,
                   workers=1, keep_calls=False)
    mean = sw.summary.pivot_table(index="pools.crisis.teams", columns="metric", values="mean")
    meets = mean[mean["fallback_rate"] <= 0.10]      # by its mean: generous to the uniform roster
    assert len(meets), mean["fallback_rate"]
    n = int(meets.index.min())
    assert res.cost < mean.loc[n, "cost_per_year"]
    assert res.roster["value"].sum() * 6 < n * 24        # fewer crew-hours a day, too


def test_infeasible_targets_end_with_one_line_naming_the_target(tmp_path, capsys):
    spec = dict(MMC_SPEC, decisions=[{"pool": "team", "blocks": {"hours": 24}, "min": 1, "max": 9}])
    code = main(["optimize", MMC, "--targets", str(_yaml(tmp_path / "t.yaml", spec)),
                 "--out", str(tmp_path / "o"), "--workers", "1", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1, err
    assert "response_time_mean <= 8" in err[0] and "best value reached" in err[0]
    best = float(err[0].split("best value reached ")[1].split()[0])
    assert best > WAIT                                 # c = 9: about 39 minutes (Erlang C)
    assert json.loads((tmp_path / "o" / "result.json").read_text())["status"] == "infeasible"


@pytest.mark.parametrize("bad, needle", [
    ({"pool": "nosuch", "blocks": {"hours": 4}, "max": 3}, "unknown pool 'nosuch'"),
    ({"pool": "team", "blocks": {"hours": 5}, "max": 3}, "hours must divide 24"),
    ({"pool": "team", "max": 3}, "needs either blocks"),
    ({"vehicles": "vans", "min": 0, "max": 3}, "min >= 1"),
])
def test_bad_targets_file_is_one_line_and_exit_2(tmp_path, capsys, bad, needle):
    spec = dict(MMC_SPEC, decisions=[bad])
    code = main(["optimize", MMC, "--targets", str(_yaml(tmp_path / "t.yaml", spec)),
                 "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and needle in err[0] and "t.yaml" in err[0], err


def test_unknown_kpi_is_one_line_and_exit_2(tmp_path, capsys):
    spec = dict(MMC_SPEC, targets=[{"kpi": "share_within_99.nonsense", "at_least": 0.5}])
    code = main(["optimize", MMC, "--targets", str(_yaml(tmp_path / "t.yaml", spec)),
                 "--out", str(tmp_path / "o"), "--quiet", "--workers", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no KPI named 'share_within_99.nonsense'" in err[0]


KILLED = """
import sys
from sim import optimize as opt
spec = {spec!r}
opt.optimize(sys.argv[1], spec, sys.argv[2], workers=1)
"""


def _ok_events(out) -> pd.DataFrame:
    frames = []
    for folder in (out / "evals").iterdir():
        log = Store(folder, []).read_log()
        if len(log):
            frames.append(log[log["event"] == "ok"].assign(folder=folder.name))
    return pd.concat(frames, ignore_index=True)


def test_killed_and_rerun_gives_the_same_roster_recomputing_nothing(mmc_run, scenario_path):
    ref, tmp = mmc_run
    out = tmp / "killed"
    proc = subprocess.Popen([sys.executable, "-c", KILLED.format(spec=MMC_SPEC), MMC, str(out)],
                            start_new_session=True, cwd=scenario_path("."))
    try:
        deadline = time.monotonic() + 300          # a loaded machine is slow to start the child
        while proc.poll() is None and time.monotonic() < deadline:
            if (out / "evals").exists() and len(list((out / "evals").rglob("runs/*/*/*/part-0.parquet"))) >= 8:
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = _ok_events(out)
    assert 0 < len(before) < ref.replications, "the kill should land part-way"
    res = opt.optimize(MMC, MMC_SPEC, out, workers=1)
    assert res.x == ref.x and res.status == "optimal" and res.cost == pytest.approx(ref.cost)
    oks = _ok_events(out)
    # no replication finished twice, and together the sessions did exactly the uninterrupted work
    assert not oks.duplicated(["folder", "scenario", "replication"]).any()
    assert len(oks) == ref.replications == res.replications
    assert res.computed == ref.replications - len(before)


# --------------------------------------------------------------------------- pieces


def test_roster_is_written_as_shift_entries_and_vehicles(scenario_path):
    spec = opt.OptimizeSpec.model_validate({
        "decisions": [{"pool": "cahoots", "blocks": {"hours": 6, "over": "week"}, "min": 0, "max": 3},
                      {"vehicles": "cahoots_vans", "min": 1, "max": 5}],
        "targets": [{"kpi": "fallback_rate", "at_most": 0.2}]})
    vs = opt.variables(spec)
    assert len(vs) == 7 * 4 + 1 and vs[5].label == "tue 06:00-12:00"
    raw, _ = sim.scenario.load_raw(scenario_path("scenarios/eugene/cahoots.yaml"))
    x = tuple(i % 4 for i in range(28)) + (2,)
    s = sim.scenario.validate(opt.apply_roster(raw, vs, x))
    per_hour = s.pools["cahoots"].schedule().hourly()        # crews on duty per hour of the week
    expected = np.repeat(np.array(x[:-1], float), 6)
    assert np.array_equal(per_hour, expected) and s.vehicles["cahoots_vans"] == 2


def test_block_kpis_are_the_kpis_of_the_calls_received_in_each_block(scenario_path):
    s = sim.load_scenario(scenario_path(PEAKED), ["horizon_days=3"])
    res = sim.run(s, replications=1, seed=3, workers=1)
    t = opt.TargetSpec(kpi="fallback_rate", at_most=0.2, per_block={"hours": 6})
    got = opt.block_kpis(res.calls, res.pools, s, [t])
    c = res.calls[~res.calls["warmup"] & res.calls["eligible"]]
    hour = (c["t_received"] // 60 % 24).astype(int)
    for b, lab in enumerate(["00:00-06:00", "06:00-12:00", "12:00-18:00", "18:00-24:00"]):
        sel = c[(hour >= 6 * b) & (hour < 6 * b + 6)]
        assert got[f"fallback_rate@{lab}"] == pytest.approx((sel["tier"] > 0).mean())   # a later tier answered


def test_outputs_are_written(peaked_run):
    out = peaked_run.out
    for name in ("roster.csv", "kpis.csv", "scenario.yaml", "frontier.csv", "frontier.png",
                 "evaluations.csv", "result.json", "optimize.md", "optimize.jsonl"):
        assert (out / name).stat().st_size > 0, name
    f = pd.read_csv(out / "frontier.csv")
    assert f["cost_per_year"].is_monotonic_increasing and f["fallback_rate"].is_monotonic_decreasing
    info = json.loads((out / "result.json").read_text())
    assert info["status"] == "optimal" and sum(info["roster"].values()) == peaked_run.roster["value"].sum()


def test_budget_stops_the_search_with_one_line(tmp_path, capsys):
    code = main(["optimize", MMC, "--targets", str(_yaml(tmp_path / "t.yaml", MMC_SPEC)), "--budget", "5",
                 "--out", str(tmp_path / "o"), "--workers", "1", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "budget of 5 replications" in err[0]
    info = json.loads((tmp_path / "o" / "result.json").read_text())
    assert info["status"] == "budget" and info["replications"] <= 5


def test_patterns_become_shift_entries_and_per_block_targets_one_goal_per_block(scenario_path):
    spec = opt.OptimizeSpec.model_validate({
        "decisions": [{"pool": "crisis", "min": 0, "max": 4, "patterns": [
            {"name": "day", "start": "07:00", "end": "15:00"},
            {"name": "night", "days": "weekends", "start": "23:00", "end": "07:00"}]}],
        "targets": [{"kpi": "fallback_rate", "at_most": 0.2, "per_block": {"hours": 8, "over": "week"}},
                    {"kpi": "share_within_30.eligible", "at_least": 0.8}]})
    vs = opt.variables(spec)
    raw, _ = sim.scenario.load_raw(scenario_path(PEAKED))
    s = sim.scenario.validate(opt.apply_roster(raw, vs, (3, 2)))
    per_hour = s.pools["crisis"].schedule().hourly().reshape(7, 24)
    assert per_hour[0, 7:15].tolist() == [3] * 8 and per_hour[0, 15:23].sum() == 0
    assert per_hour[5, 23] == 2 and per_hour[6, 3] == 2 and per_hour[0, 3] == 2    # Sun 23:00 -> Mon 07:00
    assert per_hour[4, 23] == 0 and per_hour[1, 3] == 0                             # no Fri/Tue nights
    g = opt.goals(spec)
    assert len(g) == 7 * 3 + 1 and str(g[4]) == "fallback_rate@tue 08:00-16:00 <= 0.2"
    assert g[0].holds(float("nan")) and not g[-1].holds(float("nan"))   # a block with no calls is no miss


def test_the_report_has_a_section_for_the_optimised_roster(peaked_run, tmp_path):
    """`crisis-sim report OPT_DIR` puts the roster, its cost, each target with its bound and
    the frontier chart in the brief."""
    from sim.report import build_report
    out = build_report([peaked_run.out], tmp_path / "report.html")
    page = out.read_text(encoding="utf-8")
    assert "Smallest roster meeting the targets" in page
    assert f"{peaked_run.cost:,.0f}" in page                       # the cost, as the result states it
    for r in peaked_run.roster.itertuples():                       # every decision and its value
        assert f"<td>{r.value}</td>" in page
    assert page.count("data:image/png;base64,") >= 1               # the frontier chart, embedded
    holds = ["yes" if h else "no" for h in peaked_run.kpis.loc[peaked_run.kpis["target"] != "objective", "holds"]]
    assert all(f"<td>{h}</td>" in page for h in holds)
