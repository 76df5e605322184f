"""Issue 14: nothing that validates may crash, hang or lie; no fault may lose or mix results.

Every case of the issue's "Why" is a fixture file under tests/data/bad/ (most extend
base.yaml with one change) and a row of CASES: the command runs in a forked child with a
time limit (SIGALRM) and an address-space cap (RLIMIT_AS), and must end as a one-line error
with the expected exit code and words, or run correctly. Faults (two writers, a full disk,
kill -9, a read-only folder, corrupt report inputs) have their own tests.
"""
from __future__ import annotations

import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import zlib
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
BAD = ROOT / "tests" / "data" / "bad"
MEM_HEADROOM = 2 * 1024 ** 3          # bytes a case may add to the test process's address space


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def run_limited(argv: list[str], timeout: float = 60, cwd: Path | None = None,
                env: dict | None = None) -> tuple[int | str, str, str]:
    """``crisis-sim ARGV`` in a forked child under a time limit and a memory cap.

    Returns (exit code, or 'timeout' / 'signal N', stdout, stderr). A traceback escaping
    ``main`` is exit code 99 with the traceback on stderr.
    """
    from sim.cli import main
    out_f, err_f = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    cap = _vm_size() + MEM_HEADROOM
    pid = os.fork()
    if pid == 0:                                     # child
        rc = 99
        try:
            os.dup2(out_f.fileno(), 1)
            os.dup2(err_f.fileno(), 2)
            sys.stdout = open(1, "w", closefd=False)
            sys.stderr = open(2, "w", closefd=False)
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.alarm(int(timeout))
            if cwd:
                os.chdir(cwd)
            os.environ.update(env or {})
            try:
                rc = main(list(argv))
            except SystemExit as e:
                rc = e.code if isinstance(e.code, int) else 2
        except BaseException:  # noqa: BLE001 - reported as exit 99
            traceback.print_exc()
            rc = 99
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(rc if isinstance(rc, int) else 99)
    deadline = time.monotonic() + timeout + 10
    status = None
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.02)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        status = None
    if status is None:
        code: int | str = "timeout"
    elif os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        code = "timeout" if sig == signal.SIGALRM else f"signal {sig}"
    else:
        code = os.WEXITSTATUS(status)
    out_f.seek(0)
    err_f.seek(0)
    return code, out_f.read().decode("utf-8", "replace"), err_f.read().decode("utf-8", "replace")


def _f(name: str) -> str:
    return str(BAD / f"{name}.yaml")


