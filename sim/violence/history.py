"""The no-program history: shootings as a self-exciting (Hawkes) process.

We sample the cluster (branching) representation of a Hawkes process, which makes every
shooting's cause explicit:

* **background** shootings arrive as a Poisson process per group, with a seasonal rate
  (sampled by thinning a constant-rate process);
* each shooting triggers a Poisson(n) number of **retaliations** in the same group, each
  after a delay from a two-part kernel: exponential with a fast mean (~2 weeks) or a slow
  mean (~125 days), with configurable weights;
* retaliations trigger their own, generation after generation, until the horizon.

With a constant background rate mu and branching ratio n < 1, the steady-state rate is
mu / (1 - n) and a share n of all shootings are retaliations.

Programs never change this history: they cancel shootings in it (see ``programs.py``).
That is why each shooting also carries the uniforms the programs use to decide whether it
is prevented: a program that prevents nothing leaves exactly this history, and averted
counts are exact.

Times are in minutes from the start of the run (minute 0 is Monday 00:00, day 0 of the
seasonal year).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..streams import Streams
from .schema import ViolenceScenario

MIN_PER_DAY = 1440.0
MIN_PER_YEAR = 365.0 * MIN_PER_DAY


@dataclass(frozen=True)
class People:
    """Everyone who may shoot: one row per person, groups in scenario order."""

    group: np.ndarray   # int, group index of each person
    risk: np.ndarray    # float, relative shooting risk within the group (mean 1)


@dataclass(frozen=True)
class History:
    """Shootings sorted by time; ``parent`` is -1 for background shootings.

    ``u_prevent`` decides rate reductions by thinning (a shooting whose rate is multiplied
    by f is prevented when ``u_prevent < 1 - f``); ``u_interrupt`` decides whether the
    response to its parent cancels this retaliation (when ``u_interrupt < e``).
    """

    time: np.ndarray        # float, minutes
    parent: np.ndarray      # int, index of the triggering shooting or -1
    generation: np.ndarray  # int, 0 = background
    group: np.ndarray       # int, index into scenario groups
    person: np.ndarray      # int, index into people
    fatal: np.ndarray       # bool
    u_prevent: np.ndarray   # float U(0,1)
    u_interrupt: np.ndarray  # float U(0,1)
    people: People

    def __len__(self) -> int:
        return len(self.time)

    def first_child_time(self) -> np.ndarray:
        """Time (minutes) of each shooting's first retaliation, inf if none."""
        out = np.full(len(self), np.inf)
        kids = self.parent >= 0
        np.minimum.at(out, self.parent[kids], self.time[kids])
        return out


def seasonal_factor(t_min: np.ndarray, amplitude: float, peak_day: float) -> np.ndarray:
    """Background-rate multiplier at times ``t_min`` (minutes); averages 1 over a year."""
    day = np.asarray(t_min) / MIN_PER_DAY
    return 1.0 + amplitude * np.cos(2 * np.pi * (day - peak_day) / 365.0)


def make_people(s: ViolenceScenario, streams: Streams) -> People:
    """Members of every group with gamma-distributed risk (mean 1, cv ``risk_cv``)."""
    rng = streams.rng("violence.people")
    groups, risks = [], []
    for k, g in enumerate(s.groups.values()):
        if g.risk_cv > 0:
            shape = 1.0 / g.risk_cv ** 2
            r = rng.gamma(shape, 1.0 / shape, g.members)
        else:
            r = np.ones(g.members)
        groups.append(np.full(g.members, k))
        risks.append(r)
    return People(np.concatenate(groups), np.concatenate(risks))


def _background(s: ViolenceScenario, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(times, group index) of background shootings in [0, end), by thinning."""
    end = s.end_min
    amp, peak = s.seasonality.amplitude, s.seasonality.peak_day
    times, groups = [], []
    for k, g in enumerate(s.groups.values()):
        top = g.background_per_year / MIN_PER_YEAR * (1 + amp)     # highest rate, per minute
        n = rng.poisson(top * end)
        t = rng.uniform(0, end, n)
        keep = rng.random(n) * (1 + amp) < seasonal_factor(t, amp, peak)
        times.append(t[keep])
        groups.append(np.full(int(keep.sum()), k))
    return np.concatenate(times), np.concatenate(groups)


def generate_history(s: ViolenceScenario, streams: Streams) -> History:
    """Sample one replication's no-program history over warm-up + horizon."""
    c = s.contagion
    bg_t, bg_g = _background(s, streams.rng("violence.background"))
    rng = streams.rng("violence.offspring")
    times, parents, gens, groups = [bg_t], [np.full(len(bg_t), -1)], [np.zeros(len(bg_t), int)], [bg_g]
    # one generation at a time: children of the previous generation's shootings
    first, cur_t, cur_g, gen = 0, bg_t, bg_g, 0
    while len(cur_t):
        k = rng.poisson(c.branching_ratio, len(cur_t))
        idx = np.repeat(np.arange(len(cur_t)), k)
        fast = rng.random(len(idx)) < c.fast.weight
        mean = np.where(fast, c.fast.mean_days, c.slow.mean_days) * MIN_PER_DAY
        t = cur_t[idx] + rng.exponential(1.0, len(idx)) * mean
        inside = t < s.end_min
        idx, t = idx[inside], t[inside]
        gen += 1
        times.append(t)
        parents.append(first + idx)
        gens.append(np.full(len(t), gen))
        groups.append(cur_g[idx])
        first += len(cur_t)
        cur_t, cur_g = t, cur_g[idx]
    time = np.concatenate(times)
    parent = np.concatenate(parents)
    order = np.argsort(time, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    parent = parent[order]
    parent = np.where(parent >= 0, rank[np.maximum(parent, 0)], -1)
    group = np.concatenate(groups)[order]

    people = make_people(s, streams)
    attrs = streams.rng("violence.attributes")
    n = len(time)
    return History(
        time=time[order], parent=parent, generation=np.concatenate(gens)[order], group=group,
        person=_pick_people(people, group, attrs.random(n)),
        fatal=attrs.random(n) < c.fatality_share,
        u_prevent=attrs.random(n), u_interrupt=attrs.random(n), people=people)


def _pick_people(people: People, group: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Who fires each shooting: a member of its group, chosen in proportion to risk."""
    out = np.empty(len(group), dtype=np.int64)
    for k in np.unique(group):
        members = np.flatnonzero(people.group == k)
        cum = np.cumsum(people.risk[members])
        at = group == k
        pick = np.searchsorted(cum, u[at] * cum[-1], side="right")
        out[at] = members[np.minimum(pick, len(members) - 1)]
    return out
