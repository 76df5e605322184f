"""Paths that read a replication's whole call log work from the streamed file, batch by batch,
with the very values of the old in-memory computation (compared exactly: no tolerance).

Each reference below is the code the path ran before (issue 17), kept here only as the
reference. The logs are written in small row groups (``calllog.ROW_GROUP`` lowered), so a
file holds many row groups in the order calls finished, not in call order, and is read in
batches that split them: the cases where a streamed computation could differ.
"""
import math
from fractions import Fraction

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
    res = compare([s], replications=1, seed=5, labels=["a"], out=tmp_path / "store", workers=1)
    calls = res.calls                                    # the old path: every replication's log in memory
    assert len(calls) > 4 * SMALL_GROUPS
    for r in range(1):
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


# --------------------------------------------------------------------------- warm-up profile


def _exact_period_means(values, bins, nb: int) -> np.ndarray:
    """Each period's mean of the non-NaN values, from sums exact by rational arithmetic and
    one rounding (the reference for the period means, whose sums are exact)."""
    values, bins = np.asarray(values, float), np.asarray(bins)
    out = np.full(nb, math.nan)
    for i in range(nb):
        v = values[(bins == i) & ~np.isnan(values)]
        if len(v):
            out[i] = float(sum(map(Fraction, v.tolist())) / len(v))
    return out


def _old_profile(res, scenario, replications, metric, period_days):
    """sim.experiment.warmup_profile before streaming: every replication's log (res.calls_all,
    the store's rows in call order) in memory, then per replication."""
    from sim.experiment import _step_means
    kind, _, name = metric.partition(".")
    period = period_days * 1440.0
    edges = np.arange(0.0, scenario.end_min + period / 2, period)
    table = res.calls_all
    frames = []
    for r in range(replications):
        c = table[table["replication"] == r]
        if kind == "busy":
            c = c[c["pool"] == name]
            ends = np.nan_to_num(c["t_team_free"].to_numpy(float), nan=scenario.end_min)
            t = np.concatenate([c["t_dispatched"].to_numpy(float), ends])
            order = np.argsort(t, kind="stable")
            steps = np.concatenate([np.ones(len(c)), -np.ones(len(c))])[order]
            value = _step_means(t[order], np.cumsum(steps), edges)
        else:
            bins = np.searchsorted(edges, c["t_received"].to_numpy(float), side="right") - 1
            value = _exact_period_means(c[metric].to_numpy(float), bins, len(edges) - 1)
        frames.append(pd.DataFrame({"replication": r, "day": edges[:-1] / 1440.0, "value": value,
                                    "running_mean": pd.Series(value).expanding().mean().to_numpy()}))
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("path, days, groups, batch, metrics, period", [
    ("scenarios/portland/street_medicine.yaml", 60, 120, 77,       # outreach rows come last in the log
     ["response_time", "queue_wait", "person", "busy.street_medicine"], 1.0),      # person: an id, nulls stored
    (CITY, 8, SMALL_GROUPS, BATCH,                                 # x_km: no NaN, sorted by period
     ["response_time", "travel_time", "x_km", "busy.crisis_team", "busy.police"], 0.25)])
def test_warmup_profile_from_the_stored_logs_equals_the_in_memory_one(path, days, groups, batch, metrics, period,
                                                                        monkeypatch):
    from sim.experiment import Cell, _execute, _profile, _slug
    monkeypatch.setattr(calllog, "ROW_GROUP", groups)
    s = sim.load_scenario(path, [f"horizon_days={days}"])
    res = _execute("warmup", [Cell(s, _slug(s.name), 0, 7)], 2, workers=1)
    try:
        assert all(calllog.row_count(p) > 4 * groups for _, p in res.log_parts("calls"))
        for metric in metrics:
            old = _old_profile(res, s, 2, metric, period)
            assert old["value"].notna().sum() > 20 and old["value"].nunique() > 10
            for rows in (batch, None):
                pd.testing.assert_frame_equal(_profile(res, s, 2, metric, period, rows), old, check_exact=True)
    finally:
        res.store.remove_temporary()


