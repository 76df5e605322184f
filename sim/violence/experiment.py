"""Replications of a violence scenario, and the branching ratio x effect grid.

Layered like the crisis side: ``single_run`` (one replication: history, programs, logs,
KPIs) -> ``run_violence`` (many replications, tidy DataFrames, 95% t-intervals) ->
``sensitivity_grid`` (n x e). Replication ``r`` with seed ``s`` always draws from streams
keyed by ``(s, r)``: the no-program history of a replication does not depend on the
programs, so every program variant is compared with the same shootings.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from ..experiment import Results
from ..metrics import summarise
from ..streams import Streams
from .history import History, generate_history
from .kpis import REASONS, check_targets, kpis
from .programs import ACTION_COLUMNS, RESPONSE_COLUMNS, Outcome, apply_programs
from .schema import ViolenceScenario, with_values


@dataclass
class ViolenceResults:
    """Many replications of one violence scenario, as tidy DataFrames.

    * ``shootings``: one row per shooting of the no-program history per replication:
      scenario, replication, shooting_id, parent_id (<NA> for background), generation
      (0 = background), kind (background / retaliation), time_min, warmup, area, group,
      person, fatal, fellow (fired by a fellow at the time), cancelled, reason (why it was
      averted: response, fellowship, canvassing, call_in, enforcement, ancestor; else None)
    * ``responses``: one row per response attempt: scenario, replication, shooting_id,
      response, shot_min, assigned_min, arrived_min, outcome (reached, after_retaliation,
      late, no_worker, no_hours, not_notified)
    * ``actions``: program actions: scenario, replication, time_min, program, action,
      target, value (fellowship enrolled/declined, canvassing week coverage, call_in,
      enforcement)
    * ``kpis``: scenario, replication, metric, value; ``summary``: scenario, metric, mean,
      ci_low, ci_high, replications (95% t-interval across replications)

    Times are minutes from the start of the run; the warm-up ends at
    ``scenario.warmup_days * 1440``.
    """

    scenario: ViolenceScenario
    seed: int
    shootings: pd.DataFrame
    responses: pd.DataFrame
    actions: pd.DataFrame
    kpis: pd.DataFrame
    summary: pd.DataFrame
    wall_s: float

    kpi = Results.kpi   # mean of one KPI across replications (the crisis side's lookup)

    def targets(self) -> pd.DataFrame:
        """The scenario's published targets against the simulated means."""
        return check_targets(self.scenario, self.summary)


