"""crisis-sim sensitivity: one-at-a-time screening over ranges: under common random
numbers ranks a deliberately dominant input first; Latin-hypercube input samples."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.scenario import ScenarioError
from sim.sensitivity import sample_inputs, tornado

MMC = Path(__file__).resolve().parents[1] / "scenarios" / "validation" / "mmc.yaml"
RANGES = """
horizon_days: 10
warmup_days: 1
ranges:
  channels.911.volume.per_hour: [6.5, 9.2]                  # dominant: load 6.5 -> 9.2 erlangs on 10 teams
  pools.team.on_scene_min.default.exponential.mean: [58, 62]   # small
  roles.responder.hourly_cost: [10, 90]                     # moves no time at all
  pools.team.teams: [9.6, 10.4]                             # an integer: rounds to 10 both ends
"""


@pytest.fixture
def small(tmp_path) -> Path:
    p = tmp_path / "mmc_ranges.yaml"
    p.write_text(f"extends: {MMC}\n{RANGES}")
    return p


def test_tornado_ranks_the_dominant_input_first(small):
    t = tornado(small, ["response_time_mean", "utilisation.team"], replications=2, seed=5)
    for kpi in ("response_time_mean", "utilisation.team"):
        g = t[t["kpi"] == kpi].set_index("input")
        assert g["rank"].idxmin() == "channels.911.volume.per_hour", g
        assert g.loc["channels.911.volume.per_hour", "at_high"] > g.loc["channels.911.volume.per_hour", "at_low"]
    rt = t[t["kpi"] == "response_time_mean"].set_index("input")
    # common random numbers: an input no process reads leaves the KPI exactly unchanged
    assert rt.loc["roles.responder.hourly_cost", "swing"] == 0.0
    assert rt.loc["roles.responder.hourly_cost", "at_low"] == rt.loc["roles.responder.hourly_cost", "at_value"]
    # an integer input is rounded: 9.6 and 10.4 are both 10 teams, so nothing moves
    assert rt.loc["pools.team.teams", "low"] == rt.loc["pools.team.teams", "high"] == 10
    assert rt.loc["pools.team.teams", "swing"] == 0.0


def test_sensitivity_command_writes_table_and_chart(small, tmp_path, capsys):
    from sim.cli import main
    out = tmp_path / "out"
    assert main(["sensitivity", str(small), "--kpi", "response_time_mean", "-r", "1", "--out", str(out),
                 "--quiet"]) == 0
    assert (out / "sensitivity.csv").exists() and (out / "tornado_response_time_mean.png").stat().st_size > 1000
    assert " 1. channels.911.volume.per_hour" in capsys.readouterr().out


def test_sensitivity_without_ranges_is_one_line_exit_2(capsys):
    from sim.cli import main
    assert main(["sensitivity", str(MMC)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ranges" in err


def test_latin_hypercube_points_cover_each_range_once_per_stratum():
    ranges = {"a": (0.0, 10.0), "b": (100.0, 200.0)}
    pts = sample_inputs(ranges, {"a": 1.0, "b": 150.0}, 20, seed=7)
    for k, (lo, hi) in ranges.items():
        x = np.array([p[k] for p in pts])
        assert ((x >= lo) & (x <= hi)).all()
        strata = np.floor((x - lo) / (hi - lo) * 20).astype(int)
        assert sorted(strata) == list(range(20))       # one point in each twentieth
    assert sample_inputs(ranges, {"a": 1.0, "b": 150.0}, 20, seed=7) == pts   # reproducible


def test_set_takes_every_form_the_other_commands_take():
    """sensitivity / validate-predictions read --set through sim.overrides.pairs: appends and
    removals pass through, and a malformed item is the same one-line error."""
    import pytest
    from sim.scenario import ScenarioError
    from sim.sensitivity import parse_sets
    assert parse_sets(["a.b=1", "pools.x.shifts+={teams: 1}", "pools.x.shifts-=day"]) == {
        "a.b": 1, "pools.x.shifts+": {"teams": 1}, "pools.x.shifts-": "day"}
    with pytest.raises(ScenarioError, match="must look like field.path=value"):
        parse_sets(["nonsense"], "f.yaml")
