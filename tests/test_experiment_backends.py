"""Where an experiment runs changes nothing; a killed experiment resumes without rework."""
import os
import signal
import subprocess
import sys
import time

import pandas as pd

from sim.experiment import compare
from sim.scenario import load_scenario

MMC = "scenarios/validation/mmc.yaml"
TABLES = ("kpis", "summary", "differences", "calls", "pools", "hourly")


def _same(a, b):
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), obj=name, check_exact=True)


def test_one_worker_two_workers_and_dask_give_identical_dataframes(scenario_path, tmp_path):
    from distributed import LocalCluster

    path = scenario_path("tests/data/co_responder.yaml")
    scenarios = [load_scenario(path, ["horizon_days=5"]),
                 load_scenario(path, ["horizon_days=5", "pools.co_responder.teams=3"])]
    args = dict(scenarios=scenarios, replications=4, seed=11, labels=["n2", "n3"])
    one = compare(**args, workers=1, out=tmp_path / "one")
    two = compare(**args, workers=2, out=tmp_path / "two")
    with LocalCluster(processes=True, n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        dask = compare(**args, backend="dask", scheduler=cluster.scheduler_address, out=tmp_path / "dask")
    assert len(one.calls) > 100 and one.failed.empty
    _same(one, two)
    _same(one, dask)
    # and the work really was spread: several worker processes in the dask run
    assert dask.runs["worker"].nunique() >= 2 and two.runs["worker"].nunique() >= 2


SCRIPT = """
import sys
from sim.experiment import compare
from sim.scenario import load_scenario
compare([sys.argv[1], sys.argv[1]], replications=int(sys.argv[3]), seed=4, labels=["c10", "c11"],
        overrides=["horizon_days=20"], workers=2, out=sys.argv[2])
"""


def _committed(out) -> int:
    """Replications with a record (temporary files of unfinished writes start with a dot)."""
    return len(list((out / "runs").rglob("part-0.parquet")))


def test_killed_experiment_resumes_to_the_uninterrupted_result(scenario_path, tmp_path):
    reps, total = 8, 16
    path = str(scenario_path(MMC))
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, path, str(killed), str(reps)],
                            start_new_session=True, cwd=scenario_path("."))
    try:
        deadline = time.monotonic() + 120
        while _committed(killed) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)     # the experiment and its worker processes
        proc.wait()
    first = pd.read_parquet(killed / "runs")
    print(f"killed after {len(first)} of {total} replications")
    assert 0 < len(first) < total, "the kill should land part-way"

    resumed = compare([path, path], replications=reps, seed=4, labels=["c10", "c11"],
                      overrides=["horizon_days=20"], workers=2, out=killed)
    full = compare([path, path], replications=reps, seed=4, labels=["c10", "c11"],
                   overrides=["horizon_days=20"], workers=2, out=tmp_path / "full")
    for name in ("kpis", "summary", "differences", "calls", "pools", "hourly"):
        pd.testing.assert_frame_equal(getattr(resumed, name), getattr(full, name), obj=name, check_exact=True)

    # no replication ran twice: each has one record, those finished before the kill kept
    # theirs, and the rerun submitted none of them
    runs = resumed.runs
    assert len(runs) == total and not runs.duplicated(["scenario", "point", "replication"]).any()
    key = lambda df: set(zip(df["scenario"].astype(str), df["point"].astype(int), df["replication"].astype(int)))
    sessions = resumed.store.read_log().query("event == 'session'")["session"].tolist()
    assert len(sessions) == 2
    before = first[first["session"] == sessions[0]]
    assert key(before) == key(runs[runs["session"] == sessions[0]])
    log = resumed.store.read_log()
    rerun_submits = log[(log["session"] == sessions[1]) & (log["event"] == "submit")]
    assert not key(rerun_submits) & key(before)
    assert len(rerun_submits) == total - len(before)
    # (a kill between writing a record and logging it leaves one "ok" line short, never one extra)
    finished = log[log["event"].isin(["ok", "failed"])]
    assert not finished.duplicated(["scenario", "point", "replication"]).any()
