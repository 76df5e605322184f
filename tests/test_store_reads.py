"""The store reads what is committed and nothing else (issue 17): the part files of a
replication without a record are never opened, whole, broken or of another schema, so they
change no committed value and do not stop the rerun; a record that cannot be read commits
nothing and is skipped with a reason; committed parts whose Arrow types differ (a column
all null in one) combine with every value kept."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import sim
from sim.experiment import compare
from sim.scenario import load_scenario
from sim.store import PART_FILE, Store, StoreCorrupt, StoreWarning

ROOT = Path(__file__).resolve().parents[1]
CO = ROOT / "tests" / "data" / "co_responder.yaml"
KEYS = ["n2", "n3"]
TABLES = ("kpis", "calls", "assignments", "pools", "hourly")
TIMING = ["session", "worker", "started_utc", "finished_utc", "wall_s"]     # differ from run to run


@pytest.fixture(scope="module")
def co():
    return [load_scenario(CO, ["horizon_days=2"]),
            load_scenario(CO, ["horizon_days=2", "pools.co_responder.teams=3"])]


def _experiment(co, out):
    return compare(co, replications=2, seed=1, labels=KEYS, workers=1, out=out)


@pytest.fixture(scope="module")
def clean(co, tmp_path_factory) -> Path:
    """A finished store, copied by each test before it breaks something."""
    out = tmp_path_factory.mktemp("clean") / "exp"
    _experiment(co, out)
    return out


def _copy(clean: Path, tmp_path: Path) -> Path:
    out = tmp_path / "exp"
    shutil.copytree(clean, out)
    return out


def _part(out: Path, table: str, scenario: str, replication: int) -> Path:
    return out / table / f"scenario={scenario}" / "point=0" / f"replication={replication}" / PART_FILE


def _without(df: pd.DataFrame, scenario: str, replication: int) -> pd.DataFrame:
    drop = (df["scenario"] == scenario) & (df["replication"] == replication)
    return df[~drop].reset_index(drop=True)


def _key(df: pd.DataFrame) -> set:
    return set(zip(df["scenario"].astype(str), df["point"].astype(int), df["replication"].astype(int)))


def _reads_as(out: Path, want: Path, without: tuple[str, int] | None = None) -> None:
    """Every table of ``out`` reads exactly as ``want``'s (less one replication)."""
    got, ref = Store(out, KEYS), Store(want, KEYS)
    for table in TABLES:
        expected = ref.read(table)
        if without:
            expected = _without(expected, *without)
        pd.testing.assert_frame_equal(got.read(table), expected, check_exact=True, obj=table)


def _rerun_submitted(res) -> set:
    log = res.store.read_log()
    last = log.loc[log["event"] == "session", "session"].iloc[-1]
    return _key(log[(log["session"] == last) & (log["event"] == "submit")])


BREAK = {
    "garbage": lambda p: p.write_bytes(b"this is not a parquet file"),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "empty": lambda p: p.write_bytes(b""),        # a rename that outran its data at a power loss
}


@pytest.mark.parametrize("how", BREAK)
def test_broken_parts_of_an_uncommitted_replication_are_never_opened_and_the_rerun_replaces_them(
        how, co, clean, tmp_path):
    out = _copy(clean, tmp_path)
    _part(out, "runs", "n3", 1).unlink()                    # killed before its record
    for table in TABLES:
        BREAK[how](_part(out, table, "n3", 1))
    _reads_as(out, clean, without=("n3", 1))
    store = Store(out, KEYS)
    assert store.done() == {("n2", 0, 0), ("n2", 0, 1), ("n3", 0, 0)}
    # the rerun reads the committed KPIs before it runs anything, then repeats only that one
    res = _experiment(co, out)
    assert _rerun_submitted(res) == {("n3", 0, 1)}
    _reads_as(out, clean)
    for table in TABLES:
        pq.read_table(_part(out, table, "n3", 1))           # replaced by a whole file


FOREIGN = {
    "kpis-value-as-text": ("kpis", lambda df: df.assign(value=df["value"].astype(str))),
    "calls-two-columns": ("calls", lambda df: df[["call_id", "t_received"]]),
    "calls-extra-column": ("calls", lambda df: df.assign(extra=1.0)),
    "pools-no-rows": ("pools", lambda df: df.iloc[:0].astype(str)),
}


