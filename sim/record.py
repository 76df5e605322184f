"""What the run records about each call, while it runs: values of calls in flight only.

The call path writes ``m.rec[column][call] = value``. Each column is a dict holding the
calls in flight (and those finished since the last sweep), so memory follows the calls
open at once, not the horizon. A call is *finished* when nothing will write its row again:
its process has ended and nothing it started still runs (a follow-up visit, a unit's drive
back after a hand-over). :meth:`Record.retire` moves finished calls' values out as dense
numpy columns, which go to a sink: kept in memory for the call-log DataFrame, or written to
Parquet while the run goes (``sim/calllog.py``).

A value written for a call after it was retired would be lost; :meth:`Record.retire`
refuses one (an internal error, never a silently wrong row).
"""
from __future__ import annotations

import math

import numpy as np

NAN = math.nan

_DTYPE = {float: np.float64, int: np.int64, bool: np.bool_}


class Record:
    """The recorded columns of calls in flight, and which calls are still held open."""

    def __init__(self, defaults: dict[str, object]):
        self.defaults = defaults
        self.dtypes = {name: _DTYPE[type(v)] for name, v in defaults.items()}
        self.cols: dict[str, dict[int, object]] = {name: {} for name in defaults}
        self.holds: dict[int, int] = {}    # call -> processes still working on it
        self.done: list[int] = []          # calls finished since the last retire
        self.closed = False                # the run is over: everything was retired

    def start(self, call: int) -> None:
        """The call's process begins."""
        self.holds[call] = 1

    def hold(self, call: int) -> None:
        """Something more works on the call (released by its own :meth:`release`)."""
        self.holds[call] += 1

    def release(self, call: int) -> None:
        if self.closed:          # a process left open at the end, closed as it is collected
            return
        h = self.holds[call] - 1
        if h:
            self.holds[call] = h
        else:
            del self.holds[call]
            self.done.append(call)

    def blank(self, n: int) -> dict[str, np.ndarray]:
        """Dense columns for ``n`` calls holding every field's default."""
        return {name: np.full(n, v, dtype=self.dtypes[name]) for name, v in self.defaults.items()}

    def retire(self, everything: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The finished calls since the last retire (with ``everything``, also those still
        open: the end of the run) as sorted ids and one dense column per recorded field
        (the field's default where nothing was written)."""
        ids = self.done
        if everything:
            ids = ids + list(self.holds)
            self.holds = {}
            self.closed = True
        self.done = []
        ids = np.sort(np.asarray(ids, dtype=np.int64))
        out = self.blank(len(ids))
        for name, col in self.cols.items():
            live = {i: col.pop(i) for i in self.holds if i in col}
            dense = out[name]
            if col:
                keys = np.fromiter(col.keys(), np.int64, len(col))
                pos = np.searchsorted(ids, keys)
                pos = np.minimum(pos, max(len(ids) - 1, 0))
                if not len(ids) or (ids[pos] != keys).any():
                    late = sorted(set(keys.tolist()) - set(ids.tolist()))[:5]
                    raise RuntimeError(f"internal error: '{name}' written for call(s) {late} that had "
                                       "finished (or never started)")
                dense[pos] = np.fromiter(col.values(), self.dtypes[name], len(col))
            self.cols[name] = live
        return ids, out