def logs(s: ViolenceScenario, replication: int, h: History, o: Outcome
         ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(shootings, responses, actions, staff) DataFrames of one replication."""
    groups = list(s.groups)
    areas = [s.groups[g].area for g in groups]
    n = len(h)
    fellow = np.zeros(n, dtype=bool)
    if o.enrol_start is not None:
        fellow = (o.enrol_start[h.person] <= h.time) & (h.time < o.enrol_end[h.person])
    shootings = pd.DataFrame({
        "scenario": s.name, "replication": replication, "shooting_id": np.arange(n),
        "parent_id": pd.arrays.IntegerArray(h.parent.astype(np.int64), h.parent < 0),
        "generation": h.generation,
        "kind": pd.Categorical(np.where(h.generation == 0, "background", "retaliation"),
                               categories=["background", "retaliation"]),
        "time_min": h.time, "warmup": h.time < s.start_min,
        "area": pd.Categorical(np.asarray(areas, dtype=object)[h.group], categories=s.areas()),
        "group": pd.Categorical.from_codes(h.group, categories=groups),
        "person": h.person, "fatal": h.fatal, "fellow": fellow,
        "cancelled": o.cancelled, "reason": pd.Categorical(o.reason, categories=REASONS),
    })
    responses = pd.DataFrame(o.responses, columns=RESPONSE_COLUMNS)
    responses.insert(0, "replication", replication)
    responses.insert(0, "scenario", s.name)
    actions = pd.DataFrame(o.actions, columns=ACTION_COLUMNS)
    actions.insert(0, "replication", replication)
    actions.insert(0, "scenario", s.name)
    staff = pd.DataFrame(o.staff, columns=["staff", "workers", "on_duty_min", "response_busy_min"])
    return shootings, responses, actions, staff


def single_run(s: ViolenceScenario, seed: int, replication: int, history: History | None = None):
    """One replication: (shootings, responses, actions, kpi dict).

    ``history`` replaces the sampled no-program history (hand-built tests, or reusing one
    history for several program variants).
    """
    streams = Streams(seed, replication)
    h = generate_history(s, streams) if history is None else history
    o = apply_programs(s, h, streams)
    shootings, responses, actions, staff = logs(s, replication, h, o)
    return shootings, responses, actions, kpis(s, shootings, responses, actions, staff)


def run_violence(scenario: ViolenceScenario, replications: int = 10, seed: int | None = None
                 ) -> ViolenceResults:
    """Run ``replications`` of a violence scenario in this process."""
    seed = scenario.seed if seed is None else int(seed)
    t0 = time.perf_counter()
    parts = [single_run(scenario, seed, r) for r in range(replications)]
    k = _long_kpis(scenario.name, [p[3] for p in parts])
    return ViolenceResults(
        scenario=scenario, seed=seed,
        shootings=pd.concat([p[0] for p in parts], ignore_index=True),
        responses=pd.concat([p[1] for p in parts], ignore_index=True),
        actions=pd.concat([p[2] for p in parts], ignore_index=True),
        kpis=k, summary=summarise(k), wall_s=time.perf_counter() - t0)


def _long_kpis(name: str, per_rep: list[dict[str, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"scenario": name, "replication": r, "metric": m, "value": v}
                         for r, d in enumerate(per_rep) for m, v in d.items()],
                        columns=["scenario", "replication", "metric", "value"])


def sensitivity_grid(scenario: ViolenceScenario, n_values: Sequence[float] = (0.1, 0.2, 0.35, 0.5, 0.63),
                     e_values: Sequence[float] = (0.0, 0.1, 0.2, 0.4, 0.6, 0.8),
                     replications: int = 10, seed: int | None = None, response: str = "scene",
                     hold_total: bool = True) -> pd.DataFrame:
    """KPIs over a grid of branching ratio n x interruption effect e (of ``response``).

    With ``hold_total`` (the default) every group's background rate is rescaled by
    (1 - n) / (1 - n_scenario), so the no-program number of shootings stays what the
    scenario says: a city knows how many shootings it has, not how many are retaliations.
    Without it the background stays fixed and the total grows as 1 / (1 - n).

    For each n and replication the no-program history is sampled once and every e is
    applied to that same history, so differences along e are exact counts, not noise.
    Columns: scenario, n, e, metric, mean, ci_low, ci_high, replications, hold_total.
    """
    p = scenario.programs
    if p is None or response not in p.responses:
        have = ", ".join(p.responses) if p and p.responses else "none"
        raise ValueError(f"scenario '{scenario.name}' has no response program '{response}' "
                         f"(its responses: {have}); the grid varies that program's effect")
    seed = scenario.seed if seed is None else int(seed)
    frames = []
    for n in n_values:
        values = {"contagion.branching_ratio": float(n)}
        if hold_total:
            scale = (1.0 - n) / (1.0 - scenario.contagion.branching_ratio)
            values.update({f"groups.{g}.background_per_year": grp.background_per_year * scale
                           for g, grp in scenario.groups.items()})
        base = with_values(scenario, values)
        variants = [(e, with_values(base, {f"programs.responses.{response}.effect": float(e)}))
                    for e in e_values]
        per_e: dict[float, list[dict]] = {e: [] for e in e_values}
        for r in range(replications):
            h = generate_history(base, Streams(seed, r))
            for e, s in variants:
                per_e[e].append(single_run(s, seed, r, history=h)[3])
        for e in e_values:
            summ = summarise(_long_kpis(scenario.name, per_e[e]))
            summ.insert(1, "n", float(n))
            summ.insert(2, "e", float(e))
            summ["hold_total"] = hold_total
            frames.append(summ)
    return pd.concat(frames, ignore_index=True)
