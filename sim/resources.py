"""Team pools, vehicles and desks, with the monitoring the charts need.

A :class:`TeamPool` is a set of teams that come on and off duty by a weekly schedule.
Dispatch takes the closest idle team on duty (with a vehicle, if the pool needs one) from
an index of idle teams by zone, never by scanning every team. A call that finds no team
waits in the pool's queue, served by priority then first come first served, until a team
frees up or its maximum wait runs out (then the event fires with ``None`` and the caller
falls back to the next pool).

Busy levels are recorded as a step function (time, busy teams) each time they change, so
utilisation can be sliced by hour of week afterwards (as salabim's level monitors do).
"""
from __future__ import annotations

import heapq
import itertools
from typing import Callable

import numpy as np
import simpy

from .shifts import WEEK, WeeklySchedule


def step_integral(times: list[float], levels: list[float], t0: float, t1: float) -> float:
    """Integral over [t0, t1) of a level monitor: ``levels[k]`` holds from ``times[k]`` to
    the next time (the last level to the end). Level x minutes."""
    ts = np.asarray(times + [max(t1, times[-1])], dtype=float)
    seg = np.clip(ts[1:], t0, t1) - np.clip(ts[:-1], t0, t1)
    return float(np.dot(np.asarray(levels, dtype=float), seg))


class Team:
    """One team (or desk seat). Position is where it is now (km, zone index)."""

    __slots__ = ("pool", "index", "on_duty", "busy", "leaving", "off_at", "x", "y", "zone",
                 "overtime")

    def __init__(self, pool: "TeamPool", index: int, x: float, y: float, zone: int):
        self.pool, self.index = pool, index
        self.on_duty = False
        self.busy = False
        self.leaving = False   # shift ended while busy: goes off duty when released
        self.off_at = 0.0      # when the shift ended (for overtime)
        self.x, self.y, self.zone = x, y, zone
        self.overtime = 0.0    # minutes worked past shift end


class VehiclePool:
    """Shared vehicles: a team without one can't leave."""

    def __init__(self, name: str, count: int):
        self.name, self.count, self.free = name, count, count
        self.pools: list[TeamPool] = []

    def release(self) -> None:
        self.free += 1
        for p in self.pools:
            if not self.free:
                break
            p.serve_waiting()


class _Waiting:
    __slots__ = ("call", "x", "y", "zone", "event", "done")

    def __init__(self, call: int, x: float, y: float, zone: int, event: simpy.Event):
        self.call, self.x, self.y, self.zone, self.event, self.done = call, x, y, zone, event, False


