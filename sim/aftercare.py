"""After the scene: transports to facilities with finite beds, and follow-up visits.

A :class:`Facility` holds ``beds`` (or is never full), keeps each admitted person for a
length of stay, may step them down to a longer-stay facility, and records its occupancy as
a step function. When it is full, its declared policy applies: ``divert`` sends the team on
to ``divert_to`` (usually the ED), ``wait`` keeps the team at the door, first come first
served, until a bed is handed to it.

Transports and follow-ups are generators run inside a call's process (or beside it), so
the team stays busy for exactly the drive, the door wait and the hand-over. Every unit's
work is booked as spans in the model's assignments log (``Model.open`` / ``close``).
"""
from __future__ import annotations

import heapq
import math
from collections import deque
from typing import TYPE_CHECKING

import numpy as np
import simpy

from .streams import (ESCALATE_ADVOCACY, ESCALATE_ADVOCACY_TIME, ESCALATE_ON_SCENE, ESCALATE_TRAVEL,
                      ESCALATE_TURNOUT, FOLLOW_UP_DELAY, FOLLOW_UP_ON_SCENE, FOLLOW_UP_SHARE, FOLLOW_UP_TRAVEL,
                      FOLLOW_UP_TURNOUT, LENGTH_OF_STAY, RETURN_FOLLOW_UP, STEP_DOWN, TRANSPORT_TRAVEL)

if TYPE_CHECKING:  # pragma: no cover
    from .callpath import CallInputs
    from .model import Model

FOLLOWUP_NONE, FOLLOWUP_DONE, FOLLOWUP_MISSED = 0, 1, 2
FOLLOWUP_NAMES = ("none", "done", "missed")


class Facility:
    def __init__(self, m: "Model", name: str, index: int, spec, location: tuple[float, float, int]):
        self.m, self.env, self.name, self.index = m, m.env, name, index
        self.beds = spec.beds if spec.beds is not None else math.inf
        self.when_full = spec.when_full
        self.location = location
        self.los = spec.length_of_stay_min.sampler()
        self.handover = spec.handover_min.sampler()
        self.divert_to: Facility | None = None      # linked after all facilities exist
        self.step_down: tuple[Facility, float] | None = None
        self.occupied = 0
        self.door: deque[tuple[simpy.Event, int]] = deque()   # (event, call) of teams waiting for a bed
        self.level_t: list[float] = [0.0]
        self.level_occ: list[int] = [0]
        # counted after the warm-up only, like the KPIs (refusals: turned away when full)
        self.arrivals = self.admissions = self.refusals = 0
        self.step_downs = self.step_down_refused = 0
        self._warmup = m.s.warmup_min

    def measuring(self) -> bool:
        return self.env.now >= self._warmup

    def full(self) -> bool:
        return self.occupied >= self.beds

    def _record(self) -> None:
        self.level_t.append(self.env.now)
        self.level_occ.append(self.occupied)

    def admit(self, call: int, first: bool = True) -> None:
        """Take the person of ``call`` into a free bed (caller checked ``full()``); ``first``:
        brought by the call's transport (not stepped down from another facility)."""
        self.occupied += 1
        self._record()
        self._stay(call, first)

    def wait_for_bed(self, call: int) -> simpy.Event:
        """An event that fires when a bed is handed to this waiter (it is then occupied)."""
        ev = self.env.event()
        self.door.append((ev, call))
        return ev

    def _stay(self, call: int, first: bool) -> None:
        # the stay is keyed to the call (and the facility), not to the order people arrive in
        self.admissions += self.measuring()
        stay = self.los(self.m.ku(call, LENGTH_OF_STAY + self.index % 16))
        if first:           # the call log keeps the first stay (a step-down comes after the call)
            self.m.rec["stay"][call] = stay
        self.env.process(self._discharge_after(stay, call))

    def _discharge_after(self, stay: float, call: int):
        yield self.env.timeout(stay)
        if self.step_down is not None:
            target, p = self.step_down
            if self.m.ku(call, STEP_DOWN + self.index % 16) < p:
                if target.full():
                    target.step_down_refused += self.measuring()
                else:
                    self.step_downs += self.measuring()
                    target.admit(call, first=False)
        if self.door:
            ev, waiter = self.door.popleft()
            ev.succeed()                    # the bed goes straight to the next team at the door
            self._stay(waiter, first=True)
        else:
            self.occupied -= 1
            self._record()


