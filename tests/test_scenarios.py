"""The program scenarios under scenarios/: they load and run, each counterfactual sees
exactly the program's calls, the calibration check passes for every required target and
fails when one is missed; plus the calibration KPIs of sim.metrics.program_kpis."""
from pathlib import Path

import numpy as np
import pytest

import sim
from sim import calibrate
from sim.metrics import kpis, program_kpis, zone_comparison
from sim.model import Model

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
ALL_FILES = calibrate.scenario_files([SCENARIOS])          # without kind: violence files


def rel(path: Path) -> str:
    return str(path.relative_to(SCENARIOS))


def program_pairs() -> list[tuple[Path, Path]]:
    """(program, counterfactual): each folder's police_only.yaml is the counterfactual of
    every other file there except the city base."""
    pairs = []
    for cf in sorted(SCENARIOS.glob("*/police_only.yaml")):
        for f in sorted(cf.parent.glob("*.yaml")):
            if f.name not in ("police_only.yaml", "city.yaml") and f in ALL_FILES:
                pairs.append((f, cf))
    return pairs


def short(path: Path, days: float = 3, **extra):
    if "scale" in Path(path).parts:     # synthetic big cities: a few hours hold thousands of calls
        days = min(days, 0.25)
    return sim.load_scenario(path, {"horizon_days": days, "warmup_days": 1, **extra})


# --------------------------------------------------------------------------- load and run


@pytest.mark.parametrize("path", ALL_FILES, ids=rel)
def test_every_scenario_loads_and_runs_a_short_horizon(path):
    s = short(path)
    res = Model(s, seed=11).run()
    c = res.calls
    assert len(c) > 0
    k = kpis(c, res.pools, s.horizon_days, res.facilities)
    assert k["calls"] > 0
    # every call that came in ended somewhere or is still open at the drain cap; none is lost
    finished = c["outcome"].isin(["resolved", "backup", "transport", "follow_up", "prevented"])
    assert finished.mean() > 0.9, c["outcome"].value_counts()


def test_every_program_has_a_counterfactual_and_targets():
    pairs = program_pairs()
    assert {p.parent.name for p, _ in pairs} == {
        "eugene", "portland", "dekalb", "los_angeles", "oakland", "sacramento", "stockholm", "template"}
    for program, _ in pairs:
        assert sim.load_scenario(program).targets, f"{rel(program)} has no targets"
    # the counterfactuals carry no alternative: every pool that can answer is police
    for _, cf in pairs:
        s = sim.load_scenario(cf)
        assert all(s.pool_is_police(p) for path in s.triage.paths.values() for p in path.all_pools()), rel(cf)


@pytest.mark.parametrize("program,counterfactual", program_pairs(), ids=lambda p: rel(p))
def test_counterfactual_shares_the_programs_calls(program, counterfactual):
    """Common random numbers: same seed, same calls, call by call."""
    a = Model(short(program, 7), seed=5).run().calls
    b = Model(short(counterfactual, 7), seed=5).run().calls
    a, b = a[~a["proactive"]], b[~b["proactive"]]           # outreach contacts are the program's own
    assert len(a) == len(b) > 0
    for col in ("t_received", "call_type", "channel", "zone", "x_km", "y_km", "person"):
        np.testing.assert_array_equal(a[col].astype(str if col in ("call_type", "channel", "zone") else float),
                                      b[col].astype(str if col in ("call_type", "channel", "zone") else float),
                                      err_msg=f"{rel(program)} vs {rel(counterfactual)}: {col}")
    assert b["police_pool"].where(b["pool"].notna(), True).all()   # the counterfactual is police only


# --------------------------------------------------------------------------- calibration

# Short-but-sufficient runs: horizons and replications chosen so that each required
# target's 95% interval is narrower than its tolerance band (counts of distinct people
# need the scenario's own year). Fixed seed: the same table every time.
CALIBRATION_RUNS = {
    "eugene/cahoots.yaml": (6, {"horizon_days": 91}),
    "portland/project_respond.yaml": (4, {"horizon_days": 91}),
    "portland/street_medicine.yaml": (3, {}),
    "dekalb/mobile_crisis.yaml": (4, {"horizon_days": 120}),
    "los_angeles/meu_smart.yaml": (4, {"horizon_days": 91}),
    "oakland/macro.yaml": (5, {"horizon_days": 28}),
    "sacramento/mh_first.yaml": (6, {}),
    "stockholm/pam.yaml": (4, {}),
}
SEED = 20240601


def test_every_program_with_required_targets_is_in_the_calibration_runs():
    required = {rel(p) for p, _ in program_pairs()
                if any(t.required for t in sim.load_scenario(p).targets)}
    assert required == set(CALIBRATION_RUNS)


@pytest.mark.parametrize("name", sorted(CALIBRATION_RUNS))
def test_required_targets_met(name):
    reps, overrides = CALIBRATION_RUNS[name]
    table = calibrate.calibrate([SCENARIOS / name], replications=reps, seed=SEED, overrides=overrides)
    assert len(table) == len(sim.load_scenario(SCENARIOS / name).targets)
    req = table[table["required"]]
    assert len(req) > 0
    missed = req[~req["within"]]
    assert missed.empty, missed[["metric", "published", "tolerance", "mean", "ci_low", "ci_high", "verdict"]]
    assert calibrate.passed(table)
    # a target the model cannot meet is listed with its reason, never dropped
    assert (table.loc[~table["required"], "reason"].str.len() > 0).all()


