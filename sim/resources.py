"""Units, pools, tiers and the one dispatcher every task goes through.

* A :class:`Unit` is one crew (a team, a desk seat): it has a post, comes on and off duty
  by its crew's hours (``sim/shifts.py``), and is idle, busy or leaving (its shift ended
  while it was busy: it finishes the task, books the overtime to itself, then goes home).
* A :class:`Pool` is the units of one kind (police patrol, a CAHOOTS van crew, a desk).
* A :class:`Tier` is one step of a response path: one or more pools whose units compete
  on travel time, with **one queue** for the whole tier (priority, then first come first
  served).
* The :class:`Dispatcher` answers every request for a unit — calls, backups, desk-sent
  second units, follow-ups, outreach, desks, violence responders — by the same rules:

  1. **Closest by travel time, exactly.** Of the available units of the tier's pools (on
     duty, idle, with a vehicle if the pool needs one, not inside a shift-end cut-off for
     a call of that priority) the one with the smallest expected drive from where it is now
     is sent. Turnout is the same for every unit, so it does not change the order. Ties go
     to the unit idle longest, then the lowest unit id. The search is exact and does not
     scan every unit: a grid of cells searched nearest first until no nearer unit can
     exist (km geography), zones in order of matrix minutes (matrix geography).
  2. **Else wait in the tier's queue** until a unit of any of its pools becomes free; the
     freed unit takes the most urgent waiting request, then the longest waiting. A request
     whose maximum wait runs out leaves the queue (the event fires with ``None``).
  3. **Vehicles** are shared by all the pools that use one vehicle pool: a returned vehicle
     goes to the most urgent, then longest-waiting request among those pools' tiers.
  4. **Pre-emption** (per pool): a live call at or above the pool's pre-emption priority
     that finds no free unit takes the closest unit of the pool that is on a follow-up or an
     outreach contact; that task's process is interrupted and decides what happens to it.
"""
from __future__ import annotations

import functools
import heapq
import itertools
import math
import types
from typing import Callable

import simpy

from .geography import _euclidean, _manhattan
from .shifts import WEEK, Crew, WeeklySchedule

INF = math.inf
_NOWHERE = types.MappingProxyType({})   # the empty cells framing a grid index (never written)


class Unit:
    """One crew. ``x, y, zone``: where it is now (km, zone index)."""

    __slots__ = ("id", "pool", "crew", "post", "x", "y", "zone", "on_duty", "busy", "leaving", "off_at",
                 "span_start", "ot_carry", "idle_since", "winding", "cell", "process", "preemptible",
                 "travel_expected")

    def __init__(self, uid: int, pool: "Pool", crew: Crew, post: tuple[float, float, int]):
        self.id, self.pool, self.crew, self.post = uid, pool, crew, post
        self.x, self.y, self.zone = post
        self.on_duty = self.busy = self.leaving = self.winding = False
        self.off_at = 0.0          # when its shift ended (while busy: overtime runs from here)
        self.span_start = 0.0      # start of the task span being worked now
        self.ot_carry = 0.0        # overtime of the current span already ended by a new shift
        self.idle_since = 0.0
        self.cell = None
        self.process = None        # the task process to interrupt on pre-emption
        self.preemptible = False
        self.travel_expected = 0.0  # the dispatcher's expected drive (minutes) for its last task


class VehiclePool:
    """Shared vehicles: a unit of a pool that needs one cannot leave without one."""

    def __init__(self, name: str, count: int):
        self.name, self.count, self.free = name, count, count
        self.pools: list[Pool] = []


# --------------------------------------------------------------------------- idle indexes
# Each index answers ``best(x, y, zone, key, ok)``: the (key, unit) of the idle unit with the
# smallest key (expected drive minutes, idle since, id) below ``key``, among units for which
# ``ok(unit)`` holds (``ok=None``: every unit), or None.


class _AnyIndex:
    """No geography: every idle unit is equally close; the one idle longest goes."""

    def __init__(self):
        self.units: dict[Unit, None] = {}

    def add(self, u: Unit) -> None:
        self.units[u] = None

    def remove(self, u: Unit) -> None:
        del self.units[u]

    def __iter__(self):
        return iter(self.units)

    def best(self, x, y, zone, key, ok):
        for u in self.units:
            if ok is None or ok(u):
                k = (0.0, u.idle_since, u.id)
                return (k, u) if k < key else None
        return None