@pytest.mark.parametrize("case", FOREIGN)
def test_an_uncommitted_part_of_another_schema_sorting_first_changes_no_committed_value(case, co, clean,
                                                                                       tmp_path):
    table, change = FOREIGN[case]
    out = _copy(clean, tmp_path)
    _part(out, "runs", "n2", 0).unlink()                    # the first part of every table
    part = _part(out, table, "n2", 0)
    change(pd.read_parquet(part)).to_parquet(part, index=False)
    _reads_as(out, clean, without=("n2", 0))                # every value and dtype as committed
    res = _experiment(co, out)
    assert _rerun_submitted(res) == {("n2", 0, 0)}
    _reads_as(out, clean)


@pytest.mark.parametrize("how", BREAK)
def test_a_record_that_cannot_be_read_commits_nothing_and_is_skipped_with_its_reason(how, co, clean,
                                                                                    tmp_path):
    out = _copy(clean, tmp_path)
    BREAK[how](_part(out, "runs", "n3", 1))
    store, ref = Store(out, KEYS), Store(clean, KEYS)
    where = r"runs/scenario=n3/point=0/replication=1/part-0\.parquet: not a readable record"
    with pytest.warns(StoreWarning, match=where):
        runs = store.records()
    # every readable record is kept, as it was
    pd.testing.assert_frame_equal(runs, _without(ref.records(), "n3", 1), check_exact=True)
    with pytest.warns(StoreWarning, match=where):
        pd.testing.assert_frame_equal(store.read("runs"), runs, check_exact=True)
    with pytest.warns(StoreWarning, match=where):
        _reads_as(out, clean, without=("n3", 1))
    with pytest.warns(StoreWarning, match=where):
        assert store.done() == {("n2", 0, 0), ("n2", 0, 1), ("n3", 0, 0)}
    with pytest.warns(StoreWarning, match=where):
        res = _experiment(co, out)
    assert _rerun_submitted(res) == {("n3", 0, 1)}
    _reads_as(out, clean)                                    # no warning left: the record is whole
    pd.testing.assert_frame_equal(Store(out, KEYS).records().drop(columns=TIMING),
                                  ref.records().drop(columns=TIMING), check_exact=True)


def test_a_committed_part_that_cannot_be_read_is_an_error_naming_it(clean, tmp_path):
    out = _copy(clean, tmp_path)
    BREAK["garbage"](_part(out, "calls", "n3", 1))
    store = Store(out, KEYS)
    with pytest.raises(StoreCorrupt, match=r"calls/scenario=n3/point=0/replication=1/part-0\.parquet: "
                                           r"a committed part cannot be read"):
        store.read("calls")
    pd.testing.assert_frame_equal(store.read("kpis"), Store(clean, KEYS).read("kpis"), check_exact=True)


def test_a_replication_only_of_a_later_prefix_is_not_opened(clean, tmp_path):
    """``read(table, replications=1)`` opens the parts of replication 0 only."""
    out = _copy(clean, tmp_path)
    for table in TABLES:
        BREAK["garbage"](_part(out, table, "n3", 1))
    ref = Store(clean, KEYS)
    for table in TABLES:
        want = ref.read(table)
        pd.testing.assert_frame_equal(Store(out, KEYS).read(table, 1), want[want["replication"] < 1]
                                      .reset_index(drop=True), check_exact=True)


def _as_values(df: pd.DataFrame) -> pd.DataFrame:
    """Every column as Python objects (a categorical as its values, nulls as None): what is
    compared when the same values come with other dtypes (categories, a null-typed column)."""
    return df.astype(object).where(df.notna(), None).reset_index(drop=True)


def _check_parts_kept(store: Store, table: str, parts: dict[tuple[str, int], pd.DataFrame]) -> pd.DataFrame:
    """Each (scenario, replication)'s rows of ``store.read(table)`` are exactly the frame it
    wrote (``parts``), value for value, columns in the same order; returns the read."""
    got = store.read(table)
    assert len(got) == sum(len(df) for df in parts.values())
    for (s, r), df in parts.items():
        rows = got[(got["scenario"] == s) & (got["replication"] == r)].drop(columns=["scenario", "point",
                                                                                      "replication"])
        assert list(rows.columns) == list(df.columns)
        pd.testing.assert_frame_equal(_as_values(rows), _as_values(df), check_exact=True, obj=f"{s} r{r}")
    return got


