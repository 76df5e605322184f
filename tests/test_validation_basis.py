"""Validation that is not circular (issue 12): every target states its basis, a fitted
figure cannot pose as a prediction, the report's headline counts predictions only, the
Denver staffing levels share one demand, definitional checks hold as unit tests, and the
model-report documents (STRESS-DES, verification, sources) are complete."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sim
from sim import calibrate
from sim.basis import BASES, fitted_params, refers_to, resolve
from sim.calibrate import load_any, yaml_files
from sim.model import Model
from sim.scenario import ScenarioError, load_raw

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
DOCS = ROOT / "docs"
SHIPPED = yaml_files([SCENARIOS])
DENVER = [SCENARIOS / "denver" / f for f in ("star_2020.yaml", "star_2022.yaml", "star_2023.yaml")]


def rel(p: Path) -> str:
    return str(p.relative_to(SCENARIOS))


# --------------------------------------------------------------------------- every target has a basis


@pytest.mark.parametrize("path", SHIPPED, ids=rel)
def test_every_shipped_target_states_its_basis(path):
    s = load_any(path)
    for i, t in enumerate(s.targets):
        assert t.basis in BASES, f"{rel(path)} targets.{i} ({t.metric}) has no basis"
        assert t.basis != "definition", f"{rel(path)} targets.{i}: a definition is a unit test, not a target"
        if t.basis == "fitted":
            assert fitted_params(s, t), f"{rel(path)} targets.{i}: fitted, but no parameter is named"
        if t.basis == "predicted":
            assert not fitted_params(s, t)
    data = s.model_dump()
    for param, (low, high) in s.ranges.items():
        assert low <= resolve(data, param) <= high, f"{rel(path)}: ranges.{param} leaves out the file's value"


def test_a_sweep_may_go_beyond_a_range():
    s = sim.load_scenario(SCENARIOS / "denver/star_2022.yaml", {"pools.star.shifts.0.teams": 6})
    assert s.pools["star"].shifts[0].teams == 6 and s.ranges["pools.star.shifts.0.teams"] == (2, 4)


def test_there_are_predictions_and_consistency_checks():
    bases = [t.basis for p in SHIPPED for t in load_any(p).targets]
    assert bases.count("predicted") >= 10 and bases.count("fitted") >= 10 and bases.count("input") >= 5


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "x.yaml"
    p.write_text(f"extends: {SCENARIOS / 'validation/mmc.yaml'}\n" + text)
    return p


PREDICTED_BUT_FITTED = """
ranges: {}
calibrated:
  pools.team.teams: [utilisation.team=0.8]
targets:
  - metric: utilisation.team
    published: 0.8
    tolerance: 0.05
    source: a figure the team count was set to meet
    basis: predicted
    inputs: [pools.team.teams]
