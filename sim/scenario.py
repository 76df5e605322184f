"""Scenario files: schema, loading, ``extends:``, ``--set`` overrides and errors.

A scenario is parsed in three steps (as Ciw does): read YAML safely while remembering the
line of every key, merge ``extends:`` parents and ``--set`` overrides, then validate into
a frozen pydantic model and check cross-references (a path naming a pool that does not
exist). Anything wrong stops here as a :class:`ScenarioError` whose text is one line::

    scenarios/x.yaml: pools.cahoots.shifts.0.end (line 14): time '25:00' must be HH:MM ...

Inside the package, code trusts a validated :class:`Scenario`. Units: minutes unless the
field name says otherwise (``_days``, ``_km``, ``_kmh``, ``per_year``...).
"""
from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import (BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveFloat,
                      PositiveInt, ValidationError, field_validator, model_validator)

from .distributions import Dist
from .shifts import Crew, Post, ShiftEntry, WeeklySchedule, crews_constant, crews_from_entries

# --------------------------------------------------------------------------- errors


class ScenarioError(ValueError):
    """A scenario that cannot be used; ``str()`` is the one line shown to the planner.

    ``problems`` holds every problem found (this one first), each a one-line ScenarioError;
    ``str()`` names the first and counts the others, :meth:`lines` gives one line each.
    """

    def __init__(self, file: str | None, field: str | None, message: str, line: int | None = None,
                 problems: list["ScenarioError"] | None = None):
        self.file, self.field, self.message, self.line = file, field, message, line
        where = file or "<scenario>"
        if field:
            where += f": {field}"
        if line:
            where += f" (line {line})"
        self.problems = list(problems) if problems else [self]
        more = len(self.problems) - 1
        self.first_line = printable(f"{where}: {message}")
        super().__init__(self.first_line + (f" (and {more} more problem{'s' if more > 1 else ''})"
                                            if more else ""))

    @classmethod
    def of(cls, problems: list["ScenarioError"]) -> "ScenarioError":
        """One error carrying several problems (the first is the headline)."""
        p = problems[0]
        return cls(p.file, p.field, p.message, p.line, problems=problems)

    def lines(self) -> list[str]:
        """One line per problem."""
        return [p.first_line for p in self.problems]


def printable(text: str) -> str:
    """Text safe to show in a terminal on one line: newlines and tabs become spaces, other
    control characters (escape sequences) ``\\xNN``."""
    return "".join(c if c.isprintable() else (" " if c in "\n\r\t" else f"\\x{ord(c):02x}") for c in text)


# --------------------------------------------------------------------------- schema


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # every number finite


def _shares_sum_to_one(shares: dict[str, float], what: str) -> None:
    total = sum(shares.values())
    if not shares or not math.isclose(total, 1.0, abs_tol=1e-6):
        raise ValueError(f"{what} must add up to 1 (they add up to {total:g})")


class Role(Strict):
    """A team member's role: hourly cost (currency units per hour) and whether sworn."""

    hourly_cost: NonNegativeFloat = 0.0
    sworn: bool = Field(False, description="a sworn officer: a team with one is a police unit on scene")


class CallType(Strict):
    priority: PositiveInt = Field(description="1 is most urgent; waiting calls are served by priority")
    label: str | None = None
    eligible: bool | None = Field(
        None, description="eligible for a specialist (non-patrol) response; set it in a city base so a "
                          "program and its police-only counterfactual count the same calls. Omitted: "
                          "eligible when the type's path offers more than one pool or a non-police pool")


class Zone(Strict):
    share: NonNegativeFloat = Field(description="share of calls arising in this zone")
    rect_km: tuple[float, float, float, float] | None = Field(
        None, description="x0, y0, x1, y1 in km; call locations are uniform inside")

    @field_validator("rect_km")
    @classmethod
    def _rect(cls, v):
        if v is not None and (v[2] < v[0] or v[3] < v[1]):
            raise ValueError("rect_km is x0, y0, x1, y1 with x1 >= x0 and y1 >= y0")
        return v


class Travel(Strict):
    """How long a team takes to reach a location."""

    model: Literal["none", "manhattan", "euclidean", "matrix"] = "none"
    speed_kmh: PositiveFloat = 40.0
    matrix_min: dict[str, dict[str, NonNegativeFloat]] | None = Field(
        None, description="zone -> zone -> minutes, used with model: matrix")
    turnout_min: Dist = Dist(fixed=0)
    variation_cv: NonNegativeFloat = Field(0.0, description="lognormal multiplicative noise on drive time")

    @model_validator(mode="after")
    def _matrix(self):
        if self.model == "matrix" and not self.matrix_min:
            raise ValueError("model: matrix needs matrix_min: {zone: {zone: minutes}}")
        return self


