"""Checks that close every door a run would open: ranges, absurd sizes, cycles, staffing.

:func:`check_scenario` runs inside :func:`sim.scenario.validate` on a scenario of the right
shape and returns ``(field path, message)`` per problem; every message says what is
allowed. Three kinds of rule:

* **Ranges** of fields whose type alone lets a run crash or lie (a priority beyond what the
  call log stores, a negative seed, a drive at 1e-300 km/h, a coefficient of variation of 1e9).
* **Sizes** (horizon, expected calls, population, teams, staff, vehicles, beds) beyond what a
  planner's run needs. They are refused with the expected size, unless the run is started
  with ``--allow-large`` (or ``CRISIS_SIM_ALLOW_LARGE=1`` in the environment) by someone who
  means it; even then :data:`CEILING` holds (beyond it a run overflows, whatever the machine).
* **Structure**: a shift on no day (``days: []``), a path on which no unit is ever on duty,
  a desk or backup pool never staffed, a consult whose second pool is on the path that
  consults, and cycles of ``divert_to`` (between facilities that fill) or ``step_down``.
"""
from __future__ import annotations

import math
import os
from typing import Any

ALLOW_LARGE_ENV = "CRISIS_SIM_ALLOW_LARGE"

#: Sizes a run may have without --allow-large: (limit, what it counts).
SIZE_LIMITS = {
    "days": 3660,             # warm-up + horizon + drain, days (ten years)
    "calls": 2_000_000,       # expected calls per replication
    "population": 20_000_000,
    "teams": 2_000,           # most units of one pool (or staff of one desk) on duty at once
    "vehicles": 2_000,
    "beds": 100_000,
}
#: Sizes refused even with --allow-large.
CEILING = {"days": 1_000_000, "calls": 1e9, "population": 1e9, "teams": 1_000_000,
           "vehicles": 1_000_000, "beds": 1e8}

MAX_PRIORITY = 1000           # the call log stores priority as a 16-bit integer
MAX_SEED = 2 ** 63 - 1
MIN_SPEED_KMH = 0.1
MAX_CV = 10.0                 # day-to-day, travel and propensity variation
MIN_GAMMA_CV = 1e-3           # a gamma factor's cv: 0 (none) or at least this (its shape is 1 / cv^2)
MAX_OUTREACH_PER_HOUR = 60.0
MAX_KM = 100_000.0            # a coordinate (km) of a post


