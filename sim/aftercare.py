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

import math
from collections import deque
from typing import TYPE_CHECKING

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
        self.arrivals = self.admissions = self.refusals = 0   # refusals: turned away when full
        self.step_downs = self.step_down_refused = 0

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
        self.admissions += 1
        self.env.process(self._discharge_after(self.los(self.m.draw(f"facility/{self.name}/los"))))

    def _discharge_after(self, stay: float):
        yield self.env.timeout(stay)
        if self.step_down is not None:
            target, p = self.step_down
            if self.m.draw(f"facility/{self.name}/step_down") < p:
                if target.full():
                    target.step_down_refused += 1
                else:
                    self.step_downs += 1
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
        fac.arrivals += 1
        if not fac.full():
            fac.admit()
            break
        if fac.when_full == "wait" or fac.divert_to is None:
            t = env.now
            yield fac.wait_for_bed()
            door_wait += env.now - t
            break
        fac.refusals += 1
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
