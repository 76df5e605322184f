"""Weekly shift schedules.

A schedule is a step function "teams on duty" over the minute of the week (Monday 00:00 =
0, one week = 10,080 minutes), repeating every week. Planners write it as a list of
entries that add up where they overlap::

    shifts:
      - {days: daily, start: "13:00", end: "21:00", teams: 5}
      - {days: [mon], start: "17:00", end: "21:00", teams: 1}
      - {days: weekdays, start: "22:00", end: "06:00", teams: 2}   # crosses midnight
      - {days: daily, by_hour: [2,2,2,2,2,2,3,3,4,4,4,4,4,4,4,4,5,5,5,5,4,4,3,2]}

``teams: N`` alone on a pool means N teams 24/7.

Crews, not counts: every ``start/end`` entry is ``teams`` crews of its own, each on duty for
exactly that entry's hours (so back-to-back and overlapping shifts are separate crews, and a
crew going off duty is the one whose shift ended). ``by_hour`` curves (all of a pool's
``by_hour`` entries added together) become *stacked bands*: band k is one crew on duty
whenever the curve is at least k, so when the curve drops from 3 to 2 the crew of band 3
leaves and the others stay; a curve that never drops books no shift end at all. A crew
whose hours cover the whole week never goes off duty.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, field_validator, model_validator

WEEK = 7 * 24 * 60
DAY = 24 * 60
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_SETS = {
    "daily": DAY_NAMES,
    "weekdays": DAY_NAMES[:5],
    "weekends": DAY_NAMES[5:],
}
DayName = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
# Where a unit starts its shift and returns to: a zone name (its centre) or a point [x_km, y_km].
Post = Union[str, tuple[float, float]]


def parse_clock(text: str) -> int:
    """'13:30' -> 810 minutes after midnight; '24:00' is allowed as the end of a day."""
    try:
        hh, mm = str(text).split(":")
        h, m = int(hh), int(mm)
    except ValueError:
        raise ValueError(f"time '{text}' must be HH:MM (00:00 to 24:00)") from None
    if not (0 <= h <= 24 and 0 <= m < 60) or (h == 24 and m != 0):
        raise ValueError(f"time '{text}' must be HH:MM (00:00 to 24:00)")
    return h * 60 + m


class ShiftEntry(BaseModel):
    """One line of a weekly schedule (see module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: Literal["daily", "weekdays", "weekends"] | DayName | list[DayName] = "daily"
    start: str | None = None
    end: str | None = None
    teams: NonNegativeInt | None = None
    by_hour: list[NonNegativeInt] | None = Field(default=None, min_length=24, max_length=24)
    name: str | None = Field(None, description="the crew's name in the logs (default shift<k>)")
    post: Post | None = Field(None, description="where this entry's crews start and return: a zone or [x_km, y_km]")
    posts: list[Post] | None = Field(None, description="one post per crew (as many as teams)")

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, v):
        if v is not None:
            parse_clock(v)
        return v

    @model_validator(mode="after")
    def _form(self):
        if self.by_hour is not None:
            if self.start or self.end or self.teams is not None:
                raise ValueError("use either by_hour: [24 counts] or start/end/teams, not both")
        elif self.start is None or self.end is None or self.teams is None:
            raise ValueError("needs start: HH:MM, end: HH:MM and teams: N (or by_hour: [24 counts])")
        elif self.start == self.end:
            raise ValueError("start and end are equal; write 00:00 to 24:00 for a full day")
        if self.post is not None and self.posts is not None:
            raise ValueError("use post: (all crews) or posts: [one per crew], not both")
        if self.posts is not None and (self.by_hour is not None or len(self.posts) != self.teams):
            raise ValueError("posts: needs one post per crew (as many as teams:)")
        return self

    def day_indices(self) -> list[int]:
        d = self.days
        names = DAY_SETS.get(d, (d,)) if isinstance(d, str) else d
        return [DAY_NAMES.index(n) for n in names]


