"""Every broken scenario stops at load with one line: file, field, line, what is allowed.

Table-driven: each case edits a valid base scenario (or writes raw text) and names the
field and the words the message must contain.
"""
import copy
import subprocess
import sys

import pytest
import yaml

from sim.scenario import ScenarioError, load_scenario

BASE = {
    "name": "Base",
    "horizon_days": 5,
    "roles": {"medic": {"hourly_cost": 40}, "officer": {"hourly_cost": 80, "sworn": True}},
    "call_types": {"welfare": {"priority": 3}, "violent": {"priority": 1}},
    "zones": {"north": {"share": 0.5, "rect_km": [0, 0, 5, 5]}, "south": {"share": 0.5, "rect_km": [0, 5, 5, 9]}},
    "travel": {"model": "manhattan", "speed_kmh": 40},
    "channels": {"911": {"volume": {"per_day": 50}, "mix": {"welfare": 0.7, "violent": 0.3}}},
    "triage": {"paths": {
        "alt": {"call_types": ["welfare"], "pools": ["van", "police"], "max_wait_min": 15},
        "police_only": {"call_types": ["violent"], "pools": ["police"]}}},
    "pools": {
        "van": {"roles": ["medic"], "shifts": [{"days": "daily", "start": "13:00", "end": "21:00", "teams": 2}],
                "vehicles": "vans", "base_zone": "north",
                "on_scene_min": {"default": {"lognormal": {"mean": 45, "sd": 30}}},
                "outcomes": {"default": {"resolved": 0.95, "backup": 0.01, "transport": 0.04}},
                "transport": {"destinations": {"crisis_center": 0.8, "ed": 0.2}, "consent": 0.9}},
        "police": {"roles": ["officer"], "teams": 5, "on_scene_min": {"default": 40}}},
    "vehicles": {"vans": 2},
    "facilities": {"crisis_center": {"beds": 6, "zone": "north", "divert_to": "ed",
                                     "length_of_stay_min": {"lognormal": {"mean": 1000, "sd": 400}, "max": 1440}},
                   "ed": {"zone": "south"}},
    "backup": {"pool": "police"},
}


def setp(d, path, value):
    d = copy.deepcopy(d)
    node = d
    parts = path.split(".")
    for p in parts[:-1]:
        node = node[int(p)] if isinstance(node, list) else node[p]
    if value is DELETE:
        del node[parts[-1]]
    elif isinstance(node, list):
        node[int(parts[-1])] = value
    else:
        node[parts[-1]] = value
    return d


DELETE = object()