"""


def test_a_prediction_whose_input_was_calibrated_against_it_is_refused(tmp_path):
    p = _write(tmp_path, PREDICTED_BUT_FITTED)
    with pytest.raises(ScenarioError) as e:
        sim.load_scenario(p)
    msg = str(e.value)
    assert "\n" not in msg and str(p) in msg
    assert "targets.0: basis predicted, but its input pools.team.teams was calibrated against utilisation.team=0.8" in msg
    # the same file with the honest basis loads, and names the fitted parameter
    ok = sim.load_scenario(p, {"targets.0.basis": "fitted"})
    assert fitted_params(ok, ok.targets[0]) == ["pools.team.teams"]
    # a reference to another figure (outside the target's band) does not make it fitted
    other = sim.load_scenario(p, {"calibrated": {"pools.team.teams": ["utilisation.team=0.5"]}})
    assert not fitted_params(other, other.targets[0])


def test_a_prediction_is_refused_even_when_the_calibrated_input_is_not_named(tmp_path):
    p = _write(tmp_path, PREDICTED_BUT_FITTED.replace("    inputs: [pools.team.teams]\n", ""))
    with pytest.raises(ScenarioError, match=r"targets\.0: basis predicted, but pools\.team\.teams was calibrated"):
        sim.load_scenario(p)


@pytest.mark.parametrize("override, message", [
    ({"targets.0.basis": "fitted", "calibrated": {}},
     "targets.0: basis fitted, but no entry of calibrated: names utilisation.team=0.8"),
    ({"calibrated": {"pools.team.teamz": ["utilisation.team=0.8"]}},
     "calibrated.pools.team.teamz: 'pools.team.teamz' is not a field of this scenario"),
    ({"calibrated": {"pools.team.teams": ["utilisation.team"]}},
     "calibrated.pools.team.teams: 'utilisation.team' must name a figure as metric=value"),
    ({"targets.0.basis": "input", "targets.0.inputs": []}, "targets.0: basis input needs inputs:"),
    ({"targets.0.basis": "derived", "calibrated": {}, "ranges": {"pools.team.roles": [2, 8]}},
     "ranges.pools.team.roles: a range needs a number there"),
    ({"targets.0.basis": "guess"}, "targets.0.basis"),
])
def test_bad_basis_input_is_one_clear_line(tmp_path, override, message):
    p = _write(tmp_path, PREDICTED_BUT_FITTED)
    with pytest.raises(ScenarioError) as e:
        sim.load_scenario(p, override)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_bad_basis_input_exits_2_from_the_cli(tmp_path, capsys):
    from sim.cli import main
    p = _write(tmp_path, PREDICTED_BUT_FITTED)
    assert main(["validate", str(p)]) == 2
    err = capsys.readouterr().err
    assert "basis predicted" in err and "Traceback" not in err


def test_refers_to_uses_the_targets_band():
    t = sim.scenario.Target(metric="m", published=100, tolerance=10, source="s")
    assert refers_to("m=100", t) and refers_to("m=109", t)
    assert not refers_to("m=111", t) and not refers_to("n=100", t)


# --------------------------------------------------------------------------- the report's headline


def _table(rows):
    base = {"scenario": "s", "file": "f", "tolerance": 1.0, "ci_low": np.nan, "ci_high": np.nan,
            "replications": 1, "source": "src", "reason": "", "fitted_params": "", "inputs": ""}
    return pd.DataFrame([{**base, **r} for r in rows], columns=calibrate.COLUMNS)


def test_headline_counts_predicted_targets_only():
    table = _table([
        {"metric": "a", "published": 1, "mean": 1, "within": True, "verdict": "within", "required": True, "basis": "fitted"},
        {"metric": "b", "published": 1, "mean": 1, "within": True, "verdict": "within", "required": True, "basis": "input"},
        {"metric": "c", "published": 1, "mean": 1, "within": True, "verdict": "within", "required": False, "basis": "predicted"},
        {"metric": "d", "published": 1, "mean": 9, "within": False, "verdict": "outside", "required": False, "basis": "predicted"},
    ])
    text = calibrate.markdown(table, 1, None)
    first_bold = re.search(r"^\*\*(.+?)\*\*", text, re.M).group(1)
    assert first_bold == "1 of 2 predictions within tolerance"
    assert text.index("## Predictions") < text.index("## Consistency checks")
    assert "2 of 2 met (1 fitted, 1 input)" in text


def test_docs_calibration_headline_counts_the_shipped_predictions():
    text = (DOCS / "calibration.md").read_text(encoding="utf-8")
    m = re.search(r"^\*\*(\d+) of (\d+) predictions within tolerance\*\*", text, re.M)
    assert m, "docs/calibration.md must lead with the predictions"
    n_pred = sum(t.basis == "predicted" for p in SHIPPED for t in load_any(p).targets)
    assert int(m.group(2)) == n_pred
    rows = text.split("## Predictions", 1)[1].split("## Consistency checks", 1)[0]
    assert len(re.findall(r"^\| .* \| `", rows, re.M)) == n_pred


# --------------------------------------------------------------------------- Denver: one demand, three capacities


def test_denver_staffing_files_share_one_demand_file():
    for f in DENVER:
        chain, p = [], f
        while True:
            text = p.read_text()
            m = re.search(r"^extends:\s*(\S+)", text, re.M)
            if not m:
                break
            p = (p.parent / m.group(1)).resolve()
            chain.append(p.name)
        assert chain[-1] == "demand.yaml", f
        # the staffing files never redefine the calls
        for key in ("channels:", "call_types:", "zones:", "persons:"):
            assert not re.search(rf"^{key}", f.read_text(), re.M), f"{f.name} redefines {key}"


def test_denver_staffing_levels_see_the_same_calls():
    calls = [Model(sim.load_scenario(f, {"horizon_days": 7, "warmup_days": 1}), seed=3).run().calls for f in DENVER]
    a = calls[0]
    assert len(a) > 100
    for b in calls[1:]:
        assert len(a) == len(b)
        for col in ("t_received", "x_km", "y_km"):
            np.testing.assert_array_equal(a[col].to_numpy(float), b[col].to_numpy(float))
        for col in ("call_type", "zone"):
            assert (a[col].astype(str).to_numpy() == b[col].astype(str).to_numpy()).all()


def test_denver_share_served_rises_with_capacity():
    shares, hours = [], []
    for f in DENVER:
        s = sim.load_scenario(f, {"horizon_days": 28})
        summary = calibrate.simulate(s, 2, s.seed).set_index("metric")
        shares.append(float(summary.loc["pool_share.star", "mean"]))
        hours.append(s.pools["star"].schedule().team_minutes(0, 7 * 1440) / 60)
    assert hours == sorted(hours) and len(set(hours)) == 3
    assert shares[0] < shares[1] < shares[2], shares


# --------------------------------------------------------------------------- definitions, as unit tests


@pytest.mark.parametrize("program, counterfactual", [
    ("boston/ceasefire.yaml", "boston/ceasefire_counterfactual.yaml"),
    ("new_york/cure_violence_south_bronx.yaml", "new_york/cure_violence_south_bronx_counterfactual.yaml"),
    ("richmond/ons.yaml", "richmond/ons_counterfactual.yaml"),
])
def test_a_counterfactual_averts_nothing_and_is_the_programs_history(program, counterfactual):
    """What the counterfactual files' ``reduction 0 ± 0`` targets used to assert, and why
    their copies of the background targets were duplicates."""
    from sim.violence import load_violence_scenario
    from sim.violence.experiment import single_run
    short = {"horizon_days": 180, "warmup_days": 200}
    cf = single_run(load_violence_scenario(SCENARIOS / counterfactual, short), 4, 0)[3]
    prog = single_run(load_violence_scenario(SCENARIOS / program, short), 4, 0)[3]
    assert cf["reduction"] == 0.0 and cf["shootings"] == cf["counterfactual_shootings"] > 0
    assert prog["counterfactual_shootings"] == cf["counterfactual_shootings"]
    assert prog["shootings"] < prog["counterfactual_shootings"]
    assert load_violence_scenario(SCENARIOS / counterfactual).targets == []


# --------------------------------------------------------------------------- model-report documents

STRESS_DES = {   # Monks et al. 2019, STRESS-DES checklist: item -> name
    "1.1": "Purpose of the model", "1.2": "Model outputs", "1.3": "Experimentation aims",
    "2.1": "Base model overview diagram", "2.2": "Base model logic", "2.3": "Scenario logic",
    "2.4": "Algorithms", "2.5.1": "Entities", "2.5.2": "Activities", "2.5.3": "Resources",
    "2.5.4": "Queues", "2.5.5": "Entry/exit points",
    "3.1": "Data sources", "3.2": "Pre-processing", "3.3": "Input parameters", "3.4": "Assumptions",
    "4.1": "Initialisation", "4.2": "Run length", "4.3": "Estimation approach",
    "5.1": "Software or programming language", "5.2": "Random sampling", "5.3": "Model execution",
    "5.4": "System specification", "6.1": "Computer model sharing statement",
}


def test_stress_des_answers_every_checklist_item():
    text = (DOCS / "stress_des.md").read_text(encoding="utf-8")
    sections = re.split(r"^### ", text, flags=re.M)[1:]
    found = {}
    for sec in sections:
        head, _, body = sec.partition("\n")
        m = re.match(r"(\d+(?:\.\d+)+) (.+)", head.strip())
        if m:
            found[m.group(1)] = (m.group(2).strip(), body.strip())
    assert set(found) == set(STRESS_DES)
    for item, name in STRESS_DES.items():
        assert found[item][0] == name, item
        assert len(found[item][1]) > 40, f"STRESS-DES {item} has no real answer"


def test_verification_doc_lists_every_test_file():
    text = (DOCS / "verification.md").read_text(encoding="utf-8")
    for f in sorted((ROOT / "tests").glob("test_*.py")):
        assert f"`tests/{f.name}`" in text, f"docs/verification.md does not describe tests/{f.name}"


def test_sources_doc_keeps_every_source_the_issue_named_missing():
    text = (DOCS / "sources.md").read_text(encoding="utf-8")
    for name in ("Bouveng", "Sveriges Radio", "Norra Stockholms psykiatri", "City of Eugene", "KLCC",
                 "White Bird Clinic", "APTP", "Denver Gazette", "Denverite", "Willamette Week",
                 "National League of Cities", "Monks"):
        assert name in text, name


def test_every_shipped_file_loads_through_load_raw():
    # the new folders are found by calibrate-check's walk (and load as plain files)
    names = {rel(p) for p in SHIPPED}
    assert {"denver/demand.yaml", "eugene_2021/cahoots_2021.yaml", "portland_street_response/psr_2021.yaml"} <= names
    for p in SHIPPED:
        load_raw(p)


# --------------------------------------------------------------------------- predictions


def test_cahoots_2021_inherits_the_2019_fit_without_fitting_its_predictions():
    s = load_any(SCENARIOS / "eugene_2021/cahoots_2021.yaml")
    assert "pools.cahoots.on_scene_min" in s.calibrated            # the 2019 record comes along
    assert {t.basis for t in s.targets} == {"predicted"}
    assert all(not fitted_params(s, t) for t in s.targets)           # fitted to 24,000, not to 16,479


def test_validate_predictions_reports_intervals_and_keeps_the_notes(tmp_path):
    from sim.predictions import NOTES, predict_file, write_report
    p = _write(tmp_path, """
horizon_days: 5
warmup_days: 1
ranges:
  channels.911.volume.per_hour: [6, 9]
targets:
  - metric: utilisation.team
    published: 0.5
    tolerance: 0.05
    source: a figure an M/M/10 with 6-9 calls an hour of 60 min (60-90% busy) cannot meet
    basis: predicted
""")
    table = predict_file(p, replications=2, samples=6, seed=3)
    r = table.iloc[0]
    assert r["samples"] == 6 and r["pi_low"] < r["mean"] < r["pi_high"]
    assert 0.6 < r["pi_low"] < 0.75 and 0.85 < r["pi_high"] < 0.95      # 6/10 .. 9/10 busy
    assert r["verdict"] == "outside" and not r["covered"]
    out = tmp_path / "docs" / "validation.md"
    write_report(table, out, 2, 6)
    text = out.read_text()
    assert "**0 of 1 predictions within tolerance**" in text and (out.parent / "validation/predictions.png").exists()
    out.write_text(text.replace("(not written yet)", "a hand-written reason"))
    write_report(table, out, 2, 6)
    kept = out.read_text()
    assert "a hand-written reason" in kept.split(NOTES[0])[1] and "(not written yet)" not in kept
