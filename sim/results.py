"""Writing a run's results: atomically, with the resolved scenario and a manifest.

Every file is written to a temporary name in the same folder and moved into place with
``os.replace``, so a reader never sees half a file and a crash never leaves one.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

import pandas as pd

from . import __version__
from .scenario import Scenario, resolved_yaml


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` and move the result to ``path`` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text(path: Path, text: str) -> None:
    def w(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    atomic_write(path, w)


def write_parquet(path: Path, df: pd.DataFrame) -> None:
    atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False))


def write_csv(path: Path, df: pd.DataFrame) -> None:
    atomic_write(path, lambda tmp: df.to_csv(tmp, index=False))


def git_commit() -> str:
    """The commit of the source tree the package runs from, or 'unknown'."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=5)
        commit = out.stdout.strip()
        if out.returncode != 0 or not commit:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def manifest(scenarios: list[Scenario], seed: int, replications: int, wall_s: float,
             **extra) -> dict:
    import numpy, simpy
    return {
        "crisis_sim_version": __version__,
        "git_commit": git_commit(),
        "seed": int(seed),
        "replications": int(replications),
        "scenarios": [s.name for s in scenarios],
        "wall_time_s": round(float(wall_s), 3),
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": numpy.__version__,
        "simpy": simpy.__version__,
        "pandas": pd.__version__,
        **extra,
    }


def write_run(out: Path, scenario: Scenario, calls: pd.DataFrame, pools: pd.DataFrame,
              hourly: pd.DataFrame, kpis: pd.DataFrame, summary: pd.DataFrame, info: dict,
              facilities: pd.DataFrame | None = None, occupancy: pd.DataFrame | None = None) -> None:
    """The standard results folder of one scenario run."""
    out = Path(out)
    if facilities is not None and len(facilities):
        write_parquet(out / "facilities.parquet", facilities)
    if occupancy is not None and len(occupancy):
        write_parquet(out / "occupancy.parquet", occupancy)
    write_text(out / "scenario.resolved.yaml", resolved_yaml(scenario))
    write_parquet(out / "calls.parquet", calls)
    write_parquet(out / "pools.parquet", pools)
    write_parquet(out / "hourly.parquet", hourly)
    write_csv(out / "kpis.csv", kpis)
    write_csv(out / "summary.csv", summary)
    write_text(out / "manifest.json", json.dumps(info, indent=2, default=str) + "\n")