def test_warmup_profile_is_the_old_profile_of_the_same_runs(small_groups):
    from sim.experiment import Cell, _execute, _slug, warmup_profile
    s = sim.load_scenario(CITY, ["horizon_days=6"])
    new = warmup_profile(s, replications=2, seed=4, metric="response_time", period_days=0.5, workers=1)
    res = _execute("warmup", [Cell(s, _slug(s.name), 0, 4)], 2, workers=1)
    try:
        pd.testing.assert_frame_equal(new, _old_profile(res, s, 2, "response_time", 0.5), check_exact=True)
    finally:
        res.store.remove_temporary()


# --------------------------------------------------------------------------- calibration


def _program_kpis_whole_frame(calls, horizon_days):
    """sim.metrics.program_kpis as it was before it became a batch accumulator: the whole log
    at once (the reference the accumulator, over one batch or many, must equal exactly)."""
    from sim.metrics import _categories, _incoming, _mean, _rate, _Rows
    measured = _Rows(calls, ~calls["warmup"].to_numpy(bool))
    c = _incoming(calls)
    n = len(c)
    year, month = 365.0 / horizon_days, 365.0 / 12.0 / horizon_days
    out = {"backups_per_year": float(c["backup"].sum()) * year}
    rt = c["response_time"].to_numpy(float)
    second_rt = (c["t_second_on_scene"] - c["t_received"]).to_numpy(float)
    pool = c["pool"].astype(object).to_numpy()
    second = c["second_pool"].astype(object).to_numpy()
    channel = c["channel"].astype(object).to_numpy()
    person, measured_pool = measured["person"], measured["pool"]
    for p in _categories(c["pool"]):
        first, by_desk = pool == p, second == p
        attended = first | by_desk
        k = float(attended.sum())
        out[f"pool_calls.{p}"] = k
        out[f"pool_calls_per_year.{p}"] = k * year
        out[f"pool_calls_per_month.{p}"] = k * month
        out[f"pool_calls_per_day.{p}"] = k / horizon_days
        out[f"pool_share.{p}"] = _rate(k, n)
        out[f"pool_response_time_mean.{p}"] = _mean(np.where(by_desk, second_rt, rt)[attended])
        out[f"pool_no_police_rate.{p}"] = _rate((first & ~c["police_on_scene"].to_numpy()).sum(), first.sum())
        out[f"pool_unique_people.{p}"] = float(person[(measured_pool == p) & (person >= 0)].nunique())
        for ch in _categories(c["channel"]):
            out[f"pool_calls_per_month.{p}.{ch}"] = float((attended & (channel == ch)).sum()) * month
    for ch in _categories(c["channel"]):
        out[f"channel_calls_per_year.{ch}"] = float((channel == ch).sum()) * year
    # per zone, the figures zone_comparison defines, with sums exact by rational arithmetic
    # (an independent route to the exact sums the accumulator keeps: ExactSum)
    zone = c["zone"].astype(object).to_numpy()
    diverted, eligible = c["diverted"].to_numpy(bool), c["eligible"].to_numpy(bool)
    for z in sorted(set(zone[pd.notna(zone)])):
        m = zone == z
        k, e = int(m.sum()), int((m & eligible).sum())
        values = rt[m & ~np.isnan(rt)]
        pm = c["police_minutes"].to_numpy(float)[m]
        out[f"zone_calls_per_year.{z}"] = k * 365.0 / horizon_days
        out[f"zone_diversion_rate.{z}"] = int((m & diverted).sum()) / k
        out[f"zone_eligible_diversion_rate.{z}"] = int((m & diverted & eligible).sum()) / e if e else math.nan
        out[f"zone_response_time_mean.{z}"] = (float(sum(map(Fraction, values.tolist())) / len(values))
                                              if len(values) else math.nan)
        out[f"zone_police_hours_per_year.{z}"] = math.fsum(pm[~np.isnan(pm)]) / 60.0 * 365.0 / horizon_days
    return out


