"""Experiments: replications with intervals, scenario comparison, sweeps, backends.

The layered runner follows Monks et al.: ``single_run`` (one replication) -> ``run`` (many
replications of one scenario) -> ``compare`` (scenarios) and ``sweep`` (a grid over fields
of one scenario). Replication ``r`` of a cell with seed ``s`` always draws from streams
keyed by ``(s, r)``, so where it runs (which process or cluster worker, in which order)
cannot change its numbers: every backend and worker count gives identical DataFrames, and
scenarios run with the same seed see the same calls (common random numbers).

Every experiment writes into a :class:`~sim.store.Store` (a temporary one without ``out``):
a replication's tables are written as soon as it finishes, a failed replication is
recorded with its traceback while the others go on, and rerunning with the same settings
skips what is done.

Tidy outputs (:class:`ExperimentResults`):

* ``kpis``: scenario, point, replication, metric, value
* ``summary``: scenario, point, [varied fields], metric, mean, ci_low, ci_high, replications
* ``differences`` (compare): scenario, baseline, metric, mean, ci_low, ci_high, replications
  of the per-replication difference scenario - baseline
* ``precision`` (with a target): scenario, point, metric, mean, half_width, rel_half_width, within
* ``runs``: one record per replication (status ok/failed, error, traceback, worker, wall_s)
"""
from __future__ import annotations

import itertools
import json
import math
import os
import re
import socket
import sys
import time
import traceback
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .calllog import LogFiles
from .callsample import sample_file
from .columns import nullify
from .metrics import kpis, summarise
from .model import Model, RunResult
from .results import manifest, write_csv, write_text
from .scenario import (Scenario, ScenarioError, ScenarioHeader, apply_overrides, load_raw, parse_value,
                       resolved_yaml, validate_any)
from .store import PARTITION, Store, fingerprint, utc_now


def single_run(scenario: Scenario, seed: int, replication: int, stream: LogFiles | None = None
               ) -> tuple[RunResult, dict[str, float]]:
    """One replication and its KPIs. ``stream``: write the logs to these files as the run goes
    (the result's frames then have no rows; the KPIs come from the aggregates gathered as the
    rows were written, ``metrics.StreamTotals``)."""
    res = Model(scenario, seed, replication, stream=stream).run()
    if stream is None:
        return res, kpis(res.calls, res.pools, scenario.horizon_days, res.facilities, scenario)
    totals, res.totals = res.totals, None       # (its ~12 bytes a call go once the KPIs are formed)
    return res, totals.kpis(res.pools, scenario.horizon_days, res.facilities)


@dataclass
class Results:
    """Many replications of one scenario, as tidy DataFrames."""

    scenario: Scenario
    seed: int
    calls_all: pd.DataFrame  # one row per call per replication, warm-up calls included (warmup=True)
    pools: pd.DataFrame     # resource audit per pool per replication
    hourly: pd.DataFrame    # team-minutes per pool, hour of week, replication
    kpis: pd.DataFrame      # scenario, replication, metric, value
    summary: pd.DataFrame   # scenario, metric, mean, ci_low, ci_high, replications
    wall_s: float
    facilities: pd.DataFrame = field(default_factory=pd.DataFrame)  # audit per facility per replication
    occupancy: pd.DataFrame = field(default_factory=pd.DataFrame)   # facility, t, occupied, beds
    assignments: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per unit per task

    @property
    def calls(self) -> pd.DataFrame:
        """One row per call received after the warm-up (the calls every KPI counts);
        ``calls_all`` has the warm-up calls too."""
        return _measured(self.calls_all)

    def kpi(self, metric: str) -> float:
        """Mean of one KPI across replications."""
        row = self.summary.loc[self.summary["metric"] == metric, "mean"]
        if row.empty:
            raise KeyError(f"no KPI '{metric}'; available: {', '.join(self.summary['metric'])}")
        return float(row.iloc[0])


def _measured(calls: pd.DataFrame) -> pd.DataFrame:
    """The calls received after the warm-up (``warmup`` is False)."""
    if "warmup" not in calls.columns:
        return calls
    return calls[~calls["warmup"].to_numpy(bool)].reset_index(drop=True)


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


class ReplicationFailed(RuntimeError):
    """A replication raised (``run`` re-raises; experiments record it instead)."""


# --------------------------------------------------------------------------- one task


@dataclass(frozen=True)
class Cell:
    """One scenario at one point of an experiment; its replications share ``seed``."""

    scenario: Scenario
    key: str                      # the scenario's label in every table (folder-safe)
    point: int = 0
    seed: int = 0
    file: str | None = None
    values: dict = field(default_factory=dict)   # sweep: field path -> value at this point


def _replicate(store: Store, cell: Cell, replication: int, keep_calls: bool, session: str) -> dict:
    """Run one replication, write its tables into ``store``, return its record.

    An exception inside the model becomes a ``failed`` record with the message and
    traceback; the experiment goes on with the other replications. An error while writing
    (a full disk, a lost share) is the environment's, not the replication's: it propagates
    and stops the experiment, and the rerun repeats the replication.
    """
    record = {"scenario": cell.key, "point": cell.point, "replication": replication, "seed": cell.seed,
              "session": session, "worker": f"{socket.gethostname()}:{os.getpid()}",
              "started_utc": utc_now()}
    t0 = time.perf_counter()
    try:
        parts = [store.part(t, cell.key, cell.point, replication) for t in ("calls", "assignments")]
        if keep_calls is not True:       # the full logs go to scratch files; the store gets a sample or none
            parts += [store.scratch(t, cell.key, cell.point, replication) for t in ("calls", "assignments")]
        frames, values, rows, streamed = _replication_frames(cell.scenario, cell.seed, replication, keep_calls,
                                                             parts)
    except Exception as e:  # noqa: BLE001 - recorded, not swallowed
        values = None
        record.update(status="failed", error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc(),
                      calls=0, tables="")
    else:
        tables = ",".join([store.write_frames(cell.key, cell.point, replication, frames)] + streamed)
        record.update(status="ok", error="", traceback="", calls=rows, tables=tables)
    record.update(wall_s=time.perf_counter() - t0, finished_utc=utc_now(), kpis=values)
    return record


def _stored_rows(df: pd.DataFrame) -> pd.DataFrame:
    """A log's rows as the store keeps them: ids of none as nulls, partition keys in the
    folder names only."""
    return nullify(df).drop(columns=[c for c in PARTITION if c in df.columns])