def transport(m: "Model", i: int, c: "CallInputs", unit, x: float, y: float, zone: int, cp, span):
    """Drive the person to a facility, wait or divert if it is full, hand over.

    ``span`` is the unit's open span on the call; the transport is a span of its own (from
    leaving the scene to the hand-over). Returns (position afterwards, the open span), with
    position None if the person declined (the unit is still at the scene, on its first span).
    A chain of diversions never visits a facility twice: at a facility already tried the
    team waits at the door, so a transport always ends and time always passes.
    """
    env, rec = m.env, m.rec
    spec = cp.transport
    if c.u_consent >= spec.consent:
        rec["consent_refused"][i] = True
        return None, span
    m.close(span)
    span = m.open(unit, "transport", i, env.now, c.priority)
    fac = cp.pick_destination(c.u_destination)
    loc = (x, y, zone)
    door_wait = 0.0
    tried: set[int] = set()
    leg = 0
    while True:
        fx, fy, fz = fac.location
        d = m.geo.drive(loc[0], loc[1], loc[2], fx, fy, fz, m.ku(i, TRANSPORT_TRAVEL + min(leg, 15)))
        leg += 1
        if d > 0:
            yield env.timeout(d)
        loc = fac.location
        unit.x, unit.y, unit.zone = loc
        fac.arrivals += fac.measuring()
        if not fac.full():
            fac.admit(i)
            break
        tried.add(fac.index)
        if fac.when_full == "wait" or fac.divert_to is None or fac.divert_to.index in tried:
            t = env.now
            yield fac.wait_for_bed(i)
            door_wait += env.now - t
            break
        fac.refusals += fac.measuring()
        rec["transport_diverted"][i] = True
        fac = fac.divert_to
    m.arrived(span)
    rec["door_wait"][i] = door_wait
    rec["destination"][i] = fac.index
    h = fac.handover(c.u_handover)
    if h > 0:
        yield env.timeout(h)
    rec["t_handover"][i] = env.now
    return loc, span


def follow_up(m: "Model", i: int, tier, x: float, y: float, zone: int, dz: int, fu):
    """A follow-up visit: due after a delay, done by the pool when no live call needs it.

    If an urgent call pre-empts the unit, the visit goes back to the queue with the time on
    scene it still needs, and is done by the next free unit within its expiry, or missed.
    """
    env, rec = m.env, m.rec
    try:
        if m.ku(i, FOLLOW_UP_SHARE) >= fu.share:
            return
        d = fu.delay(m.ku(i, FOLLOW_UP_DELAY))
        if d > 0:
            yield env.timeout(d)
        due = env.now
        need = fu.on_scene(m.ku(i, FOLLOW_UP_ON_SCENE))
        attempt = 0
        while True:
            left = fu.expires - (env.now - due)
            t_req = env.now
            unit = m.disp.take(tier, x, y, dz, fu.priority) if left > 0 else None
            if unit is None and left > 0:
                unit = yield m.disp.request(tier, i, fu.priority, x, y, dz, left)
            if unit is None:
                rec["followup"][i] = FOLLOWUP_MISSED
                return
            span = m.open(unit, "follow_up", i, t_req, fu.priority)
            m.disp.set_preemptible(unit, True)
            started = None
            try:
                d = 0.0 if fu.remote else m.geo.turnout(m.ku(i, FOLLOW_UP_TURNOUT + min(attempt, 15))) + m.geo.drive(
                    unit.x, unit.y, unit.zone, x, y, zone, m.ku(i, FOLLOW_UP_TRAVEL + min(attempt, 15)))
                if d > 0:
                    yield env.timeout(d)
                if not fu.remote:
                    unit.x, unit.y, unit.zone = x, y, dz
                m.arrived(span)
                started = env.now
                yield env.timeout(need)
            except simpy.Interrupt:
                # the unit went to an urgent call; the visit resumes with the time still needed
                if started is not None:
                    need = max(need - (env.now - started), 0.0)
                m.close(span, preempted=True)
                rec["followup_preempted"][i] = rec["followup_preempted"].get(i, 0) + 1
                attempt += 1
                continue
            m.disp.set_preemptible(unit, False)
            rec["followup"][i] = FOLLOWUP_DONE
            rec["t_followup_done"][i] = env.now
            where = (unit.x, unit.y, unit.zone)
            yield from m.finish(unit, *where, span, i, RETURN_FOLLOW_UP)
            return
    finally:
        m.call_closed(i)


class CaseManagement:
    """Enrols people with at least k contacts in a window while the caseload has room.

    An enrolled person's calls are thinned: each call still happens with probability
    ``call_factor`` (thinning a Poisson stream scales its rate exactly), so the program and
    its counterfactual share every other random number.
    """

    def __init__(self, spec, pool_indices: set[int] | None):
        self.k, self.window = spec.min_contacts, spec.window_days * 1440.0
        self.caseload, self.duration = spec.caseload, spec.duration_days * 1440.0
        self.factor = spec.call_factor
        self.pools = pool_indices                       # None = every pool counts
        self.history: dict[int, deque] = {}
        self.enrolled_until: dict[int, float] = {}
        self._active: list[tuple[float, int]] = []      # heap of (until, person)
        self.enrolments = 0
        self.refused_full = 0                           # eligible but the caseload was full

    def active(self, person: int, now: float) -> bool:
        return self.enrolled_until.get(person, -1.0) > now

    def contact(self, person: int, pool: int, now: float) -> None:
        if person < 0 or (self.pools is not None and pool not in self.pools):
            return
        h = self.history.setdefault(person, deque())
        h.append(now)
        while h[0] < now - self.window:
            h.popleft()
        if len(h) < self.k or self.active(person, now):
            return
        while self._active and self._active[0][0] <= now:
            heapq.heappop(self._active)
        if len(self._active) >= self.caseload:
            self.refused_full += 1
            return
        until = now + self.duration
        self.enrolled_until[person] = until
        heapq.heappush(self._active, (until, person))
        self.enrolments += 1