class Volume(Strict):
    """Expected number of calls, in exactly one unit."""

    per_year: NonNegativeFloat | None = None
    per_month: NonNegativeFloat | None = None
    per_week: NonNegativeFloat | None = None
    per_day: NonNegativeFloat | None = None
    per_hour: NonNegativeFloat | None = None

    @model_validator(mode="after")
    def _one(self):
        given = [k for k, v in self.__dict__.items() if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of per_year, per_month, per_week, per_day, per_hour")
        return self

    def per_week_value(self) -> float:
        f = {"per_year": 7 / 365.0, "per_month": 12 * 7 / 365.0, "per_week": 1.0,
             "per_day": 7.0, "per_hour": 168.0}
        k, v = next((k, v) for k, v in self.__dict__.items() if v is not None)
        return v * f[k]


class Profile(Strict):
    """Weekly shape of arrivals: 168 hourly weights, or a daily curve x day-of-week factors."""

    hourly: list[NonNegativeFloat] | None = Field(None, min_length=168, max_length=168)
    daily: list[NonNegativeFloat] | None = Field(None, min_length=24, max_length=24)
    day_of_week: list[NonNegativeFloat] | None = Field(None, min_length=7, max_length=7)

    @model_validator(mode="after")
    def _form(self):
        if self.hourly is not None and (self.daily is not None or self.day_of_week is not None):
            raise ValueError("use hourly: [168 weights] or daily/day_of_week, not both")
        weights = self.weights()
        if sum(weights) <= 0:
            raise ValueError("profile weights are all zero")
        return self

    def weights(self) -> list[float]:
        """168 non-negative weights, Monday 00:00 first."""
        if self.hourly is not None:
            return list(self.hourly)
        daily = self.daily or [1.0] * 24
        dow = self.day_of_week or [1.0] * 7
        return [dow[d] * daily[h] for d in range(7) for h in range(24)]


class Persons(Strict):
    """People behind the calls: a population with uneven call propensity (repeat callers)."""

    population: PositiveInt
    propensity_cv: NonNegativeFloat = Field(
        1.5, description="coefficient of variation of per-person call rates (gamma); 0 = all equal")


class Channel(Strict):
    """A way calls come in (911, non-emergency line, crisis line, referrals...)."""

    volume: Volume
    profile: Profile = Profile()
    mix: dict[str, NonNegativeFloat] = Field(description="call type -> share of this channel's calls")
    zones: dict[str, NonNegativeFloat] | None = Field(None, description="zone shares, if not the city's")
    identified: float = Field(0.0, ge=0, le=1, description="share of calls that carry a person id "
                              "(drawn from the scenario's persons population)")
    daily_cv: NonNegativeFloat = Field(
        0.0, description="day-to-day variation of volume (gamma multiplier): over-dispersed counts")

    @field_validator("mix", "zones")
    @classmethod
    def _sum(cls, v, info):
        if v is not None:
            _shares_sum_to_one(v, f"{info.field_name} shares")
        return v


class Desk(Strict):
    """A staffed triage desk (the LAPD Mental Evaluation Unit desk)."""

    shifts: list[ShiftEntry] | None = None
    staff: PositiveInt | None = Field(None, description="staff on duty 24/7 (instead of shifts)")
    roles: list[str] = []
    service_min: Dist

    @model_validator(mode="after")
    def _staffing(self):
        if (self.shifts is None) == (self.staff is None):
            raise ValueError("give either staff: N (24/7) or shifts: [...]")
        return self

    def schedule(self) -> WeeklySchedule:
        return WeeklySchedule.constant(self.staff) if self.staff else WeeklySchedule.from_entries(self.shifts)

    def crews(self) -> list[Crew]:
        """The desk's seats as crews (``staff: N`` are on duty around the clock)."""
        return crews_constant(self.staff) if self.staff else crews_from_entries(self.shifts)


class Misroute(Strict):
    """Screening error: a share of this path's calls is sent down another path."""

    to: str = Field(description="the path the misrouted calls take")
    probability: float | dict[str, float] = Field(
        description="one share for all call types, or per call type (others 0)")

    @field_validator("probability")
    @classmethod
    def _prob(cls, v):
        vals = v.values() if isinstance(v, dict) else [v]
        if any(not (0 <= p <= 1) for p in vals):
            raise ValueError("probabilities must be between 0 and 1")
        return v

    def p(self, call_type: str) -> float:
        if isinstance(self.probability, dict):
            return self.probability.get(call_type, 0.0)
        return self.probability


class Consult(Strict):
    """Staged response (LAPD): the first unit consults a desk from the scene."""

    desk: str
    second_pool: str = Field(description="pool the desk may send (a SMART co-responder team)")
    p_second: float = Field(ge=0, le=1, description="share of consults where the desk sends the second pool")
    max_wait_min: NonNegativeFloat | None = Field(None, description="wait for the second pool, then the first unit transports")
    first_unit: Literal["waits", "hands_over"] = Field(
        "hands_over", description="the first unit stays until the second finishes, or leaves when it arrives")
    otherwise: Literal["transport", "resolved"] = "transport"


class Tier(Strict):
    """One step of a response path: the units of all its pools compete on travel time, and a
    call that finds none free waits in one queue for the whole tier."""

    pools: list[str] = Field(min_length=1)
    max_wait_min: NonNegativeFloat | None = Field(
        None, description="wait for a unit of this tier, then move to the next tier; 0 = go on at once; "
                          "omitted = wait without limit")


class ResponsePath(Strict):
    """A response path: which calls take it and which pools answer, in preference order.

    Write either ``pools: [a, b]`` (one pool per tier, waits in ``max_wait_min``) or
    ``tiers: [{pools: [a, b], max_wait_min: 20}, {pools: [police]}]``."""

    call_types: list[str]
    pools: list[str] | None = Field(None, min_length=1)
    tiers: list[Tier] | None = Field(None, min_length=1)
    max_wait_min: NonNegativeFloat | None | list[NonNegativeFloat | None] = Field(
        None, description="wait per pool before falling back to the next (one value or one per pool); "
                          "0 = loss system, omitted = wait without limit")
    misroute: Misroute | None = None
    zones: list[str] | None = Field(
        None, description="only calls from these zones take this path (a pilot area); omitted: every zone")
    desk: str | None = Field(None, description="a triage desk every call of this path passes before dispatch")
    consult: Consult | None = None

    @model_validator(mode="after")
    def _waits(self):
        if (self.pools is None) == (self.tiers is None):
            raise ValueError("give either pools: [...] (one pool per tier) or tiers: [{pools: [...]}, ...]")
        if self.tiers is not None and self.max_wait_min is not None:
            raise ValueError("with tiers:, give max_wait_min inside each tier")
        if isinstance(self.max_wait_min, list) and len(self.max_wait_min) != len(self.pools):
            raise ValueError(f"max_wait_min has {len(self.max_wait_min)} values for {len(self.pools)} pools")
        return self

    def waits(self) -> list[float | None]:
        """Max wait (minutes) per tier; None = unlimited. The last pool defaults to unlimited."""
        if self.tiers is not None:
            return [t.max_wait_min for t in self.tiers]
        if isinstance(self.max_wait_min, list):
            return list(self.max_wait_min)
        return [self.max_wait_min] * (len(self.pools) - 1) + [
            self.max_wait_min if len(self.pools) == 1 else None]

    def tier_pools(self) -> list[list[str]]:
        """Pools of each tier, in preference order."""
        if self.tiers is not None:
            return [list(t.pools) for t in self.tiers]
        return [[p] for p in self.pools]

    def all_pools(self) -> list[str]:
        """Every pool of the path, in preference order."""
        return [p for tier in self.tier_pools() for p in tier]


class Triage(Strict):
    processing_min: Dist = Field(Dist(fixed=0), description="call-processing delay before dispatch")
    desks: dict[str, Desk] = {}
    paths: dict[str, ResponsePath] = Field(min_length=1)


class Outcomes(Strict):
    """How a contact ends; shares add up to 1."""

    resolved: float = Field(1.0, ge=0, le=1)
    backup: float = Field(0.0, ge=0, le=1, description="police backup requested")
    transport: float = Field(0.0, ge=0, le=1)
    follow_up: float = Field(0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _sum(self):
        _shares_sum_to_one(dict(self), "outcome shares (resolved, backup, transport, follow_up)")
        return self


class StepDown(Strict):
    """After a stay here, a share moves on to a longer-stay facility (observation -> short stay)."""

    to: str
    probability: float = Field(ge=0, le=1)


class Facility(Strict):
    """A place a team can bring someone: crisis center, ED, detox, shelter, jail.

    ``beds`` omitted = never full. Stays are minutes; ``max`` on the distribution caps them
    (a 30-day short-stay limit is ``max: 43200``).
    """

    zone: str | None = Field(None, description="where it is (its zone centre); default the first zone")
    beds: PositiveInt | None = None
    length_of_stay_min: Dist = Dist(fixed=0)
    handover_min: Dist = Field(Dist(fixed=0), description="team time to hand over at the door")
    when_full: Literal["divert", "wait"] = Field(
        "divert", description="divert: go on to divert_to; wait: the team waits at the door for a bed")
    divert_to: str | None = None
    step_down: StepDown | None = None

    @model_validator(mode="after")
    def _full(self):
        if self.beds is not None and self.when_full == "divert" and self.divert_to is None:
            raise ValueError("when_full: divert needs divert_to: FACILITY (or when_full: wait)")
        return self


class Transport(Strict):
    """Where a pool's transports go and whether the person must consent."""

    destinations: dict[str, NonNegativeFloat] = Field(description="facility -> share of transports")
    consent: float = Field(1.0, ge=0, le=1, description="share who agree to go (civilian teams need consent)")

    @field_validator("destinations")
    @classmethod
    def _sum(cls, v):
        _shares_sum_to_one(v, "destination shares")
        return v


class FollowUps(Strict):
    """Follow-up visits after a contact, done when no live call needs the team (DeKalb)."""

    share: float = Field(1.0, ge=0, le=1, description="share of follow_up outcomes that generate a visit")
    delay_min: Dist = Field(description="from the contact to when the visit becomes due")
    expires_after_min: PositiveFloat = Field(description="a visit not started within this is missed")
    on_scene_min: Dist
    priority: PositiveInt = Field(99, description="ranks below live calls (larger = later)")
    by: str | None = Field(None, description="pool that makes the visits (default: the pool of the contact)")


class Escalation(Strict):
    """Callbacks by a remote pool: a share is urgent enough to go to the scene (MH First)."""

    share: float = Field(ge=0, le=1)
    on_scene_min: Dist
    advocacy_share: float = Field(0.0, ge=0, le=1, description="share of scene visits where a volunteer "
                                  "follows the person to hospital and advocates for them")
    advocacy_min: Dist = Dist(fixed=0)


class Outreach(Strict):
    """Contacts a pool makes on its own initiative while idle on shift (Portland Street Medicine)."""

    per_idle_team_hour: PositiveFloat = Field(description="contacts started per hour a team is idle on shift")
    call_type: str = Field(description="how the contacts are logged")
    on_scene_min: Dist
    zones: dict[str, NonNegativeFloat] | None = Field(None, description="where (default: the city's shares)")


class CaseManagement(Strict):
    """LAPD CAMP: frequent contacts are enrolled and then call less, while the caseload has room."""

    min_contacts: PositiveInt = Field(description="contacts within window_days that trigger enrolment")
    window_days: PositiveFloat
    caseload: PositiveInt = Field(description="people case-managed at once")
    duration_days: PositiveFloat
    call_factor: float = Field(ge=0, le=1, description="enrolled people's call propensity is multiplied by this")
    pools: list[str] | Literal["all"] = Field("all", description="whose contacts count")


class Preemption(Strict):
    """A live call at or above a priority interrupts a unit of this pool on a follow-up or
    on outreach. The interrupted follow-up goes back to the queue (it resumes when a unit is
    free, within its expiry); an interrupted outreach contact ends there. Both are logged
    (``preempted`` in the assignments log)."""

    priority: PositiveInt = Field(1, description="calls of this priority or more urgent (smaller number) pre-empt")


class ShiftEndCutoff(Strict):
    """No new call less urgent than ``except_priority`` within ``minutes`` of a crew's shift end."""

    minutes: PositiveFloat
    except_priority: PositiveInt = Field(1, description="calls this urgent or more are still taken")


class Pool(Strict):
    """A pool of responder teams (crews: see sim/shifts.py for how shift entries become crews)."""

    roles: list[str] = Field(min_length=1)
    takes: list[str] | Literal["all"] = "all"
    teams: PositiveInt | None = Field(None, description="teams on duty 24/7 (instead of shifts)")
    shifts: list[ShiftEntry] | None = None
    vehicles: str | None = Field(None, description="shared vehicle pool; a team without a vehicle can't leave")
    base_zone: str | None = Field(None, description="default post of the pool's units (a zone's centre)")
    posts: list[Post] | None = Field(None, description="with teams: N, one post per unit: a zone or [x_km, y_km]")
    preemption: Preemption | None = None
    shift_end_cutoff: ShiftEndCutoff | None = None
    after_call: Literal["stay", "return_to_base"] = Field(
        "stay", description="stay: free at the scene; return_to_base: busy until back at base")
    on_scene_min: dict[str, Dist] = Field(description="call type -> time on scene; 'default' for the rest")
    outcomes: dict[str, Outcomes] = {"default": Outcomes()}
    backup_on_scene_min: Dist | None = Field(None, description="time on scene when this pool answers a backup request")
    remote: bool = Field(False, description="works by phone (callbacks): no travel")
    transport: Transport | None = None
    follow_ups: FollowUps | None = None
    escalation: Escalation | None = None
    outreach: Outreach | None = None

    @model_validator(mode="after")
    def _staffing(self):
        if (self.shifts is None) == (self.teams is None):
            raise ValueError("give either teams: N (24/7) or shifts: [...]")
        if "default" not in self.on_scene_min:
            raise ValueError("on_scene_min needs a 'default' entry")
        if "default" not in self.outcomes:
            raise ValueError("outcomes needs a 'default' entry")
        if self.posts is not None and (self.teams is None or len(self.posts) != self.teams):
            raise ValueError("posts: needs teams: N and one post per team (for shifts, put post/posts on each entry)")
        return self

    def schedule(self) -> WeeklySchedule:
        return WeeklySchedule.constant(self.teams) if self.teams else WeeklySchedule.from_entries(self.shifts)

    def crews(self) -> list[Crew]:
        """The pool's crews, each with its weekly hours and post (default: ``base_zone``)."""
        if self.teams:
            return crews_constant(self.teams, self.posts, self.base_zone)
        return crews_from_entries(self.shifts, self.base_zone)

    def on_scene(self, call_type: str) -> Dist:
        return self.on_scene_min.get(call_type, self.on_scene_min["default"])

    def outcome(self, call_type: str) -> Outcomes:
        return self.outcomes.get(call_type, self.outcomes["default"])

    def takes_type(self, call_type: str) -> bool:
        return self.takes == "all" or call_type in self.takes


class Costs(Strict):
    """What the system costs beyond staff hours (staff: ``roles.*.hourly_cost``)."""

    currency: str = Field("USD", description="the currency every cost in the scenario is in")
    vehicle_per_year: dict[str, NonNegativeFloat] = Field(
        {}, description="vehicle pool -> cost of one vehicle for a year (lease, fuel, upkeep)")
    bed_per_day: dict[str, NonNegativeFloat] = Field(
        {}, description="facility -> cost of one staffed bed for a day (facilities with beds)")


class Backup(Strict):
    pool: str = Field(description="pool that answers police backup requests")
    priority: PositiveInt = 1


class Target(Strict):
    """A published figure the scenario should reproduce (used by calibrate-check).

    ``basis`` says how the figure relates to the inputs (rules: :mod:`sim.basis`); only
    ``predicted`` targets count as validation. ``inputs`` names (dotted ``--set`` paths)
    the inputs an ``input`` figure repeats, or those a prediction mainly rests on.
    """

    metric: str
    published: float
    tolerance: NonNegativeFloat
    source: str
    required: bool = True
    reason: str | None = None
    basis: Literal["input", "fitted", "derived", "definition", "predicted"] | None = Field(
        None, description="input | fitted | derived | definition | predicted (see sim/basis.py)")
    inputs: list[str] = Field([], description="dotted paths of the inputs the figure rests on")


class ScenarioHeader(Strict):
    """What every scenario file starts with, whichever kind of program it describes."""

    name: str
    description: str = ""
    assumptions: list[str] = []
    sources: list[str] = []
    seed: int = 20201026
    horizon_days: PositiveFloat = Field(description="measured days, after the warm-up")
    warmup_days: NonNegativeFloat = 0.0
    calibrated: dict[str, list[str]] = Field(
        {}, description="dotted path of a CALIBRATED input -> the figures (metric=value) it was set to meet")
    ranges: dict[str, tuple[float, float]] = Field(
        {}, description="dotted path of an ASSUMPTION input -> [low, high] it may plausibly take")

    @field_validator("ranges")
    @classmethod
    def _ranges_ordered(cls, v):
        for path, (low, high) in v.items():
            if low > high:
                raise ValueError(f"ranges.{path}: [{low:g}, {high:g}] must be [low, high]")
        return v

    @model_validator(mode="after")
    def _basis_rules(self):
        from .basis import problems       # sim.basis reads the validated scenario
        found = problems(self)
        if found:
            more = f" (and {len(found) - 1} more problem{'s' if len(found) > 2 else ''})" if len(found) > 1 else ""
            raise ValueError(found[0] + more)
        return self


class Scenario(ScenarioHeader):
    """Everything one simulated crisis-response system needs. Minutes; the clock starts Monday 00:00."""

    drain_days: NonNegativeFloat = Field(7.0, description="after the last arrival, open calls may finish for this long")
    roles: dict[str, Role] = {}
    call_types: dict[str, CallType] = Field(min_length=1)
    zones: dict[str, Zone] = {"city": Zone(share=1.0)}
    travel: Travel = Travel()
    channels: dict[str, Channel] = Field(min_length=1)
    triage: Triage
    pools: dict[str, Pool] = Field(min_length=1)
    vehicles: dict[str, PositiveInt] = {}
    facilities: dict[str, Facility] = {}
    persons: Persons | None = Field(None, description="the people behind identified calls (repeat callers)")
    case_management: CaseManagement | None = None
    backup: Backup | None = None
    costs: Costs = Costs()
    response_targets_min: list[PositiveFloat] = Field(
        [30.0], description="response-time targets (minutes): share_within_T is reported for each")
    targets: list[Target] = []

    @field_validator("zones")
    @classmethod
    def _zone_shares(cls, v):
        _shares_sum_to_one({k: z.share for k, z in v.items()}, "zone shares")
        return v

    # --- derived views (no new parameters: everything here follows from the fields) ---

    def pool_is_police(self, pool: str) -> bool:
        return any(self.roles.get(r, Role()).sworn for r in self.pools[pool].roles)

    def responder_kind(self, pool: str) -> str:
        """What kind of responder a pool is: ``remote`` (works by phone), ``police`` (every
        role sworn), ``co_responder`` (sworn and civilian roles) or ``civilian`` (none sworn)."""
        p = self.pools[pool]
        if p.remote:
            return "remote"
        sworn = [self.roles.get(r, Role()).sworn for r in p.roles]
        if all(sworn):
            return "police"
        return "co_responder" if any(sworn) else "civilian"

    def path_of(self, call_type: str, zone: str | None = None) -> str:
        """The path a call of this type from this zone takes (validation guarantees one)."""
        zone = zone or next(iter(self.zones))
        return next(name for name, p in self.triage.paths.items()
                    if call_type in p.call_types and (p.zones is None or zone in p.zones))

    def eligible(self, call_type: str, zone: str | None = None) -> bool:
        """Eligible for a specialist response (see ``CallType.eligible``); a type declared
        eligible is eligible everywhere, otherwise its path in that zone decides."""
        declared = self.call_types[call_type].eligible
        if declared is not None:
            return declared
        pools = self.triage.paths[self.path_of(call_type, zone)].all_pools()
        return len(pools) > 1 or any(not self.pool_is_police(p) for p in pools)

    @property
    def end_min(self) -> float:
        return (self.warmup_days + self.horizon_days) * 1440.0

    @property
    def warmup_min(self) -> float:
        return self.warmup_days * 1440.0

    def to_dict(self) -> dict:
        return self.model_dump(mode="json", exclude_defaults=False)


def _check_references(s: Scenario) -> list[tuple[str, str]]:
    """Cross-field checks pydantic cannot express: (field path, message) per problem."""
    errs: list[tuple[str, str]] = []
    types, pools, zones = set(s.call_types), set(s.pools), set(s.zones)
    desks, paths = set(s.triage.desks), set(s.triage.paths)

    def need(value, allowed, where, what):
        if value not in allowed:
            errs.append((where, f"unknown {what} '{value}'; allowed: {', '.join(sorted(allowed)) or '(none defined)'}"))

    for cname, ch in s.channels.items():
        for t in ch.mix:
            need(t, types, f"channels.{cname}.mix.{t}", "call type")
        for z in ch.zones or {}:
            need(z, zones, f"channels.{cname}.zones.{z}", "zone")
        if ch.identified > 0 and s.persons is None:
            errs.append((f"channels.{cname}.identified", "calls carry person ids but the scenario has no "
                                                          "persons: {population: N} to draw them from"))
    seen: dict[tuple[str, str], str] = {}      # (call type, zone) -> path
    for pname, p in s.triage.paths.items():
        for i, z in enumerate(p.zones or []):
            need(z, zones, f"triage.paths.{pname}.zones.{i}", "zone")
        for i, t in enumerate(p.call_types):
            need(t, types, f"triage.paths.{pname}.call_types.{i}", "call type")
            for z in (p.zones or list(s.zones)):
                if (t, z) in seen:
                    errs.append((f"triage.paths.{pname}.call_types.{i}",
                                 f"call type '{t}' is already on path '{seen[t, z]}'"
                                 + (f" in zone '{z}'" if p.zones else "")
                                 + "; each type takes one path (per zone, with zones:)"))
                    break
                seen[t, z] = pname
        if p.tiers is not None:
            for k, tier in enumerate(p.tiers):
                for i, pool in enumerate(tier.pools):
                    need(pool, pools, f"triage.paths.{pname}.tiers.{k}.pools.{i}", "pool")
        else:
            for i, pool in enumerate(p.pools):
                need(pool, pools, f"triage.paths.{pname}.pools.{i}", "pool")
        if p.misroute:
            need(p.misroute.to, paths - {pname}, f"triage.paths.{pname}.misroute.to", "path")
            if isinstance(p.misroute.probability, dict):
                for t in p.misroute.probability:
                    need(t, set(p.call_types), f"triage.paths.{pname}.misroute.probability.{t}",
                         "call type on this path")
        if p.desk:
            need(p.desk, desks, f"triage.paths.{pname}.desk", "desk")
        if p.consult:
            need(p.consult.desk, desks, f"triage.paths.{pname}.consult.desk", "desk")
            need(p.consult.second_pool, pools, f"triage.paths.{pname}.consult.second_pool", "pool")
    for t in sorted(types):
        missing = [z for z in s.zones if (t, z) not in seen]
        if len(missing) == len(s.zones):
            errs.append(("triage.paths", f"call type '{t}' is on no path; every call type needs one"))
        elif missing:
            errs.append(("triage.paths", f"call type '{t}' has no path in zone(s) {', '.join(missing)}; "
                                         "paths with zones: must cover every zone"))
    for pname, p in s.pools.items():
        for i, r in enumerate(p.roles):
            need(r, set(s.roles), f"pools.{pname}.roles.{i}", "role")
        if p.takes != "all":
            for i, t in enumerate(p.takes):
                need(t, types, f"pools.{pname}.takes.{i}", "call type")
        for t in p.on_scene_min:
            if t != "default":
                need(t, types, f"pools.{pname}.on_scene_min.{t}", "call type")
        for t in p.outcomes:
            if t != "default":
                need(t, types, f"pools.{pname}.outcomes.{t}", "call type")
        if p.vehicles is not None:
            need(p.vehicles, set(s.vehicles), f"pools.{pname}.vehicles", "vehicle pool")
        if p.base_zone is not None:
            need(p.base_zone, zones, f"pools.{pname}.base_zone", "zone")
        for i, post in enumerate(p.posts or []):
            if isinstance(post, str):
                need(post, zones, f"pools.{pname}.posts.{i}", "zone")
        for k, e in enumerate(p.shifts or []):
            for i, post in enumerate(e.posts or ([e.post] if e.post is not None else [])):
                if isinstance(post, str):
                    need(post, zones, f"pools.{pname}.shifts.{k}.post" + ("s." + str(i) if e.posts else ""), "zone")
        if p.transport:
            for f in p.transport.destinations:
                need(f, set(s.facilities), f"pools.{pname}.transport.destinations.{f}", "facility")
        elif any(o.transport > 0 for o in p.outcomes.values()):
            errs.append((f"pools.{pname}.transport", "outcomes include transport but the pool has no "
                                                       "transport: {destinations: {FACILITY: share}}"))
        if p.follow_ups and p.follow_ups.by is not None:
            need(p.follow_ups.by, pools, f"pools.{pname}.follow_ups.by", "pool")
        if p.outreach:
            need(p.outreach.call_type, types, f"pools.{pname}.outreach.call_type", "call type")
            for z in p.outreach.zones or {}:
                need(z, zones, f"pools.{pname}.outreach.zones.{z}", "zone")
        if p.escalation and not p.remote:
            errs.append((f"pools.{pname}.escalation", "escalation is for remote (callback) pools; set remote: true"))
    if s.case_management:
        if s.persons is None:
            errs.append(("case_management", "needs persons: {population: N} and channels with identified > 0"))
        if s.case_management.pools != "all":
            for i, pool in enumerate(s.case_management.pools):
                need(pool, pools, f"case_management.pools.{i}", "pool")
    for fname, f in s.facilities.items():
        if f.zone is not None:
            need(f.zone, zones, f"facilities.{fname}.zone", "zone")
        if f.divert_to is not None:
            need(f.divert_to, set(s.facilities) - {fname}, f"facilities.{fname}.divert_to", "facility")
        if f.step_down is not None:
            need(f.step_down.to, set(s.facilities) - {fname}, f"facilities.{fname}.step_down.to", "facility")
    for dname, d in s.triage.desks.items():
        for i, r in enumerate(d.roles):
            need(r, set(s.roles), f"triage.desks.{dname}.roles.{i}", "role")
    if s.backup:
        need(s.backup.pool, pools, "backup.pool", "pool")
    for v in s.costs.vehicle_per_year:
        need(v, set(s.vehicles), f"costs.vehicle_per_year.{v}", "vehicle pool")
    for f in s.costs.bed_per_day:
        need(f, set(s.facilities), f"costs.bed_per_day.{f}", "facility")
    needs_backup = any(o.backup > 0 for p in s.pools.values() for o in p.outcomes.values()) or any(
        p.misroute for p in s.triage.paths.values())
    if needs_backup and s.backup is None:
        errs.append(("backup", "outcomes request police backup (or a path misroutes calls) but no "
                               "backup: {pool: NAME} says which pool answers"))
    if s.travel.model in ("manhattan", "euclidean"):
        for z, zone in s.zones.items():
            if zone.rect_km is None:
                errs.append((f"zones.{z}.rect_km", f"travel model '{s.travel.model}' needs rect_km for every zone"))
    if s.travel.model == "matrix":
        for a in zones:
            for b in zones:
                if b not in (s.travel.matrix_min or {}).get(a, {}):
                    errs.append((f"travel.matrix_min.{a}.{b}", "missing minutes for this pair of zones"))
    return errs


# --------------------------------------------------------------------------- YAML with lines

MAX_FILE_BYTES = 4 * 1024 * 1024   # a scenario file is a few KB; more is the wrong file
MAX_DEPTH = 64                     # nesting levels of a scenario file
MAX_NODES = 200_000                # values after expanding YAML aliases (no "billion laughs")
REPLACE_TAG = "!replace"           # on a mapping or list: replaces the parent's value whole


class _Positions(dict):
    """field path (tuple) -> (file, line)."""


class _Replace:
    """Marks a value written with ``!replace``: it replaces the parent's value in ``extends:``."""


class _ReplaceDict(dict, _Replace):
    pass


class _ReplaceList(list, _Replace):
    pass


def _plain(v: Any) -> Any:
    """The value without ``!replace`` markers."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def _read_text(path: Path) -> str:
    """The file's text: at most MAX_FILE_BYTES, UTF-8, or a one-line ScenarioError."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise ScenarioError(str(path), None, f"cannot read file ({e.strerror or e})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ScenarioError(str(path), None, f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB "
                            "(a scenario file is a few KB): not a scenario file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise ScenarioError(str(path), None, f"not UTF-8 text: byte 0x{raw[e.start]:02x} at byte offset "
                            f"{e.start}; save the file as UTF-8", line=line) from None


def _load_yaml(path: Path) -> tuple[Any, _Positions]:
    """Parse one file (no ``extends:``) into plain values and the line of every key.

    Refused with a ScenarioError (every problem of the file listed): unreadable, too large,
    not UTF-8, not YAML, nested deeper than MAX_DEPTH, more than MAX_NODES values, a key
    given twice in one mapping.
    """
    text = _read_text(path)
    too_deep = f"nested too deeply (a scenario has at most {MAX_DEPTH} levels)"
    positions = _Positions()
    constructor = yaml.SafeLoader("")
    problems: list[ScenarioError] = []
    count = 0

    def build(n, at: tuple):
        nonlocal count
        count += 1
        line = n.start_mark.line + 1
        if count > MAX_NODES:
            raise ScenarioError(str(path), ".".join(at) or None, f"more than {MAX_NODES:,} values "
                                "(YAML aliases expand too far)", line)
        if len(at) > MAX_DEPTH:
            raise ScenarioError(str(path), None, too_deep, line)
        positions.setdefault(at, (str(path), line))  # a key's own line wins
        replace = n.tag == REPLACE_TAG
        if isinstance(n, yaml.MappingNode):
            out = _ReplaceDict() if replace else {}
            first: dict[str, int] = {}
            for k, v in n.value:
                if not isinstance(k, yaml.ScalarNode):
                    problems.append(ScenarioError(str(path), ".".join(at) or None,
                                                  "a key must be a plain name, not a list or mapping",
                                                  k.start_mark.line + 1))
                    continue
                key = str(constructor.construct_object(k, deep=True))
                if key == "<<":
                    problems.append(ScenarioError(str(path), ".".join(at) or None, "YAML merge keys (<<) "
                                                  "are not supported; use extends:", k.start_mark.line + 1))
                    continue
                if key in first:
                    problems.append(ScenarioError(str(path), ".".join(at + (key,)),
                                                  f"duplicate key '{key}' (first given at line {first[key]})",
                                                  k.start_mark.line + 1))
                    continue
                first[key] = k.start_mark.line + 1
                positions[at + (key,)] = (str(path), k.start_mark.line + 1)
                out[key] = build(v, at + (key,))
            return out
        if isinstance(n, yaml.SequenceNode):
            items = [build(v, at + (str(i),)) for i, v in enumerate(n.value)]
            return _ReplaceList(items) if replace else items
        if replace:
            n = yaml.ScalarNode(yaml.resolver.Resolver().resolve(yaml.ScalarNode, n.value, (True, False)),
                                n.value, n.start_mark, n.end_mark, n.style)
        return constructor.construct_object(n, deep=True)

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = {} if node is None else build(node, ())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ScenarioError(str(path), None, f"not valid YAML: {problem}",
                            line=mark.line + 1 if mark else None) from None
    except RecursionError:
        raise ScenarioError(str(path), None, too_deep) from None
    if problems:
        raise ScenarioError.of(problems)
    return data, positions


def _is_distribution(v: Any) -> bool:
    """A mapping that names a distribution kind ({gamma: ...}, {fixed: 5, max: 9}...)."""
    from .distributions import KINDS
    return isinstance(v, dict) and any(k in KINDS for k in v) and set(v) <= set(KINDS) | {"max"}


def _merge(base: Any, over: Any) -> Any:
    """Deep merge for ``extends:``: mappings merge key by key, anything else replaces.

    Two exceptions replace the parent's value whole: a child value tagged ``!replace``, and
    a child distribution that names its kind (``{gamma: {...}}`` replaces the parent's
    ``{lognormal: {...}, max: 600}``, its ``max`` too; ``{max: 900}`` alone still merges).
    """
    if isinstance(over, _Replace) or _is_distribution(over):
        return copy.deepcopy(_plain(over))
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base[k], v) if k in base else copy.deepcopy(_plain(v))
        return out
    return copy.deepcopy(_plain(over))