def _replication_frames(scenario, seed: int, replication: int, keep_calls: bool | float,
                        parts: list[Path]) -> tuple[dict[str, pd.DataFrame], dict[str, float], int, list[str]]:
    """(tables to store, KPIs, rows logged, tables already written) of one replication of
    either kind of scenario.

    A crisis-response replication streams its call log and assignments log to Parquet as it
    runs (``sim/calllog.py``): into the store's own files (``parts``: calls, assignments)
    when every row is kept, else into the scratch files that follow them in ``parts``, from
    which the KPIs, and the sample, are read, and which are then removed. The KPIs always
    come from every call."""
    if getattr(scenario, "kind", None) == "violence":
        from .violence.experiment import single_run as violence_run
        shootings, responses, actions, values = violence_run(scenario, seed, replication)
        frames = {"kpis": pd.DataFrame({"metric": list(values), "value": list(values.values())}),
                  "shootings": shootings, "responses": responses, "actions": actions}
        return frames, values, len(shootings), []
    calls_part, work_part = parts[:2]
    full = parts[:2] if keep_calls is True else parts[2:]
    files = LogFiles(*full, prepare=_stored_rows)
    try:
        res, values = single_run(scenario, seed, replication, stream=files)
        if keep_calls is not True and keep_calls is not False:
            sample_file(files.calls.path, calls_part, keep_calls, seed, replication)
            sample_file(files.assignments.path, work_part, keep_calls, seed, replication)
        written = [] if keep_calls is False else ["calls", "assignments"]
    finally:
        if keep_calls is not True:
            for f in full:
                f.unlink(missing_ok=True)
    frames = {"kpis": pd.DataFrame({"metric": list(values), "value": list(values.values())}),
              "pools": res.pools, "hourly": res.hourly}
    frames.update({name: df for name, df in (("facilities", res.facilities),
                                             ("occupancy", res.occupancy)) if len(df)})
    return frames, values, int(res.info["calls"]), written


# --------------------------------------------------------------------------- backends


class _Inline:
    """Runs each task in this process as it is submitted (``workers=1``)."""

    slots = 1

    def submit(self, fn, *args) -> Future:
        f: Future = Future()
        try:
            f.set_result(fn(*args))
        except BaseException as e:  # noqa: BLE001 - handed to the caller through the future
            f.set_exception(e)
        return f

    def wait(self, futures):
        return list(futures)

    def cancel(self, futures):
        return []

    def close(self):
        pass


def _die_with_parent(parent: int) -> None:
    """Worker initializer: the worker exits within a second of its parent's death (even a
    ``kill -9``, which gives the pool no chance to stop it)."""
    import signal
    import threading
    try:                                   # Linux: the kernel sends SIGKILL at once
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass

    def watch():
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(0.5)
    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=watch, daemon=True, name="die-with-parent").start()


class _Pool:
    """A local process pool; keeps two tasks per worker in flight so none idles. Its
    workers die with this process (:func:`_die_with_parent`)."""

    def __init__(self, workers: int):
        self.pool = ProcessPoolExecutor(max_workers=workers, initializer=_die_with_parent,
                                        initargs=(os.getpid(),))
        self.slots = 2 * workers

    def submit(self, fn, *args):
        return self.pool.submit(fn, *args)

    def wait(self, futures):
        return wait_futures(futures, return_when=FIRST_COMPLETED).done

    def cancel(self, futures):
        """Cancel what has not started; returns the futures still running."""
        return [f for f in futures if not f.cancel()]

    def close(self):
        self.pool.shutdown(wait=True, cancel_futures=True)


SCHEDULER_TIMEOUT_S = 5.0


class SchedulerUnreachable(OSError):
    """The Dask scheduler did not answer within SCHEDULER_TIMEOUT_S (an environment error)."""


class _Dask:
    """A Dask distributed cluster: an address, a ``Client``, or a new ``LocalCluster``.

    Workers write their replication's tables themselves, so ``out`` must be a folder every
    worker sees at the same path (a shared filesystem on a real cluster) or an object-store
    URL every worker can write to (``sim/store.py``, ``ObjectStore``).
    """

    def __init__(self, scheduler, workers: int | None):
        from distributed import Client, LocalCluster, wait

        self._wait = wait
        self._own: list = []
        if scheduler is None:
            cluster = LocalCluster(n_workers=workers or default_workers(), threads_per_worker=1,
                                   processes=True, dashboard_address=None)
            self._own.append(cluster)
            scheduler = cluster
        if isinstance(scheduler, Client):
            self.client = scheduler
        else:
            try:
                self.client = Client(scheduler, timeout=SCHEDULER_TIMEOUT_S)
            except (OSError, TimeoutError) as e:
                for obj in self._own:
                    obj.close()
                raise SchedulerUnreachable(f"cannot reach the Dask scheduler {scheduler} within "
                                           f"{SCHEDULER_TIMEOUT_S:g} s ({type(e).__name__}); is it running "
                                           "and is the address tcp://HOST:PORT right?") from None
        if self.client is not scheduler:
            self._own.insert(0, self.client)
        self.slots = 2 * max(1, sum(self.client.nthreads().values()))

    def submit(self, fn, *args):
        return self.client.submit(fn, *args, pure=False)

    def wait(self, futures):
        return self._wait(list(futures), return_when="FIRST_COMPLETED").done

    def cancel(self, futures):
        self.client.cancel(list(futures))
        return []

    def close(self):
        for obj in self._own:
            obj.close()


def _backend(backend: str, workers: int | None, scheduler, tasks: int):
    if backend == "dask":
        return _Dask(scheduler, workers)
    if backend != "local":
        raise ValueError(f"backend must be 'local' or 'dask', not {backend!r}")
    workers = min(workers or default_workers(), max(1, tasks))
    return _Inline() if workers <= 1 else _Pool(workers)


# --------------------------------------------------------------------------- precision


def precision_table(kpi_long: pd.DataFrame, target: float, metrics: list[str] | None = None,
                    baseline: str | None = None) -> pd.DataFrame:
    """Is each KPI's 95% half-width within ``target`` x |mean|?

    With ``baseline`` (a comparison judged on what it is about), the quantity is each
    scenario's paired difference to the baseline, replication by replication, instead of
    each scenario's own mean.

    Columns: scenario, point, metric, mean, half_width, rel_half_width (half-width / |mean|;
    0 when both are 0, inf when only the mean is), within. KPIs with no values are left out;
    one with fewer than two values is not within.
    """
    k = kpi_long if metrics is None else kpi_long[kpi_long["metric"].isin(metrics)]
    if baseline is not None:
        on = ["point", "replication", "metric"]
        base = k.loc[k["scenario"] == baseline, on + ["value"]]
        k = k[k["scenario"] != baseline].merge(base, on=on, suffixes=("", "_base"))
        k = k.assign(value=k["value"] - k["value_base"]).drop(columns="value_base")
    s = summarise(k, by=["scenario", "point"])
    s = s[s["mean"].notna()].reset_index(drop=True)
    half = (s["ci_high"] - s["ci_low"]) / 2
    mean = s["mean"].abs()
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(half == 0, 0.0, half / mean)
    rel = np.where(half.isna(), np.inf, rel)
    out = s[["scenario", "point", "metric", "mean"]].copy()
    out["half_width"] = half
    out["rel_half_width"] = rel
    out["within"] = out["rel_half_width"] <= target
    return out


