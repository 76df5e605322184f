"""Time-varying call generation.

Each channel is a non-homogeneous Poisson process whose rate is piecewise constant by hour
of the week (168 weights scaled to the channel's volume), optionally multiplied by a
gamma day factor (``daily_cv``) so daily counts are over-dispersed as real 911 counts are.
For piecewise-constant rates the process is generated exactly: a Poisson count per hour,
then uniform times within the hour.

Every attribute of a call (type, zone, location, person, and the uniforms the model will
turn into durations and outcomes) comes from a stream named after its channel and purpose,
so a scenario that adds a channel leaves the other channels' calls unchanged, and two
scenarios with the same channels see identical calls (common random numbers).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .scenario import Scenario
from .streams import Streams

# Per-call uniforms handed to the model, one stream each (append new purposes at the end
# of nothing: each has its own stream, so adding one changes no other).
CALL_DRAWS = ("misroute", "processing", "turnout", "travel", "on_scene", "outcome", "consult",
              "destination", "consent", "handover", "prevent", "escalate")


@dataclass
class Calls:
    """All calls of one replication, sorted by arrival time (minutes)."""

    t: np.ndarray
    channel: np.ndarray      # index into channel_names
    call_type: np.ndarray    # index into type_names
    zone: np.ndarray
    x: np.ndarray
    y: np.ndarray
    person: np.ndarray       # -1 = no person id
    u: dict[str, np.ndarray]  # purpose -> uniforms
    channel_names: list[str]
    type_names: list[str]

    def __len__(self) -> int:
        return len(self.t)


def hourly_rates(s: Scenario, channel: str, hours: int) -> np.ndarray:
    """Expected calls in each hour 0..hours-1 (before any day-to-day variation)."""
    ch = s.channels[channel]
    w = np.asarray(ch.profile.weights(), dtype=float)
    per_hour = ch.volume.per_week_value() * w / w.sum()
    return per_hour[np.arange(hours) % 168]


def person_weights(s: Scenario, streams: Streams) -> np.ndarray | None:
    """Call propensity of each person (sums to 1), or None without a population."""
    p = s.persons
    if p is None:
        return None
    rng = streams.rng("persons/propensity")
    if p.propensity_cv == 0:
        w = np.ones(p.population)
    else:
        k = 1.0 / p.propensity_cv ** 2
        w = rng.gamma(k, 1.0 / k, size=p.population)
    return w / w.sum()


def generate_calls(s: Scenario, streams: Streams) -> Calls:
    """Every call arriving in [0, warm-up + horizon)."""
    end = s.end_min
    hours = int(np.ceil(end / 60.0))
    hour_len = np.minimum(60.0, end - 60.0 * np.arange(hours))
    type_names = list(s.call_types)
    zone_names = list(s.zones)
    from .geography import Geography
    geo = Geography(s)
    weights = person_weights(s, streams)
    cum_persons = np.cumsum(weights) if weights is not None else None

    parts = []
    for ci, (cname, ch) in enumerate(s.channels.items()):
        rng = streams.rng(f"arrivals/{cname}")
        lam = hourly_rates(s, cname, hours) * hour_len / 60.0
        if ch.daily_cv > 0:
            k = 1.0 / ch.daily_cv ** 2
            days = int(np.ceil(hours / 24))
            lam = lam * np.repeat(rng.gamma(k, 1.0 / k, size=days), 24)[:hours]
        counts = rng.poisson(lam)
        n = int(counts.sum())
        t = np.repeat(60.0 * np.arange(hours), counts) + rng.random(n) * np.repeat(hour_len, counts)
        t.sort()

        def u(purpose: str, size: int = n) -> np.ndarray:
            return streams.rng(f"calls/{cname}/{purpose}").random(size)

        mix = np.cumsum([ch.mix.get(tn, 0.0) for tn in type_names])
        ctype = np.minimum(np.searchsorted(mix / mix[-1], u("type"), side="right"), len(type_names) - 1)
        zshares = ch.zones or {z: s.zones[z].share for z in zone_names}
        zc = np.cumsum([zshares.get(z, 0.0) for z in zone_names])
        zone = np.minimum(np.searchsorted(zc / zc[-1], u("zone"), side="right"), len(zone_names) - 1)
        x, y = geo.locations(zone, u("location_x"), u("location_y"))
        person = np.full(n, -1, dtype=np.int64)
        if cum_persons is not None and ch.identified > 0:
            has = u("identified") < ch.identified
            pick = np.searchsorted(cum_persons, u("person") * cum_persons[-1], side="right")
            person[has] = np.minimum(pick[has], len(cum_persons) - 1)
        parts.append(dict(t=t, channel=np.full(n, ci, dtype=np.int64), call_type=ctype, zone=zone,
                          x=x, y=y, person=person, **{f"u_{p}": u(p) for p in CALL_DRAWS}))

    if len(parts) == 1:                 # one channel: already in time order
        merged = parts[0]
    else:                               # merged column by column (one extra column at a time)
        order = np.argsort(np.concatenate([p["t"] for p in parts]), kind="stable")
        merged = {k: np.concatenate([p.pop(k) for p in parts])[order] for k in list(parts[0])}
    return Calls(t=merged["t"], channel=merged["channel"], call_type=merged["call_type"],
                 zone=merged["zone"], x=merged["x"], y=merged["y"], person=merged["person"],
                 u={p: merged[f"u_{p}"] for p in CALL_DRAWS},
                 channel_names=list(s.channels), type_names=type_names)
