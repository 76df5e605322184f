"""The cheapest roster that meets the targets: ``crisis-sim optimize`` and ``sim.optimize``.

A targets file (``scenarios/eugene/targets.yaml``) declares

* **decisions**: crews per shift block of a pool (``blocks: {hours: 4, over: day}``: the
  same crews every day; ``over: week``: one value per day and block), crews per candidate
  shift pattern (``patterns: [{name, days, start, end}]``), vehicles of a vehicle pool,
  beds of a facility; each with ``min``/``max`` bounds;
* **targets**: a KPI (names as in :mod:`sim.metrics`) ``at_most`` / ``at_least`` a bound,
  optionally in every hour block (``per_block: {hours: 4}``), all at one ``confidence``;
* the **objective** (default ``cost_per_year``, currency per year).

Method (simulation optimisation under common random numbers):

1. a *pilot* run with every decision at its upper bound: if a target fails there, no
   roster within the bounds meets it (the answer is one line naming it);
2. an *analytic start*: the pilot's busy team-minutes per hour give the offered load
   (erlangs) per hour; each hour gets the smallest crew count that meets the targets in an
   M/M/c (Erlang-C) reading of them (see :func:`hourly_requirement`); a block gets the
   requirement of its mean load, patterns are chosen by an integer covering program over
   the hourly requirement (``scipy.optimize.milp``); vehicles start at the most crews on
   duty at once, beds by Erlang-B on the pilot's mean occupancy;
3. *marginal moves*, each round screened with ``screening_replications`` of the same seed
   (common random numbers): while the incumbent meets the targets (one-sided bounds at
   ``screening_level`` over the screening replications), take the removal of one unit that
   keeps them and costs least; when none does, *confirm*; when the incumbent fails (or
   failed confirmation), add the unit that mends the shortfalls most per unit of cost (or,
   when one is not enough, the fewest best units whose single gains add up to it);
4. *confirmation*: a sequential test on fresh streams (``seed + 1``): up to ``looks``
   batches of ``confirmation_replications`` x 1, 2, 4...; the roster is accepted when every
   target's one-sided bound at level ``1 - (1 - confidence) / (targets x looks)`` holds
   (Bonferroni: all targets hold together with probability >= ``confidence``), rejected as
   soon as one target's mean is on the wrong side or after the last look (then the
   screening level moves halfway to 1, so the search keeps more margin).

Every evaluation runs through :func:`sim.experiment.compare` into a results store under
``out/evals/``; the search is deterministic given the stored values, so a rerun after a
kill replays the finished rounds from the store and recomputes nothing that finished.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import pandas as pd
from pydantic import Field, NonNegativeInt, PositiveInt, model_validator

from .scenario import Scenario, ScenarioError, Strict, load_raw, validate
from .shifts import DAY_NAMES, DayName, ShiftEntry, WeeklySchedule

EXIT_INFEASIBLE = 1

# --------------------------------------------------------------------------- targets file


class Blocks(Strict):
    """Equal blocks of hours: of the day (``over: day``) or of the week. A pool decision has
    one variable per block; a ``per_block`` target one bound per block."""

    hours: PositiveInt = Field(description="block length in hours; must divide 24")
    over: Literal["day", "week"] = Field("day", description="day: the same crews every day; "
                                         "week: one value per day and block")

    @model_validator(mode="after")
    def _divides(self):
        if 24 % self.hours:
            raise ValueError(f"hours must divide 24 (1, 2, 3, 4, 6, 8, 12 or 24), not {self.hours}")
        return self


class Pattern(Strict):
    """A candidate shift: the decision is how many crews work it."""

    name: str
    days: Literal["daily", "weekdays", "weekends"] | DayName | list[DayName] = "daily"
    start: str
    end: str

    @model_validator(mode="after")
    def _entry(self):
        self.entry(1)                   # the same checks as a shift entry in a scenario
        return self

    def entry(self, teams: int) -> ShiftEntry:
        return ShiftEntry(days=self.days, start=self.start, end=self.end, teams=teams)


class Decision(Strict):
    """One group of decision variables with bounds: crews of a pool per block or pattern,
    vehicles of a vehicle pool, or beds of a facility."""

    pool: str | None = Field(None, description="pool whose shifts are decided (with blocks or patterns)")
    blocks: Blocks | None = None
    patterns: list[Pattern] | None = Field(None, min_length=1)
    vehicles: str | None = Field(None, description="vehicle pool whose size is decided")
    beds: str | None = Field(None, description="facility whose beds are decided")
    min: NonNegativeInt = 0
    max: NonNegativeInt

    @model_validator(mode="after")
    def _one_kind(self):
        kinds = [k for k in ("pool", "vehicles", "beds") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("a decision names exactly one of pool: (with blocks or patterns), vehicles: or beds:")
        if self.pool is not None and (self.blocks is None) == (self.patterns is None):
            raise ValueError("a pool decision needs either blocks: {hours: N} or patterns: [...]")
        if self.pool is None and (self.blocks is not None or self.patterns is not None):
            raise ValueError("blocks and patterns belong to a pool: decision")
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        if self.pool is None and self.min < 1:
            raise ValueError("vehicles and beds need min >= 1 (a scenario cannot have 0 of them)")
        return self


class TargetSpec(Strict):
    kpi: str = Field(description="a KPI name of sim.metrics (share_within_30.eligible, fallback_rate...)")
    at_most: float | None = None
    at_least: float | None = None
    per_block: Blocks | None = Field(None, description="the bound holds in every block (calls by "
                                     "hour of week received)")

    @model_validator(mode="after")
    def _one_bound(self):
        if (self.at_most is None) == (self.at_least is None):
            raise ValueError("give exactly one of at_most: or at_least:")
        return self


class Search(Strict):
    start: Literal["analytic", "upper"] = Field("analytic", description="analytic: Erlang start from "
                                                "the pilot's loads; upper: every decision at its max")
    screening_replications: int = Field(3, ge=2, description="replications per screened roster")
    screening_level: float = Field(0.8, ge=0.5, lt=1.0, description="one-sided level a screened roster's "
                                   "targets must hold at (0.5 = the mean); halved distance to 1 after "
                                   "each rejected confirmation")
    confirmation_replications: int = Field(10, ge=2, description="replications of the first look")
    looks: PositiveInt = Field(3, description="confirmation batches: n, 2n, 4n... replications")
    budget: PositiveInt | None = Field(None, description="most replications the whole search may use")


class OptimizeSpec(Strict):
    decisions: list[Decision] = Field(min_length=1)
    targets: list[TargetSpec] = Field(min_length=1)
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="probability that all targets hold")
    objective: str = Field("cost_per_year", description="KPI to minimise (its mean)")
    frontier: str | None = Field(None, description="KPI on the frontier chart's x axis "
                                 "(default: the first at_least target)")
    overrides: dict[str, Any] = Field({}, description="scenario fields set for every evaluation "
                                      "(horizon_days: 14, ...)")
    search: Search = Search()


def load_targets(path: str | Path) -> tuple[OptimizeSpec, dict]:
    """A targets file -> (validated spec, key positions for error lines)."""
    data, positions = load_raw(path)
    return validate_spec(data, str(path), positions), positions


def validate_spec(data: Any, file: str | None = None, positions: dict | None = None) -> OptimizeSpec:
    """A targets mapping -> OptimizeSpec, or a ScenarioError naming every problem (file, field
    path, line, what is allowed), worded as the scenario loader words them. (Not
    :func:`sim.scenario.validate`: that also runs the scenario size and staffing checks.)"""
    from pydantic import ValidationError

    from .scenario import _allowed_fields, _clean_loc, _describe
    positions = positions or {}
    if not isinstance(data, dict):
        raise ScenarioError(file, None, "a targets file is a mapping (decisions: ..., targets: ...)")
    try:
        return OptimizeSpec.model_validate(data)
    except ValidationError as e:
        found: dict[tuple, ScenarioError] = {}
        for err in e.errors():
            loc = _clean_loc(err["loc"])
            line = next((positions[loc[:n]][1] for n in range(len(loc), 0, -1) if loc[:n] in positions), None)
            msg = _describe(err, _allowed_fields(loc, OptimizeSpec) if err["type"] == "extra_forbidden" else None)
            found.setdefault(loc, ScenarioError(file, ".".join(loc) or None, msg, line))
        raise ScenarioError.of(list(found.values())) from None


# --------------------------------------------------------------------------- variables


@dataclass(frozen=True)
class Variable:
    """One integer decision: crews on a block/pattern, vehicles, or beds."""

    decision: int
    kind: Literal["block", "pattern", "vehicles", "beds"]
    target: str                     # pool, vehicle pool or facility
    label: str                      # "08:00-12:00", "mon 08:00-12:00", pattern name, ...
    lo: int
    hi: int
    days: Any = None                # shift entry fields (blocks and patterns)
    start: str | None = None
    end: str | None = None

    def entry(self, teams: int, post=None) -> dict:
        e = {"name": self.label, "days": self.days, "start": self.start, "end": self.end, "teams": int(teams)}
        return e if post is None else dict(e, post=post)

    def hours(self) -> np.ndarray:
        """Hours of the week (168 booleans) this shift covers (blocks and patterns)."""
        e = ShiftEntry(days=self.days, start=self.start, end=self.end, teams=1)
        return WeeklySchedule.from_entries([e]).hourly() > 0


def _clock(h: int) -> str:
    return f"{h:02d}:00"


def variables(spec: OptimizeSpec) -> list[Variable]:
    out = []
    for i, d in enumerate(spec.decisions):
        if d.blocks is not None:
            h = d.blocks.hours
            days = ["daily"] if d.blocks.over == "day" else list(DAY_NAMES)
            for day in days:
                for s in range(0, 24, h):
                    span = f"{_clock(s)}-{_clock(s + h)}"
                    out.append(Variable(i, "block", d.pool, span if day == "daily" else f"{day} {span}",
                                        d.min, d.max, day, _clock(s), _clock(s + h)))
        elif d.patterns is not None:
            out.extend(Variable(i, "pattern", d.pool, p.name, d.min, d.max, p.days, p.start, p.end)
                       for p in d.patterns)
        else:
            kind = "vehicles" if d.vehicles else "beds"
            out.append(Variable(i, kind, d.vehicles or d.beds, d.vehicles or d.beds, d.min, d.max))
    return out


def check_against(spec: OptimizeSpec, scenario: Scenario, file: str, positions: dict) -> None:
    """Decisions must name pools, vehicle pools and facilities (with beds) of the scenario."""
    def fail(where: str, msg: str):
        line = positions.get(tuple(where.split(".")), (None, None))[1]
        raise ScenarioError(file, where, msg, line)

    for i, d in enumerate(spec.decisions):
        if d.pool is not None and d.pool not in scenario.pools:
            fail(f"decisions.{i}.pool", f"unknown pool '{d.pool}'; pools: {', '.join(scenario.pools)}")
        if d.vehicles is not None and d.vehicles not in scenario.vehicles:
            fail(f"decisions.{i}.vehicles", f"unknown vehicle pool '{d.vehicles}'; vehicle pools: "
                 f"{', '.join(scenario.vehicles) or '(none defined)'}")
        if d.beds is not None and d.beds not in scenario.facilities:
            fail(f"decisions.{i}.beds", f"unknown facility '{d.beds}'; facilities: "
                 f"{', '.join(scenario.facilities) or '(none defined)'}")
    for kind in ("vehicles", "beds"):
        first: dict[str, int] = {}
        for i, d in enumerate(spec.decisions):
            name = getattr(d, kind)
            if name is None:
                continue
            if name in first:
                fail(f"decisions.{i}.{kind}", f"'{name}' is already decided by decisions.{first[name]}")
            first[name] = i


def apply_roster(raw: dict, vs: list[Variable], x: tuple[int, ...]) -> dict:
    """The raw scenario mapping with the decisions ``x`` written in: a decided pool's
    ``shifts`` are replaced by one entry per block or pattern with crews (a pool decided by
    one 24-hour daily block gets ``teams: N``), vehicles and beds set."""
    data = copy.deepcopy(raw)
    shifts: dict[str, list[dict]] = {}
    single: dict[str, int] = {}
    for v, n in zip(vs, x):
        if v.kind in ("block", "pattern"):
            shifts.setdefault(v.target, [])
            if n:
                shifts[v.target].append(v.entry(n, _first_post(raw["pools"][v.target])))
            if v.kind == "block" and v.days == "daily" and v.start == "00:00" and v.end == "24:00":
                single[v.target] = int(n)
        elif v.kind == "vehicles":
            data.setdefault("vehicles", {})[v.target] = int(n)
        else:
            data["facilities"][v.target]["beds"] = int(n)
    for pool, entries in shifts.items():
        p = data["pools"][pool]
        for k in ("teams", "shifts", "posts"):
            p.pop(k, None)
        if pool in single and sum(1 for v in vs if v.target == pool and v.kind in ("block", "pattern")) == 1 \
                and single[pool] > 0:
            p["teams"] = single[pool]
        else:
            p["shifts"] = entries
    return data


def _first_post(pool: dict):
    """Where the pool's crews were posted (the first post of the pool or of its first shift
    entry), kept for the decided shifts; None: the pool's base."""
    if pool.get("posts"):
        return pool["posts"][0]
    for e in pool.get("shifts") or []:
        if isinstance(e, dict) and (e.get("post") is not None or e.get("posts")):
            return e.get("post") if e.get("post") is not None else e["posts"][0]
    return None