def _limiting(table: pd.DataFrame) -> dict:
    """The KPI with the widest interval relative to its mean (the one that binds)."""
    row = table.loc[table["rel_half_width"].idxmax()]
    return {"scenario": str(row["scenario"]), "point": int(row["point"]), "metric": row["metric"],
            "rel_half_width": float(row["rel_half_width"])}


# --------------------------------------------------------------------------- results


def _stored(table: str) -> cached_property:
    """A table read from the store on first use (successful replications in use only)."""
    return cached_property(lambda self: self.store.read(table, self.replications))


@dataclass
class ExperimentResults:
    """What an experiment produced; ``calls`` (after the warm-up; ``calls_all`` with it),
    ``pools``, ``hourly``, ``facilities`` and ``occupancy`` are read from the store on first use."""

    kind: str                    # run | compare | sweep | warmup
    cells: pd.DataFrame          # scenario, point, name, file, seed, [varied fields]
    replications: int            # replications used per cell (0..replications-1)
    kpis: pd.DataFrame
    summary: pd.DataFrame
    runs: pd.DataFrame
    store: Store
    wall_s: float
    differences: pd.DataFrame | None = None
    precision: pd.DataFrame | None = None
    target: float | None = None
    met: bool | None = None      # precision target reached (None without a target)
    limiting: dict | None = None  # the binding KPI at the end: scenario, point, metric, rel_half_width

    calls_all = _stored("calls")
    assignments = _stored("assignments")
    pools = _stored("pools")
    hourly = _stored("hourly")
    facilities = _stored("facilities")
    occupancy = _stored("occupancy")
    shootings = _stored("shootings")     # violence scenarios
    responses = _stored("responses")

    @property
    def calls(self) -> pd.DataFrame:
        """Calls received after the warm-up, every cell; ``calls_all`` has the warm-up too."""
        return _measured(self.calls_all)

    @property
    def failed(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] == "failed"].reset_index(drop=True)

    @property
    def out(self) -> Path | str:
        """Where the results are: the folder, or the object-store URL (``s3://...``)."""
        return getattr(self.store, "url", None) or self.store.root

    def one_scenario(self, df: pd.DataFrame) -> pd.DataFrame:
        """A table of a one-scenario run as :class:`Results` has it: no ``point``, the
        scenario labelled by its name."""
        df = df.drop(columns="point")
        df["scenario"] = df["scenario"].cat.rename_categories([self.cells["name"].iloc[0]])
        return df

    def log_parts(self, table: str) -> list[tuple[int, Path]]:
        """(replication, file) of each stored part of a log (``calls``, ``assignments``) of
        a one-scenario run, replications in use only, in order."""
        ok = self.runs[(self.runs["status"] == "ok") & (self.runs["replication"] < self.replications)]
        parts = [(int(r.replication), self.store.part(table, str(r.scenario), int(r.point), int(r.replication)))
                 for r in ok.sort_values("replication").itertuples()]
        return [(r, p) for r, p in parts if p.is_file()]


def _execute(kind: str, cells: list[Cell], replications: int, *, out=None, keep_calls: bool = True,
             precision: float | None = None, precision_metrics: list[str] | None = None,
             max_replications: int = 100, backend: str = "local", scheduler=None,
             workers: int | None = None, progress: Callable[[int, int], None] | None = None,
             precision_on: str = "means") -> ExperimentResults:
    """Run ``replications`` of every cell (or, with ``precision``, as many as it takes up to
    ``max_replications``) on a backend, into a store; then summarise."""
    if replications < 1:
        raise ValueError("replications must be at least 1")
    if precision is not None:
        if not precision > 0:
            raise ValueError("precision must be > 0 (0.05 = half-width within 5% of the mean)")
        if max_replications < replications:
            raise ValueError(f"max_replications ({max_replications}) is below replications ({replications})")
        if precision_on not in ("means", "differences"):
            raise ValueError("precision_on is 'means' or 'differences'")
        if precision_on == "differences" and len(cells) < 2:
            raise ValueError("precision on differences needs at least two scenarios to compare")
    baseline = cells[0].key if precision is not None and precision_on == "differences" else None
    t0 = time.perf_counter()
    resolved = {f"{c.key}-p{c.point}": resolved_yaml(c.scenario) for c in cells}
    settings = {"kind": kind, "keep_calls": keep_calls if isinstance(keep_calls, float) else bool(keep_calls),
                "cells": [{"scenario": c.key, "point": c.point, "name": c.scenario.name, "seed": c.seed,
                           "sha256": fingerprint(text), "values": c.values}
                          for c, text in zip(cells, resolved.values())]}
    store = Store.open(out, settings, resolved)     # holds the folder's lock until closed
    try:
        _write_manifest(store.root, [c.scenario for c in cells], cells[0].seed, replications, kind, len(cells),
                        complete=False)
        return _run_cells(store, kind, cells, replications, t0, keep_calls=keep_calls, precision=precision,
                          precision_metrics=precision_metrics, max_replications=max_replications,
                          backend=backend, scheduler=scheduler, workers=workers, progress=progress,
                          baseline=baseline)
    finally:
        store.close()


def _write_manifest(root: Path, scenarios: list, seed: int, replications: int, kind: str, cells: int,
                    complete: bool, wall_s: float = 0.0, **extra) -> None:
    """``manifest.json``: written before the first replication (``complete: false``) and again
    with the results (``complete: true``)."""
    info = manifest(list({s.name: s for s in scenarios}.values()), int(seed), replications, wall_s,
                    kind=kind, cells=cells, complete=complete, **extra)
    write_text(Path(root) / "manifest.json", json.dumps(info, indent=2, default=str) + "\n")


