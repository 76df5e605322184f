"""The SimPy process for one call: triage -> dispatch -> travel -> on scene -> outcome.

One process per call (not one per step). The process reads the call's attributes and
pre-drawn uniforms from the model's columns and writes its timestamps back into them, so
nothing is allocated per call beyond the generator itself. Durations of zero are skipped
rather than yielded, which keeps a no-travel validation model as lean as a bare M/M/c.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .aftercare import escalate, follow_up, transport

if TYPE_CHECKING:  # pragma: no cover
    from .model import Model

# outcome codes in the call log
RESOLVED, BACKUP, TRANSPORT, FOLLOW_UP, NO_RESPONSE, UNFINISHED, PREVENTED = range(7)
OUTCOME_NAMES = ("resolved", "backup", "transport", "follow_up", "no_response", "unfinished", "prevented")


def call_process(m: "Model", i: int):
    env = m.env
    rec = m.rec
    path = m.call_path[i]
    x, y, zone, dz = m.x[i], m.y[i], m.zone[i], m.dzone[i]
    ctype = m.ctype[i]
    priority = m.priority[i]
    cm = m.casemgmt
    if cm is not None and cm.active(m.person[i], env.now) and m.u_prevent[i] >= cm.factor:
        rec["outcome"][i] = PREVENTED     # case management: this call does not happen
        m.call_closed()
        return

    # --- call processing, then an optional triage desk -------------------------------
    if m.has_processing:
        d = m.processing(m.u_processing[i])
        if d > 0:
            yield env.timeout(d)
    if path.desk is not None:
        t_q = env.now
        seat = path.desk.take(0.0, 0.0, 0)
        if seat is None:
            seat = yield path.desk.request(i, priority, 0.0, 0.0, 0, None)
        rec["desk_wait"][i] = env.now - t_q
        yield env.timeout(path.desk_service(m.desk_u()))
        path.desk.release(seat)
    rec["t_triaged"][i] = env.now

    # --- dispatch: pools in preference order, each with a maximum wait ---------------
    team = None
    rank = 0
    for rank, (pool, wait) in enumerate(path.pools):
        team = pool.take(x, y, dz)
        if team is None and wait != 0 and (wait is None or pool.staffed_within(env.now, wait)):
            team = yield pool.request(i, priority, x, y, dz, wait)
        if team is not None:
            break
    if team is None:
        rec["outcome"][i] = NO_RESPONSE
        rec["t_cleared"][i] = env.now
        m.call_closed()
        return
    pool = team.pool
    rec["t_dispatched"][i] = env.now
    rec["pool"][i] = pool.index
    rec["team"][i] = team.index
    rec["fallback"][i] = rank > 0
    police = m.pool_police[pool.index]

    # --- travel -------------------------------------------------------------------
    cp = m.cpools[pool.index]
    if m.has_travel and not cp.remote:
        d = m.geo.turnout(m.u_turnout[i]) + m.geo.drive(team.x, team.y, team.zone, x, y, zone, m.u_travel[i])
        if d > 0:
            yield env.timeout(d)
    rec["t_on_scene"][i] = env.now
    if cm is not None:
        cm.contact(m.person[i], pool.index, env.now)

    # --- on scene -----------------------------------------------------------------
    if path.consult is not None and police:
        yield from _consult(m, i, path.consult, team, x, y, zone, dz, ctype, priority)
        m.call_closed()
        return
    outcome = cp.outcome(ctype, m.u_outcome[i])
    if ctype not in cp.takes:       # misrouted to a team that cannot take it
        outcome = BACKUP
    backup = None
    if outcome == BACKUP and not police:
        backup = env.process(_backup(m, i, x, y, zone, dz, ctype))
    yield env.timeout(cp.on_scene[ctype](m.u_on_scene[i]))
    if backup is not None:
        yield backup
        police = True
    rec["t_cleared"][i] = env.now
    rec["police_on_scene"][i] = police
    where = (x, y, zone)
    if cp.escalation is not None and m.u_escalate[i] < cp.escalation.share:
        where = yield from escalate(m, i, team, x, y, zone, cp.escalation)
    if outcome == TRANSPORT:
        outcome, where = yield from _transport_if_due(m, i, team, x, y, zone, cp, outcome)
    elif outcome == FOLLOW_UP and cp.follow_ups is not None:
        m.open_calls += 1
        env.process(follow_up(m, i, cp.follow_ups.pool or pool, x, y, zone, dz, cp.follow_ups))
    rec["outcome"][i] = outcome
    if pool.return_to_base:
        yield from m.finish(team, *where, i)
    else:
        m.free(team, *where, i)
    m.call_closed()


def _backup(m: "Model", i: int, x: float, y: float, zone: int, dz: int, ctype: int):
    """A police unit dispatched to back up a team already on scene."""
    env, rec, pool = m.env, m.rec, m.backup_pool
    rec["backup"][i] = True
    t_req = env.now
    unit = pool.take(x, y, dz)
    if unit is None:
        unit = yield pool.request(i, m.backup_priority, x, y, dz, None)
    d = m.geo.turnout(m.draw("backup/turnout")) + m.geo.drive(
        unit.x, unit.y, unit.zone, x, y, zone, m.draw("backup/travel"))
    if d > 0:
        yield env.timeout(d)
    rec["backup_delay"][i] = env.now - t_req
    rec["backup_team"][i] = unit.index
    on_scene = m.cpools[pool.index].backup_on_scene[ctype](m.draw("backup/on_scene"))
    rec["backup_on_scene"][i] = on_scene
    yield env.timeout(on_scene)
    yield from m.finish(unit, x, y, zone, None)


def _consult(m: "Model", i, consult, first, x, y, zone, dz, ctype, priority):
    """LAPD flow: the first (sworn) unit consults a desk from the scene; the desk sends a
    second pool or has the first unit transport. Records the call as cleared."""
    env, rec = m.env, m.rec
    desk = consult.desk
    t_q = env.now
    seat = desk.take(0.0, 0.0, 0)
    if seat is None:
        seat = yield desk.request(i, priority, 0.0, 0.0, 0, None)
    rec["desk_wait"][i] = env.now - t_q
    yield env.timeout(consult.desk_service(m.desk_u()))
    desk.release(seat)
    cp_first = m.cpools[first.pool.index]
    if m.u_consult[i] < consult.p_second:
        pool2 = consult.second_pool
        team2 = pool2.take(x, y, dz)
        if team2 is None and consult.max_wait != 0 and (
                consult.max_wait is None or pool2.staffed_within(env.now, consult.max_wait)):
            team2 = yield pool2.request(i, priority, x, y, dz, consult.max_wait)
        if team2 is not None:
            rec["second_pool"][i] = pool2.index
            rec["second_team"][i] = team2.index
            rec["t_second_dispatched"][i] = env.now
            d = m.geo.turnout(m.draw("second/turnout")) + m.geo.drive(
                team2.x, team2.y, team2.zone, x, y, zone, m.draw("second/travel"))
            if d > 0:
                yield env.timeout(d)
            rec["t_second_on_scene"][i] = env.now
            if consult.hands_over:
                env.process(m.finish(first, x, y, zone, i))
            cp2 = m.cpools[pool2.index]
            outcome = cp2.outcome(ctype, m.u_outcome[i])
            yield env.timeout(cp2.on_scene[ctype](m.u_on_scene[i]))
            rec["t_cleared"][i] = env.now
            rec["police_on_scene"][i] = True
            if not consult.hands_over:
                env.process(m.finish(first, x, y, zone, i))
            yield from _second_unit_leaves(m, i, team2, x, y, zone, cp2, outcome)
            return
        rec["second_unavailable"][i] = True
    # the desk kept the call with the first unit (or no second team came in time)
    yield env.timeout(cp_first.on_scene[ctype](m.u_on_scene[i]))
    rec["t_cleared"][i] = env.now
    rec["police_on_scene"][i] = True
    outcome, where = yield from _transport_if_due(m, i, first, x, y, zone, cp_first, consult.otherwise)
    rec["outcome"][i] = outcome
    yield from m.finish(first, *where, i)


def _second_unit_leaves(m: "Model", i: int, team, x: float, y: float, zone: int, cp, outcome: int):
    """The desk-sent team ends the call: it drives the person to a facility if that is the
    outcome (SMART transports), then returns to service."""
    outcome, where = yield from _transport_if_due(m, i, team, x, y, zone, cp, outcome)
    m.rec["outcome"][i] = outcome
    yield from m.finish(team, *where, None)
    m.rec["t_second_free"][i] = m.env.now


def _transport_if_due(m: "Model", i: int, team, x: float, y: float, zone: int, cp, outcome: int):
    """Drive the person to a facility when the outcome is a transport the pool makes.
    Returns (outcome, team position); a declined transport ends as resolved on scene."""
    if outcome != TRANSPORT or cp.transport is None:
        return outcome, (x, y, zone)
    where = yield from transport(m, i, team, x, y, zone, cp)
    return (RESOLVED, (x, y, zone)) if where is None else (TRANSPORT, where)
