"""Violence-interruption scenario files: schema, loading and cross-reference checks.

A violence scenario is a YAML file with ``kind: violence`` at the top (crisis-response
files have no ``kind``). It is read with the crisis side's loader, so ``extends:``,
``--set`` overrides and one-line :class:`~sim.scenario.ScenarioError` messages work the
same way::

    kind: violence
    name: Richmond — ONS
    horizon_days: 730
    warmup_days: 1460
    groups:                         # who shoots, where, how often without contagion
      central_crews: {area: central, background_per_year: 40, members: 120}
    contagion: {branching_ratio: 0.35}
    staff:
      change_agents: {workers: 4, hours_per_week: {incident_response: 8, caseload: 16}}
    programs:
      responses:
        scene: {staff: change_agents, window_h: 24, effect: 0.16}
      fellowship: {staff: change_agents, caseload: 12, take_up: 0.55, rate_factor: 0.5}

Units follow the field names: ``_days`` are days, ``_min`` minutes, ``_h`` hours,
``_per_year`` per 365 days, ``hours_per_week`` hours. Inside the model every time is in
minutes (the crisis side's clock: minute 0 is Monday 00:00).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, model_validator

from ..distributions import Dist
from ..scenario import (ScenarioError, ScenarioHeader, Strict, Target, apply_overrides, load_raw,
                        validate)
from ..shifts import ShiftEntry, WeeklySchedule

Activity = Literal["incident_response", "caseload", "canvassing", "call_ins", "other"]


class Group(Strict):
    """A crew, clique or network neighbourhood: where its shootings happen and how often.

    Retaliations stay in the group of the shooting that triggered them.
    """

    area: str = Field(description="the area (neighbourhood) the group's shootings happen in")
    background_per_year: NonNegativeFloat = Field(
        description="shootings per year that are not triggered by an earlier shooting")
    members: PositiveInt = Field(50, description="people who may shoot (the fellowship's candidates)")
    risk_cv: NonNegativeFloat = Field(
        1.5, description="coefficient of variation of members' shooting risk (gamma); 0 = all equal")


class Seasonality(Strict):
    """Background rate x (1 + amplitude x cos(2 pi (day - peak_day) / 365)); day 0 = run start."""

    amplitude: float = Field(0.0, ge=0, lt=1)
    peak_day: float = Field(196.0, ge=0, lt=365, description="day of the year with the highest rate")


class KernelPart(Strict):
    weight: float = Field(ge=0, le=1, description="share of retaliations with this delay")
    mean_days: PositiveFloat = Field(description="mean delay (exponential), days")


class Contagion(Strict):
    """Self-excitation: each shooting triggers Poisson(branching_ratio) later shootings."""

    branching_ratio: float = Field(ge=0, lt=1, description="n: mean shootings triggered by one shooting")
    fast: KernelPart = KernelPart(weight=0.3, mean_days=14)
    slow: KernelPart = KernelPart(weight=0.7, mean_days=125)
    fatality_share: float = Field(0.2, ge=0, le=1, description="share of shootings in which the victim dies")

    @model_validator(mode="after")
    def _weights(self):
        total = self.fast.weight + self.slow.weight
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"fast.weight + slow.weight must add up to 1 (they add up to {total:g})")
        return self


class Staff(Strict):
    """A staff pool (interrupters, outreach workers, change agents).

    ``shifts`` say how many are on the street at each minute of the week (default: all,
    24/7). ``hours_per_week`` is the weekly budget per worker for each activity; an
    activity without a budget is not limited by hours.
    """

    workers: PositiveInt
    shifts: list[ShiftEntry] | None = None
    hours_per_week: dict[Activity, NonNegativeFloat] = {}
    cost_per_year: NonNegativeFloat = Field(0.0, description="loaded cost of one worker per year")

    def schedule(self) -> WeeklySchedule:
        return WeeklySchedule.from_entries(self.shifts) if self.shifts else WeeklySchedule.constant(self.workers)


class Response(Strict):
    """Responding to a shooting (at the scene, or at the hospital for surviving victims).

    A worker on shift is requested when the program learns of the shooting. If one arrives
    within ``window_h`` of the shooting and before its first retaliation, each of the
    shooting's pending retaliations is cancelled with probability ``effect`` (e).
    """

    staff: str
    victims: Literal["all", "nonfatal"] = Field("all", description="nonfatal: hospital response")
    notified: float = Field(1.0, ge=0, le=1, description="share of shootings the program hears of")
    notify_delay_min: Dist = Dist(fixed=0)
    travel_min: Dist = Dist(fixed=0)
    busy_min: Dist = Field(Dist(fixed=120), description="time with the people involved, after arrival")
    window_h: PositiveFloat = Field(24.0, description="an arrival later than this does not count as reached")
    effect: float = Field(ge=0, le=1, description="e: chance each pending retaliation is cancelled")


class Fellowship(Strict):
    """ONS Peacemaker Fellowship: caseloads of the highest-risk people.

    Slots = workers x caseload. The highest-risk people are offered a place in turn; each
    accepts with probability ``take_up``. A fellow's shootings happen at ``rate_factor``
    times the usual rate for ``duration_days``; then the slot goes to the next person.
    """

    staff: str
    caseload: PositiveInt = Field(12, description="fellows per worker (ONS: 10-15)")
    take_up: float = Field(ge=0, le=1)
    duration_days: PositiveFloat = 548.0
    rate_factor: float = Field(ge=0, le=1)


class Canvassing(Strict):
    """Street outreach and conflict mediation: lowers background rates in covered areas.

    Each week's canvassing hours (the staff's canvassing budget, minus what shooting
    responses borrowed from it) are split evenly over ``areas``; an area's coverage is
    hours / ``full_coverage_hours_per_week`` (at most 1). A background shooting is prevented
    with probability ``effect`` x the mean coverage of the last ``cooling_days``.
    """

    staff: str
    areas: list[str] | None = Field(None, description="covered areas (default: all)")
    full_coverage_hours_per_week: PositiveFloat
    effect: float = Field(ge=0, le=1)
    cooling_days: PositiveFloat = 60.0


class Enforcement(Strict):
    """What happens to a called-in group that shoots again while its call-in is in force."""

    rate_factor: float = Field(ge=0, le=1, description="rate multiplier while enforcement lasts")
    duration_days: PositiveFloat = 365.0


class FocusedDeterrence(Strict):
    """Call-ins: every ``interval_days`` the groups with most shootings in the last
    ``audit_days`` are called in; their rate is multiplied by ``rate_factor`` for
    ``effect_days``. A called-in group that shoots again gets the enforcement branch."""

    staff: str | None = Field(None, description="working-group staff (for cost)")
    first_call_in_days: NonNegativeFloat = Field(0.0, description="days after the program starts")
    interval_days: PositiveFloat = 90.0
    groups_per_call_in: PositiveInt = 2
    audit_days: PositiveFloat = 180.0
    rate_factor: float = Field(ge=0, le=1)
    effect_days: PositiveFloat = 180.0
    enforcement: Enforcement | None = None


class Programs(Strict):
    responses: dict[str, Response] = {}
    fellowship: Fellowship | None = None
    canvassing: Canvassing | None = None
    focused_deterrence: FocusedDeterrence | None = None

    def staff_used(self) -> list[str]:
        names = [r.staff for r in self.responses.values()]
        names += [p.staff for p in (self.fellowship, self.canvassing, self.focused_deterrence)
                  if p is not None and p.staff is not None]
        return sorted(set(names))


class SocialCost(Strict):
    """Cost to society of one shooting (NICJR figures, as used in Stockton)."""

    per_injury: NonNegativeFloat = 962_000.0
    per_homicide: NonNegativeFloat = 2_500_000.0


class ViolenceTarget(Target):
    """A published figure: one value, or a range written ``published: [low, high]``.

    A range is stored as its midpoint with the half-width added to ``tolerance``, so the
    band ``published ± tolerance`` is [low - tolerance, high + tolerance] either way and
    the crisis side's calibration check can read violence targets unchanged. A target that
    is not ``required`` must say why in ``reason``.
    """

    tolerance: NonNegativeFloat = 0.0

    @model_validator(mode="before")
    @classmethod
    def _range(cls, v):
        if isinstance(v, dict) and isinstance(v.get("published"), (list, tuple)):
            rng = v["published"]
            if len(rng) != 2 or not all(isinstance(x, (int, float)) for x in rng):
                raise ValueError("published must be a number or a range [low, high]")
            lo, hi = float(rng[0]), float(rng[1])
            if lo > hi:
                raise ValueError(f"published range [{lo:g}, {hi:g}] must be [low, high]")
            tol = v.get("tolerance", 0.0)
            if not isinstance(tol, (int, float)):
                return v          # pydantic reports the bad tolerance
            v = {**v, "published": (lo + hi) / 2, "tolerance": tol + (hi - lo) / 2}
        return v

    @model_validator(mode="after")
    def _reason(self):
        if not self.required and not self.reason:
            raise ValueError("a target with required: false needs a reason")
        return self


class ViolenceScenario(ScenarioHeader):
    """Shootings as a self-exciting process and the programs that try to prevent them.

    Programs start when the warm-up ends; KPIs count shootings after the warm-up.
    """

    kind: Literal["violence"]
    seed: int = 20100601
    warmup_days: NonNegativeFloat = Field(
        1460.0, description="days simulated before measuring, so retaliation chains reach steady state")
    groups: dict[str, Group] = Field(min_length=1)
    seasonality: Seasonality = Seasonality()
    contagion: Contagion
    staff: dict[str, Staff] = {}
    programs: Programs | None = Field(None, description="omitted or null: the no-program counterfactual")
    other_cost_per_year: NonNegativeFloat = Field(0.0, description="program cost besides staff")
    social_cost: SocialCost = SocialCost()
    targets: list[ViolenceTarget] = []

    @property
    def start_min(self) -> float:
        """When programs start and measuring begins (minutes)."""
        return self.warmup_days * 1440.0

    @property
    def end_min(self) -> float:
        return (self.warmup_days + self.horizon_days) * 1440.0

    def areas(self) -> list[str]:
        return sorted({g.area for g in self.groups.values()})

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")


def check_references(s: ViolenceScenario) -> list[tuple[str, str]]:
    """Cross-field problems as (field path, message) pairs."""
    errs: list[tuple[str, str]] = []
    staff = set(s.staff)

    def need(value, allowed, where, what):
        if value not in allowed:
            errs.append((where, f"unknown {what} '{value}'; allowed: {', '.join(sorted(allowed)) or '(none defined)'}"))

    for name, st in s.staff.items():
        if st.shifts and st.schedule().max_teams > st.workers:
            errs.append((f"staff.{name}.shifts", f"up to {st.schedule().max_teams} on shift but only "
                                                 f"{st.workers} workers"))
    p = s.programs
    if p is None:
        return errs
    for rname, r in p.responses.items():
        need(r.staff, staff, f"programs.responses.{rname}.staff", "staff pool")
    if p.fellowship:
        need(p.fellowship.staff, staff, "programs.fellowship.staff", "staff pool")
    if p.focused_deterrence and p.focused_deterrence.staff is not None:
        need(p.focused_deterrence.staff, staff, "programs.focused_deterrence.staff", "staff pool")
    if p.canvassing:
        c = p.canvassing
        need(c.staff, staff, "programs.canvassing.staff", "staff pool")
        for i, a in enumerate(c.areas or []):
            need(a, set(s.areas()), f"programs.canvassing.areas.{i}", "area")
        if c.staff in s.staff and not s.staff[c.staff].hours_per_week.get("canvassing"):
            errs.append(("programs.canvassing.staff", f"staff pool '{c.staff}' has no canvassing hours "
                                                      "(set hours_per_week.canvassing)"))
    return errs


def load_violence_scenario(path: str | Path, overrides: dict[str, Any] | list[str] | None = None
                           ) -> ViolenceScenario:
    """Load, merge ``extends:``, apply ``--set`` overrides and validate a violence scenario.

    Raises :class:`~sim.scenario.ScenarioError` (one line: file, field, line, message).
    """
    data, positions = load_raw(path)
    data = apply_overrides(data, overrides, str(path))
    if data.get("kind") != "violence":
        line = positions.get(("kind",), (None, None))[1]
        got = f" (got {data['kind']!r})" if "kind" in data else ""
        raise ScenarioError(str(path), "kind", "a violence scenario starts with kind: violence" + got, line)
    return validate(data, str(path), positions, model=ViolenceScenario, checks=check_references)


def with_values(s: ViolenceScenario, values: dict[str, Any]) -> ViolenceScenario:
    """A copy of a scenario with ``a.b.c`` fields changed, validated again (for sweeps)."""
    data = apply_overrides(s.to_dict(), values, s.name)
    return validate(data, s.name, None, model=ViolenceScenario, checks=check_references)
