"""Data dictionary: every column of every output file, with its unit (one registry).

``docs/outputs.md`` is generated from :data:`TABLES` (``crisis-sim schema --outputs
docs/outputs.md``); a test checks that every column a run writes is registered here. When
the engine writes a new column, describe it here in the same commit.

Conventions for every table:

* Times (``t_*``) are minutes from Monday 00:00 of week 0, the start of the warm-up.
  Durations are minutes unless the column name says otherwise (``_km``, ``_min``...).
* **Missing is null.** A value that does not apply or never happened (no unit was sent, the
  call has no person, the unit never arrived) is null: NaN in number columns, ``<NA>`` in
  integer id columns, null in text columns. No sentinel numbers such as −1 in files or in
  ``Results`` tables (the engine's own ``RunResult`` writes −1 for "no id"; :func:`nullify`
  turns those into nulls on the way out).
* ``scenario`` is the scenario's label: its display name plus the overrides applied.
* **A store's folder holds more than its results.** ``Store.read`` (and ``crisis-sim
  report``) returns the rows of replications committed ``ok`` in ``runs/`` only. A reader of
  a table's folder that does not look at ``runs/`` (``pd.read_parquet("out/calls")``,
  pyarrow datasets, Dask, DuckDB) also sees the whole part files of replications that
  failed or were killed before their record was written: join on ``runs/``
  (``status == "ok"``) by scenario, point and replication to keep what the experiment kept.
  Files still being written are hidden (``.part-0.parquet.partial``) and never read.
"""
from __future__ import annotations

TIME = "min since start"
MIN, KM, FLAG, TEXT, ID, COUNT = "min", "km", "true/false", "text", "id", "count"

# columns the results store adds to every per-replication table
_PARTITION = {
    "scenario": (TEXT, "scenario label (display name plus the overrides applied; in compare/sweep "
                       "stores the folder-safe key of the scenario)"),
    "point": (COUNT, "sweep point (0 outside sweeps); one point is one combination of varied values"),
    "replication": (COUNT, "replication number, 0 first; replication r of every scenario sees the same "
                           "calls under common random numbers"),
}

