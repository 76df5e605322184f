"""Planner workflow (issue 13, items 5 and 8): ``--set`` / ``--vary`` paths, one-line option
errors, output file modes, warm-up rows, labels."""
from __future__ import annotations

import copy
import os
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sim.cli import build_parser, main
from sim.scenario import ScenarioError, apply_overrides, load_scenario, parse_value

ROOT = Path(__file__).resolve().parents[1]
CAHOOTS = ROOT / "scenarios/eugene/cahoots.yaml"
MMCC = ROOT / "scenarios/validation/mmcc.yaml"

# a raw mapping (not validated): addressing is a matter of the paths alone
RAW = {"name": "t", "horizon_days": 1,
       "pools": {"van": {"roles": ["medic"], "shifts": [
           {"name": "day", "days": "daily", "start": "08:00", "end": "16:00", "teams": 1},
           {"name": "night", "days": "daily", "start": "16:00", "end": "24:00", "teams": 1}]},
                 "police": {"roles": ["officer"], "teams": 4}},
       "vehicles": {"vans": 2}}


def _err(overrides, data=RAW) -> str:
    with pytest.raises(ScenarioError) as e:
        apply_overrides(data, overrides, "f.yaml")
    text = str(e.value)
    assert "\n" not in text
    return text


# --------------------------------------------------------------------------- --set paths


def test_misspelled_pool_is_refused_naming_the_known_pools():
    with pytest.raises(ScenarioError) as e:
        load_scenario(CAHOOTS, ["pools.nosuch.teams=3"])
    text = str(e.value)
    assert text.startswith(f"{CAHOOTS}: pools.nosuch.teams: no 'nosuch' in pools")
    assert "cahoots" in text and "police" in text and "\n" not in text


