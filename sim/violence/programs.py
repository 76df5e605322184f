"""Programs as capacity-limited SimPy processes that cancel shootings in a fixed history.

The no-program history (``history.py``) is replayed in time order. When a shooting's time
comes it is, in this order:

1. cancelled as an **ancestor** effect if the shooting that triggered it was cancelled
   (so a cancelled shooting removes all its descendants);
2. cancelled as **response** if a worker reached its parent in time and its own
   ``u_interrupt`` is below the parent's interruption probability;
3. cancelled by **thinning** if a program lowers its rate right now: the rate is
   multiplied by a factor f per active program (fellowship, canvassing, call-in,
   enforcement) and the shooting is prevented when ``u_prevent < 1 - prod(f)``; the
   interval is split program by program, so each prevented shooting has one reason;
4. otherwise it happens, and the response programs send workers to it.

Everything random the programs decide about a shooting is drawn per shooting in advance
(named streams), so a program that prevents nothing reproduces the history exactly, and
two program variants see the same shootings, notifications and travel times.

Staff pools are :class:`sim.resources.Pool` objects served by the engine's one
:class:`sim.resources.Dispatcher` (crews by weekly shifts, first come first served).
Each pool has weekly hour budgets per worker: responses spend the incident-response hours
first and then borrow from canvassing hours; what canvassing hours are left at the end of
the week is what was canvassed. All times are minutes (minute 0 = Monday 00:00).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import simpy

from ..resources import Dispatcher, Pool, _AnyIndex, crew_process
from ..shifts import crews_constant, crews_from_entries
from ..shifts import WEEK
from ..streams import Streams
from .history import History
from .schema import Canvassing, Fellowship, FocusedDeterrence, Response, Staff, ViolenceScenario

# outcomes of one response attempt; only "reached" can cancel retaliations
OUTCOMES = ("reached", "after_retaliation", "late", "no_worker", "no_hours", "not_notified")


@dataclass
class Outcome:
    """What the programs did in one replication."""

    cancelled: np.ndarray            # bool per shooting
    reason: np.ndarray               # object per shooting: None or why it was cancelled
    responses: list[tuple] = field(default_factory=list)  # see RESPONSE_COLUMNS
    actions: list[tuple] = field(default_factory=list)    # see ACTION_COLUMNS
    staff: list[dict] = field(default_factory=list)       # audit per staff pool
    enrol_start: np.ndarray | None = None   # minutes, per person (inf: never enrolled)
    enrol_end: np.ndarray | None = None
    slots: int = 0                   # fellowship caseload slots


RESPONSE_COLUMNS = ["shooting_id", "response", "shot_min", "assigned_min", "arrived_min", "outcome"]
ACTION_COLUMNS = ["time_min", "program", "action", "target", "value"]


class WeeklyBudget:
    """A staff pool's hours for the current week (minutes), reset every Monday 00:00.

    Without an ``incident_response`` budget, responses are limited by shifts only.
    """

    def __init__(self, staff: Staff):
        h = staff.hours_per_week
        self.limited = "incident_response" in h
        self.response_week = staff.workers * h.get("incident_response", 0.0) * 60.0
        self.canvass_week = staff.workers * h.get("canvassing", 0.0) * 60.0
        self.reset(1.0)

    def reset(self, fraction: float) -> None:
        """Start a week; ``fraction`` < 1 for a week the program joins part-way."""
        self.response_left = self.response_week * fraction
        self.canvass_left = self.canvass_week * fraction

    def can_respond(self) -> bool:
        return not self.limited or self.response_left + self.canvass_left > 0

    def spend(self, minutes: float) -> None:
        """Responses use their own hours first, then borrow canvassing hours."""
        if not self.limited:
            return
        own = min(minutes, max(self.response_left, 0.0))
        self.response_left -= own
        self.canvass_left = max(0.0, self.canvass_left - (minutes - own))


class ProgramRun:
    """One replication of the programs over a given history."""

    def __init__(self, s: ViolenceScenario, history: History, streams: Streams):
        self.s, self.h = s, history
        n = len(history)
        self.cancelled = np.zeros(n, dtype=bool)
        self.reason = np.full(n, None, dtype=object)
        self.p_interrupt = np.zeros(n)   # chance each retaliation of this shooting is cancelled
        self.first_child = history.first_child_time()
        self.out = Outcome(self.cancelled, self.reason)
        self.env = simpy.Environment()
        self.streams = streams
        p = s.programs
        self.group_area = np.array([s.areas().index(g.area) for g in s.groups.values()])
        people = len(history.people.risk)
        self.enrol_start = np.full(people, np.inf)
        self.enrol_end = np.full(people, np.inf)
        self.call_in_until = np.full(len(s.groups), -np.inf)
        self.enforced_until = np.full(len(s.groups), -np.inf)
        self.coverage: list[np.ndarray] = []   # canvassing coverage per area, one per week
        used = p.staff_used() if p else []
        self.budgets = {name: WeeklyBudget(s.staff[name]) for name in used}
        # the first week's budget is for the part of the week left when the program starts
        self.next_week = (np.floor(s.start_min / WEEK) + 1) * WEEK
        for b in self.budgets.values():
            b.reset((self.next_week - s.start_min) / WEEK)
        self.pools: dict[str, Pool] = {}
        self.tiers = {}
        self.busy_spans: dict[str, list[tuple[float, float]]] = {}
        self.disp = Dispatcher(self.env, lambda *_: 0.0)
        for k, name in enumerate(sorted({r.staff for r in p.responses.values()}) if p else []):
            staff = s.staff[name]
            crews = crews_from_entries(staff.shifts) if staff.shifts else crews_constant(staff.workers)
            pool = self.disp.add_pool(Pool(name, k, staff.schedule(), None, _AnyIndex), crews,
                                      [(0.0, 0.0, 0)] * len(crews))
            for u in pool.units:
                if u.crew.always:
                    self.disp.come_on(u)
                elif u.crew.intervals:
                    self.env.process(crew_process(self.env, self.disp, u, None))
            self.pools[name] = pool
            self.tiers[name] = self.disp.tier([pool])
            self.busy_spans[name] = []
        self.responses = []
        for name, r in (p.responses.items() if p else []):
            u = streams.rng(f"violence.response.{name}").random((n, 4))
            self.responses.append((name, r, u[:, 0], r.notify_delay_min.sample(u[:, 1]),
                                   r.travel_min.sample(u[:, 2]), r.busy_min.sample(u[:, 3])))

    # --- the replay ----------------------------------------------------------------

    def run(self) -> Outcome:
        s, p, env = self.s, self.s.programs, self.env
        if p is None:
            return self.out
        env.process(self._arrivals())
        env.process(self._weeks())
        if p.fellowship:
            env.process(self._fellowship(p.fellowship))
        if p.focused_deterrence:
            env.process(self._deterrence(p.focused_deterrence))
        env.run(until=s.end_min)
        self._audit()
        return self.out

    def _arrivals(self):
        env, h = self.env, self.h
        # before the programs start nothing can be cancelled: skip straight to the start
        for i in range(int(np.searchsorted(h.time, self.s.start_min)), len(h)):
            if h.time[i] > env.now:
                yield env.timeout(h.time[i] - env.now)
            self._arrive(i)

    def _arrive(self, i: int) -> None:
        h, parent = self.h, self.h.parent[i]
        if parent >= 0 and self.cancelled[parent]:
            return self._cancel(i, "ancestor")
        if parent >= 0 and h.u_interrupt[i] < self.p_interrupt[parent]:
            return self._cancel(i, "response")
        reason = self._thinned(i)
        if reason:
            return self._cancel(i, reason)
        self._enforce(i)
        for name, r, *draws in self.responses:
            if r.victims == "all" or not h.fatal[i]:
                self.env.process(self._respond(i, name, r, *draws))

    def _cancel(self, i: int, reason: str) -> None:
        self.cancelled[i] = True
        self.reason[i] = reason

    def _thinned(self, i: int) -> str | None:
        """Why shooting ``i`` is prevented by a rate reduction, or None."""
        h, t, p = self.h, self.h.time[i], self.s.programs
        g = h.group[i]
        factors = []
        if p.fellowship and self.enrol_start[h.person[i]] <= t < self.enrol_end[h.person[i]]:
            factors.append(("fellowship", p.fellowship.rate_factor))
        if p.canvassing and h.generation[i] == 0:
            factors.append(("canvassing", 1.0 - self._canvass_reduction(p.canvassing, self.group_area[g])))
        if p.focused_deterrence:
            fd = p.focused_deterrence
            if self.call_in_until[g] > t:
                factors.append(("call_in", fd.rate_factor))
            if fd.enforcement and self.enforced_until[g] > t:
                factors.append(("enforcement", fd.enforcement.rate_factor))
        # thinning by prod(f), the interval [0, 1 - prod f) split program by program
        u, cut, keep = h.u_prevent[i], 0.0, 1.0
        for reason, f in factors:
            cut += keep * (1.0 - f)
            if u < cut:
                return reason
            keep *= f
        return None

    # --- responses -----------------------------------------------------------------

    def _respond(self, i, name: str, r: Response, u_notified, notify_delay, travel, busy):
        env, t0 = self.env, self.h.time[i]
        window = r.window_h * 60.0
        log = self.out.responses
        if u_notified[i] >= r.notified:
            log.append((i, name, t0, np.nan, np.nan, "not_notified"))
            return
        if notify_delay[i] > 0:
            yield env.timeout(notify_delay[i])
        pool, budget = self.pools[r.staff], self.budgets[r.staff]
        if not budget.can_respond():
            log.append((i, name, t0, np.nan, np.nan, "no_hours"))
            return
        wait = window - (env.now - t0)
        tier = self.tiers[r.staff]
        team = self.disp.take(tier, 0.0, 0.0, 0, 1) if wait >= 0 else None
        if team is None and wait > 0:
            team = yield self.disp.request(tier, i, 1, 0.0, 0.0, 0, wait)
        if team is None:
            log.append((i, name, t0, np.nan, np.nan, "no_worker" if wait >= 0 else "late"))
            return
        assigned = env.now
        budget.spend(travel[i] + busy[i])
        yield env.timeout(travel[i])
        arrived = env.now
        if arrived - t0 > window:
            outcome = "late"
        elif arrived >= self.first_child[i]:
            outcome = "after_retaliation"
        else:
            outcome = "reached"
            self.p_interrupt[i] = 1.0 - (1.0 - self.p_interrupt[i]) * (1.0 - r.effect)
        log.append((i, name, t0, assigned, arrived, outcome))
        yield env.timeout(busy[i])
        self.busy_spans[r.staff].append((assigned, env.now))
        self.disp.release(team, 0.0, 0.0, 0)

    # --- weekly budgets and canvassing ---------------------------------------------

    def _weeks(self):
        """Reset hour budgets every Monday; record what canvassing the week delivered."""
        env, s = self.env, self.s
        next_week = self.next_week
        c = s.programs.canvassing
        areas = s.areas()
        covered = [areas.index(a) for a in (c.areas or areas)] if c else []
        while True:
            yield env.timeout(next_week - env.now)
            if c:
                hours = self.budgets[c.staff].canvass_left / 60.0 / len(covered)
                cov = np.zeros(len(areas))
                cov[covered] = min(1.0, hours / c.full_coverage_hours_per_week)
                self.coverage.append(cov)
                for a in covered:
                    self.out.actions.append((env.now, "canvassing", "week", areas[a], float(cov[a])))
            for b in self.budgets.values():
                b.reset(1.0)
            next_week += WEEK

    def _canvass_reduction(self, c: Canvassing, area: int) -> float:
        """Share of background shootings prevented in ``area`` now: effect x mean
        coverage of the last ``cooling_days`` (weeks before the program count as 0)."""
        k = max(1, round(c.cooling_days / 7.0))
        recent = self.coverage[-k:]
        return c.effect * sum(cov[area] for cov in recent) / k

    # --- fellowship ----------------------------------------------------------------

    def _fellowship(self, f: Fellowship):
        env = self.env
        yield env.timeout(self.s.start_min)
        risk = self.h.people.risk
        take_up = self.streams.rng("violence.fellowship").random(len(risk))
        # candidates in order of risk: the program is assumed to know who is most at risk
        self._candidates = iter(np.argsort(-risk, kind="stable"))
        self.out.slots = self.s.staff[f.staff].workers * f.caseload
        for _ in range(self.out.slots):
            env.process(self._slot(f, take_up))

    def _slot(self, f: Fellowship, take_up: np.ndarray):
        env, log = self.env, self.out.actions
        for person in self._candidates:
            if take_up[person] >= f.take_up:
                log.append((env.now, "fellowship", "declined", str(person), np.nan))
                continue
            self.enrol_start[person] = env.now
            self.enrol_end[person] = env.now + f.duration_days * 1440.0
            log.append((env.now, "fellowship", "enrolled", str(person), float(self.h.people.risk[person])))
            yield env.timeout(f.duration_days * 1440.0)

    # --- focused deterrence --------------------------------------------------------

    def _deterrence(self, fd: FocusedDeterrence):
        env, h = self.env, self.h
        names = list(self.s.groups)
        yield env.timeout(self.s.start_min + fd.first_call_in_days * 1440.0)
        while True:
            # group audit: who shot most in the last audit_days (shootings that happened)
            now = env.now
            seen = (h.time >= now - fd.audit_days * 1440.0) & (h.time < now) & ~self.cancelled
            counts = np.bincount(h.group[seen], minlength=len(names))
            for g in np.argsort(-counts, kind="stable")[:fd.groups_per_call_in]:
                if counts[g] > 0:
                    self.call_in_until[g] = now + fd.effect_days * 1440.0
                    self.out.actions.append((now, "focused_deterrence", "call_in", names[g], float(counts[g])))
            yield env.timeout(fd.interval_days * 1440.0)

    def _enforce(self, i: int) -> None:
        """A called-in group that shoots again gets the enforcement branch."""
        fd = self.s.programs.focused_deterrence
        g, t = self.h.group[i], self.h.time[i]
        if fd and fd.enforcement and self.call_in_until[g] > t and self.enforced_until[g] <= t:
            self.enforced_until[g] = t + fd.enforcement.duration_days * 1440.0
            self.out.actions.append((t, "focused_deterrence", "enforcement", list(self.s.groups)[g], float(i)))

    # --- audit ---------------------------------------------------------------------

    def _audit(self) -> None:
        s, t0, t1 = self.s, self.s.start_min, self.s.end_min
        self.out.enrol_start, self.out.enrol_end = self.enrol_start, self.enrol_end
        for name in self.budgets:
            pool = self.pools.get(name)
            on_duty = s.staff[name].schedule().team_minutes(t0, t1)
            self.out.staff.append({
                "staff": name, "workers": s.staff[name].workers, "on_duty_min": on_duty,
                "response_busy_min": sum(max(0.0, min(b, t1) - max(a, t0))
                                         for a, b in self.busy_spans.get(name, []))})


def apply_programs(s: ViolenceScenario, history: History, streams: Streams) -> Outcome:
    """Replay ``history`` under the scenario's programs (none: nothing is cancelled)."""
    return ProgramRun(s, history, streams).run()