@dataclass(frozen=True)
class WeeklySchedule:
    """Teams on duty per minute of the week, as a step function."""

    per_minute: np.ndarray  # int, length WEEK

    @classmethod
    def from_entries(cls, entries: list[ShiftEntry]) -> "WeeklySchedule":
        counts = np.zeros(WEEK, dtype=np.int64)
        for e in entries:
            for day in e.day_indices():
                if e.by_hour is not None:
                    for h, n in enumerate(e.by_hour):
                        counts[day * DAY + h * 60: day * DAY + (h + 1) * 60] += n
                    continue
                s, t = parse_clock(e.start), parse_clock(e.end)
                length = (t - s) % DAY or DAY
                idx = (day * DAY + s + np.arange(length)) % WEEK  # wraps Sunday night
                counts[idx] += e.teams
        return cls(counts)

    @classmethod
    def constant(cls, teams: int) -> "WeeklySchedule":
        return cls(np.full(WEEK, int(teams), dtype=np.int64))

    @property
    def max_teams(self) -> int:
        return int(self.per_minute.max())

    def count_at(self, t: float) -> int:
        return int(self.per_minute[int(t) % WEEK])

    def changes(self) -> list[tuple[int, int]]:
        """(minute of week, new count) at every step, sorted; empty if constant."""
        c = self.per_minute
        idx = np.flatnonzero(c != np.roll(c, 1))
        return [(int(i), int(c[i])) for i in idx]

    def team_minutes(self, t0: float, t1: float) -> float:
        """Team-minutes on duty in [t0, t1) (whole minutes; schedules step on minutes)."""
        if t1 <= t0:
            return 0.0
        cum = np.concatenate([[0], np.cumsum(self.per_minute)])

        def upto(t: float) -> float:
            weeks, rest = divmod(t, WEEK)
            whole = int(rest)
            return weeks * cum[-1] + cum[whole] + (rest - whole) * self.per_minute[whole % WEEK]
        return float(upto(t1) - upto(t0))

    def hourly(self) -> np.ndarray:
        """Mean teams on duty in each of the 168 hours of the week."""
        return self.per_minute.reshape(168, 60).mean(axis=1)


# --------------------------------------------------------------------------- crews


@dataclass(frozen=True)
class Crew:
    """One crew: its weekly on-duty intervals (start, end) in minutes of the week, sorted;
    an interval may end past ``WEEK`` (it runs on into Monday). ``always``: never off duty."""

    name: str
    intervals: tuple[tuple[int, int], ...]
    post: Post | None = None

    @property
    def always(self) -> bool:
        return self.intervals == ((0, WEEK),)

    def minutes(self) -> np.ndarray:
        """On duty (1) or not (0) per minute of the week."""
        on = np.zeros(WEEK, dtype=np.int64)
        for a, b in self.intervals:
            on[np.arange(a, b) % WEEK] = 1
        return on


def _runs(on: np.ndarray) -> tuple[tuple[int, int], ...]:
    """Weekly on-duty minutes -> merged intervals; a run through Sunday 24:00 continues
    into Monday (one interval ending past WEEK)."""
    if on.all():
        return ((0, WEEK),)
    if not on.any():
        return ()
    d = np.diff(np.concatenate([[0], on.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    runs = [(int(a), int(b)) for a, b in zip(starts, ends)]
    if len(runs) > 1 and runs[0][0] == 0 and runs[-1][1] == WEEK:   # wraps Sunday night
        first = runs.pop(0)
        last = runs.pop()
        runs.append((last[0], WEEK + first[1]))
    return tuple(sorted(runs))


def crews_from_entries(entries: list[ShiftEntry], default_post: Post | None = None) -> list[Crew]:
    """The crews a pool's shift entries describe (see the module docstring for the rule)."""
    crews: list[Crew] = []
    curve = np.zeros(WEEK, dtype=np.int64)
    for k, e in enumerate(entries):
        if e.by_hour is not None:
            for day in e.day_indices():
                for h, n in enumerate(e.by_hour):
                    curve[day * DAY + h * 60: day * DAY + (h + 1) * 60] += n
            continue
        on = np.zeros(WEEK, dtype=bool)
        s, t = parse_clock(e.start), parse_clock(e.end)
        length = (t - s) % DAY or DAY
        for day in e.day_indices():
            on[(day * DAY + s + np.arange(length)) % WEEK] = True
        runs = _runs(on)
        name = e.name or f"shift{k}"
        for j in range(e.teams):
            post = e.posts[j] if e.posts is not None else (e.post if e.post is not None else default_post)
            crews.append(Crew(f"{name}#{j + 1}" if e.teams > 1 else name, runs, post))
    by_hour_post = next((e.post for e in entries if e.by_hour is not None and e.post is not None), default_post)
    for band in range(1, int(curve.max()) + 1):
        crews.append(Crew(f"band{band}", _runs(curve >= band), by_hour_post))
    return crews


def crews_constant(teams: int, posts: list[Post] | None = None, default_post: Post | None = None) -> list[Crew]:
    """``teams: N``: N crews on duty around the clock."""
    return [Crew(f"team{j + 1}", ((0, WEEK),), posts[j] if posts else default_post) for j in range(teams)]


def on_duty_intervals(crew: Crew, t0: float, t1: float) -> list[tuple[float, float]]:
    """The crew's on-duty intervals clipped to [t0, t1) (minutes of the run)."""
    out = []
    w0, w1 = int(t0 // WEEK) - 1, int(t1 // WEEK) + 1
    for w in range(w0, w1 + 1):
        for a, b in crew.intervals:
            lo, hi = max(w * WEEK + a, t0), min(w * WEEK + b, t1)
            if hi > lo:
                out.append((lo, hi))
    out.sort()
    merged: list[tuple[float, float]] = []
    for a, b in out:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged
