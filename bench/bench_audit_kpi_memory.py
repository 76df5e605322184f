"""Peak memory of a streamed replication's audit + KPI phase, per call, before and after.

The phase is what follows the simulation of a streamed replication: the resource audit and
the hourly audit from the call log and the assignments log files, then the KPIs from the
call log file. "before": the code of git revision ``--before`` (the columns read back whole,
``calllog.read_columns``, then ``metrics.resource_audit`` / ``hourly_audit`` / ``kpis`` of
that revision); "after": ``metrics.audits_from_files`` and ``metrics.kpis_from_file`` (a row
group at a time). Each phase runs in a fresh child process; its figure is the peak RSS
(VmHWM, reset just before the phase) above the RSS just before it.

One year of ``scenarios/scale/city_1m.yaml`` is simulated (streamed) once; ``--repeat k``
also measures a log k times as long, made of the 1e6 log's row groups repeated with call
ids shifted (the times are kept: the audits then see k spans where there was one, which
changes their numbers, not their memory).

    python bench/bench_audit_kpi_memory.py [--repeat 10] [--before REV] [--work DIR]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios/scale/city_1m.yaml"


def status(field: str) -> float:
    """A /proc/self/status field in MB (VmRSS now, VmHWM the peak)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def simulate(work: Path, days: float) -> None:
    import sim
    from sim.calllog import LogFiles
    from sim.model import Model
    os.environ["CRISIS_SIM_ALLOW_LARGE"] = "1"
    s = sim.load_scenario(SCENARIO, {"horizon_days": days})
    m = Model(s, s.seed, 0, stream=LogFiles(work / "calls-1.parquet", work / "assignments-1.parquet"))
    res = m.run()
    inputs = {"info": m._pool_info(), "t0": s.warmup_min, "t1": s.end_min, "days": days,
              "pools": res.pools, "facilities": res.facilities}
    (work / "inputs.pkl").write_bytes(pickle.dumps(inputs))


def repeat(work: Path, k: int) -> None:
    """calls-k / assignments-k: the 1e6 logs' row groups k times, call ids shifted."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from sim.calllog import ParquetLog, row_count, row_groups
    n = row_count(work / "calls-1.parquet")
    for name in ("calls", "assignments"):
        log = ParquetLog(work / f"{name}-{k}.parquet")
        for r in range(k):
            for t in row_groups(work / f"{name}-1.parquet"):
                i = t.schema.get_field_index("call_id")
                ids = t.column(i)
                shifted = pc.if_else(pc.less(ids, 0), ids, pc.add(ids, r * n))
                log.write_table(t.set_column(i, "call_id", shifted.cast(pa.int64())))
        log.close()


def at_revision(rev: str, module: str):
    """``sim.<module>`` as it was at git revision ``rev`` (its relative imports are today's)."""
    src = subprocess.run(["git", "show", f"{rev}:sim/{module}.py"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    path = Path(tempfile.mkdtemp()) / f"{module}_{rev}.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location(f"sim._{module}_{rev}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def phase(work: Path, k: int, which: str, before: str) -> dict:
    import pandas as pd

    import sim
    from sim.calllog import release_memory
    inputs = pickle.loads((work / "inputs.pkl").read_bytes())
    s = sim.load_scenario(SCENARIO, {"horizon_days": inputs["days"]})
    calls, assignments = work / f"calls-{k}.parquet", work / f"assignments-{k}.parquet"
    info, t0, t1 = inputs["info"], inputs["t0"], inputs["t1"]
    if which == "before":
        metrics, read_columns = at_revision(before, "metrics"), at_revision(before, "calllog").read_columns
    else:
        from sim import metrics
    release_memory()
    base = status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")        # VmHWM := VmRSS
    c0 = time.process_time()
    if which == "before":     # as Model.run and experiment.single_run do at the revision
        audit_calls = read_columns(calls, metrics.AUDIT_CALL_COLUMNS)
        audit_work = read_columns(assignments, metrics.AUDIT_WORK_COLUMNS)
        pools = metrics.resource_audit(audit_work, audit_calls, info, t0, t1)
        hourly = metrics.hourly_audit(audit_work, info, t0, t1)
        del audit_calls, audit_work
        release_memory()
        audit_peak = status("VmHWM")
        frame = read_columns(calls, metrics.KPI_CALL_COLUMNS)
        values = metrics.kpis(frame, pools, s.horizon_days, inputs["facilities"], s)
        del frame
    else:
        pools, hourly = metrics.audits_from_files(calls, assignments, info, t0, t1)
        release_memory()
        audit_peak = status("VmHWM")
        values = metrics.kpis_from_file(calls, pools, s.horizon_days, inputs["facilities"], s)
    cpu = time.process_time() - c0
    peak = status("VmHWM")
    from sim.calllog import row_count
    return {"which": which, "calls": row_count(calls), "base_mb": base, "audit_peak_mb": audit_peak - base,
            "peak_mb": peak - base, "cpu_s": cpu, "response_time_mean": values["response_time_mean"],
            "utilisation.police": values.get("utilisation.police"), "pools": pd.DataFrame(pools).shape[0]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, nargs="*", default=[10], help="also logs this many times the 1e6 log")
    ap.add_argument("--before", default="a2e6c34", help="git revision of the code read back whole")
    ap.add_argument("--days", type=float, default=365)
    ap.add_argument("--work", help="folder for the logs (kept; reused if its logs are there)")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        cmd, work = a.child[0], Path(a.child[1])
        if cmd == "simulate":
            simulate(work, a.days)
        elif cmd == "repeat":
            repeat(work, int(a.child[2]))
        else:
            print(json.dumps(phase(work, int(a.child[2]), a.child[3], a.before)))
        return
    from bench_parallel import machine
    work = Path(a.work) if a.work else Path(tempfile.mkdtemp())
    work.mkdir(parents=True, exist_ok=True)

    def child(*args) -> str:
        p = subprocess.run([sys.executable, __file__, "--before", a.before, "--days", str(a.days),
                            "--child", *map(str, args)], capture_output=True, text=True)
        if p.returncode:
            raise SystemExit(f"{args}: {p.stderr.strip().splitlines()[-1] if p.stderr.strip() else p.returncode}")
        return p.stdout
    if not (work / "inputs.pkl").exists():
        child("simulate", work)
    for k in [1, *a.repeat]:
        if not (work / f"calls-{k}.parquet").exists():
            child("repeat", work, k)
        for which in ("before", "after"):
            r = json.loads(child("phase", work, k, which).strip().splitlines()[-1])
            n = r["calls"]
            print(f"{n:>11,} calls  {which:>6}: peak {r['peak_mb']:7.0f} MB above {r['base_mb']:.0f} MB "
                  f"({r['peak_mb'] * 2 ** 20 / n:5.1f} B/call; audits {r['audit_peak_mb']:.0f} MB)  "
                  f"CPU {r['cpu_s']:6.1f} s  response_time_mean {r['response_time_mean']:.6f}  "
                  f"utilisation.police {r['utilisation.police']:.6f}", flush=True)
    print(f"machine: {machine()}; logs in {work}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
