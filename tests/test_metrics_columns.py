"""City scale (issue 17): sim.metrics reads only the call-log columns it declares, so a
replication's KPIs can come from those columns read back from calls.parquet, and kpis()
works from masks and column arrays, not masked copies of the whole frame."""
from __future__ import annotations

import functools
import math
import tracemalloc
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import sim
from sim import calibrate
from sim.experiment import single_run
from sim.metrics import AUDIT_CALL_COLUMNS, KPI_CALL_COLUMNS, kpis, resource_audit
from sim.model import Model

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
SHORT = {"horizon_days": 14, "warmup_days": 2}
# every shipped scenario but the synthetic big cities, and one whose calls stay open at the end
# (the only kind of run in which kpis reads ``waiting_for``: an unfinished call no unit holds)
CASES = [f for f in calibrate.scenario_files([SCENARIOS]) if "scale" not in f.relative_to(SCENARIOS).parts] \
    + [ROOT / "tests/data/bad/unstaffed_police.yaml"]


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


@functools.lru_cache(maxsize=None)
def run(path: Path):
    """(scenario, calls, pools, facilities, kpis) of one short replication."""
    s = sim.load_scenario(path, SHORT)
    res, k = single_run(s, seed=3, replication=0)
    return s, res.calls, res.pools, res.facilities, k


def round_trip(calls: pd.DataFrame, path: Path, columns) -> pd.DataFrame:
    """``calls`` written to Parquet in row groups (as a streaming writer does), then only
    ``columns`` (those the file has) read back."""
    pq.write_table(pa.Table.from_pandas(calls, preserve_index=False), path, row_group_size=1000)
    names = set(pq.read_schema(path).names)
    return pq.read_table(path, columns=[c for c in columns if c in names]).to_pandas()


def differences(a: dict, b: dict) -> list[str]:
    """Keys that only one has, and keys whose values differ (NaN equals NaN)."""
    out = sorted(set(a) ^ set(b))
    return out + [k for k in a if k in b and not (a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])))]


@pytest.mark.parametrize("path", CASES, ids=rel)
def test_kpis_from_the_declared_columns_after_parquet_are_the_kpis_of_the_whole_log(path, tmp_path):
    s, calls, pools, facilities, full = run(path)
    assert full["calls"] > 0
    part = round_trip(calls, tmp_path / "calls.parquet", KPI_CALL_COLUMNS)
    assert set(part.columns) < set(calls.columns)
    assert isinstance(part["outcome"].dtype, pd.CategoricalDtype)          # categories come back
    assert differences(kpis(part, pools, s.horizon_days, facilities, s), full) == []
    # the same columns holding text instead: in memory (object) and after Parquet (str)
    text = part.astype({c: object for c in part.columns if isinstance(part[c].dtype, pd.CategoricalDtype)})
    assert differences(kpis(text, pools, s.horizon_days, facilities, s), full) == []
    text = round_trip(text, tmp_path / "text.parquet", KPI_CALL_COLUMNS)
    assert not isinstance(text["outcome"].dtype, pd.CategoricalDtype)
    assert differences(kpis(text, pools, s.horizon_days, facilities, s), full) == []


@pytest.mark.parametrize("column", KPI_CALL_COLUMNS)
def test_every_declared_column_is_read(column):
    """Without it kpis fails or gives other numbers on some case (the list holds nothing extra)."""
    for path in CASES:
        s, calls, pools, facilities, full = run(path)
        part = calls[[c for c in KPI_CALL_COLUMNS if c in calls and c != column]]
        try:
            k = kpis(part, pools, s.horizon_days, facilities, s)
        except KeyError:
            return
        if differences(k, full):
            return
    pytest.fail(f"kpis gives the same numbers without {column!r} on every case")


def test_resource_audit_from_the_declared_columns_is_the_same(tmp_path):
    s = sim.load_scenario(ROOT / "scenarios/eugene/cahoots.yaml", SHORT)
    m = Model(s, 3, 0)
    res = m.run()
    info, t0, t1 = m._pool_info(), s.warmup_min, s.end_min
    full = resource_audit(res.assignments, res.calls, info, t0, t1)
    pd.testing.assert_frame_equal(full, res.pools.drop(columns=["scenario", "replication"]), check_exact=True)
    part = round_trip(res.calls, tmp_path / "calls.parquet", AUDIT_CALL_COLUMNS)
    assert list(part.columns) == list(AUDIT_CALL_COLUMNS)
    pd.testing.assert_frame_equal(resource_audit(res.assignments, part, info, t0, t1), full, check_exact=True)
    assert full["calls_served"].sum() > 0
    for column in AUDIT_CALL_COLUMNS:                       # each one is read
        with pytest.raises(KeyError):
            resource_audit(res.assignments, part.drop(columns=column), info, t0, t1)


def test_kpis_peak_memory_is_a_fraction_of_the_call_log():
    """tracemalloc peak of what kpis allocates, against the call log's size (Eugene CAHOOTS,
    60 days, ~20,500 rows, 6.1 MB, 295 B a row). Measured 2026-12-01: before (masked copies
    of the frame) 14.4 MB = 2.37x the frame; now (masks and column arrays) 1.5 MB = 0.25x.
    The bound leaves room for other pandas versions, and the old code is far above it."""
    s = sim.load_scenario(ROOT / "scenarios/eugene/cahoots.yaml", {"horizon_days": 60, "warmup_days": 2})
    res = Model(s, 3, 0).run()
    calls = res.calls
    size = calls.memory_usage(deep=True).sum()
    first = kpis(calls, res.pools, s.horizon_days, res.facilities, s)    # warm up (first-call caches)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        again = kpis(calls, res.pools, s.horizon_days, res.facilities, s)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert differences(again, first) == []
    assert len(calls) > 15_000
    assert peak < 0.5 * size, f"kpis peak {peak / 1e6:.2f} MB = {peak / size:.2f}x the {size / 1e6:.2f} MB log"


def test_kpis_without_a_resource_audit_give_every_call_kpi_and_no_pool_kpi():
    s = sim.load_scenario(ROOT / "scenarios/eugene/cahoots.yaml", {"horizon_days": 3, "warmup_days": 1})
    res, full = single_run(s, seed=2, replication=0)
    bare = kpis(res.calls, None, s.horizon_days, res.facilities, s)
    pool_keys = {k for k in full if k.split(".")[0] in ("utilisation", "overtime_hours", "cost_per_call")}
    assert pool_keys and not pool_keys & set(bare)
    assert not differences({k: v for k, v in full.items() if k not in pool_keys | {"cost_total", "cost_per_year"}},
                           {k: v for k, v in bare.items() if k not in {"cost_total", "cost_per_year"}})
