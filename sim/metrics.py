"""Call log and record of work -> KPIs: one definition per KPI, in this module.

Three layers, each computed from what the run recorded and nothing else:

* :func:`add_call_columns` adds the derived columns of the call log (``response_time``,
  ``diverted``, ``police_minutes``...): the model records facts (times, units, tiers).
* :func:`resource_audit` and :func:`hourly_audit` derive every number about units (busy,
  overtime, utilisation, cost, calls served) from the assignments log, one row per unit
  per task. Nothing else computes them.
* :func:`kpis` turns one replication into a flat ``{metric: value}`` mapping;
  :func:`summarise` turns many replications into means and 95% t-intervals. Only calls
  that arrived after the warm-up count; a per-replication statistic (a p90, a share) is
  computed in each replication and then averaged across replications, and the charts and
  the report read these same numbers.

The audits and the KPIs are gathered a batch of rows at a time (``_AuditTotals``,
``_CallTotals``) and formed once at the end: a log in memory is one batch; a streamed
replication hands them each row group as it writes it (:class:`StreamTotals`), and a stored
log is read a row group at a time (:func:`audits_from_files`, :func:`kpis_from_file`) — the
same code, in memory bounded by a batch plus ~12 bytes per call (issue 17). Sums and means
are exact (:class:`ExactSum`, rounded once), so the numbers do not depend on how the rows
are split or ordered: the streamed and in-memory results are the same to the last bit.

Every KPI family is defined by one entry of :data:`GLOSSARY` (name pattern -> one sentence);
:func:`glossary` gives the text the report prints, and ``docs/outputs.md`` lists them.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict

import numpy as np
import pandas as pd

# what a span in the assignments log is
TASKS = ("respond", "callback", "second_unit", "backup", "transport", "scene_visit", "follow_up",
         "outreach", "desk")
# tasks by which a pool serves a call (calls_served, cost per call)
SERVING_TASKS = ("respond", "callback", "second_unit", "backup", "desk")
FINISHED = ("resolved", "backup", "transport", "follow_up")

# The call-log columns each function reads (a reader of calls.parquet asks for these, less
# those the file lacks: the optional ones are read only if present). tests/test_metrics_columns.py
# checks that every one is read and that nothing else is.
KPI_CALL_COLUMNS: tuple[str, ...] = (
    "warmup", "outcome", "proactive",                       # which rows count (_incoming)
    "eligible", "call_type", "priority", "path", "person",   # what the call was
    "pool", "responder", "tier", "fallback_reason", "waiting_for", "police_on_scene", "backup",
    "response_time", "callback_time", "queue_wait", "travel_time", "backup_delay",
    "police_pool", "diverted", "unfinished", "police_minutes",   # add_call_columns
    "destination", "consent_refused", "door_wait", "followup", "followup_preempted")   # after care
"""Columns :func:`kpis` reads from the call log; ``proactive``, ``responder``, ``path``,
``waiting_for``, ``destination`` (with ``consent_refused``, ``door_wait``), ``followup`` and
``followup_preempted`` only when present."""
AUDIT_CALL_COLUMNS: tuple[str, ...] = ("call_id", "warmup")
"""Columns :func:`resource_audit` reads from the call log."""
AUDIT_WORK_COLUMNS: tuple[str, ...] = ("call_id", "task", "pool", "t_assigned", "t_released", "overtime")
"""Columns :func:`resource_audit` and :func:`hourly_audit` read from the assignments log."""

# --------------------------------------------------------------------------- glossary
# One sentence per KPI family: the definition, and the report's glossary entry. <T> is a
# response target in minutes, <pool> a pool, <f> a facility, <kind> a responder kind
# (police, co_responder, civilian, remote), <type> a call type, <category> a share below.

GLOSSARY: dict[str, str] = {
    "calls": "Calls that came in during the measured period (outreach contacts and calls prevented by case "
             "management are not calls).",
    "calls_per_day": "Calls per day in the measured period.",
    "response_time_mean": "Mean minutes from a call being received to the first unit on scene, over calls a unit "
                          "reached on scene (calls answered by phone are not on-scene responses).",
    "response_time_p50": "Median minutes from a call being received to the first unit on scene (the middle "
                         "caller's wait), over calls a unit reached on scene.",
    "response_time_p90": "90th percentile of minutes from a call being received to the first unit on scene: "
                         "nine in ten callers reached on scene were reached within this.",
    "response_time_<stat>.eligible": "The same response time, over calls eligible for the program only.",
    "response_time_<stat>.not_eligible": "The same response time, over calls not eligible for the program.",
    "response_time_<stat>.eligible.<kind>": "The same response time, over eligible calls answered by that kind "
                                            "of responder.",
    "response_time_<stat>.type.<type>": "The same response time, over calls of that type.",
    "share_within_<T>": "Share of calls a unit reached on scene within T minutes of the call; calls nobody "
                        "reached (no response, still open at the end) count as not reached; calls answered by a "
                        "phone callback are left out.",
    "share_within_<T>.eligible": "The same share, over eligible calls only.",
    "callback_time_mean": "Mean minutes from a call being received to a remote (phone) team calling back; never "
                          "counted as an on-scene response.",
    "callback_time_p90": "90th percentile of minutes from a call being received to a remote team calling back.",
    "queue_wait_mean": "Mean minutes from a call being ready for dispatch to a unit being assigned.",
    "travel_time_mean": "Mean minutes from a unit being assigned to it arriving on scene (turnout and drive).",
    "diversion_rate": "Share of calls closed with no police unit on scene.",
    "eligible_diversion_rate": "Share of eligible calls closed with no police unit on scene (handled without "
                               "police).",
    "fallback_busy_rate": "Share of eligible calls answered by a later tier of their path because a unit of the "
                          "first tier was on shift but none was free within the wait.",
    "fallback_unstaffed_rate": "Share of eligible calls answered by a later tier of their path because no unit of "
                               "the first tier was on shift.",
    "fallback_rate": "Share of eligible calls the first tier of their path did not answer and a later tier did "
                     "(fallback_busy_rate + fallback_unstaffed_rate).",
    "answered_by_police_rate": "Share of eligible calls whose answering unit was police (a pool with a sworn "
                               "role, co-responders included).",
    "eligible_share.<category>": "How eligible calls ended, as shares that add up to 1: program_no_police "
                                 "(answered by the first tier, closed without police), program_police_on_scene "
                                 "(answered by the first tier, police on scene: a co-responder or a backup), "
                                 "fallback_busy, fallback_unstaffed (answered by a later tier, see those), "
                                 "police_first (the path sends the call to police first), unanswered (nobody "
                                 "answered within the waits), unfinished (still open at the end of the run).",
    "police_backup_rate": "Police backup requests per call answered by a non-police unit.",
    "no_response_rate": "Share of calls nobody answered within their path's waits.",
    "unfinished_rate": "Share of calls still open when the run stopped (waiting for, or being served by, a unit "
                       "at the drain cap): a sign that a pool is starved.",
    "unfinished_calls.<pool>": "Calls still open at the end of the run, by the pool that held them (waiting for "
                               "it or being served by it).",
    "police_hours": "Police unit-hours spent on calls: every sworn unit's time from being assigned to being back "
                    "in service (drive back included), answering units, backups and second units alike; a unit "
                    "still busy at the end counts to the end.",
    "police_response_time_p<k>_mean": "Mean on-scene response time of calls of priority k answered by police (a "
                                      "pool with a sworn role, co-responders included, as in "
                                      "answered_by_police_rate).",
    "utilisation.<pool>": "Share of a pool's on-duty unit-time spent busy on tasks (overtime past a shift's end "
                          "is not on-duty time and is left out of both).",
    "overtime_hours.<pool>": "Unit-hours worked past the end of a crew's shift, finishing a task.",
    "cost_per_call.<pool>": "Staffed cost of the pool (on-duty and overtime hours at its roles' hourly cost) per "
                            "call it served.",
    "cost_total": "Cost of the measured period: every pool's and desk's staffed hours at their roles' hourly "
                  "cost, plus vehicles and beds at the scenario's costs.",
    "cost_per_year": "cost_total scaled to a year of 365 days.",
    "transports.<f>": "Transports handed over at the facility.",
    "transport_consent_refused": "Transports the person declined.",
    "door_wait_hours": "Team-hours lost waiting at facility doors for a bed.",
    "occupancy_mean.<f>": "Mean beds occupied, time-weighted over the measured period.",
    "occupancy_peak.<f>": "Most beds occupied at once in the measured period.",
    "refusal_rate.<f>": "Share of arrivals at the facility turned away because it was full.",
    "admissions.<f>": "People admitted to the facility.",
    "backups": "Police backup requests.",
    "backup_delay_mean": "Mean minutes from a backup request to the police unit on scene.",
    "followups_done": "Follow-up visits made.",
    "followups_missed": "Follow-up visits not started before they expired.",
    "followups_preempted": "Follow-up visits interrupted by an urgent call (they resume later or are missed).",
    "repeat_calls": "Calls from people who had called before in the measured period.",
    "unique_people": "Distinct people served, on calls and on outreach.",
    "calls_prevented": "Calls that did not happen because the person was case-managed.",
    "outreach_contacts": "Contacts teams made on their own initiative.",
}


def glossary() -> dict[str, str]:
    """KPI name pattern -> its one-sentence definition (the report's glossary)."""
    return dict(GLOSSARY)


class ExactSum:
    """Sums of floats into ``bins`` bins, kept exactly, so that the same values give the same
    sums to the last bit however they are split into batches and in whatever order the
    batches come (a streamed log and the same log in memory; see :func:`kpis_from_file`).

    Every finite float is a whole number of units of 2**-1127 (x = q * 2**(e - 53) with an
    integer mantissa |q| < 2**53 and e >= -1073), so a bin's sum is a Python integer of those
    units; :meth:`total` and :meth:`mean` round it once, correctly. Per value it costs a few
    numpy passes (no Python loop over values). NaN values are skipped and not counted;
    infinities are summed apart (and make the total infinite, as a float sum would)."""

    _SLOTS = 2100          # keys per bin: the shift e + 1074 is in 1..2098
    _CHUNK = 1 << 16       # values per pass: the limb sums below stay exact in float64

    def __init__(self, bins: int = 1):
        self.bins = bins
        self.exact = [0] * bins                    # units of 2**-1127
        self.count = np.zeros(bins, np.int64)      # values added (NaN left out)
        self.special = np.zeros(bins)              # sum of the infinite values
        self._multiples: dict[int, np.ndarray] = {}   # exp -> limb sums of multiples of 2**exp

    def add(self, values, bins=None) -> ExactSum:
        """Add ``values`` (to bin 0, or to ``bins[i]`` each); returns self. Works through
        them in chunks: its temporaries are a few arrays of one chunk."""
        values = np.asarray(values, dtype=float).ravel()
        bins = None if bins is None else np.asarray(bins, np.int64).ravel()
        for s in range(0, len(values), self._CHUNK):
            v = values[s:s + self._CHUNK]
            b = None if bins is None else bins[s:s + self._CHUNK]
            keep = ~np.isnan(v)
            if not keep.all():
                v, b = v[keep], (None if b is None else b[keep])
            self.count += len(v) if b is None else np.bincount(b, minlength=self.bins)[:self.bins]
            finite = np.isfinite(v)
            if not finite.all():
                np.add.at(self.special, np.zeros(int((~finite).sum()), np.int64) if b is None else b[~finite],
                          v[~finite])
                v, b = v[finite], (None if b is None else b[finite])
            m, e = np.frexp(v)
            q = np.ldexp(m, 53).astype(np.int64)                 # v = q * 2**(e - 53), exactly
            key = e + 1074 if b is None else b * self._SLOTS + (e + 1074)
            # q in two limbs, each summed exactly in float64 (|sum| < 2**27 * 2**16)
            hi = np.bincount(key, weights=q >> 26)
            lo = np.bincount(key, weights=q & 0x3FFFFFF)
            for k in np.flatnonzero(np.bincount(key)).tolist():
                bin_, shift = divmod(k, self._SLOTS)
                self.exact[bin_] += ((int(hi[k]) << 26) + int(lo[k])) << shift
        return self

    def add_multiples(self, values, bins, exp: int) -> ExactSum:
        """:meth:`add`, faster for values that are whole multiples of 2**exp below 2**(exp + 53)
        in size (times less an hour's start: no Python loop, no big integer per batch); the
        values that are not go through :meth:`add`. Returns self."""
        v = np.asarray(values, dtype=float).ravel()
        b = np.asarray(bins, np.int64).ravel()
        q = np.ldexp(v, -exp)
        fits = (q == np.trunc(q)) & (np.abs(q) < 2.0 ** 53)      # False for NaN and infinities
        if not fits.all():
            self.add(v[~fits], b[~fits])
            q, b = q[fits], b[fits]
        self.count += np.bincount(b, minlength=self.bins)[:self.bins]
        q = q.astype(np.int64)
        limbs = self._multiples.setdefault(exp, np.zeros((2, self.bins), np.int64))
        for s in range(0, len(q), self._CHUNK):        # limb sums exact in float64, then in int64
            limbs[0] += np.bincount(b[s:s + self._CHUNK], weights=q[s:s + self._CHUNK] >> 26,
                                    minlength=self.bins)[:self.bins].astype(np.int64)
            limbs[1] += np.bincount(b[s:s + self._CHUNK], weights=q[s:s + self._CHUNK] & 0x3FFFFFF,
                                    minlength=self.bins)[:self.bins].astype(np.int64)
        return self

    def _exact(self, i: int) -> int:
        out = self.exact[i]
        for exp, (hi, lo) in self._multiples.items():
            out += ((int(hi[i]) << 26) + int(lo[i])) << (exp + 1127)
        return out

    def total(self, i: int = 0, extra: int = 0) -> float:
        """Bin ``i``'s sum (plus the integer ``extra``), rounded once; 0.0 for no values."""
        return (self._exact(i) + (extra << 1127)) / (1 << 1127) + float(self.special[i])

    def mean(self, i: int = 0) -> float:
        """Bin ``i``'s mean (its exact sum over its count, rounded once); NaN for no values."""
        n = int(self.count[i])
        if not n:
            return math.nan
        return self._exact(i) / (n << 1127) + float(self.special[i]) / n


def _mean(x) -> float:
    """Mean of the non-NaN values (exact sum / count, rounded once: the same for the same
    values in any order)."""
    return ExactSum().add(x).mean()


def _quantile(x: np.ndarray, q: float) -> float:
    """The q-quantile of ``x`` (no NaN in it; reordered in place, no copy), NaN if empty. The
    value depends only on the values, not on their order."""
    return float(np.quantile(x, q, overwrite_input=True)) if len(x) else math.nan


def _q(x, q: float) -> float:
    x = np.asarray(x, dtype=float)
    return _quantile(x[~np.isnan(x)], q)

def _rate(num, den) -> float:
    return float(num) / float(den) if den else math.nan


def step_integral(times: list[float], levels: list[float], t0: float, t1: float) -> float:
    """Integral over [t0, t1) of a level monitor: ``levels[k]`` holds from ``times[k]`` to
    the next time (the last level to the end). Level x minutes."""
    ts = np.asarray(list(times) + [max(t1, times[-1])], dtype=float)
    seg = np.clip(ts[1:], t0, t1) - np.clip(ts[:-1], t0, t1)
    return float(np.dot(np.asarray(levels, dtype=float), seg))


# --------------------------------------------------------------------------- derived call columns


def add_call_columns(calls: pd.DataFrame, work: pd.DataFrame, n_reactive: int | None = None) -> pd.DataFrame:
    """Add the call log's derived columns in place (and return it):

    * ``response_time``: received -> first unit on scene (NaN when nobody went on scene);
    * ``callback_time``: received -> a remote team called back;
    * ``queue_wait``: ready for dispatch -> unit assigned; ``travel_time``: assigned -> on scene;
    * ``police_pool``: answered by a pool with a sworn role (police or co-responder);
    * ``diverted``: the call was finished with no police unit on scene;
    * ``unfinished``: the call was still open at the end of the run;
    * ``police_minutes``: sworn units' minutes on the call, assigned -> back in service,
      from the assignments log (answering unit, backups, second units, their transports).
    """
    c = calls
    c["response_time"] = c["t_on_scene"] - c["t_received"]
    c["callback_time"] = c["t_callback"] - c["t_received"]
    c["queue_wait"] = c["t_dispatched"] - c["t_triaged"]
    c["travel_time"] = c["t_on_scene"] - c["t_dispatched"]
    outcome = c["outcome"]
    c["police_pool"] = c["responder"].isin(["police", "co_responder"]).to_numpy()
    c["diverted"] = outcome.isin(FINISHED).to_numpy() & ~c["police_on_scene"].to_numpy(bool)
    c["unfinished"] = (outcome == "unfinished").to_numpy()
    minutes = np.zeros(len(c))
    if len(work):
        w = work[work["sworn"].to_numpy(bool) & (work["call_id"].to_numpy() >= 0)]
        per_call = (w["t_released"] - w["t_assigned"]).groupby(w["call_id"].to_numpy()).sum()
        # rows by call id (a streamed batch holds some calls, sorted by id)
        ids = c["call_id"].to_numpy()
        idx = per_call.index.to_numpy()
        pos = np.minimum(np.searchsorted(ids, idx), max(len(ids) - 1, 0))
        here = (pos < len(ids)) & (ids[pos] == idx) if len(ids) else np.zeros(len(idx), bool)
        minutes[pos[here]] = per_call.to_numpy()[here]
    c["police_minutes"] = minutes
    return c


# --------------------------------------------------------------------------- resource audit


class _Seen:
    """Which non-negative ids were seen, in each of ``width`` sets: one bit per id and set
    (an array as long as the largest id, grown as needed; ``size``: the ids expected)."""

    def __init__(self, width: int = 1, size: int = 0):
        self.bits = np.zeros((size, (width + 7) // 8), np.uint8)

    def mark(self, ids, k: int = 0) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return
        need = int(ids.max()) + 1
        if need > len(self.bits):
            grown = np.zeros((max(need, 2 * len(self.bits)), self.bits.shape[1]), np.uint8)
            grown[:len(self.bits)] = self.bits
            self.bits = grown
        col = self.bits[:, k >> 3]                 # a view: writes go to the bits
        col[ids] = col[ids] | np.uint8(1 << (k & 7))

    def flags(self, k: int = 0, size: int = 0) -> np.ndarray:
        """Set ``k`` as one flag per id 0, 1, ... (at least ``size`` of them)."""
        out = np.zeros(max(size, len(self.bits)), bool)
        out[:len(self.bits)] = (self.bits[:, k >> 3] & np.uint8(1 << (k & 7))) != 0
        return out

    def count(self, k: int = 0) -> int:
        return int(np.count_nonzero(self.bits[:, k >> 3] & np.uint8(1 << (k & 7))))


def _spans_by_pool(work: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The assignments log's spans of each pool (by pool name)."""
    return {str(k): g for k, g in work.groupby("pool", observed=True)} if len(work) else {}


class _AuditTotals:
    """The resource audit and the hourly audit, gathered from the call log and the
    assignments log a batch of rows at a time (any split of the rows into batches, in any
    order, gives the same numbers to the last bit: every sum is an :class:`ExactSum`).

    Kept across batches: per pool two exact sums (busy, overtime), per pool and hour of the
    week two exact sums, two integers per pool and hour of the window (spans ending after
    it, for the hourly integral), one bit per call (measured) and one bit per call and pool
    (served): ``(1 + pools / 8)`` bytes a call, nothing per span."""

    def __init__(self, pools: list[dict], t0: float, t1: float, hourly: bool = True, calls: int = 0):
        self.pools, self.t0, self.t1 = pools, t0, t1
        self.index = {p["pool"]: k for k, p in enumerate(pools)}
        self.busy = [ExactSum() for _ in pools]
        self.overtime = [ExactSum() for _ in pools]
        self.measured = _Seen(1, calls)
        self.served = _Seen(len(pools), calls)
        self.hourly = hourly
        h0, h1 = int(math.ceil(t0 / 60)), int(t1 // 60)
        self.edges = 60.0 * np.arange(h0, h1 + 1)
        self.how = np.arange(h0, h1) % 168
        nh = len(self.how)
        # hourly: busy minutes in hour j of the window = 60 x (span ends after it - span starts
        # after it) + sum of (end - hour start) for ends inside it - the same for starts inside
        # it; ``after[p, x, j + 1]`` counts ends (x=0: busy, 1: overtime) minus starts in hour j
        # (j = -1: before the window, nh: after it), ``inside`` sums the partial hours by hour of week
        self.after = np.zeros((len(pools), 2, nh + 2), np.int64)
        self.inside = [[ExactSum(168), ExactSum(168)] for _ in pools]

    def add_calls(self, calls: pd.DataFrame) -> None:
        """A batch of the call log (``AUDIT_CALL_COLUMNS``)."""
        ids = calls["call_id"].to_numpy(np.int64)
        keep = ~calls["warmup"].to_numpy(bool) & (ids >= 0)
        self.measured.mark(ids[keep])

    def add_work(self, work: pd.DataFrame) -> None:
        """A batch of the assignments log (``AUDIT_WORK_COLUMNS``)."""
        t0, t1 = self.t0, self.t1
        for name, w in _spans_by_pool(work).items():
            k = self.index.get(name)
            if k is None:
                continue
            a, r = w["t_assigned"].to_numpy(float), w["t_released"].to_numpy(float)
            start_ot = r - w["overtime"].to_numpy(float)
            self.busy[k].add(np.clip(r, t0, t1) - np.clip(a, t0, t1))
            self.overtime[k].add(np.clip(r, t0, t1) - np.clip(start_ot, t0, t1))
            ids = w["call_id"].to_numpy(np.int64)
            serving = w["task"].isin(SERVING_TASKS).to_numpy() & (ids >= 0)
            self.served.mark(ids[serving], k)
            if self.hourly and len(self.how):
                for x, start in enumerate((a, start_ot)):
                    self._hours(k, x, r, 1)
                    self._hours(k, x, start, -1)

    def _hours(self, k: int, x: int, t: np.ndarray, sign: int) -> None:
        """Span ends (sign 1) or starts (sign -1) at times ``t`` into the hourly sums."""
        edges = self.edges
        j = np.searchsorted(edges, t, side="right") - 1          # hour of the window, -1 .. nh
        self.after[k, x] += sign * np.bincount(j + 1, minlength=len(edges) + 1)
        inside = (j >= 0) & (j < len(self.how))
        j = j[inside]
        # t - hour start is exact (the hour starts at 0 or at >= t / 2) and, for an hour from
        # 60 min on, a whole multiple of 2**-47 (the spacing of floats from 32 up) below 64
        self.inside[k][x].add_multiples(sign * (t[inside] - edges[j]), self.how[j], -47)

    def pools_frame(self) -> pd.DataFrame:
        """The resource audit (see :func:`resource_audit`)."""
        t0, t1 = self.t0, self.t1
        measured = self.measured.flags(0, len(self.served.bits))
        rows = []
        for k, p in enumerate(self.pools):
            on_duty = p["schedule"].team_minutes(t0, t1)
            busy, ot = self.busy[k].total(), self.overtime[k].total()
            served = int(np.count_nonzero(self.served.flags(k, len(measured)) & measured))
            rows.append({"pool": p["pool"], "police": p["police"], "remote": p["remote"],
                         "on_duty_min": on_duty, "busy_min": busy, "overtime_min": ot,
                         "busy_on_duty_min": busy - ot,
                         "staffed_cost": (on_duty + ot) / 60.0 * p["cost_per_hour"], "calls_served": served})
        return pd.DataFrame(rows, columns=["pool", "police", "remote", "on_duty_min", "busy_min", "overtime_min",
                                           "busy_on_duty_min", "staffed_cost", "calls_served"])

    def hourly_frame(self) -> pd.DataFrame:
        """The hourly audit (see :func:`hourly_audit`)."""
        from .shifts import WEEK
        edges, how = self.edges, self.how
        frames = []
        for k, p in enumerate(self.pools):
            per_min = p["schedule"].per_minute
            cum_duty = np.concatenate([[0], np.cumsum(np.tile(per_min, 2))])
            duty = np.diff(cum_duty[(edges % WEEK).astype(int)] + (edges // WEEK) * per_min.sum())
            f = (pd.DataFrame({"pool": p["pool"], "hour_of_week": how, "on_duty_min": duty})
                 .groupby(["pool", "hour_of_week"], as_index=False).sum())
            for x, col in enumerate(("busy_min", "overtime_min")):
                full = np.cumsum(self.after[k, x][::-1])[::-1][2:]     # spans ending after hour j
                hours = np.zeros(168, np.int64)
                np.add.at(hours, how, full)
                f[col] = [self.inside[k][x].total(h, 60 * int(hours[h])) for h in f["hour_of_week"].tolist()]
            frames.append(f)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
            columns=["pool", "hour_of_week", "on_duty_min", "busy_min", "overtime_min"])


def resource_audit(work: pd.DataFrame, calls: pd.DataFrame, pools: list[dict], t0: float, t1: float) -> pd.DataFrame:
    """Per pool (and desk), over the measured window [t0, t1): on-duty unit-minutes (from
    its crews' hours), busy unit-minutes (spans in the assignments log), overtime (the part
    of spans worked after a crew's shift end), busy while on duty (busy - overtime), staffed
    cost (on duty + overtime, at the roles' hourly cost), calls served (distinct measured
    calls the pool answered, backed up, was sent to second, or handled at a desk).
    ``pools``: dicts with pool, police, remote, schedule, cost_per_hour. Busy and overtime
    are exact sums of each span's clipped minutes, rounded once."""
    totals = _AuditTotals(pools, t0, t1, hourly=False, calls=len(calls))
    totals.add_calls(calls)
    totals.add_work(work)
    return totals.pools_frame()


def hourly_audit(work: pd.DataFrame, pools: list[dict], t0: float, t1: float) -> pd.DataFrame:
    """Per pool and hour of the week: on-duty, busy and overtime unit-minutes over the
    measured window, from the same spans as :func:`resource_audit` (so utilisation by hour,
    (busy - overtime) / on duty, averages to the KPI). Busy and overtime are the exact
    integrals of the spans over each hour, summed over the weeks exactly and rounded once."""
    totals = _AuditTotals(pools, t0, t1)
    totals.add_work(work)
    return totals.hourly_frame()


def audits_from_files(calls_path, work_path, pools: list[dict], t0: float, t1: float,
                      rows: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(:func:`resource_audit`, :func:`hourly_audit`) of a streamed replication, from its call
    log and assignments log files, the very numbers of the same logs in memory.

    The files are read ``rows`` rows at a time (default: a row group of the streaming
    writer, ``calllog.ROW_GROUP``), only :data:`AUDIT_CALL_COLUMNS` and
    :data:`AUDIT_WORK_COLUMNS`. Memory: one batch, plus ``(1 + pools / 8)`` bytes per call
    (which calls are measured, which pools served each) and a few numbers per pool and hour
    of the window; nothing grows with the spans."""
    from .calllog import batches, row_count
    totals = _AuditTotals(pools, t0, t1, calls=row_count(calls_path))
    for b in batches(calls_path, AUDIT_CALL_COLUMNS, rows):
        totals.add_calls(b)
    for b in batches(work_path, AUDIT_WORK_COLUMNS, rows):
        totals.add_work(b)
    return totals.pools_frame(), totals.hourly_frame()


# --------------------------------------------------------------------------- KPIs


ELIGIBLE_CATEGORIES = ("program_no_police", "program_police_on_scene", "fallback_busy", "fallback_unstaffed",
                       "police_first", "unanswered", "unfinished")


def eligible_category(c: pd.DataFrame | _Rows, first_tier_police: np.ndarray) -> np.ndarray:
    """Each call's ``eligible_share`` category (see GLOSSARY); ``first_tier_police``: whether
    the call's path sends it to police first. ``c``: a call log, or rows of one (:class:`_Rows`)."""
    tier = c["tier"].to_numpy()
    reason = c["fallback_reason"]
    police = c["police_on_scene"].to_numpy(bool)
    out = np.full(len(c), "unanswered", dtype=object)
    answered = tier >= 0
    first = answered & (tier == 0)
    out[first & ~police] = "program_no_police"
    out[first & police] = "program_police_on_scene"
    out[answered & (tier > 0) & (reason == "busy").to_numpy()] = "fallback_busy"
    out[answered & (tier > 0) & (reason == "unstaffed").to_numpy()] = "fallback_unstaffed"
    out[first & first_tier_police] = "police_first"
    out[(c["outcome"] == "unfinished").to_numpy()] = "unfinished"
    return out


def _response_block(out: dict, prefix: str, rt: np.ndarray, suffix: str = "", sel: np.ndarray | None = None) -> None:
    """Mean, p50 and p90 of ``rt`` (no NaN in it; on the rows ``sel``, a copy of those, or
    else all of them, reordered in place)."""
    x = rt if sel is None else rt[sel]
    out[f"{prefix}_mean{suffix}"] = _mean(x)
    out[f"{prefix}_p50{suffix}"] = _quantile(x, 0.5)
    out[f"{prefix}_p90{suffix}"] = _quantile(x, 0.9)


class _Buffer:
    """A column appended to a batch at a time, in one array of ``capacity`` values (grown by
    doubling if more come; a wider integer type widens it)."""

    def __init__(self, dtype, capacity: int = 0):
        self.array = np.empty(capacity, dtype)
        self.n = 0

    def append(self, values: np.ndarray) -> None:
        values = np.asarray(values)
        if values.dtype.kind == self.array.dtype.kind and values.dtype.itemsize > self.array.dtype.itemsize:
            self.array = self.array.astype(values.dtype)
        end = self.n + len(values)
        if end > len(self.array):
            grown = np.empty(max(end, 2 * len(self.array)), self.array.dtype)
            grown[:self.n] = self.array[:self.n]
            self.array = grown
        self.array[self.n:end] = values
        self.n = end

    @property
    def values(self) -> np.ndarray:
        return self.array[:self.n]


# responder kinds as kept per call (code = position; the last code: any other, "none")
_KINDS = ("police", "co_responder", "civilian", "remote", "none")


class _CallTotals:
    """What :func:`kpis` needs of a call log, gathered a batch of rows at a time; one
    definition of every KPI, whether the log is one DataFrame (one batch) or a file read in
    row groups (:func:`kpis_from_file`). Any split of the rows into batches, in any order,
    gives the same KPIs to the last bit.

    Kept across batches, per call that came in and was reached on scene: its response time
    (8 bytes: the quantiles need them all), eligible (1), responder kind (1) and call type
    (2) codes — 12 bytes a call, in arrays of ``capacity`` calls allocated once (pages never
    written take no memory) — and each callback time. Every other number is a count, an
    :class:`ExactSum`, a count per category or one bit per person id (distinct people and
    callers)."""

    def __init__(self, scenario=None, capacity: int = 0):
        self.scenario = scenario
        self.targets = list(scenario.response_targets_min) if scenario is not None else [30.0]
        self.n: Counter = Counter()                    # counts, by name
        self.sums: dict[str, ExactSum] = defaultdict(ExactSum)
        self.kept = {"rt": _Buffer(float, capacity), "eligible": _Buffer(bool, capacity),
                     "kind": _Buffer(np.int8, capacity), "type": _Buffer(np.int16, capacity)}
        self.present: set[tuple[str, int]] = set()    # (kind of eligible calls | type, code) that came in
        self.callback: list[np.ndarray] = []          # callback times (non-NaN)
        self.types: dict[str, int] = {}                # call type -> code, in order of first sight
        self.police_rt: dict = {}                      # priority -> ExactSum of police-answered rt
        self.holders: Counter = Counter()              # unfinished calls by holding pool
        self.transports: dict[str, int] = {}           # destination -> transports, in order of first sight
        self.callers, self.people = _Seen(), _Seen()
        self.has: set[str] = set()                     # optional columns present

    def add(self, calls: pd.DataFrame) -> _CallTotals:
        """Gather one batch of the call log (rows of :data:`KPI_CALL_COLUMNS`); returns self."""
        k, sums, scenario = self.n, self.sums, self.scenario
        measured = _Rows(calls, ~calls["warmup"].to_numpy(bool))
        c = _incoming(calls)                        # calls that happened and came in
        n = len(c)
        k["calls"] += n
        rt = c["response_time"].to_numpy(dtype=float)
        eligible = c["eligible"].to_numpy(bool)
        kind = np.full(n, len(_KINDS) - 1, np.int8)
        if "responder" in c:
            responder = c["responder"]
            for code, name in enumerate(_KINDS[:-1]):
                kind[(responder == name).to_numpy()] = code
        ctype = self._type_codes(c["call_type"])
        self.present.update(("kind", int(x)) for x in np.unique(kind[eligible]))
        self.present.update(("type", int(x)) for x in np.unique(ctype))
        remote = kind == _KINDS.index("remote")
        k["eligible"] += int(eligible.sum())
        k["remote"] += int(remote.sum())
        k["not_remote"] += int((~remote).sum())
        k["not_remote_eligible"] += int((~remote & eligible).sum())
        for T in self.targets:
            hit = np.nan_to_num(rt, nan=math.inf) <= T
            k[("within", T)] += int((hit & ~remote).sum())
            k[("within_eligible", T)] += int((hit & ~remote & eligible).sum())
        on_scene = ~np.isnan(rt)
        for name, values in (("rt", rt), ("eligible", eligible), ("kind", kind), ("type", ctype)):
            self.kept[name].append(values[on_scene])
        cb = c["callback_time"].to_numpy(float)
        self.callback.append(cb[~np.isnan(cb)])
        sums["queue_wait"].add(c["queue_wait"])
        sums["travel_time"].add(c["travel_time"])
        diverted = c["diverted"].to_numpy()
        k["diverted"] += int(diverted.sum())
        k["diverted_eligible"] += int((diverted & eligible).sum())
        later = c["tier"].to_numpy() > 0
        reason = c["fallback_reason"]
        k["fallback_busy"] += int((eligible & later & (reason == "busy").to_numpy()).sum())
        k["fallback_unstaffed"] += int((eligible & later & (reason == "unstaffed").to_numpy()).sum())
        k["fallback"] += int((eligible & later).sum())
        police_pool = c["police_pool"].to_numpy(bool)
        k["police_eligible"] += int((eligible & police_pool).sum())
        first_police = _first_tier_police(c, scenario)
        cat = eligible_category(c.rows(eligible), first_police[eligible])
        for name in ELIGIBLE_CATEGORIES:
            k["eligible_share." + name] += int((cat == name).sum())
        alt = c["pool"].notna().to_numpy() & ~police_pool       # answered by a non-police unit
        k["alt"] += int(alt.sum())
        k["alt_backup"] += int((c["backup"].to_numpy() & alt).sum())
        k["no_response"] += int((c["outcome"] == "no_response").sum())
        unfinished = c["unfinished"].to_numpy(bool)
        k["unfinished"] += int(unfinished.sum())
        self.holders.update(_holders(c.rows(unfinished)))
        sums["police_minutes"].add(c["police_minutes"])
        priority = c["priority"].to_numpy()
        for prio in pd.unique(priority):
            self.police_rt.setdefault(prio, ExactSum()).add(rt[police_pool & (priority == prio)])
        self._aftercare(c)
        k["calls_prevented"] += int((measured["outcome"] == "prevented").sum())
        if "proactive" in measured:
            k["outreach_contacts"] += int(measured["proactive"].sum())
        person = measured["person"].to_numpy(np.int64, na_value=-1)
        self.people.mark(person[measured["pool"].notna().to_numpy() & (person >= 0)])   # calls and outreach
        return self

    def _type_codes(self, col: pd.Series) -> np.ndarray:
        """Each row's call type as a code of ``self.types`` (-1: none), new types added."""
        if isinstance(col.dtype, pd.CategoricalDtype):
            codes, names = col.cat.codes.to_numpy(), _categories(col)
        else:
            codes, uniques = pd.factorize(col)
            names = [str(x) for x in uniques]
        for t in names:
            self.types.setdefault(t, len(self.types))
        lookup = np.array([self.types[t] for t in names] + [-1], dtype=np.int16 if len(self.types) < 2 ** 15
                          else np.int32)
        return lookup[codes]                          # code -1 (no type) -> the last entry

    def _aftercare(self, c: _Rows) -> None:
        k = self.n
        if "destination" in c:
            self.has.add("destination")
            dest = c["destination"]
            names = _categories(dest) if isinstance(dest.dtype, pd.CategoricalDtype) else []
            for fac in names:                            # categories: every facility, even with none
                self.transports.setdefault(fac, 0)
            for fac, m in dest.value_counts(sort=False).items():
                self.transports[str(fac)] = self.transports.get(str(fac), 0) + int(m)
            k["consent_refused"] += int(c["consent_refused"].sum())
            self.sums["door_wait"].add(c["door_wait"])
        k["backups"] += int(c["backup"].sum())
        self.sums["backup_delay"].add(c["backup_delay"])
        if "followup" in c:
            self.has.add("followup")
            k["followups_done"] += int((c["followup"] == "done").sum())
            k["followups_missed"] += int((c["followup"] == "missed").sum())
        if "followup_preempted" in c:
            self.has.add("followup_preempted")
            k["followups_preempted"] += int((c["followup_preempted"] > 0).sum())
        person = c["person"].to_numpy(np.int64, na_value=-1)
        callers = person[person >= 0]
        k["callers"] += len(callers)
        self.callers.mark(callers)

    def kept_bytes(self) -> int:
        """Bytes of the per-call columns kept so far."""
        return sum(b.values.nbytes for b in self.kept.values())

    def result(self, pools: pd.DataFrame | None, horizon_days: float, facilities: pd.DataFrame | None = None
               ) -> dict[str, float]:
        """The KPIs (see :func:`kpis`) of the rows gathered."""
        k, sums, scenario = self.n, self.sums, self.scenario
        out: dict[str, float] = {}
        n = k["calls"]
        out["calls"] = float(n)
        out["calls_per_day"] = n / horizon_days
        rt, eligible, kind, ctype = (self.kept[name].values for name in ("rt", "eligible", "kind", "type"))
        whole = {f"response_time_{stat}": math.nan for stat in ("mean", "p50", "p90")}
        out.update(whole)                             # filled last, when rt may be reordered
        _response_block(out, "response_time", rt, ".eligible", eligible)
        _response_block(out, "response_time", rt, ".not_eligible", ~eligible)
        for name in ("police", "co_responder", "civilian"):
            code = _KINDS.index(name)
            if ("kind", code) in self.present:
                _response_block(out, "response_time", rt, f".eligible.{name}", eligible & (kind == code))
        for t, code in self.types.items():
            if ("type", code) in self.present:
                _response_block(out, "response_time", rt, f".type.{t}", ctype == code)
        _response_block(out, "response_time", rt)     # in place: the one copy is the kept column
        for T in self.targets:
            label = f"{T:g}"
            out[f"share_within_{label}"] = _rate(k[("within", T)], k["not_remote"])
            out[f"share_within_{label}.eligible"] = _rate(k[("within_eligible", T)], k["not_remote_eligible"])
        if k["remote"] or (pools is not None and len(pools) and pools.get("remote", pd.Series(dtype=bool)).any()):
            cb = np.concatenate(self.callback)
            out["callback_time_mean"] = _mean(cb)
            out["callback_time_p90"] = _quantile(cb, 0.9)
        out["queue_wait_mean"] = sums["queue_wait"].mean()
        out["travel_time_mean"] = sums["travel_time"].mean()
        out["diversion_rate"] = _rate(k["diverted"], n)
        n_elig = k["eligible"]
        out["eligible_diversion_rate"] = _rate(k["diverted_eligible"], n_elig)
        out["fallback_busy_rate"] = _rate(k["fallback_busy"], n_elig)
        out["fallback_unstaffed_rate"] = _rate(k["fallback_unstaffed"], n_elig)
        out["fallback_rate"] = _rate(k["fallback"], n_elig)
        out["answered_by_police_rate"] = _rate(k["police_eligible"], n_elig)
        for name in ELIGIBLE_CATEGORIES:
            out[f"eligible_share.{name}"] = _rate(k["eligible_share." + name], n_elig)
        out["police_backup_rate"] = _rate(k["alt_backup"], k["alt"])
        out["no_response_rate"] = _rate(k["no_response"], n)
        out["unfinished_rate"] = _rate(k["unfinished"], n)
        if scenario is not None:
            for p in scenario.pools:
                out[f"unfinished_calls.{p}"] = 0.0
        for p, m in sorted(self.holders.items(), key=lambda item: -item[1]):
            out[f"unfinished_calls.{p}"] = float(m)
        out["police_hours"] = sums["police_minutes"].total() / 60.0
        for prio in sorted(self.police_rt):
            out[f"police_response_time_p{prio}_mean"] = self.police_rt[prio].mean()
        self._aftercare_kpis(out, facilities)
        out["calls_prevented"] = float(k["calls_prevented"])
        out["outreach_contacts"] = float(k["outreach_contacts"])
        out["unique_people"] = float(self.people.count())
        total = 0.0
        for _, row in (pools.iterrows() if pools is not None else ()):    # None: no resource audit
            name = str(row["pool"])
            out[f"utilisation.{name}"] = _rate(row["busy_on_duty_min"], row["on_duty_min"])
            out[f"overtime_hours.{name}"] = float(row["overtime_min"]) / 60.0
            total += float(row["staffed_cost"])
            if not name.startswith("desk:"):
                out[f"cost_per_call.{name}"] = _rate(row["staffed_cost"], row["calls_served"])
        if scenario is not None:
            years = horizon_days / 365.0
            for v, per_year in scenario.costs.vehicle_per_year.items():
                total += scenario.vehicles[v] * per_year * years
            for f, per_day in scenario.costs.bed_per_day.items():
                beds = scenario.facilities[f].beds
                total += (beds or 0) * per_day * horizon_days
        out["cost_total"] = total
        out["cost_per_year"] = total * 365.0 / horizon_days
        return out

    def _aftercare_kpis(self, out: dict, facilities: pd.DataFrame | None) -> None:
        k = self.n
        if "destination" in self.has:
            for fac, m in sorted(self.transports.items(), key=lambda item: -item[1]):
                out[f"transports.{fac}"] = float(m)
            for fac in facilities["facility"] if facilities is not None and len(facilities) else []:
                out.setdefault(f"transports.{fac}", 0.0)       # the same keys from a column of text
            out["transport_consent_refused"] = float(k["consent_refused"])
            out["door_wait_hours"] = self.sums["door_wait"].total() / 60.0
        out["backups"] = float(k["backups"])
        out["backup_delay_mean"] = self.sums["backup_delay"].mean()
        if "followup" in self.has:
            out["followups_done"] = float(k["followups_done"])
            out["followups_missed"] = float(k["followups_missed"])
        if "followup_preempted" in self.has:
            out["followups_preempted"] = float(k["followups_preempted"])
        out["repeat_calls"] = float(k["callers"] - self.callers.count())   # calls from people who called before
        if facilities is not None:
            for row in facilities.itertuples():
                out[f"occupancy_mean.{row.facility}"] = row.occupancy_mean
                out[f"occupancy_peak.{row.facility}"] = row.occupancy_peak
                out[f"admissions.{row.facility}"] = float(row.admissions)
                out[f"refusal_rate.{row.facility}"] = _rate(row.refusals, row.arrivals)


def kpis(calls: pd.DataFrame, pools: pd.DataFrame, horizon_days: float,
         facilities: pd.DataFrame | None = None, scenario=None) -> dict[str, float]:
    """KPIs of one replication (names and definitions: :data:`GLOSSARY`). ``scenario`` adds
    the costs of vehicles and beds, its response targets and which paths send calls to
    police first; without it, targets are [30] minutes and only staff costs count.

    ``calls`` needs only the columns in :data:`KPI_CALL_COLUMNS`; it is read column by column
    (rows chosen by masks, never a copy of the frame). Means are exact sums over counts,
    rounded once; quantiles are numpy's (linear) — so a log split into batches
    (:func:`kpis_from_file`) gives the very same numbers."""
    return _CallTotals(scenario, len(calls)).add(calls).result(pools, horizon_days, facilities)


def kpis_from_file(calls_path, pools: pd.DataFrame | None, horizon_days: float,
                   facilities: pd.DataFrame | None = None, scenario=None, rows: int | None = None) -> dict[str, float]:
    """:func:`kpis` of a streamed replication's call log file, the very numbers of the same
    log in memory, reading :data:`KPI_CALL_COLUMNS` ``rows`` rows at a time (default: a row
    group of the streaming writer, ``calllog.ROW_GROUP``).

    Memory: one batch, plus 12 bytes per call that came in (response time and three codes,
    kept for the quantiles) and a callback time per remote answer; when the KPIs are formed,
    one more copy of the largest subset's response times (8 bytes a call) — about 20 bytes a
    call at the peak — and one bit per person id."""
    from .calllog import batches, release_memory, row_count
    totals = _CallTotals(scenario, row_count(calls_path))
    for b in batches(calls_path, KPI_CALL_COLUMNS, rows):
        totals.add(b)
        del b
        release_memory()
    return totals.result(pools, horizon_days, facilities)


class StreamTotals:
    """The KPIs' and the audits' running aggregates of a streamed replication: the model
    hands it each row group of the call log and of the assignments log as it writes them
    (``Model._flush``), so neither file is read back to form the numbers. The very code of
    :func:`kpis`, :func:`resource_audit` and :func:`hourly_audit` (``_CallTotals``,
    ``_AuditTotals``), so the numbers are those of the logs in memory and of the files read
    back (:func:`kpis_from_file`, :func:`audits_from_files`) to the last bit. Memory: theirs,
    ~12 + (1 + pools / 8) bytes a call; ``calls``: the calls expected (arrays sized once)."""

    def __init__(self, scenario, pools: list[dict], t0: float, t1: float, calls: int = 0):
        self._calls = _CallTotals(scenario, calls)
        self._audit = _AuditTotals(pools, t0, t1, calls=calls)

    def add(self, calls: pd.DataFrame, work: pd.DataFrame) -> None:
        """One row group of each log as written (the model's frames: ids of none as -1)."""
        self._calls.add(calls)
        self._audit.add_calls(calls)
        self._audit.add_work(work)

    def audits(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(:func:`resource_audit`, :func:`hourly_audit`) of every row added."""
        return self._audit.pools_frame(), self._audit.hourly_frame()

    def kpis(self, pools: pd.DataFrame | None, horizon_days: float,
             facilities: pd.DataFrame | None = None) -> dict[str, float]:
        """:func:`kpis` of every row added."""
        return self._calls.result(pools, horizon_days, facilities)


def _first_tier_police(c: _Rows, scenario) -> np.ndarray:
    """Whether each call's (screened) path sends it to police first (a first tier of police
    pools only: a co-responder team first is the program, not police)."""
    if scenario is None or "path" not in c:
        return np.zeros(len(c), dtype=bool)
    first = [name for name, path in scenario.triage.paths.items()
             if all(scenario.responder_kind(p) == "police" for p in path.tier_pools()[0])]
    return c["path"].isin(first).to_numpy(bool)


def _holders(u: _Rows) -> Counter:
    """Open calls at the end by the pool holding them: the answering pool if a unit was
    assigned, else the pools of the tier the call was last waiting for (``a+b`` for a tier
    of two pools)."""
    if not len(u):
        return Counter()
    holder = u["pool"].astype(object).to_numpy()
    if "waiting_for" in u:
        waiting = u["waiting_for"].astype(object).to_numpy()
        holder = np.where(pd.isna(holder), waiting, holder)
    holder = np.where(pd.isna(holder), "unknown", holder)
    return Counter(str(h) for h in holder.tolist())


def t_interval(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of a 95% t-interval across replications; NaN bounds for n < 2."""
    from scipy import stats
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan
    m = float(x.mean())
    if n < 2:
        return m, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return m, m - half, m + half


def summarise(kpi_long: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """Long KPI table (scenario, replication, metric, value) -> mean and 95% CI per metric.

    Columns: ``*by, metric, mean, ci_low, ci_high, replications``.
    """
    by = by or ["scenario"]
    rows = []
    for key, g in kpi_long.groupby(by + ["metric"], sort=False, observed=True):
        m, lo, hi = t_interval(g["value"])
        key = key if isinstance(key, tuple) else (key,)
        rows.append(dict(zip(by + ["metric"], key), mean=m, ci_low=lo, ci_high=hi,
                         replications=int(g["value"].notna().sum())))
    return pd.DataFrame(rows, columns=by + ["metric", "mean", "ci_low", "ci_high", "replications"])


# --------------------------------------------------------------------------- calibration KPIs
# Counts the published program figures are stated in (calls a pool attended per year,
# per month from one channel, per zone). Kept apart from ``kpis`` so the standard summary
# stays as it is; ``sim.calibrate`` adds them to every replication.


def program_kpis(calls: pd.DataFrame, horizon_days: float) -> dict[str, float]:
    """Per-pool, per-channel and per-zone KPIs of one replication (rates scale counts in
    the measured window to a year of 365 days, a month of 365/12 days, a day).

    * ``pool_calls.P``: calls pool P attended, as the answering unit or as the second unit
      a desk sent (LAPD SMART); ``pool_calls_per_year.P`` / ``_per_month.P`` / ``_per_day.P``
    * ``pool_share.P``: pool_calls.P / calls (the "20% of all 911 calls" figure)
    * ``pool_calls_per_month.P.CH``: the same, counting only calls from channel CH
    * ``pool_response_time_mean.P``: received -> P's unit on scene (minutes)
    * ``pool_no_police_rate.P``: share of calls P answered that closed with no police on scene
    * ``pool_unique_people.P``: distinct person ids P met, on calls and on its own outreach
    * ``channel_calls_per_year.CH``; ``backups_per_year``
    * ``zone_calls_per_year.Z``, ``zone_diversion_rate.Z``, ``zone_eligible_diversion_rate.Z``,
      ``zone_response_time_mean.Z``, ``zone_police_hours_per_year.Z`` (see :func:`zone_comparison`)

    Like :func:`kpis`, only calls that came in after the warm-up count (no outreach rows,
    no calls case management prevented).
    """
    return _ProgramTotals().add(calls).result(horizon_days)


PROGRAM_CALL_COLUMNS: tuple[str, ...] = (
    "warmup", "outcome", "proactive", "person", "pool", "second_pool", "channel", "backup",
    "response_time", "t_second_on_scene", "t_received", "police_on_scene",
    "zone", "diverted", "eligible", "tier", "police_minutes")
"""Columns :func:`program_kpis` (and its :func:`zone_comparison` by zone) reads."""


def program_kpis_from_file(calls_path, horizon_days: float, rows: int | None = None) -> dict[str, float]:
    """:func:`program_kpis` of a streamed replication's call log file, the very numbers of the
    same log in memory (its rows in call order), reading :data:`PROGRAM_CALL_COLUMNS` ``rows``
    rows at a time (default: a row group, ``calllog.ROW_GROUP``): see :class:`_ProgramTotals`."""
    from .calllog import batches, release_memory
    totals = _ProgramTotals()
    for calls in batches(calls_path, PROGRAM_CALL_COLUMNS, rows):
        totals.add(calls)
        del calls
        release_memory()
    return totals.result(horizon_days)


class _ProgramTotals:
    """What :func:`program_kpis` counts, gathered a batch of the call log at a time (the
    whole log in memory is one batch).

    Per pool and channel (the categories of every batch, in order of first sight, as the log
    in memory has them: the ``outreach`` channel comes with the last rows): counts, exact
    sums (:class:`ExactSum`, as :func:`_mean`) and one bit per person id and pool; per zone,
    :func:`zone_comparison`'s counts and exact sums (:class:`_GroupTotals`). Nothing is kept
    per call but the bits of the person ids, so the figures are the same to the last bit
    whatever the order of the rows and however they are split into batches."""

    def __init__(self):
        self.pools: dict[str, None] = {}
        self.channels: dict[str, None] = {}
        self.zones: dict[str, None] = {}
        self.n = self.backups = 0
        self.counts: Counter = Counter()                   # (what, pool[, channel]) -> calls
        self.rt_sums: dict[str, ExactSum] = defaultdict(ExactSum)
        self.people: dict[str, _Seen] = defaultdict(_Seen)
        self.by_zone = _GroupTotals()

    def add(self, calls: pd.DataFrame) -> "_ProgramTotals":
        counts, pools, channels, zones = self.counts, self.pools, self.channels, self.zones
        measured = _Rows(calls, ~calls["warmup"].to_numpy(bool))
        c = _incoming(calls)
        pools.update(dict.fromkeys(_categories(c["pool"])))
        channels.update(dict.fromkeys(_categories(c["channel"])))
        self.n += len(c)
        self.backups += int(c["backup"].sum())
        rt = c["response_time"].to_numpy(float)
        second_rt = (c["t_second_on_scene"] - c["t_received"]).to_numpy(float)
        pool = c["pool"].astype(object).to_numpy()
        second = c["second_pool"].astype(object).to_numpy()
        channel = c["channel"].astype(object).to_numpy()
        police_on_scene = c["police_on_scene"].to_numpy()
        person, measured_pool = measured["person"], measured["pool"]
        for ch in channels:
            counts["channel", ch] += int((channel == ch).sum())
        for p in pools:
            first, by_desk = pool == p, second == p
            attended = first | by_desk
            counts["attended", p] += int(attended.sum())
            counts["first", p] += int(first.sum())
            counts["no_police", p] += int((first & ~police_on_scene).sum())
            self.rt_sums[p].add(np.where(by_desk, second_rt, rt)[attended])
            self.people[p].mark(person[(measured_pool == p) & (person >= 0)].to_numpy(np.int64))
            for ch in channels:
                counts["attended", p, ch] += int((attended & (channel == ch)).sum())
        zones.update(dict.fromkeys(_categories(c["zone"])))
        zone = pd.Categorical(c["zone"].astype(object), categories=list(zones)).codes    # -1: none
        self.by_zone.add([(z,) for z in zones], zone, c)
        return self

    def result(self, horizon_days: float) -> dict[str, float]:
        counts, n = self.counts, self.n
        year, month = 365.0 / horizon_days, 365.0 / 12.0 / horizon_days
        out: dict[str, float] = {"backups_per_year": float(self.backups) * year}
        for p in self.pools:
            k = float(counts["attended", p])
            out[f"pool_calls.{p}"] = k
            out[f"pool_calls_per_year.{p}"] = k * year
            out[f"pool_calls_per_month.{p}"] = k * month
            out[f"pool_calls_per_day.{p}"] = k / horizon_days
            out[f"pool_share.{p}"] = _rate(k, n)
            out[f"pool_response_time_mean.{p}"] = self.rt_sums[p].mean()
            out[f"pool_no_police_rate.{p}"] = _rate(counts["no_police", p], counts["first", p])
            out[f"pool_unique_people.{p}"] = float(self.people[p].count())
            for ch in self.channels:
                out[f"pool_calls_per_month.{p}.{ch}"] = float(counts["attended", p, ch]) * month
        for ch in self.channels:
            out[f"channel_calls_per_year.{ch}"] = float(counts["channel", ch]) * year
        for _, row in self.by_zone.frame(horizon_days, ("group",)).iterrows():
            for m in ("calls_per_year", "diversion_rate", "eligible_diversion_rate", "response_time_mean",
                      "police_hours_per_year"):
                out[f"zone_{m}.{row['group']}"] = row[m]
        return out


def zone_comparison(calls: pd.DataFrame, groups: dict[str, list[str]] | list[str], horizon_days: float,
                    by: str = "group") -> pd.DataFrame:
    """Pilot zones against the rest of the city, from the call log's ``zone`` column.

    ``groups`` maps a label to zone names (``{"pilot": ["east", "west"]}``); zones in no
    group are ``rest``. A plain list of zones means ``{"pilot": zones}``. ``by="zone"``
    gives one row per zone instead. Works on a log of many scenarios and replications:
    one row per scenario, replication and group, with ``calls_per_year``,
    ``diversion_rate``, ``eligible_diversion_rate``, ``fallback_rate``,
    ``response_time_mean`` (minutes) and ``police_hours_per_year``.
    """
    if isinstance(groups, list):
        groups = {"pilot": groups}
    label = {z: g for g, zones in groups.items() for z in zones}
    c = _incoming(calls)
    zone = c["zone"].astype(object)
    key = zone if by == "zone" else zone.map(lambda z: label.get(z, "rest"))
    frame = pd.DataFrame({"scenario": c["scenario"].astype(object).to_numpy() if "scenario" in c else "",
                          "replication": c["replication"].to_numpy() if "replication" in c else 0,
                          "group": key.to_numpy()})
    g = frame.groupby(["scenario", "replication", "group"], sort=True)
    return _GroupTotals().add(list(g.size().index), g.ngroup().to_numpy(), c).frame(horizon_days)


class _GroupTotals:
    """Per group of incoming calls (a zone, a pilot area; in a log of many runs, a scenario,
    replication and group): the counts and exact sums :func:`zone_comparison` reports, added a
    batch of calls at a time. The sums are :class:`ExactSum`: the same to the last bit in any
    order of the rows and however they are split into batches."""

    FLAGS = ("diverted", "eligible", "eligible_diverted", "fallback")

    def __init__(self):
        self.calls: Counter = Counter()                      # group label -> calls
        self.flags = {f: Counter() for f in self.FLAGS}
        self.response_time: dict = defaultdict(ExactSum)
        self.police_minutes: dict = defaultdict(ExactSum)

    def add(self, labels: list, codes: np.ndarray, c: pd.DataFrame) -> "_GroupTotals":
        """Add the incoming calls ``c``; row i is in group ``labels[codes[i]]`` (a code below 0:
        in no group, left out as pandas' groupby leaves out a missing key)."""
        codes = np.asarray(codes, np.int64)
        diverted, eligible = c["diverted"].to_numpy(bool), c["eligible"].to_numpy(bool)
        flags = {"diverted": diverted, "eligible": eligible, "eligible_diverted": diverted & eligible,
                 "fallback": eligible & (c["tier"].to_numpy() > 0)}        # as fallback_rate in kpis()
        rt, pm = c["response_time"].to_numpy(float), c["police_minutes"].to_numpy(float)
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(labels) + 1))
        for k, key in enumerate(labels):
            rows = order[bounds[k]:bounds[k + 1]]
            if not len(rows):
                continue
            self.calls[key] += len(rows)
            for f in self.FLAGS:
                self.flags[f][key] += int(flags[f][rows].sum())
            self.response_time[key].add(rt[rows])
            self.police_minutes[key].add(pm[rows])
        return self

    def frame(self, horizon_days: float, names=("scenario", "replication", "group")) -> pd.DataFrame:
        """One row per group (sorted by label; ``names``: the label's parts) with
        :func:`zone_comparison`'s columns."""
        rows = []
        for key in sorted(self.calls):
            n, elig = self.calls[key], self.flags["eligible"][key]
            rows.append({**dict(zip(names, key)), "calls": n, "calls_per_year": n * 365.0 / horizon_days,
                         "diversion_rate": self.flags["diverted"][key] / n,
                         "eligible_diversion_rate": self.flags["eligible_diverted"][key] / elig if elig else math.nan,
                         "fallback_rate": self.flags["fallback"][key] / elig if elig else math.nan,
                         "response_time_mean": self.response_time[key].mean(),
                         "police_hours_per_year": self.police_minutes[key].total() / 60.0 * 365.0 / horizon_days})
        return pd.DataFrame(rows, columns=[*names, "calls", "calls_per_year", "diversion_rate",
                                           "eligible_diversion_rate", "fallback_rate", "response_time_mean",
                                           "police_hours_per_year"])


class _Rows:
    """Some rows of a call log, chosen by a boolean mask, read one column at a time:
    ``rows[name]`` is that column on those rows (a Series with a fresh RangeIndex, dtype kept).
    Only the columns asked for are copied, where ``calls[mask]`` copies every column."""

    def __init__(self, calls: pd.DataFrame, mask: np.ndarray):
        self.calls, self.mask = calls, np.asarray(mask, dtype=bool)
        self.n = int(self.mask.sum())

    def __len__(self) -> int:
        return self.n

    def __contains__(self, name: str) -> bool:
        return name in self.calls

    def __getitem__(self, name: str) -> pd.Series:
        return pd.Series(self.calls[name].array[self.mask], name=name, copy=False)

    def rows(self, mask: np.ndarray) -> _Rows:
        """The rows among these where ``mask`` (one flag per row of these) is true."""
        sub = np.zeros_like(self.mask)
        sub[self.mask] = mask
        return _Rows(self.calls, sub)


def _incoming(calls: pd.DataFrame) -> _Rows:
    """Measured calls that came in (as :func:`kpis` counts them)."""
    keep = ~calls["warmup"].to_numpy(bool) & (calls["outcome"] != "prevented").to_numpy()
    if "proactive" in calls:
        keep &= ~calls["proactive"].to_numpy(bool)
    return _Rows(calls, keep)


def _categories(col: pd.Series) -> list[str]:
    return [str(x) for x in (col.cat.categories if hasattr(col, "cat") else pd.unique(col.dropna()))]
