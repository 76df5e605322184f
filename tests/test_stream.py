"""Streaming the logs (issue 17): a replication written to Parquet as it runs gives the very
same call rows, spans, audits and KPIs as one kept in memory; a run killed part-way leaves
nothing a reader or a rerun trusts."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from unittest import mock

import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import sim
import sim.model as model_mod
from sim.calllog import LogFiles
from sim.experiment import single_run
from sim.model import Model
from sim.store import Store
from test_invariants import SHIPPED, scenarios
from test_metrics_columns import differences

ROOT = Path(__file__).resolve().parents[1]
WORK_KEY = ["call_id"]      # spans of one call stay in the order they were booked


def _parquet_round_trip(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    df.to_parquet(path, index=False)
    return pd.read_parquet(path)


def _check_stream_equals_memory(s, seed: int, folder: Path, rows: int, chunk: int = 50):
    """Stream a run into ``folder`` and check it against the same run in memory; returns the
    in-memory result (the streamed logs stay in ``folder``)."""
    mem, k_mem = single_run(s, seed, 0)
    files = LogFiles(folder / "calls.parquet", folder / "assignments.parquet", rows=rows)
    # a row group is written at a sweep of the inputs (every CHUNK calls) once ``rows`` calls
    # have finished: small chunks, so that the logs really come in many row groups
    with mock.patch.object(model_mod, "CHUNK", chunk):
        out, k_out = single_run(s, seed, 0, stream=files)
    meta = pq.ParquetFile(folder / "calls.parquet").metadata
    groups = meta.num_row_groups
    assert groups >= min(len(mem.calls) // (rows + chunk + 1), 2), (groups, len(mem.calls))
    assert groups <= max(1, len(mem.calls) // rows + 1)
    if len(mem.calls):                                         # no row group without rows
        assert all(meta.row_group(g).num_rows > 0 for g in range(groups))
    # the streamed result keeps the frames' columns, with no rows; its audits are the same
    assert len(out.calls) == 0 and list(out.calls.columns) == list(mem.calls.columns)
    assert list(out.assignments.columns) == list(mem.assignments.columns)
    pd.testing.assert_frame_equal(out.pools, mem.pools, check_exact=True)
    pd.testing.assert_frame_equal(out.hourly, mem.hourly, check_exact=True)
    assert not differences(k_out, k_mem)
    # against the frames in memory written as one Parquet file (what a reader of either gets)
    calls = pd.read_parquet(folder / "calls.parquet").sort_values("call_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(calls, _parquet_round_trip(mem.calls, folder / "mem-calls.parquet"),
                                  check_exact=True)
    work = pd.read_parquet(folder / "assignments.parquet").sort_values(WORK_KEY, kind="stable")
    expected = mem.assignments.sort_values(WORK_KEY, kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(work.reset_index(drop=True),
                                  _parquet_round_trip(expected, folder / "mem-work.parquet"), check_exact=True)
    assert not list(folder.glob("*.partial"))
    assert len(calls) == len(mem.calls) and len(work) == len(mem.assignments)
    return mem


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT / "scenarios")))
def test_streamed_logs_equal_the_logs_in_memory_on_every_shipped_scenario(path, tmp_path):
    days = 0.25 if "scale" in path.parts else 6
    s = sim.load_scenario(path, {"horizon_days": days, "warmup_days": 1})
    _check_stream_equals_memory(s, 7, tmp_path, rows=200)      # many row groups


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(scenarios(), st.integers(0, 2**31 - 1), st.sampled_from([1, 7, 100]))
def test_streamed_logs_equal_the_logs_in_memory_on_random_scenarios(tmp_path_factory, s, seed, rows):
    _check_stream_equals_memory(s, seed, tmp_path_factory.mktemp("stream"), rows)


def test_a_failed_streaming_run_leaves_no_file(tmp_path, monkeypatch):
    s = sim.load_scenario(ROOT / "scenarios/eugene/cahoots.yaml", {"horizon_days": 3, "warmup_days": 1})
    files = LogFiles(tmp_path / "calls.parquet", tmp_path / "assignments.parquet", rows=50)

    def broken(self, *a):
        raise RuntimeError("disk gone")
    monkeypatch.setattr(Model, "_facility_frames", broken)      # after every row group was written
    monkeypatch.setattr(LogFiles, "close", broken)
    with pytest.raises(RuntimeError, match="disk gone"):
        Model(s, seed=1, stream=files).run()
    assert not list(tmp_path.iterdir())


def test_a_streamed_run_forms_its_kpis_and_audits_without_reading_its_logs_back(tmp_path):
    """A streamed replication's KPIs and audits are gathered from each row group as it is
    written (``metrics.StreamTotals``): no log is read back, and the numbers are those of the
    same run in memory to the last bit (the LA scenario: desks, second units, facilities)."""
    s = sim.load_scenario(ROOT / "scenarios/los_angeles/meu_smart.yaml", {"horizon_days": 4, "warmup_days": 1})
    mem, k_mem = single_run(s, 11, 0)
    files = LogFiles(tmp_path / "calls.parquet", tmp_path / "assignments.parquet", rows=100)

    def read_back(*a, **k):
        raise AssertionError("a log was read back")
    with mock.patch("sim.calllog.batches", read_back), mock.patch("sim.calllog.row_count", read_back), \
            mock.patch.object(pq, "ParquetFile", read_back), mock.patch.object(pq, "read_table", read_back), \
            mock.patch.object(model_mod, "CHUNK", 50):             # (row groups come at chunk starts)
        out, k_out = single_run(s, 11, 0, stream=files)
    assert pq.read_metadata(files.calls.path).num_row_groups > 1       # really streamed, in groups
    assert not differences(k_out, k_mem) and k_out.keys() == k_mem.keys()
    pd.testing.assert_frame_equal(out.pools, mem.pools, check_exact=True)
    pd.testing.assert_frame_equal(out.hourly, mem.hourly, check_exact=True)
    assert out.totals is None          # the aggregates' ~12 bytes a call went once the KPIs were formed


CHILD = """
import sys
import sim.calllog
sim.calllog.ROW_GROUP = 2000        # many row groups, so the kill lands while one is being written
from sim.cli import main
sys.exit(main(sys.argv[1:]))
"""

# the child kills itself once replication 1's call log is whole and moved into place, while its
# assignments log is still open (no footer): a whole part without a record beside a working file
BETWEEN_LOGS = """
import os, signal, sys
import sim.calllog

