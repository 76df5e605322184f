"""City scale (issue 17, 1e7 calls): the audits and KPIs of a streamed replication are
computed from its files a batch of rows at a time (metrics.audits_from_files,
metrics.kpis_from_file), with the very code and numbers of the logs in memory (one batch),
in memory bounded by a batch plus a few bytes per call."""
from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import sim
from sim import metrics
from sim.calllog import LogFiles
from sim.metrics import ExactSum, audits_from_files, hourly_audit, kpis, kpis_from_file, resource_audit
from sim.model import Model
from test_invariants import scenarios
from test_metrics_columns import differences

ROOT = Path(__file__).resolve().parents[1]


def _both(s, seed: int, folder: Path):
    """(model, in-memory result, streamed log files) of the same replication."""
    m = Model(s, seed, 0)
    mem = m.run()
    files = LogFiles(folder / "calls.parquet", folder / "assignments.parquet")
    Model(s, seed, 0, stream=files).run()
    return m, mem, files


def _check_files_equal_memory(s, seed: int, folder: Path, rows: int | None) -> None:
    m, mem, files = _both(s, seed, folder)
    info, t0, t1 = m._pool_info(), s.warmup_min, s.end_min
    pools, hourly = audits_from_files(files.calls.path, files.assignments.path, info, t0, t1, rows=rows)
    bare = ["scenario", "replication"]
    pd.testing.assert_frame_equal(pools, mem.pools.drop(columns=bare), check_exact=True)
    pd.testing.assert_frame_equal(hourly, mem.hourly.drop(columns=bare), check_exact=True)
    want = kpis(mem.calls, mem.pools, s.horizon_days, mem.facilities, s)
    got = kpis_from_file(files.calls.path, mem.pools, s.horizon_days, mem.facilities, s, rows=rows)
    assert not differences(got, want)
    assert list(got) == list(want)               # the same KPIs in the same order


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(scenarios(), st.integers(0, 2**31 - 1), st.sampled_from([3, 17, 100, None]))
def test_kpis_and_audits_from_files_are_those_in_memory_on_random_scenarios(tmp_path_factory, s, seed, rows):
    _check_files_equal_memory(s, seed, tmp_path_factory.mktemp("files"), rows)


@pytest.mark.parametrize("path, rows", [("scenarios/eugene/cahoots.yaml", 1),
                                        ("scenarios/los_angeles/meu_smart.yaml", 2),
                                        ("tests/data/bad/unstaffed_police.yaml", 5)])
def test_batches_of_one_row_and_more_give_the_same_numbers(path, rows, tmp_path):
    """Batches that cut the log at every row (and every few rows): calls of every kind,
    warm-up, unfinished and outreach rows fall in batches of their own."""
    s = sim.load_scenario(ROOT / path, {"horizon_days": 0.75 if rows == 1 else 2, "warmup_days": 0.25})
    _check_files_equal_memory(s, 11, tmp_path, rows)


def _exact_mean(values) -> float:
    x = [Fraction(v) for v in np.asarray(values, float) if not math.isnan(v)]
    return float(sum(x) / len(x)) if x else math.nan


def _overlap(a: float, b: float, lo: float, hi: float) -> Fraction:
    return max(Fraction(0), min(Fraction(b), Fraction(hi)) - max(Fraction(a), Fraction(lo)))


def test_totals_are_exact_on_fixed_durations(tmp_path):
    """Fixed durations (tests/data/fixed.yaml, its medics sworn so that police hours count):
    every mean is the exact mean rounded once, busy minutes the exact sum of each span's
    clipped minutes, and each hour of the week's busy minutes the exact integral of the
    spans over its hours, as fractions computed here from the files."""
    s = sim.load_scenario(ROOT / "tests/data/fixed.yaml", {"roles.medic.sworn": True, "warmup_days": 1,
                                                            "horizon_days": 9})
    m, mem, files = _both(s, 5, tmp_path)
    info, t0, t1 = m._pool_info(), s.warmup_min, s.end_min
    pools, hourly = audits_from_files(files.calls.path, files.assignments.path, info, t0, t1, rows=7)
    k = kpis_from_file(files.calls.path, pools, s.horizon_days, mem.facilities, s, rows=7)
    calls = pd.read_parquet(files.calls.path)
    c = calls[~calls["warmup"]]
    assert len(c) > 300 and (c["police_minutes"] > 0).all()
    assert k["response_time_mean"] == _exact_mean(c["response_time"])
    assert k["queue_wait_mean"] == _exact_mean(c["queue_wait"])
    assert k["travel_time_mean"] == _exact_mean(c["travel_time"])
    assert k["police_hours"] == float(sum(Fraction(v) for v in c["police_minutes"])) / 60.0
    # ... where numpy's pairwise float sum is another number on some of them
    work = pd.read_parquet(files.assignments.path)
    terms = (np.clip(work["t_released"], t0, t1) - np.clip(work["t_assigned"], t0, t1)).to_numpy()
    assert pools.loc[0, "busy_min"] == float(sum(Fraction(v) for v in terms))
    expected = {}
    for a, b in zip(work["t_assigned"].tolist(), work["t_released"].tolist()):
        for h in range(math.ceil(t0 / 60), int(t1 // 60)):
            if a < 60 * (h + 1) and b > 60 * h:
                expected[h % 168] = expected.get(h % 168, 0) + _overlap(a, b, 60 * h, 60 * (h + 1))
    got = dict(zip(hourly["hour_of_week"], hourly["busy_min"]))
    assert got == {h: float(v) for h, v in expected.items()} | {h: 0.0 for h in got if h not in expected}
    assert set(got) == set(range(168))


def test_exact_sum_is_exact_in_any_order_and_split():
    """Sums a float sum gets wrong (cancellation, tiny and huge values, subnormals)."""
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(0, 1, 5000) * 10.0 ** rng.integers(-30, 30, 5000),
                        [1e300, -1e300, 5e-324, 2.5e-310, -0.0, 1e16, 1.0, -1e16, np.nan]])
    exact = sum(Fraction(v) for v in x if not math.isnan(v))
    whole = ExactSum().add(x)
    assert whole.total() == float(exact) and whole.mean() == float(exact / (len(x) - 1))
    assert float(np.sum(x[~np.isnan(x)])) != float(exact)          # a float sum is off here
    parts = ExactSum()
    order = rng.permutation(len(x))
    for chunk in np.array_split(x[order], 37):
        parts.add(chunk)
    assert parts.total() == whole.total() and parts.count[0] == len(x) - 1
    binned = ExactSum(3).add(x, np.arange(len(x)) % 3)
    for i in range(3):
        assert binned.total(i) == float(sum(Fraction(v) for v in x[i::3] if not math.isnan(v)))
    # the fast path for whole multiples of 2**-47 (times less an hour's start), others mixed in
    t = np.concatenate([rng.uniform(60, 1e6, 3000), [1e-9, 0.3, -2.0 ** -60, np.nan, 2.0 ** 60]])
    hours = np.floor(t[:3000] / 60) * 60
    y = np.concatenate([t[:3000] - hours, -(t[:3000] - hours)[:100], t[3000:]])
    b = np.arange(len(y)) % 2
    fast = ExactSum(2).add_multiples(y, b, -47)
    for i in range(2):
        assert fast.total(i) == float(sum(Fraction(v) for v in y[b == i] if not math.isnan(v)))
        assert fast.count[i] == (~np.isnan(y[b == i])).sum()
    assert math.isnan(ExactSum().mean()) and ExactSum().total() == 0.0
    assert ExactSum().add([1.0, math.inf]).total() == math.inf