_CALLS = {
    "call_id": (ID, "call number within the replication, in order of arrival"),
    "channel": (TEXT, "how the call came in (a key of channels:)"),
    "call_type": (TEXT, "call type (a key of call_types:)"),
    "priority": (COUNT, "priority of the call type; 1 is most urgent"),
    "zone": (TEXT, "zone the call arose in"),
    "x_km": (KM, "call location, east"),
    "y_km": (KM, "call location, north"),
    "person": (ID, "person behind the call (identified calls only; null otherwise)"),
    "eligible": (FLAG, "eligible for a specialist (non-patrol) response"),
    "path": (TEXT, "response path the call took after screening"),
    "misrouted": (FLAG, "screening sent the call down another path than its type's"),
    "t_received": (TIME, "call received"),
    "t_triaged": (TIME, "call processing (and any triage desk) done; ready for dispatch"),
    "t_dispatched": (TIME, "answering unit assigned (null: no unit was sent)"),
    "t_on_scene": (TIME, "answering unit on scene (null: never on scene, or a remote callback)"),
    "t_cleared": (TIME, "answering unit left the scene"),
    "t_team_free": (TIME, "answering unit free for the next call (after transport, handover, return)"),
    "t_callback": (TIME, "remote pool answered the call by phone (null for on-scene answers)"),
    "pool": (TEXT, "pool of the answering unit (null: nobody answered)"),
    "unit": (ID, "answering unit's id across all pools (the unit column of assignments.parquet)"),
    "responder": (TEXT, "kind of the answering pool: police, co_responder, civilian, remote or none"),
    "tier": (COUNT, "tier of the path that answered (0 = the first, the preferred responders; null: "
                    "nobody answered)"),
    "waiting_for": (TEXT, "the tier (its pools joined by +) the call last waited for; with unfinished, "
                          "the pool that starved it"),
    "fallback_reason": (TEXT, "why the first tier did not answer: none, busy (a unit of the first tier "
                              "was on shift but none was free within the wait) or unstaffed (no unit of "
                              "the first tier on shift)"),
    "backup": (FLAG, "the answering unit requested police backup"),
    "backup_unit": (ID, "backup unit's id (null: no backup)"),
    "backup_delay": (MIN, "backup request to backup on scene"),
    "backup_on_scene": (MIN, "backup unit's time on scene"),
    "desk_wait": (MIN, "wait for a triage-desk staff member (paths with a desk)"),
    "second_pool": (TEXT, "pool of a second unit a desk sent from the scene (staged response)"),
    "second_unit": (ID, "second unit's id"),
    "t_second_dispatched": (TIME, "second unit assigned"),
    "t_second_on_scene": (TIME, "second unit on scene"),
    "t_second_free": (TIME, "second unit free again"),
    "second_unavailable": (FLAG, "the desk wanted a second unit but none came within the wait"),
    "police_on_scene": (FLAG, "a sworn unit was on scene at some point (answering, backup or second unit)"),
    "outcome": (TEXT, "how the call ended: resolved, backup, transport, follow_up, no_response, "
                      "unfinished (still open when the run stopped) or prevented"),
    "unfinished": (FLAG, "still open when the run stopped (drain cap)"),
    "destination": (TEXT, "facility the person was taken to (transports only)"),
    "consent_refused": (FLAG, "the person declined a transport offered by a civilian team"),
    "transport_diverted": (FLAG, "the first-choice facility was full and the transport went on elsewhere"),
    "door_wait": (MIN, "time the unit waited at a full facility's door for a bed"),
    "t_handover": (TIME, "person handed over at the facility"),
    "stay": (MIN, "length of stay drawn for the person's first admission (null: not admitted)"),
    "followup_preempted": (COUNT, "times the follow-up visit was interrupted by an urgent call"),
    "followup": (TEXT, "follow-up visit: none, done or missed (expired before a unit was free)"),
    "t_followup_done": (TIME, "follow-up visit finished"),
    "escalated": (FLAG, "a remote pool's callback escalated to a scene visit"),
    "t_scene_visit": (TIME, "escalated scene visit started"),
    "advocacy": (FLAG, "a volunteer followed the person to hospital (escalated visits)"),
    "proactive": (FLAG, "a contact the pool started on its own while idle (outreach), not a call"),
    "warmup": (FLAG, "received during the warm-up; left out of every KPI and of Results.calls"),
    "police_pool": (FLAG, "answered by a pool with a sworn role"),
    "police_minutes": (MIN, "sworn unit-minutes the call took, from assignments.parquet: every sworn "
                            "unit's spans on the call, assigned to back in service (drive back included)"),
    "callback_time": (MIN, "received to a remote team's callback (t_callback - t_received)"),
    "diverted": (FLAG, "finished with no sworn unit on scene"),
    "response_time": (MIN, "received to answering unit on scene (t_on_scene - t_received; null when "
                           "nobody went on scene, callbacks included)"),
    "queue_wait": (MIN, "ready for dispatch to unit assigned (t_dispatched - t_triaged)"),
    "travel_time": (MIN, "unit assigned to on scene, turnout included (t_on_scene - t_dispatched)"),
}

_ASSIGNMENTS = {
    "call_id": (ID, "the call (call_id of calls.parquet)"),
    "task": (TEXT, "what the unit did in this span: respond (answering on scene), callback (answering by "
                   "phone), second_unit (desk-sent), backup, transport (scene to hand-over), scene_visit "
                   "(escalated callback), follow_up, outreach, desk (a desk seat handling the call)"),
    "pool": (TEXT, "the unit's pool"),
    "unit": (ID, "unit id across all pools"),
    "crew": (TEXT, "crew (shift entry) the unit belongs to"),
    "sworn": (FLAG, "the unit has a sworn role"),
    "t_requested": (TIME, "the task asked for a unit"),
    "t_assigned": (TIME, "this unit assigned"),
    "t_arrived": (TIME, "unit arrived (on scene, or started a remote callback)"),
    "t_released": (TIME, "unit free again"),
    "overtime": (MIN, "minutes of this task past the crew's shift end"),
    "preempted": (FLAG, "the task was interrupted by a more urgent call"),
    "open_at_end": (FLAG, "the unit was still on this task when the run stopped (released = the stop)"),
    "x_from": (KM, "unit position when assigned, east"),
    "y_from": (KM, "unit position when assigned, north"),
    "x_to": (KM, "unit position when the span ended, east: the task's location, its post for pools that "
                 "return to base, where it was dispatched from for a span cut off by the end of the run"),
    "y_to": (KM, "unit position when the span ended, north (as x_to)"),
    "travel_expected": (MIN, "expected drive from the unit's position when dispatched (distance / speed, "
                             "or matrix minutes; turnout is the same for every unit); the dispatcher picks "
                             "the smallest; null for spans that continue a task"),
    "priority": (COUNT, "priority of the task's call; 1 is most urgent"),
}