# --------------------------------------------------------------------------- queueing formulas


def erlang_b(c: int, a: float) -> float:
    """Blocking probability of an M/G/c/c loss system, offered load ``a`` erlangs."""
    b = 1.0
    for k in range(1, int(c) + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(c: int, a: float) -> float:
    """Probability an arrival waits in an M/M/c queue (1 when ``a >= c``)."""
    if c <= 0 or a >= c:
        return 1.0
    b = erlang_b(c, a)
    return c * b / (c - a * (1 - b))


def wait_exceeds(c: int, a: float, t: float, mean_service: float) -> float:
    """P(wait > t) in an M/M/c queue (t and mean_service in the same unit)."""
    if c <= 0 or a >= c:
        return 1.0
    return erlang_c(c, a) * math.exp(-(c - a) * t / mean_service)


def mean_wait(c: int, a: float, mean_service: float) -> float:
    """Mean wait in queue of an M/M/c (unit of mean_service); inf when ``a >= c``."""
    if c <= 0 or a >= c:
        return math.inf
    return erlang_c(c, a) * mean_service / (c - a)


def _smallest(c0: int, ok: Callable[[int], bool], cap: int = 10_000) -> int:
    c = max(0, c0)
    while not ok(c) and c < cap:
        c += 1
    return c


def hourly_requirement(load: float, mean_service: float, max_wait: float | None,
                       targets: list[TargetSpec]) -> int:
    """Crews one hour needs in an M/M/c reading of the targets, offered load ``load`` erlangs
    and ``mean_service`` minutes busy per call:

    * ``*fallback*`` at most e: P(wait > the pool's max wait) <= e (P(wait > 0) without one);
    * ``share_within_T*`` at least s: P(wait > T) <= 1 - s;
    * ``response_time_p90*`` (``_p50``) at most T: P(wait > T) <= 0.1 (0.5);
    * ``response_time_mean*`` / ``queue_wait_mean`` at most W: mean wait <= W;
    * none of these: square-root staffing, ceil(a + sqrt(a)).

    Travel and on-scene details are ignored: it is a start for the search, not an answer.
    """
    if load <= 0:
        return 0
    base = int(math.floor(load)) + 1          # stability
    needs = []
    for t in targets:
        k = t.kpi
        if "fallback" in k and t.at_most is not None:
            eps, tau = t.at_most, (max_wait or 0.0)
        elif k.startswith("share_within_") and t.at_least is not None:
            try:
                tau = float(k.removeprefix("share_within_").split(".")[0])
            except ValueError:
                continue
            eps = 1.0 - t.at_least
        elif k.startswith(("response_time_p90", "response_time_p50")) and t.at_most is not None:
            eps, tau = (0.1 if "p90" in k else 0.5), t.at_most
        elif k.startswith(("response_time_mean", "queue_wait_mean")) and t.at_most is not None:
            w = t.at_most
            needs.append(_smallest(base, lambda c: mean_wait(c, load, mean_service) <= w))
            continue
        else:
            continue
        needs.append(_smallest(base, lambda c: wait_exceeds(c, load, tau, mean_service) <= max(eps, 1e-9)))
    return max(needs) if needs else int(math.ceil(load + math.sqrt(load)))


def cover(requirement: np.ndarray, shifts: np.ndarray, cost: np.ndarray, lo: np.ndarray,
          hi: np.ndarray) -> np.ndarray:
    """Cheapest integer crews per shift pattern covering an hourly requirement:
    min cost.x s.t. shifts.T x >= requirement, lo <= x <= hi (``scipy.optimize.milp``).
    ``shifts`` is patterns x hours (booleans). Hours no pattern can cover within the bounds
    are covered as far as possible."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    a = shifts.astype(float).T                       # hours x patterns
    reach = a @ hi
    need = np.minimum(requirement, reach)
    res = milp(c=cost, constraints=LinearConstraint(a, lb=need, ub=np.inf),
               integrality=np.ones(len(cost)), bounds=Bounds(lo, hi))
    if res.x is None:
        return hi.astype(int)
    return np.round(res.x).astype(int)


# --------------------------------------------------------------------------- goals


@dataclass(frozen=True)
class Goal:
    """One scalar target: ``kpi`` (a KPI, or ``KPI@block``) at most / at least ``bound``."""

    kpi: str
    bound: float
    at_most: bool
    block: bool = False             # a per-block value (may be missing: no calls in the block)

    def __str__(self) -> str:
        return f"{self.kpi} {'<=' if self.at_most else '>='} {self.bound:g}"

    def holds(self, value: float) -> bool:
        if value != value:
            return self.block
        return value <= self.bound if self.at_most else value >= self.bound

    def margin(self, value: float) -> float:
        """Normalised slack: > 0 holds, < 0 misses (relative to |bound|, or absolute at 0)."""
        if value != value:
            return 0.0 if self.block else -math.inf
        scale = abs(self.bound) or 1.0
        return ((self.bound - value) if self.at_most else (value - self.bound)) / scale


def _block_labels(hours: int, over: str) -> list[str]:
    days = [""] if over == "day" else [f"{d} " for d in DAY_NAMES]
    return [f"{d}{_clock(s)}-{_clock(s + hours)}" for d in days for s in range(0, 24, hours)]


def goals(spec: OptimizeSpec) -> list[Goal]:
    out = []
    for t in spec.targets:
        bound, at_most = (t.at_most, True) if t.at_most is not None else (t.at_least, False)
        if t.per_block is None:
            out.append(Goal(t.kpi, float(bound), at_most))
        else:
            out.extend(Goal(f"{t.kpi}@{lab}", float(bound), at_most, True)
                       for lab in _block_labels(t.per_block.hours, t.per_block.over))
    return out


class _BlockTotals:
    """The ``per_block`` targets' KPI totals of one replication, gathered a batch of call-log
    rows at a time: one :class:`sim.metrics._CallTotals` per block length (and ``over``) and
    block, fed the rows received in that block. The KPIs do not depend on how the rows are
    split into batches or in what order they come (exact sums, quantiles of all values), so
    a log read from its file batch by batch gives the very values of the log in memory;
    memory: one batch plus the totals' 12 bytes per call kept for the quantiles."""

    def __init__(self, scenario: Scenario, targets: list[TargetSpec]):
        from .metrics import _CallTotals
        self.scenario = scenario
        self.targets = [t for t in targets if t.per_block is not None]
        blocks = dict.fromkeys((t.per_block.hours, t.per_block.over) for t in self.targets)
        self.totals = {b: [_CallTotals(scenario) for _ in _block_labels(*b)] for b in blocks}
        self.rows = {b: np.zeros(len(_block_labels(*b)), np.int64) for b in blocks}   # measured rows seen

    def add(self, calls: pd.DataFrame) -> None:
        """Gather a batch of the call log (its ``warmup`` rows are left out)."""
        from .plots import hour_of_week
        calls = calls[~calls["warmup"].to_numpy(bool)]
        how = hour_of_week(calls["t_received"].to_numpy(float))
        for (h, over), totals in self.totals.items():
            block = (how % 24) // h if over == "day" else how // h
            for i, tot in enumerate(totals):
                sel = block == i
                m = int(sel.sum())
                if m:
                    tot.add(calls[sel])
                    self.rows[h, over][i] += m

    def result(self, pools: pd.DataFrame) -> dict[str, float]:
        out: dict[str, float] = {}
        values = {b: [tot.result(pools, self.scenario.horizon_days) if m else {}
                      for tot, m in zip(totals, self.rows[b])] for b, totals in self.totals.items()}
        for t in self.targets:
            b = (t.per_block.hours, t.per_block.over)
            for lab, kv in zip(_block_labels(*b), values[b]):
                out[f"{t.kpi}@{lab}"] = kv.get(t.kpi, math.nan)
        return out


def block_kpis(calls: pd.DataFrame, pools: pd.DataFrame, scenario: Scenario,
               targets: list[TargetSpec]) -> dict[str, float]:
    """Per-block values of the ``per_block`` targets of one replication: the KPI of
    :func:`sim.metrics.kpis` computed on the calls received (after the warm-up) in each block
    (hour of week of ``t_received``), named ``KPI@08:00-12:00`` (``KPI@mon 08:00-12:00`` over
    the week); NaN for a block no call was received in."""
    totals = _BlockTotals(scenario, targets)
    totals.add(calls)
    return totals.result(pools)


BLOCK_CALL_COLUMNS = ("t_received",)      # read beside metrics.KPI_CALL_COLUMNS


def block_kpis_from_file(calls_path, pools: pd.DataFrame, scenario: Scenario, targets: list[TargetSpec],
                         rows: int | None = None) -> dict[str, float]:
    """:func:`block_kpis` of a stored (streamed) call log, the same values, read ``rows``
    rows at a time (default: a row group, ``calllog.ROW_GROUP``): memory follows a batch and
    the per-call values the quantiles keep (12 bytes a call), not the log."""
    from .calllog import batches, release_memory
    from .metrics import KPI_CALL_COLUMNS
    totals = _BlockTotals(scenario, targets)
    for b in batches(calls_path, KPI_CALL_COLUMNS + BLOCK_CALL_COLUMNS, rows):
        totals.add(b)
        del b
        release_memory()
    return totals.result(pools)


# --------------------------------------------------------------------------- the search


class OptimizeError(RuntimeError):
    """The search cannot go on (a replication failed)."""


@dataclass
class Evaluation:
    """Replications of one roster at one seed: per-replication values (index replication)."""

    x: tuple[int, ...]
    key: str
    seed: int
    values: pd.DataFrame
    hourly: pd.DataFrame | None = None      # the pilot's tables, for the analytic start
    pools: pd.DataFrame | None = None

    def mean(self, metric: str) -> float:
        if metric not in self.values:
            return math.nan
        v = self.values[metric].to_numpy(float)
        v = v[~np.isnan(v)]
        return float(v.mean()) if len(v) else math.nan

    @property
    def n(self) -> int:
        return len(self.values)


@dataclass
class OptimizeResult:
    """What :func:`optimize` found. ``status``: ``optimal`` (confirmed), ``infeasible`` or
    ``budget`` (the replication budget ran out first)."""

    status: str
    message: str
    roster: pd.DataFrame            # decision, kind, target, item, value, min, max
    x: tuple[int, ...] | None
    cost: float                     # mean of the objective (currency per year for cost_per_year)
    kpis: pd.DataFrame              # target, kpi, bound, mean, ci_low, ci_high, one_sided, holds
    evaluations: pd.DataFrame       # one row per roster and seed evaluated
    frontier: pd.DataFrame
    confidence: float
    replications: int               # replications the search used (computed or read back)
    computed: int                   # of those, computed in this session
    wall_s: float
    out: Path
    scenario_file: Path | None = None
    infeasible_target: str | None = None
    best_value: float | None = None
    currency: str = ""              # the scenario's costs.currency


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _sha(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


class _Search:
    def __init__(self, scenario_path: str, spec: OptimizeSpec, out: Path, *, seed: int | None,
                 overrides, workers, backend, scheduler, budget, progress):
        from .scenario import apply_overrides
        self.file = str(scenario_path)
        raw, self.positions = load_raw(scenario_path)
        raw = apply_overrides(raw, dict(spec.overrides) or None, self.file)
        raw = apply_overrides(raw, overrides, self.file)
        wanted = [float(t.kpi.removeprefix("share_within_").split(".")[0]) for t in spec.targets
                  if t.kpi.startswith("share_within_") and _is_number(t.kpi.removeprefix("share_within_").split(".")[0])]
        have = [float(v) for v in raw.get("response_targets_min", [30])]
        if any(T not in have for T in wanted):   # share_within_T is computed for the scenario's T's
            raw = dict(raw, response_targets_min=have + [T for T in dict.fromkeys(wanted) if T not in have])
        self.raw = raw
        self.base = validate(self.raw, self.file, self.positions)
        self.spec = spec
        self.vars = variables(spec)
        self.goals = goals(spec)
        self.out = Path(out)
        self.seed = self.base.seed if seed is None else int(seed)
        self.confirm_seed = self.seed + 1
        self.run_kw = dict(workers=workers, backend=backend, scheduler=scheduler)
        self.budget = budget if budget is not None else spec.search.budget
        self.progress = progress or (lambda msg: None)
        self.cache: dict[tuple, Evaluation] = {}
        self.computed = 0
        self.keep_calls = any(t.per_block is not None for t in spec.targets)
        self.base_fp = _sha(self.raw)
        self.log_path = self.out / "optimize.jsonl"
        self.screening_level = spec.search.screening_level
        self._scenarios: dict[tuple, Scenario | ScenarioError] = {}

    # --- evaluations --------------------------------------------------------------

    def key(self, x) -> str:
        return "r" + _sha([self.base_fp, list(map(int, x))])[:12]

    def scenario(self, x) -> Scenario:
        """The validated scenario of roster ``x`` (ScenarioError if it is not a valid one,
        e.g. a path with no unit ever on duty)."""
        if x not in self._scenarios:
            try:
                self._scenarios[x] = validate(apply_roster(self.raw, self.vars, x), self.file, self.positions)
            except ScenarioError as e:
                self._scenarios[x] = e
        got = self._scenarios[x]
        if isinstance(got, ScenarioError):
            raise got
        return got

    def valid(self, x) -> bool:
        try:
            self.scenario(x)
            return True
        except ScenarioError:
            return False

    @property
    def used(self) -> int:
        return sum(e.n for e in self.cache.values())

    def evaluate(self, xs: list[tuple], reps: int, seed: int, hourly: bool = False) -> list[Evaluation]:
        from .experiment import compare

        need = [x for x in dict.fromkeys(xs) if (x, seed) not in self.cache or self.cache[x, seed].n < reps]
        if need:
            extra = sum(reps - (self.cache[x, seed].n if (x, seed) in self.cache else 0) for x in need)
            if self.budget is not None and self.used + extra > self.budget:
                raise _BudgetSpent()
            keys = [self.key(x) for x in need]
            folder = self.out / "evals" / f"s{seed}-{_sha([self.base_fp, seed, keys])[:12]}"
            scenarios = [self.scenario(x) for x in need]
            res = compare(scenarios, replications=reps, seed=seed, labels=keys, out=folder,
                          keep_calls=self.keep_calls, **self.run_kw)
            if len(res.failed):
                r = res.failed.iloc[0]
                raise OptimizeError(f"replication {r['replication']} of roster {r['scenario']} failed: "
                                    f"{r['error']} (traceback in {folder}/runs)")
            self.computed += _computed_now(folder)
            for x, key, s in zip(need, keys, scenarios):
                e = Evaluation(x, key, seed, self._values(res, key, s))
                if hourly:
                    e.hourly = res.hourly[res.hourly["scenario"].astype(str) == key]
                    e.pools = res.pools[res.pools["scenario"].astype(str) == key]
                self.cache[x, seed] = e
        return [self.cache[x, seed] for x in xs]

    def _values(self, res, key: str, s: Scenario) -> pd.DataFrame:
        k = res.kpis[res.kpis["scenario"].astype(str) == key]
        wide = k.pivot_table(index="replication", columns="metric", values="value", aggfunc="first",
                             dropna=False)
        wide.columns = [str(c) for c in wide.columns]
        wide[self.spec.objective] = objective_values(wide, self.spec.objective)
        if self.keep_calls:
            # each replication's call log from its stored file, a batch at a time (never the
            # evaluation's logs in memory)
            pools = res.pools[res.pools["scenario"].astype(str) == key]
            point = int(res.cells.loc[res.cells["scenario"].astype(str) == key, "point"].iloc[0])
            rows = {r: block_kpis_from_file(res.store.part("calls", key, point, r), pools[pools["replication"] == r],
                                            s, self.spec.targets) for r in wide.index}
            wide = wide.join(pd.DataFrame.from_dict(rows, orient="index"))
        return wide

    # --- judging ------------------------------------------------------------------

    def screened(self, e: Evaluation, g: Goal) -> float:
        """A target's value as screening judges it: the one-sided t bound at
        ``screening_level`` (0.8, raised after each rejected confirmation) over the screening
        replications, on the target's side, so a noisy roster needs a margin (the mean when
        the bound is undefined)."""
        from .metrics import t_interval
        v = e.values[g.kpi].to_numpy(float) if g.kpi in e.values else np.array([math.nan])
        m, lo, hi = t_interval(v, 2.0 * self.screening_level - 1.0)
        near = hi if g.at_most else lo
        return near if near == near else m

    def screen_ok(self, e: Evaluation) -> bool:
        return all(g.holds(self.screened(e, g)) for g in self.goals)

    def violation(self, e: Evaluation) -> float:
        """How far the screened values miss their targets (sum of normalised shortfalls)."""
        return sum(max(0.0, -g.margin(self.screened(e, g))) for g in self.goals)

    def slack(self, e: Evaluation) -> float:
        """The smallest normalised margin of the screened values."""
        return min(g.margin(self.screened(e, g)) for g in self.goals)

    def cost(self, e: Evaluation) -> float:
        return e.mean(self.spec.objective)

    def log(self, event: str, **fields) -> None:
        from .store import utc_now
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"t": utc_now(), "event": event, **fields}, default=str) + "\n")

    def confirm(self, x) -> tuple[bool, pd.DataFrame, str]:
        """Sequential confirmation on fresh streams; (accepted, KPI table, why)."""
        sp = self.spec.search
        alpha = (1.0 - self.spec.confidence) / (len(self.goals) * sp.looks)
        n = sp.confirmation_replications
        for look in range(sp.looks):
            e = self.evaluate([x], n, self.confirm_seed)[0]
            table = self.kpi_table(e, alpha)
            self.log("confirm", roster=e.key, look=look + 1, replications=n,
                     holds=bool(table["holds"].all()))
            if table["holds"].all():
                return True, table, ""
            fails = table[table["fails"]]
            if len(fails):
                r = fails.iloc[0]
                return False, table, f"{r['target']} fails (mean {r['mean']:.4g}, {n} replications)"
            futile = table[table["futile"]]
            if len(futile):                    # the mean is on the wrong side: more replications
                r = futile.iloc[0]             # would need luck to show it (acceptance is by the bound only)
                return False, table, f"{r['target']} misses on average (mean {r['mean']:.4g}, {n} replications)"
            n *= 2
        r = table[~table["holds"]].iloc[0]
        return False, table, f"{r['target']} not shown at {self.spec.confidence:.0%} after {n // 2} replications"

    def kpi_table(self, e: Evaluation, alpha: float) -> pd.DataFrame:
        """Per target (and a last row ``objective``): mean, two-sided interval at
        ``confidence``, the one-sided bound at 1 - alpha, holds (that bound is on the right
        side of the target), fails (even the opposite bound is on the wrong side)."""
        from .metrics import t_interval

        rows = []
        for g in self.goals + [Goal(self.spec.objective, math.nan, True)]:
            v = e.values[g.kpi].to_numpy(float) if g.kpi in e.values else np.array([math.nan])
            m, lo, hi = t_interval(v, self.spec.confidence)
            _, lo1, hi1 = t_interval(v, 1.0 - 2.0 * alpha)
            objective = g.bound != g.bound
            if objective:
                holds, fails, futile = True, False, False
            elif m != m:
                holds, fails, futile = g.block, not g.block, False
            else:
                near, far = (hi1, lo1) if g.at_most else (lo1, hi1)
                holds = g.holds(near) if near == near else g.holds(m)
                fails = not g.holds(far) if far == far else not g.holds(m)
                futile = not g.holds(m)
            rows.append({"target": "objective" if objective else str(g), "kpi": g.kpi, "bound": g.bound,
                         "mean": m, "ci_low": lo, "ci_high": hi,
                         "one_sided": math.nan if objective else (hi1 if g.at_most else lo1),
                         "holds": holds, "fails": fails, "futile": futile, "replications": int(np.sum(~np.isnan(v)))})
        return pd.DataFrame(rows)

    # --- start --------------------------------------------------------------------

    def upper(self) -> tuple[int, ...]:
        return tuple(v.hi for v in self.vars)

    def analytic_start(self, pilot: Evaluation) -> tuple[int, ...]:
        """Erlang start from the pilot's busy team-minutes per hour (see module docstring)."""
        from .plots import hours_observed

        hourly, pools = pilot.hourly, pilot.pools
        s = self.scenario(pilot.x)
        seen = np.maximum(hours_observed(s), 1)
        x = list(pilot.x)
        for pool in dict.fromkeys(v.target for v in self.vars if v.kind in ("block", "pattern")):
            h = hourly[hourly["pool"].astype(str) == pool]
            busy = h.groupby("hour_of_week")["busy_min"].mean().reindex(range(168), fill_value=0.0)
            load = busy.to_numpy(float) / 60.0 / seen                       # erlangs per hour of week
            p = pools[pools["pool"].astype(str) == pool]
            served = float(p["calls_served"].sum())
            mean_service = float(p["busy_min"].sum()) / served if served else 60.0
            vs = [(i, v) for i, v in enumerate(self.vars) if v.target == pool and v.kind in ("block", "pattern")]
            daily = all(v.days == "daily" for _, v in vs)
            if daily:                                                      # the same every day
                load = np.tile(load.reshape(7, 24).mean(axis=0), 7)
            def need(a: float) -> int:
                return hourly_requirement(a, mean_service, self._max_wait(pool), self.spec.targets)
            for i, v in vs:                   # a block: its mean load
                if v.kind == "block":
                    x[i] = int(np.clip(need(float(load[v.hours()].mean())), v.lo, v.hi))
            pats = [(i, v) for i, v in vs if v.kind == "pattern"]
            if pats:                          # patterns: cover each hour's requirement
                req = np.array([need(a) for a in load])
                shifts = np.array([v.hours() for _, v in pats])
                cost = shifts.sum(axis=1).astype(float)                   # crew-hours per week
                sol = cover(req, shifts, cost, np.array([v.lo for _, v in pats], float),
                            np.array([v.hi for _, v in pats], float))
                for (i, _), n in zip(pats, sol):
                    x[i] = int(n)
        trial = apply_roster(self.raw, self.vars, tuple(x))
        for i, v in enumerate(self.vars):
            if v.kind == "vehicles":           # one per crew on duty at the busiest time
                users = [p for p, d in trial["pools"].items() if d.get("vehicles") == v.target]
                peak = 0
                for p in users:
                    sc = validate(trial, self.file, self.positions).pools[p].schedule()
                    peak += sc.max_teams
                x[i] = int(np.clip(peak, v.lo, v.hi))
            elif v.kind == "beds":             # Erlang-B on the pilot's occupancy
                a = pilot.mean(f"occupancy_mean.{v.target}")
                eps = next((t.at_most for t in self.spec.targets
                            if t.kpi == f"refusal_rate.{v.target}" and t.at_most is not None), None)
                if a == a and eps is not None:
                    x[i] = int(np.clip(_smallest(1, lambda c: erlang_b(c, a) <= max(eps, 1e-9)), v.lo, v.hi))
        return tuple(x)

    def _max_wait(self, pool: str) -> float | None:
        """The wait (minutes) before a call leaves the first tier that holds ``pool``
        (None: it waits without limit, or no path puts the pool first)."""
        for path in self.base.triage.paths.values():
            tiers = path.tier_pools()
            if tiers and pool in tiers[0]:
                w = path.waits()[0]
                return None if w is None else float(w)
        return None

    # --- moves --------------------------------------------------------------------

    def neighbours(self, x, step: int) -> list[tuple]:
        out = []
        for i, v in enumerate(self.vars):
            y = list(x)
            y[i] += step
            if v.lo <= y[i] <= v.hi and self.valid(tuple(y)):     # rosters the scenario rules allow
                out.append(tuple(y))
        return out

    def run(self) -> dict:
        sp = self.spec.search
        R = sp.screening_replications
        self.log("start", seed=self.seed, variables=[v.label for v in self.vars], goals=[str(g) for g in self.goals])
        pilot = self.evaluate([self.upper()], R, self.seed, hourly=True)[0]
        self.check_kpis(pilot)
        if not self.screen_ok(pilot):
            return self.infeasible(pilot, "every decision at its upper bound")
        x = self.analytic_start(pilot) if sp.start == "analytic" else self.upper()
        if not self.valid(x):                  # e.g. no crew at all where a path needs one
            x = self.upper()
        self.progress(f"start {self.describe(x)}")
        self.log("start_roster", roster=self.key(x), x=list(x))
        visited, rejected = {x}, set()
        last_table, last_why, last_x = None, "", None
        while True:
            e = self.evaluate([x], R, self.seed)[0]
            if self.screen_ok(e) and x not in rejected:
                cands = [y for y in self.neighbours(x, -1) if y not in visited and y not in rejected]
                evs = [c for c in self.evaluate(cands, R, self.seed) if self.screen_ok(c)]
                if evs:
                    best = min(self.cost(c) for c in evs)
                    near = [c for c in evs if self.cost(c) <= best + 0.01 * abs(best)]
                    y = max(near, key=lambda c: (self.slack(c), -self.cost(c))).x
                    self.log("remove", frm=self.key(x), to=self.key(y), x=[int(n) for n in y],
                             cost=self.cost(self.cache[y, self.seed]))
                    self.progress(f"remove -> {self.describe(y)}")
                    x = y
                    visited.add(x)
                    continue
                ok, table, why = self.confirm(x)
                if ok:
                    self.log("confirmed", roster=self.key(x))
                    return {"status": "optimal", "x": x, "table": table}
                self.screening_level = 1.0 - (1.0 - self.screening_level) / 2.0
                self.log("rejected", roster=self.key(x), why=why, screening_level=self.screening_level)
                self.progress(f"confirmation rejected {self.describe(x)}: {why}")
                rejected.add(x)
                last_table, last_why, last_x = table, why, x
            cands = [y for y in self.neighbours(x, +1) if y not in visited]
            if not cands:
                if last_x is not None and last_table is not None:
                    return self.unconfirmed(last_x, last_table, last_why)
                return self.infeasible(e, "no decision can be raised further")
            evs = self.evaluate(cands, R, self.seed)
            base_v, base_s, base_c = self.violation(e), self.slack(e), self.cost(e)

            def gain(c: Evaluation) -> float:
                d = (base_v - self.violation(c)) if base_v > 0 else (self.slack(c) - base_s)
                return d / max(self.cost(c) - base_c, 1e-9 * max(abs(base_c), 1.0))
            b = max(evs, key=lambda c: (gain(c), -self.cost(c)))
            y = b.x
            if base_v > 0 and not self.screen_ok(b):     # far off: the additions the shortfall needs
                both = self.combine(x, self.additions_that_cover(e, sorted(evs, key=gain, reverse=True)))
                if both is not None and both not in visited and \
                        self.violation(self.evaluate([both], R, self.seed)[0]) < self.violation(b):
                    y = both
            self.log("add", frm=self.key(x), to=self.key(y), x=[int(n) for n in y])
            self.progress(f"add -> {self.describe(y)}")
            x = y
            visited.add(x)

    # --- a combined addition (a linear guess from the single ones, then screened) ------

    def additions_that_cover(self, e: Evaluation, ranked: list[Evaluation]) -> list[Evaluation]:
        """The fewest additions, best first, whose violation reductions summed cover the
        incumbent's violation (all that help, if they never do)."""
        need, taken = self.violation(e), []
        for c in ranked:
            gain = self.violation(e) - self.violation(c)
            if gain <= 0:
                break
            taken.append(c)
            need -= gain
            if need <= 0:
                break
        return taken

    def combine(self, x, moves: list[Evaluation]) -> tuple[int, ...] | None:
        """``x`` with the one-unit moves of several neighbours applied together (None if
        fewer than two, or the result is not a valid roster)."""
        if len(moves) < 2:
            return None
        y = tuple(int(n) for n in np.array(x) + sum(np.array(c.x) - np.array(x) for c in moves))
        return y if self.valid(y) else None

    def check_kpis(self, e: Evaluation) -> None:
        for name in [g.kpi for g in self.goals if not g.block] + [t.kpi for t in self.spec.targets] \
                + [self.spec.objective] + ([self.spec.frontier] if self.spec.frontier else []):
            if name not in e.values:
                known = [c for c in e.values.columns if "@" not in c]
                raise ScenarioError(None, "targets", f"no KPI named '{name}'; KPIs: {', '.join(known)}")

    def infeasible(self, e: Evaluation, where: str) -> dict:
        failing = [g for g in self.goals if not g.holds(e.mean(g.kpi))]
        g = failing[0] if failing else self.goals[0]
        vals = [c.mean(g.kpi) for (x, s), c in self.cache.items() if s == self.seed]
        vals = [v for v in vals if v == v]
        best = (min(vals) if g.at_most else max(vals)) if vals else math.nan
        msg = (f"infeasible: target {g} cannot be met within the decision bounds; best value reached "
               f"{best:.4g} ({where}, {e.n} replications)")
        self.log("infeasible", target=str(g), best=best)
        return {"status": "infeasible", "x": None, "message": msg, "target": str(g), "best": best,
                "table": None}

    def unconfirmed(self, x, table: pd.DataFrame, why: str) -> dict:
        r = table[~table["holds"]].iloc[0]
        g = next(g for g in self.goals if str(g) == r["target"])
        msg = (f"infeasible: target {g} cannot be shown at {self.spec.confidence:.0%} confidence within the "
               f"decision bounds; best value reached {r['mean']:.4g} "
               f"[{r['ci_low']:.4g}, {r['ci_high']:.4g}] ({why})")
        self.log("infeasible", target=str(g), best=r["mean"])
        return {"status": "infeasible", "x": None, "message": msg, "target": str(g), "best": float(r["mean"]),
                "table": table}

    def describe(self, x) -> str:
        return ", ".join(f"{v.label}={n}" for v, n in zip(self.vars, x))