CASES = [
    # (id, edit path, value, expected field in message, expected words)
    ("unknown top-level key", "bogus", 1, "bogus", "unknown field 'bogus'; allowed:"),
    ("unknown pool key", "pools.van.teamz", 2, "pools.van.teamz", "allowed: after_call"),
    ("missing name", "name", DELETE, "name", "required field is missing"),
    ("negative horizon", "horizon_days", -3, "horizon_days", "greater than 0"),
    ("priority zero", "call_types.welfare.priority", 0, "call_types.welfare.priority", "greater than 0"),
    ("mix not summing to one", "channels.911.mix", {"welfare": 0.5, "violent": 0.3}, "channels.911.mix", "add up to 1"),
    ("mix names unknown type", "channels.911.mix", {"welfare": 0.7, "robbery": 0.3}, "channels.911.mix.robbery",
     "unknown call type 'robbery'; allowed: violent, welfare"),
    ("two volume units", "channels.911.volume", {"per_day": 5, "per_year": 100}, "channels.911.volume", "exactly one of per_year"),
    ("profile wrong length", "channels.911.profile", {"hourly": [1] * 100}, "channels.911.profile.hourly", "at least 168"),
    ("shift bad clock", "pools.van.shifts.0.end", "25:00", "pools.van.shifts.0.end", "HH:MM"),
    ("shift equal start end", "pools.van.shifts.0.end", "13:00", "pools.van.shifts.0", "start and end are equal"),
    ("shift bad day", "pools.van.shifts.0.days", "funday", "pools.van.shifts.0.days", "'daily', 'weekdays'"),
    ("teams and shifts", "pools.van.teams", 3, "pools.van", "either teams: N"),
    ("unknown distribution", "pools.van.on_scene_min.default", {"weibull": {"k": 2}}, "pools.van.on_scene_min.default.weibull",
     "allowed: empirical, exponential"),
    ("lognormal without sd", "pools.van.on_scene_min.default", {"lognormal": {"mean": 45}},
     "pools.van.on_scene_min.default.lognormal.sd", "required field is missing"),
    ("two distributions", "pools.van.on_scene_min.default", {"fixed": 3, "exponential": {"mean": 4}},
     "pools.van.on_scene_min.default", "exactly one of"),
    ("outcomes not summing", "pools.van.outcomes.default", {"resolved": 0.5, "backup": 0.1}, "pools.van.outcomes.default",
     "must add up to 1"),
    ("no default on scene", "pools.van.on_scene_min", {"welfare": 30}, "pools.van", "needs a 'default' entry"),
    ("path names unknown pool", "triage.paths.alt.pools", ["van", "cops"], "triage.paths.alt.pools.1",
     "unknown pool 'cops'; allowed: police, van"),
    ("type on two paths", "triage.paths.police_only.call_types", ["violent", "welfare"],
     "triage.paths.police_only.call_types.1", "already on path 'alt'"),
    ("type on no path", "triage.paths.police_only.call_types", [], "triage.paths", "call type 'violent' is on no path"),
    ("path zone unknown", "triage.paths.alt.zones", ["north", "west"], "triage.paths.alt.zones.1",
     "unknown zone 'west'; allowed: north, south"),
    ("pilot path leaves a zone uncovered", "triage.paths.alt.zones", ["north"], "triage.paths",
     "call type 'welfare' has no path in zone(s) south"),
    ("max wait list length", "triage.paths.alt.max_wait_min", [10], "triage.paths.alt", "1 values for 2 pools"),
    ("negative max wait", "triage.paths.alt.max_wait_min", -5, "triage.paths.alt.max_wait_min", "greater than or equal to 0"),
    ("unknown vehicle pool", "pools.van.vehicles", "trucks", "pools.van.vehicles", "unknown vehicle pool 'trucks'; allowed: vans"),
    ("unknown base zone", "pools.van.base_zone", "east", "pools.van.base_zone", "unknown zone 'east'; allowed: north, south"),
    ("unknown role", "pools.van.roles", ["medic", "wizard"], "pools.van.roles.1", "unknown role 'wizard'"),
    ("zone shares", "zones.north.share", 0.9, "zones", "zone shares must add up to 1"),
    ("rect upside down", "zones.north.rect_km", [5, 5, 0, 0], "zones.north.rect_km", "x1 >= x0"),
    ("geometry without rect", "zones.north.rect_km", None, "zones.north.rect_km", "needs rect_km for every zone"),
    ("travel model unknown", "travel.model", "teleport", "travel.model", "'none', 'manhattan', 'euclidean' or 'matrix'"),
    ("backup without pool", "backup", DELETE, "backup", "no backup: {pool: NAME}"),
    ("misroute to unknown path", "triage.paths.alt.misroute", {"to": "nowhere", "probability": 0.1},
     "triage.paths.alt.misroute.to", "unknown path 'nowhere'; allowed: police_only"),
    ("misroute probability > 1", "triage.paths.alt.misroute", {"to": "police_only", "probability": 1.5},
     "triage.paths.alt.misroute.probability", "between 0 and 1"),
    ("vehicle count zero", "vehicles.vans", 0, "vehicles.vans", "greater than 0"),
    ("string where number", "pools.police.teams", "many", "pools.police.teams", "valid integer"),
    ("consult with unknown desk", "triage.paths.police_only.consult",
     {"desk": "meu", "second_pool": "van", "p_second": 0.5}, "triage.paths.police_only.consult.desk", "unknown desk 'meu'"),
    ("transport to unknown facility", "pools.van.transport.destinations", {"jail": 1.0},
     "pools.van.transport.destinations.jail", "unknown facility 'jail'; allowed: crisis_center, ed"),
    ("transport without destinations", "pools.van.transport", DELETE, "pools.van.transport", "no transport:"),
    ("divert without target", "facilities.crisis_center.divert_to", DELETE, "facilities.crisis_center",
     "when_full: divert needs divert_to"),
    ("divert to itself", "facilities.crisis_center.divert_to", "crisis_center", "facilities.crisis_center.divert_to",
     "unknown facility 'crisis_center'; allowed: ed"),
    ("consent above one", "pools.van.transport.consent", 2, "pools.van.transport.consent", "less than or equal to 1"),
    ("identified without persons", "channels.911.identified", 0.5, "channels.911.identified", "no persons"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_broken_scenario_message(tmp_path, case):
    _, path, value, field, words = case
    f = tmp_path / "broken.yaml"
    f.write_text(yaml.safe_dump(setp(BASE, path, value), sort_keys=False))
    with pytest.raises(ScenarioError) as err:
        load_scenario(f)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(str(f)), msg
    assert err.value.field == field, msg
    assert words in msg, msg


def test_base_is_valid(tmp_path):
    f = tmp_path / "ok.yaml"
    f.write_text(yaml.safe_dump(BASE))
    assert load_scenario(f).name == "Base"


def test_message_names_the_line(tmp_path):
    f = tmp_path / "broken.yaml"
    text = yaml.safe_dump(setp(BASE, "pools.van.shifts.0.end", "25:00"), sort_keys=False)
    f.write_text(text)
    with pytest.raises(ScenarioError) as err:
        load_scenario(f)
    line = next(i for i, l in enumerate(text.splitlines(), 1) if "25:00" in l)
    assert err.value.line == line and f"(line {line})" in str(err.value)


@pytest.mark.parametrize("text,words", [
    ("name: [unclosed\n", "not valid YAML"),
    ("- just\n- a list\n", "must be a mapping"),
    ("extends: missing.yaml\nname: x\n", "file 'missing.yaml' not found"),
    ("name: x\nhorizon_days: !!python/object:os.system ls\n", "not valid YAML"),   # safe loading
])
def test_raw_file_errors(tmp_path, text, words):
    f = tmp_path / "raw.yaml"
    f.write_text(text)
    with pytest.raises(ScenarioError) as err:
        load_scenario(f)
    assert words in str(err.value)


def test_extends_cycle(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\nname: a\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\nname: b\n")
    with pytest.raises(ScenarioError, match="cycle"):
        load_scenario(tmp_path / "a.yaml")


def test_extends_merges_and_reports_child_file(tmp_path):
    (tmp_path / "city.yaml").write_text(yaml.safe_dump(BASE))
    (tmp_path / "more.yaml").write_text("extends: city.yaml\nname: More vans\nvehicles: {vans: 4}\n"
                                        "pools:\n  van:\n    shifts:\n      - {days: daily, start: '10:00', end: '22:00', teams: 3}\n")
    s = load_scenario(tmp_path / "more.yaml")
    assert s.name == "More vans" and s.vehicles["vans"] == 4
    assert s.pools["van"].schedule().max_teams == 3 and s.pools["van"].vehicles == "vans"  # merged, not replaced
    (tmp_path / "bad.yaml").write_text("extends: city.yaml\npools:\n  van:\n    base_zone: east\n")
    with pytest.raises(ScenarioError) as err:
        load_scenario(tmp_path / "bad.yaml")
    assert str(err.value).startswith(str(tmp_path / "bad.yaml")) and err.value.line == 4


def test_set_override_errors(tmp_path):
    f = tmp_path / "ok.yaml"
    f.write_text(yaml.safe_dump(BASE))
    with pytest.raises(ScenarioError, match="must look like field.path=value"):
        load_scenario(f, ["pools.van.teams"])
    with pytest.raises(ScenarioError, match="not an index"):
        load_scenario(f, ["pools.van.shifts.x.teams=3"])
    assert load_scenario(f, ["pools.police.teams=9"]).pools["police"].teams == 9


def test_cli_bad_file_exit_2_one_line_no_traceback(tmp_path):
    f = tmp_path / "broken.yaml"
    f.write_text(yaml.safe_dump(setp(BASE, "pools.van.vehicles", "trucks")))
    for cmd in (["validate", str(f)], ["run", str(f), "-r", "1", "--quiet", "--out", str(tmp_path / "o")]):
        p = subprocess.run([sys.executable, "-m", "sim", *cmd], capture_output=True, text=True)
        assert p.returncode == 2
        assert "Traceback" not in p.stderr
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        assert lines == [f"error: {f}: pools.van.vehicles (line {_line(f, 'trucks')}): "
                         "unknown vehicle pool 'trucks'; allowed: vans"], p.stderr
    assert not (tmp_path / "o").exists()


def _line(f, needle):
    return next(i for i, l in enumerate(f.read_text().splitlines(), 1) if needle in l)