class TeamPool:
    """Teams of one kind with a weekly schedule, an idle index and a priority queue."""

    def __init__(self, env: simpy.Environment, name: str, index: int, schedule: WeeklySchedule,
                 vehicles: VehiclePool | None, search_order: list[list[int]],
                 distance: Callable[[float, float, float, float], float],
                 base: tuple[float, float, int], return_to_base: bool = False):
        self.env, self.name, self.index = env, name, index
        self.schedule = schedule
        self.vehicles = vehicles
        if vehicles is not None:
            vehicles.pools.append(self)
        self.search_order = search_order
        self._distance = distance
        self.base = base
        self.return_to_base = return_to_base
        self._located = len(search_order) > 1 or len(search_order[0]) > 1  # else: no geography
        self.teams = [Team(self, k, *base) for k in range(schedule.max_teams)]
        self.idle: list[list[Team]] = [[] for _ in search_order]  # by zone
        self.n_idle = 0
        self._queue: list = []
        self._seq = itertools.count()
        self.on_duty = 0
        self.busy = 0
        # level monitor: busy teams after each change
        self.level_t: list[float] = [0.0]
        self.level_busy: list[int] = [0]
        self.served = 0

    # --- shifts --------------------------------------------------------------------

    def run_schedule(self):
        """SimPy process: bring teams on and off duty at every step of the schedule."""
        env = self.env
        self.set_on_duty(self.schedule.count_at(0))
        changes = self.schedule.changes()
        if not changes:
            return
        week = 0
        while True:
            for minute, count in changes:
                t = week * WEEK + minute
                if t <= env.now:
                    continue
                yield env.timeout(t - env.now)
                self.set_on_duty(count)
            week += 1

    def set_on_duty(self, count: int) -> None:
        now = self.env.now
        for team in self.teams[count:self.on_duty]:      # going off duty
            team.on_duty = False
            if team.busy:
                team.leaving, team.off_at = True, now
            else:
                self.idle[team.zone].remove(team)
                self.n_idle -= 1
        for team in self.teams[self.on_duty:count]:      # coming on duty
            team.on_duty = True
            if team.busy:
                team.leaving = False                     # carried over: stays on
            else:
                team.x, team.y, team.zone = self.base
                self.idle[team.zone].append(team)
                self.n_idle += 1
        self.on_duty = count
        if self.n_idle and self._queue:
            self.serve_waiting()

    # --- dispatch ------------------------------------------------------------------

    def _nearest(self, x: float, y: float, zone: int) -> Team:
        for z in self.search_order[zone]:
            bucket = self.idle[z]
            if bucket:
                if len(bucket) == 1 or not self._located:
                    return bucket.pop()
                dist = self._distance
                best = min(bucket, key=lambda t: dist(t.x, t.y, x, y))
                bucket.remove(best)
                return best
        raise RuntimeError("no idle team")  # callers check n_idle first

    def _assign(self, team: Team) -> Team:
        self.n_idle -= 1
        team.busy = True
        self.busy += 1
        self.served += 1
        if self.vehicles is not None:
            self.vehicles.free -= 1
        self.level_t.append(self.env.now)
        self.level_busy.append(self.busy)
        return team

    def staffed_within(self, t: float, wait: float) -> bool:
        """Whether any team is (or comes) on duty between now and ``t + wait``: a call does
        not wait for a pool that nobody will staff before its wait runs out."""
        if self.on_duty:
            return True
        per_minute = self.schedule.per_minute
        start = int(t)
        span = min(int(wait) + 2, WEEK)
        idx = (start + np.arange(span)) % WEEK
        return bool(per_minute[idx].any())

    def available(self) -> bool:
        return self.n_idle > 0 and (self.vehicles is None or self.vehicles.free > 0)

    def take(self, x: float, y: float, zone: int) -> Team | None:
        """The closest idle team now, or None."""
        if self.n_idle and (self.vehicles is None or self.vehicles.free):
            return self._assign(self._nearest(x, y, zone))
        return None

    def request(self, call: int, priority: int, x: float, y: float, zone: int,
                max_wait: float | None) -> simpy.Event:
        """Queue a call; the event's value is a Team, or None when ``max_wait`` runs out."""
        ev = self.env.event()
        w = _Waiting(call, x, y, zone, ev)
        heapq.heappush(self._queue, (priority, next(self._seq), w))
        if max_wait is not None:
            self.env.timeout(max_wait).callbacks.append(lambda _e, w=w: self._expire(w))
        return ev

    def _expire(self, w: _Waiting) -> None:
        if not w.done:
            w.done = True
            w.event.succeed(None)   # lazily left in the heap; skipped when popped

    def serve_waiting(self) -> None:
        q = self._queue
        while q and self.n_idle and (self.vehicles is None or self.vehicles.free):
            _, _, w = heapq.heappop(q)
            if w.done:
                continue
            w.done = True
            w.event.succeed(self._assign(self._nearest(w.x, w.y, w.zone)))

    def queue_length(self) -> int:
        return sum(1 for _, _, w in self._queue if not w.done)

    def release(self, team: Team) -> None:
        """The team is back in service (or goes home if its shift has ended)."""
        now = self.env.now
        team.busy = False
        self.busy -= 1
        self.level_t.append(now)
        self.level_busy.append(self.busy)
        if team.leaving:
            team.leaving = False
            team.overtime += now - team.off_at
        elif team.on_duty:
            self.idle[team.zone].append(team)
            self.n_idle += 1
        if self.vehicles is not None:
            self.vehicles.release()     # serves this and sharing pools' queues
        elif self._queue and self.n_idle:
            self.serve_waiting()

    def busy_on_duty_minutes(self, t0: float, t1: float) -> float:
        """Team-minutes busy while on duty in [t0, t1): the integral of min(busy, on duty).
        Teams working past the end of their shift count as overtime, not here."""
        ts = np.asarray(self.level_t, dtype=float)
        changes = np.asarray([m for m, _ in self.schedule.changes()], dtype=float)
        weeks = np.arange(int(t0 // WEEK), int(t1 // WEEK) + 1) * WEEK
        cuts = (weeks[:, None] + changes[None, :]).ravel() if len(changes) else np.zeros(0)
        points = np.unique(np.concatenate([ts, cuts, [t0, t1]]))
        points = points[(points >= t0) & (points <= t1)]
        starts, lengths = points[:-1], np.diff(points)
        busy = np.asarray(self.level_busy)[np.searchsorted(ts, starts, side="right") - 1]
        duty = self.schedule.per_minute[(starts.astype(np.int64)) % WEEK]
        return float(np.dot(np.minimum(busy, duty), lengths))

    def busy_minutes(self, t0: float, t1: float) -> float:
        """Team-minutes busy in [t0, t1) from the level monitor."""
        return step_integral(self.level_t, self.level_busy, t0, t1)