class _BudgetSpent(Exception):
    pass


def _computed_now(folder: Path) -> int:
    """Replications committed by the last session of an evaluation folder's log."""
    from .store import Store
    log = Store(folder, []).read_log()
    if log.empty or "session" not in log:
        return 0
    last = log.loc[log["event"] == "session", "session"].iloc[-1]
    return int(((log["session"] == last) & (log["event"] == "ok")).sum())


def objective_values(wide: pd.DataFrame, objective: str) -> pd.Series:
    """Per-replication values of the objective: the KPI itself (``cost_per_year`` from
    :func:`sim.metrics.kpis`: staff, vehicle and bed costs, currency per year)."""
    if objective not in wide:
        raise ScenarioError(None, "objective", f"no KPI named '{objective}' to minimise; KPIs: "
                            f"{', '.join(c for c in wide.columns if '@' not in c)}")
    return wide[objective]


# --------------------------------------------------------------------------- outputs


def roster_table(vs: list[Variable], x: tuple[int, ...]) -> pd.DataFrame:
    """One row per decision variable: decision, kind, target, item, value, min, max."""
    return pd.DataFrame([{"decision": v.decision, "kind": v.kind, "target": v.target, "item": v.label,
                          "value": int(n), "min": v.lo, "max": v.hi} for v, n in zip(vs, x)],
                        columns=["decision", "kind", "target", "item", "value", "min", "max"])