def _old_replicate(scenario, seed, replication):
    """sim.calibrate.replicate before streaming: the replication in memory, its whole log
    handed to kpis() and program_kpis() (as it was: the whole frame at once)."""
    from sim.experiment import single_run
    res, out = single_run(scenario, seed, replication)
    out.update(_program_kpis_whole_frame(res.calls, scenario.horizon_days))
    return out


@pytest.mark.parametrize("path, days, groups, batch", [
    (SHIPPED, 20, 300, 97), ("scenarios/los_angeles/meu_smart.yaml", 6, 200, 77),   # LA: desk second units
    ("scenarios/portland/street_medicine.yaml", 60, 120, 77), (CITY, 8, SMALL_GROUPS, BATCH)])
def test_program_kpis_from_the_streamed_log_equal_the_in_memory_ones(path, days, groups, batch, monkeypatch,
                                                                     tmp_path):
    from sim.experiment import single_run
    from sim.metrics import program_kpis, program_kpis_from_file
    s = sim.load_scenario(path, [f"horizon_days={days}"])
    files = calllog.LogFiles(tmp_path / "calls.parquet", tmp_path / "work.parquet", rows=groups)
    single_run(s, 3, 1, stream=files)
    res, _ = single_run(s, 3, 1)
    assert calllog.row_count(files.calls.path) > 4 * groups
    old = _program_kpis_whole_frame(res.calls, s.horizon_days)
    assert sum(k.startswith("zone_response_time_mean.") for k in old) >= 2
    _exactly(program_kpis(res.calls, s.horizon_days), old)          # the log in memory: one batch
    for rows in (batch, None):
        _exactly(program_kpis_from_file(files.calls.path, s.horizon_days, rows), old)


@pytest.mark.parametrize("path, days", [(SHIPPED, 10), (CITY, 6)])
def test_calibration_replicate_streams_and_gives_the_old_values(path, days, small_groups):
    from sim.calibrate import replicate
    s = sim.load_scenario(path, [f"horizon_days={days}"])
    _exactly(replicate(s, 2, 0), _old_replicate(s, 2, 0))


# --------------------------------------------------------------------------- order of the rows


def _adversarial_log(path, days, columns, seed=1):
    """A real call log (in call order) with ``columns`` replaced by values of magnitudes
    1 .. 1e16 (NaN kept where there was none), whose compensated sums change with their
    order, and the same rows written to a file in a random order, in row groups of 300."""
    from sim.experiment import single_run
    s = sim.load_scenario(path, [f"horizon_days={days}"])
    c = single_run(s, 3, 0)[0].calls
    rng = np.random.default_rng(seed)
    for col in columns:
        wild = rng.normal(size=len(c)) * 10.0 ** rng.integers(0, 17, len(c))
        c[col] = np.where(c[col].isna(), np.nan, wild)
    return s, c, c.iloc[rng.permutation(len(c))].reset_index(drop=True)


def _write(df, path, groups=300):
    log = calllog.ParquetLog(path)
    for a in range(0, len(df), groups):
        log.write(df.iloc[a:a + groups])
    return log.close()


@pytest.mark.parametrize("path", [CITY, "scenarios/portland/street_medicine.yaml"])
def test_zone_figures_do_not_depend_on_the_order_of_the_rows(path, tmp_path):
    from sim.metrics import program_kpis, program_kpis_from_file, zone_comparison
    s, c, shuffled = _adversarial_log(path, 6 if path == CITY else 40, ["response_time", "police_minutes"])
    # (a float sum of these values changes with their order: pandas' mean does)
    plain = [x.groupby("zone", observed=True)["response_time"].mean() for x in (c, shuffled)]
    assert (plain[0] != plain[1]).any()
    old = _program_kpis_whole_frame(c, s.horizon_days)
    assert sum(k.startswith("zone_response_time_mean.") for k in old) >= 2
    _exactly(program_kpis(c, s.horizon_days), old)
    _exactly(program_kpis(shuffled, s.horizon_days), old)
    _exactly(program_kpis_from_file(_write(shuffled, tmp_path / "calls.parquet"), s.horizon_days, 211), old)
    pd.testing.assert_frame_equal(zone_comparison(shuffled, {"pilot": ["north"]}, s.horizon_days),
                                  zone_comparison(c, {"pilot": ["north"]}, s.horizon_days), check_exact=True)


