"""Replications of a scenario, in sequence or in parallel, with summaries.

The layered runner follows Monks et al.: ``single_run`` (one replication) ->
``run`` (many replications of one scenario). Replication ``r`` of a run with seed ``s``
always draws from streams keyed by ``(s, r)``, so where it runs (which process, in which
order) cannot change its numbers: parallel equals sequential.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

import pandas as pd

from .metrics import kpis, summarise
from .model import Model, RunResult
from .scenario import Scenario


def single_run(scenario: Scenario, seed: int, replication: int) -> tuple[RunResult, dict[str, float]]:
    """One replication and its KPIs."""
    res = Model(scenario, seed, replication).run()
    return res, kpis(res.calls, res.pools, scenario.horizon_days, res.facilities)


@dataclass
class Results:
    """Many replications of one scenario, as tidy DataFrames."""

    scenario: Scenario
    seed: int
    calls: pd.DataFrame     # one row per call per replication
    pools: pd.DataFrame     # resource audit per pool per replication
    hourly: pd.DataFrame    # team-minutes per pool, hour of week, replication
    kpis: pd.DataFrame      # scenario, replication, metric, value
    summary: pd.DataFrame   # scenario, metric, mean, ci_low, ci_high, replications
    wall_s: float

    def kpi(self, metric: str) -> float:
        """Mean of one KPI across replications."""
        row = self.summary.loc[self.summary["metric"] == metric, "mean"]
        if row.empty:
            raise KeyError(f"no KPI '{metric}'; available: {', '.join(self.summary['metric'])}")
        return float(row.iloc[0])


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def run(scenario: Scenario, replications: int = 10, seed: int | None = None,
        workers: int | None = None, progress=None) -> Results:
    """Run ``replications`` of ``scenario``; ``workers=1`` runs in this process.

    ``progress`` is called with the number of finished replications after each one.
    """
    seed = scenario.seed if seed is None else int(seed)
    workers = min(workers or default_workers(), replications)
    t0 = time.perf_counter()
    done: dict[int, tuple[RunResult, dict]] = {}
    if workers <= 1:
        for r in range(replications):
            done[r] = single_run(scenario, seed, r)
            if progress:
                progress(len(done))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(single_run, scenario, seed, r): r for r in range(replications)}
            for fut in as_completed(futures):
                done[futures[fut]] = fut.result()
                if progress:
                    progress(len(done))
    order = sorted(done)
    k = pd.DataFrame([{"scenario": scenario.name, "replication": r, "metric": m, "value": v}
                      for r in order for m, v in done[r][1].items()])
    return Results(
        scenario=scenario, seed=seed,
        calls=pd.concat([done[r][0].calls for r in order], ignore_index=True),
        pools=pd.concat([done[r][0].pools for r in order], ignore_index=True),
        hourly=pd.concat([done[r][0].hourly for r in order], ignore_index=True),
        kpis=k, summary=summarise(k), wall_s=time.perf_counter() - t0)