def frontier_table(evals: pd.DataFrame, kpi: str, at_most: bool, objective: str) -> pd.DataFrame:
    """The cost-against-target frontier of the screened rosters: the cheapest roster for each
    level of ``kpi`` reached (a roster is on it when no cheaper one reaches as far), with the
    extra cost of each step per percentage point (rates and shares) or per unit."""
    e = evals.dropna(subset=[kpi, objective]).sort_values([objective, kpi], ascending=[True, not at_most])
    keep, best = [], math.inf if at_most else -math.inf
    for i, v in zip(e.index, e[kpi].to_numpy(float)):
        if (v < best) if at_most else (v > best):
            best = v
            keep.append(i)
    f = e.loc[keep].copy()
    per = 100.0 if _is_share(kpi) else 1.0
    step = f[kpi].diff().abs() * per
    f["extra_cost_per_step"] = f[objective].diff() / step.where(step > 0)
    return f.reset_index(drop=True)


def _is_share(kpi: str) -> bool:
    head = kpi.split("@")[0].split(".")[0]
    return head.startswith("share_") or head.endswith("_rate") or head.startswith("utilisation")


def frontier_chart(evals: pd.DataFrame, frontier: pd.DataFrame, kpi: str, objective: str,
                   chosen: str | None, bound: float | None):
    """Matplotlib figure: every screened roster (cost against the KPI), the frontier as a
    step line, the chosen roster and the target."""
    from matplotlib.ticker import FuncFormatter

    from .plots import _figure, _finish, _percent_axis, axis_label, metric_label

    fig, axes = _figure()
    ax = axes[0, 0]
    ok = evals["meets_targets"].astype(bool)
    ax.scatter(evals.loc[~ok, kpi], evals.loc[~ok, objective], s=14, color="#bbbbbb",
               label="misses a target (mean)")
    ax.scatter(evals.loc[ok, kpi], evals.loc[ok, objective], s=14, color="#4477aa",
               label="meets the targets (mean)")
    ax.step(frontier[kpi], frontier[objective], where="post", color="#222222", linewidth=1.2, label="frontier")
    if chosen is not None and (evals["roster"] == chosen).any():
        c = evals[evals["roster"] == chosen].iloc[0]
        ax.scatter([c[kpi]], [c[objective]], s=80, marker="*", color="#cc3311", zorder=5, label="chosen roster")
    if bound is not None:
        ax.axvline(bound, color="#cc3311", linestyle="--", linewidth=0.8, label="target")
    _percent_axis(ax, metric_label(kpi)[1], axis="x")
    ax.set_xlabel(axis_label(kpi))
    ax.set_ylabel(objective.replace("_", " "))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.legend(fontsize=8)
    return _finish(fig, f"What each step of {metric_label(kpi)[0].lower()} costs",
                   f"Screened rosters ({int(evals['replications'].max())} replications each, common random "
                   "numbers); the frontier is the cheapest roster reaching each level.")


