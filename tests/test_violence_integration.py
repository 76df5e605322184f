"""Violence scenarios run through the same experiments, results store, CLI and report as
the crisis-response side."""
from pathlib import Path

import pandas as pd

import sim
from sim import report
from sim.cli import main

ROOT = Path(__file__).resolve().parents[1]
ONS = ROOT / "scenarios" / "richmond" / "ons.yaml"
CF = ROOT / "scenarios" / "richmond" / "ons_counterfactual.yaml"
SHORT = {"horizon_days": 365, "warmup_days": 365}


def test_compare_program_with_counterfactual_in_the_store(tmp_path):
    res = sim.compare([CF, ONS], replications=3, seed=5, overrides=SHORT, out=tmp_path / "cmp", workers=1)
    k = res.kpis.pivot_table(index=["scenario", "replication"], columns="metric", values="value")
    # common random numbers: both see the same no-program history, replication by replication
    pd.testing.assert_series_equal(k.loc["ons_counterfactual", "counterfactual_shootings"],
                                   k.loc["ons", "counterfactual_shootings"])
    # averted counts are exact: the program's shootings are the counterfactual's minus those averted
    ons = k.loc["ons"]
    assert (ons["shootings"] == ons["counterfactual_shootings"] - ons["shootings_averted"]).all()
    d = res.differences.set_index("metric").loc["shootings"]
    assert d["mean"] < 0 and d["ci_high"] < 0
    stored = res.shootings
    assert set(stored["scenario"].astype(str)) == {"ons_counterfactual", "ons"}
    assert stored.loc[stored["scenario"].astype(str) == "ons", "cancelled"].any()


def test_report_reads_violence_compare_and_grid(tmp_path):
    assert main(["compare", str(CF), str(ONS), "-r", "2", "--seed", "3", "--quiet", "--workers", "1",
                 "--set", "horizon_days=365", "--set", "warmup_days=365", "--out", str(tmp_path / "cmp")]) == 0
    assert main(["violence", "grid", str(ONS), "-r", "2", "--set", "horizon_days=365",
                 "--set", "warmup_days=365", "--out", str(tmp_path / "grid")]) == 0
    out = tmp_path / "report.html"
    report.build_report([tmp_path / "cmp", tmp_path / "grid"], out)
    html = out.read_text(encoding="utf-8")
    assert "fewer" in html and "shootings" in html and "retaliations averted" in html
    assert "if violence is barely contagious (n = 0.1)" in html
    assert 'alt="Sensitivity: ' in html
    assert "no longer validates" not in html


def test_calibrate_check_covers_violence_targets():
    from sim import calibrate
    table = calibrate.calibrate([ONS], replications=3, seed=2)
    assert set(table["metric"]) >= {"counterfactual_deaths_per_year", "reduction"}
    assert (table["scenario"] == sim.load_violence_scenario(ONS).name).all()
    assert table["mean"].notna().all()