def test_calibration_fails_when_a_required_target_is_missed():
    """One CAHOOTS van instead of the 2019 schedule: far fewer calls than 24,000."""
    table = calibrate.calibrate([SCENARIOS / "eugene/cahoots.yaml"], replications=3, seed=SEED,
                                overrides={"horizon_days": 30,
                                           "pools.cahoots.shifts": [{"days": "daily", "start": "00:00",
                                                                     "end": "24:00", "teams": 1}]})
    row = table.set_index("metric").loc["pool_calls_per_year.cahoots"]
    assert row["verdict"] == "outside" and not row["within"]
    assert not calibrate.passed(table)


def test_calibrate_check_command_exit_code_and_report(tmp_path):
    path = str(SCENARIOS / "sacramento/mh_first.yaml")
    out = tmp_path / "calibration.md"
    assert calibrate.main([path, "-r", "6", "--seed", str(SEED), "--out", str(out), "--quiet"]) == 0
    text = out.read_text()
    assert "callback_time_mean" in text and "within" in text and "required targets met" in text
    # volunteers every evening instead of Friday nights: calls are returned within a day
    bad = calibrate.main([path, "-r", "3", "--seed", str(SEED), "--out", str(out), "--quiet",
                          "--set", 'pools.mh_first.shifts=[{days: daily, start: "18:00", end: "24:00", teams: 3}]'])
    assert bad == 1
    assert "CHECK FAILS" in out.read_text()


@pytest.mark.parametrize("published,tol,mean,lo,hi,expected", [
    (100, 10, 100, 95, 105, "within"),
    (100, 10, 100, 85, 115, "inconclusive"),     # interval straddles the band: run more
    (100, 10, 130, 125, 135, "outside"),
    (100, 10, 109, float("nan"), float("nan"), "within"),   # one replication: the mean alone
    (100, 10, 111, float("nan"), float("nan"), "outside"),
])
def test_verdict(published, tol, mean, lo, hi, expected):
    assert calibrate.verdict(published, tol, mean, lo, hi) == expected


def test_violence_files_are_left_out(tmp_path):
    (tmp_path / "ons.yaml").write_text("kind: violence\nname: x\n")
    (tmp_path / "ons_counterfactual.yaml").write_text("extends: ons.yaml\nname: z\n")
    (tmp_path / "city.yaml").write_text("name: y\n")
    assert [f.name for f in calibrate.scenario_files([tmp_path])] == ["city.yaml"]


# --------------------------------------------------------------------------- program KPIs


def test_program_kpis_count_pools_channels_and_zones():
    s = sim.load_scenario(ROOT / "tests/data/fixed.yaml")
    c = Model(s, seed=3).run().calls
    k = program_kpis(c, s.horizon_days)
    n = len(c)
    assert k["pool_calls.van"] == n and k["pool_share.van"] == 1.0
    assert k["pool_calls_per_year.van"] == pytest.approx(n * 365 / s.horizon_days)
    assert k["pool_calls_per_month.van.911"] == pytest.approx(n * 365 / 12 / s.horizon_days)
    assert k["pool_response_time_mean.van"] == pytest.approx(c["response_time"].mean())
    assert k["pool_no_police_rate.van"] == 1.0 and k["backups_per_year"] == 0
    for z in ("west", "east"):
        assert k[f"zone_calls_per_year.{z}"] == pytest.approx((c["zone"] == z).sum() * 365 / s.horizon_days)
        assert k[f"zone_response_time_mean.{z}"] == pytest.approx(c.loc[c["zone"] == z, "response_time"].mean())
    # fixed durations: processing 3 + turnout 2 + drive (1 km a minute) from the west base
    d = (c["x_km"] - 2).abs() + (c["y_km"] - 2).abs()
    np.testing.assert_allclose(c["response_time"], 5 + d, atol=1e-9)


def test_program_kpis_count_the_desk_sent_second_unit():
    s = short(SCENARIOS / "los_angeles/meu_smart.yaml", 5)
    c = Model(s, seed=2).run().calls
    k = program_kpis(c, s.horizon_days)
    m = c[~c["warmup"] & (c["outcome"] != "prevented")]
    assert k["pool_calls.smart"] == (m["second_pool"] == "smart").sum() > 0
    assert k["pool_calls.patrol"] == (m["pool"] == "patrol").sum()
    sent = m[m["second_pool"] == "smart"]
    assert k["pool_response_time_mean.smart"] == pytest.approx((sent["t_second_on_scene"] - sent["t_received"]).mean())


def test_oakland_pilot_zones_compared_with_the_rest():
    """MACRO's pilot zones against the rest, from the call log's zone column, program vs
    counterfactual with the same calls."""
    pilot = {"pilot": ["east", "west"]}
    frames = {}
    for name in ("macro", "police_only"):
        s = short(SCENARIOS / f"oakland/{name}.yaml", 5)
        frames[name] = zone_comparison(Model(s, seed=9).run().calls, pilot, s.horizon_days).set_index("group")
    m, p = frames["macro"], frames["police_only"]
    assert set(m.index) == {"pilot", "rest"}
    assert m.loc["pilot", "diversion_rate"] > 0 and m.loc["rest", "diversion_rate"] == 0
    assert m.loc["pilot", "eligible_diversion_rate"] > 0.2
    assert m.loc["rest", "eligible_diversion_rate"] == 0               # eligible, but no MACRO there
    assert (p["diversion_rate"] == 0).all()
    assert m.loc["pilot", "calls"] == p.loc["pilot", "calls"]          # same calls
    assert m.loc["pilot", "police_hours_per_year"] < p.loc["pilot", "police_hours_per_year"]
