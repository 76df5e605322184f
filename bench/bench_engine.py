"""Engine speed against a bare SimPy M/M/c, same calls, same run.

Runs scenarios/validation/mmc.yaml through the engine, then feeds the very same arrival
times and on-scene times to a minimal SimPy M/M/c loop written here, alternating the two
several times and taking the median of the per-round ratios, and prints per-call CPU time and the ratio
(target: engine <= 1.5x bare SimPy). The engine's time includes generating the calls and
building the call-log DataFrame; the bare loop gets its inputs for free.

    python bench/bench_engine.py [--horizon-days 365] [--rounds 5]
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import simpy

import sim
from sim.model import Model

ROOT = Path(__file__).resolve().parents[1]


def bare_mmc(arrivals: list[float], services: list[float], servers: int) -> list[float]:
    """The textbook SimPy M/M/c: one process per customer, a Resource, record the wait."""
    env = simpy.Environment()
    res = simpy.Resource(env, capacity=servers)
    waits = [0.0] * len(arrivals)

    def customer(i, service):
        t = env.now
        with res.request() as req:
            yield req
            waits[i] = env.now - t
            yield env.timeout(service)

    def source():
        for i, (t, s) in enumerate(zip(arrivals, services)):
            yield env.timeout(t - env.now)
            env.process(customer(i, s))

    env.process(source())
    env.run()
    return waits


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--horizon-days", type=float, default=365)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    s = sim.load_scenario(ROOT / "scenarios/validation/mmc.yaml",
                          {"horizon_days": a.horizon_days, "warmup_days": 0})
    first = Model(s, seed=1).run()
    calls = first.calls
    arrivals = calls["t_received"].tolist()
    services = (calls["t_cleared"] - calls["t_on_scene"]).tolist()
    n = len(arrivals)
    engine_t, bare_t, engine_cpu, bare_cpu = [], [], [], []
    for _ in range(a.rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        res = Model(s, seed=1).run()
        engine_t.append(time.perf_counter() - t0)
        engine_cpu.append(time.process_time() - c0)
        t0, c0 = time.perf_counter(), time.process_time()
        waits = bare_mmc(arrivals, services, 10)
        bare_t.append(time.perf_counter() - t0)
        bare_cpu.append(time.process_time() - c0)
    # same calls, same answers: the two models agree on every wait
    diff = max(abs(w - q) for w, q in zip(waits, res.calls["queue_wait"].tolist()))
    e, b = statistics.median(engine_cpu), statistics.median(bare_cpu)
    # ratio within each round; CPU time (the process's own, without the time the host gave
    # the virtual CPU to others), wall time beside it
    paired = statistics.median(x / y for x, y in zip(engine_cpu, bare_cpu))
    paired_wall = statistics.median(x / y for x, y in zip(engine_t, bare_t))
    rounds = " ".join(f"{x / y:.2f}" for x, y in zip(engine_cpu, bare_cpu))
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}, "
          f"simpy {simpy.__version__}")
    print(f"calls: {n:,}  (M/M/10, {a.horizon_days:g} days, median of {a.rounds} rounds)")
    print(f"engine:     {e / n * 1e6:7.2f} us/call CPU   ({e:.2f} s)")
    print(f"bare SimPy: {b / n * 1e6:7.2f} us/call CPU   ({b:.2f} s)")
    print(f"ratio engine / bare: {paired:.2f}x CPU, median of the {a.rounds} paired rounds   (target <= 1.5x); "
          f"wall {paired_wall:.2f}x")
    print(f"per round (CPU): {rounds}")
    print(f"max |wait difference| between the two models: {diff:.2e} min")


if __name__ == "__main__":
    main()