_POOLS = {
    "pool": (TEXT, "pool name (desk:NAME for a triage desk)"),
    "police": (FLAG, "the pool has a sworn role"),
    "remote": (FLAG, "works by phone (callbacks); desks too"),
    "on_duty_min": ("team-min", "unit-minutes on shift in the measured window"),
    "busy_min": ("team-min", "unit-minutes busy in the measured window (overtime included)"),
    "busy_on_duty_min": ("team-min", "unit-minutes busy while on shift"),
    "overtime_min": ("team-min", "unit-minutes worked past shift ends"),
    "staffed_cost": ("currency", "(on duty + overtime) hours x the pool's hourly cost (sum of its roles)"),
    "calls_served": (COUNT, "measured calls the pool answered"),
}

_HOURLY = {
    "pool": (TEXT, "pool name (desk:NAME for a triage desk)"),
    "hour_of_week": ("hour", "0 = Monday 00:00-01:00 ... 167 = Sunday 23:00-24:00"),
    "on_duty_min": ("team-min", "unit-minutes on shift in this hour of the week, summed over the measured weeks"),
    "busy_min": ("team-min", "unit-minutes busy in this hour of the week, summed over the measured weeks"),
    "overtime_min": ("team-min", "unit-minutes past shift ends in this hour of the week (busy - overtime is "
                                 "busy on duty)"),
}

_FACILITIES = {
    "facility": (TEXT, "facility name"),
    "beds": ("beds", "beds (null: unlimited)"),
    "occupancy_mean": ("beds", "time-average occupied beds over the measured window"),
    "occupancy_peak": ("beds", "most beds occupied at once in the measured window"),
    "arrivals": (COUNT, "people brought to the door (measured window)"),
    "admissions": (COUNT, "people admitted"),
    "refusals": (COUNT, "people turned away because it was full (diverted elsewhere)"),
    "step_downs": (COUNT, "people moved on to a longer-stay facility"),
    "step_down_refused": (COUNT, "step-downs that found the next facility full"),
}

_OCCUPANCY = {
    "facility": (TEXT, "facility name"),
    "t": (TIME, "time of the change"),
    "occupied": ("beds", "beds occupied from t until the next row"),
    "beds": ("beds", "beds (null: unlimited)"),
}

_KPIS = {
    "metric": (TEXT, "KPI name (see the glossary of the report; units follow the name: _min minutes, "
                     "_rate and share_ 0-1, _hours hours, cost_ currency)"),
    "value": ("as the metric", "the KPI in one replication"),
}

_SUMMARY = {
    "metric": (TEXT, "KPI name"),
    "mean": ("as the metric", "mean across replications"),
    "ci_low": ("as the metric", "lower end of the 95% t-interval across replications (null with one)"),
    "ci_high": ("as the metric", "upper end of the 95% t-interval"),
    "replications": (COUNT, "replications with a value"),
}

_DIFFERENCES = {
    "baseline": (TEXT, "the scenario differences are taken to (the first one compared)"),
    **_SUMMARY,
    "mean": ("as the metric", "mean of the per-replication difference scenario - baseline"),
    "ci_low": ("as the metric", "lower end of the paired 95% t-interval of the difference"),
    "ci_high": ("as the metric", "upper end of the paired 95% t-interval of the difference"),
}

_CELLS = {
    "name": (TEXT, "the scenario's display name"),
    "file": (TEXT, "the scenario file (null for a scenario given as an object)"),
    "seed": (COUNT, "seed of the cell's replications"),
}

_PRECISION = {
    "metric": (TEXT, "KPI name"),
    "mean": ("as the metric", "mean across replications"),
    "half_width": ("as the metric", "half-width of the 95% interval"),
    "rel_half_width": ("share", "half-width / |mean| (0 when both are 0)"),
    "within": (FLAG, "rel_half_width is within the precision target"),
}

_RUNS = {
    "seed": (COUNT, "seed of the replication"),
    "session": (ID, "the invocation that ran it (a rerun that resumes is a new session)"),
    "worker": (TEXT, "host:pid of the process that ran it"),
    "started_utc": ("UTC time", "when it started"),
    "finished_utc": ("UTC time", "when it finished"),
    "status": (TEXT, "ok or failed"),
    "error": (TEXT, "the exception, for a failed replication (empty when ok)"),
    "traceback": (TEXT, "the traceback of a failed replication (empty when ok)"),
    "calls": (COUNT, "rows the replication logged"),
    "tables": (TEXT, "the tables the replication wrote, comma-separated (it counts as done only while "
                     "all are there)"),
    "wall_s": ("s", "wall time of the replication"),
}


def _with(partition: tuple[str, ...], cols: dict) -> dict:
    return {**{k: _PARTITION[k] for k in partition}, **cols}


