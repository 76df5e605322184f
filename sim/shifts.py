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
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