def _read_with_parents(path: Path, chain: tuple[Path, ...] = ()) -> tuple[dict, _Positions]:
    path = path.resolve() if path.is_absolute() else path
    if path.resolve() in [p.resolve() for p in chain]:
        raise ScenarioError(str(path), "extends", "extends itself (a cycle: "
                            + " -> ".join(str(p) for p in chain + (path,)) + ")")
    if len(chain) >= 32:
        raise ScenarioError(str(path), "extends", "more than 32 levels of extends:")
    data, pos = _load_yaml(path)
    if not isinstance(data, dict):
        raise ScenarioError(str(path), None, "a scenario file must be a mapping of fields (name: ..., pools: ...)")
    parent = data.pop("extends", None)
    if parent is None:
        return (_plain(data) if not chain else data), pos
    if not isinstance(parent, str):
        raise ScenarioError(str(path), "extends", "must be the path of another scenario file",
                            line=pos.get(("extends",), (None, None))[1])
    parent_path = (path.parent / parent)
    if not parent_path.is_file():
        raise ScenarioError(str(path), "extends", f"file '{parent}' not found (relative to {path.parent})",
                            line=pos.get(("extends",), (None, None))[1])
    base, base_pos = _read_with_parents(parent_path, chain + (path,))
    merged_pos = _Positions(base_pos)
    merged_pos.update(pos)
    merged = _merge(base, data)
    return (_plain(merged) if not chain else merged), merged_pos


