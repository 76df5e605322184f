"""One replication: build the system from a Scenario and run it.

``Model(scenario, seed, replication).run()`` returns a :class:`RunResult` with

* ``calls``  - one row per call (every call is a row, including those nobody answered);
* ``pools``  - the resource audit: per pool, on-duty and busy team-minutes over the
  measured window, overtime, staffed cost, calls served;
* ``hourly`` - per pool and hour of the week, on-duty and busy team-minutes (for the
  utilisation-by-hour chart).

Times are minutes from Monday 00:00 of week 0. Calls arriving during the warm-up are in
the log with ``warmup=True`` and left out of KPIs.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import simpy

from .aftercare import FOLLOWUP_NAMES, CaseManagement, Facility, outreach
from .arrivals import Calls, generate_calls
from .callpath import (BACKUP, FOLLOW_UP, OUTCOME_NAMES, RESOLVED, TRANSPORT, UNFINISHED,
                       call_process)
from .geography import Geography
from .resources import TeamPool, VehiclePool, step_integral
from .scenario import Scenario
from .shifts import WEEK
from .streams import Streams

NAN = math.nan


# what every log column holds before anything is recorded
_DEFAULTS = {
    "t_triaged": NAN, "t_dispatched": NAN, "t_on_scene": NAN, "t_cleared": NAN, "t_team_free": NAN,
    "desk_wait": NAN, "pool": -1, "team": -1, "fallback": False, "police_on_scene": False,
    "outcome": UNFINISHED, "backup": False, "backup_team": -1, "backup_delay": NAN, "backup_on_scene": NAN,
    "second_pool": -1, "second_team": -1, "t_second_dispatched": NAN, "t_second_on_scene": NAN,
    "t_second_free": NAN, "second_unavailable": False,
    "overtime": 0.0, "destination": -1, "consent_refused": False, "transport_diverted": False,
    "door_wait": NAN, "t_handover": NAN, "followup": 0, "t_followup_done": NAN,
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
        self.pool: TeamPool | None = None     # set when pools exist; None = the contact's pool
        self.delay = spec.delay_min.sampler()
        self.expires = spec.expires_after_min
        self.on_scene = spec.on_scene_min.sampler()


@dataclass
class _CConsult:
    desk: TeamPool
    desk_service: object
    second_pool: TeamPool
    p_second: float
    max_wait: float | None
    hands_over: bool
    otherwise: int


@dataclass
class _CPath:
    name: str
    pools: list            # [(TeamPool, max wait or None)]
    desk: TeamPool | None = None
    desk_service: object = None
    consult: _CConsult | None = None


@dataclass
class RunResult:
    """What one replication produced (tidy DataFrames) and how it ran."""

    calls: pd.DataFrame
    pools: pd.DataFrame
    hourly: pd.DataFrame
    facilities: pd.DataFrame = field(default_factory=pd.DataFrame)   # audit per facility
    occupancy: pd.DataFrame = field(default_factory=pd.DataFrame)    # facility, t, occupied, beds
    info: dict = field(default_factory=dict)


class Model:
    """One replication of a scenario."""

    def __init__(self, scenario: Scenario, seed: int | None = None, replication: int = 0):
        self.s = scenario
        self.seed = scenario.seed if seed is None else int(seed)
        self.replication = int(replication)

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

    def finish(self, team, x: float, y: float, zone: int, call: int | None):
        """The team leaves the scene: back to base if its pool does that, then in service.
        (A generator: use ``yield from``; see ``free`` for the no-drive case.)"""
        pool = team.pool
        if pool.return_to_base:
            bx, by, bz = pool.base
            d = self.geo.drive(x, y, zone, bx, by, bz, self.draw("return/travel"))
            if d > 0:
                yield self.env.timeout(d)
            x, y, zone = bx, by, bz
        self.free(team, x, y, zone, call)

    def free(self, team, x: float, y: float, zone: int, call: int | None) -> None:
        """The team is back in service at (x, y, zone)."""
        team.x, team.y, team.zone = x, y, (zone if self.geo.model != "none" else 0)
        if call is not None:
            self.rec["t_team_free"][call] = self.env.now
            if team.leaving:
                self.rec["overtime"][call] = self.env.now - team.off_at
        team.pool.release(team)

    def call_closed(self) -> None:
        self.open_calls -= 1
        if self.open_calls == 0 and self.arrivals_done and not self.done.triggered:
            self.done.succeed()

    # --- build ----------------------------------------------------------------------

    def _build(self) -> None:
        s = self.s
        self.env = env = simpy.Environment()
        self.streams = Streams(self.seed, self.replication)
        self.calls: Calls = generate_calls(s, self.streams)
        self.geo = geo = Geography(s)
        type_names = self.calls.type_names
        zone_names = list(s.zones)

        self.vehicles = {name: VehiclePool(name, n) for name, n in s.vehicles.items()}
        self.pool_names = list(s.pools)
        self.pools: dict[str, TeamPool] = {}
        for k, (name, p) in enumerate(s.pools.items()):
            self.pools[name] = TeamPool(env, name, k, p.schedule(),
                                        self.vehicles.get(p.vehicles) if p.vehicles else None,
                                        geo.search_order, geo.distance, geo.place(p.base_zone),
                                        return_to_base=p.after_call == "return_to_base")
        self.cpools = [_CPool(s, name, type_names) for name in self.pool_names]
        self.pool_police = [s.pool_is_police(name) for name in self.pool_names]
        self.desks = {name: TeamPool(env, f"desk:{name}", len(self.pool_names) + j, d.schedule(), None,
                                     [[0]], geo.distance, (0.0, 0.0, 0))
                      for j, (name, d) in enumerate(s.triage.desks.items())}
        self.facilities: dict[str, Facility] = {}
        for j, (name, f) in enumerate(s.facilities.items()):
            self.facilities[name] = Facility(self, name, j, f, geo.place(f.zone))
        for name, f in s.facilities.items():
            fac = self.facilities[name]
            fac.divert_to = self.facilities[f.divert_to] if f.divert_to else None
            fac.step_down = (self.facilities[f.step_down.to], f.step_down.probability) if f.step_down else None
        for cp in self.cpools:
            cp.link_facilities(self.facilities)
            if cp.follow_ups is not None and cp.follow_ups.by:
                cp.follow_ups.pool = self.pools[cp.follow_ups.by]
        cm = s.case_management
        self.casemgmt = CaseManagement(cm, None if cm.pools == "all" else {
            self.pool_names.index(p) for p in cm.pools}) if cm else None
        from .arrivals import person_weights
        w = person_weights(s, self.streams)
        self._person_cum = np.cumsum(w) if w is not None else None
        self.type_index = {t: k for k, t in enumerate(type_names)}
        self.outreach_rows: list[tuple] = []
        self.backup_pool = self.pools[s.backup.pool] if s.backup else None
        self.backup_priority = s.backup.priority if s.backup else 1

        self.paths: dict[str, _CPath] = {}
        for name, p in s.triage.paths.items():
            consult = None
            if p.consult:
                c = p.consult
                consult = _CConsult(self.desks[c.desk], s.triage.desks[c.desk].service_min.sampler(),
                                    self.pools[c.second_pool], c.p_second, c.max_wait_min,
                                    c.first_unit == "hands_over", OUTCOME_NAMES.index(c.otherwise))
            self.paths[name] = _CPath(
                name, [(self.pools[pool], w) for pool, w in zip(p.pools, p.waits())],
                self.desks[p.desk] if p.desk else None,
                s.triage.desks[p.desk].service_min.sampler() if p.desk else None, consult)
        self.processing = s.triage.processing_min.sampler()
        # skip whole steps that cannot take time (validation models have neither)
        self.has_processing = s.triage.processing_min.kind != "fixed" or s.triage.processing_min.fixed > 0
        turnout = s.travel.turnout_min
        self.has_travel = geo.model != "none" or turnout.kind != "fixed" or turnout.fixed > 0
        desk_stream = self.streams.uniform("desk/service")
        self.desk_u = desk_stream

        # screening: each call's path, with misclassification, decided up front
        c = self.calls
        path_names = list(s.triage.paths)
        # path by (call type, zone): paths may be limited to some zones (a pilot area)
        by_type_zone = np.array([[path_names.index(s.path_of(t, z)) for z in zone_names] for t in type_names],
                                dtype=np.int64)
        true_path = by_type_zone[c.call_type, c.zone]
        screened = true_path.copy()
        for pi, pname in enumerate(path_names):
            mis = s.triage.paths[pname].misroute
            if mis is None:
                continue
            p_by_type = np.array([mis.p(t) for t in type_names])
            hit = (screened == pi) & (c.u["misroute"] < p_by_type[c.call_type]) & (true_path == pi)
            screened = np.where(hit, path_names.index(mis.to), screened)
        self.path_names = path_names
        self.screened_path = screened
        self.true_path = true_path
        self.call_path = [self.paths[path_names[k]] for k in screened.tolist()]

        # per-call columns as Python lists: scalar indexing in the hot loop is cheaper
        self.x, self.y = c.x.tolist(), c.y.tolist()
        self.zone = c.zone.tolist()
        self.dzone = self.zone if geo.model != "none" else [0] * len(c)
        self.ctype = c.call_type.tolist()
        self.person = c.person.tolist()
        prio = np.array([s.call_types[t].priority for t in type_names], dtype=np.int64)
        self.priority = prio[c.call_type].tolist() if len(c) else []
        for purpose in ("processing", "turnout", "travel", "on_scene", "outcome", "consult",
                        "destination", "consent", "handover", "prevent", "escalate"):
            setattr(self, f"u_{purpose}", c.u[purpose].tolist())

        n = len(c)
        self.rec = {name: [value] * n for name, value in _DEFAULTS.items()}

    def _source(self):
        env = self.env
        for i, t in enumerate(self.calls.t.tolist()):
            if t > env.now:
                yield env.timeout(t - env.now)
            self.open_calls += 1
            env.process(call_process(self, i))
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
        for pool in list(self.pools.values()) + list(self.desks.values()):
            env.process(pool.run_schedule())
        env.process(self._source())
        for name, p in self.s.pools.items():
            if p.outreach:
                env.process(outreach(self, self.pools[name], p.outreach, self.cpools[self.pool_names.index(name)]))
        cap = self.s.end_min + self.s.drain_days * 1440.0

        def stop_at_cap(_):
            if not self.done.triggered:
                self.done.succeed()
        env.timeout(cap).callbacks.append(stop_at_cap)
        env.run(until=self.done)
        wall = time.perf_counter() - wall0
        self.n_reactive = len(self.calls)
        self._append_outreach()
        fac, occ = self._facility_frames()
        return RunResult(self._calls_frame(), self._pools_frame(), self._hourly_frame(), fac, occ,
                         {"scenario": self.s.name, "replication": self.replication, "seed": self.seed,
                          "calls": len(self.calls), "wall_s": wall, "end_min": env.now})

    # --- outputs --------------------------------------------------------------------

    def _calls_frame(self) -> pd.DataFrame:
        s, c, r = self.s, self.calls, self.rec
        n = len(c)
        cat = pd.Categorical.from_codes
        pools = self.pool_names
        pool_code = np.asarray(r["pool"], dtype=np.int64)
        second = np.asarray(r["second_pool"], dtype=np.int64)
        outcome = np.asarray(r["outcome"], dtype=np.int64)
        t = c.t
        df = pd.DataFrame({
            "scenario": pd.Categorical([s.name] * n),
            "replication": np.full(n, self.replication, dtype=np.int32),
            "call_id": np.arange(n, dtype=np.int64),
            "channel": cat(c.channel, c.channel_names),
            "call_type": cat(c.call_type, c.type_names),
            "priority": np.asarray(self.priority, dtype=np.int16),
            "zone": cat(c.zone, list(s.zones)),
            "x_km": c.x, "y_km": c.y,
            "person": c.person,
            "eligible": (np.array([[s.eligible(tn, z) for z in s.zones] for tn in c.type_names],
                                  dtype=bool)[c.call_type, c.zone]
                         & (np.arange(n) < self.n_reactive)) if n else np.zeros(0, dtype=bool),
            "path": cat(self.screened_path, self.path_names),
            "misrouted": self.screened_path != self.true_path,
            "t_received": t,
            "t_triaged": np.asarray(r["t_triaged"]),
            "t_dispatched": np.asarray(r["t_dispatched"]),
            "t_on_scene": np.asarray(r["t_on_scene"]),
            "t_cleared": np.asarray(r["t_cleared"]),
            "t_team_free": np.asarray(r["t_team_free"]),
            "pool": cat(pool_code, pools),
            "team": np.asarray(r["team"], dtype=np.int32),
            "fallback": np.asarray(r["fallback"], dtype=bool),
            "backup": np.asarray(r["backup"], dtype=bool),
            "backup_team": np.asarray(r["backup_team"], dtype=np.int32),
            "backup_delay": np.asarray(r["backup_delay"]),
            "backup_on_scene": np.asarray(r["backup_on_scene"]),
            "desk_wait": np.asarray(r["desk_wait"]),
            "second_pool": cat(second, pools),
            "second_team": np.asarray(r["second_team"], dtype=np.int32),
            "t_second_dispatched": np.asarray(r["t_second_dispatched"]),
            "t_second_on_scene": np.asarray(r["t_second_on_scene"]),
            "t_second_free": np.asarray(r["t_second_free"]),
            "second_unavailable": np.asarray(r["second_unavailable"], dtype=bool),
            "police_on_scene": np.asarray(r["police_on_scene"], dtype=bool),
            "outcome": cat(outcome, list(OUTCOME_NAMES)),
            "overtime": np.asarray(r["overtime"]),
            "destination": cat(np.asarray(r["destination"], dtype=np.int64), list(s.facilities)),
            "consent_refused": np.asarray(r["consent_refused"], dtype=bool),
            "transport_diverted": np.asarray(r["transport_diverted"], dtype=bool),
            "door_wait": np.asarray(r["door_wait"]),
            "t_handover": np.asarray(r["t_handover"]),
            "followup": cat(np.asarray(r["followup"], dtype=np.int64), list(FOLLOWUP_NAMES)),
            "t_followup_done": np.asarray(r["t_followup_done"]),
            "escalated": np.asarray(r["escalated"], dtype=bool),
            "t_scene_visit": np.asarray(r["t_scene_visit"]),
            "advocacy": np.asarray(r["advocacy"], dtype=bool),
            "proactive": np.arange(n) >= self.n_reactive,
            "warmup": t < s.warmup_min,
        })
        served = pool_code >= 0
        police_pool = np.array(self.pool_police + [False])[pool_code]  # -1 picks the False
        df["police_pool"] = served & police_pool
        # police unit-minutes the call took: the answering unit (dispatch to back in service),
        # a backup unit (on the way and on scene), a desk-sent sworn second unit
        is_police = np.array(self.pool_police + [False])
        second_police = is_police[np.asarray(r["second_pool"], dtype=np.int64)]
        df["police_minutes"] = (
            np.where(df["police_pool"], np.nan_to_num(df["t_team_free"] - df["t_dispatched"]), 0.0)
            + np.nan_to_num(df["backup_delay"]) + np.nan_to_num(df["backup_on_scene"])
            + np.where(second_police, np.nan_to_num(df["t_second_free"] - df["t_second_dispatched"]), 0.0))
        finished = df["outcome"].isin(["resolved", "backup", "transport", "follow_up"]).to_numpy()
        df["diverted"] = finished & ~df["police_on_scene"].to_numpy()
        df["response_time"] = df["t_on_scene"] - df["t_received"]
        df["queue_wait"] = df["t_dispatched"] - df["t_triaged"]
        df["travel_time"] = df["t_on_scene"] - df["t_dispatched"]
        return df

    def _append_outreach(self) -> None:
        """Proactive contacts become log rows like calls (channel 'outreach', ``proactive``)."""
        rows = sorted(self.outreach_rows)
        if not rows:
            return
        k = len(rows)
        t0, t1, tf, pool, team, zone, x, y, person, ctype = (np.asarray(col) for col in zip(*rows))
        c, r = self.calls, self.rec
        for name, col in r.items():
            col.extend([_DEFAULTS[name]] * k)
        n = len(c)
        for name, values in (("t_triaged", t0), ("t_dispatched", t0), ("t_on_scene", t0), ("t_cleared", t1),
                             ("t_team_free", tf), ("pool", pool), ("team", team)):
            r[name][n:] = values.tolist()
        r["outcome"][n:] = [RESOLVED] * k
        if "outreach" not in c.channel_names:
            c.channel_names.append("outreach")
        c.t = np.concatenate([c.t, t0])
        c.channel = np.concatenate([c.channel, np.full(k, c.channel_names.index("outreach"))])
        c.call_type = np.concatenate([c.call_type, ctype.astype(np.int64)])
        c.zone = np.concatenate([c.zone, zone.astype(np.int64)])
        c.x, c.y = np.concatenate([c.x, x]), np.concatenate([c.y, y])
        c.person = np.concatenate([c.person, person.astype(np.int64)])
        self.priority = self.priority + [0] * k
        self.screened_path = np.concatenate([self.screened_path, np.full(k, -1)])
        self.true_path = np.concatenate([self.true_path, np.full(k, -1)])

    def _pools_frame(self) -> pd.DataFrame:
        s = self.s
        t0, t1 = s.warmup_min, s.end_min
        rows = []
        served = np.asarray(self.rec["pool"])
        measured = self.calls.t >= t0
        overtime = np.asarray(self.rec["overtime"])
        for k, name in enumerate(self.pool_names):
            pool, cp = self.pools[name], self.cpools[k]
            on_duty = pool.schedule.team_minutes(t0, t1)
            ot = float(overtime[(served == k) & measured].sum())
            rows.append({
                "scenario": s.name, "replication": self.replication, "pool": name,
                "police": self.pool_police[k], "remote": cp.remote,
                "on_duty_min": on_duty, "busy_min": pool.busy_minutes(t0, t1),
                "busy_on_duty_min": pool.busy_on_duty_minutes(t0, t1), "overtime_min": ot,
                "staffed_cost": (on_duty + ot) / 60.0 * cp.cost_per_hour,
                "calls_served": int(((served == k) & measured).sum()),
            })
        for name, desk in self.desks.items():
            rows.append({"scenario": s.name, "replication": self.replication, "pool": f"desk:{name}",
                         "police": False, "remote": True, "on_duty_min": desk.schedule.team_minutes(t0, t1),
                         "busy_min": desk.busy_minutes(t0, t1),
                         "busy_on_duty_min": desk.busy_on_duty_minutes(t0, t1), "overtime_min": 0.0,
                         "staffed_cost": desk.schedule.team_minutes(t0, t1) / 60.0 * sum(
                             s.roles[r].hourly_cost for r in s.triage.desks[name].roles),
                         "calls_served": 0})
        return pd.DataFrame(rows)

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
        occupancy = pd.concat(occ, ignore_index=True) if occ else pd.DataFrame(
            columns=["facility", "t", "occupied", "beds"])
        occupancy.insert(0, "replication", self.replication)
        occupancy.insert(0, "scenario", s.name)
        return pd.DataFrame(audit), occupancy

    def _hourly_frame(self) -> pd.DataFrame:
        """On-duty and busy team-minutes per pool and hour of week, measured window only."""
        s = self.s
        t0, t1 = s.warmup_min, s.end_min
        h0, h1 = int(math.ceil(t0 / 60)), int(t1 // 60)
        edges = 60.0 * np.arange(h0, h1 + 1)
        how = np.arange(h0, h1) % 168
        frames = []
        for pool in list(self.pools.values()) + list(self.desks.values()):
            ts = np.asarray(pool.level_t + [max(t1, pool.level_t[-1])])
            b = np.asarray(pool.level_busy, dtype=float)
            cum = np.concatenate([[0.0], np.cumsum(b * np.diff(ts))])
            busy = np.diff(np.interp(edges, ts, cum))
            per_min = pool.schedule.per_minute
            cum_duty = np.concatenate([[0], np.cumsum(np.tile(per_min, 2))])
            duty_edges = cum_duty[(edges % WEEK).astype(int)] + (edges // WEEK) * per_min.sum()
            duty = np.diff(duty_edges)
            frames.append(pd.DataFrame({"pool": pool.name, "hour_of_week": how,
                                        "on_duty_min": duty, "busy_min": busy})
                          .groupby(["pool", "hour_of_week"], as_index=False).sum())
        out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        out.insert(0, "replication", self.replication)
        out.insert(0, "scenario", s.name)
        return out