def test_cli_misspelled_pool_one_line_exit_2(capsys):
    assert main(["validate", str(CAHOOTS), "--set", "pools.nosuch.teams=3"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "no 'nosuch' in pools (it has: police, cahoots)" in err[0]


@pytest.mark.parametrize("form", ["pools.cahoots.shifts.+={item}", "pools.cahoots.shifts+={item}"])
def test_appending_a_shift(form):
    item = "{days: weekdays, start: 07:00, end: 11:00, teams: 2}"
    before = load_scenario(CAHOOTS).pools["cahoots"].shifts
    after = load_scenario(CAHOOTS, [form.format(item=item)]).pools["cahoots"].shifts
    assert after[:-1] == before and len(after) == len(before) + 1
    new = after[-1]
    assert (new.days, new.start, new.end, new.teams) == ("weekdays", "07:00", "11:00", 2)


def test_list_items_by_index_negative_index_and_name():
    out = apply_overrides(RAW, ["pools.van.shifts.night.teams=3", "pools.van.shifts.0.end=17:00",
                                "pools.van.shifts.-1.start=17:00"])
    day, night = out["pools"]["van"]["shifts"]
    assert (day["end"], night["start"], night["teams"]) == ("17:00", "17:00", 3)
    assert RAW["pools"]["van"]["shifts"][1]["teams"] == 1          # the input is not changed


def test_removing_items_by_name_and_index_and_entries_by_key():
    out = apply_overrides(RAW, ["pools.van.shifts-=day"])
    assert [s["name"] for s in out["pools"]["van"]["shifts"]] == ["night"]
    out = apply_overrides(RAW, ["pools.van.shifts-=-1", "vehicles-=vans"])
    assert [s["name"] for s in out["pools"]["van"]["shifts"]] == ["day"] and out["vehicles"] == {}
    assert "no 'trucks' in vehicles (it has: vans)" in _err(["vehicles-=trucks"])


def test_bad_list_addresses_name_the_choices():
    assert "'dusk' is not an index or a name of the list at pools.van.shifts; it has indexes 0..1" \
           " (or -1 for the last), names: day, night" in _err(["pools.van.shifts.dusk.teams=2"])
    assert "'2' is not an index" in _err(["pools.van.shifts.2.teams=2"])


def test_new_entries_only_with_plus_equals():
    text = _err(["vehicles.trucks=3"])
    assert "no 'trucks' in vehicles (it has: vans); add one with vehicles+={trucks: ...}" in text
    out = apply_overrides(RAW, ["vehicles+={trucks: 3}"])
    assert out["vehicles"] == {"vans": 2, "trucks": 3}
    assert "vehicles already has 'vans'" in _err(["vehicles+={vans: 5}"])
    assert "no 'crisis' in pools" in _err(["pools.crisis.shifts+={days: daily}"])


def test_schema_fields_absent_from_the_file_can_be_set():
    out = apply_overrides(RAW, ["warmup_days=3", "pools.van.base_zone=north", "travel.speed_kmh=50"])
    assert out["warmup_days"] == 3 and out["pools"]["van"]["base_zone"] == "north"
    assert out["travel"] == {"speed_kmh": 50}
    # a list field the file leaves out can be appended to (validation then judges the result)
    assert apply_overrides(RAW, ["pools.police.shifts+={days: daily}"])["pools"]["police"]["shifts"] == [
        {"days": "daily"}]


def test_misspelled_field_is_named_by_validation_with_the_allowed_fields():
    with pytest.raises(ScenarioError, match=r"unknown field 'teems'; allowed: .*teams"):
        load_scenario(CAHOOTS, ["pools.cahoots.teems=3"])


def test_setting_inside_a_scalar_says_to_set_it_whole():
    assert "pools.police.teams is 4, not a mapping or a list; set it whole" in _err(["pools.police.teams.x=1"])
    assert "pools.police.teams is 4, not a list or a mapping" in _err(["pools.police.teams+=1"])


def test_overrides_apply_in_order_and_dict_form_takes_operators():
    data = copy.deepcopy(RAW)
    out = apply_overrides(data, {"pools.van.shifts+": {"name": "late", "teams": 1},
                                 "pools.van.shifts.late.teams": 4})
    assert out["pools"]["van"]["shifts"][-1] == {"name": "late", "teams": 4}
    assert data == RAW


def test_values_are_yaml_1_2():
    assert parse_value("13:00") == "13:00"          # YAML 1.1 reads 780
    assert parse_value("yes") == "yes" and parse_value("off") == "off"
    assert parse_value("true") is True and parse_value("") is None and parse_value("null") is None
    assert parse_value("1e5") == 100000.0 and parse_value("3") == 3 and parse_value("-0.5") == -0.5
    assert parse_value("2024-01-01") == "2024-01-01"
    assert parse_value('[1, "13:00", {a: 13:30}]') == [1, "13:00", {"a": "13:30"}]
    assert parse_value("{a: [") == "{a: ["          # not YAML: the text itself


def test_help_examples_work_on_the_shipped_file():
    examples = {}
    for name, parser in build_parser()._subparsers._group_actions[0].choices.items():
        for action in parser._actions:
            if "--set" in action.option_strings and "e.g." in (action.help or ""):
                examples[name] = action.help.split("e.g.")[1].split()[0]
    assert {"run", "validate", "compare", "sweep"} <= set(examples)
    for example in set(examples.values()):
        assert load_scenario(CAHOOTS, [example]).name.endswith(f"({example})")


# --------------------------------------------------------------------------- --vary


def test_vary_with_a_misspelled_pool_stops_before_running(tmp_path, capsys):
    from sim.experiment import sweep
    with pytest.raises(ScenarioError, match=r"pools.crisis_teem.teams: no 'crisis_teem' in pools \(it has: "):
        sweep(MMCC, ["pools.crisis_teem.teams=1,2"], replications=1, out=tmp_path / "s")
    rc = main(["sweep", str(MMCC), "--vary", "pools.crisis_teem.teams=1,2", "-r", "1", "--quiet",
               "--out", str(tmp_path / "s2")])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert rc == 2 and len(err) == 1 and "no 'crisis_teem' in pools" in err[0]


def test_vary_appends_and_addresses_by_index():
    from sim.experiment import parse_vary
    vary = parse_vary(["pools.van.shifts+={name: a, teams: 1},{name: b, teams: 2}", "pools.van.shifts.0.start=07:00,09:00"])
    assert vary == {"pools.van.shifts+": [{"name": "a", "teams": 1}, {"name": "b", "teams": 2}],
                    "pools.van.shifts.0.start": ["07:00", "09:00"]}
    out = apply_overrides(RAW, {"pools.van.shifts+": vary["pools.van.shifts+"][1]})
    assert out["pools"]["van"]["shifts"][-1]["name"] == "b"


# --------------------------------------------------------------------------- options


def _commands() -> list[str]:
    return list(build_parser()._subparsers._group_actions[0].choices)


def test_every_bad_option_of_every_command_is_one_line_exit_2(capsys):
    cases = [["--frobnicate"]] + [[c, "--frobnicate"] for c in _commands()]
    cases += [["run", str(MMCC), "--replications", "many"], ["no-such-command"], []]
    for argv in cases:
        with pytest.raises(SystemExit) as e:
            main(argv)
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert e.value.code == 2, argv
        assert len(lines) == 1 and lines[0].startswith("error: crisis-sim"), (argv, lines)


def test_option_error_from_the_shell_is_one_line_without_traceback():
    p = subprocess.run([sys.executable, "-m", "sim", "run", str(MMCC), "-r", "x"], capture_output=True,
                       text=True, cwd=ROOT, timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert p.stderr.startswith("error: crisis-sim run: argument --replications/-r: ") and "'x'" in p.stderr
    assert p.stderr.strip().endswith("(see crisis-sim run --help)")


# --------------------------------------------------------------------------- outputs (item 8)

DEKALB = ROOT / "scenarios/dekalb/mobile_crisis.yaml"
SHORT = ["horizon_days=3", "warmup_days=1"]


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A small `crisis-sim run` (facilities, persons, a warm-up) written under umask 022."""
    out = tmp_path_factory.mktemp("run") / "dekalb"
    old = os.umask(0o022)
    try:
        assert main(["run", str(DEKALB), "-r", "2", "--workers", "1", "--quiet", "--out", str(out),
                     *[a for s in SHORT for a in ("--set", s)]]) == 0
    finally:
        os.umask(old)
    return out


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_output_files_are_readable_by_group_and_others_under_umask_022(run_folder):
    files = _files(run_folder)
    assert {"calls.parquet", "assignments.parquet", "summary.csv", "manifest.json",
            "facilities.parquet"} <= {p.name for p in files}
    for p in files:
        assert stat.S_IMODE(p.stat().st_mode) == 0o644, (p, oct(p.stat().st_mode))


def test_a_results_store_is_readable_by_group_and_others_under_umask_022(tmp_path):
    from sim.experiment import compare
    old = os.umask(0o022)
    try:
        compare([DEKALB], replications=1, overrides=SHORT, workers=1, out=tmp_path / "cmp")
    finally:
        os.umask(old)
    files = _files(tmp_path / "cmp")
    assert any(p.suffix == ".parquet" for p in files) and any(p.name == "summary.csv" for p in files)
    for p in files:
        assert stat.S_IMODE(p.stat().st_mode) & 0o044 == 0o044, (p, oct(p.stat().st_mode))
    for d in [p for p in (tmp_path / "cmp").rglob("*") if p.is_dir()]:
        assert stat.S_IMODE(d.stat().st_mode) & 0o055 == 0o055, (d, oct(d.stat().st_mode))


def test_output_files_honour_a_private_umask(tmp_path):
    from sim.results import write_csv, write_text
    old = os.umask(0o077)
    try:
        write_text(tmp_path / "a.txt", "x")
        write_csv(tmp_path / "b.csv", pd.DataFrame({"x": [1]}))
    finally:
        os.umask(old)
    assert [stat.S_IMODE((tmp_path / n).stat().st_mode) for n in ("a.txt", "b.csv")] == [0o600, 0o600]


def test_every_column_written_is_in_the_data_dictionary(run_folder, tmp_path):
    from sim import columns
    from sim.experiment import compare
    compare([DEKALB], replications=1, overrides=SHORT, workers=1, out=tmp_path / "cmp")
    written = {}
    for folder in (run_folder, tmp_path / "cmp"):
        for p in folder.iterdir():
            if p.suffix == ".parquet":
                written[p.name] = list(pd.read_parquet(p).columns)
            elif p.suffix == ".csv":
                written[p.name] = list(pd.read_csv(p).columns)
            elif p.is_dir() and p.name != "resolved":      # a store table: partitioned parquet
                name = {"kpis": "kpis.csv", "runs": "runs/"}.get(p.name, f"{p.name}.parquet")
                assert name in columns.TABLES, f"store table {p.name}/ is not in sim/columns.py"
                written[name] = list(pd.read_parquet(p).columns)
    assert {"calls.parquet", "assignments.parquet", "pools.parquet", "hourly.parquet", "facilities.parquet",
            "occupancy.parquet", "kpis.csv", "summary.csv", "cells.csv", "runs/"} <= set(written)
    missing = [f"{t}: {c}" for t, cols in written.items() for c in cols if c not in columns.TABLES[t][1]]
    assert not missing, "not described in sim/columns.py: " + ", ".join(missing)


def test_missing_values_are_nulls_not_minus_one(run_folder):
    from sim.columns import nullify
    calls = pd.read_parquet(run_folder / "calls.parquet")
    assert calls["person"].isna().all()                  # DeKalb's calls carry no person ids
    assert calls["backup_unit"].isna().any() and calls["unit"].notna().any()
    for c in ("person", "unit", "tier", "backup_unit", "second_unit"):
        assert not (calls[c] == -1).any(), c
    assert calls.loc[calls["pool"].isna(), "unit"].isna().all()
    engine = pd.DataFrame({"person": [-1, 7, 0], "unit": [2, -1, 0], "x_km": [-1.0, 2.0, 3.0]})
    out = nullify(engine)
    assert out["person"].tolist() == [pd.NA, 7, 0] and out["unit"].tolist() == [2, pd.NA, 0]
    assert out["x_km"].tolist() == [-1.0, 2.0, 3.0] and engine["person"].tolist() == [-1, 7, 0]


def test_res_calls_leaves_the_warm_up_out():
    import sim
    s = load_scenario(DEKALB, SHORT)
    res = sim.run(s, replications=1, workers=1)
    warm = s.warmup_days * 1440
    assert len(res.calls_all) > len(res.calls) > 0
    assert (res.calls["t_received"] >= warm).all() and not res.calls["warmup"].any()
    assert (res.calls_all["t_received"] < warm).any()
    c = res.calls
    assert res.kpi("calls") == len(c[(c["outcome"] != "prevented") & ~c["proactive"]])  # what the KPIs count


def test_the_scenario_label_is_the_name_plus_the_overrides_everywhere(run_folder, tmp_path):
    import json
    from sim.experiment import compare
    label = "DeKalb — mobile crisis unit (RN + officer) (horizon_days=3, warmup_days=1)"
    assert load_scenario(DEKALB, SHORT).name == label
    assert set(pd.read_csv(run_folder / "summary.csv")["scenario"]) == {label}
    assert set(pd.read_parquet(run_folder / "calls.parquet")["scenario"].astype(str)) == {label}
    assert json.loads((run_folder / "manifest.json").read_text())["scenarios"] == [label]
    res = compare([DEKALB], replications=1, overrides=SHORT, workers=1, out=tmp_path / "cmp")
    assert list(res.cells["name"]) == [label]
    assert json.loads((tmp_path / "cmp" / "manifest.json").read_text())["scenarios"] == [label]
    # a name set by the overrides is the label as written
    assert load_scenario(DEKALB, ["name=Two vans", "horizon_days=3"]).name == "Two vans"


def test_every_description_that_states_a_wait_matches_its_file():
    """A description saying 'within N minutes' (the wait before police take the call) must say
    the first tier's wait of the program's path (Eugene said 45 while the file waits 60)."""
    import re
    checked = 0
    for path in sorted((ROOT / "scenarios").rglob("*.yaml")):
        if not re.search(r"within\s+\d+\s+minutes", path.read_text(encoding="utf-8")):
            continue
        try:
            s = load_scenario(path)
        except ScenarioError:
            continue                      # violence files and partial parents
        stated = {int(m) for m in re.findall(r"within\s+(\d+)\s+minutes", s.description)}
        if not stated:
            continue
        waits = {int(w) for p in s.triage.paths.values() for w in p.waits()[:-1] if w is not None}
        assert stated <= waits, (path, stated, waits)
        checked += 1
    assert checked >= 1
