"""What the assignments log costs on a CAHOOTS year (issue 11: at most 10% of run time).

Runs scenarios/eugene/cahoots.yaml for a year with the log as it is, and with a model whose
``close`` keeps the unit bookkeeping but appends no row (and so builds an empty log),
alternating the two in each round. Prints the median over rounds of the per-round ratio
full / without the log. (The run without the log cannot derive its audit: it only times.)

    python bench/bench_assignments.py [--rounds 5] [--horizon-days 365]
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import sim
from sim.model import Model

ROOT = Path(__file__).resolve().parents[1]


class NoLog(Model):
    """The same model, but spans are not written to the log (bookkeeping kept)."""

    def close(self, span, preempted=False, open_at_end=False):
        del self._open[id(span)]
        u = span[2]
        u.ot_carry = 0.0
        u.span_start = self.env.now


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--horizon-days", type=float, default=365)
    a = ap.parse_args()
    s = sim.load_scenario(ROOT / "scenarios/eugene/cahoots.yaml", {"horizon_days": a.horizon_days})
    full, bare, rows = [], [], 0
    for _ in range(a.rounds):
        t0 = time.perf_counter()
        res = Model(s, seed=1).run()
        full.append(time.perf_counter() - t0)
        rows = len(res.assignments)
        t0 = time.perf_counter()
        NoLog(s, seed=1).run()
        bare.append(time.perf_counter() - t0)
    ratio = statistics.median(f / b for f, b in zip(full, bare))
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}; "
          f"median of {a.rounds} paired rounds")
    print(f"calls: {len(res.calls):,}, assignment rows: {rows:,}")
    print(f"with the log: {statistics.median(full):.2f} s   without: {statistics.median(bare):.2f} s")
    print(f"ratio: {ratio:.3f}x  (log costs {100 * (ratio - 1):.1f}% of run time; target <= 10%)")


if __name__ == "__main__":
    main()