class _ZoneIndex:
    """Matrix geography: idle units by zone; zones searched in order of matrix minutes to
    the call's zone, stopping once a zone is farther than the best unit found."""

    def __init__(self, matrix: list[list[float]]):
        n = len(matrix)
        self.matrix = matrix
        self.by_zone: list[dict[Unit, None]] = [{} for _ in range(n)]
        self.order = [sorted(range(n), key=lambda z, c=c: (matrix[z][c], z)) for c in range(n)]

    def add(self, u: Unit) -> None:
        self.by_zone[u.zone][u] = None

    def remove(self, u: Unit) -> None:
        del self.by_zone[u.zone][u]

    def __iter__(self):
        return itertools.chain.from_iterable(self.by_zone)

    def best(self, x, y, zone, key, ok):
        found = None
        m = self.matrix
        for z in self.order[zone]:
            t = m[z][zone]
            if t > key[0]:
                break
            for u in self.by_zone[z]:
                if ok is None or ok(u):
                    k = (t, u.idle_since, u.id)
                    if k < key:
                        key, found = k, u
                    break          # units of one zone are equally close: the first is idle longest
        return (key, found) if found is not None else None


class _GridIndex:
    """Km geography: idle units in square cells; a query looks at the cells around the call in
    order of their distance from it and stops at the first cell farther than the best unit
    found. Exact for both metrics: the cells are squares in coordinates where the metric is
    at least the distance along either axis (Euclidean: x, y; Manhattan: the rotated
    x + y, x - y, in which the Manhattan distance is exactly the larger of the two), so a
    cell's distance along the farther axis is a lower bound on the drive to any unit in it.
    Past ``RINGS`` cells from the call's cell (idle units sparse near the call) it scans every
    idle unit instead."""

    SCAN_BELOW = 12        # with this few idle units a plain scan is cheaper than the grid
    RINGS = 6              # cells searched at most this far (along either axis) before a plain scan

    def __init__(self, bbox: tuple[float, float, float, float], cell_km: float,
                 distance: Callable[[float, float, float, float], float], km_per_min: float):
        # the key must be the dispatcher's expected drive to the last bit, so the distance is
        # geography's own formula, written out here (no call per unit); see _consider
        self.manhattan = distance is _manhattan
        if not self.manhattan and distance is not _euclidean:
            raise ValueError("grid index: unknown distance")
        x0, y0, x1, y1 = bbox
        if self.manhattan:       # the bbox in rotated coordinates; cells of the same area
            x0, y0, x1, y1 = x0 + y0, x0 - y1, x1 + y1, x1 - y0
            cell_km *= math.sqrt(2.0)
        self.x0, self.y0, self.h = x0, y0, cell_km
        self.nx = nx = max(1, int((x1 - x0) // cell_km) + 1)
        self.ny = ny = max(1, int((y1 - y0) // cell_km) + 1)
        # the grid sits in a frame of RINGS empty cells, so that every cell searched is a fixed
        # offset of the cell number: no bounds to check (frame cells share one empty map)
        p = self.RINGS
        self.width = w = ny + 2 * p                       # cell (i, j) is number (i + p) * w + j + p
        self.cells: list = [_NOWHERE] * ((nx + 2 * p) * w)
        for i in range(nx):
            for j in range(ny):
                self.cells[(i + p) * w + j + p] = {}
        self._order = [tuple((q * cell_km, which, tuple(di * w + dj for di, dj in group))
                             for q, which, group in _search_order(p, side)) for side in range(8)]
        self.units: dict[Unit, None] = {}                # every idle unit (for a plain scan)
        # a cell is skipped when its bound exceeds the best drive by more than the bound's own
        # rounding (a few ulps of the coordinates): never a unit the exact key would prefer
        self._slack = 1e-9 * (abs(x0) + abs(y0) + (nx + ny) * cell_km + 1.0)
        self.v = km_per_min

    def _cell(self, x: float, y: float) -> tuple[int, int, float, float]:
        """The cell (i, j) of the point (x, y) in km, and the point's offset from the cell's
        lower corner in the grid's coordinates; a point outside the grid: the nearest cell."""
        if self.manhattan:
            x, y = x + y, x - y
        gx, gy = x - self.x0, y - self.y0
        i, j = int(gx // self.h), int(gy // self.h)
        i = 0 if i < 0 else (self.nx - 1 if i >= self.nx else i)
        j = 0 if j < 0 else (self.ny - 1 if j >= self.ny else j)
        return i, j, gx - i * self.h, gy - j * self.h

    def add(self, u: Unit) -> None:
        i, j, _, _ = self._cell(u.x, u.y)
        u.cell = c = (i + self.RINGS) * self.width + j + self.RINGS
        self.cells[c][u] = None
        self.units[u] = None

    def remove(self, u: Unit) -> None:
        del self.cells[u.cell][u]
        del self.units[u]

    def __iter__(self):
        return iter(list(self.units))

    def _consider(self, units, x, y, key, found, ok):
        v, best = self.v, key[0]
        manhattan = self.manhattan
        for u in units:
            # geography._manhattan / _euclidean of (u.x, u.y) -> (x, y), divided by the speed
            t = (abs(x - u.x) + abs(y - u.y)) / v if manhattan else math.hypot(x - u.x, y - u.y) / v
            if t > best:                     # farther than the best so far: no key to build
                continue
            k = (t, u.idle_since, u.id)
            if k < key and (ok is None or ok(u)):
                key, found, best = k, u, t
        return key, found

    def best(self, x, y, zone, key, ok):
        found = None
        if len(self.units) > self.SCAN_BELOW:
            h, cells, v, manhattan = self.h, self.cells, self.v, self.manhattan
            i, j, gx, gy = self._cell(x, y)
            base = (i + self.RINGS) * self.width + j + self.RINGS
            # the point's distances to the nearer edge of its cell along each axis (a point
            # outside the grid is taken at its cell's edge: its bounds only get smaller), and
            # which side of _search_order's eight that makes
            gx = 0.0 if gx < 0.0 else (h if gx > h else gx)
            gy = 0.0 if gy < 0.0 else (h if gy > h else gy)
            side = 0
            if h - gx < gx:
                gx, side = h - gx, 4
            if h - gy < gy:
                gy, side = h - gy, side + 2
            if gy < gx:
                gx, gy, side = gy, gx, side + 1
            near = (0.0, gx, gy, -gy, -gx)       # a cell's bound is q * h + near[which]
            slack = self._slack
            best_t = key[0]
            reach = best_t * v + slack
            for qh, which, group in self._order[side]:
                if qh + near[which] > reach:
                    return (key, found) if found is not None else None
                for off in group:
                    units = cells[base + off]
                    if units:      # (_consider, written out: one call fewer per cell)
                        for u in units:
                            t = (abs(x - u.x) + abs(y - u.y)) / v if manhattan else math.hypot(x - u.x, y - u.y) / v
                            if t > best_t:
                                continue
                            k = (t, u.idle_since, u.id)
                            if k < key and (ok is None or ok(u)):
                                key, found, best_t = k, u, t
                reach = best_t * v + slack
        # few idle units, or none found within RINGS cells: every idle unit is looked at
        key, found = self._consider(self.units, x, y, key, found, ok)
        return (key, found) if found is not None else None


@functools.lru_cache(maxsize=None)
def _search_order(rings: int, side: int) -> tuple[tuple[int, int, tuple[tuple[int, int], ...]], ...]:
    """The cells at most ``rings`` from a cell (offsets di, dj), in groups of equal distance
    bound from a point in it, nearest first: ``(q, which, offsets)``, the bound being
    ``q * h + (0, a, b, -b, -a)[which]`` for a cell of side h.

    ``a <= b <= h / 2`` are the point's distances to the nearer edge of its cell along two
    axes, ``side`` says which (bit 4: the nearer x edge is the upper one, bit 2: the nearer y
    edge is, bit 1: a is along y). Along an axis the cells at 0, +1, -1, +2, -2... steps
    towards the nearer edge are 0, a, h - a, h + a, 2h - a... away, and a cell's bound is the
    larger of its two axes'. Those values sort the same way for every a <= b <= h / 2 (0, a,
    b, h - b, h - a, h + a, h + b, 2h - b...), so each side has one fixed order: the search
    meets the cells in order of their bound and may stop at the first one beyond the best."""
    def rank(steps: int, axis: int) -> int:     # place in that order: axis 1 is a's, 2 is b's
        if steps == 0:
            return 0
        return 4 * (steps - 1) + axis if steps > 0 else 4 * -steps + 1 - axis
    sx, sy, swap = (1 if side & 4 else -1), (1 if side & 2 else -1), side & 1
    by_rank: dict[int, list[tuple[int, int]]] = {}
    for di in range(-rings, rings + 1):
        for dj in range(-rings, rings + 1):
            ca, cb = (dj * sy, di * sx) if swap else (di * sx, dj * sy)
            by_rank.setdefault(max(rank(ca, 1), rank(cb, 2)), []).append((di, dj))
    order = []
    for r in sorted(by_rank):            # rank 4k + m: bound k h + a, k h + b, (k+1) h - b, (k+1) h - a
        k, m = divmod(r, 4)
        q, which = (0, 0) if r == 0 else ((k, 4) if m == 0 else ((k + 1, 3) if m == 3 else (k, m)))
        order.append((q, which, tuple(by_rank[r])))
    return tuple(order)


# --------------------------------------------------------------------------- pools and tiers


class Pool:
    """The units of one kind, with the index of those idle now."""

    def __init__(self, name: str, index: int, schedule: WeeklySchedule, vehicles: VehiclePool | None,
                 make_index: Callable[[], object], police: bool = False, remote: bool = False,
                 return_to_base: bool = False, preempt_priority: int | None = None,
                 cutoff: tuple[float, int] | None = None):
        self.name, self.index = name, index
        self.schedule = schedule          # units on duty per minute of the week (sum of crews)
        self.vehicles = vehicles
        if vehicles is not None:
            vehicles.pools.append(self)
        self.idle = make_index()
        self.police, self.remote, self.return_to_base = police, remote, return_to_base
        self.preempt_priority = preempt_priority
        self.cutoff = cutoff              # (minutes before shift end, most urgent priority still taken)
        self.units: list[Unit] = []
        self.tiers: list[Tier] = []
        self.n_idle = 0
        self.n_on_duty = 0
        self.on_preemptible: dict[Unit, None] = {}

    def can_send(self) -> bool:
        return self.n_idle > 0 and (self.vehicles is None or self.vehicles.free > 0)

    def staffed_within(self, t: float, wait: float) -> bool:
        """Whether a unit is on duty now or comes on duty by ``t + wait``: a call does not
        wait for a pool that nobody will staff before its wait runs out."""
        if self.n_on_duty:
            return True
        # shifts start on whole minutes: someone is on duty within [t, t + wait] exactly when
        # a minute from floor(t) to floor(t + wait) has a unit on duty
        per_minute = self.schedule.per_minute
        start = int(math.floor(t))
        for m in range(start, min(int(math.floor(t + wait)), start + WEEK - 1) + 1):
            if per_minute[m % WEEK]:
                return True
        return False


class Tier:
    """Pools whose units compete on travel time, and one queue of waiting requests."""

    def __init__(self, index: int, pools: list[Pool]):
        self.index, self.pools = index, pools
        self.queue: list = []          # heap of (priority, seq, _Request)
        self.name = "+".join(p.name for p in pools)
        for p in pools:
            p.tiers.append(self)

    def on_duty(self) -> bool:
        return any(p.n_on_duty for p in self.pools)

    def can_send(self) -> bool:
        """Whether one of its pools has a unit it can send now."""
        for p in self.pools:
            if p.can_send():
                return True
        return False

    def head(self):
        """The first live entry of the queue (priority, seq, request), or None; requests
        whose wait ran out are left in the heap lazily and dropped here."""
        q = self.queue
        while q and q[0][2].done:
            heapq.heappop(q)
        return q[0] if q else None

    def staffed_within(self, t: float, wait: float | None) -> bool:
        if wait is None:
            wait = WEEK
        return any(p.staffed_within(t, wait) for p in self.pools)

    def waiting(self) -> int:
        return sum(1 for _, _, r in self.queue if not r.done)


class _Request:
    __slots__ = ("call", "priority", "x", "y", "zone", "event", "done")

    def __init__(self, call, priority, x, y, zone, event):
        self.call, self.priority, self.x, self.y, self.zone, self.event = call, priority, x, y, zone, event
        self.done = False


# --------------------------------------------------------------------------- the dispatcher


class Dispatcher:
    """One object for every request of a unit (see the module docstring for the rules)."""

    def __init__(self, env: simpy.Environment, drive_expected: Callable[[Unit, float, float, int], float]):
        self.env = env
        self.pools: list[Pool] = []
        self.units: list[Unit] = []
        self._tiers: dict[tuple[str, ...], Tier] = {}
        self._seq = itertools.count()
        self._drive = drive_expected      # (unit, x, y, zone) -> expected drive minutes
        self._pending: dict[int, Tier] = {}   # tiers to serve once this instant's shift starts are done
        self._flush_scheduled = False

    # --- building ---------------------------------------------------------------------

    def add_pool(self, pool: Pool, crews: list[Crew], posts: list[tuple[float, float, int]]) -> Pool:
        self.pools.append(pool)
        for crew, post in zip(crews, posts):
            u = Unit(len(self.units), pool, crew, post)
            self.units.append(u)
            pool.units.append(u)
        return pool

    def tier(self, pools: list[Pool]) -> Tier:
        """The tier of these pools (one queue per distinct set of pools, shared by paths)."""
        key = tuple(p.name for p in pools)
        t = self._tiers.get(key)
        if t is None:
            t = self._tiers[key] = Tier(len(self._tiers), pools)
        return t

    @property
    def tiers(self) -> list[Tier]:
        return list(self._tiers.values())

    # --- shifts -----------------------------------------------------------------------

    def come_on(self, u: Unit) -> None:
        """The crew's shift starts: fresh at its post, or carrying on with its task."""
        now = self.env.now
        if u.on_duty:
            return
        u.on_duty, u.winding = True, False
        u.pool.n_on_duty += 1
        if u.busy:
            if u.leaving:                      # overtime stops: the new shift has begun
                u.ot_carry += now - max(u.off_at, u.span_start)
                u.leaving = False
            return
        u.x, u.y, u.zone = u.post
        self._make_idle(u)
        # serve waiting calls once every crew starting at this instant is on duty, so that
        # the closest of them (not the first built) takes the oldest waiting call
        for t in u.pool.tiers:
            self._pending[id(t)] = t
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.env.timeout(0).callbacks.append(self._flush)

    def _flush(self, _event=None) -> None:
        self._flush_scheduled = False
        tiers, self._pending = list(self._pending.values()), {}
        self._serve(tiers)

    def wind_down(self, u: Unit) -> None:
        """Shift-end cut-off: from now on the unit takes only urgent calls."""
        if u.on_duty:
            u.winding = True

    def go_off(self, u: Unit) -> None:
        """The crew's shift ends: home if idle, else it finishes its task first."""
        if not u.on_duty:
            return
        u.on_duty = u.winding = False
        u.pool.n_on_duty -= 1
        if u.busy:
            u.leaving, u.off_at = True, self.env.now
        else:
            u.pool.idle.remove(u)
            u.pool.n_idle -= 1

    # --- finding a unit -----------------------------------------------------------------

    def _best(self, tier: Tier, x: float, y: float, zone: int, priority: int) -> Unit | None:
        pools = tier.pools
        if len(pools) == 1 and pools[0].cutoff is None:      # the common case: one pool, no cut-off
            pool = pools[0]
            if not pool.can_send():
                return None
            found = pool.idle.best(x, y, zone, _NO_KEY, None)
            if found is None:
                return None
            found[1].travel_expected = found[0][0]
            return found[1]
        key, best = _NO_KEY, None
        for pool in pools:
            if not pool.can_send():
                continue
            cut = pool.cutoff
            if cut is None or priority <= cut[1]:
                ok = None
            else:
                def ok(u):
                    return not u.winding
            found = pool.idle.best(x, y, zone, key, ok)
            if found is not None:
                key, best = found
        if best is not None:
            best.travel_expected = key[0]
        return best

    def _assign(self, u: Unit) -> Unit:
        pool = u.pool
        pool.idle.remove(u)
        pool.n_idle -= 1
        u.busy = True
        u.span_start = self.env.now
        u.ot_carry = 0.0
        if pool.vehicles is not None:
            pool.vehicles.free -= 1
        return u

    def take(self, tier: Tier, x: float, y: float, zone: int, priority: int) -> Unit | None:
        """The closest available unit now (or a pre-empted one for an urgent call), or None."""
        u = self._best(tier, x, y, zone, priority)
        if u is not None:
            return self._assign(u)
        return self._preempt(tier, x, y, zone, priority)

    def request(self, tier: Tier, call: int, priority: int, x: float, y: float, zone: int,
                max_wait: float | None) -> simpy.Event:
        """Wait in the tier's queue; the event's value is a Unit, or None when ``max_wait``
        runs out."""
        ev = self.env.event()
        r = _Request(call, priority, x, y, zone, ev)
        heapq.heappush(tier.queue, (priority, next(self._seq), r))
        if max_wait is not None:
            self.env.timeout(max_wait).callbacks.append(lambda _e, r=r: self._expire(r))
        return ev

    @staticmethod
    def _expire(r: _Request) -> None:
        if not r.done:
            r.done = True
            r.event.succeed(None)          # lazily left in the heap; skipped when reached

    def _serve(self, tiers: list[Tier]) -> None:
        """Hand available units to waiting requests: most urgent, then longest waiting,
        across the given tiers (a freed unit or vehicle may serve any of them)."""
        if len(tiers) == 1:                      # the common case: one tier
            tier = tiers[0]
            while tier.queue and tier.head() is not None and tier.can_send() and self._give_head(tier):
                pass                             # (``queue`` first: nobody waits, most often)
            return
        tiers = [t for t in tiers if t.queue]
        while tiers:
            best = None
            for t in tiers:
                head = t.head()
                if head is None or (best is not None and head[:2] >= best.queue[0][:2]):
                    continue
                if t.can_send():
                    best = t
            if best is None:
                return
            if not self._give_head(best):       # only cut-off units free: this tier waits
                tiers.remove(best)

    def _give_head(self, tier: Tier) -> bool:
        """The tier's first waiting request gets its closest available unit; False when only
        units inside a shift-end cut-off are free for it."""
        r = tier.queue[0][2]
        u = self._best(tier, r.x, r.y, r.zone, r.priority)
        if u is None:
            return False
        heapq.heappop(tier.queue)
        r.done = True
        r.event.succeed(self._assign(u))
        return True

    def _preempt(self, tier: Tier, x, y, zone, priority) -> Unit | None:
        best, key = None, (INF, INF)
        for pool in tier.pools:
            if pool.preempt_priority is None or priority > pool.preempt_priority:
                continue
            for u in pool.on_preemptible:
                if not u.on_duty:            # finishing its last task after its shift: not sent on
                    continue
                k = (self._drive(u, x, y, zone), u.id)
                if k < key:
                    best, key = u, k
        if best is None:
            return None
        best.pool.on_preemptible.pop(best, None)
        best.preemptible = False
        best.travel_expected = key[0]
        proc, best.process = best.process, None
        proc.interrupt("preempted")          # the task books its span and lets go of the unit
        best.span_start = self.env.now
        best.ot_carry = 0.0
        return best

    def set_preemptible(self, u: Unit, on: bool) -> None:
        """Mark a unit as working a follow-up or outreach contact (``process`` interrupts)."""
        if u.pool.preempt_priority is None:
            return
        if on:
            u.preemptible, u.process = True, self.env.active_process
            u.pool.on_preemptible[u] = None
        else:
            u.preemptible, u.process = False, None
            u.pool.on_preemptible.pop(u, None)

    # --- back in service ----------------------------------------------------------------

    def _make_idle(self, u: Unit) -> None:
        u.idle_since = self.env.now
        u.pool.idle.add(u)
        u.pool.n_idle += 1

    def release(self, u: Unit, x: float, y: float, zone: int) -> None:
        """The unit is back in service at (x, y, zone), or goes home if its shift ended."""
        pool = u.pool
        u.x, u.y, u.zone = x, y, zone
        u.busy = False
        if u.leaving:
            u.leaving = False
        elif u.on_duty:
            self._make_idle(u)
        if pool.vehicles is not None:
            pool.vehicles.free += 1
            tiers = {id(t): t for p in pool.vehicles.pools for t in p.tiers}
            self._serve(list(tiers.values()))
        else:
            for t in pool.tiers:               # (nobody waits, most often: nothing to serve)
                if t.queue:
                    self._serve(pool.tiers)
                    break


_NO_KEY = (INF, INF, INF)


def crew_process(env: simpy.Environment, disp: Dispatcher, u: Unit, cutoff_min: float | None):
    """SimPy process: the unit's crew comes on and goes off duty by its weekly hours."""
    events = []                          # (minute of week, order, action)
    for a, b in u.crew.intervals:
        events.append((a % WEEK, 1, disp.come_on))
        events.append((b % WEEK, 0, disp.go_off))
        if cutoff_min:
            events.append(((b - min(cutoff_min, b - a)) % WEEK, 2, disp.wind_down))
    events.sort(key=lambda e: (e[0], e[1]))
    # on duty at time 0 if an interval covers Monday 00:00 (or runs into it from Sunday)
    if any(a <= 0 < b or b > WEEK for a, b in u.crew.intervals):
        disp.come_on(u)
    week = 0
    while True:
        for minute, _, action in events:
            t = week * WEEK + minute
            if t <= env.now:             # (time 0 is the state set above)
                continue
            if t > env.now:
                yield env.timeout(t - env.now)
            action(u)
        week += 1