def allow_large() -> bool:
    """Whether absurd sizes were asked for explicitly (``--allow-large``)."""
    return os.environ.get(ALLOW_LARGE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _size(errs: list, where: str, kind: str, value: float, what: str, extra: str = "") -> None:
    limit = CEILING[kind] if allow_large() else SIZE_LIMITS[kind]
    if value > limit:
        hint = ("" if allow_large() else
                "; pass --allow-large (or set CRISIS_SIM_ALLOW_LARGE=1) if you mean it")
        errs.append((where, f"{what} is {value:,.0f}{extra}, above the limit of {limit:,.0f}{hint}"))


def _range(errs: list, where: str, value: float | None, low: float | None, high: float | None,
           what: str = "value") -> None:
    if value is None:
        return
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "" if low is None else f"{low:g}"
        hi = "" if high is None else f"{high:g}"
        allowed = f"between {lo} and {hi}" if lo and hi else (f"at least {lo}" if lo else f"at most {hi}")
        errs.append((where, f"{what} must be {allowed} (got {value:g})"))


def _gamma_cv(errs: list, where: str, cv: float) -> None:
    if cv != 0:
        _range(errs, where, cv, MIN_GAMMA_CV, MAX_CV, "coefficient of variation (or 0)")


def check_header(s: Any) -> list[tuple[str, str]]:
    """Seed and length of any scenario kind (crisis response or violence)."""
    errs: list[tuple[str, str]] = []
    _range(errs, "seed", s.seed, 0, MAX_SEED, "seed")
    days = s.warmup_days + s.horizon_days + getattr(s, "drain_days", 0.0)
    _size(errs, "horizon_days", "days", days, "the simulated length (warm-up + horizon + drain, days)")
    return errs


def _schedules(s: Any):
    """(field path, name, pool or desk, its schedule) of every pool and desk."""
    for name, p in s.pools.items():
        yield f"pools.{name}", name, p
    for name, d in s.triage.desks.items():
        yield f"triage.desks.{name}", name, d


def _max_on_duty(x: Any) -> int:
    return x.schedule().max_teams


def _tier_pools(path: Any) -> list[list[str]]:
    """Pools of each tier of a response path (old ``pools:`` form: one pool per tier)."""
    tiers = getattr(path, "tier_pools", None)
    return tiers() if tiers else [[p] for p in path.pools]


def _cycle(start: str, step) -> list[str] | None:
    """The cycle reached from ``start`` following ``step(name) -> name | None``, or None."""
    seen = [start]
    nxt = step(start)
    while nxt is not None:
        if nxt in seen:
            return seen[seen.index(nxt):] + [nxt]
        seen.append(nxt)
        nxt = step(nxt)
    return None


def check_scenario(s: Any) -> list[tuple[str, str]]:
    """Every range, size and structure problem of a validated scenario (see module docstring)."""
    errs = check_header(s)
    if not hasattr(s, "pools"):           # another kind of scenario (violence): header only
        return errs

    # --- ranges
    for t, ct in s.call_types.items():
        _range(errs, f"call_types.{t}.priority", ct.priority, 1, MAX_PRIORITY, "priority")
    if s.backup:
        _range(errs, "backup.priority", s.backup.priority, 1, MAX_PRIORITY, "priority")
    _range(errs, "travel.speed_kmh", s.travel.speed_kmh, MIN_SPEED_KMH, None, "speed (km/h)")
    _range(errs, "travel.variation_cv", s.travel.variation_cv, 0, MAX_CV, "coefficient of variation")
    for c, ch in s.channels.items():
        _gamma_cv(errs, f"channels.{c}.daily_cv", ch.daily_cv)
    if s.persons:
        _gamma_cv(errs, "persons.propensity_cv", s.persons.propensity_cv)
    for name, p in s.pools.items():
        if p.outreach:
            _range(errs, f"pools.{name}.outreach.per_idle_team_hour", p.outreach.per_idle_team_hour,
                   None, MAX_OUTREACH_PER_HOUR, "contacts per idle team-hour")
        if p.follow_ups:
            _range(errs, f"pools.{name}.follow_ups.priority", p.follow_ups.priority, 1, MAX_PRIORITY, "priority")

    for where, _name, x in _schedules(s):          # ShiftEntry (sim/shifts.py) lets inf through
        for i, e in enumerate(x.shifts or []):
            for j, post in enumerate([getattr(e, "post", None)] + list(getattr(e, "posts", None) or [])):
                if isinstance(post, tuple) and not all(math.isfinite(v) and abs(v) <= MAX_KM for v in post):
                    errs.append((f"{where}.shifts.{i}." + ("post" if j == 0 else f"posts.{j - 1}"),
                                 f"a post is [x_km, y_km] with finite coordinates within {MAX_KM:g} km "
                                 f"(got {list(post)})"))

    # --- sizes
    weeks = (s.warmup_days + s.horizon_days) / 7.0
    calls = sum(ch.volume.per_week_value() for ch in s.channels.values()) * weeks
    _size(errs, "channels", "calls", calls, "the expected number of calls per replication",
          f" ({weeks * 7:g} days of arrivals)")
    if s.persons:
        _size(errs, "persons.population", "population", s.persons.population, "the population")
    for where, _name, x in _schedules(s):
        _size(errs, where, "teams", _max_on_duty(x), "the most on duty at once")
    for v, n in s.vehicles.items():
        _size(errs, f"vehicles.{v}", "vehicles", n, "the number of vehicles")
    for f, fac in s.facilities.items():
        if fac.beds is not None:
            _size(errs, f"facilities.{f}.beds", "beds", fac.beds, "the number of beds")

    # --- structure: shifts on no day
    for where, _name, x in _schedules(s):
        for i, e in enumerate(x.shifts or []):
            if isinstance(e.days, list) and not e.days:
                errs.append((f"{where}.shifts.{i}.days", "no day given; write daily, weekdays, weekends, "
                                                        "a day (mon) or a list of days"))
    if not any(m.endswith(".days") for m, _ in errs):   # else staffing is judged on a half-read schedule
        errs += _staffing(s)
    errs += _cycles(s)
    return errs


def _staffing(s: Any) -> list[tuple[str, str]]:
    """Paths, desks and backup that no unit is ever on duty for."""
    errs: list[tuple[str, str]] = []
    staffed = {name: _max_on_duty(p) > 0 for name, p in s.pools.items()}
    for pname, path in s.triage.paths.items():
        pools = [q for tier in _tier_pools(path) for q in tier if q in s.pools]
        if pools and not any(staffed[q] for q in pools):
            errs.append((f"triage.paths.{pname}", f"no unit of {', '.join(dict.fromkeys(pools))} is on duty "
                                                  "at any time: the path's calls could never be answered"))
        for where, desk in ((f"triage.paths.{pname}.desk", path.desk),
                            (f"triage.paths.{pname}.consult.desk", path.consult and path.consult.desk)):
            d = s.triage.desks.get(desk) if desk else None
            if d is not None and _max_on_duty(d) == 0:
                errs.append((where, f"desk '{desk}' has no staff on duty at any time"))
        if path.consult and path.consult.second_pool in pools:
            errs.append((f"triage.paths.{pname}.consult.second_pool",
                         f"'{path.consult.second_pool}' answers this path itself; the desk must send "
                         "another pool"))
    if s.backup and staffed.get(s.backup.pool) is False:
        errs.append(("backup.pool", f"pool '{s.backup.pool}' has no unit on duty at any time: backup "
                                    "requests could never be answered"))
    return errs


def _cycles(s: Any) -> list[tuple[str, str]]:
    """Cycles of divert_to (between facilities that fill and divert) and of step_down."""
    errs: list[tuple[str, str]] = []
    fac = s.facilities

    def divert(name: str) -> str | None:
        f = fac.get(name)
        return f.divert_to if f is not None and f.beds is not None and f.when_full == "divert" else None

    def step_down(name: str) -> str | None:
        f = fac.get(name)
        return f.step_down.to if f is not None and f.step_down is not None else None

    for rule, step in (("divert_to", divert), ("step_down.to", step_down)):
        reported: set[frozenset] = set()
        for name in fac:
            cyc = _cycle(name, step)
            if cyc and frozenset(cyc) not in reported:
                reported.add(frozenset(cyc))
                errs.append((f"facilities.{cyc[0]}.{rule}",
                             f"a cycle {' -> '.join(cyc)}: a person could go round it for ever; "
                             "end the chain at a facility that " +
                             ("never fills (no beds) or waits (when_full: wait)" if rule == "divert_to"
                              else "does not step down")))
    return errs
