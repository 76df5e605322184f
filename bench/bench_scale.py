"""City scale: per-call time and peak memory of one replication at 1e5, 1e6 (and 1e7) calls a year.

Runs the synthetic reference city of ``scenarios/scale/`` (the same structure with volume and
teams x1, x10, x100) for a year, each run in a fresh child process so its peak RSS is its own,
and prints per size: calls, the replication's CPU time per call (model, call log, audit and
KPIs: what an experiment's worker does per replication, after a one-day replication has
paid the process's one-time costs; the logs streamed to Parquet files,
or with ``--in-memory`` kept as DataFrames; wall time beside it, but on a shared machine wall
time measures the other load), peak RSS and RSS above the imports, and the same calls fed to a
bare SimPy M/M/c in the same child right after (``bench_engine.bare_mmc``: the very arrival
times, each call's answering-unit busy time as its service, as many servers as the scenario
has units), with the median of the per-run ratios. Each round runs every size once, one after
the other, and time(1e6)/time(1e5) is the median of the per-round ratios (1e7 runs in the first
round only).

    python bench/bench_scale.py [--sizes 100k 1m 10m] [--days 365] [--rounds 1] [--max-gb 8]

Targets (issue 17): time(1e6)/time(1e5) <= 11; peak RSS <= 600 MB at 1e6 and <= 1 GB at 1e7;
full model <= 2.5x bare SimPy per call. 1e7 calls need ``--allow-large``; the child sets it.
``--max-gb`` caps each child's address space so a size that does not fit fails cleanly
instead of pushing a shared machine into swap or the OOM killer.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"100k": "city_100k.yaml", "1m": "city_1m.yaml", "10m": "city_10m.yaml"}


def rss_mb() -> float:
    """Resident set size of this process now (MB)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(file: str, days: float, in_memory: bool) -> dict:
    """One run in this process: a replication, then the bare loop on its calls."""
    os.environ["CRISIS_SIM_ALLOW_LARGE"] = "1"
    import tempfile

    import numpy as np
    import pandas as pd

    import sim
    from bench_engine import bare_mmc
    from sim.calllog import LogFiles
    from sim.experiment import single_run
    scratch = tempfile.TemporaryDirectory()

    s = sim.load_scenario(ROOT / "scenarios" / "scale" / file, {"horizon_days": days})
    # a one-day replication first: the modules the run imports on first use (pyarrow's
    # Parquet writer, scipy's special functions...) and other one-time costs of a process are
    # paid once per worker, not per replication, so they are not in the per-call time
    warm = sim.load_scenario(ROOT / "scenarios" / "scale" / file, {"horizon_days": 1, "warmup_days": 0})
    single_run(warm, warm.seed, 0, stream=LogFiles(Path(scratch.name) / "warm_calls.parquet",
                                                   Path(scratch.name) / "warm_assignments.parquet"))
    base = rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    # as an experiment's worker runs it: the logs streamed to Parquet as the run goes
    files = None if in_memory else LogFiles(Path(scratch.name) / "calls.parquet",
                                            Path(scratch.name) / "assignments.parquet")
    res, values = single_run(s, s.seed, 0, stream=files)
    engine_s, engine_cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # before the bare loop
    c = res.calls if in_memory else pd.read_parquet(
        files.calls.path, columns=["t_received", "t_team_free", "t_dispatched"]).sort_values("t_received")
    arrivals = c["t_received"].to_numpy(float).tolist()
    services = np.nan_to_num((c["t_team_free"] - c["t_dispatched"]).to_numpy(float), nan=0.0).tolist()
    servers = int((~res.units["pool"].astype(str).str.startswith("desk:")).sum())
    kpi = {m: values.get(m) for m in ("response_time_mean", "utilisation.police", "fallback_rate")}
    del res, values, c
    t0, c0 = time.perf_counter(), time.process_time()
    bare_mmc(arrivals, services, servers)
    return {"file": file, "days": days, "calls": len(arrivals), "servers": servers,
            "engine_s": engine_s, "bare_s": time.perf_counter() - t0,
            "engine_cpu": engine_cpu, "bare_cpu": time.process_time() - c0,
            "peak_rss_mb": peak, "import_rss_mb": base, "kpis": kpi}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", nargs="+", default=["100k", "1m"], choices=list(SIZES))
    ap.add_argument("--days", type=float, default=365, help="horizon of every size (days)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="rounds; each runs every size once (10m only in the first), sizes compared round by round")
    ap.add_argument("--max-gb", type=float, default=8.0, help="address-space cap of each child (GB)")
    ap.add_argument("--in-memory", action="store_true",
                    help="keep the logs in memory (Model.run() as a notebook calls it) instead of streaming")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.days, a.in_memory)))
        return
    from bench_parallel import machine

    def cap():
        lim = int(a.max_gb * 2 ** 30)
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))

    load0 = os.getloadavg()
    # every round runs each size once, in a fresh child, one after the other: the sizes are
    # compared round by round (the load on a shared machine moves between rounds)
    runs: dict[str, dict[int, dict]] = {size: {} for size in a.sizes}   # size -> round -> run
    for k in range(a.rounds):
        for size in a.sizes:
            if k and size == "10m":
                continue                     # (once is enough for its memory; it takes long)
            cmd = [sys.executable, __file__, "--child", SIZES[size], "--days", str(a.days)]
            cmd += ["--in-memory"] if a.in_memory else []
            p = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=cap,
                               env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
            if p.returncode != 0:
                tail = (p.stderr.strip().splitlines() or ["?"])[-1]
                print(f"{size}: failed (exit {p.returncode}): {tail}", flush=True)
                continue
            runs[size][k] = json.loads(p.stdout.strip().splitlines()[-1])
    rows = []
    for size in a.sizes:
        if not runs[size]:
            continue
        rs = list(runs[size].values())
        r = dict(rs[0])
        for f in ("engine_s", "bare_s", "engine_cpu", "bare_cpu"):
            r[f] = [q[f] for q in rs]
        r["peak_rss_mb"] = max(q["peak_rss_mb"] for q in rs)
        n = r["calls"]
        e, b = statistics.median(r["engine_cpu"]), statistics.median(r["bare_cpu"])
        r.update(size=size, engine_us=e / n * 1e6, bare_us=b / n * 1e6,
                 ratio=statistics.median(x / y for x, y in zip(r["engine_cpu"], r["bare_cpu"])),
                 wall_ratio=statistics.median(x / y for x, y in zip(r["engine_s"], r["bare_s"])),
                 bytes_per_call=(r["peak_rss_mb"] - r["import_rss_mb"]) * 2 ** 20 / n)
        rows.append(r)
        print(f"{size:>5}: {n:>10,} calls  model {r['engine_us']:6.1f} us/call CPU ({e:6.1f} s CPU, "
              f"{statistics.median(r['engine_s']):6.1f} s wall)  bare SimPy {r['bare_us']:5.1f} us/call CPU  "
              f"ratio {r['ratio']:4.2f}x CPU ({r['wall_ratio']:4.2f}x wall; rounds "
              f"{' '.join(f'{x / y:.2f}' for x, y in zip(r['engine_cpu'], r['bare_cpu']))})  "
              f"peak RSS {r['peak_rss_mb']:7.0f} MB ({r['import_rss_mb']:.0f} MB after imports, "
              f"{r['bytes_per_call']:,.0f} B/call above)  {r['servers']} units  kpis {r['kpis']}", flush=True)
    print(f"machine: {machine()}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in load0)}; "
          f"after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{a.days:g}-day horizon (+ warm-up), median of {a.rounds} round(s), each size once per round "
          "(10m: once), each run paired with the bare loop on its calls; logs "
          + ("kept in memory" if a.in_memory else "streamed to Parquet"))
    by = {r["size"]: r for r in rows}
    # (rounds where both sizes ran)
    per_round = [runs["1m"][k]["engine_cpu"] / runs["100k"][k]["engine_cpu"]
                 for k in runs.get("1m", {}) if k in runs.get("100k", {})]
    if per_round:
        print(f"CPU time(1e6) / time(1e5): {statistics.median(per_round):.1f}, median of {len(per_round)} "
              f"round(s): {' '.join(f'{x:.2f}' for x in per_round)}   (target <= 11)")
    for size, limit in (("1m", 600), ("10m", 1024)):
        if size in by:
            print(f"peak RSS at {size}: {by[size]['peak_rss_mb']:.0f} MB   (target <= {limit} MB)")
    for r in rows:
        print(f"model / bare SimPy at {r['size']}: {r['ratio']:.2f}x CPU   (target <= 2.5x)")


if __name__ == "__main__":
    main()
