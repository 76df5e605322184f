"""A year of Eugene's CAHOOTS scenario against the bare SimPy M/M/c loop, same run.

Runs scenarios/eugene/cahoots.yaml (one simulated year after its warm-up) with every
mechanism the scenario has on — zones and travel, time-varying over-dispersed arrivals on
two channels, identified repeat callers, screening errors, fallback to police after a
maximum wait, shifts, shared vans, transports with consent to facilities with finite beds
and diversion, follow-up visits, police backup — then feeds the very same arrival times
and team-busy times to ``bare_mmc`` from bench/bench_engine.py (one SimPy process per
customer, a Resource with as many servers as the scenario's teams at their peak),
alternating the two and taking the median. Prints per-call wall time and the ratio
(target: engine <= 2.5x bare SimPy), then peak memory per simulated call (tracemalloc
peak during one run, and the process's maximum resident set size).

    python bench/bench_cahoots.py [--rounds 3] [--horizon-days 365] [--write docs/performance.md]

``--write`` puts the figures in their own section of docs/performance.md (between
``<!-- bench_cahoots -->`` markers), leaving every other section as it is.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import resource
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import simpy

import sim
from sim.model import Model
from sim.results import write_text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import bare_mmc  # noqa: E402

SCENARIO = ROOT / "scenarios/eugene/cahoots.yaml"
START, END = "<!-- bench_cahoots:start -->", "<!-- bench_cahoots:end -->"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{cpu}, {cores} cores, {platform.system()} {platform.release()}, python "
            f"{platform.python_version()}, simpy {simpy.__version__}, numpy {np.__version__}")


def _rss_mb() -> float:
    """Resident set size now (MiB), from /proc; NaN where unavailable."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return float("nan")


def measure(horizon_days: float, rounds: int, seed: int = 1) -> dict:
    rss0 = _rss_mb()
    s = sim.load_scenario(SCENARIO, {"horizon_days": horizon_days})
    first = Model(s, seed=seed).run()
    c = first.calls[~first.calls["proactive"]]
    served = c["t_dispatched"].notna()
    arrivals = c.loc[served, "t_received"].tolist()
    services = (c.loc[served, "t_team_free"] - c.loc[served, "t_dispatched"]).tolist()
    servers = sum(s.pools[p].schedule().max_teams for p in s.pools)
    n = len(first.calls)
    engine_t, bare_t = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        Model(s, seed=seed).run()
        engine_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        bare_mmc(arrivals, services, servers)
        bare_t.append(time.perf_counter() - t0)
    e, b = statistics.median(engine_t), statistics.median(bare_t)
    # peak RSS of the timed runs (before tracemalloc, whose own bookkeeping inflates RSS);
    # it also holds the first run's call log and the bare loop's inputs, so it is an upper bound
    maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # ru_maxrss: KiB on Linux
    del first, c
    tracemalloc.start()
    Model(s, seed=seed).run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"calls": n, "bare_calls": len(arrivals), "servers": servers, "horizon_days": horizon_days,
            "rounds": rounds, "engine_s": e, "bare_s": b, "engine_us": e / n * 1e6,
            "bare_us": b / len(arrivals) * 1e6, "ratio": (e / n) / (b / len(arrivals)),
            "peak_bytes": peak, "peak_per_call": peak / n, "maxrss_mb": maxrss_mb,
            "rss_growth_per_call": (maxrss_mb - rss0) * 2**20 / n}


def section(r: dict) -> str:
    ok = "meets" if r["ratio"] <= 2.5 else "MISSES"
    return "\n".join([
        START,
        "## CAHOOTS year against bare SimPy (bench/bench_cahoots.py)",
        "",
        f"Measured {dt.date.today().isoformat()} on {machine()}; machine shared with other work, "
        f"so treat the figures as indicative. Median of {r['rounds']} alternating rounds.",
        "",
        f"- scenario: `scenarios/eugene/cahoots.yaml`, {r['horizon_days']:g} days after the warm-up, "
        "every mechanism of the scenario on",
        f"- calls simulated: {r['calls']:,} (bare loop: the {r['bare_calls']:,} that a team answered, "
        f"same arrival and busy times, {r['servers']} servers)",
        f"- engine: {r['engine_us']:.1f} µs per call ({r['engine_s']:.2f} s, including call generation and "
        "the call-log DataFrame)",
        f"- bare SimPy M/M/c (`bench_engine.bare_mmc`): {r['bare_us']:.1f} µs per call ({r['bare_s']:.2f} s)",
        f"- ratio engine / bare: **{r['ratio']:.2f}x** (target <= 2.5x: {ok})",
        f"- peak memory: {r['peak_per_call']:.0f} bytes per simulated call (tracemalloc: peak of Python "
        f"allocations during one run, {r['peak_bytes'] / 2**20:.1f} MiB)",
        f"- process peak RSS during the timed runs: {r['maxrss_mb']:.0f} MiB, {r['rss_growth_per_call']:.0f} bytes "
        "per call above the RSS after imports (an upper bound: it also holds one run's call log and the bare "
        "loop's inputs)",
        END,
    ])


def write_section(path: Path, text: str) -> None:
    """Replace this benchmark's section of ``path`` (or append it), keeping the rest."""
    old = path.read_text(encoding="utf-8") if path.exists() else "# Performance\n"
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    new = pattern.sub(lambda _m: text, old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + text
    write_text(path, new.rstrip("\n") + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--horizon-days", type=float, default=365)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--write", default=None, help="Markdown file to put the figures in (docs/performance.md)")
    a = ap.parse_args()
    r = measure(a.horizon_days, a.rounds)
    print(f"machine: {machine()}")
    print(f"calls: {r['calls']:,}  (CAHOOTS, {a.horizon_days:g} days, median of {a.rounds} rounds)")
    print(f"engine:     {r['engine_us']:7.2f} us/call   ({r['engine_s']:.2f} s)")
    print(f"bare SimPy: {r['bare_us']:7.2f} us/call   ({r['bare_s']:.2f} s, {r['servers']} servers)")
    print(f"ratio engine / bare: {r['ratio']:.2f}x   (target <= 2.5x)")
    print(f"peak memory: {r['peak_per_call']:.0f} bytes/call (tracemalloc); peak RSS {r['maxrss_mb']:.0f} MiB, "
          f"{r['rss_growth_per_call']:.0f} bytes/call above the RSS after imports")
    if a.write:
        write_section(Path(a.write), section(r))
        print(f"wrote {a.write}")


if __name__ == "__main__":
    main()
