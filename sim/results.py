"""Writing a run's results: atomically, with the resolved scenario and a manifest.

Every file is written to a temporary name in the same folder and moved into place with
``os.replace``, so a reader never sees half a file and a crash never leaves one. A run's
folder is written whole into a fresh temporary folder beside it and then swapped in
(:func:`replace_dir`), so a run that fails leaves the old folder as it was, never a mix.

Durable too (:func:`durable_replace`): the file's data is flushed to disk (``fsync``)
before the rename, and the folder after it, as are the folders made for it, so that after
a power loss a file is there whole or not at all, and a file written later (a store's
record) is never there without one written before it (the replication's data). One
``fsync`` per file and one per folder changed, never per row group. Where the OS cannot
``fsync`` a folder (Windows), that step is skipped.
"""
from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from . import __version__
from .scenario import Scenario, resolved_yaml

if TYPE_CHECKING:      # pandas is imported where a table is written, not at start-up
    import pandas as pd


def current_umask() -> int:
    """The process umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_path(path: str | Path) -> None:
    """Flush a file's (or a folder's entries') data to disk. A folder that cannot be opened
    or synced on this OS or filesystem (Windows; EINVAL) is skipped; a file's error is raised."""
    folder = os.path.isdir(path)
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if folder else 0))
    except OSError:
        if folder:
            return
        raise
    try:
        os.fsync(fd)
    except OSError as e:
        if not (folder and e.errno in (errno.EINVAL, errno.ENOTSUP, errno.EBADF)):
            raise
    finally:
        os.close(fd)


def make_dirs(folder: str | Path) -> None:
    """``mkdir -p``, each folder made recorded durably in its parent (``fsync`` of the parent)."""
    folder = Path(folder)
    missing = []
    while not folder.is_dir():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for d in reversed(missing):
        d.mkdir(exist_ok=True)
        fsync_path(d.parent)


def durable_replace(tmp: str | Path, path: str | Path) -> None:
    """Move the finished file ``tmp`` onto ``path`` (same folder) durably: its data flushed
    before the rename, the folder after it."""
    fsync_path(tmp)
    os.replace(tmp, path)
    fsync_path(Path(path).parent)


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` and move the result to ``path`` in one step, durably
    (:func:`durable_replace`). The file gets the mode a plain ``open()`` would give it
    (0o666 minus the umask: with umask 022, readable by group and others), not the private
    0o600 of the temporary file."""
    path = Path(path)
    make_dirs(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())
        durable_replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def ensure_writable(folder: str | Path) -> Path:
    """Create ``folder`` (and parents) if needed and check a file can be written there,
    before any computation; raises OSError (one line in the CLI) if not."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(20, "exists and is not a folder", str(folder))
    folder.mkdir(parents=True, exist_ok=True)
    fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=folder)
    os.close(fd)
    os.unlink(probe)
    return folder


def can_replace(out: str | Path) -> Path:
    """Check, before computing, that a finished folder can later be swapped in at ``out``:
    ``out`` is a folder or absent, and its parent is writable; raises OSError if not."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(20, "exists and is not a folder", str(out))
    ensure_writable(out.parent if str(out.parent) else Path("."))
    return out


def replace_dir(tmp: Path, out: Path) -> None:
    """Move the finished folder ``tmp`` to ``out``, replacing any old ``out`` whole.

    Two renames in one filesystem (old out aside, tmp in), then the old one is deleted: a
    reader sees the old folder or the new one, never a mix of files.
    """
    tmp, out = Path(tmp), Path(out)
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        if old is not None:
            os.replace(old, out)
        raise
    fsync_path(out.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def temp_dir_beside(out: str | Path) -> Path:
    """A fresh empty folder next to ``out`` (same filesystem, so it can be renamed onto it)."""
    out = Path(out)
    ensure_writable(out.parent if str(out.parent) else Path("."))
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)          # mkdtemp makes it private; the results folder is not
    return tmp


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
    import numpy, pandas, simpy
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
        "pandas": pandas.__version__,
        **extra,
    }


def write_run(out: Path, scenario: Scenario, calls: pd.DataFrame, pools: pd.DataFrame,
              hourly: pd.DataFrame, kpis: pd.DataFrame, summary: pd.DataFrame, info: dict,
              facilities: pd.DataFrame | None = None, occupancy: pd.DataFrame | None = None,
              assignments: pd.DataFrame | None = None) -> None:
    """The standard results folder of one scenario run, written into a temporary folder
    beside ``out`` and swapped in whole. ``calls`` and ``assignments``: DataFrames, or the
    (replication, file) parts of a results store to copy row group by row group."""
    final = Path(out)
    out = temp_dir_beside(final)
    try:
        _write_run_files(out, scenario, calls, pools, hourly, kpis, summary, info, facilities, occupancy,
                         assignments)
        replace_dir(out, final)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise


def _write_log(path: Path, log, scenario) -> None:
    """A log given as a DataFrame, or as the (replication, file) parts of a results store
    (copied row group by row group)."""
    if isinstance(log, list):
        from .calllog import concatenate
        if log:
            concatenate(path, log, scenario.name)
    else:
        write_parquet(path, log)


def _write_run_files(out: Path, scenario, calls, pools, hourly, kpis, summary, info, facilities,
                     occupancy, assignments=None) -> None:
    if assignments is not None and len(assignments):      # a frame with rows, or some stored parts
        _write_log(out / "assignments.parquet", assignments, scenario)
    if facilities is not None and len(facilities):
        write_parquet(out / "facilities.parquet", facilities)
    if occupancy is not None and len(occupancy):
        write_parquet(out / "occupancy.parquet", occupancy)
    write_text(out / "scenario.resolved.yaml", resolved_yaml(scenario))
    if calls is not None:                       # None: run with --no-calls
        _write_log(out / "calls.parquet", calls, scenario)
    write_parquet(out / "pools.parquet", pools)
    write_parquet(out / "hourly.parquet", hourly)
    write_csv(out / "kpis.csv", kpis)
    write_csv(out / "summary.csv", summary)
    write_text(out / "manifest.json", json.dumps(info, indent=2, default=str) + "\n")
