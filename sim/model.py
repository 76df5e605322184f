"""One replication: build the system from a Scenario and run it.

``Model(scenario, seed, replication).run()`` returns a :class:`RunResult` with

* ``calls``  - one row per call (every call is a row, including those nobody answered);
* ``assignments`` - one row per unit per task (answering unit, desk seat, backup,
  desk-sent second unit, transport leg, scene visit, follow-up, outreach contact), the one
  record of work everything else about units is derived from;
* ``units``  - one row per unit: pool, crew, post;
* ``pools``  - the resource audit derived from ``assignments`` (``metrics.resource_audit``):
  per pool, on-duty and busy team-minutes over the measured window, overtime, staffed
  cost, calls served;
* ``hourly`` - per pool and hour of the week, on-duty and busy team-minutes (for the
  utilisation-by-hour chart), from the same rows.

Times are minutes from Monday 00:00 of week 0. Calls arriving during the warm-up are in
the log with ``warmup=True`` and left out of KPIs.
"""
from __future__ import annotations

import math
import struct
import time
from array import array
from dataclasses import dataclass, field
from functools import partial
from itertools import count, repeat

import numpy as np
import pandas as pd
import simpy

from .aftercare import FOLLOWUP_NAMES, CaseManagement, Facility, outreach
from .arrivals import CallSource
from .calllog import LogFiles, release_memory
from .callpath import (BACKUP, FOLLOW_UP, OUTCOME_NAMES, REASON_NAMES, RESOLVED, TRANSPORT, UNFINISHED,
                       CallInputs, call_process)
from .geography import Geography
from .metrics import TASKS, StreamTotals, add_call_columns, hourly_audit, resource_audit, step_integral
from .record import Record
from .resources import Dispatcher, Pool, Tier, VehiclePool, _AnyIndex, _GridIndex, _ZoneIndex, crew_process
from .scenario import Scenario
from .streams import KeyedUniforms, Streams

NAN = math.nan
CHUNK = 4096        # calls whose inputs become Python objects at once (see Model._chunk_inputs)
# the per-call uniforms the call path reads (``CallInputs.u_<purpose>``)
CHUNK_DRAWS = ("processing", "turnout", "travel", "on_scene", "outcome", "consult", "destination", "consent",
               "handover", "prevent", "escalate")
_TASK_CODE = {name: k for k, name in enumerate(TASKS)}
# a tuple of values as CallInputs (tuple.__new__: no Python-level call per call)
_call_inputs = partial(tuple.__new__, CallInputs)
_SPAN = struct.Struct("16d").pack   # one span of the assignments log as 16 doubles (128 bytes)


# what every recorded column of the call log holds before anything is recorded
_DEFAULTS = {
    "t_triaged": NAN, "t_dispatched": NAN, "t_on_scene": NAN, "t_callback": NAN, "t_cleared": NAN,
    "t_team_free": NAN, "desk_wait": NAN, "unit": -1, "tier": -1, "fallback_reason": 0,
    "waiting_for": -1,
    "police_on_scene": False,
    "outcome": UNFINISHED, "backup": False, "backup_unit": -1, "backup_delay": NAN, "backup_on_scene": NAN,
    "second_pool": -1, "second_unit": -1, "t_second_dispatched": NAN, "t_second_on_scene": NAN,
    "t_second_free": NAN, "second_unavailable": False,
    "destination": -1, "consent_refused": False, "transport_diverted": False,
    "door_wait": NAN, "t_handover": NAN, "stay": NAN, "followup": 0, "t_followup_done": NAN, "followup_preempted": 0,
    "escalated": False, "t_scene_visit": NAN, "advocacy": False,
}


class _CPool:
    """A pool's per-call-type lookups, compiled once (samplers, outcome thresholds)."""

    def __init__(self, s: Scenario, name: str, type_names: list[str]):
        p = s.pools[name]
        self.on_scene = [p.on_scene(t).sampler() for t in type_names]
        self.backup_on_scene = ([p.backup_on_scene_min.sampler()] * len(type_names)
                                if p.backup_on_scene_min else self.on_scene)
        self.takes = {k for k, t in enumerate(type_names) if p.takes_type(t)}
        self.thresholds = []
        for t in type_names:
            o = p.outcome(t)
            self.thresholds.append(np.cumsum([o.resolved, o.backup, o.transport, o.follow_up]).tolist())
        self.cost_per_hour = sum(s.roles[r].hourly_cost for r in p.roles)
        self.remote = p.remote
        self.transport = p.transport
        self.follow_ups = _CFollowUps(p.follow_ups, p.remote) if p.follow_ups else None
        self.escalation = _CEscalation(p.escalation) if p.escalation else None
        self.outreach_on_scene = p.outreach.on_scene_min.sampler() if p.outreach else None
        self._dest_cum: list[float] = []
        self._dest: list = []

    def link_facilities(self, facilities: dict) -> None:
        if self.transport:
            names = list(self.transport.destinations)
            self._dest = [facilities[n] for n in names]
            self._dest_cum = np.cumsum([self.transport.destinations[n] for n in names]).tolist()

    def pick_destination(self, u: float):
        for fac, c in zip(self._dest, self._dest_cum):
            if u < c:
                return fac
        return self._dest[-1]

    def outcome(self, ctype: int, u: float) -> int:
        th = self.thresholds[ctype]
        if u < th[0]:
            return RESOLVED
        if u < th[1]:
            return BACKUP
        if u < th[2]:
            return TRANSPORT
        return FOLLOW_UP


class _CEscalation:
    def __init__(self, spec):
        self.share, self.advocacy_share = spec.share, spec.advocacy_share
        self.on_scene = spec.on_scene_min.sampler()
        self.advocacy = spec.advocacy_min.sampler()