def _markdown(result: OptimizeResult, spec: OptimizeSpec, scenario_name: str) -> str:
    lines = [f"## Optimised roster: {scenario_name}", ""]
    if result.status != "optimal":
        lines += [result.message, ""]
    else:
        lines += [f"Cost: **{result.cost:,.0f}** ({spec.objective}, mean). {result.message}", "",
                  "| decision | item | value | bounds |", "|---|---|---|---|"]
        lines += [f"| {r.kind} {r.target} | {r.item} | {r.value} | {r.min}-{r.max} |"
                  for r in result.roster.itertuples()]
        lines += ["", f"| target | mean | {spec.confidence:.0%} interval | one-sided bound | holds |",
                  "|---|---|---|---|---|"]
        lines += [f"| {r.target} | {r.mean:.4g} | [{r.ci_low:.4g}, {r.ci_high:.4g}] | {r.one_sided:.4g} | "
                  f"{'yes' if r.holds else 'no'} |" for r in result.kpis.itertuples() if r.target != "objective"]
    lines += ["", f"{len(result.evaluations)} roster evaluations, {result.replications} replications "
              f"({result.computed} computed in the last session), {result.wall_s:.0f} s.", ""]
    if len(result.frontier) > 1:
        lines += ["![frontier](frontier.png)", ""]
    return "\n".join(lines)


