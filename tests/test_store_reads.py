"""The store reads what is committed and nothing else (issue 17): the part files of a
replication without a record are never opened, whole, broken or of another schema, so they
change no committed value and do not stop the rerun; a record that cannot be read commits
nothing and is skipped with a reason; committed parts whose Arrow types differ (a column
all null in one) combine with every value kept."""
from __future__ import annotations

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
