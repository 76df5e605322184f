"""Larson's (1974) hypercube queueing model, solved exactly (the tests' own reference).

N distinguishable units (servers), atoms of demand j with Poisson rates ``rates[j]``
(calls per unit time), a fixed dispatch preference list per atom (a permutation of the
units, closest first) and exponential service with the same rate ``mu`` for every unit
(travel negligible against service, as the model assumes). A call goes to the first
free unit of its atom's list.

Two variants of what happens to a call that finds every unit busy:

* ``line="zero"``: it is lost (in the simulation: it goes at once to an ample fallback pool);
* ``line="fcfs"``: it waits in one infinite first-come-first-served line and is served by the
  first unit to become free: with every unit busy each frees at rate ``mu``, so by
  memorylessness that unit is uniform among the N.

State: the set of busy units as a bit mask (bit n = unit n busy), 2^N states. In the FCFS
variant the all-busy state also carries a queue length k = 0, 1, 2, ...; those states form
an M/M/N birth-death tail with P(all busy, k) = P(all busy, 0) * rho^k, rho = lambda / (N mu).
``tail="exact"`` lumps the tail into the all-busy state exactly: the probability flow out of
it to "all but n busy" is mu * P(all busy, 0) = mu (1 - rho) * P(all busy, any k), so the
lumped state leaves to each such state at rate mu (1 - rho). ``tail="truncate"`` builds the
queue states explicitly up to length K (rho^K below 1e-13; arrivals at K are dropped) and is
kept as an independent check of the lumping.

The balance equations pi Q = 0, sum(pi) = 1 are solved with numpy. Times are in whatever
unit ``rates`` and ``mu`` share (the tests use minutes).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Hypercube:
    """Steady state of a hypercube model (see module docstring)."""

    workload: np.ndarray      # (N,) long-run fraction of time each unit is busy
    f: np.ndarray             # (J, N) fraction of atom j's calls served by unit n (queued calls included)
    lost: np.ndarray          # (J,) fraction of atom j's calls lost (zero line) ; 0 with a FCFS line
    p_all_busy: float         # fraction of time every unit is busy (= P(a call waits) with FCFS, PASTA)
    mean_queue: float         # mean number of calls waiting (FCFS; 0 for the zero line)
    mean_wait: float          # mean wait in line over all calls (FCFS; 0 for the zero line), time units
    state_probs: np.ndarray   # (2^N,) probability of each busy set; the all-busy entry includes the queue


def _check(rates, preferences, mu) -> tuple[np.ndarray, list[list[int]], int]:
    lam = np.asarray(rates, dtype=float)
    if lam.ndim != 1 or len(lam) == 0 or (lam < 0).any():
        raise ValueError("rates must be a non-empty list of non-negative numbers")
    if len(preferences) != len(lam):
        raise ValueError(f"{len(preferences)} preference lists for {len(lam)} atoms")
    n_units = len(preferences[0])
    prefs = [list(map(int, p)) for p in preferences]
    for j, p in enumerate(prefs):
        if sorted(p) != list(range(n_units)):
            raise ValueError(f"preference list of atom {j} must be a permutation of units 0..{n_units - 1}: {p}")
    if not (mu > 0):
        raise ValueError("mu must be positive")
    return lam, prefs, n_units


def _first_free(prefs: list[list[int]], n_units: int) -> np.ndarray:
    """(J, 2^N) index of the unit each atom's call goes to in each busy set; -1 = all busy."""
    full = (1 << n_units) - 1
    out = np.full((len(prefs), full + 1), -1, dtype=np.int64)
    for j, p in enumerate(prefs):
        for b in range(full):
            out[j, b] = next(n for n in p if not (b >> n) & 1)
    return out


def _stationary(q: np.ndarray) -> np.ndarray:
    """pi with pi Q = 0 and sum(pi) = 1 (an irreducible generator)."""
    np.fill_diagonal(q, 0.0)
    np.fill_diagonal(q, -q.sum(axis=1))
    a = q.T.copy()
    a[-1, :] = 1.0
    rhs = np.zeros(len(q))
    rhs[-1] = 1.0
    pi = np.linalg.solve(a, rhs)
    return np.clip(pi, 0.0, None) / np.clip(pi, 0.0, None).sum()


def solve(rates, preferences, mu: float, line: str = "zero", tail: str = "exact") -> Hypercube:
    """Exact hypercube steady state.

    rates: Poisson rate of each atom (calls per time unit); preferences: per atom, the units
    in dispatch order (closest first), a permutation of 0..N-1; mu: service rate of every unit
    (1 / mean service time); line: "zero" (loss) or "fcfs" (infinite line); tail (FCFS only):
    "exact" (lumped M/M/N tail) or "truncate" (explicit queue states).
    """
    lam, prefs, n_units = _check(rates, preferences, mu)
    if line not in ("zero", "fcfs"):
        raise ValueError("line must be 'zero' or 'fcfs'")
    if tail not in ("exact", "truncate"):
        raise ValueError("tail must be 'exact' or 'truncate'")
    total = float(lam.sum())
    full = (1 << n_units) - 1
    rho = total / (n_units * mu)
    if line == "fcfs" and rho >= 1:
        raise ValueError(f"an infinite line needs lambda < N mu (rho = {rho:.3f})")
    dest = _first_free(prefs, n_units)
    extra = 0
    if line == "fcfs" and tail == "truncate":
        extra = max(1, int(math.ceil(math.log(1e-13) / math.log(rho)))) if rho > 0 else 1
    q = np.zeros((full + 1 + extra, full + 1 + extra))
    for b in range(full):                                   # arrivals below all-busy
        for j in range(len(lam)):
            q[b, b | (1 << dest[j, b])] += lam[j]
    for b in range(1, full + 1):                            # completions
        for n in range(n_units):
            if (b >> n) & 1:
                rate = mu * (1 - rho) if (b == full and line == "fcfs" and tail == "exact") else mu
                q[b, b & ~(1 << n)] += rate
    if extra:                                               # explicit queue states full+k, k = 1..extra
        for k in range(1, extra + 1):
            q[full + k - 1, full + k] += total
            q[full + k, full + k - 1] += n_units * mu
    pi = _stationary(q)

    cube = pi[: full + 1].copy()
    if line == "fcfs":
        if tail == "exact":
            p_full = float(cube[full])
            p0 = p_full * (1 - rho)
            mean_queue = p0 * rho / (1 - rho) ** 2 if rho > 0 else 0.0
        else:
            ks = np.arange(1, extra + 1)
            mean_queue = float((ks * pi[full + 1:]).sum())
            cube[full] += pi[full + 1:].sum()
            p_full = float(cube[full])
    else:
        p_full, mean_queue = float(cube[full]), 0.0

    busy = np.array([[(b >> n) & 1 for n in range(n_units)] for b in range(full + 1)], dtype=float)
    workload = cube @ busy
    f = np.zeros((len(lam), n_units))
    for j in range(len(lam)):
        np.add.at(f[j], dest[j, :full], cube[:full])
    if line == "fcfs":
        f += p_full / n_units
        lost = np.zeros(len(lam))
    else:
        lost = np.full(len(lam), p_full)
    return Hypercube(workload=workload, f=f, lost=lost, p_all_busy=p_full, mean_queue=mean_queue,
                     mean_wait=mean_queue / total if total > 0 else 0.0, state_probs=cube)