def parse_value(text: str) -> Any:
    """A ``--set`` value, read as YAML 1.2 core (``13:00`` stays text; see :mod:`sim.overrides`)."""
    from .overrides import parse_value as parse
    return parse(text)


def apply_overrides(data: dict, overrides: dict[str, Any] | list[str] | None, file: str | None = None) -> dict:
    """A copy of a raw scenario mapping with fields set, appended to or removed (``--set``,
    sweeps): ``{"pools.cahoots.shifts.night.teams": 2}`` or ``["pools.cahoots.shifts+={...}"]``.
    The path forms are in :mod:`sim.overrides`; a path that does not exist is a one-line
    :class:`ScenarioError` naming the choices."""
    from .overrides import apply
    return apply(data, overrides, file)


def _describe(err: dict, model_fields: list[str] | None) -> str:
    """One readable sentence for a pydantic error, saying what is allowed."""
    typ, msg = err["type"], err["msg"]
    if typ == "extra_forbidden":
        allowed = f"; allowed: {', '.join(model_fields)}" if model_fields else ""
        return f"unknown field '{err['loc'][-1]}'{allowed}"
    if typ == "missing":
        return "required field is missing"
    msg = msg.removeprefix("Value error, ")
    if "input" in err and typ not in ("model_type", "dict_type") and not isinstance(err["input"], (dict, list)):
        msg += f" (got {err['input']!r})"
    return msg