class _CFollowUps:
    def __init__(self, spec, remote: bool):
        self.share, self.priority, self.remote = spec.share, spec.priority, remote
        self.by = spec.by
        self.pool: Pool | None = None     # set when pools exist; None = the contact's pool
        self.delay = spec.delay_min.sampler()
        self.expires = spec.expires_after_min
        self.on_scene = spec.on_scene_min.sampler()


@dataclass
class _CConsult:
    desk: Tier
    desk_service: object
    tier: Tier             # the desk-sent second pool
    p_second: float
    max_wait: float | None
    hands_over: bool
    otherwise: int


@dataclass
class _CPath:
    name: str
    tiers: list            # [(Tier, max wait or None)]
    desk: Tier | None = None
    desk_service: object = None
    consult: _CConsult | None = None


@dataclass
class RunResult:
    """What one replication produced (tidy DataFrames) and how it ran."""

    calls: pd.DataFrame
    pools: pd.DataFrame
    hourly: pd.DataFrame
    assignments: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per unit per task
    units: pd.DataFrame = field(default_factory=pd.DataFrame)        # unit, pool, crew, post
    facilities: pd.DataFrame = field(default_factory=pd.DataFrame)   # audit per facility
    occupancy: pd.DataFrame = field(default_factory=pd.DataFrame)    # facility, t, occupied, beds
    info: dict = field(default_factory=dict)
    # streamed: the KPIs' running aggregates, fed each row group as it was written
    totals: StreamTotals | None = None


