"""The SimPy process for one call: triage -> dispatch -> travel -> on scene -> outcome.

One process per call (not one per step). The process reads the call's attributes and
pre-drawn uniforms from the model's columns and writes its timestamps back into them, so
nothing is allocated per call beyond the generator itself. Durations of zero are skipped
rather than yielded, which keeps a no-travel validation model as lean as a bare M/M/c.

Every unit that works on the call (the answering unit, a desk seat, a backup, a desk-sent
second unit, the transport leg, a scene visit) books its span in the assignments log
through ``Model.open`` / ``Model.close``: the resource audit is derived from those rows.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from .aftercare import escalate, follow_up, transport
from .streams import (BACKUP_ON_SCENE, BACKUP_TRAVEL, BACKUP_TURNOUT, CONSULT_SERVICE, DESK_SERVICE,
                      RETURN_BACKUP, RETURN_FIRST, RETURN_SECOND, SECOND_TRAVEL, SECOND_TURNOUT)

if TYPE_CHECKING:  # pragma: no cover
    from .model import Model

# outcome codes in the call log
RESOLVED, BACKUP, TRANSPORT, FOLLOW_UP, NO_RESPONSE, UNFINISHED, PREVENTED = range(7)
OUTCOME_NAMES = ("resolved", "backup", "transport", "follow_up", "no_response", "unfinished", "prevented")
# why a call was not answered by the first tier of its path
REASON_NONE, REASON_BUSY, REASON_UNSTAFFED = range(3)
REASON_NAMES = ("none", "busy", "unstaffed")


class CallInputs(NamedTuple):
    """What a call brings to its process, fixed before the run: where and what it is, and
    its pre-drawn uniforms (``u_<purpose>``, one per random step of the call path).

    One tuple per call, made a chunk of calls at a time as they arrive
    (``Model._chunk_inputs``) and held by the call's process alone, so it goes when the call
    ends. An input the scenario's call path cannot read is ``None``: a read of it stops the
    run with a TypeError, never gives a wrong number."""
    call_path: object      # the screened path (model._CPath)
    x: float               # km
    y: float
    zone: int              # the call's zone
    dzone: int             # its dispatch zone (the zone, or 0 without geography)
    ctype: int             # call type code
    person: int            # caller id (case management), -1 when not drawn
    priority: int
    u_processing: float
    u_turnout: float
    u_travel: float
    u_on_scene: float
    u_outcome: float
    u_consult: float
    u_destination: float
    u_consent: float
    u_handover: float
    u_prevent: float
    u_escalate: float


def call_process(m: "Model", i: int, c: CallInputs):
    env = m.env
    rec = m.rec
    path = c.call_path
    x, y, zone, dz = c.x, c.y, c.zone, c.dzone
    ctype = c.ctype
    priority = c.priority
    cm = m.casemgmt
    if cm is not None and cm.active(c.person, env.now) and c.u_prevent >= cm.factor:
        rec["outcome"][i] = PREVENTED     # case management: this call does not happen
        m.call_closed(i)
        return

    # --- call processing, then an optional triage desk -------------------------------
    if m.has_processing:
        d = m.processing(c.u_processing)
        if d > 0:
            yield env.timeout(d)
    if path.desk is not None:
        rec["desk_wait"][i] = yield from _use_desk(m, i, path.desk, path.desk_service, DESK_SERVICE, priority)
    # (``now``: the clock, read once after each wait rather than at every record)
    rec["t_triaged"][i] = t_triaged = now = env.now

    # --- dispatch: tiers in preference order, each with a maximum wait ---------------
    unit = m.disp.take(path.tiers[0][0], x, y, dz, priority)     # the common case: a unit is free
    if unit is not None:
        k = 0
    else:
        unit, k, reason = yield from dispatch(m, i, path.tiers, priority, x, y, dz, first_tried=True)
        rec["fallback_reason"][i] = reason
        now = env.now
    if unit is None:
        rec["outcome"][i] = NO_RESPONSE
        rec["t_cleared"][i] = now
        m.call_closed(i)
        return
    pool = unit.pool
    rec["t_dispatched"][i] = now
    rec["tier"][i] = k
    rec["unit"][i] = unit.id
    police = pool.police
    span = m.open(unit, "callback" if pool.remote else "respond", i, t_triaged, priority)

    # --- travel, then on scene -------------------------------------------------------
    cp = m.cpools[pool.index]
    consult = path.consult is not None and police
    outcome = cp.outcome(ctype, c.u_outcome)
    if ctype not in cp.takes:       # misrouted to a team that cannot take it
        outcome = BACKUP
    sends_backup = outcome == BACKUP and not police
    on_scene = cp.on_scene[ctype](c.u_on_scene)
    merged = False                  # the drive's event also waited the time on scene
    if pool.remote:
        rec["t_callback"][i] = now              # a call returned by phone: nobody goes on scene
    else:
        if m.has_travel:
            d = m.geo.turnout(c.u_turnout) + m.geo.drive(unit.x, unit.y, unit.zone, x, y, zone, c.u_travel)
            if d > 0:
                arrive = now + d                # (the clock SimPy's timeout lands on)
                if cm is None and not consult and not sends_backup:
                    # Nothing another process can see happens at this arrival (no backup
                    # sent, no desk consulted, no case-management contact; nobody reads a
                    # busy unit's place), so the drive and the time on scene are one event
                    # and the arrival is booked at its minute when it ends: one event a call
                    # fewer. Only when that end is the very minute two events would give, and
                    # before the run's cap (a call cut there has its arrival booked).
                    end = arrive + on_scene
                    if end < m.cap and now + (end - now) == end:
                        d, merged = end - now, True
                yield env.timeout(d)
                now = arrive
        unit.x, unit.y, unit.zone = x, y, dz
        rec["t_on_scene"][i] = now
    m.arrived(span, now)
    if cm is not None:
        cm.contact(c.person, pool.index, now)

    # --- on scene -----------------------------------------------------------------
    if consult:
        yield from _consult(m, i, c, path.consult, unit, span)
        m.call_closed(i)
        return
    backup = None
    if sends_backup:
        backup = env.process(_backup(m, i, x, y, zone, dz, ctype))
    if not merged:
        yield env.timeout(on_scene)
    if backup is not None:
        yield backup
        police = True
    rec["t_cleared"][i] = env.now
    if police:                          # (the column's default is False)
        rec["police_on_scene"][i] = True
    where = (x, y, dz)
    if cp.escalation is not None and c.u_escalate < cp.escalation.share:
        where, span = yield from escalate(m, i, unit, x, y, dz, priority, cp.escalation, span)
    if outcome == TRANSPORT:
        outcome, where, span = yield from _transport_if_due(m, i, c, unit, x, y, dz, cp, outcome, span)
    elif outcome == FOLLOW_UP and cp.follow_ups is not None:
        m.hold(i)
        env.process(follow_up(m, i, m.followup_tier[pool.index], x, y, zone, dz, cp.follow_ups))
    rec["outcome"][i] = outcome
    if pool.return_to_base:
        yield from m.finish(unit, *where, span, i, RETURN_FIRST, answering=True)
    else:
        m.free(unit, *where, span, i, answering=True)
    m.call_closed(i)


def dispatch(m: "Model", i: int, tiers, priority: int, x: float, y: float, dz: int, first_tried: bool = False):
    """The call's unit: tier by tier, the closest available unit now, else wait in the
    tier's queue up to its maximum wait (never for a tier nobody staffs within that wait).

    Returns (unit or None, index of the tier that answered or -1, reason code): the reason
    says why the first tier did not answer — ``busy`` when one of its units was on duty or
    came on duty within the wait but none was free in time, ``unstaffed`` when none was."""
    env = m.env
    reason = REASON_NONE
    for k, (tier, wait) in enumerate(tiers):
        unit = None if (k == 0 and first_tried) else m.disp.take(tier, x, y, dz, priority)
        if unit is None:
            now = env.now
            can_wait = wait != 0 and (wait is None or tier.staffed_within(now, wait))
            if k == 0:
                reason = REASON_BUSY if (tier.on_duty() or can_wait) else REASON_UNSTAFFED
            if can_wait:
                m.rec["waiting_for"][i] = tier.index
                unit = yield m.disp.request(tier, i, priority, x, y, dz, wait)
        if unit is not None:
            return unit, k, (reason if k else REASON_NONE)
    return None, -1, reason


def _use_desk(m: "Model", i: int, desk, service, role: int, priority: int):
    """A desk seat handles the call (triage or a consult from the scene); returns the wait."""
    env = m.env
    t_q = env.now
    seat = m.disp.take(desk, 0.0, 0.0, 0, priority)
    if seat is None:
        seat = yield m.disp.request(desk, i, priority, 0.0, 0.0, 0, None)
    wait = env.now - t_q
    span = m.open(seat, "desk", i, t_q, priority)
    m.arrived(span)
    yield env.timeout(service(m.ku(i, role)))
    m.close(span)
    m.disp.release(seat, 0.0, 0.0, 0)
    return wait


def _backup(m: "Model", i: int, x: float, y: float, zone: int, dz: int, ctype: int):
    """A police unit dispatched to back up a team already on scene."""
    env, rec = m.env, m.rec
    tier, prio = m.backup_tier, m.backup_priority
    rec["backup"][i] = True
    t_req = env.now
    unit = m.disp.take(tier, x, y, dz, prio)
    if unit is None:
        unit = yield m.disp.request(tier, i, prio, x, y, dz, None)
    span = m.open(unit, "backup", i, t_req, prio)
    d = m.geo.turnout(m.ku(i, BACKUP_TURNOUT)) + m.geo.drive(
        unit.x, unit.y, unit.zone, x, y, zone, m.ku(i, BACKUP_TRAVEL))
    if d > 0:
        yield env.timeout(d)
    unit.x, unit.y, unit.zone = x, y, dz
    m.arrived(span)
    rec["backup_delay"][i] = env.now - t_req
    rec["backup_unit"][i] = unit.id
    on_scene = m.cpools[unit.pool.index].backup_on_scene[ctype](m.ku(i, BACKUP_ON_SCENE))
    rec["backup_on_scene"][i] = on_scene
    yield env.timeout(on_scene)
    yield from m.finish(unit, x, y, dz, span, i, RETURN_BACKUP)


def _consult(m: "Model", i: int, c: CallInputs, consult, first, span):
    """LAPD flow: the first (sworn) unit consults a desk from the scene; the desk sends a
    second pool or has the first unit transport. Records the call as cleared."""
    env, rec = m.env, m.rec
    x, y, zone, dz, ctype, priority = c.x, c.y, c.zone, c.dzone, c.ctype, c.priority
    rec["desk_wait"][i] = yield from _use_desk(m, i, consult.desk, consult.desk_service, CONSULT_SERVICE, priority)
    cp_first = m.cpools[first.pool.index]
    if c.u_consult < consult.p_second:
        tier2 = consult.tier
        team2 = m.disp.take(tier2, x, y, dz, priority)
        if team2 is None and consult.max_wait != 0 and (
                consult.max_wait is None or tier2.staffed_within(env.now, consult.max_wait)):
            team2 = yield m.disp.request(tier2, i, priority, x, y, dz, consult.max_wait)
        if team2 is not None:
            rec["second_pool"][i] = team2.pool.index
            rec["second_unit"][i] = team2.id
            rec["t_second_dispatched"][i] = env.now
            span2 = m.open(team2, "second_unit", i, env.now, priority)
            d = m.geo.turnout(m.ku(i, SECOND_TURNOUT)) + m.geo.drive(
                team2.x, team2.y, team2.zone, x, y, zone, m.ku(i, SECOND_TRAVEL))
            if d > 0:
                yield env.timeout(d)
            team2.x, team2.y, team2.zone = x, y, dz
            m.arrived(span2)
            rec["t_second_on_scene"][i] = env.now
            if consult.hands_over:
                _hand_over(m, i, first, x, y, dz, span)
            cp2 = m.cpools[team2.pool.index]
            outcome = cp2.outcome(ctype, c.u_outcome)
            yield env.timeout(cp2.on_scene[ctype](c.u_on_scene))
            rec["t_cleared"][i] = env.now
            rec["police_on_scene"][i] = True
            if not consult.hands_over:
                _hand_over(m, i, first, x, y, dz, span)
            outcome, where, span2 = yield from _transport_if_due(m, i, c, team2, x, y, dz, cp2, outcome, span2)
            rec["outcome"][i] = outcome
            yield from m.finish(team2, *where, span2, i, RETURN_SECOND)
            rec["t_second_free"][i] = env.now
            return
        rec["second_unavailable"][i] = True
    # the desk kept the call with the first unit (or no second team came in time)
    yield env.timeout(cp_first.on_scene[ctype](c.u_on_scene))
    rec["t_cleared"][i] = env.now
    rec["police_on_scene"][i] = True
    outcome, where, span = yield from _transport_if_due(m, i, c, first, x, y, dz, cp_first, consult.otherwise, span)
    rec["outcome"][i] = outcome
    yield from m.finish(first, *where, span, i, RETURN_FIRST, answering=True)


def _hand_over(m: "Model", i: int, first, x: float, y: float, dz: int, span) -> None:
    """The first unit leaves the scene to the second one: its drive back runs on its own,
    and keeps the call open until the unit is back in service."""
    m.hold(i)

    def drive_back():
        yield from m.finish(first, x, y, dz, span, i, RETURN_FIRST, answering=True)
        m.call_closed(i)
    m.env.process(drive_back())


def _transport_if_due(m: "Model", i: int, c: CallInputs, unit, x: float, y: float, zone: int, cp,
                      outcome: int, span):
    """Drive the person to a facility when the outcome is a transport the pool makes.
    Returns (outcome, unit position, open span); a declined transport ends as resolved."""
    if outcome != TRANSPORT or cp.transport is None:
        return outcome, (x, y, zone), span
    where, span = yield from transport(m, i, c, unit, x, y, zone, cp, span)
    return (RESOLVED, (x, y, zone), span) if where is None else (TRANSPORT, where, span)
