"""Fewer call rows on disk, the same KPIs: ``--no-calls`` and ``--calls-sample F``.

KPIs are always computed from a replication's whole call log (streamed to a scratch file as
the run goes, ``sim/calllog.py``); these settings only choose which rows of the call log
(and of the assignments log) are stored. ``keep_calls`` is ``True`` (every row), ``False`` (none) or a fraction in (0, 1]:
each call is kept when a uniform keyed to (seed, replication, call id) is below the fraction,
so two scenarios run with the same seed keep the same calls (their rows can be paired), and a
call's spans in the assignments log are kept with it.
"""
from __future__ import annotations

import argparse
import math

import numpy as np

from .streams import generator

STREAM = "output/calls_sample"


def fraction(text: str) -> float:
    """``--calls-sample`` value: a share of calls to store, greater than 0 and at most 1."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not (math.isfinite(v) and 0 < v <= 1):
        raise argparse.ArgumentTypeError(f"a share of calls to store must be > 0 and <= 1 (got {text})")
    return v


def setting(no_calls: bool, sample: float | None) -> bool | float:
    """The ``keep_calls`` value of the command-line options."""
    if no_calls:
        return False
    return True if sample is None or sample >= 1 else float(sample)


def kept(call_ids: np.ndarray, keep_calls: bool | float, seed: int, replication: int) -> np.ndarray:
    """Which of ``call_ids`` (non-negative ints) are stored."""
    ids = np.asarray(call_ids, dtype=np.int64)
    if keep_calls is True or keep_calls is False:
        return np.full(len(ids), bool(keep_calls))
    if not len(ids):
        return np.zeros(0, dtype=bool)
    u = generator(seed, replication, STREAM).random(int(ids.max()) + 1)
    return (ids >= 0) & (u[np.maximum(ids, 0)] < float(keep_calls))


def sample_file(src, dst, keep_calls: float, seed: int, replication: int) -> None:
    """Write the rows of the stored log ``src`` whose call is kept to ``dst`` (atomically),
    row group by row group: a city-sized log is never in memory at once."""
    from .calllog import copy_rows, row_groups
    copy_rows(dst, (t.filter(kept(t.column("call_id").to_numpy(zero_copy_only=False), keep_calls, seed,
                                  replication)) for t in row_groups(src)))