def _model_in(ann: Any) -> tuple[Any, bool]:
    """(pydantic model inside an annotation, whether a dict/list key comes first)."""
    origin, args = get_origin(ann), get_args(ann)
    if origin in (dict, list):
        inner, _ = _model_in(args[-1])
        return inner, True
    if args:  # Optional / Union: the first branch that holds a model
        for a in args:
            inner, keyed = _model_in(a)
            if inner is not None:
                return inner, keyed
        return None, False
    return (ann, False) if isinstance(ann, type) and issubclass(ann, BaseModel) else (None, False)


def _allowed_fields(loc: tuple, model: type[BaseModel]) -> list[str] | None:
    """Field names of the model that holds the last part of ``loc``."""
    parts = list(loc[:-1])
    while parts:
        part = parts.pop(0)
        if part not in model.model_fields:
            return None
        model, keyed = _model_in(model.model_fields[part].annotation)
        if model is None:
            return None
        if keyed and parts:
            parts.pop(0)
    return sorted(model.model_fields)


_UNION_TAGS = {"literal", "str", "int", "float", "bool", "none", "constrained-float", "constrained-int",
               "constrained-str", "function-after", "function-before", "function-plain", "function-wrap",
               "is-instance", "lax-or-strict", "json-or-python"}


def _clean_loc(loc: tuple) -> tuple[str, ...]:
    """A pydantic error location without the union-branch tags it adds ('list[...]')."""
    return tuple(str(p) for p in loc if not (isinstance(p, str) and ("[" in p or p in _UNION_TAGS)))


