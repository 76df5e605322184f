"""Argument types for the command line: a bad value is one argparse error line, exit 2.

``type=positive_int`` and friends raise :class:`argparse.ArgumentTypeError` with what is
allowed, so ``-r 0``, ``--seed -1``, ``--precision nan`` or ``--period-days 0`` never reach
the computation.
"""
from __future__ import annotations

import argparse
import math


def _number(text: str, kind: type):
    try:
        v = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"'{text}' is not {'a whole number' if kind is int else 'a number'}") \
            from None
    if kind is float and not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"'{text}' is not a finite number")
    return v


def positive_int(text: str) -> int:
    """A whole number >= 1 (replications, workers)."""
    v = _number(text, int)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {v})")
    return v


def seed(text: str) -> int:
    """A random seed: a whole number from 0 to 2**63 - 1."""
    v = _number(text, int)
    if not 0 <= v < 2 ** 63:
        raise argparse.ArgumentTypeError(f"a seed must be between 0 and 2**63 - 1 (got {v})")
    return v


def positive_float(text: str) -> float:
    """A finite number > 0 (precision, period in days, tolerance)."""
    v = _number(text, float)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0 (got {text})")
    return v

