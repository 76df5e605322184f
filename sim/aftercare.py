"""After the scene: transports to facilities with finite beds, and follow-up visits.

A :class:`Facility` holds ``beds`` (or is never full), keeps each admitted person for a
length of stay, may step them down to a longer-stay facility, and records its occupancy as
a step function. When it is full, its declared policy applies: ``divert`` sends the team on
to ``divert_to`` (usually the ED), ``wait`` keeps the team at the door, first come first
served, until a bed is handed to it.

Transports and follow-ups are generators run inside a call's process (or beside it), so
the team stays busy for exactly the drive, the door wait and the hand-over.
"""
from __future__ import annotations

import heapq
import math
from collections import deque
from typing import TYPE_CHECKING

import numpy as np
import simpy

if TYPE_CHECKING:  # pragma: no cover
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
        self.door: deque[simpy.Event] = deque()
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

    def admit(self) -> None:
        """Take someone into a free bed (caller checked ``full()``)."""
        self.occupied += 1
        self._record()
        self._stay()

    def wait_for_bed(self) -> simpy.Event:
        """An event that fires when a bed is handed to this waiter (it is then occupied)."""
        ev = self.env.event()
        self.door.append(ev)
        return ev

    def _stay(self) -> None:
        self.admissions += self.measuring()
        self.env.process(self._discharge_after(self.los(self.m.draw(f"facility/{self.name}/los"))))

    def _discharge_after(self, stay: float):
        yield self.env.timeout(stay)
        if self.step_down is not None:
            target, p = self.step_down
            if self.m.draw(f"facility/{self.name}/step_down") < p:
                if target.full():
                    target.step_down_refused += self.measuring()
                else:
                    self.step_downs += self.measuring()
                    target.admit()
        if self.door:
            self.door.popleft().succeed()   # the bed goes straight to the next team at the door
            self._stay()
        else:
            self.occupied -= 1
            self._record()


def transport(m: "Model", i: int, team, x: float, y: float, zone: int, cp):
    """Drive the person to a facility, wait or divert if it is full, hand over.

    Returns the team's position afterwards, or None if the person declined (the team is
    still at the scene).
    """
    env, rec = m.env, m.rec
    spec = cp.transport
    if m.u_consent[i] >= spec.consent:
        rec["consent_refused"][i] = True
        return None
    fac = cp.pick_destination(m.u_destination[i])
    loc = (x, y, zone)
    door_wait = 0.0
    while True:
        fx, fy, fz = fac.location
        d = m.geo.drive(loc[0], loc[1], loc[2], fx, fy, fz, m.draw("transport/travel"))
        if d > 0:
            yield env.timeout(d)
        loc = fac.location
        fac.arrivals += fac.measuring()
        if not fac.full():
            fac.admit()
            break
        if fac.when_full == "wait" or fac.divert_to is None:
            t = env.now
            yield fac.wait_for_bed()
            door_wait += env.now - t
            break
        fac.refusals += fac.measuring()
        rec["transport_diverted"][i] = True
        fac = fac.divert_to
    rec["door_wait"][i] = door_wait
    rec["destination"][i] = fac.index
    h = fac.handover(m.u_handover[i])
    if h > 0:
        yield env.timeout(h)
    rec["t_handover"][i] = env.now
    return loc


def follow_up(m: "Model", i: int, pool, x: float, y: float, zone: int, dz: int, fu):
    """A follow-up visit: due after a delay, done by the pool when no live call needs it."""
    env, rec = m.env, m.rec
    try:
        if m.draw("followup/share") >= fu.share:
            return
        d = fu.delay(m.draw("followup/delay"))
        if d > 0:
            yield env.timeout(d)
        team = pool.take(x, y, dz)
        if team is None:
            team = yield pool.request(i, fu.priority, x, y, dz, fu.expires)
        if team is None:
            rec["followup"][i] = FOLLOWUP_MISSED
            return
        d = 0.0 if fu.remote else m.geo.turnout(m.draw("followup/turnout")) + m.geo.drive(
            team.x, team.y, team.zone, x, y, zone, m.draw("followup/travel"))
        if d > 0:
            yield env.timeout(d)
        yield env.timeout(fu.on_scene(m.draw("followup/on_scene")))
        rec["followup"][i] = FOLLOWUP_DONE
        rec["t_followup_done"][i] = env.now
        yield from m.finish(team, x, y, zone, None)
    finally:
        m.call_closed()


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


def escalate(m: "Model", i: int, team, x: float, y: float, zone: int, esc):
    """After a callback, an urgent case: the volunteer goes to the scene, sometimes on to
    the hospital as an advocate. Returns the team's position afterwards."""
    env, rec = m.env, m.rec
    rec["escalated"][i] = True
    d = m.geo.turnout(m.draw("escalate/turnout")) + m.geo.drive(
        team.x, team.y, team.zone, x, y, zone, m.draw("escalate/travel"))
    if d > 0:
        yield env.timeout(d)
    rec["t_scene_visit"][i] = env.now
    yield env.timeout(esc.on_scene(m.draw("escalate/on_scene")))
    if m.draw("escalate/advocacy") < esc.advocacy_share:
        rec["advocacy"][i] = True
        yield env.timeout(esc.advocacy(m.draw("escalate/advocacy_time")))
    return (x, y, zone)


def outreach(m: "Model", pool, spec, cpool):
    """Proactive contacts while idle on shift: Poisson at ``per_idle_team_hour`` per idle
    team, by thinning a process at the rate of the pool's largest shift."""
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
        if pool.queue_length():
            continue                                       # live calls first
        if u >= min(pool.n_idle, top) / top:
            continue
        z = int(min(np.searchsorted(cum / cum[-1], m.draw(f"outreach/{pool.name}/zone"), side="right"),
                    len(zones) - 1))
        (x,), (y,) = m.geo.locations(np.array([z]), np.array([m.draw(f"outreach/{pool.name}/x")]),
                                     np.array([m.draw(f"outreach/{pool.name}/y")]))
        team = pool.take(x, y, z if m.geo.model != "none" else 0)
        if team is None:                                   # idle but no vehicle
            continue
        env.process(_outreach_contact(m, pool, team, spec, cpool, float(x), float(y), z))


def _outreach_contact(m: "Model", pool, team, spec, cpool, x, y, zone):
    env = m.env
    m.open_calls += 1
    try:
        t0 = env.now
        person = m.draw_person(f"outreach/{pool.name}/person")
        yield env.timeout(cpool.outreach_on_scene(m.draw(f"outreach/{pool.name}/on_scene")))
        t1 = env.now
        yield from m.finish(team, x, y, zone, None)
        m.outreach_rows.append((t0, t1, env.now, pool.index, team.index, zone, x, y, person,
                                m.type_index[spec.call_type]))
        if m.casemgmt is not None:
            m.casemgmt.contact(person, pool.index, t0)
    finally:
        m.call_closed()
