"""`crisis-sim schema` (issue 13, item 6): the JSON Schema validates every shipped scenario and
rejects broken ones; the checked-in references are what the models generate."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from sim.cli import main
from sim.schema import json_schema, reference_markdown

ROOT = Path(__file__).resolve().parents[1]

def _is_scenario(path: Path) -> bool:
    """A scenario file names itself or its parent (optimize targets files live beside them)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return isinstance(data, dict) and ("name" in data or "extends" in data)


SCENARIOS = [p for p in sorted((ROOT / "scenarios").rglob("*.yaml")) if _is_scenario(p)]
STALE = "is stale: regenerate with `make docs` (crisis-sim schema --out docs/scenario.schema.json " \
        "--reference docs/scenario-reference.md --outputs docs/outputs.md)"


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    """The schema as the command writes it."""
    out = tmp_path_factory.mktemp("schema") / "scenario.schema.json"
    assert main(["schema", "--out", str(out)]) == 0
    return json.loads(out.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validator(schema):
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _load(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _errors(validator, data) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in validator.iter_errors(data)]


def test_the_schema_validates_every_shipped_scenario(validator):
    assert len(SCENARIOS) > 30
    bad = {str(p.relative_to(ROOT)): _errors(validator, _load(p)) for p in SCENARIOS}
    assert not {k: v for k, v in bad.items() if v}


def _mmc():
    return _load(ROOT / "scenarios/validation/mmc.yaml")


@pytest.mark.parametrize("break_it, where", [
    (lambda d: d.pop("horizon_days"), ""),                                       # required field
    (lambda d: d["pools"]["team"].update(teams="three"), "pools.team.teams"),   # wrong type
    (lambda d: d["pools"]["team"].update(teams=0), "pools.team.teams"),         # out of range
    (lambda d: d["pools"]["team"].update(teems=3), "pools.team"),               # misspelled field
    (lambda d: d["pools"]["team"].update(after_call="sometimes"), "pools.team.after_call"),  # not allowed
    (lambda d: d["pools"]["team"].update(on_scene_min={"default": {"lognormal": {"mean": 5}}}),
     "pools.team.on_scene_min.default"),                                          # sd missing
    (lambda d: d["call_types"]["crisis"].update(priority=1.5), "call_types.crisis.priority"),
])
def test_the_schema_rejects_a_broken_scenario(validator, break_it, where):
    data = _mmc()
    assert not _errors(validator, data)
    broken = copy.deepcopy(data)
    break_it(broken)
    errors = _errors(validator, broken)
    assert errors and any(e.startswith(f"{where}:") for e in errors), errors


def test_a_child_file_needs_no_required_field_but_still_no_unknown_one(validator):
    child = _load(ROOT / "scenarios/eugene/cahoots.yaml")
    assert "extends" in child and not _errors(validator, child)
    child["pools"]["cahoots"]["teems"] = 3
    assert _errors(validator, child)
    assert _errors(validator, {"name": "no extends, nothing else"})
    assert not _errors(validator, {"extends": "city.yaml", "name": "only a name"})


def test_durations_are_numbers_or_distributions(validator):
    data = _mmc()
    for ok in (45, {"exponential": {"mean": 60}}, {"lognormal": {"mean": 45, "sd": 30}, "max": 120}):
        data["pools"]["team"]["on_scene_min"]["default"] = ok
        assert not _errors(validator, data), ok
    for bad in (-5, "45", {"weibull": {"shape": 2}}):
        data["pools"]["team"]["on_scene_min"]["default"] = bad
        assert _errors(validator, data), bad


def test_checked_in_schema_and_reference_are_current(schema):
    from sim.columns import markdown
    docs = ROOT / "docs"
    assert json.loads((docs / "scenario.schema.json").read_text(encoding="utf-8")) == schema, \
        f"docs/scenario.schema.json {STALE}"
    assert (docs / "scenario-reference.md").read_text(encoding="utf-8") == reference_markdown(), \
        f"docs/scenario-reference.md {STALE}"
    assert (docs / "outputs.md").read_text(encoding="utf-8") == markdown(), f"docs/outputs.md {STALE}"


def _models():
    """Every pydantic model a scenario file can contain, found from the models themselves."""
    from pydantic import BaseModel

    from sim.overrides import _branches
    from sim.scenario import Scenario
    from sim.violence.schema import ViolenceScenario
    from typing import get_args

    seen: dict[str, type] = {}

    def visit(ann):
        for b in _branches(ann):
            if isinstance(b, type) and issubclass(b, BaseModel):
                if b.__name__ not in seen:
                    seen[b.__name__] = b
                    for f in b.model_fields.values():
                        visit(f.annotation)
            else:
                for a in get_args(b):
                    visit(a)
    visit(Scenario)
    visit(ViolenceScenario)
    return seen


def test_the_reference_has_every_field_of_every_model_with_its_unit_and_default():
    text = reference_markdown()
    sections = {s.split("\n", 1)[0]: s for s in text.split("\n## ")[1:]}
    for name, model in _models().items():
        assert name in sections, f"no section for {name}"
        for field in model.model_fields:
            assert f"| `{field}` |" in sections[name], f"{name}.{field} missing"

    def row(section, field):
        return next(r for r in sections[section].splitlines() if r.startswith(f"| `{field}` |"))
    assert "| days |" in row("Scenario", "horizon_days") and "**required**" in row("Scenario", "horizon_days")
    assert "| minutes |" in row("Pool", "on_scene_min")
    assert "| km/h |" in row("Travel", "speed_kmh") and "`40.0`" in row("Travel", "speed_kmh")
    assert "share 0–1" in row("Outcomes", "backup")
    assert "one of `stay`, `return_to_base`" in row("Pool", "after_call")
    assert "currency per hour" in row("Role", "hourly_cost")


def test_schema_command_prints_the_schema_by_default(capsys, schema):
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == schema


def test_schema_command_writes_all_three_files(tmp_path):
    files = [tmp_path / n for n in ("s.json", "ref.md", "out.md")]
    assert main(["schema", "--out", str(files[0]), "--reference", str(files[1]), "--outputs", str(files[2])]) == 0
    assert json.loads(files[0].read_text())["$schema"].startswith("http://json-schema.org/draft-07")
    assert files[1].read_text().startswith("# Scenario file reference")
    assert files[2].read_text().startswith("# Output files: data dictionary")


# --------------------------------------------------------------------------- an editor's view

def _language_server() -> str | None:
    import os
    import shutil
    return os.environ.get("YAML_LANGUAGE_SERVER") or shutil.which("yaml-language-server")


def _diagnostics(server: str, schema_path: Path, files: list[Path]) -> dict[str, list[str]]:
    """Open ``files`` in yaml-language-server (LSP over stdio) with the schema for *.yaml and
    collect the diagnostics it publishes for each."""
    import os
    import select
    import subprocess
    import time

    proc = subprocess.Popen([server, "--stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    buf = b""

    def send(msg):
        body = json.dumps({"jsonrpc": "2.0", **msg}).encode()
        proc.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        proc.stdin.flush()

    def receive(deadline):
        nonlocal buf
        while time.time() < deadline:
            head, sep, rest = buf.partition(b"\r\n\r\n")
            if sep:
                n = int(next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
                        .split(b":")[1])
                if len(rest) >= n:
                    buf = rest[n:]
                    return json.loads(rest[:n])
            if select.select([proc.stdout], [], [], 0.5)[0]:
                buf += os.read(proc.stdout.fileno(), 1 << 16)
        raise TimeoutError("yaml-language-server did not answer")

    settings = {"validate": True, "schemas": {schema_path.resolve().as_uri(): "*.yaml"},
                "schemaStore": {"enable": False}}
    deadline = time.time() + 60
    try:
        send({"id": 1, "method": "initialize", "params": {"processId": os.getpid(), "rootUri": None,
                                                           "capabilities": {"workspace": {"configuration": True}}}})
        while receive(deadline).get("id") != 1:
            pass
        send({"method": "initialized", "params": {}})
        send({"method": "workspace/didChangeConfiguration", "params": {"settings": {"yaml": settings}}})
        uris = {f.resolve().as_uri(): f.name for f in files}
        for f in files:
            send({"method": "textDocument/didOpen", "params": {"textDocument": {
                "uri": f.resolve().as_uri(), "languageId": "yaml", "version": 1, "text": f.read_text()}}})
        out: dict[str, list[str]] = {}
        while len(out) < len(files):
            m = receive(deadline)
            if "id" in m and "method" in m:            # the server asks for its settings
                items = m.get("params", {}).get("items", [])
                send({"id": m["id"], "result": [settings] * len(items) if items else None})
            elif m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] in uris:
                out[uris[m["params"]["uri"]]] = [d["message"] for d in m["params"]["diagnostics"]]
        return out
    finally:
        proc.kill()


@pytest.mark.skipif(_language_server() is None, reason="yaml-language-server not installed "
                    "(npm install yaml-language-server; or set YAML_LANGUAGE_SERVER)")
def test_an_editor_with_yaml_language_server_flags_only_the_broken_file(tmp_path):
    ok, bad = tmp_path / "ok.yaml", tmp_path / "bad.yaml"
    text = (ROOT / "scenarios/validation/mmc.yaml").read_text()
    ok.write_text(text)
    bad.write_text(text.replace("teams: 10", "teams: ten").replace("horizon_days: 60", "horizon_dayz: 60"))
    child = ROOT / "scenarios/eugene/cahoots.yaml"
    found = _diagnostics(_language_server(), ROOT / "docs/scenario.schema.json", [ok, bad, child])
    assert found["ok.yaml"] == [] and found["cahoots.yaml"] == []
    assert any("horizon_days" in m for m in found["bad.yaml"]) and any("horizon_dayz" in m for m in found["bad.yaml"])
    assert any("integer" in m for m in found["bad.yaml"]), found["bad.yaml"]
