"""How long `crisis-sim optimize` takes on the Eugene week, and what a resume costs.

    python bench/bench_optimize.py [--workers 2] [--write docs/performance.md]

Runs ``sim.optimize`` on ``scenarios/eugene/cahoots.yaml`` with
``scenarios/eugene/targets.yaml`` (CAHOOTS vans per 4-hour block of the day, vans, sobering
beds; a week per replication) into a fresh folder on ``--workers`` processes, then runs it
again on the same folder (the resume path: every evaluation is read back, none computed).
Prints rosters evaluated, replications, wall and CPU time of both runs and the load of the
machine while they ran (the machine is shared: the load average and the CPU other processes
used, from /proc/stat, say how far to trust the wall time). ``--write`` puts the figures in
their own section of docs/performance.md (between bench_optimize markers).
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cahoots import machine  # noqa: E402

SCENARIO = ROOT / "scenarios/eugene/cahoots.yaml"
TARGETS = ROOT / "scenarios/eugene/targets.yaml"
START, END = "<!-- bench_optimize:start -->", "<!-- bench_optimize:end -->"


def _cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine since boot."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = f[3] + f[4]
    return sum(f) - idle, sum(f)


def _own_cpu() -> float:
    """CPU seconds of this process and its finished children."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def timed(fn):
    load0 = os.getloadavg()[0]
    b0, t0 = _cpu_jiffies()
    cpu0, w0 = _own_cpu(), time.perf_counter()
    res = fn()
    wall, cpu = time.perf_counter() - w0, _own_cpu() - cpu0
    b1, t1 = _cpu_jiffies()
    hz = os.sysconf("SC_CLK_TCK")
    machine_busy = (b1 - b0) / hz
    return res, {"wall": wall, "cpu": cpu, "others_cpu": max(0.0, machine_busy - cpu),
                 "load": (load0 + os.getloadavg()[0]) / 2}


def main() -> None:
    import sim

    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=None, help="folder (default: a fresh temporary one)")
    ap.add_argument("--write", default=None, help="Markdown file to put the figures in (docs/performance.md)")
    a = ap.parse_args()
    out = Path(a.out or tempfile.mkdtemp(prefix="bench-optimize-"))
    first, t1 = timed(lambda: sim.optimize(SCENARIO, TARGETS, out, workers=a.workers))
    again, t2 = timed(lambda: sim.optimize(SCENARIO, TARGETS, out, workers=a.workers))
    assert again.x == first.x and again.computed == 0
    screened = first.evaluations[first.evaluations["stage"] == "screening"]
    spec, _ = sim.optimize.load_targets(TARGETS)
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {machine()}.",
        "",
        f"- problem: `{TARGETS.relative_to(ROOT)}` on `{SCENARIO.relative_to(ROOT)}`: "
        f"{len(first.roster)} decision variables (CAHOOTS crews per 4-hour block of the day, vans, sobering "
        f"beds), {len(spec.targets)} targets at {spec.confidence:.0%}, {spec.overrides['horizon_days']:g} days per "
        f"replication after a {spec.overrides['warmup_days']:g}-day warm-up, {a.workers} workers",
        f"- result: {first.status}; roster " + ", ".join(f"{r.item}={r.value}" for r in first.roster.itertuples())
        + f"; cost {first.cost:,.0f} USD a year",
        f"- evaluations: {len(screened)} rosters screened, {len(first.evaluations) - len(screened)} confirmed, "
        f"{first.replications} replications in all",
        f"- wall time: **{t1['wall']:.0f} s** (target < 600 s); CPU {t1['cpu']:.0f} s in this run; "
        f"other processes used {t1['others_cpu']:.0f} CPU-s meanwhile (load average {t1['load']:.1f} on "
        f"{os.cpu_count()} CPUs)",
        f"- resume of the finished run (same folder): {t2['wall']:.1f} s wall, {again.computed} replications "
        f"computed, same roster",
        "",
        "The work is the replications (each round screens every one-unit neighbour of the incumbent with "
        "3 replications of the same seed; confirmation adds 10-40 on fresh streams); on an idle machine the "
        "wall time is about the CPU time divided by the workers, so read the wall time against the load "
        "stated above.",
    ]
    text = "\n".join(lines)
    print(text)
    if a.write:
        write_section(Path(a.write), text)
        print(f"wrote {a.write}")


def write_section(path: Path, body: str) -> None:
    from sim.results import write_text
    doc = path.read_text(encoding="utf-8")
    block = (f"{START}\n## Optimising the Eugene week (`bench/bench_optimize.py`)\n\n{body}\n\n"
             f"    .venv/bin/python bench/bench_optimize.py --workers 2 --write docs/performance.md\n{END}")
    if START in doc and END in doc:
        doc = doc[:doc.index(START)] + block + doc[doc.index(END) + len(END):]
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    write_text(path, doc)


if __name__ == "__main__":
    main()
