"""The record of calls in flight (sim/record.py): a call's values leave only once nothing
will write them again, land in the right rows, and a late write is refused."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.record import Record

DEFAULTS = {"t": math.nan, "unit": -1, "flag": False}


def test_a_call_held_by_a_follow_up_is_retired_only_when_that_ends():
    r = Record(DEFAULTS)
    r.start(0)
    r.start(1)
    r.cols["t"][0] = 5.0
    r.hold(0)                      # call 0 started a follow-up
    r.release(0)                   # its own process ends
    r.release(1)
    ids, cols = r.retire()
    assert ids.tolist() == [1]     # call 0 is still held by its follow-up
    assert cols["unit"].tolist() == [-1] and math.isnan(cols["t"][0])
    r.cols["unit"][0] = 7          # the follow-up writes
    r.release(0)
    ids, cols = r.retire()
    assert ids.tolist() == [0] and cols["t"].tolist() == [5.0] and cols["unit"].tolist() == [7]


def test_a_write_after_a_call_was_retired_is_an_error_not_a_lost_value():
    r = Record(DEFAULTS)
    r.start(3)
    r.release(3)
    r.retire()
    r.cols["t"][3] = 1.0
    with pytest.raises(RuntimeError, match=r"'t' written for call\(s\) \[3\]"):
        r.retire()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.sampled_from(list(DEFAULTS)), st.integers(0, 100)),
                max_size=120), st.lists(st.integers(0, 30), unique=True, max_size=31))
def test_every_call_is_retired_once_with_its_last_written_values(writes, finish_order):
    """Random writes, calls finished in a random order with retires in between: the union of
    the batches has every call once, with the last value written to each field (or the
    default)."""
    r = Record(DEFAULTS)
    calls = range(31)
    for i in calls:
        r.start(i)
    expect = {i: dict(DEFAULTS) for i in calls}
    finished = set()
    batches = []
    for k, (i, name, v) in enumerate(writes):
        if i in finished:
            continue
        value = {"t": float(v), "unit": v, "flag": bool(v % 2)}[name]
        r.cols[name][i] = value
        expect[i][name] = value
        if finish_order and k % 7 == 0:
            j = finish_order.pop()
            r.release(j)
            finished.add(j)
        if k % 11 == 0:
            batches.append(r.retire())
    batches.append(r.retire(everything=True))
    ids = np.concatenate([b[0] for b in batches])
    assert sorted(ids.tolist()) == list(calls)
    for b_ids, cols in batches:
        for row, i in enumerate(b_ids.tolist()):
            for name in DEFAULTS:
                got, want = cols[name][row], expect[i][name]
                assert (got == want) or (math.isnan(got) and math.isnan(want)), (i, name, got, want)