class Model:
    """One replication of a scenario."""

    def __init__(self, scenario: Scenario, seed: int | None = None, replication: int = 0,
                 stream: LogFiles | None = None):
        """``stream``: write the call log and the assignments log to these Parquet files while
        the run goes (``sim/calllog.py``); the result then holds their columns with no rows,
        and its audits are computed from the files."""
        self.s = scenario
        self.seed = scenario.seed if seed is None else int(seed)
        self.replication = int(replication)
        self.stream = stream

    # --- helpers used by the call path ----------------------------------------------

    def draw_person(self, stream: str) -> int:
        """A person id from the population by call propensity, or -1 without one."""
        if self._person_cum is None:
            return -1
        u = self.draw(stream) * self._person_cum[-1]
        return int(min(np.searchsorted(self._person_cum, u, side="right"), len(self._person_cum) - 1))

    def draw(self, stream: str) -> float:
        """One U(0,1) from a named buffered stream (for draws not pre-made per call)."""
        return self.streams.uniform(stream)()

    def ku(self, call: int, role: int) -> float:
        """A U(0,1) keyed to (call, role): the same for that call in every configuration."""
        return self._keyed(call, role)

    # --- the record of work: spans of units on tasks --------------------------------

    def open(self, unit, task: str, call: int, t_requested: float, priority: int) -> list:
        """Start a span of ``unit`` on ``task`` now (a list the task fills in and closes)."""
        now = self.env.now
        unit.span_start = now
        texp, unit.travel_expected = unit.travel_expected, NAN   # only a dispatch has one
        span = [_TASK_CODE[task], call, unit, t_requested, now, NAN, unit.x, unit.y, texp, priority]
        self._open[id(span)] = span
        return span

    def arrived(self, span: list, t: float | None = None) -> None:
        """The unit of ``span`` reached the call, at ``t`` (default: now)."""
        span[5] = self.env.now if t is None else t

    def close(self, span: list, preempted: bool = False, open_at_end: bool = False) -> None:
        """End the span now and book it, with the overtime worked in it past the crew's
        shift end (booked to that crew)."""
        del self._open[id(span)]
        now = self.env.now
        u = span[2]
        ot = u.ot_carry
        if u.leaving:
            ot += now - max(u.off_at, span[4])
        u.ot_carry = 0.0
        u.span_start = now
        self.work.frombytes(_SPAN(span[1], span[0], u.id, span[3], span[4], span[5], now, ot, preempted,
                                  span[6], span[7], u.x, u.y, span[8], span[9], open_at_end))

    def finish(self, unit, x: float, y: float, zone: int, span: list, call: int | None,
               role: int | None, answering: bool = False):
        """The unit leaves: back to its post if its pool does that, books its span, then is
        back in service. (A generator: use ``yield from``.)"""
        if unit.pool.return_to_base:
            bx, by, bz = unit.post
            u = self.ku(call, role) if call is not None and role is not None else self.draw("return/travel")
            d = self.geo.drive(x, y, zone, bx, by, bz, u)
            if d > 0:
                yield self.env.timeout(d)
            x, y, zone = bx, by, bz
        self.free(unit, x, y, zone, span, call, answering)

    def free(self, unit, x: float, y: float, zone: int, span: list, call: int | None,
             answering: bool = False) -> None:
        """The unit is back in service where it is (no drive): its span is booked."""
        if self.no_geography:
            zone = 0
        unit.x, unit.y, unit.zone = x, y, zone
        self.close(span)
        if answering:
            self.rec["t_team_free"][call] = self.env.now
        self.disp.release(unit, x, y, zone)

    def hold(self, call: int) -> None:
        """Something the call started (a follow-up, a drive back) keeps it open; it ends
        with its own :meth:`call_closed`."""
        self.open_calls += 1
        self.record.hold(call)

    def call_closed(self, call: int | None = None) -> None:
        """A call's process (or something it started) ended; ``None``: an outreach contact."""
        self.open_calls -= 1
        if call is not None:
            self.record.release(call)
        if self.open_calls == 0 and self.arrivals_done and not self.done.triggered:
            self.done.succeed()

    # --- build ----------------------------------------------------------------------

    def _build(self) -> None:
        s = self.s
        self.env = env = simpy.Environment()
        self.streams = Streams(self.seed, self.replication)
        self.source = CallSource(s, self.streams)
        self.geo = geo = Geography(s)
        self.no_geography = geo.model == "none"
        type_names = self.source_types = self.source.type_names
        # the call log's channels: the scenario's, and 'outreach' for proactive contacts
        self.channel_names = list(self.source.channel_names)
        zone_names = list(s.zones)

        self.vehicles = {name: VehiclePool(name, n) for name, n in s.vehicles.items()}
        self.pool_names = list(s.pools)
        self.disp = disp = Dispatcher(env, lambda u, x, y, z: geo.drive_expected(u.x, u.y, u.zone, x, y, z))
        crews = {name: p.crews() for name, p in s.pools.items()}
        posts = {name: [geo.post(c.post) for c in cs] for name, cs in crews.items()}
        make_index = self._index_factory(geo, [pt[:2] for ps in posts.values() for pt in ps])
        self.pools: dict[str, Pool] = {}
        for k, (name, p) in enumerate(s.pools.items()):
            cut = p.shift_end_cutoff
            pool = Pool(name, k, p.schedule(), self.vehicles.get(p.vehicles) if p.vehicles else None,
                        lambda n=len(crews[name]): make_index(n), police=s.pool_is_police(name),
                        remote=p.remote, return_to_base=p.after_call == "return_to_base",
                        preempt_priority=p.preemption.priority if p.preemption else None,
                        cutoff=(cut.minutes, cut.except_priority) if cut else None)
            self.pools[name] = disp.add_pool(pool, crews[name], posts[name])
        self.cpools = [_CPool(s, name, type_names) for name in self.pool_names]
        self.pool_police = [s.pool_is_police(name) for name in self.pool_names]
        self.desks: dict[str, Pool] = {}
        for j, (name, d) in enumerate(s.triage.desks.items()):
            desk_crews = d.crews()
            self.desks[name] = disp.add_pool(
                Pool(f"desk:{name}", len(self.pool_names) + j, d.schedule(), None, _AnyIndex),
                desk_crews, [(0.0, 0.0, 0)] * len(desk_crews))
        self.desk_tiers = {name: disp.tier([pool]) for name, pool in self.desks.items()}
        self.facilities: dict[str, Facility] = {}
        for j, (name, f) in enumerate(s.facilities.items()):
            self.facilities[name] = Facility(self, name, j, f, geo.place(f.zone))
        for name, f in s.facilities.items():
            fac = self.facilities[name]
            fac.divert_to = self.facilities[f.divert_to] if f.divert_to else None
            fac.step_down = (self.facilities[f.step_down.to], f.step_down.probability) if f.step_down else None
        self.followup_tier: dict[int, Tier] = {}
        for k, cp in enumerate(self.cpools):
            cp.link_facilities(self.facilities)
            if cp.follow_ups is not None:
                by = cp.follow_ups.by
                cp.follow_ups.pool = self.pools[by] if by else self.pools[self.pool_names[k]]
                self.followup_tier[k] = disp.tier([cp.follow_ups.pool])
        cm = s.case_management
        self.casemgmt = CaseManagement(cm, None if cm.pools == "all" else {
            self.pool_names.index(p) for p in cm.pools}) if cm else None
        from .arrivals import person_weights
        w = person_weights(s, self.streams)
        self._person_cum = np.cumsum(w) if w is not None else None
        self.type_index = {t: k for k, t in enumerate(type_names)}
        self.outreach_rows: list[tuple] = []
        self.backup_tier = disp.tier([self.pools[s.backup.pool]]) if s.backup else None
        self.backup_priority = s.backup.priority if s.backup else 1

        self.paths: dict[str, _CPath] = {}
        for name, p in s.triage.paths.items():
            consult = None
            if p.consult:
                c = p.consult
                consult = _CConsult(self.desk_tiers[c.desk], s.triage.desks[c.desk].service_min.sampler(),
                                    disp.tier([self.pools[c.second_pool]]), c.p_second, c.max_wait_min,
                                    c.first_unit == "hands_over", OUTCOME_NAMES.index(c.otherwise))
            self.paths[name] = _CPath(
                name, [(disp.tier([self.pools[q] for q in tier]), w) for tier, w in zip(p.tier_pools(), p.waits())],
                self.desk_tiers[p.desk] if p.desk else None,
                s.triage.desks[p.desk].service_min.sampler() if p.desk else None, consult)
        self.processing = s.triage.processing_min.sampler()
        # skip whole steps that cannot take time (validation models have neither)
        self.has_processing = s.triage.processing_min.kind != "fixed" or s.triage.processing_min.fixed > 0
        turnout = s.travel.turnout_min
        self.has_travel = geo.model != "none" or turnout.kind != "fixed" or turnout.fixed > 0
        self._keyed = KeyedUniforms(self.seed, self.replication)
        # the assignments log: 16 numbers per span (see close), packed as C doubles
        self.work = array("d")
        self._open: dict[int, list] = {}     # spans not closed yet

        # screening (each call's path, with misclassification) as tables by call type, zone
        path_names = list(s.triage.paths)
        # path by (call type, zone): paths may be limited to some zones (a pilot area)
        self._path_of = np.array([[path_names.index(s.path_of(t, z)) for z in zone_names] for t in type_names],
                                 dtype=np.int64)
        self._misroutes = [(pi, np.array([m.p(t) for t in type_names]), path_names.index(m.to))
                           for pi, m in enumerate(s.triage.paths[p].misroute for p in path_names) if m is not None]
        self.path_names = path_names
        self._priority_of = np.array([s.call_types[t].priority for t in type_names], dtype=np.int64)
        self._path_objects = np.empty(len(path_names), dtype=object)
        self._path_objects[:] = [self.paths[name] for name in path_names]
        # per-call inputs: numpy columns for a block of calls (a week, ``arrivals.CallSource``),
        # turned into one CallInputs tuple per call a chunk at a time as calls arrive, each held
        # by its call's process alone (the Python objects exist only for about a chunk and the
        # calls in flight, not for the whole horizon). Only the inputs this scenario's call path
        # can read are made (a validation M/M/c reads 9 of the 19): the others are None.
        cm_on = self.casemgmt is not None
        transports = any(cp.transport for cp in self.cpools)
        read = {"person": cm_on, "u_processing": self.has_processing,
                "u_turnout": self.has_travel, "u_travel": self.has_travel,
                "u_consult": any(p.consult for p in s.triage.paths.values()),
                "u_destination": transports, "u_consent": transports, "u_handover": transports,
                "u_prevent": cm_on, "u_escalate": any(cp.escalation is not None for cp in self.cpools)}
        self._read_inputs = [read.get(name, True) for name in CallInputs._fields]
        self._inputs: list[np.ndarray | None] = []
        # what the call log keeps of each block's calls until they are all written: (first
        # call id, columns); streaming drops a block once its last call is in the file
        self._blocks: list[tuple[int, dict[str, np.ndarray]]] = []

        # the record: values of calls in flight (sim/record.py); finished calls' values are
        # retired into numpy batches at each sweep
        self.record = Record(_DEFAULTS)
        self.rec = self.record.cols
        self._batches: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []
        self._batch_rows = 0
        self._written = 0                 # calls streamed to the call log file so far
        self.n_reactive = len(self.source)   # calls from arrivals; outreach rows come after

    def _start_block(self, first: int, c) -> np.ndarray:
        """Calls ``first``.. of one block (:class:`arrivals.Calls`): their paths screened,
        their hot-loop inputs ready for :meth:`_chunk_inputs`, the columns the call log keeps
        of them put aside; returns their arrival times."""
        true_path = self._path_of[c.call_type, c.zone]
        screened = true_path.copy()
        for pi, p_by_type, to in self._misroutes:
            hit = (screened == pi) & (c.u["misroute"] < p_by_type[c.call_type]) & (true_path == pi)
            screened = np.where(hit, to, screened)
        priority = self._priority_of[c.call_type]
        inputs = {"call_path": self._path_objects[screened], "x": c.x, "y": c.y, "zone": c.zone,
                  "ctype": c.call_type, "person": c.person, "priority": priority,
                  # the dispatch zone: the call's zone, or one zone for a city without geography
                  "dzone": np.zeros(len(c), dtype=np.int64) if self.no_geography else c.zone,
                  **{f"u_{p}": c.u[p] for p in CHUNK_DRAWS}}
        self._inputs = [inputs[name] if r else None for name, r in zip(CallInputs._fields, self._read_inputs)]
        self._blocks.append((first, {"t": c.t, "channel": c.channel, "call_type": c.call_type, "zone": c.zone,
                                     "x": c.x, "y": c.y, "person": c.person, "priority": priority,
                                     "path": screened, "misrouted": screened != true_path}))
        return c.t

    def _chunk_inputs(self, a: int, b: int):
        """The CallInputs of the current block's calls a..b-1, one tuple per call, in order."""
        cols = [repeat(None) if v is None else v[a:b].tolist() for v in self._inputs]
        return map(_call_inputs, zip(*cols))

    def _kept(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        """The kept input columns of calls ``ids`` (sorted), gathered from their blocks."""
        if len(self._blocks) == 1 and len(ids) == len(self._blocks[0][1]["t"]):
            return dict(self._blocks[0][1])          # all of the one block: the arrays as they are
        cuts = np.searchsorted(ids, [f + len(cols["t"]) for f, cols in self._blocks])
        out = {}
        for name in self._blocks[0][1] if self._blocks else ():
            parts, lo = [], 0
            for (first, cols), hi in zip(self._blocks, cuts):
                if hi > lo:
                    parts.append(cols[name][ids[lo:hi] - first])
                lo = hi
            out[name] = np.concatenate(parts) if parts else cols[name][:0]
        return out

    def _drop_written_blocks(self) -> None:
        """Streaming: forget the blocks whose calls are all in the file."""
        # the block whose calls are being started is the last one, and always kept; every call
        # of the blocks before it has started, and is written unless it is in the record
        low = min(min(self.record.holds, default=math.inf), min(self.record.done, default=math.inf))
        while len(self._blocks) > 1 and self._blocks[0][0] + len(self._blocks[0][1]["t"]) <= low:
            self._blocks.pop(0)

    def _retired(self, batch: tuple[np.ndarray, dict[str, np.ndarray]]) -> None:
        """Keep a retired batch for the call log (streaming: write a row group once there
        are enough rows)."""
        self._batches.append(batch)
        self._batch_rows += len(batch[0])
        if self.stream is not None and self._batch_rows >= self.stream.rows:
            self._flush()

    def _flush(self, final: bool = False) -> None:
        """Streaming: write the retired calls' rows and the spans worked on them (all spans
        left, at the end) as one row group of each log."""
        ids, cols = _concat_batches(self._batches, _DEFAULTS)
        self._batches, self._batch_rows = [], 0
        rows = self._span_rows()
        # (a lookup table over the batch's id range: ~50x quicker than isin's sort on a row
        # group, and whole ids, so the float column compares as integers)
        mine = np.ones(len(rows), bool) if final else np.isin(rows[:, 0].astype(np.int64), ids, kind="table")
        work = self._assignments_frame(rows[mine])
        self.work = array("d")
        if not final:
            self.work.frombytes(rows[~mine].tobytes())     # spans of calls still open, outreach
        calls = self._calls_frame(ids, cols)
        add_call_columns(calls, work, self.n_reactive)
        if len(calls):                    # (no empty row group at the end)
            self.stream.calls.write(calls)
        if len(work):
            self.stream.assignments.write(work)
        self.totals.add(calls, work)      # the KPIs and audits, without reading the files back
        self._written += len(ids)
        if not final:
            self._drop_written_blocks()

    def _source(self):
        env = self.env
        start = self.record.start
        first = 0
        for block in self.source:
            t_all = self._start_block(first, block)
            for a in range(0, len(t_all), CHUNK):
                b = min(a + CHUNK, len(t_all))
                self._retired(self.record.retire())      # the finished calls' record leaves
                for i, t, c in zip(count(first + a), t_all[a:b].tolist(), self._chunk_inputs(a, b)):
                    now = env.now
                    if t > now:
                        d = t - now
                        yield env.timeout(d)
                        if now + d != t:
                            # the clock landed an ulp off ``t`` (possible when t > 2 now, early
                            # in a run; no delay may hit ``t`` exactly): the call was received
                            # when the clock says, so no time of it reads before its receipt
                            t_all[i - first] = now + d
                    self.open_calls += 1
                    start(i)
                    _CallProcess(env, call_process(self, i, c))
            first += len(t_all)
        self._inputs = []
        if env.now < self.s.end_min:        # outreach and shifts run to the end of the horizon
            yield env.timeout(self.s.end_min - env.now)
        self.arrivals_done = True
        if self.open_calls == 0 and not self.done.triggered:
            self.done.succeed()

    # --- run ------------------------------------------------------------------------

    def run(self) -> RunResult:
        wall0 = time.perf_counter()
        self._build()
        env = self.env
        self.open_calls = 0
        self.arrivals_done = False
        self.done = env.event()
        for u in self.disp.units:
            if u.crew.always:
                self.disp.come_on(u)
            elif u.crew.intervals:
                cut = u.pool.cutoff
                env.process(crew_process(env, self.disp, u, cut[0] if cut else None))
        env.process(self._source())
        for name, p in self.s.pools.items():
            if p.outreach:
                pool = self.pools[name]
                env.process(outreach(self, pool, self.disp.tier([pool]), p.outreach,
                                     self.cpools[self.pool_names.index(name)]))
        self.cap = cap = self.s.end_min + self.s.drain_days * 1440.0   # the run stops here

        def stop_at_cap(_):
            if not self.done.triggered:
                self.done.succeed()
        env.timeout(cap).callbacks.append(stop_at_cap)
        t0, t1 = self.s.warmup_min, self.s.end_min
        info = self._pool_info()
        self.totals = None if self.stream is None else StreamTotals(self.s, info, t0, t1, calls=self.n_reactive)
        try:
            env.run(until=self.done)
            for span in list(self._open.values()):   # units still busy at the cap: booked to the end
                self.close(span, open_at_end=True)
            wall = time.perf_counter() - wall0
            self._inputs = None      # the hot loop's inputs: not read after the run
            self._retired(self.record.retire(everything=True))    # unfinished calls too
            self.n_calls = self.n_reactive + len(self.outreach_rows)   # calls and outreach contacts in the log
            self._retired(self._append_outreach())
            calls, work = self._logs()
        except BaseException:
            if self.stream is not None:
                self.stream.abort()
            raise
        fac, occ = self._facility_frames()
        units = self._units_frame()
        totals = None
        if self.stream is None:
            pools = resource_audit(work, calls, info, t0, t1)
            hourly = hourly_audit(work, info, t0, t1)
        else:                                    # gathered a row group at a time as it was written
            self._release_per_call_arrays()
            totals, self.totals = self.totals, None
            pools, hourly = totals.audits()
        pools.insert(0, "replication", self.replication)
        pools.insert(0, "scenario", self.s.name)
        hourly.insert(0, "replication", self.replication)
        hourly.insert(0, "scenario", self.s.name)
        return RunResult(calls, pools, hourly, work, units, fac, occ,
                         {"scenario": self.s.name, "replication": self.replication, "seed": self.seed,
                          "calls": self.n_calls, "wall_s": wall, "end_min": env.now,
                          "streamed": self.stream is not None}, totals)

    def _logs(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The call log and the assignments log once every call is retired: the frames, or
        (streaming) the last row groups written, the files moved into place and frames of
        their columns with no rows."""
        n = self.n_calls
        if self.stream is None:
            ids, cols = _concat_batches(self._batches, _DEFAULTS)
            self._batches = []
            if not np.array_equal(ids, np.arange(n)):
                raise RuntimeError("internal error: the call log does not hold every call exactly once")
            calls, work = self._calls_frame(ids, cols), self._assignments_frame(self._span_rows())
            self.work = array("d")               # the frame holds the spans now
            add_call_columns(calls, work, self.n_reactive)
            return calls, work
        self._flush(final=True)
        if self._written != n:
            raise RuntimeError(f"internal error: {self._written} call rows streamed for {n} calls")
        calls = self._calls_frame(np.zeros(0, np.int64), self.record.blank(0))
        work = self._assignments_frame(np.zeros((0, 16)))
        add_call_columns(calls, work, self.n_reactive)
        self.stream.close(calls, work)
        return calls, work

    def _release_per_call_arrays(self) -> None:
        """Drop the call source, the record and the kept blocks of per-call columns once the
        logs are written (the model's processes refer to it, so it lives on until the
        collector finds the cycle)."""
        self.source = self.record = self.rec = None
        self._blocks = []
        release_memory()

    def _span_rows(self) -> np.ndarray:
        """The booked spans not yet in a frame, one row of 16 numbers each (see ``close``)."""
        return np.frombuffer(self.work, dtype=float).reshape(-1, 16)

    # --- outputs --------------------------------------------------------------------

    def _calls_frame(self, ids: np.ndarray, r: dict[str, np.ndarray]) -> pd.DataFrame:
        """The call log of calls ``ids`` (sorted), from their retired record ``r``: facts the
        run recorded, one row per call (derived columns such as ``response_time`` or
        ``diverted`` are added by ``metrics.add_call_columns``). Each record column is
        released as it is converted."""
        s = self.s
        n = len(ids)
        c = self._kept(ids)
        cat = _categorical
        pools = self.pool_names
        unit = np.asarray(r.pop("unit"), dtype=np.int64)
        # the answering pool is the answering unit's (-1: no unit)
        pool_of = np.array([u.pool.index for u in self.disp.units] + [-1], dtype=np.int64)
        pool_code = pool_of[unit]
        # each pool's responder kind as a code of RESPONDER_KINDS (the last entry: no pool)
        kind = np.array([RESPONDER_KINDS.index(s.responder_kind(p)) for p in pools]
                        + [RESPONDER_KINDS.index("none")], dtype=np.int64)
        t = c["t"]
        call_type, zone = c["call_type"], c["zone"]
        df = pd.DataFrame({
            "scenario": _constant_category(s.name, n),
            "replication": np.full(n, self.replication, dtype=np.int32),
            "call_id": np.asarray(ids, dtype=np.int64),
            "channel": cat(c["channel"], self.channel_names),
            "call_type": cat(call_type, self.source_types),
            "priority": c["priority"],
            "zone": cat(zone, list(s.zones)),
            "x_km": c["x"], "y_km": c["y"],
            "person": c["person"],
            "eligible": (np.array([[s.eligible(tn, z) for z in s.zones] for tn in self.source_types],
                                  dtype=bool)[call_type, zone]
                         & (ids < self.n_reactive)) if n else np.zeros(0, dtype=bool),
            "path": cat(c["path"], self.path_names),
            "misrouted": c["misrouted"],
            "t_received": t,
            "t_triaged": np.asarray(r.pop("t_triaged")),
            "t_dispatched": np.asarray(r.pop("t_dispatched")),
            "t_on_scene": np.asarray(r.pop("t_on_scene")),
            "t_callback": np.asarray(r.pop("t_callback")),
            "t_cleared": np.asarray(r.pop("t_cleared")),
            "t_team_free": np.asarray(r.pop("t_team_free")),
            "pool": cat(pool_code, pools),
            "responder": cat(kind[pool_code], list(RESPONDER_KINDS)),
            "unit": unit,
            "tier": np.asarray(r.pop("tier"), dtype=np.int64),
            "fallback_reason": cat(np.asarray(r.pop("fallback_reason"), dtype=np.int64), list(REASON_NAMES)),
            "waiting_for": cat(np.asarray(r.pop("waiting_for"), dtype=np.int64), [t.name for t in self.disp.tiers]),
            "backup": np.asarray(r.pop("backup"), dtype=bool),
            "backup_unit": np.asarray(r.pop("backup_unit"), dtype=np.int64),
            "backup_delay": np.asarray(r.pop("backup_delay")),
            "backup_on_scene": np.asarray(r.pop("backup_on_scene")),
            "desk_wait": np.asarray(r.pop("desk_wait")),
            "second_pool": cat(np.asarray(r.pop("second_pool"), dtype=np.int64), pools),
            "second_unit": np.asarray(r.pop("second_unit"), dtype=np.int64),
            "t_second_dispatched": np.asarray(r.pop("t_second_dispatched")),
            "t_second_on_scene": np.asarray(r.pop("t_second_on_scene")),
            "t_second_free": np.asarray(r.pop("t_second_free")),
            "second_unavailable": np.asarray(r.pop("second_unavailable"), dtype=bool),
            "police_on_scene": np.asarray(r.pop("police_on_scene"), dtype=bool),
            "outcome": cat(np.asarray(r.pop("outcome"), dtype=np.int64), list(OUTCOME_NAMES)),
            "destination": cat(np.asarray(r.pop("destination"), dtype=np.int64), list(s.facilities)),
            "consent_refused": np.asarray(r.pop("consent_refused"), dtype=bool),
            "transport_diverted": np.asarray(r.pop("transport_diverted"), dtype=bool),
            "door_wait": np.asarray(r.pop("door_wait")),
            "t_handover": np.asarray(r.pop("t_handover")),
            "stay": np.asarray(r.pop("stay")),
            "followup": cat(np.asarray(r.pop("followup"), dtype=np.int64), list(FOLLOWUP_NAMES)),
            "t_followup_done": np.asarray(r.pop("t_followup_done")),
            "followup_preempted": np.asarray(r.pop("followup_preempted"), dtype=np.int64),
            "escalated": np.asarray(r.pop("escalated"), dtype=bool),
            "t_scene_visit": np.asarray(r.pop("t_scene_visit")),
            "advocacy": np.asarray(r.pop("advocacy"), dtype=bool),
            "proactive": ids >= self.n_reactive,
            "warmup": t < s.warmup_min,
        })
        return df

    def _assignments_frame(self, rows: np.ndarray) -> pd.DataFrame:
        """The record of work: one row per unit per task span (see ``sim/columns.py``), from
        spans as rows of 16 numbers (the task as its code)."""
        (call, task, unit, t_req, t_asg, t_arr, t_rel, ot, pre, x0, y0, x1, y1, texp, prio, at_end) = rows.T
        unit = unit.astype(np.int64)
        task = task.astype(np.int64)
        units = self.disp.units
        pool_of = np.array([u.pool.index for u in units], dtype=np.int64)
        names = self.pool_names + list(f"desk:{d}" for d in self.desks)
        sworn = np.array(self.pool_police + [False] * len(self.desks))
        call = call.astype(np.int64)
        # outreach contacts became call-log rows after the run: give their spans those ids
        if self.outreach_rows and len(call):
            ids = {(int(u), float(t0)): self.n_reactive + k for k, (t0, _, _, _, u, *_rest)
                   in enumerate(sorted(self.outreach_rows))}
            is_out = task == _TASK_CODE["outreach"]
            call = call.copy()
            call[is_out] = [ids.get((int(u), float(t)), -1) for u, t in zip(unit[is_out], t_asg[is_out])]
        n = len(call)
        crew_index = {name: k for k, name in enumerate(dict.fromkeys(u.crew.name for u in units))}
        crew_names = list(crew_index)
        crew_code = np.array([crew_index[u.crew.name] for u in units], dtype=np.int64)
        return pd.DataFrame({
            "scenario": _constant_category(self.s.name, n),
            "replication": np.full(n, self.replication, dtype=np.int32),
            "call_id": call,
            "task": _categorical(task, list(TASKS)),
            "pool": _categorical(pool_of[unit] if n else np.zeros(0, np.int64), names),
            "unit": unit,
            "crew": _categorical(crew_code[unit] if n else np.zeros(0, np.int64), crew_names),
            "sworn": sworn[pool_of[unit]] if n else np.zeros(0, bool),
            "priority": prio.astype(np.int64),
            "t_requested": t_req.astype(float), "t_assigned": t_asg.astype(float),
            "t_arrived": t_arr.astype(float), "t_released": t_rel.astype(float),
            "overtime": ot.astype(float), "preempted": pre.astype(bool),
            "x_from": x0.astype(float), "y_from": y0.astype(float),
            "x_to": x1.astype(float), "y_to": y1.astype(float),
            "travel_expected": texp.astype(float),
            "open_at_end": at_end.astype(bool),
        })

    def _units_frame(self) -> pd.DataFrame:
        units = self.disp.units
        return pd.DataFrame({
            "scenario": _constant_category(self.s.name, len(units)),
            "replication": np.full(len(units), self.replication, dtype=np.int32),
            "unit": np.arange(len(units), dtype=np.int64),
            "pool": [u.pool.name for u in units],
            "crew": [u.crew.name for u in units],
            "post_x": [u.post[0] for u in units], "post_y": [u.post[1] for u in units],
            "post_zone": [self.geo.zone_names[u.post[2]] for u in units],
        })

    def _pool_info(self) -> list[dict]:
        """What the audit needs about each pool and desk: name, police, remote, schedule,
        hourly cost."""
        s = self.s
        out = []
        for k, name in enumerate(self.pool_names):
            cp = self.cpools[k]
            out.append({"pool": name, "police": self.pool_police[k], "remote": cp.remote,
                        "schedule": self.pools[name].schedule, "cost_per_hour": cp.cost_per_hour})
        for name, desk in self.desks.items():
            out.append({"pool": desk.name, "police": False, "remote": True, "schedule": desk.schedule,
                        "cost_per_hour": sum(s.roles[r].hourly_cost for r in s.triage.desks[name].roles)})
        return out

    @staticmethod
    def _index_factory(geo: Geography, posts: list[tuple[float, float]]):
        """How a pool indexes its idle units: by nothing, by zone (matrix) or in a grid (km)."""
        if geo.model == "none":
            return lambda n: _AnyIndex()
        if geo.model == "matrix":
            return lambda n: _ZoneIndex(geo.matrix)
        x0, y0, x1, y1 = geo.bbox(posts)
        w, h = x1 - x0, y1 - y0

        def grid(n: int):
            # about one unit per cell: a query then looks at a handful of cells
            cell = max(math.sqrt(w * h / max(n, 1)), max(w, h) / max(n, 1), 1e-3)
            return _GridIndex((x0, y0, x1, y1), cell, geo.distance, geo.speed_km_per_min)
        return grid

    def _append_outreach(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Proactive contacts become log rows like calls (channel 'outreach', ``proactive``):
        their record as a retired batch (ids after the reactive calls), and their inputs
        appended to the per-call arrays."""
        rows = sorted(self.outreach_rows)
        n, k = self.n_reactive, len(rows)
        ids = np.arange(n, n + k, dtype=np.int64)
        cols = self.record.blank(k)
        if not rows:
            return ids, cols
        t0, t1, tf, _pool, team, zone, x, y, person, ctype = (np.asarray(col) for col in zip(*rows))
        for name, values in (("t_triaged", t0), ("t_dispatched", t0), ("t_on_scene", t0), ("t_cleared", t1),
                             ("t_team_free", tf), ("unit", team), ("tier", np.zeros(k, np.int64))):
            cols[name][:] = values
        cols["outcome"][:] = RESOLVED
        if "outreach" not in self.channel_names:
            self.channel_names.append("outreach")
        self._blocks.append((n, {"t": t0, "channel": np.full(k, self.channel_names.index("outreach")),
                                 "call_type": ctype.astype(np.int64), "zone": zone.astype(np.int64), "x": x, "y": y,
                                 "person": person.astype(np.int64), "priority": np.zeros(k, dtype=np.int64),
                                 "path": np.full(k, -1), "misrouted": np.zeros(k, dtype=bool)}))
        return ids, cols

    def _facility_frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Per facility: audit over the measured window, and occupancy as a step function."""
        s = self.s
        t0, t1 = s.warmup_min, s.end_min
        audit, occ = [], []
        for name, f in self.facilities.items():
            ts = np.asarray(f.level_t + [max(t1, f.level_t[-1])])
            o = np.asarray(f.level_occ, dtype=float)
            in_window = (ts[1:] > t0) & (ts[:-1] < t1)
            audit.append({"scenario": s.name, "replication": self.replication, "facility": name,
                          "beds": f.beds if math.isfinite(f.beds) else np.nan,
                          "occupancy_mean": step_integral(f.level_t, f.level_occ, t0, t1) / (t1 - t0),
                          "occupancy_peak": float(o[in_window].max()) if in_window.any() else 0.0,
                          "arrivals": f.arrivals, "admissions": f.admissions, "refusals": f.refusals,
                          "step_downs": f.step_downs, "step_down_refused": f.step_down_refused})
            occ.append(pd.DataFrame({"facility": name, "t": f.level_t, "occupied": f.level_occ,
                                     "beds": f.beds if math.isfinite(f.beds) else np.nan}))
        # (typed when empty, as when not: a reader combining scenarios' files takes no
        # column of a city without facilities as Arrow's null type for all of them)
        occupancy = pd.concat(occ, ignore_index=True) if occ else pd.DataFrame(
            {"facility": pd.Series(dtype="str"), "t": pd.Series(dtype=float),
             "occupied": pd.Series(dtype=np.int64), "beds": pd.Series(dtype=float)})
        occupancy.insert(0, "replication", self.replication)
        occupancy.insert(0, "scenario", s.name)
        facilities = pd.DataFrame(audit) if audit else pd.DataFrame(
            {"scenario": pd.Series(dtype="str"), "replication": pd.Series(dtype=np.int64),
             "facility": pd.Series(dtype="str"),
             **{c: pd.Series(dtype=float) for c in ("beds", "occupancy_mean", "occupancy_peak")},
             **{c: pd.Series(dtype=np.int64)
                for c in ("arrivals", "admissions", "refusals", "step_downs", "step_down_refused")}})
        return facilities, occupancy


RESPONDER_KINDS = ("police", "co_responder", "civilian", "remote", "none")


class _Now:
    """The event a :class:`_CallProcess` starts on: already happened, no value."""
    _ok, _value = True, None


class _CallProcess(simpy.Process):
    """A SimPy process whose first step runs at once, inside the step that starts it.

    ``env.process`` schedules an ``Initialize`` event and the generator starts when the
    environment reaches it: an event per call, for the call source, which starts every call
    as it arrives. The source's step is the arrival itself, and the Initialize would be the
    very next event (urgent, at the same instant; calls arriving together still start in
    their order), so running the first step now gives the same run with one event fewer a
    call; its end costs no event either when nobody waits on it (:meth:`_resume`). Relies on
    SimPy 4's ``Process._resume`` (pinned in pyproject.toml); everything after the first step
    is an ordinary process: it can be waited on and interrupted.
    """

    def __init__(self, env: simpy.Environment, generator):
        self.env = env
        self.callbacks = []
        self._generator = generator
        self._resume(_Now)

    def _resume(self, event) -> None:
        """SimPy 4's ``Process._resume`` but for the end of a call nobody waits on. SimPy
        schedules every ended process as an event of its own, for the environment to pop at
        the same instant and find without a callback: one event a call (of ~5.5). Here such a
        process is done at once (processed, its value set); an end someone waits on and a
        failure are scheduled as SimPy does, and a failed event or an interrupt is handed to
        SimPy's own method."""
        env = self.env
        while event._ok:
            env._active_proc = self
            try:
                event = self._generator.send(event._value)
            except StopIteration as stop:
                self._ok, self._value, self._target = True, stop.value, None
                env._active_proc = None
                if self.callbacks:
                    env.schedule(self)          # someone waits on the call: as SimPy does
                else:
                    self.callbacks = None       # processed: nobody to tell, no event
                return
            except BaseException as e:
                self._ok, self._value, self._target = False, e, None
                env._active_proc = None
                env.schedule(self)              # the environment raises it at this event
                return
            if event.callbacks is not None:     # not happened yet: wait for it
                event.callbacks.append(self._resume)
                self._target = event
                env._active_proc = None
                return
        simpy.Process._resume(self, event)


def _concat_batches(batches: list, defaults: dict) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Retired record batches as one, sorted by call id."""
    ids = np.concatenate([b[0] for b in batches]) if batches else np.zeros(0, np.int64)
    order = np.argsort(ids, kind="stable")
    cols = {}
    for name in defaults:
        parts = [b[1].pop(name) for b in batches]
        cols[name] = np.concatenate(parts)[order] if parts else np.zeros(0)
        del parts
    return ids[order], cols


def _categorical(codes, names: list[str]) -> pd.Categorical:
    """A column of labels from their codes; the labels typed as text even when there are
    none (a city with no facility: ``destination``), so that Parquet stores every such column
    as dictionary<string> and a reader combining two scenarios' files does not take one's
    empty column (Arrow's null type) as the type of all of them."""
    return pd.Categorical.from_codes(codes, pd.Index(names, dtype="str"))


def _constant_category(value: str, n: int) -> pd.Categorical:
    """A column of ``n`` copies of one label (from codes: no list of n strings to scan)."""
    return pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), [value])