@pytest.mark.parametrize("nan", [True, False])
def test_period_means_do_not_depend_on_the_order_of_the_rows(nan, tmp_path):
    from sim.experiment import _period_means
    s, c, shuffled = _adversarial_log(CITY, 6, ["x_km"])
    if nan:
        c.loc[::7, "x_km"] = np.nan
        shuffled = c.sample(frac=1.0, random_state=2).reset_index(drop=True)
    edges = np.arange(0.0, s.end_min + 180, 360.0)
    bins = np.searchsorted(edges, c["t_received"].to_numpy(float), side="right") - 1
    plain = pd.Series(c["x_km"].to_numpy(float)).groupby(bins).mean().reindex(range(len(edges) - 1)).to_numpy()
    moved_bins = np.searchsorted(edges, shuffled["t_received"].to_numpy(float), side="right") - 1
    moved = (pd.Series(shuffled["x_km"].to_numpy(float)).groupby(moved_bins).mean()
             .reindex(range(len(edges) - 1)).to_numpy())
    assert not np.array_equal(plain, moved, equal_nan=True)   # (a float sum of these depends on the order)
    exact = _exact_period_means(c["x_km"].to_numpy(float), bins, len(edges) - 1)
    assert np.isfinite(exact).sum() >= 10
    for log in (c, shuffled):
        new = _period_means(_write(log, tmp_path / "calls.parquet"), "x_km", edges, 211)
        np.testing.assert_array_equal(new, exact)


# --------------------------------------------------------------------------- bounds


def test_the_streamed_paths_read_a_batch_at_a_time(tmp_path, monkeypatch):
    """The bound as a property: none of the three paths reads more than ``rows`` rows at once
    (no whole file, row group or column), each reads the log once, and they keep no value of
    a call (exact sums, counts, a bit per person: see their docstrings)."""
    from test_bounded_kpis import _Reads

    from sim.experiment import _period_means, single_run
    from sim.metrics import program_kpis, program_kpis_from_file
    s = sim.load_scenario(CITY, ["horizon_days=12"])
    files = calllog.LogFiles(tmp_path / "calls.parquet", tmp_path / "work.parquet", rows=300)
    res, _ = single_run(s, 3, 0, stream=files)
    mem, _ = single_run(s, 3, 0)
    calls = mem.calls
    edges = np.arange(0.0, s.end_min + 720, 1440.0)
    reads, rows = _Reads(monkeypatch), 250
    block = opt.block_kpis_from_file(files.calls.path, res.pools, s, BLOCK_TARGETS[:1], rows)
    program = program_kpis_from_file(files.calls.path, s.horizon_days, rows)
    means = _period_means(files.calls.path, "response_time", edges, rows)
    assert max(r for r, _ in reads.batches) == rows
    assert sum(r for r, _ in reads.batches) == 3 * len(calls)      # block, program, periods: one pass each
    monkeypatch.undo()
    _exactly(block, _old_block_kpis(calls[~calls["warmup"]], res.pools, s, BLOCK_TARGETS[:1]))
    _exactly(program, program_kpis(calls, s.horizon_days))
    bins = np.searchsorted(edges, calls["t_received"].to_numpy(float), side="right") - 1
    np.testing.assert_array_equal(means, _exact_period_means(calls["response_time"].to_numpy(float), bins,
                                                             len(edges) - 1))
