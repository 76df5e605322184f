"""What the dispatch and crew tests share: build small scenarios from dicts, run replications,
and replay rules from the logs (``assignments``: one row per unit per task; ``units``: unit,
pool, crew, post). Times are minutes from Monday 00:00 of week 0.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from sim.metrics import t_interval
from sim.model import Model
from sim.scenario import validate
from sim.shifts import on_duty_intervals

ROLES = {"medic": {"hourly_cost": 50}, "officer": {"hourly_cost": 80, "sworn": True}}


def scenario(data: dict):
    """A validated Scenario from a dict written in the scenario schema."""
    return validate(data, "<test>")


def pool(teams: int | None = None, mean: float = 60.0, **extra) -> dict:
    """A non-sworn pool with exponential on-scene time of ``mean`` minutes."""
    out = {"roles": ["medic"], "on_scene_min": {"default": {"exponential": {"mean": mean}}}}
    if teams is not None:
        out["teams"] = teams
    out.update(extra)
    return out


def runs(s, seed: int, replications: int) -> list:
    """Independent replications (RunResult each), one process: the machine is shared."""
    return [Model(s, seed=seed, replication=r).run() for r in range(replications)]


def expected_drive(s, frm: tuple, to: tuple) -> float:
    """Minutes the dispatcher ranks a unit by, from (x_km, y_km, zone name) ``frm`` to ``to``:
    the scenario's travel model without its noise (mean 1) and without turnout (the same
    for every unit)."""
    model = s.travel.model
    if model == "none":
        return 0.0
    if model == "matrix":
        return s.travel.matrix_min[frm[2]][to[2]]
    speed = s.travel.speed_kmh / 60.0
    if model == "euclidean":
        return math.hypot(to[0] - frm[0], to[1] - frm[1]) / speed
    return (abs(to[0] - frm[0]) + abs(to[1] - frm[1])) / speed


def overlap(intervals, a: float, b: float) -> float:
    """Minutes of [a, b) inside a list of disjoint (start, end) intervals."""
    return float(sum(max(0.0, min(b, hi) - max(a, lo)) for lo, hi in intervals))


def busy_in_window(assignments: pd.DataFrame, t0: float, t1: float) -> pd.Series:
    """Busy minutes per unit inside [t0, t1): every task row, assigned -> released."""
    a = assignments
    lo = a["t_assigned"].clip(lower=t0, upper=t1)
    hi = a["t_released"].clip(lower=t0, upper=t1)
    return (hi - lo).groupby(a["unit"]).sum()


def crew_of_units(s, units: pd.DataFrame) -> dict[int, object]:
    """unit id -> the scenario's Crew (matched by pool and crew name), recomputed from the
    scenario's shift entries, not read from the engine."""
    out = {}
    for r in units.itertuples():
        crews = {c.name: c for c in s.pools[str(r.pool)].crews()}
        out[int(r.unit)] = crews[str(r.crew)]
    return out


def duty_intervals(s, units: pd.DataFrame, t0: float, t1: float) -> dict[int, list]:
    """unit id -> on-duty intervals in [t0, t1)."""
    return {u: on_duty_intervals(c, t0, t1) for u, c in crew_of_units(s, units).items()}


def bonferroni_ci(per_rep, exact: float, m: int) -> tuple[bool, float, float, float]:
    """Whether ``exact`` lies in the t-interval of the replication values at family-wise 95%
    over ``m`` comparisons (each at 1 - 0.05 / m); and (mean, low, high)."""
    mean, lo, hi = t_interval(per_rep, confidence=1 - 0.05 / m)
    return (lo <= exact <= hi) and not math.isnan(lo), mean, lo, hi


def atom_rects(centres, half: float = 0.1) -> dict:
    """Zones a{j}: squares of side 2 * half km around each centre, equal shares."""
    return {f"a{j}": {"share": 1.0 / len(centres), "rect_km": [x - half, y - half, x + half, y + half]}
            for j, (x, y) in enumerate(centres)}


def preference_lists(posts, centres, half: float) -> list[list[int]]:
    """Each atom's units by distance from the atom (closest first), checked to hold for every
    point of the atom's square: the gap between consecutive units exceeds the square's diagonal."""
    prefs = []
    for cx, cy in centres:
        d = [math.hypot(px - cx, py - cy) for px, py in posts]
        order = sorted(range(len(posts)), key=d.__getitem__)
        gaps = np.diff([d[n] for n in order])
        assert (gaps > 2 * math.sqrt(2) * half).all(), f"atom at ({cx}, {cy}) has no clear preference order"
        prefs.append(order)
    return prefs