def _run_cells(store: Store, kind: str, cells: list[Cell], replications: int, t0: float, *, keep_calls,
               precision, precision_metrics, max_replications, backend, scheduler, workers, progress,
               baseline=None) -> ExperimentResults:
    """The replications of :func:`_execute` in an open store, then the summary."""
    session = uuid.uuid4().hex[:12]
    cap = max_replications if precision is not None else replications
    done = store.done()
    store.log("session", session=session, replications=replications, precision=precision,
              max_replications=cap, backend=backend, resumed=len(done))

    # KPI rows of everything finished so far (for the precision rule), and which cells
    # of each replication are finished (ok or failed in this session)
    rows = store.read("kpis").to_dict("records") if done else []
    finished = {(c.key, c.point, r) for c in cells for r in range(cap) if (c.key, c.point, r) in done}

    def complete(n: int) -> bool:
        return all((c.key, c.point, n - 1) in finished for c in cells)

    checked = 0          # replication prefixes 1..checked are complete and were judged
    expected = replications   # replications the experiment is expected to need

    def decide() -> int | None:
        """Replications to use, once known (first complete prefix meeting the target)."""
        nonlocal checked, expected
        if precision is None:
            return replications
        while checked < cap and complete(checked + 1):
            checked += 1
            if checked >= replications:
                k = pd.DataFrame(rows, columns=list(PARTITION) + ["metric", "value"])
                unknown = set(precision_metrics or []) - set(k["metric"])
                if unknown and len(k):
                    raise ScenarioError(None, None, f"no KPI named {', '.join(sorted(unknown))} for the "
                                        f"precision target; KPIs: {', '.join(dict.fromkeys(k['metric']))}")
                table = precision_table(k[k["replication"] < checked], precision, precision_metrics, baseline)
                if table["within"].all() or checked == cap:
                    return checked
                # half-widths shrink like 1/sqrt(n): a guess for the progress bar only
                worst = float(table["rel_half_width"].max()) / precision
                expected = min(cap, max(checked + 1, math.ceil(checked * min(worst, 1e3) ** 2)))
        return None

    used = decide()
    todo = ((c, r) for r in range(cap) for c in cells if (c.key, c.point, r) not in done)

    def report() -> None:
        n = used or max(expected, checked)
        progress(sum(1 for f in finished if f[2] < n), len(cells) * n)

    if progress:
        report()
    be = _backend(backend, workers, scheduler, len(cells) * cap)
    pending: dict = {}
    try:
        while True:
            while len(pending) < be.slots and (precision is None or used is None):
                task = next(todo, None)
                if task is None:
                    break
                c, r = task
                store.log("submit", session=session, scenario=c.key, point=c.point, replication=r)
                pending[be.submit(_replicate, store, c, r, keep_calls, session)] = task
            if not pending:
                break
            for fut in be.wait(pending):
                c, r = pending.pop(fut)
                record = fut.result()
                values = record.pop("kpis")
                store.commit(record)
                store.log(record["status"], session=session, scenario=c.key, point=c.point, replication=r)
                finished.add((c.key, c.point, r))
                if values is not None:
                    rows.extend({"scenario": c.key, "point": c.point, "replication": r, "metric": m,
                                 "value": v} for m, v in values.items())
            if used is None:
                used = decide()
                if used is not None:
                    for fut in set(pending) - set(be.cancel(list(pending))):
                        pending.pop(fut)
            if progress:
                report()
    finally:
        be.close()
    store.log("end", session=session, replications=used)
    return _summarise(kind, cells, used, store, time.perf_counter() - t0, precision, precision_metrics, baseline)


def _summarise(kind, cells, used, store, wall, precision, precision_metrics, baseline=None) -> ExperimentResults:
    fields = list(dict.fromkeys(f for c in cells for f in c.values))
    cell_table = pd.DataFrame([{"scenario": c.key, "point": c.point, "name": c.scenario.name,
                                "file": c.file, "seed": c.seed, **c.values} for c in cells],
                              columns=["scenario", "point", "name", "file", "seed", *fields])
    k = store.read("kpis", used).reindex(columns=[*PARTITION, "metric", "value"])  # columns even if none ran
    summary = summarise(k, by=["scenario", "point"])
    if fields:
        summary = summary.merge(cell_table[["scenario", "point", *fields]], on=["scenario", "point"], how="left")
        summary = summary[["scenario", "point", *fields, "metric", "mean", "ci_low", "ci_high", "replications"]]
    res = ExperimentResults(kind=kind, cells=cell_table, replications=used, kpis=k, summary=summary,
                            runs=store.records(used), store=store, wall_s=wall)
    if kind == "compare" and len(cells) > 1:
        res.differences = paired_differences(k, cells[0].key)
    if precision is not None:
        res.precision = precision_table(k, precision, precision_metrics, baseline)
        res.target = precision
        res.met = bool(res.precision["within"].all())
        res.limiting = _limiting(res.precision) if len(res.precision) else None
    _write_outputs(res, [c.scenario for c in cells])
    return res