def _accepts(ann: Any, kinds: tuple[type, ...]) -> bool:
    """Whether an annotation accepts a plain value of one of ``kinds`` (bool, or int/float)."""
    origin, args = get_origin(ann), get_args(ann)
    if ann is Any:
        return True
    if origin is Annotated:
        return _accepts(args[0], kinds)
    if origin is Literal:
        return any(type(a) in kinds for a in args)
    if args and origin not in (dict, list, tuple):      # Union / Optional
        return any(_accepts(a, kinds) for a in args)
    return isinstance(ann, type) and ann in kinds


def _booleans_as_numbers(value: Any, ann: Any, at: tuple = ()) -> list[tuple[tuple, str]]:
    """(location, message) for every ``true``/``false`` given where only a number is allowed
    (pydantic would read ``teams: true`` as 1)."""
    if isinstance(value, bool):
        if _accepts(ann, (int, float)) and not _accepts(ann, (bool,)):
            return [(at, f"expects a number, not {str(value).lower()}")]
        return []
    origin, args = get_origin(ann), get_args(ann)
    if origin is Annotated:
        return _booleans_as_numbers(value, args[0], at)
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        if not isinstance(value, dict):
            return []
        out = []
        for k, v in value.items():
            if k in ann.model_fields:
                out += _booleans_as_numbers(v, ann.model_fields[k].annotation, at + (k,))
        return out
    if origin is dict and isinstance(value, dict):
        return [p for k, v in value.items() for p in _booleans_as_numbers(v, args[1], at + (str(k),))]
    if origin in (list, tuple) and isinstance(value, list):
        item = (lambda i: args[0]) if origin is list or (len(args) == 2 and args[1] is Ellipsis) \
            else (lambda i: args[i] if i < len(args) else Any)
        return [p for i, v in enumerate(value) for p in _booleans_as_numbers(v, item(i), at + (str(i),))]
    if args and origin not in (dict, list, tuple, Literal):   # Union: the branches that fit the value
        fits = [a for a in args if (isinstance(value, dict) and (get_origin(a) is dict or (
            isinstance(a, type) and issubclass(a, BaseModel)))) or (isinstance(value, list) and get_origin(a) in (list, tuple))]
        return _booleans_as_numbers(value, fits[0], at) if fits else []
    return []


