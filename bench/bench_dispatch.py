"""Dispatch cost per call against the number of units in one tier (issue 10).

One pool of N units (N = 10, 100, 1,000) on a grid of posts over a 30 x 30 km city,
Euclidean travel; demand scaled with N so that every size runs at the same utilisation
(~50%) and handles the same number of calls. The dispatcher finds the closest available
unit exactly (a grid index searched nearest cell first), so the cost per call should grow far slower
than N. Sizes run side by side in each round; the printed ratios are the median over rounds
of the per-round ratio to N = 10 (target: 1,000 units <= 3x the per-call time of 10).

    python bench/bench_dispatch.py [--calls 20000] [--rounds 5]
"""
from __future__ import annotations

import argparse
import math
import platform
import statistics
import time

import simpy

from sim.model import Model
from sim.scenario import validate

SIZES = (10, 100, 1000)


def city(units: int, calls: int) -> object:
    side = math.ceil(math.sqrt(units))
    step = 30.0 / side
    posts = [[(k % side + 0.5) * step, (k // side + 0.5) * step] for k in range(units)]
    service = 60.0
    per_hour = 0.5 * units / service * 60.0            # offered load = half the units
    days = calls / per_hour / 24.0
    return validate({
        "name": f"grid of {units}", "horizon_days": days, "warmup_days": 0, "drain_days": 1,
        "roles": {"officer": {"hourly_cost": 1, "sworn": True}},
        "call_types": {"call": {"priority": 2}},
        "zones": {"city": {"share": 1.0, "rect_km": [0, 0, 30, 30]}},
        "travel": {"model": "euclidean", "speed_kmh": 40},
        "channels": {"911": {"volume": {"per_hour": per_hour}, "mix": {"call": 1.0}}},
        "triage": {"paths": {"all": {"call_types": ["call"], "pools": ["units"]}}},
        "pools": {"units": {"roles": ["officer"], "teams": units, "posts": posts,
                            "after_call": "return_to_base",
                            "on_scene_min": {"default": {"exponential": {"mean": service}}}}},
    }, f"grid{units}.yaml")


def per_call(s) -> tuple[float, int]:
    t0 = time.perf_counter()
    res = Model(s, seed=1).run()
    return (time.perf_counter() - t0) / len(res.calls), len(res.calls)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    scenarios = {n: city(n, a.calls) for n in SIZES}
    times: dict[int, list[float]] = {n: [] for n in SIZES}
    counts = {}
    for _ in range(a.rounds):
        for n in SIZES:
            t, counts[n] = per_call(scenarios[n])
            times[n].append(t)
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}, "
          f"simpy {simpy.__version__}; median of {a.rounds} paired rounds")
    for n in SIZES:
        ratio = statistics.median(t / b for t, b in zip(times[n], times[SIZES[0]]))
        print(f"{n:>5} units: {statistics.median(times[n]) * 1e6:7.1f} us/call over {counts[n]:,} calls   "
              f"ratio to {SIZES[0]} units: {ratio:.2f}x" + ("   (target <= 3x)" if n == SIZES[-1] else ""))


if __name__ == "__main__":
    main()