def escalate(m: "Model", i: int, unit, x: float, y: float, zone: int, priority: int, esc, span):
    """After a callback, an urgent case: the volunteer goes to the scene, sometimes on to
    the hospital as an advocate (a span of its own). Returns (position afterwards, open span)."""
    env, rec = m.env, m.rec
    rec["escalated"][i] = True
    m.close(span)
    span = m.open(unit, "scene_visit", i, env.now, priority)
    d = m.geo.turnout(m.ku(i, ESCALATE_TURNOUT)) + m.geo.drive(
        unit.x, unit.y, unit.zone, x, y, zone, m.ku(i, ESCALATE_TRAVEL))
    if d > 0:
        yield env.timeout(d)
    unit.x, unit.y, unit.zone = x, y, zone
    m.arrived(span)
    rec["t_scene_visit"][i] = env.now
    yield env.timeout(esc.on_scene(m.ku(i, ESCALATE_ON_SCENE)))
    if m.ku(i, ESCALATE_ADVOCACY) < esc.advocacy_share:
        rec["advocacy"][i] = True
        yield env.timeout(esc.advocacy(m.ku(i, ESCALATE_ADVOCACY_TIME)))
    return (x, y, zone), span


OUTREACH_PRIORITY = 10 ** 6      # below every live call and follow-up


def outreach(m: "Model", pool, tier, spec, cpool):
    """Proactive contacts while idle on shift: Poisson at ``per_idle_team_hour`` per idle
    team, by thinning a process at the rate of the pool's largest shift. Live calls first:
    no contact starts while a request waits in any of the pool's tiers."""
    env = m.env
    top = pool.schedule.max_teams
    if top == 0:
        return
    rate = spec.per_idle_team_hour / 60.0 * top           # per minute, upper bound
    zones = list(m.s.zones)
    shares = spec.zones or {z: m.s.zones[z].share for z in zones}
    cum = np.cumsum([shares.get(z, 0.0) for z in zones])
    end = m.s.end_min
    while True:
        yield env.timeout(-math.log1p(-m.draw(f"outreach/{pool.name}/gap")) / rate)
        if env.now >= end:
            return
        u = m.draw(f"outreach/{pool.name}/accept")
        if any(t.waiting() for t in pool.tiers):
            continue                                       # live calls first
        if u >= min(pool.n_idle, top) / top:
            continue
        z = int(min(np.searchsorted(cum / cum[-1], m.draw(f"outreach/{pool.name}/zone"), side="right"),
                    len(zones) - 1))
        (x,), (y,) = m.geo.locations(np.array([z]), np.array([m.draw(f"outreach/{pool.name}/x")]),
                                     np.array([m.draw(f"outreach/{pool.name}/y")]))
        dz = z if m.geo.model != "none" else 0
        unit = m.disp.take(tier, float(x), float(y), dz, OUTREACH_PRIORITY)
        if unit is None:                                   # idle but no vehicle
            continue
        env.process(_outreach_contact(m, pool, unit, spec, cpool, float(x), float(y), z, dz))


def _outreach_contact(m: "Model", pool, unit, spec, cpool, x, y, zone, dz):
    """One contact where the team is (outreach teams walk their area: no drive). An urgent
    call may pre-empt it: the contact ends there and is logged as pre-empted."""
    env = m.env
    m.open_calls += 1
    try:
        t0 = env.now
        span = m.open(unit, "outreach", -1, t0, OUTREACH_PRIORITY)
        m.arrived(span)
        person = m.draw_person(f"outreach/{pool.name}/person")
        preempted = False
        m.disp.set_preemptible(unit, True)
        try:
            yield env.timeout(cpool.outreach_on_scene(m.draw(f"outreach/{pool.name}/on_scene")))
        except simpy.Interrupt:
            preempted = True
        t1 = env.now
        if preempted:
            m.close(span, preempted=True)
        else:
            m.disp.set_preemptible(unit, False)
            yield from m.finish(unit, x, y, dz, span, None, None)
        m.outreach_rows.append((t0, t1, env.now, pool.index, unit.id, zone, x, y, person,
                                m.type_index[spec.call_type]))
        if m.casemgmt is not None:
            m.casemgmt.contact(person, pool.index, t0)
    finally:
        m.call_closed()