def validate(data: dict, file: str | None = None, positions: dict | None = None,
             model: type[BaseModel] | None = None, checks=None):
    """Raw mapping -> validated model (a Scenario unless ``model`` says otherwise), or a
    ScenarioError listing every problem found (``.lines()``: one line each).

    ``checks(obj)`` returns cross-reference problems as (field path, message) pairs; the
    checks of :mod:`sim.limits` (sizes, cycles, staffing) run for every model too. Problems
    of the shape come first; cross-field checks run only on a scenario of the right shape.
    """
    from .limits import check_scenario
    model = model or Scenario
    checks = checks or (_check_references if model is Scenario else (lambda _o: []))
    positions = positions or {}

    def line_of(loc: tuple) -> int | None:
        for n in range(len(loc), 0, -1):
            if tuple(loc[:n]) in positions:
                return positions[tuple(loc[:n])][1]
        return None

    def file_of(loc: tuple) -> str | None:
        for n in range(len(loc), -1, -1):
            if tuple(loc[:n]) in positions:
                return positions[tuple(loc[:n])][0]
        return file

    def error(loc: tuple, msg: str) -> ScenarioError:
        return ScenarioError(file_of(loc), ".".join(loc) or None, msg, line_of(loc))

    if not isinstance(data, dict):
        raise ScenarioError(file, None, "a scenario must be a mapping of fields (name: ..., pools: ...)")
    found: dict[tuple, ScenarioError] = {}
    for loc, msg in _booleans_as_numbers(data, model):
        found.setdefault(loc, error(loc, msg))
    try:
        scenario = model.model_validate(data)
    except ValidationError as e:
        for err in e.errors():
            loc = _clean_loc(err["loc"])
            if loc not in found:                      # union branches repeat a field
                found[loc] = error(loc, _describe(
                    err, _allowed_fields(loc, model) if err["type"] == "extra_forbidden" else None))
        raise ScenarioError.of(list(found.values())) from None
    if found:
        raise ScenarioError.of(list(found.values()))
    problems = list(checks(scenario)) + check_scenario(scenario)
    if problems:
        raise ScenarioError.of([error(tuple(where.split(".")) if where else (), msg) for where, msg in problems])
    return scenario