# (id, argv, exit code, words the output must contain)
CASES = [
    # validated, then crashed or hung
    ("horizon .inf", ["validate", _f("horizon_inf")], 2, "finite number"),
    ("horizon 1e308", ["validate", _f("horizon_1e308")], 2, "above the limit of 3,660"),
    ("horizon 1e9", ["validate", _f("horizon_1e9")], 2, "--allow-large"),
    ("horizon 1e9 even with --allow-large", ["validate", _f("horizon_1e9"), "--allow-large"], 2,
     "above the limit of 1,000,000"),
    ("horizon 4000 refused", ["validate", _f("horizon_4000")], 2, "--allow-large"),
    ("horizon 4000 with --allow-large", ["validate", "--allow-large", _f("horizon_4000")], 0, "ok"),
    ("volume .inf", ["validate", _f("volume_inf")], 2, "finite number"),
    ("volume 1e308", ["validate", _f("volume_1e308")], 2, "expected number of calls"),
    ("volume 1e12 a year", ["validate", _f("volume_1e12")], 2, "expected number of calls"),
    ("seed -1", ["validate", _f("seed_negative")], 2, "seed must be between 0"),
    ("priority 40000", ["validate", _f("priority_40000")], 2, "priority must be between 1 and 1000"),
    ("daily_cv .inf", ["validate", _f("daily_cv_inf")], 2, "finite number"),
    ("teams 1e8", ["validate", _f("teams_1e8")], 2, "most on duty at once is 100,000,000"),
    ("teams 1e8 in a shift", ["validate", _f("teams_1e8_shift")], 2, "most on duty at once"),
    ("divert cycle", ["validate", _f("divert_cycle")], 2, "a cycle"),
    ("step-down cycle", ["validate", _f("step_down_cycle")], 2, "a cycle"),
    ("Richmond horizon 1e9", ["validate", _f("richmond_horizon_1e9")], 2, "above the limit"),
    # silent wrong results
    ("police staffed by nobody", ["validate", _f("police_unstaffed")], 2, "on duty at any time"),
    ("backup pool staffed by nobody", ["validate", _f("backup_unstaffed")], 2, "backup requests could never"),
    ("desk staffed by nobody", ["validate", _f("desk_unstaffed")], 2, "no staff on duty"),
    ("desk service .inf", ["validate", _f("desk_service_inf")], 2, "finite number"),
    ("consult to the patrol itself", ["validate", _f("consult_self")], 2, "answers this path itself"),
    ("on-scene .inf", ["validate", _f("on_scene_inf")], 2, "finite number"),
    ("speed 1e-300", ["validate", _f("speed_tiny")], 2, "speed (km/h) must be at least 0.1"),
    ("travel cv .inf", ["validate", _f("variation_cv_inf")], 2, "finite number"),
    ("NaN in rect_km", ["validate", _f("rect_nan")], 2, "finite number"),
    ("inf in a shift's post", ["validate", _f("post_inf")], 2, "finite coordinates"),
    ("duplicate keys", ["validate", _f("duplicate_keys")], 2, "duplicate key 'horizon_days' (first given at line 2)"),
    ("days: []", ["validate", _f("days_empty")], 2, "no day given"),
    ("teams: true", ["validate", _f("teams_true")], 2, "expects a number, not true"),
    ("lognormal mean 1e308", ["validate", _f("lognormal_1e308")], 2, "less than or equal to 5256000"),
    # tracebacks
    ("not UTF-8", ["validate", _f("latin1")], 2, "not UTF-8 text: byte 0xe9 at byte offset 29"),
    ("deep nesting", ["validate", _f("deep_nesting")], 2, "nested too deeply"),
    ("alias bomb", ["validate", _f("alias_bomb")], 2, "YAML aliases expand too far"),
    ("/dev/zero", ["validate", "/dev/zero"], 2, "larger than 4 MiB"),
    ("a folder", ["validate", str(BAD)], 2, "cannot read file"),
    ("missing file", ["validate", str(BAD / "nosuch.yaml")], 2, "cannot read file"),
    ("-r 0", ["run", _f("base"), "-r", "0"], 2, "must be at least 1"),
    ("--precision 0", ["compare", _f("base"), "--precision", "0"], 2, "must be greater than 0"),
    ("--precision nan", ["compare", _f("base"), "--precision", "nan"], 2, "not a finite number"),
    ("--seed -1", ["run", _f("base"), "--seed", "-1"], 2, "seed must be between 0"),
    ("warmup --period-days 0", ["warmup", _f("base"), "--period-days", "0"], 2, "must be greater than 0"),
    ("unreachable scheduler", ["compare", _f("base"), "-r", "1", "--backend", "dask",
                               "--scheduler", "tcp://127.0.0.1:9", "--out", "{tmp}/sched"], 1,
     "cannot reach the Dask scheduler"),
    ("a 240-character name runs", ["run", _f("name_240"), "-r", "1", "--quiet", "--out", "{tmp}/long"], 0,
     "wrote"),
    # valid input wrongly rejected
    ("shipped violence file", ["validate", str(ROOT / "scenarios/richmond/ons.yaml")], 0, "ok"),
    ("gamma replaces lognormal", ["run", _f("gamma_replaces_lognormal"), "-r", "1", "--quiet",
                                  "--out", "{tmp}/gamma"], 0, "wrote"),
    ("!replace", ["run", _f("replace_tag"), "-r", "1", "--quiet", "--out", "{tmp}/replace"], 0, "wrote"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_case_ends_in_one_line_or_runs(case, tmp_path):
    _, argv, code, words = case
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    rc, out, err = run_limited(argv, timeout=60)
    assert rc == code, f"exit {rc}, expected {code}\nstdout: {out[-2000:]}\nstderr: {err[-3000:]}"
    assert "Traceback" not in err
    assert words in out + err, (out + err)[-2000:]
    if code == 2:
        lines = err.strip().splitlines()
        assert lines and all(line.startswith("error: ") for line in lines), err
        assert out.strip() == "" or "ok" in out


def test_every_problem_of_a_file_is_listed_one_line_each(tmp_path):
    (tmp_path / "base.yaml").write_text((BAD / "base.yaml").read_text())
    (tmp_path / "many.yaml").write_text(
        "extends: base.yaml\nseed: true\npools: {police: {teams: true}}\ntravel: {variation_cv: .inf}\n")
    rc, out, err = run_limited(["validate", str(tmp_path / "many.yaml"), _f("base")])
    lines = err.strip().splitlines()
    assert rc == 2
    assert len(lines) == 3, err
    assert {"seed", "pools.police.teams", "travel.variation_cv"} == {l.split(": ")[2].split(" (")[0] for l in lines}
    assert "ok  " in out                 # the good file after the bad one is still checked


def test_control_characters_in_a_name_are_not_sent_to_the_terminal():
    rc, out, err = run_limited(["validate", _f("name_control")])
    assert rc == 0
    assert "\x1b" not in out and "\x07" not in out
    assert "Evil \\x1b[31mred" in out


def test_extends_replaces_a_whole_distribution_and_marked_values():
    from sim.scenario import load_scenario
    s = load_scenario(_f("gamma_replaces_lognormal"))
    d = s.pools["van"].on_scene_min["default"]
    assert d.kind == "gamma" and d.lognormal is None
    stay = s.facilities["crisis_center"].length_of_stay_min
    assert stay.kind == "exponential" and stay.max is None      # the parent's max went with it
    r = load_scenario(_f("replace_tag"))
    assert list(r.facilities) == ["ed"]
    base = load_scenario(_f("base"))
    assert base.facilities["crisis_center"].length_of_stay_min.max == 1440


# --------------------------------------------------------------------------- unfinished calls


def test_unstaffed_police_is_unfinished_and_named(tmp_path):
    """Erlang B(1, 13.33) = 0.930 of calls find the van busy and wait for police for ever."""
    a = 320 / 24 * 1.0
    expected = a / (1 + a)
    rc, out, err = run_limited(["run", _f("unstaffed_police"), "-r", "3", "--quiet", "--out",
                                str(tmp_path / "u")], timeout=120)
    assert rc == 0, err
    k = pd.read_csv(tmp_path / "u" / "kpis.csv")
    rates = k.loc[k["metric"] == "unfinished_rate", "value"].to_numpy()
    assert len(rates) == 3
    m, sd = rates.mean(), rates.std(ddof=1)
    half = 4.303 * sd / math.sqrt(3) + 0.01      # t(2) 95% interval, plus the horizon's edge effect
    assert abs(m - expected) < half, (m, expected, half)
    held = k[k["metric"] == "unfinished_calls.police"]["value"].mean()
    calls = k[k["metric"] == "calls"]["value"].mean()
    assert held == pytest.approx(m * calls, rel=0.02)
    warning = [line for line in err.splitlines() if line.startswith("warning")]
    assert len(warning) == 1 and "'police'" in warning[0] and "unfinished_rate" in warning[0]
    rc, _, err = run_limited(["run", _f("unstaffed_police"), "-r", "1", "--quiet", "--strict", "--out",
                              str(tmp_path / "s")], timeout=120)
    assert rc == 3 and "'police'" in err


# --------------------------------------------------------------------------- faults


def _compare_cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "sim", "compare", _f("base"), _f("gamma_replaces_lognormal"),
            "-r", "4", "--workers", "1", "--quiet", "--out", str(out), *extra]


def test_two_writers_with_other_settings_one_is_refused(tmp_path):
    out = tmp_path / "shared"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    a = subprocess.Popen(_compare_cmd(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env, cwd=ROOT)
    b = subprocess.Popen(_compare_cmd(out, "--seed", "99"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env, cwd=ROOT)
    (ao, ae), (bo, be) = a.communicate(timeout=300), b.communicate(timeout=300)
    codes = sorted([a.returncode, b.returncode])
    assert codes == [0, 2], (ae, be)
    refused = be if b.returncode == 2 else ae
    assert len(refused.strip().splitlines()) == 1, refused
    assert "in use by process" in refused or "holds an experiment with" in refused, refused
    winner_seed = [] if a.returncode == 0 else ["--seed", "99"]
    solo = tmp_path / "solo"
    subprocess.run(_compare_cmd(solo, *winner_seed), check=True, env=env, cwd=ROOT, capture_output=True)
    pd.testing.assert_frame_equal(pd.read_csv(out / "summary.csv"), pd.read_csv(solo / "summary.csv"), check_exact=True)


def test_second_writer_with_the_same_settings_waits_and_shares(tmp_path):
    from sim.experiment import compare
    from sim.store import Store, _lock
    out = tmp_path / "same"
    first = compare([_f("base")], replications=2, workers=1, out=out)
    settings = json.loads((out / "experiment.json").read_text())
    fd = _lock(out, settings)                 # someone holds the folder for a moment
    import threading
    threading.Timer(1.0, lambda: os.close(fd)).start()
    t0 = time.monotonic()
    again = compare([_f("base")], replications=2, workers=1, out=out)
    assert time.monotonic() - t0 >= 0.9                          # it waited for the lock
    pd.testing.assert_frame_equal(first.summary, again.summary, check_exact=True)
    assert isinstance(again.store, Store)


def _mount_tmpfs(path: Path, size: str) -> bool:
    if os.geteuid() != 0:
        return False
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_full_disk_then_rerun_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    """A small tmpfs as root (else ENOSPC injected at the write call): the experiment stops
    with one line (exit 1); after space is freed the rerun's results equal a clean run's and
    resolved/ is complete."""
    from sim import results
    from sim.experiment import compare
    clean = compare([_f("base"), _f("gamma_replaces_lognormal")], replications=4, workers=1,
                    out=tmp_path / "clean")
    disk = tmp_path / "disk"
    mounted = _mount_tmpfs(disk, "400k")
    try:
        out = disk / "exp"
        if mounted:
            rc, _, err = run_limited(["compare", _f("base"), _f("gamma_replaces_lognormal"), "-r", "4",
                                      "--workers", "1", "--quiet", "--out", str(out)], timeout=120)
            subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        else:
            real, calls = results.atomic_write, {"n": 0}

            def full(path, write):
                calls["n"] += 1
                if calls["n"] > 9:
                    raise OSError(28, "No space left on device", str(path))
                return real(path, write)
            monkeypatch.setattr(results, "atomic_write", full)
            rc, _, err = run_limited(["compare", _f("base"), _f("gamma_replaces_lognormal"), "-r", "4",
                                      "--workers", "1", "--quiet", "--out", str(out)], timeout=120)
            monkeypatch.setattr(results, "atomic_write", real)
        assert rc == 1, err
        assert len(err.strip().splitlines()) == 1 and "No space left on device" in err, err
        again = compare([_f("base"), _f("gamma_replaces_lognormal")], replications=4, workers=1, out=out)
        pd.testing.assert_frame_equal(clean.summary, again.summary, check_exact=True)
        assert sorted(p.name for p in (out / "resolved").iterdir()) == \
            sorted(p.name for p in (tmp_path / "clean" / "resolved").iterdir())
        for p in (out / "resolved").iterdir():
            assert p.read_text() == (tmp_path / "clean" / "resolved" / p.name).read_text()
        assert json.loads((out / "manifest.json").read_text())["complete"] is True
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_kill_9_of_the_main_process_leaves_no_worker(tmp_path):
    psutil = pytest.importorskip("psutil")
    (tmp_path / "base.yaml").write_text((BAD / "base.yaml").read_text())
    (tmp_path / "long.yaml").write_text("extends: base.yaml\nhorizon_days: 200\n")
    cmd = [sys.executable, "-m", "sim", "compare", str(tmp_path / "long.yaml"), "-r", "8", "--workers", "2",
           "--quiet", "--out", str(tmp_path / "k")]
    main = subprocess.Popen(cmd, env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def is_python(c):
        # A child can end between the listing and the look at it (the manifest's short-lived `git`
        # calls do): an ended child is not a worker.
        try:
            return "multiprocessing" in " ".join(c.cmdline()) or c.name().startswith("python")
        except psutil.NoSuchProcess:
            return False

    def is_alive(w):
        try:
            return w.is_running() and w.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    workers = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(workers) < 2:
        time.sleep(0.2)
        workers = [c for c in psutil.Process(main.pid).children(recursive=True) if is_python(c)]
    assert len(workers) >= 2, "the pool did not start"
    time.sleep(1.0)
    main.send_signal(signal.SIGKILL)
    main.wait()
    t0 = time.monotonic()
    alive = workers
    while alive and time.monotonic() - t0 < 5:
        time.sleep(0.1)
        alive = [w for w in alive if is_alive(w)]
    for w in alive:
        try:
            w.kill()
        except psutil.NoSuchProcess:
            pass
    assert not alive, f"{len(alive)} worker(s) outlived the main process by 5 s"


def test_read_only_output_folder_fails_before_computing(tmp_path):
    ro = tmp_path / "ro"
    if os.geteuid() == 0 and _mount_ro(ro):
        try:
            t0 = time.monotonic()
            rc, out, err = run_limited(["run", _f("unstaffed_police"), "-r", "3", "--quiet",
                                        "--out", str(ro / "x")], timeout=60)
            assert rc == 1 and len(err.strip().splitlines()) == 1 and "Read-only file system" in err, err
            assert out == "" and time.monotonic() - t0 < 5       # nothing was computed
        finally:
            subprocess.run(["umount", "-l", str(ro)], capture_output=True)
    else:
        ro.mkdir()
        ro.chmod(0o555)
        rc, out, err = run_limited(["run", _f("base"), "-r", "1", "--quiet", "--out", str(ro / "x")])
        assert rc == 1 and "Permission denied" in err and out == ""


def _mount_ro(path: Path) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_a_failed_run_into_an_existing_folder_leaves_the_old_one_whole(tmp_path, monkeypatch):
    from sim import results
    out = tmp_path / "r"
    rc, _, err = run_limited(["run", _f("base"), "-r", "1", "--quiet", "--out", str(out)])
    assert rc == 0, err
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real = results.write_parquet
    monkeypatch.setattr(results, "write_parquet",
                        lambda path, df: (_ for _ in ()).throw(OSError(28, "No space left on device", str(path)))
                        if path.name == "hourly.parquet" else real(path, df))
    rc, _, err = run_limited(["run", _f("base"), "-r", "1", "--quiet", "--seed", "5", "--out", str(out)])
    assert rc == 1 and "No space left on device" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".")] == []     # no temporary folder left


@pytest.mark.parametrize("corrupt", ["manifest.json", "summary.csv", "calls.parquet"])
def test_report_of_a_corrupt_folder_is_one_line(tmp_path, corrupt):
    out = tmp_path / "r"
    rc, _, err = run_limited(["run", _f("base"), "-r", "1", "--quiet", "--out", str(out)])
    assert rc == 0, err
    (out / corrupt).write_bytes(b"\x00\xffnot what it should be{{{")
    rc, _, err = run_limited(["report", str(out), "--out", str(tmp_path / "r.html")], timeout=120)
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1 and corrupt in err, err


def test_store_ignores_empty_replication_folders(tmp_path):
    from sim.experiment import compare
    out = tmp_path / "e"
    clean = compare([_f("base")], replications=2, workers=1, out=out)
    for table in ("kpis", "calls", "runs"):                       # what a full disk leaves behind
        (out / table / "scenario=base" / "point=0" / "replication=2").mkdir(parents=True)
    (out / "kpis" / "scenario=base" / "point=0" / "replication=1" / "part-0.parquet").unlink()
    again = compare([_f("base")], replications=3, workers=1, out=out)
    assert sorted(again.runs["replication"]) == [0, 1, 2]
    pd.testing.assert_frame_equal(clean.kpis[clean.kpis["replication"] < 2].reset_index(drop=True),
                                  again.kpis[again.kpis["replication"] < 2].reset_index(drop=True))


# --------------------------------------------------------------------------- fuzzing

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

FUZZ_EXAMPLES = 1000
#: values a planner (or a typo) might put where a number goes
ODD = st.sampled_from([math.inf, -math.inf, math.nan, 1e308, -1, 0, 1e12, True, False, "3", None, [], {}])


def _rarely(good, odd, one_in: int = 40):
    """``good`` but one time in ``one_in`` ``odd``."""
    return st.integers(1, one_in).flatmap(lambda k: odd if k == one_in else good)   # not 1: hypothesis favours it


def _num(lo: float, hi: float, integer: bool = False):
    return _rarely(st.integers(int(lo), int(hi)) if integer else st.floats(lo, hi, allow_nan=False), ODD)


@st.composite
def scenario_texts(draw) -> str:
    """A whole scenario file: mostly well-formed with small sizes, with odd values, missing
    or unknown fields, duplicate keys and broken references mixed in."""
    types = [f"t{i}" for i in range(draw(st.integers(1, 3)))]
    zones = [f"z{i}" for i in range(draw(st.integers(1, 2)))]
    pools = [f"p{i}" for i in range(draw(st.integers(1, 3)))]
    dist = st.one_of(_num(0, 120), st.builds(lambda m, s: {"lognormal": {"mean": m, "sd": s}}, _num(1, 90), _num(1, 60)),
                     st.builds(lambda m: {"exponential": {"mean": m}}, _num(1, 90)),
                     st.builds(lambda m, s: {"gamma": {"mean": m, "sd": s}}, _num(1, 90), _num(1, 60)))

    def shift():
        return {"days": draw(_rarely(st.sampled_from(["daily", "weekdays", "mon", ["sat", "sun"]]), st.just([]))),
                "start": draw(_rarely(st.sampled_from(["00:00", "08:00", "20:00"]), st.just("25:00"))),
                "end": draw(st.sampled_from(["24:00", "16:00", "06:00"])),
                "teams": draw(_num(0, 3, integer=True))}

    pool_defs = {}
    for i, p in enumerate(pools):
        d = {"roles": ["officer" if i == len(pools) - 1 else "medic"],
             "on_scene_min": {"default": draw(dist)}}
        if draw(st.booleans()):
            d["teams"] = draw(_num(1, 4, integer=True))
        else:
            d["shifts"] = [shift() for _ in range(draw(st.integers(1, 2)))]
        if draw(st.integers(0, 5)) == 0:
            d["outcomes"] = {"default": {"resolved": 0.8, "transport": 0.2}}
            d["transport"] = {"destinations": {"f0": 1.0}}
        pool_defs[p] = d
    travel = draw(st.sampled_from(["none", "manhattan", "euclidean"]))
    data = {
        "name": draw(st.sampled_from(["Fuzz", "Fuzz \x1b[1m", "x" * 300, "$a$ b"])),
        "horizon_days": draw(_num(0.1, 1.5)),
        "drain_days": draw(_num(0, 1)),
        "seed": draw(_num(0, 2 ** 31, integer=True)),
        "roles": {"medic": {}, "officer": {"sworn": draw(_rarely(st.just(True), st.just(1)))}},
        "call_types": {t: {"priority": draw(_rarely(_num(1, 5, integer=True), st.just(40000)))} for t in types},
        "zones": {z: {"share": 1 / len(zones), "rect_km": [0, 5 * i, draw(_num(1, 9)), 5 * i + 4]}
                  for i, z in enumerate(zones)},
        "travel": {"model": travel, "speed_kmh": draw(_num(5, 80)), "variation_cv": draw(_num(0, 1))},
        "channels": {"c": {"volume": {draw(st.sampled_from(["per_day", "per_hour", "per_week"])): draw(_num(1, 80))},
                           "mix": {t: 1 / len(types) for t in types}, "daily_cv": draw(_num(0, 1))}},
        "triage": {"paths": {f"path_{t}": {"call_types": [t],
                                           "pools": draw(st.lists(_rarely(st.sampled_from(pools), st.just("ghost")),
                                                                  min_size=1, max_size=3, unique=True)),
                                           "max_wait_min": draw(st.one_of(st.none(), _num(0, 30)))}
                             for t in types}},
        "pools": pool_defs,
        "facilities": {"f0": {"beds": draw(_num(1, 3, integer=True)), "when_full": "divert", "divert_to": "f1",
                              "length_of_stay_min": draw(dist)},
                       "f1": {"beds": draw(st.one_of(st.none(), _num(1, 3, integer=True))),
                              **draw(_rarely(st.just({"when_full": "wait"}),
                                             st.just({"when_full": "divert", "divert_to": "f0"}), 8))}},
    }
    leaves = _number_leaves(data)
    if leaves and draw(st.integers(0, 2)) == 2:                   # one odd number in a good file
        node, key = draw(st.sampled_from(leaves))
        node[key] = draw(ODD)
    nodes = {"top": data, "pool": pool_defs[pools[0]], "channel": data["channels"]["c"]}
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):       # structural damage
        node = nodes[draw(st.sampled_from(sorted(nodes)))]
        if not node:
            continue
        key = draw(st.sampled_from(sorted(node)))
        action = draw(st.sampled_from(["delete", "unknown", "odd"]))
        if action == "delete":
            node.pop(key)
        elif action == "unknown":
            node[key + "_x"] = 1
        else:
            node[key] = draw(ODD)
    import yaml
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    if draw(st.integers(0, 19)) == 19:
        text += "seed: 5\n"                                       # a duplicate key
    return text


def _number_leaves(x, out=None) -> list[tuple]:
    """(container, key) of every number in a nested mapping."""
    out = [] if out is None else out
    items = x.items() if isinstance(x, dict) else enumerate(x) if isinstance(x, list) else ()
    for k, v in items:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append((x, k))
        else:
            _number_leaves(v, out)
    return out


def _finite_everywhere(x) -> bool:
    if isinstance(x, float):
        return math.isfinite(x)
    if isinstance(x, dict):
        return all(_finite_everywhere(v) for v in x.values())
    if isinstance(x, (list, tuple)):
        return all(_finite_everywhere(v) for v in x)
    return True


_fuzz_runs = {"valid": 0, "ran": 0, "invalid": 0}


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(text=scenario_texts())
def test_fuzz_whole_scenario_files(text):
    """Invalid -> a ScenarioError of one line per problem, each naming the file; valid ->
    every number finite and within the limits, and (a sample of the small ones) runs to the
    end with nothing lost."""
    from invariants import check_invariants
    from sim.metrics import kpis
    from sim.model import Model
    from sim.scenario import ScenarioError, load_scenario
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "fuzz.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            s = load_scenario(path)
        except ScenarioError as e:
            _fuzz_runs["invalid"] += 1
            _fuzz_runs.setdefault("why", []).append(e.message[:50])
            assert "\n" not in str(e)
            assert all("\n" not in line and line.startswith(str(path)) or line.startswith(d)
                       for line in e.lines()), e.lines()
            return
    _fuzz_runs["valid"] += 1
    assert _finite_everywhere(s.model_dump())          # python mode: JSON mode would turn inf into null
    assert all(0 < t.priority <= 1000 for t in s.call_types.values())
    calls = sum(ch.volume.per_week_value() for ch in s.channels.values()) * (s.warmup_days + s.horizon_days) / 7
    if calls > 400 or zlib.crc32(text.encode()) % 8:             # run a small sample, keep the suite fast
        return
    _fuzz_runs["ran"] += 1
    res = Model(s, s.seed, 0).run()
    check_invariants(res, s)          # tests/invariants.py: nothing lost, times forward, every rule replayed
    k = kpis(res.calls, res.pools, s.horizon_days, res.facilities, s)
    measured = res.calls[~res.calls["warmup"]]
    if len(measured) and "unfinished_rate" in k:
        assert k["unfinished_rate"] == pytest.approx(measured["unfinished"].mean())


def test_fuzzing_saw_both_kinds():
    """The fuzzer above is not vacuous: it produced valid and invalid files and ran some
    (runs after it in this module)."""
    if _fuzz_runs["valid"] + _fuzz_runs["invalid"] < FUZZ_EXAMPLES:
        pytest.skip("the fuzz test did not run in this session")
    assert _fuzz_runs["invalid"] >= 100 and _fuzz_runs["valid"] >= 50 and _fuzz_runs["ran"] >= 10, _fuzz_runs