def close(self, empty_calls, empty_work):
    self.calls.close(empty_calls)
    if "replication=1" in str(self.calls.path):
        os.kill(os.getpid(), signal.SIGKILL)
    self.assignments.close(empty_work)

sim.calllog.LogFiles.close = close
from sim.cli import main
sys.exit(main(sys.argv[1:]))
"""
TABLES = ("calls", "assignments", "kpis", "pools")


def _compare(out: Path, *, kill_when_partial: bool = False, child: str = CHILD) -> int:
    """``crisis-sim compare`` of two replications into ``out``; with ``kill_when_partial``,
    SIGKILLed once replication 0 is committed and replication 1's logs are half written."""
    args = [sys.executable, "-c", child, "compare", str(ROOT / "scenarios/scale/city_100k.yaml"), "-r", "2",
            "--workers", "1", "--quiet", "--out", str(out), "--set", "horizon_days=60", "--set", "warmup_days=1"]
    p = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if kill_when_partial:
        deadline = time.monotonic() + 120
        while p.poll() is None and time.monotonic() < deadline:
            if list(out.glob("runs/*/*/replication=0/part-0.parquet")) and list(
                    out.glob("calls/*/*/replication=1/*.partial")):
                os.kill(p.pid, signal.SIGKILL)
                break
            time.sleep(0.01)
    p.wait(timeout=300)
    return p.returncode


def _store(out: Path) -> Store:
    cells = json.loads((out / "experiment.json").read_text())["cells"]
    return Store(out, list(dict.fromkeys(c["scenario"] for c in cells)))


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> dict[str, pd.DataFrame]:
    """The tables of the same compare run to the end without a kill."""
    out = tmp_path_factory.mktemp("clean") / "clean"
    assert _compare(out) == 0
    return {t: _store(out).read(t) for t in TABLES}


def _folder_rows(out: Path, table: str) -> dict[int, int]:
    """Rows per replication as readers of the folder see them (pandas, pyarrow datasets: both
    skip names starting with '.'), checked to be the rows of the whole part files, no more."""
    import pyarrow.dataset as ds
    whole = sorted((out / table).glob("scenario=*/point=*/replication=*/part-0.parquet"))
    rows = {int(p.parent.name.split("=")[1]): pq.ParquetFile(p).metadata.num_rows for p in whole}
    for how, read in (("pandas", lambda: pd.read_parquet(out / table)),
                      ("pyarrow.dataset", lambda: ds.dataset(out / table, format="parquet",
                                                             partitioning="hive").to_table().to_pandas())):
        got = read()["replication"].astype(int).value_counts().to_dict()
        assert got == rows, (table, how, got, rows)
    return rows