def test_committed_parts_whose_types_differ_combine_with_every_value_kept(tmp_path):
    """A column all null in one part (Arrow type null: an empty categorical, text never set),
    categories with int8 codes in one and int16 in another: the combined column has the type of
    the parts that hold values, and every value of every part."""
    store = Store.open(tmp_path / "exp", {"cells": [{"scenario": "a", "point": 0}]}, {})
    many = [f"zone{i:03d}" for i in range(300)]                   # int16 codes
    parts = {
        ("a", 0): pd.DataFrame({"cat": pd.Categorical(["zone299", "zone007", None], categories=many),
                                "dest": pd.Categorical([None, None, None], categories=[]),
                                "text": [None, None, None],
                                "id": pd.array([pd.NA, pd.NA, pd.NA], dtype="Int64"),
                                "value": [0.1, np.nan, 2.5]}),
        ("a", 1): pd.DataFrame({"cat": pd.Categorical(["b", "a"], categories=["a", "b"]),   # int8 codes
                                "dest": pd.Categorical(["jail", "shelter"]),
                                "text": ["x", "y"],
                                "id": pd.array([3, pd.NA], dtype="Int64"),
                                "value": [1 / 3, 7.0]}),
    }
    try:
        for (s, r), df in parts.items():
            tables = store.write_frames(s, 0, r, {"mixed": df})
            store.commit({"scenario": s, "point": 0, "replication": r, "status": "ok", "tables": tables})
    finally:
        store.close()
    assert str(pq.ParquetFile(_part(store.root, "mixed", "a", 0)).schema_arrow.field("dest").type) == "null"
    got = _check_parts_kept(Store(store.root, ["a"]), "mixed", parts)
    assert got["dest"].dtype == "category" and list(got["dest"].cat.categories) == ["jail", "shelter"]
    assert set(got["cat"].cat.categories) == set(many) | {"a", "b"}
    assert str(got["id"].dtype) == "Int64" and got["value"].dtype == "float64"


def test_a_compare_whose_scenarios_log_other_types_reads_back_every_value(tmp_path):
    """The audit's case: in a compare of the city of a million (no facility: ``destination``
    all null, which the model wrote as Arrow's null type when the audit ran) with CAHOOTS
    (destinations logged), every value of either is read back, whatever types the parts have
    (the null type itself: the hand-made store above)."""
    out = tmp_path / "mixed"
    ss = [sim.load_scenario(ROOT / "scenarios/scale/city_1m.yaml", {"horizon_days": 0.3, "warmup_days": 0}),
          sim.load_scenario(ROOT / "scenarios/eugene/cahoots.yaml", {"horizon_days": 2, "warmup_days": 0})]
    keys = ["a_scale", "b_cahoots"]
    compare(ss, replications=1, seed=1, labels=keys, workers=1, out=out)
    store = Store(out, keys)
    for table in TABLES:
        alone = {(s, 0): pd.read_parquet(_part(out, table, s, 0)) for s in keys}
        if table in ("calls", "assignments"):             # read back in call order
            alone = {k: df.sort_values("call_id", kind="stable") for k, df in alone.items()}
        got = _check_parts_kept(store, table, alone)
        for c in got.columns[3:]:         # a dtype follows the parts that hold values
            typed = [df[c].dtype for df in alone.values() if df[c].notna().any()]
            if typed and not isinstance(typed[0], pd.CategoricalDtype):
                assert got[c].dtype == typed[0], (table, c)
    calls = store.read("calls")
    cahoots = pd.read_parquet(_part(out, "calls", "b_cahoots", 0))
    assert cahoots["destination"].notna().sum() > 0
    assert calls.loc[calls["scenario"] == "b_cahoots", "destination"].notna().sum() == \
        cahoots["destination"].notna().sum()
    assert calls["destination"].dtype == "category"


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names an fd by /proc/self/fd (Linux)")
def test_every_file_is_flushed_before_its_rename_and_a_replications_files_before_its_record(co, tmp_path,
                                                                                          monkeypatch):
    """Durability: after a power loss a file is there whole or not at all, and a record is
    never there without its replication's files. Replayed from every ``fsync`` and
    ``os.replace`` of an experiment: each file's data is flushed before it is renamed into
    place and its folder after; every folder a part lies in is flushed into its parent; all of
    that before the replication's record is renamed into place."""
    events: list[tuple] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst, *a, **kw):
        real_replace(src, dst, *a, **kw)
        events.append(("replace", os.path.abspath(src), os.path.abspath(dst)))

    out = tmp_path.resolve() / "exp"
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    _experiment(co, out)
    monkeypatch.undo()

    synced = [(i, e[1]) for i, e in enumerate(events) if e[0] == "fsync"]
    onto = {}
    for i, e in enumerate(events):
        if e[0] == "replace":
            onto[e[2]] = (i, e[1])                       # the last rename onto each path

    def flushed(path, after: int = -1, before: int = len(events)) -> bool:
        return any(after < i < before and p == str(path) for i, p in synced)

    files = [f for f in out.rglob("*") if f.is_file() and f.name not in ("log.jsonl", ".lock")]
    assert len(files) > 30
    for f in files:
        assert str(f) in onto, f"{f} was not written by a rename"
        i, src = onto[str(f)]
        assert flushed(src, before=i), f"{f}: not flushed before its rename"
        assert flushed(f.parent, after=i), f"{f}: its folder not flushed after the rename"
    records = sorted(out.glob(f"runs/*/*/*/{PART_FILE}"))
    assert len(records) == 4
    for record in records:
        rel = record.relative_to(out / "runs").parent
        i_record = onto[str(record)][0]
        table_names = pd.read_parquet(record)["tables"].iloc[0].split(",")
        assert {"kpis", "calls", "assignments", "pools", "hourly"} <= set(table_names)
        for table in table_names:
            part = out / table / rel / PART_FILE
            i, _ = onto[str(part)]
            assert i < i_record and flushed(part.parent, after=i, before=i_record), part
            for folder in (out / table / rel, out / table / rel.parent, out / table / rel.parent.parent):
                assert flushed(folder.parent, before=i_record), (folder, "not flushed into its parent")