def _write(result: OptimizeResult, search: "_Search", scenario_yaml: str | None) -> None:
    from .results import atomic_write, write_csv, write_text

    out = result.out
    write_csv(out / "evaluations.csv", result.evaluations)
    write_csv(out / "frontier.csv", result.frontier)
    if result.x is not None:
        write_csv(out / "roster.csv", result.roster)
        write_csv(out / "kpis.csv", result.kpis)
        write_text(out / "scenario.yaml", scenario_yaml)
    info = {"status": result.status, "message": result.message, "confidence": result.confidence,
            "cost": result.cost, "objective": search.spec.objective, "seed": search.seed,
            "confirmation_seed": search.confirm_seed, "replications": result.replications,
            "computed_this_session": result.computed, "evaluations": len(result.evaluations),
            "wall_time_s": round(result.wall_s, 3), "scenario": search.file,
            "roster": None if result.x is None else {f"{v.kind}:{v.target}:{v.label}": int(n)
                                                     for v, n in zip(search.vars, result.x)},
            "infeasible_target": result.infeasible_target, "best_value": result.best_value}
    write_text(out / "result.json", json.dumps(info, indent=2, default=str) + "\n")
    write_text(out / "optimize.md", _markdown(result, search.spec, search.base.name))
    if len(result.frontier):
        kpi, bound, _ = _frontier_kpi(search)
        screened = result.evaluations[result.evaluations["stage"] == "screening"]
        fig = frontier_chart(screened, result.frontier, kpi, search.spec.objective,
                             None if result.x is None else search.key(result.x), bound)
        atomic_write(out / "frontier.png", lambda tmp: fig.savefig(tmp, format="png", dpi=120))


