"""Experiment speed-up: 2 workers against 1 worker, same replications, same run.

Runs ``replications`` of a year of a CAHOOTS-sized city (bench/cahoots_city.yaml: ~24,000
alternative-eligible calls plus ~86,000 police calls a year) through ``sim.compare`` - the
path ``crisis-sim compare`` takes, results store and call logs included - once on 1 worker
(in this process) and once on a pool of 2 worker processes, checks the two gave identical
KPIs, and prints wall times and the speed-up (target >= 1.8x) with the machine.
With ``--rounds N`` it alternates the two N times and reports the median of the N per-round
speed-ups (each round's 1-worker and N-worker runs taken back to back, under the same other
load, the side that goes first alternating by round: the fastest of each side from different
rounds would flatter the ratio); the KPIs of the two are compared exactly; each round
also prints how many cores other processes used meanwhile, so a measurement taken while the
machine was busy can be told apart.

    python bench/bench_parallel.py [--scenario FILE] [--replications 20] [--workers 2] [--rounds 1]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd

import sim
from sim.experiment import compare

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5).stdout
        model = next((l.split(":", 1)[1].strip() for l in lscpu.splitlines() if l.startswith("Model name")), "?")
    except (OSError, subprocess.SubprocessError):
        model = platform.processor() or platform.machine()
    return (f"{model}; nproc {len(os.sched_getaffinity(0))}; {platform.system()} {platform.release()}; "
            f"python {platform.python_version()}")


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the pool's workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def machine_busy_seconds() -> float:
    """CPU time all processes on the machine have used (Linux /proc/stat), or NaN."""
    try:
        with open("/proc/stat") as f:
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, f.readline().split()[1:9])
    except (OSError, ValueError):
        return float("nan")
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def timed(s, replications: int, workers: int, out: Path):
    """(wall s, own CPU s, CPU s other processes used meanwhile, results)."""
    t0, c0, m0 = time.perf_counter(), cpu_seconds(), machine_busy_seconds()
    res = compare([s], replications=replications, seed=1, workers=workers, out=out)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    return wall, cpu, machine_busy_seconds() - m0 - cpu, res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default=str(ROOT / "bench" / "cahoots_city.yaml"))
    ap.add_argument("--replications", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1)
    a = ap.parse_args()
    s = sim.load_scenario(a.scenario)
    load0 = os.getloadavg()
    rounds = []          # (1-worker wall s, N-worker wall s) of each round
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(a.rounds):
            walls, results = {}, {}
            # which side goes first alternates by round: the one that runs first may find the
            # machine (caches, the other load) in a different state from the one after it
            for w in ((1, a.workers) if k % 2 == 0 else (a.workers, 1)):
                t, cpu, others, res = timed(s, a.replications, w, Path(tmp) / f"w{w}-{k}")
                print(f"round {k + 1}, {w} worker(s): {t:6.1f} s wall, {cpu:6.1f} s CPU ({cpu / t:.2f} cores); "
                      f"other processes: {max(others, 0) / t:.2f} cores; mean replication "
                      f"{res.runs['wall_s'].mean():.2f} s", flush=True)
                walls[w], results[w] = t, res
            one = results[1]
            pd.testing.assert_frame_equal(one.kpis, results[a.workers].kpis, check_exact=True)
            rounds.append((walls[1], walls[a.workers]))
            print(f"round {k + 1} speed-up: {walls[1] / walls[a.workers]:.2f}x", flush=True)
        t1 = statistics.median(r[0] for r in rounds)
        tn = statistics.median(r[1] for r in rounds)
        speedup = statistics.median(r[0] / r[1] for r in rounds)
        calls = one.runs["calls"].mean()
        log = pd.read_parquet(one.out / "calls", columns=["eligible", "warmup"])
        eligible = (log["eligible"] & ~log["warmup"]).sum() / a.replications
    print(f"machine: {machine()}")
    print(f"load average before: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}; "
          f"after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"scenario: {s.name} ({s.horizon_days:g} days + {s.warmup_days:g} warm-up), "
          f"{calls:,.0f} calls per replication, {eligible:,.0f} of them alternative-eligible after warm-up")
    print(f"{a.replications} replications, 1 worker:  {t1:7.1f} s median  ({t1 / a.replications:.2f} s per replication)")
    print(f"{a.replications} replications, {a.workers} workers: {tn:7.1f} s median")
    print(f"speed-up: {speedup:.2f}x, median of {a.rounds} paired round(s)   (target >= 1.8x on 2 workers); "
          "identical KPIs (exact): yes")


if __name__ == "__main__":
    main()
