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
    """Calls of one replication (all, or a block of hours of them), sorted by arrival time (minutes)."""

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


BLOCK_HOURS = 168   # hours of calls generated at once (a week): memory follows a block, not the horizon


class CallSource:
    """The calls of one replication, generated a block of hours at a time, in time order.

    The numbers do not depend on the block size: each stream is drawn in order, a block
    after another (a Generator's ``random(a)`` then ``random(b)`` is its ``random(a + b)``),
    and blocks are whole hours, so sorting by time within a block sorts the horizon. What is
    drawn for the whole horizon up front is small: each channel's day factors and its Poisson
    count for every hour, which also give the number of calls before any is generated.
    """

    def __init__(self, s: Scenario, streams: Streams, block_hours: int = BLOCK_HOURS):
        from .geography import Geography
        end = s.end_min
        self.hours = int(np.ceil(end / 60.0))
        self.hour_len = np.minimum(60.0, end - 60.0 * np.arange(self.hours))
        self.block_hours = max(1, int(block_hours))
        self.type_names = list(s.call_types)
        self.channel_names = list(s.channels)
        self.zone_names = list(s.zones)
        self.geo = Geography(s)
        weights = person_weights(s, streams)
        self.cum_persons = np.cumsum(weights) if weights is not None else None
        self.channels = []
        for cname, ch in s.channels.items():
            rng = streams.rng(f"arrivals/{cname}")
            lam = hourly_rates(s, cname, self.hours) * self.hour_len / 60.0
            if ch.daily_cv > 0:
                k = 1.0 / ch.daily_cv ** 2
                days = int(np.ceil(self.hours / 24))
                lam = lam * np.repeat(rng.gamma(k, 1.0 / k, size=days), 24)[:self.hours]
            counts = rng.poisson(lam)
            mix = np.cumsum([ch.mix.get(tn, 0.0) for tn in self.type_names])
            zshares = ch.zones or {z: s.zones[z].share for z in self.zone_names}
            zc = np.cumsum([zshares.get(z, 0.0) for z in self.zone_names])
            draws = {}          # purpose -> this channel's Generator, drawn on block after block

            def u(purpose: str, size: int, cname=cname, draws=draws) -> np.ndarray:
                g = draws.get(purpose)
                if g is None:
                    g = draws[purpose] = streams.rng(f"calls/{cname}/{purpose}")
                return g.random(size)
            self.channels.append((ch, rng, counts, mix / mix[-1], zc / zc[-1], u))
        self.n = int(sum(int(c[2].sum()) for c in self.channels))

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        """The blocks in time order, as :class:`Calls` (possibly empty)."""
        for h0 in range(0, self.hours, self.block_hours):
            yield self._block(h0, min(h0 + self.block_hours, self.hours))

    def _block(self, h0: int, h1: int) -> Calls:
        hour_len = self.hour_len[h0:h1]
        nt, nz = len(self.type_names), len(self.zone_names)
        parts = []
        for ci, (ch, rng, counts_all, mix, zc, u) in enumerate(self.channels):
            counts = counts_all[h0:h1]
            n = int(counts.sum())
            t = np.repeat(60.0 * np.arange(h0, h1), counts) + rng.random(n) * np.repeat(hour_len, counts)
            t.sort()
            ctype = np.minimum(np.searchsorted(mix, u("type", n), side="right"), nt - 1)
            zone = np.minimum(np.searchsorted(zc, u("zone", n), side="right"), nz - 1)
            x, y = self.geo.locations(zone, u("location_x", n), u("location_y", n))
            person = np.full(n, -1, dtype=np.int64)
            cum = self.cum_persons
            if cum is not None and ch.identified > 0:
                has = u("identified", n) < ch.identified
                pick = np.searchsorted(cum, u("person", n) * cum[-1], side="right")
                person[has] = np.minimum(pick[has], len(cum) - 1)
            parts.append(dict(t=t, channel=np.full(n, ci, dtype=np.int64), call_type=ctype, zone=zone,
                              x=x, y=y, person=person, **{f"u_{p}": u(p, n) for p in CALL_DRAWS}))
        return _merged(parts, self.channel_names, self.type_names)


def _merged(parts: list[dict], channel_names: list[str], type_names: list[str]) -> Calls:
    """The channels' calls of one block as one set in time order (ties: channel order)."""
    if len(parts) == 1:                 # one channel: already in time order
        merged = parts[0]
    else:                               # merged column by column (one extra column at a time)
        order = np.argsort(np.concatenate([p["t"] for p in parts]), kind="stable")
        merged = {k: np.concatenate([p.pop(k) for p in parts])[order] for k in list(parts[0])}
    return Calls(t=merged["t"], channel=merged["channel"], call_type=merged["call_type"],
                 zone=merged["zone"], x=merged["x"], y=merged["y"], person=merged["person"],
                 u={p: merged[f"u_{p}"] for p in CALL_DRAWS},
                 channel_names=list(channel_names), type_names=list(type_names))


def generate_calls(s: Scenario, streams: Streams) -> Calls:
    """Every call arriving in [0, warm-up + horizon), in one set (one block of
    :class:`CallSource` as long as the horizon: the same numbers as its blocks joined)."""
    source = CallSource(s, streams, block_hours=1 << 30)
    return next(iter(source))
