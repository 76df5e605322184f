"""Violence scenario files: bad input stops at the boundary with one clear line; the
shipped scenarios load, run a short horizon, and their counterfactuals cancel nothing."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from sim.scenario import ScenarioError
from sim.violence import load_violence_scenario, plot_sensitivity, run_violence, sensitivity_grid

SCEN = Path(__file__).resolve().parents[1] / "scenarios"
ONS = str(SCEN / "richmond/ons.yaml")
SCENARIOS = [
    (SCEN / "richmond/ons.yaml", SCEN / "richmond/ons_counterfactual.yaml"),
    (SCEN / "new_york/cure_violence_south_bronx.yaml",
     SCEN / "new_york/cure_violence_south_bronx_counterfactual.yaml"),
    (SCEN / "boston/ceasefire.yaml", SCEN / "boston/ceasefire_counterfactual.yaml"),
]
SHORT = ["horizon_days=120", "warmup_days=200"]


@pytest.mark.parametrize("overrides, expected", [
    (["contagion.branching_ratio=1.2"],
     "contagion.branching_ratio (line 45): Input should be less than 1 (got 1.2)"),
    # a new key has no line of its own: the line is its mapping's (the key 'contagion:' on
    # line 44, or its first field on 45, depending on how sim.scenario records mappings)
    (["contagion.branchng=0.3"],
     "contagion.branchng (line 4?): unknown field 'branchng'; allowed: branching_ratio, fast, fatality_share, slow"),
    (["contagion.fast.weight=0.5"],
     "contagion (line 4?): fast.weight + slow.weight must add up to 1 (they add up to 1.2)"),
    (["programs.fellowship.staff=nobody"],
     "programs.fellowship.staff (line 75): unknown staff pool 'nobody'; allowed: change_agents"),
    (["kind=crisis"], "kind (line 6): a violence scenario starts with kind: violence (got 'crisis')"),
    (["programs.responses.scene.travel_min={lognormal: {mean: 20}}"],
     "programs.responses.scene.travel_min.lognormal.sd (line 70): required field is missing"),
    (["targets.1.reason=null"], "targets.1 (line 90): a target with required: false needs a reason"),
    (["targets.0.published=[47, 35]"], "targets.0 (line 84): published range [47, 35] must be [low, high]"),
    (["staff.change_agents.workers=1"],
     "staff.change_agents.shifts (line 54): up to 2 on shift but only 1 workers"),
    (["programs.canvassing={staff: change_agents, areas: [downtown], full_coverage_hours_per_week: 10, effect: 0.2}"],
     "programs.canvassing.areas.0 (line 64): unknown area 'downtown'; allowed: central, iron_triangle, north, south"),
    (["targets.0.published=[1, 2, 3]"], "targets.0 (line 84): published must be a number or a range [low, high]"),
    (["horizon_days"], "--set 'horizon_days' must look like field.path=value"),
])
def test_bad_input_is_one_clear_line(overrides, expected):
    with pytest.raises(ScenarioError) as e:
        load_violence_scenario(ONS, overrides)
    pattern = re.escape(f"{ONS}: {expected}").replace(r"line\ 4\?", r"line (44|45)")
    assert re.fullmatch(pattern, str(e.value)), str(e.value)
    assert "\n" not in str(e.value)


def test_crisis_file_is_refused_with_a_hint():
    mmc = SCEN / "validation/mmc.yaml"
    with pytest.raises(ScenarioError) as e:
        load_violence_scenario(mmc)
    assert str(e.value) == f"{mmc}: kind: a violence scenario starts with kind: violence"


def test_broken_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: violence\nname: x\nhorizon_days: 10\ngroups: {}\ncontagion: {branching_ratio: 0.3}\n")
    with pytest.raises(ScenarioError) as e:
        load_violence_scenario(bad)
    assert str(e.value) == f"{bad}: groups (line 4): Dictionary should have at least 1 item after validation, not 0"


@pytest.mark.parametrize("program, counterfactual", SCENARIOS)
def test_shipped_scenarios_load_and_run(program, counterfactual):
    s = load_violence_scenario(program, SHORT)
    cf = load_violence_scenario(counterfactual, SHORT)
    assert s.programs is not None and cf.programs is None
    assert s.targets and all(t.source for t in s.targets)
    assert any(t.required for t in s.targets)
    res = run_violence(s, replications=2, seed=1)
    none = run_violence(cf, replications=2, seed=1)
    assert res.kpi("counterfactual_shootings") > 0
    assert res.kpi("shootings") + res.kpi("shootings_averted") == res.kpi("counterfactual_shootings")
    # the counterfactual file is the program's own no-program history
    assert none.kpi("shootings_averted") == 0
    assert (res.shootings["time_min"].to_numpy() == none.shootings["time_min"].to_numpy()).all()
    table = res.targets()
    assert set(table["metric"]) == {t.metric for t in s.targets}
    assert set(table["verdict"]) <= {"within", "outside", "inconclusive"}


def test_grid_and_chart():
    s = load_violence_scenario(ONS, SHORT)
    grid = sensitivity_grid(s, n_values=(0.1, 0.5), e_values=(0.0, 1.0), replications=2, seed=1)
    assert set(grid.columns) >= {"scenario", "n", "e", "metric", "mean", "ci_low", "ci_high", "replications"}
    averted = grid[grid["metric"] == "retaliations_averted"].set_index(["n", "e"])["mean"]
    # same histories along e: e = 1 averts more retaliations than e = 0
    assert averted.loc[(0.5, 1.0)] >= averted.loc[(0.5, 0.0)]
    fig = plot_sensitivity(grid)
    ax = fig.axes[0]
    assert ax.get_title() and "per year" in ax.get_ylabel() and "0-1" in ax.get_xlabel()
    assert s.name in fig.get_supxlabel() and "2 replications" in fig.get_supxlabel()


def test_grid_needs_a_response_program():
    s = load_violence_scenario(SCEN / "boston/ceasefire.yaml", SHORT)
    with pytest.raises(ValueError, match="has no response program 'scene'"):
        sensitivity_grid(s, replications=1)


@pytest.mark.parametrize("program, counterfactual", SCENARIOS)
def test_required_targets_are_met(program, counterfactual):
    """The published figures each file marks required (baseline counts, the program's
    headline range where the file claims it), at the file's own horizon and seed."""
    for path in (program, counterfactual):
        res = run_violence(load_violence_scenario(path), replications=10)
        table = res.targets()
        missed = table[table["required"] & ~table["within"]]
        assert missed.empty, missed[["metric", "published", "tolerance", "mean", "ci_low", "ci_high"]].to_string()
