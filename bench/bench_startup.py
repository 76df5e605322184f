"""Start-up time of the command line against a bare interpreter.

Times ``python -c pass`` and, in the same round, ``python -m sim --help``,
``python -m sim validate scenarios/eugene/cahoots.yaml`` and ``python -m sim schema`` (each a
fresh process, as a planner's shell starts it), for several paired rounds, and prints the
median wall time of each with its ratio to the bare interpreter, and the median CPU time
(user + system of the child: less sensitive than wall time to a busy machine). It also
lists the heavy libraries each command imports (``-X importtime``), which is what start-up
time is made of. Target: ``--help`` under 1 s wall on an idle machine.

    python bench/bench_startup.py [--rounds 9]
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = "scenarios/eugene/cahoots.yaml"
COMMANDS = {
    "python -c pass": ["-c", "pass"],
    "crisis-sim --help": ["-m", "sim", "--help"],
    "crisis-sim validate": ["-m", "sim", "validate", SCENARIO],
    "crisis-sim schema": ["-m", "sim", "schema"],
}
HEAVY = ("numpy", "pandas", "scipy", "matplotlib", "simpy", "pyarrow", "dask", "pydantic", "yaml", "tqdm")


def timed(args: list[str]) -> tuple[float, float]:
    """(wall s, CPU s) of one fresh ``python ARGS``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    took = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {p.stderr.decode()[-500:]}")
    return took, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def heavy_imports(args: list[str]) -> list[str]:
    """Top-level packages among HEAVY that the command imports."""
    p = subprocess.run([sys.executable, "-X", "importtime", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    names = {line.split("|")[-1].strip().split(".")[0] for line in p.stderr.splitlines() if "|" in line}
    return sorted(names & set(HEAVY))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=9)
    a = ap.parse_args()
    for args in COMMANDS.values():       # warm the file cache once
        timed(args)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in COMMANDS}
    for _ in range(a.rounds):
        for name, args in COMMANDS.items():
            times[name].append(timed(args))
    wall = {n: statistics.median(t[0] for t in v) for n, v in times.items()}
    cpu = {n: statistics.median(t[1] for t in v) for n, v in times.items()}
    base = wall["python -c pass"]
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}, {a.rounds} paired rounds, medians")
    print(f"{'command':<22} {'wall s':>7} {'x python -c pass':>17} {'CPU s':>6}  heavy imports")
    for name, args in COMMANDS.items():
        print(f"{name:<22} {wall[name]:7.3f} {wall[name] / base:17.1f} {cpu[name]:6.2f}  "
              f"{', '.join(heavy_imports(args)) or '-'}")


if __name__ == "__main__":
    main()
