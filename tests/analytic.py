"""Closed-form queueing results the engine is checked against."""
from __future__ import annotations

import math


def erlang_b(c: int, a: float) -> float:
    """Blocking probability of an M/G/c/c loss system with offered load a (erlangs)."""
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(c: int, a: float) -> float:
    """Probability of waiting in an M/M/c queue (a < c)."""
    b = erlang_b(c, a)
    return c * b / (c - a * (1 - b))


def mmc_mean_wait(c: int, lam: float, mean_service: float) -> float:
    """Mean wait in queue of an M/M/c (same time unit as mean_service)."""
    a = lam * mean_service
    return erlang_c(c, a) * mean_service / (c - a)
