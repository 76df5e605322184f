"""Paths that read a replication's whole call log work from the streamed file, batch by batch,
with the very values of the old in-memory computation (compared exactly: no tolerance).

Each reference below is the code the path ran before (issue 17), kept here only as the
reference. The logs are written in small row groups (``calllog.ROW_GROUP`` lowered), so a
file holds many row groups in the order calls finished, not in call order, and is read in
batches that split them: the cases where a streamed computation could differ.
"""
import math

import numpy as np
import pandas as pd
import pytest

import sim
from sim import calllog
from sim import optimize as opt
from sim.experiment import compare
from sim.metrics import kpis
from sim.plots import hour_of_week

SHIPPED = "scenarios/eugene/cahoots.yaml"
CITY = "scenarios/scale/city_100k.yaml"
SMALL_GROUPS = 600           # calls per row group while these tests write logs
BATCH = 377                  # rows per batch read back (splits the row groups)


@pytest.fixture
def small_groups(monkeypatch):
    monkeypatch.setattr(calllog, "ROW_GROUP", SMALL_GROUPS)


def _exactly(new: dict, old: dict) -> None:
    assert sorted(new) == sorted(old)
    pd.testing.assert_series_equal(pd.Series(new, dtype=float).sort_index(), pd.Series(old, dtype=float).sort_index(),
                                   check_exact=True)


# --------------------------------------------------------------------------- optimize


def _old_block_kpis(calls, pools, scenario, targets):
    """sim.optimize.block_kpis before streaming: kpis() of each block's rows of the whole log."""
    out = {}
    how = hour_of_week(calls["t_received"].to_numpy(float))
    for t in targets:
        if t.per_block is None:
            continue
        h, over = t.per_block.hours, t.per_block.over
        block = (how % 24) // h if over == "day" else how // h
        for i, lab in enumerate(opt._block_labels(h, over)):
            sub = calls[block == i]
            out[f"{t.kpi}@{lab}"] = kpis(sub, pools, scenario.horizon_days, scenario=scenario).get(
                t.kpi, math.nan) if len(sub) else math.nan
    return out


BLOCK_TARGETS = [opt.TargetSpec(kpi="fallback_rate", at_most=0.2, per_block={"hours": 6}),
                 opt.TargetSpec(kpi="response_time_p90", at_most=60, per_block={"hours": 4}),
                 opt.TargetSpec(kpi="response_time_mean.eligible", at_most=30, per_block={"hours": 8, "over": "week"}),
                 opt.TargetSpec(kpi="share_within_30", at_least=0.8, per_block={"hours": 6}),
                 opt.TargetSpec(kpi="police_hours", at_most=1e9, per_block={"hours": 12})]


@pytest.mark.parametrize("path, days", [(SHIPPED, 10), (CITY, 9)])
def test_block_kpis_from_the_stored_logs_equal_the_in_memory_ones(path, days, small_groups, tmp_path):
    s = sim.load_scenario(path, [f"horizon_days={days}", "warmup_days=1"])
    res = compare([s], replications=2, seed=5, labels=["a"], out=tmp_path / "store", workers=1)
    calls = res.calls                                    # the old path: every replication's log in memory
    assert len(calls) > 4 * SMALL_GROUPS
    for r in range(2):
        part = res.store.part("calls", "a", 0, r)
        assert calllog.row_count(part) > SMALL_GROUPS
        pools = res.pools[res.pools["replication"] == r]
        old = _old_block_kpis(calls[calls["replication"] == r], pools, s, BLOCK_TARGETS)
        assert sum(v == v for v in old.values()) > 20          # the blocks have values to compare
        _exactly(opt.block_kpis_from_file(part, pools, s, BLOCK_TARGETS, rows=BATCH), old)
        _exactly(opt.block_kpis(calls[calls["replication"] == r], pools, s, BLOCK_TARGETS), old)


def test_the_search_reads_per_block_values_from_the_stored_logs(small_groups, tmp_path):
    """_Search.evaluate (the optimizer's only reader of call logs) gives, per replication,
    the old values of every per-block target."""
    spec = opt.OptimizeSpec.model_validate({
        "decisions": [{"pool": "crisis", "blocks": {"hours": 6}, "min": 0, "max": 4}],
        "targets": [t.model_dump(exclude_none=True) for t in BLOCK_TARGETS[:2]],
        "overrides": {"horizon_days": 6, "warmup_days": 1}})
    search = opt._Search("tests/data/optimize_peaked.yaml", spec, tmp_path / "opt", seed=3, overrides=None,
                         workers=1, backend="local", scheduler=None, budget=None, progress=None)
    x = (2, 3, 3, 2)
    e = search.evaluate([x], 2, 3)[0]
    folder = next((tmp_path / "opt" / "evals").iterdir())
    res = compare([search.scenario(x)], replications=2, seed=3, labels=[e.key], out=folder, workers=1)
    assert search.computed == 2 and len(res.runs) == 2                     # replayed, not rerun
    calls, s = res.calls, search.scenario(x)
    for r in range(2):
        old = _old_block_kpis(calls[calls["replication"] == r], res.pools[res.pools["replication"] == r], s,
                              search.spec.targets)
        new = {k: float(e.values.loc[r, k]) for k in old}
        assert sum(v == v for v in old.values()) >= 8
        _exactly(new, old)