_REP = ("scenario", "point", "replication")

# file -> (what one row is, {column: (unit, description)})
TABLES: dict[str, tuple[str, dict[str, tuple[str, str]]]] = {
    "calls.parquet": ("one call (or proactive contact) of one replication, warm-up calls included "
                      "(flagged warmup)", _with(_REP, _CALLS)),
    "assignments.parquet": ("one unit on one task (answer, backup, second unit, follow-up...)",
                            _with(_REP, _ASSIGNMENTS)),
    "pools.parquet": ("one pool (or triage desk) of one replication: the resource audit over the "
                      "measured window", _with(_REP, _POOLS)),
    "hourly.parquet": ("one pool and hour of the week of one replication", _with(_REP, _HOURLY)),
    "facilities.parquet": ("one facility of one replication", _with(_REP, _FACILITIES)),
    "occupancy.parquet": ("one change of a facility's occupied beds (warm-up included)",
                          _with(_REP, _OCCUPANCY)),
    "kpis.csv": ("one KPI of one replication (long form)", _with(_REP, _KPIS)),
    "summary.csv": ("one KPI of one scenario (and sweep point; a sweep adds one column per varied field)",
                    _with(("scenario", "point"), _SUMMARY)),
    "differences.csv": ("compare: one KPI of one scenario against the baseline",
                        _with(("scenario",), _DIFFERENCES)),
    "cells.csv": ("compare/sweep: one scenario (and sweep point); a sweep adds one column per varied field",
                  _with(("scenario", "point"), _CELLS)),
    "precision.csv": ("compare/sweep with --precision: one KPI of one scenario and point",
                      _with(("scenario", "point"), _PRECISION)),
    "runs/": ("compare/sweep store: one replication's record", _with(_REP, _RUNS)),
}

# integer id columns in which the engine writes -1 for "none"
_ID_COLUMNS = ("person", "unit", "tier", "backup_unit", "second_unit")


def describe(table: str, column: str) -> tuple[str, str]:
    """(unit, description) of a column; KeyError naming the table if it is not registered."""
    cols = TABLES[table][1]
    if column not in cols:
        raise KeyError(f"column '{column}' of {table} is not in sim/columns.py")
    return cols[column]


def nullify(df):
    """``df`` with the engine's −1 "none" ids as nulls (pandas nullable Int64); other columns as they are."""
    cols = [c for c in _ID_COLUMNS if c in df.columns and df[c].dtype.kind in "iu"]
    if not cols:
        return df
    df = df.copy()
    for c in cols:
        df[c] = df[c].astype("Int64").mask(df[c] < 0)
    return df


def denullify(df):
    """The inverse of :func:`nullify`: null ids back to the engine's −1 (int64), as the model's
    own frames hold them (what the KPIs and audits read)."""
    cols = [c for c in _ID_COLUMNS if c in df.columns and str(df[c].dtype) == "Int64"]
    for c in cols:
        df[c] = df[c].fillna(-1).astype("int64")
    return df


def markdown() -> str:
    """docs/outputs.md: the data dictionary, one section per file."""
    lines = ["# Output files: data dictionary", "",
             "Generated from `sim/columns.py` by `crisis-sim schema --outputs docs/outputs.md`; "
             "do not edit by hand.", "",
             "`crisis-sim run` writes calls, pools, hourly, facilities, occupancy, kpis.csv and "
             "summary.csv into one folder; `compare` and `sweep` write a results store (the same "
             "tables partitioned by scenario / point / replication, plus summary.csv, cells.csv, "
             "differences.csv, precision.csv and runs/).", ""]
    conventions = __doc__.split("Conventions for every table:")[1].strip()
    conventions = conventions.replace(":func:`nullify`", "`sim.columns.nullify`").replace("``", "`")
    lines += ["Conventions:", ""] + [line.strip() for line in conventions.splitlines()]
    for table, (row, cols) in TABLES.items():
        lines += ["", f"## {table}", "", f"One row: {row}.", "", "| column | unit | meaning |",
                  "| --- | --- | --- |"]
        lines += [f"| `{c}` | {unit} | {text} |" for c, (unit, text) in cols.items()]
    return "\n".join(_join_bullets(lines)).rstrip() + "\n"


def _join_bullets(lines: list[str]) -> list[str]:
    """Docstring bullets wrapped over several lines -> one line each (markdown tables stay)."""
    out: list[str] = []
    for line in lines:
        if out and line and not line.startswith(("*", "|", "#")) and out[-1].startswith("* "):
            out[-1] += " " + line
        else:
            out.append(line)
    return out