def test_the_sweep_deletes_only_temporary_folders_of_processes_that_are_gone(tmp_path):
    """``sweep_stale_temporary``: a ``crisis-sim-*`` folder goes when its ``.lock`` is not held
    and names a process that is gone; one held (even naming a dead process), one naming a live
    process, one without a lock and a folder of another name stay."""
    import fcntl
    import subprocess
    import sys
    from sim.store import sweep_stale_temporary
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    dead = p.pid

    def folder(name, owner=None):
        d = tmp_path / name
        (d / "calls").mkdir(parents=True)
        (d / "calls" / ".part-0.parquet.partial").write_bytes(b"PAR1")
        if owner is not None:
            (d / ".lock").write_text(owner)
        return d
    gone = folder("crisis-sim-gone", f"process {dead}")
    stage = folder("crisis-sim-stage-gone", f"process {dead}")
    held = folder("crisis-sim-held", f"process {dead}")
    live = folder("crisis-sim-live", f"process {os.getpid()}")
    bare = folder("crisis-sim-bare")
    setting_up = folder("crisis-sim-setting-up", "")
    other = folder("other-gone", f"process {dead}")
    fd = os.open(held / ".lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert sorted(sweep_stale_temporary(tmp_path)) == [gone, stage]
    finally:
        os.close(fd)
    assert not gone.exists() and not stage.exists()
    assert all(d.is_dir() for d in (held, live, bare, setting_up, other))
    assert sweep_stale_temporary(tmp_path) == [held]            # once its holder let go


def test_a_second_writer_of_the_same_experiment_says_it_waits(tmp_path, capsys):
    # the folder's lock is held: a second writer with the same settings waits, and says so on
    # stderr at once (a silent wait looks like a hang), then opens once the first one closes
    import threading
    settings = {"kind": "compare", "keep_calls": True, "cells": [{"scenario": "x", "point": 0}]}
    first = Store.open(tmp_path / "out", settings, {})
    opened = []
    waiter = threading.Thread(target=lambda: opened.append(Store.open(tmp_path / "out", settings, {})))
    waiter.start()
    for _ in range(200):
        err = capsys.readouterr().err
        if err:
            break
        waiter.join(timeout=0.02)
    assert not opened                                    # still waiting when it spoke
    said = [line for line in err.splitlines() if "running this same experiment" in line]
    assert len(said) == 1 and str(tmp_path / "out") in said[0] and f"process {os.getpid()}" in said[0]
    first.close()
    waiter.join(timeout=20)
    assert opened
    opened[0].close()