def paired_differences(kpi_long: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Mean and 95% interval of the per-replication difference of each scenario to ``baseline``.

    Replication r of one scenario is paired with replication r of the baseline (under common
    random numbers they saw the same calls). Columns: scenario, baseline, metric, mean,
    ci_low, ci_high, replications.
    """
    on = ["point", "replication", "metric"]
    base = kpi_long.loc[kpi_long["scenario"] == baseline, on + ["value"]]
    d = kpi_long[kpi_long["scenario"] != baseline].merge(base, on=on, suffixes=("", "_base"))
    d["value"] = d["value"] - d["value_base"]
    out = summarise(d, by=["scenario"])
    out.insert(1, "baseline", baseline)
    return out


def _write_outputs(res: ExperimentResults, scenarios: list[Scenario]) -> None:
    """Tables of the whole experiment beside the partitioned ones, and the manifest."""
    out = res.store.root
    write_csv(out / "summary.csv", res.summary)
    write_csv(out / "cells.csv", res.cells)
    if res.differences is not None:
        write_csv(out / "differences.csv", res.differences)
    if res.precision is not None:
        write_csv(out / "precision.csv", res.precision)
    _write_manifest(out, scenarios, int(res.cells["seed"].iloc[0]), res.replications, res.kind,
                    len(res.cells), True, res.wall_s, failed=int(len(res.failed)),
                    precision_target=res.target, precision_met=res.met, limiting=res.limiting)


# --------------------------------------------------------------------------- loading


SLUG_MAX = 80      # characters of a scenario key (a folder name: 255 bytes at most on most systems)


def _slug(text: str) -> str:
    """A folder-safe key: letters, digits and ``_.+-``, starting with a letter, at most
    SLUG_MAX characters (a longer one keeps its start and a hash of the whole)."""
    s = re.sub(r"[^A-Za-z0-9_.+-]+", "-", str(text)).strip("-.")
    s = s if s[:1].isalpha() else f"s{s}"
    if len(s) > SLUG_MAX:
        import hashlib
        s = s[:SLUG_MAX - 9].rstrip("-.") + "-" + hashlib.sha256(s.encode()).hexdigest()[:8]
    return s


def _unique(keys: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for k in keys:
        seen[k] = seen.get(k, 0) + 1
        out.append(k if seen[k] == 1 else f"{k}-{seen[k]}")
    return out


def _raw(source: ScenarioHeader | str | Path, overrides) -> tuple[dict, str | None, dict]:
    """(raw mapping, file, key positions) of a scenario file or object, with overrides."""
    if isinstance(source, ScenarioHeader):
        data, file, positions = source.model_dump(mode="json"), None, {}
    else:
        data, positions = load_raw(source)
        file = str(source)
    return apply_overrides(data, overrides, file), file, positions


def _scenario(source, overrides) -> tuple[ScenarioHeader, str | None]:
    if isinstance(source, ScenarioHeader) and not overrides:
        return source, None
    data, file, positions = _raw(source, overrides)
    return validate_any(data, file, positions), file


def _default_key(source, scenario: ScenarioHeader) -> str:
    return _slug(Path(source).stem if not isinstance(source, ScenarioHeader) else scenario.name)


def parse_vary(items: list[str] | dict[str, list]) -> dict[str, list]:
    """``["pools.x.teams=1,2,3"]`` -> ``{"pools.x.teams": [1, 2, 3]}`` (values read as YAML)."""
    if isinstance(items, dict):
        out = {k: list(v) for k, v in items.items()}
    else:
        out = {}
        for item in items:
            if "=" not in item:
                raise ScenarioError(None, None, f"--vary '{item}' must look like field.path=v1,v2,...")
            k, v = item.split("=", 1)
            k = k.strip()
            if k in out:
                raise ScenarioError(None, k, "varied twice; give all its values in one --vary")
            values = parse_value(f"[{v}]")
            out[k] = values if isinstance(values, list) else [values]
    for k, v in out.items():
        if not v:
            raise ScenarioError(None, k, "--vary needs at least one value")
    return out


# --------------------------------------------------------------------------- public API


def run(scenario: Scenario, replications: int = 10, seed: int | None = None,
        workers: int | None = None, progress=None, keep_calls: bool | float = True) -> Results:
    """Run ``replications`` of ``scenario``; ``workers=1`` runs in this process.

    ``keep_calls``: ``False`` keeps no call rows, a fraction keeps that share of calls
    (``sim.callsample``); KPIs are computed from every call either way.

    ``progress`` is called with the number of finished replications after each one. A
    replication that raises makes this raise :class:`ReplicationFailed` (experiments
    record the failure instead; see :func:`compare`).
    """
    res = run_experiment(scenario, replications, seed, workers, progress, keep_calls)
    k = res.one_scenario(res.kpis)
    out = Results(scenario=scenario, seed=res.cells["seed"].iloc[0], calls_all=res.one_scenario(res.calls_all),
                  pools=res.one_scenario(res.pools), hourly=res.one_scenario(res.hourly), kpis=k,
                  summary=summarise(k), wall_s=res.wall_s, facilities=res.one_scenario(res.facilities),
                  occupancy=res.one_scenario(res.occupancy), assignments=res.one_scenario(res.assignments))
    res.store.remove_temporary()
    return out


def run_experiment(scenario: Scenario, replications: int = 10, seed: int | None = None,
                   workers: int | None = None, progress=None, keep_calls: bool | float = True
                   ) -> "ExperimentResults":
    """:func:`run` as an experiment whose tables stay in its (temporary) store until read:
    ``crisis-sim run`` copies the call logs from there row group by row group, never
    holding them in memory. Raises :class:`ReplicationFailed` like :func:`run`."""
    seed = scenario.seed if seed is None else int(seed)
    cell = Cell(scenario, _slug(scenario.name), 0, seed)
    res = _execute("run", [cell], replications, workers=workers, keep_calls=keep_calls,
                   progress=(lambda done, total: progress(done)) if progress else None)
    if len(res.failed):
        first = res.failed.iloc[0]
        raise ReplicationFailed(f"replication {first['replication']} failed: {first['error']}\n{first['traceback']}")
    return res


def compare(scenarios: list[Scenario | str | Path], replications: int = 10, seed: int | None = None, *,
            labels: list[str] | None = None, overrides: dict | list[str] | None = None, crn: bool = True,
            precision: float | None = None, precision_metrics: list[str] | None = None,
            max_replications: int = 100, backend: str = "local", scheduler=None,
            workers: int | None = None, out: str | Path | None = None, keep_calls: bool = True,
            progress: Callable[[int, int], None] | None = None, precision_on: str = "means") -> ExperimentResults:
    """Run scenarios side by side and difference each against the first.

    ``scenarios`` are files or Scenario objects (``overrides`` like ``--set`` apply to all).
    With ``crn`` every scenario uses ``seed`` (default: the first scenario's), so replication
    r of each sees the same calls and the paired difference is sharp; ``crn=False`` gives
    scenario i the seed ``seed + i`` (independent streams). ``precision=0.05`` adds
    replications until every KPI's (or every ``precision_metrics``') 95% half-width is within
    5% of its mean in every scenario, up to ``max_replications``; with
    ``precision_on="differences"`` the target is on each scenario's paired difference to the
    first (the quantity a comparison is about) instead. ``backend`` is ``local``
    (a process pool of ``workers``, default all cores) or ``dask`` (``scheduler``: an
    address ``tcp://host:port``, a ``distributed.Client``, or None for a new LocalCluster).
    ``out`` is the results folder (resumable); ``progress(done, total)`` is called as
    replications finish.
    """
    if not scenarios:
        raise ValueError("compare needs at least one scenario")
    if labels is not None and len(labels) != len(scenarios):
        raise ValueError(f"{len(labels)} labels for {len(scenarios)} scenarios")
    loaded = [_scenario(s, overrides) for s in scenarios]
    seed = loaded[0][0].seed if seed is None else int(seed)
    keys = _unique([_slug(l) for l in labels] if labels else
                   [_default_key(src, s) for src, (s, _) in zip(scenarios, loaded)])
    cells = [Cell(s, key, 0, seed if crn else seed + i, file)
             for i, ((s, file), key) in enumerate(zip(loaded, keys))]
    return _execute("compare", cells, replications, out=out, keep_calls=keep_calls, precision=precision,
                    precision_metrics=precision_metrics, max_replications=max_replications,
                    backend=backend, scheduler=scheduler, workers=workers, progress=progress,
                    precision_on=precision_on)


def sweep(base: Scenario | str | Path, vary: dict[str, list] | list[str], replications: int = 10,
          seed: int | None = None, *, label: str | None = None, overrides: dict | list[str] | None = None,
          precision: float | None = None, precision_metrics: list[str] | None = None,
          max_replications: int = 100, backend: str = "local", scheduler=None,
          workers: int | None = None, out: str | Path | None = None, keep_calls: bool = True,
          progress: Callable[[int, int], None] | None = None) -> ExperimentResults:
    """Run a grid over one or more fields of ``base``: ``vary={"pools.x.teams": [1, 2, 3]}``
    (or ``["pools.x.teams=1,2,3"]``). Points are numbered in grid order (the last field
    varies fastest) and share ``seed``, so they see the same calls. Every point is validated
    before anything runs: a bad value stops with the same one-line error as ``--set``.
    Other arguments as in :func:`compare`.
    """
    vary = parse_vary(vary)
    data, file, positions = _raw(base, overrides)
    first = validate_any(data, file, positions)
    seed = first.seed if seed is None else int(seed)
    key = _slug(label) if label else _default_key(base, first)
    cells = []
    for p, combo in enumerate(itertools.product(*vary.values())):
        values = dict(zip(vary, combo))
        s = validate_any(apply_overrides(data, values, file), file, positions)
        cells.append(Cell(s, key, p, seed, file, values))
    return _execute("sweep", cells, replications, out=out, keep_calls=keep_calls, precision=precision,
                    precision_metrics=precision_metrics, max_replications=max_replications,
                    backend=backend, scheduler=scheduler, workers=workers, progress=progress)


# --------------------------------------------------------------------------- warm-up


def _step_means(t: np.ndarray, level: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Time-average of a step function over each [edges[i], edges[i+1]).

    The function is ``level[k]`` from ``t[k]`` (sorted) to the next change, 0 before ``t[0]``.
    """
    if len(t) == 0:
        return np.zeros(len(edges) - 1)
    area_at_t = np.concatenate([[0.0], np.cumsum(level[:-1] * np.diff(t))])
    k = np.searchsorted(t, edges, side="right") - 1
    kk = np.maximum(k, 0)
    area = np.where(k >= 0, area_at_t[kk] + level[kk] * (edges - t[kk]), 0.0)
    return np.diff(area) / np.diff(edges)


def warmup_profile(scenario: Scenario, replications: int = 5, seed: int | None = None,
                   metric: str = "response_time", period_days: float = 1.0, *,
                   backend: str = "local", scheduler=None, workers: int | None = None) -> pd.DataFrame:
    """The course of a measure from time 0 (warm-up included), per replication, for choosing
    ``warmup_days``.

    ``metric`` is one of

    * a numeric call-log column: the mean over calls received in the period
      (``response_time``, ``queue_wait``...);
    * ``busy.<pool>``: time-average number of the pool's teams busy as a call's answering
      unit (dispatch to free again);
    * ``occupancy.<facility>``: time-average beds occupied (the facility's occupancy log).

    Columns: replication, day (period start, days from Monday 00:00 of week 0), value,
    running_mean (mean of the values so far in that replication).

    Each replication's call log is read from its stored file a batch at a time
    (:func:`_period_means`, :func:`_busy_means`), never the run's logs in memory at once.
    """
    seed = scenario.seed if seed is None else int(seed)
    res = _execute("warmup", [Cell(scenario, _slug(scenario.name), 0, seed)], replications,
                   backend=backend, scheduler=scheduler, workers=workers)
    try:
        return _profile(res, scenario, replications, metric, period_days)
    finally:
        res.store.remove_temporary()


def _profile(res: ExperimentResults, scenario: Scenario, replications: int, metric: str, period_days: float,
             rows: int | None = None) -> pd.DataFrame:
    """:func:`warmup_profile`'s table from a warm-up experiment's store (``rows``: call-log
    rows read at a time, default a row group)."""
    import pyarrow.parquet as pq
    kind, _, name = metric.partition(".")
    period = period_days * 1440.0
    edges = np.arange(0.0, scenario.end_min + period / 2, period)
    parts = dict(res.log_parts("calls"))               # replication -> its stored call log
    if kind == "busy" and name not in scenario.pools:
        raise ValueError(f"no pool '{name}'; pools: {', '.join(scenario.pools)}")
    if kind == "occupancy":
        table = res.occupancy                          # the facilities' log (not the call log)
        if table.empty or name not in set(table["facility"].astype(str)):
            raise ValueError(f"no occupancy log for facility '{name}'")
    elif kind != "busy":
        columns = pq.read_schema(next(iter(parts.values()))).names if parts else []
        if metric not in columns:
            raise ValueError(f"'{metric}' is not a call-log column, busy.<pool> or occupancy.<facility>")
    frames = []
    for r in range(replications):
        if kind == "busy":
            value = _busy_means(parts.get(r), name, scenario.end_min, edges, rows)
        elif kind == "occupancy":
            c = table[(table["replication"] == r) & (table["facility"] == name)]
            value = _step_means(c["t"].to_numpy(float), c["occupied"].to_numpy(float), edges)
        else:
            value = _period_means(parts.get(r), metric, edges, rows)
        frames.append(pd.DataFrame({"replication": r, "day": edges[:-1] / 1440.0, "value": value,
                                    "running_mean": pd.Series(value).expanding().mean().to_numpy()}))
    return pd.concat(frames, ignore_index=True)


def _busy_means(path: Path | None, pool: str, end_min: float, edges: np.ndarray, rows: int | None) -> np.ndarray:
    """Time-average teams of ``pool`` busy as a call's answering unit (dispatch to free again;
    still busy at the end: to ``end_min``) over each period of ``edges``, from a stored call log.

    The step function's running area is a float sum in time order over the whole run, so the
    pool's dispatch and free times are kept (16 bytes a call the pool answered; numpy buffers)
    and sorted once: the very numbers of the log in memory. Nothing else of a call is kept."""
    from .calllog import batches
    from .metrics import _Buffer
    start, free = _Buffer(float), _Buffer(float)
    for b in batches(path, ("pool", "t_dispatched", "t_team_free"), rows) if path is not None else ():
        mine = (b["pool"] == pool).to_numpy(bool)
        start.append(b["t_dispatched"].to_numpy(float)[mine])
        free.append(np.nan_to_num(b["t_team_free"].to_numpy(float)[mine], nan=end_min))
    n = start.n
    t = np.concatenate([start.values, free.values])    # starts first: a tie starts before it ends
    order = np.argsort(t, kind="stable")
    steps = np.concatenate([np.ones(n), -np.ones(n)])[order]
    return _step_means(t[order], np.cumsum(steps), edges)


def _period_means(path: Path | None, metric: str, edges: np.ndarray, rows: int | None) -> np.ndarray:
    """Mean of the call-log column ``metric`` (NaN left out) over the calls received in each
    period [edges[i], edges[i+1]) of a stored call log; NaN for a period with no value.

    One pass, a batch at a time: each period's values go into an exact sum
    (:class:`metrics.ExactSum`, a bin per period), so a mean is the same to the last bit
    whatever the order of the file's rows (row groups come in the order calls finished) and
    however they are split. Memory: a batch, and a few numbers per period."""
    from .calllog import batches
    from .metrics import ExactSum
    nb = len(edges) - 1
    if path is None:
        return np.full(nb, math.nan)
    sums = ExactSum(nb + 2)              # bin: period + 1 (0 before the first edge, nb + 1 after the last)
    for b in batches(path, tuple(dict.fromkeys(("t_received", metric))), rows):
        k = np.clip(np.searchsorted(edges, b["t_received"].to_numpy(float), side="right") - 1, -1, nb)
        sums.add(_metric_values(b, metric), k + 1)
    return np.array([sums.mean(i + 1) for i in range(nb)])


def _metric_values(b: pd.DataFrame, metric: str) -> np.ndarray:
    """A call-log column as floats, as the store's reader gives it (ids of none are nulls
    there, NaN here)."""
    from .columns import _ID_COLUMNS
    if metric in _ID_COLUMNS:
        v = b[metric].to_numpy()
        return np.where(v < 0, math.nan, v.astype(float))
    return b[metric].to_numpy(float)


def welch(profile: pd.DataFrame, window: int = 7) -> pd.DataFrame:
    """Welch's moving average of the across-replication mean of a :func:`warmup_profile`.

    Period i averages periods i-window..i+window (i-i..i+i near the start); the last
    ``window`` periods have no centred window and are left out. Columns: day, mean, welch.
    """
    m = profile.groupby("day", sort=True)["value"].mean()
    y = m.to_numpy()
    n = len(y) - window
    smooth = [np.nanmean(y[i - min(i, window): i + min(i, window) + 1]) for i in range(max(0, n))]
    return pd.DataFrame({"day": m.index[: len(smooth)], "mean": y[: len(smooth)], "welch": smooth})


def suggest_warmup(profile: pd.DataFrame, window: int = 7, tolerance: float = 0.05) -> float:
    """Warm-up in days by a Welch-style rule: the first period at which the Welch curve
    comes within ``tolerance`` x |level| of its level (the mean of its second half).

    Meant for a transient from one side (a system that starts empty); look at
    :func:`welch` before trusting it. NaN if the curve never gets there.
    """
    w = welch(profile, window)
    y = w["welch"].to_numpy()
    level = float(np.nanmean(y[len(y) // 2:]))
    inside = np.flatnonzero(np.abs(y - level) <= tolerance * abs(level))
    return float(w["day"].iloc[inside[0]]) if len(inside) else math.nan


# --------------------------------------------------------------------------- command line


def _fmt(mean: float, lo: float, hi: float) -> str:
    if mean != mean:
        return "-"
    ci = "" if lo != lo else f" [{lo:,.3f}, {hi:,.3f}]"
    return f"{mean:,.3f}{ci}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]

    def line(r):
        return "  ".join(str(x).ljust(w) if i == 0 else str(x).rjust(w) for i, (x, w) in enumerate(zip(r, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _add_options(sp) -> None:
    from .argtypes import positive_float, positive_int, seed
    from .callsample import fraction as calls_fraction
    sp.add_argument("--replications", "-r", type=positive_int, default=10,
                    help="replications per scenario (with --precision: the first batch)")
    sp.add_argument("--precision", type=positive_float, default=None, metavar="REL",
                    help="add replications until every KPI's 95%% half-width is within REL x its mean (0.05 = 5%%)")
    sp.add_argument("--precision-metric", action="append", default=None, metavar="KPI",
                    help="judge --precision on this KPI only (repeatable; default all KPIs)")
    sp.add_argument("--max-replications", type=positive_int, default=100, help="cap for --precision (default 100)")
    sp.add_argument("--seed", type=seed, default=None, help="default: the (first) scenario's seed")
    sp.add_argument("--backend", choices=["local", "dask"], default="local")
    sp.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                    help="Dask scheduler address (--backend dask; default: a new local cluster)")
    sp.add_argument("--workers", type=positive_int, default=None, help="processes (default: all cores)")
    sp.add_argument("--out", default=None, help="results folder or object-store URL (s3://bucket/prefix, gs://..., via fsspec); "
                         "rerun with the same settings to resume")
    sp.add_argument("--strict", action="store_true",
                    help="exit 3 when calls were left unfinished (a starved pool), instead of a warning")
    sp.add_argument("--no-calls", action="store_true", help="do not store the call logs (KPIs only)")
    sp.add_argument("--calls-sample", type=calls_fraction, default=None, metavar="F",
                    help="store the call log of a share F of calls (0 < F <= 1, the same calls in every "
                         "scenario); KPIs still count every call")
    sp.add_argument("--quiet", action="store_true", help="no progress bar")
    sp.add_argument("--set", action="append", metavar="FIELD=VALUE", default=[],
                    help="change a scenario field (repeatable): FIELD=VALUE, FIELD+=ITEM (append), "
                         "FIELD-=NAME (remove), e.g. pools.cahoots.shifts.0.teams=2")


class _Bar:
    """tqdm bar on stderr: replications done, elapsed, remaining (created on first report)."""

    def __init__(self, desc: str, quiet: bool):
        self.desc, self.quiet, self.bar = desc, quiet, None

    def __call__(self, done: int, total: int) -> None:
        from tqdm import tqdm
        if self.bar is None:
            self.bar = tqdm(total=total, initial=done, desc=self.desc, unit="rep", disable=self.quiet,
                            file=sys.stderr)
            return
        if total != self.bar.total:
            self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _experiment_kwargs(args) -> dict:
    from .callsample import setting as calls_setting
    return dict(replications=args.replications, seed=args.seed, overrides=args.set or None,
                precision=args.precision, precision_metrics=args.precision_metric,
                max_replications=args.max_replications, backend=args.backend, scheduler=args.scheduler,
                workers=args.workers, keep_calls=calls_setting(args.no_calls, args.calls_sample))


UNFINISHED_WARN = 0.01   # a share of unfinished calls above this ends a run with a warning


def unfinished_warnings(summary: pd.DataFrame, threshold: float = UNFINISHED_WARN) -> list[str]:
    """One warning line per scenario (and point) whose mean ``unfinished_rate`` exceeds
    ``threshold``, naming the pool that held most of the unfinished calls (the starved one)."""
    from .scenario import printable
    if summary is None or "metric" not in summary or not len(summary):
        return []
    by = [c for c in ("scenario", "point") if c in summary.columns]
    groups = summary.groupby(by, sort=False, observed=True) if by else [((), summary)]
    out = []
    for key, g in groups:
        means = dict(zip(g["metric"], g["mean"]))
        rate = means.get("unfinished_rate", 0.0)
        if not rate > threshold:
            continue
        pools = {m.split(".", 1)[1]: v for m, v in means.items()
                 if m.startswith("unfinished_calls.") and v == v and v > 0}
        key = key if isinstance(key, tuple) else (key,)
        where = " ".join(f"{c} {k}" for c, k in zip(by, key) if not (c == "point" and len(groups) == 1))
        where = f" ({where})" if where else ""
        if pools:
            worst = max(pools, key=pools.get)
            starved = (f"pool '{worst}' held {pools[worst]:,.0f} of them per replication: it is starved "
                       "(no unit on duty, or far too few, for the calls it must answer)")
        else:
            starved = "no pool is named in the KPIs (unfinished_calls.<pool>)"
        out.append(printable(f"warning{where}: {rate:.1%} of calls were still open when the run stopped "
                             f"(unfinished_rate); {starved}"))
    return out


def _report(res: ExperimentResults, strict: bool = False) -> int:
    """Closing lines of compare/sweep; exit code 1 if a replication failed, 3 if ``strict``
    and a warning was printed, else 0."""
    if res.target is not None:
        lim = res.limiting or {}
        where = lim.get("scenario", "") + (f" point {lim['point']}" if res.kind == "sweep" else "")
        state = "met" if res.met else "NOT met (cap reached)"
        print(f"\nprecision ±{res.target:.1%}: {state} with {res.replications} replications; "
              f"limiting KPI: {lim.get('metric')} ({where}) at ±{lim.get('rel_half_width', math.nan):.2%}")
    for r in res.failed.itertuples():
        print(f"FAILED {r.scenario} point {r.point} replication {r.replication}: {r.error}")
    print(f"\nwrote {res.out}/ (kpis/, calls/, runs/ partitioned by scenario/point/replication; "
          f"summary.csv, manifest.json)")
    warnings = unfinished_warnings(res.summary)
    for w in warnings:
        print(w, file=sys.stderr)
    return 1 if len(res.failed) else (3 if warnings and strict else 0)


def _cmd_compare(args) -> int:
    out = args.out or Path("results") / ("compare-" + "-vs-".join(Path(p).stem for p in args.scenarios))
    bar = _Bar("compare", args.quiet)
    try:
        res = compare(args.scenarios, crn=not args.independent, out=out, progress=bar,
                      precision_on=args.precision_on, **_experiment_kwargs(args))
    finally:
        bar.close()
    keys = list(res.cells["scenario"])
    s = res.summary.set_index(["scenario", "metric"])
    d = res.differences.set_index(["scenario", "metric"]) if res.differences is not None else None

    def cell(table, key: str, metric: str) -> str:
        if table is None or (key, metric) not in table.index:
            return "-"
        x = table.loc[(key, metric)]
        return _fmt(x["mean"], x["ci_low"], x["ci_high"])

    rows = [[m] + [cell(s, k, m) for k in keys] + [cell(d, k, m) for k in keys[1:]]
            for m in dict.fromkeys(res.summary["metric"])]
    header = ["metric"] + keys + [f"{k} - {keys[0]}" for k in keys[1:]]
    print(f"{res.replications} replications, {'common random numbers' if not args.independent else 'independent streams'}; "
          f"mean [95% interval]")
    print(_table(header, rows))
    return _report(res, args.strict)


def _cmd_sweep(args) -> int:
    out = args.out or Path("results") / f"sweep-{Path(args.scenario).stem}"
    bar = _Bar("sweep", args.quiet)
    try:
        res = sweep(args.scenario, args.vary, out=out, progress=bar, **_experiment_kwargs(args))
    finally:
        bar.close()
    fields = [c for c in res.cells.columns if c not in ("scenario", "point", "name", "file", "seed")]
    for _, r in res.cells.iterrows():
        print(f"point {r['point']}: " + ", ".join(f"{f}={r[f]}" for f in fields))
    wide = res.summary.pivot_table(index="metric", columns="point", values="mean", sort=False)
    print(f"\nmean of {res.replications} replications per point (95% intervals in summary.csv)")
    print(wide.rename(columns=lambda p: f"point {p}").to_string(float_format=lambda x: f"{x:,.3f}"))
    return _report(res, args.strict)


def _cmd_warmup(args) -> int:
    from .scenario import load_scenario
    s = load_scenario(args.scenario, args.set)
    prof = warmup_profile(s, args.replications, args.seed, args.metric, args.period_days,
                          workers=args.workers)
    w = welch(prof, args.window)
    print(w.to_string(index=False, float_format=lambda x: f"{x:,.3f}"))
    days = suggest_warmup(prof, args.window, args.tolerance)
    print(f"\nsuggested warmup_days: {days:g} (Welch window {args.window} periods, "
          f"within ±{args.tolerance:.0%} of the level); the scenario has {s.warmup_days:g}")
    return 0


def register_cli(sub) -> None:
    """Add ``compare``, ``sweep`` and ``warmup`` to the ``crisis-sim`` subcommands."""
    from .argtypes import positive_float, positive_int, seed
    c = sub.add_parser("compare", help="run scenarios with common random numbers; KPIs and paired differences")
    c.add_argument("scenarios", nargs="+", help="scenario files; differences are to the first")
    c.add_argument("--independent", action="store_true",
                   help="independent random streams per scenario instead of common random numbers")
    c.add_argument("--precision-on", choices=["means", "differences"], default="means",
                   help="judge --precision on each scenario's own means (default) or on the paired "
                        "differences to the first scenario, the quantity a comparison is about")
    _add_options(c)
    c.set_defaults(func=_cmd_compare)

    s = sub.add_parser("sweep", help="run a grid over scenario fields; tidy KPIs per point")
    s.add_argument("scenario")
    s.add_argument("--vary", action="append", required=True, metavar="FIELD=V1,V2,...",
                   help="values of one field (repeatable: the grid is every combination)")
    _add_options(s)
    s.set_defaults(func=_cmd_sweep)

    w = sub.add_parser("warmup", help="course of a measure from time 0 and a suggested warmup_days")
    w.add_argument("scenario")
    w.add_argument("--metric", default="response_time",
                   help="call-log column (mean per period) or busy.<pool> (teams busy); default response_time")
    w.add_argument("--replications", "-r", type=positive_int, default=5)
    w.add_argument("--period-days", type=positive_float, default=1.0)
    w.add_argument("--window", type=positive_int, default=7, help="Welch moving-average half-window, in periods")
    w.add_argument("--tolerance", type=positive_float, default=0.05)
    w.add_argument("--seed", type=seed, default=None)
    w.add_argument("--workers", type=positive_int, default=None)
    w.add_argument("--set", action="append", metavar="FIELD=VALUE", default=[])
    w.set_defaults(func=_cmd_warmup)
