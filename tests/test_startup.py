"""Fast start (issue 13, item 7): `--help`, `validate` and `schema` import only what they need;
the command table matches the commands the modules register. Speed itself is measured in
bench/bench_startup.py (docs/performance.md), not here."""
from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from sim.cli import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[1]
SIMULATION = {"pandas", "matplotlib", "simpy", "pyarrow", "dask", "scipy", "tqdm"}


def _imported(*args: str) -> set[str]:
    """Modules a fresh ``python ARGS`` imports (top-level package names and full names)."""
    p = subprocess.run([sys.executable, "-X", "importtime", *args], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    names = {line.split("|")[-1].strip() for line in p.stderr.splitlines()
             if line.startswith("import time:") and "|" in line}
    return names | {n.split(".")[0] for n in names}


def test_help_imports_no_third_party_library():
    loaded = _imported("-m", "sim", "--help")
    assert "sim.cli" in loaded
    assert not loaded & (SIMULATION | {"numpy", "pydantic", "yaml"}), loaded


@pytest.mark.parametrize("args", [
    ["validate", "scenarios/eugene/cahoots.yaml", "scenarios/richmond/ons.yaml"],
    ["schema"],
    ["run", "--help"],
])
def test_validate_and_schema_load_no_simulation_library(args):
    loaded = _imported("-m", "sim", *args)
    assert not loaded & SIMULATION, loaded & SIMULATION


def test_import_sim_is_lazy_and_every_public_name_resolves():
    loaded = _imported("-c", "import sim")
    assert not loaded & (SIMULATION | {"numpy", "pydantic"}), loaded
    import sim
    import sim.violence
    for name in sim.__all__:
        assert getattr(sim, name) is not None, name
    for name in sim.violence.__all__:
        assert getattr(sim.violence, name) is not None, name
    assert sim.load_scenario is importlib.import_module("sim.scenario").load_scenario
    assert sim.plots is importlib.import_module("sim.plots")
    assert sim.metrics is importlib.import_module("sim.metrics")     # submodules as after a plain import
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        sim.nothing


def test_the_command_table_is_what_the_modules_register():
    parser = build_parser()            # every module imported, every command real
    sub = parser._subparsers._group_actions[0]
    assert set(sub.choices) == set(COMMANDS)
    shown = {a.dest: a.help for a in sub._choices_actions}
    assert shown == {name: text for name, (_, text) in COMMANDS.items()}, \
        "a module's help line differs from its line in sim/cli.py COMMANDS (what `crisis-sim --help` shows)"
    for name, (module, _) in COMMANDS.items():
        alone = build_parser(only=name)._subparsers._group_actions[0].choices[name]
        assert alone.format_help() == sub.choices[name].format_help(), name


def test_a_command_parses_with_only_its_own_module_loaded():
    args = build_parser(only="sweep").parse_args(["sweep", "x.yaml", "--vary", "a=1,2"])
    assert args.vary == ["a=1,2"] and args.func.__module__ == "sim.experiment"
    args = build_parser(only="schema").parse_args(["schema", "--out", "s.json"])
    assert args.out == "s.json" and args.func.__module__ == "sim.schema"