def _frontier_kpi(search: "_Search") -> tuple[str, float | None, bool]:
    """(KPI, its bound or None, lower is better) of the frontier chart: the targets file's
    ``frontier:``, else the first at_least target, else the first target."""
    spec = search.spec
    if spec.frontier:
        t = next((t for t in spec.targets if t.kpi == spec.frontier and t.per_block is None), None)
        if t is None:
            return spec.frontier, None, False
    else:
        t = next((t for t in spec.targets if t.per_block is None and t.at_least is not None), None) or \
            next((t for t in spec.targets if t.per_block is None), None)
        if t is None:
            g = search.goals[0]
            return g.kpi, g.bound, g.at_most
    return t.kpi, (t.at_most if t.at_most is not None else t.at_least), t.at_most is not None


def _evaluations(search: "_Search") -> pd.DataFrame:
    rows = []
    frontier = _frontier_kpi(search)[0]
    for (x, seed), e in search.cache.items():
        row = {"roster": e.key, "seed": seed, "stage": "screening" if seed == search.seed else "confirmation",
               "replications": e.n, search.spec.objective: search.cost(e),
               "meets_targets": all(g.holds(e.mean(g.kpi)) for g in search.goals)}
        row.update({f"x.{v.kind}.{v.target}.{v.label}": int(n) for v, n in zip(search.vars, x)})
        row.update({k: e.mean(k) for k in dict.fromkeys([g.kpi for g in search.goals] + [frontier])})
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- public API