def validate_any(data: dict, file: str | None, positions: dict | None):
    """A crisis-response Scenario, or a violence scenario when the data say ``kind: violence``:
    both kinds run through the same experiments and results store."""
    if isinstance(data, dict) and data.get("kind") == "violence":
        from .violence.schema import ViolenceScenario, check_references
        return validate(data, file, positions, model=ViolenceScenario, checks=check_references)
    return validate(data, file, positions)


def load_any(path: str | Path, overrides: dict[str, Any] | list[str] | None = None):
    """Load, merge ``extends:``, apply overrides and validate a scenario file of either kind."""
    data, positions = load_raw(path)
    return validate_any(apply_overrides(data, overrides, str(path)), str(path), positions)


def load_raw(path: str | Path) -> tuple[dict, dict]:
    """The merged raw mapping of a file and its ``extends:`` parents, with key positions."""
    return _read_with_parents(Path(path))


def load_scenario(path: str | Path, overrides: dict[str, Any] | list[str] | None = None) -> Scenario:
    """Load, merge ``extends:``, apply overrides and validate a scenario file."""
    data, positions = load_raw(path)
    data = apply_overrides(data, overrides, str(path))
    return validate(data, str(path), positions)


def resolved_yaml(s: Scenario) -> str:
    """The fully resolved scenario (parents merged, defaults filled) as YAML."""
    return yaml.safe_dump(s.to_dict(), sort_keys=False, allow_unicode=True)