def _check_killed_then_rerun(out: Path, clean: dict[str, pd.DataFrame]) -> None:
    """Before the rerun the store reads exactly the clean run's replication 0 (a row of the
    killed replication 1, from a working file or a part without a record, would show); the
    rerun repeats replication 1 and ends with the clean run's tables."""
    store = _store(out)
    assert {r for _, _, r in store.done()} == {0}
    for table in TABLES:
        got = store.read(table)
        want = clean[table][clean[table]["replication"] == 0].reset_index(drop=True)
        assert len(got) and set(got["replication"]) == {0}
        pd.testing.assert_frame_equal(got, want, check_exact=True, obj=f"killed {table}")
    assert _compare(out) == 0
    assert not list(out.rglob("*.partial"))
    for table in TABLES:
        pd.testing.assert_frame_equal(_store(out).read(table), clean[table], check_exact=True, obj=table)


def test_a_run_killed_while_streaming_leaves_nothing_trusted_and_the_rerun_is_whole(tmp_path, clean):
    out = tmp_path / "killed"
    rc = _compare(out, kill_when_partial=True)
    assert rc == -signal.SIGKILL, "the run finished before a row group was half written"
    # the half-written logs are only hidden .partial files beside the parts they will become
    partials = list(out.rglob("*.partial"))
    assert partials and all(p.name == ".part-0.parquet.partial" for p in partials), partials
    for table in ("calls", "assignments"):          # readers of the folder skip them
        assert 1 not in _folder_rows(out, table)
    _check_killed_then_rerun(out, clean)


def test_a_run_killed_between_its_logs_leaves_a_whole_part_no_reader_of_the_store_trusts(tmp_path, clean):
    out = tmp_path / "killed"
    assert _compare(out, child=BETWEEN_LOGS) == -signal.SIGKILL
    r1 = "scenario=city_100k/point=0/replication=1"
    assert (out / "calls" / r1 / "part-0.parquet").is_file()          # whole, without a record
    assert not (out / "runs" / r1).exists()
    assert [p.name for p in (out / "assignments" / r1).iterdir()] == [".part-0.parquet.partial"]
    # a reader of the folder alone sees the whole part (only the records, runs/, say what is
    # committed: sim/store.py); the working file beside it is skipped
    assert 1 in _folder_rows(out, "calls") and 1 not in _folder_rows(out, "assignments")
    _check_killed_then_rerun(out, clean)


def test_a_single_run_killed_part_way_leaves_its_folder_as_it_was_and_the_next_run_sweeps_its_store(
        tmp_path, monkeypatch):
    """``crisis-sim run`` streams into a temporary store in TMPDIR: SIGKILLed while a log is half
    written, it leaves ``--out`` as the last run wrote it and that store behind; the next run
    deletes the store of the dead process, never one of a live process."""
    import tempfile
    from sim.store import Store, sweep_stale_temporary
    tmp = tmp_path / "tmpdir"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp))
    out = tmp_path / "out"
    args = [sys.executable, "-c", CHILD, "run", str(ROOT / "scenarios/scale/city_100k.yaml"), "-r", "2",
            "--workers", "1", "--quiet", "--out", str(out), "--set", "warmup_days=1"]

    def run(days):
        return subprocess.Popen(args + ["--set", f"horizon_days={days}"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert run(20).wait(timeout=300) == 0
    assert not list(tmp.iterdir())                          # a finished run removes its store
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    p = run(60)
    deadline = time.monotonic() + 120
    while p.poll() is None and time.monotonic() < deadline:
        if list(tmp.rglob("*.partial")):
            os.kill(p.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    assert p.wait(timeout=60) == -signal.SIGKILL, "the run finished before a log was half written"
    stale = list(tmp.iterdir())
    assert len(stale) == 1 and stale[0].name.startswith("crisis-sim-") and list(stale[0].rglob("*.partial"))
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before
    assert sorted(f.name for f in tmp_path.iterdir()) == ["out", "tmpdir"]      # nothing beside --out
    assert run(20).wait(timeout=300) == 0
    assert not list(tmp.iterdir())                          # the dead process's store is gone
    pd.read_parquet(out / "calls.parquet")
    # a temporary store of a live process (this one) in the same TMPDIR, open and then closed
    # (still read, as crisis-sim run reads its logs after the experiment): never swept
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    live = Store.open(None, {"cells": [{"scenario": "x", "point": 0}]}, {})
    try:
        assert run(20).wait(timeout=300) == 0
        assert list(tmp.iterdir()) == [live.root]
        live.close()
        assert sweep_stale_temporary(tmp) == [] and live.root.is_dir()
    finally:
        live.close()
        live.remove_temporary()
    assert not list(tmp.iterdir())