def optimize(scenario: str | Path, targets: str | Path | OptimizeSpec | dict, out: str | Path, *,
             seed: int | None = None, overrides: dict | list[str] | None = None, budget: int | None = None,
             workers: int | None = None, backend: str = "local", scheduler=None,
             progress: Callable[[str], None] | None = None) -> OptimizeResult:
    """The cheapest roster within the targets file's bounds whose targets hold at its
    confidence (see module docstring). ``scenario`` is a scenario file; ``targets`` a
    targets file (or its mapping / spec); ``out`` the folder for the evaluations (rerun with
    the same arguments to resume) and the outputs: ``roster.csv``, ``kpis.csv``,
    ``scenario.yaml`` (the chosen roster, loadable), ``frontier.csv`` / ``.png``,
    ``evaluations.csv``, ``result.json``, ``optimize.md`` (a report section) and
    ``optimize.jsonl`` (every step). ``budget`` caps the replications the search may use.
    ``progress(message)`` is told each move. Bad input raises ScenarioError.
    """
    t0 = time.perf_counter()
    positions: dict = {}
    tfile = None
    if isinstance(targets, OptimizeSpec):
        spec = targets
    elif isinstance(targets, dict):
        spec = validate_spec(targets)
    else:
        tfile = str(targets)
        spec, positions = load_targets(targets)
    cluster = None
    if backend == "dask" and scheduler is None:    # one local cluster for every round, not one each
        from distributed import LocalCluster
        from .experiment import default_workers
        cluster = LocalCluster(n_workers=workers or default_workers(), threads_per_worker=1, processes=True,
                               dashboard_address=None)
        scheduler = cluster.scheduler_address
    try:
        search = _Search(str(scenario), spec, Path(out), seed=seed, overrides=overrides, workers=workers,
                         backend=backend, scheduler=scheduler, budget=budget, progress=progress)
        check_against(spec, search.base, tfile, positions)
        try:
            found = search.run()
        except _BudgetSpent:
            found = {"status": "budget", "x": None, "table": None,
                     "message": f"budget of {search.budget} replications used up before a roster was confirmed"}
    finally:
        if cluster is not None:
            cluster.close()
    x = found["x"]
    scenario_yaml = None
    if x is not None:
        import yaml
        data = apply_roster(search.raw, search.vars, x)
        applied = {**spec.overrides, **(dict(overrides) if isinstance(overrides, dict) else {})}
        scenario_yaml = (f"# Roster chosen by crisis-sim optimize from {search.file}\n"
                         f"# (targets: {tfile or 'given in code'}; seed {search.seed}). The scenario as it was\n"
                         f"# evaluated: parents merged, overrides applied"
                         + (f" ({', '.join(sorted(applied))}; --set {' '.join(overrides)})"
                            if isinstance(overrides, list) and overrides else
                            f" ({', '.join(sorted(applied))})" if applied else "")
                         + ", the decided shifts, vehicles and beds written in.\n"
                         + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        table = found["table"]
        cost = float(table.loc[table["target"] == "objective", "mean"].iloc[0])
        n = int(table["replications"].max())
        message = (f"all {len(search.goals)} targets hold with probability >= {spec.confidence:.0%} "
                   f"(one-sided bounds at 1 - {1 - spec.confidence:g}/({len(search.goals)} targets x "
                   f"{spec.search.looks} looks), {n} confirmation replications on fresh streams)")
    else:
        table = found["table"] if found["table"] is not None else pd.DataFrame()
        cost, message = math.nan, found["message"]
    evals = _evaluations(search)
    kpi, _, at_most = _frontier_kpi(search)
    screened = evals[evals["stage"] == "screening"] if len(evals) else evals
    front = frontier_table(screened, kpi, at_most, spec.objective) if len(screened) else pd.DataFrame()
    result = OptimizeResult(
        status=found["status"], message=message,
        roster=roster_table(search.vars, x) if x is not None else roster_table([], ()), x=x, cost=cost,
        kpis=table, evaluations=evals, frontier=front, confidence=spec.confidence,
        replications=search.used, computed=search.computed, wall_s=time.perf_counter() - t0, out=Path(out),
        scenario_file=Path(out) / "scenario.yaml" if x is not None else None,
        infeasible_target=found.get("target"), best_value=found.get("best"),
        currency=getattr(getattr(search.base, "costs", None), "currency", ""))
    _write(result, search, scenario_yaml)
    search.log("end", status=result.status, replications=result.replications, computed=result.computed)
    return result


# --------------------------------------------------------------------------- command line


def _cmd_optimize(args) -> int:
    out = Path(args.out or Path("results") / f"optimize-{Path(args.scenario).stem}")
    say = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    try:
        res = optimize(args.scenario, args.targets, out, seed=args.seed, overrides=args.set or None,
                       budget=args.budget, workers=args.workers, backend=args.backend,
                       scheduler=args.scheduler, progress=say)
    except OptimizeError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INFEASIBLE
    if res.status != "optimal":
        print(res.message, file=sys.stderr)
        return EXIT_INFEASIBLE
    unit = f" {res.currency}" if res.kpis["kpi"].iloc[-1].startswith("cost") else ""
    print(f"optimal roster: {res.kpis['kpi'].iloc[-1]} {res.cost:,.0f}{unit}")
    print(res.message)
    for (kind, target), g in res.roster.groupby(["kind", "target"], sort=False):
        print(f"\n{kind} {target}:")
        for row in g.itertuples():
            print(f"  {row.item:<20} {row.value:>4}   ({row.min}-{row.max})")
    print()
    w = max(len(t) for t in res.kpis["target"])
    for row in res.kpis.itertuples():
        if row.target == "objective":
            continue
        print(f"{row.target:<{w}}  {row.mean:>10.4g}  [{row.ci_low:.4g}, {row.ci_high:.4g}]  "
              f"bound {row.one_sided:.4g}  {'holds' if row.holds else 'MISSES'}")
    print(f"\n{len(res.evaluations)} evaluations, {res.replications} replications "
          f"({res.computed} computed now), {res.wall_s:.0f} s")
    print(f"wrote {out}/ (roster.csv, kpis.csv, scenario.yaml, frontier.png, evaluations.csv, optimize.md)")
    return 0


def register_cli(sub) -> None:
    """Add ``optimize`` to the ``crisis-sim`` subcommands."""
    from .argtypes import positive_int, seed
    o = sub.add_parser("optimize", help="the cheapest roster (crews per block, vehicles, beds) that meets "
                                         "targets at a stated confidence")
    o.add_argument("scenario")
    o.add_argument("--targets", required=True, help="targets file: decisions with bounds, targets, confidence")
    o.add_argument("--out", default=None, help="folder for evaluations and outputs; rerun to resume "
                                              "(default results/optimize-<scenario stem>)")
    o.add_argument("--budget", type=positive_int, default=None, metavar="REPLICATIONS",
                   help="most replications the search may use (default: the targets file's search.budget)")
    o.add_argument("--seed", type=seed, default=None, help="screening seed (confirmation uses seed + 1)")
    o.add_argument("--backend", choices=["local", "dask"], default="local")
    o.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT")
    o.add_argument("--workers", type=positive_int, default=None, help="processes (default: all cores)")
    o.add_argument("--quiet", action="store_true", help="no progress lines")
    o.add_argument("--set", action="append", metavar="FIELD=VALUE", default=[],
                   help="override a scenario field (repeatable)")
    o.set_defaults(func=_cmd_optimize)


class _CallableModule(types.ModuleType):
    """``sim.optimize`` is this module and the function at once: ``sim.optimize(...)`` calls
    :func:`optimize`, ``sim.optimize.erlang_c`` is still the module's (a package attribute
    cannot be both a submodule and a function otherwise)."""

    def __call__(self, *args, **kwargs) -> OptimizeResult:
        return optimize(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