class _Reads:
    """Every read of a Parquet file: the rows and columns of each batch it gives."""

    def __init__(self, monkeypatch):
        self.batches: list[tuple[int, tuple[str, ...]]] = []
        real = pq.ParquetFile.iter_batches
        reads = self

        def iter_batches(f, *args, **kwargs):
            for b in real(f, *args, **kwargs):
                reads.batches.append((b.num_rows, tuple(b.schema.names)))
                yield b

        def whole(*args, **kwargs):
            raise AssertionError("a whole file, row group or column read")
        monkeypatch.setattr(pq.ParquetFile, "iter_batches", iter_batches)
        for name in ("read", "read_row_group", "read_row_groups"):
            monkeypatch.setattr(pq.ParquetFile, name, whole)
        monkeypatch.setattr(pq, "read_table", whole)


def test_the_file_path_reads_a_batch_at_a_time_and_keeps_12_bytes_a_call_on_scene(tmp_path, monkeypatch):
    """The bound is a property: no read gives more than ``rows`` rows (nothing reads a whole
    file, row group or column), and the KPIs keep 12 bytes per call reached on scene."""
    s = sim.load_scenario(ROOT / "scenarios/eugene/cahoots.yaml", {"horizon_days": 5, "warmup_days": 1})
    m, mem, files = _both(s, 2, tmp_path)
    info, t0, t1 = m._pool_info(), s.warmup_min, s.end_min
    n = len(mem.calls)
    rows = 250
    want = kpis(mem.calls, mem.pools, s.horizon_days, mem.facilities, s)
    reads = _Reads(monkeypatch)
    kept = []
    add = metrics._CallTotals.add

    def spy(self, calls):
        out = add(self, calls)
        kept.append(self.kept_bytes())
        return out
    monkeypatch.setattr(metrics._CallTotals, "add", spy)
    pools, hourly = audits_from_files(files.calls.path, files.assignments.path, info, t0, t1, rows=rows)
    k = kpis_from_file(files.calls.path, pools, s.horizon_days, mem.facilities, s, rows=rows)
    assert not differences(k, want)
    assert max(r for r, _ in reads.batches) == rows
    widest = max(reads.batches, key=lambda b: len(b[1]))[1]
    assert set(widest) == set(metrics.KPI_CALL_COLUMNS) & set(mem.calls.columns)
    assert sum(r for r, cols in reads.batches if cols == widest) == n      # the log, once, in batches
    assert len(kept) == sum(1 for _, cols in reads.batches if cols == widest) >= math.ceil(n / rows)
    c = mem.calls
    on_scene = ~c["warmup"] & (c["outcome"] != "prevented") & ~c["proactive"] & c["response_time"].notna()
    assert kept[-1] == 12 * on_scene.sum() > 0


def test_in_memory_audits_are_one_batch_of_the_file_path(tmp_path):
    """resource_audit / hourly_audit on frames (what Model.run does without streaming) are
    the file path's numbers with the log as one batch."""
    s = sim.load_scenario(ROOT / "scenarios/template/co_responder.yaml", {"horizon_days": 4, "warmup_days": 1})
    m, mem, files = _both(s, 4, tmp_path)
    info, t0, t1 = m._pool_info(), s.warmup_min, s.end_min
    pools, hourly = audits_from_files(files.calls.path, files.assignments.path, info, t0, t1, rows=10 ** 9)
    pd.testing.assert_frame_equal(resource_audit(mem.assignments, mem.calls, info, t0, t1), pools, check_exact=True)
    pd.testing.assert_frame_equal(hourly_audit(mem.assignments, info, t0, t1), hourly, check_exact=True)
    assert pools["calls_served"].sum() > 0 and hourly["busy_min"].sum() > 0
