"""The results store of an experiment: nothing finished is ever lost.

One folder per experiment::

    out/
      experiment.json                 what was asked (scenario fingerprints, seeds): resume key
      log.jsonl                       one line per session, submitted and finished replication
      resolved/<scenario>-p<point>.yaml
      kpis/scenario=<key>/point=<p>/replication=<r>/part-0.parquet      metric, value
      calls/  pools/  hourly/  facilities/  occupancy/                  same partitions
      runs/scenario=<key>/point=<p>/replication=<r>/part-0.parquet      the replication's record

Each table is Parquet partitioned Hive-style by scenario / point / replication, so
``pd.read_parquet("out/kpis")``, ``pyarrow.dataset.dataset("out/kpis", partitioning="hive")``,
``dask.dataframe.read_parquet("out/kpis")`` and DuckDB's ``read_parquet('out/kpis/*/*/*/*.parquet',
hive_partitioning=true)`` all read it; the partition keys live in the folder names only.

A replication's data files are written (each atomically) by whoever ran it; then the
experiment writes its ``runs`` record (status ``ok`` or ``failed``, message, traceback,
worker, wall time, session, and the tables written). The record is the commit: a
replication is done when its record exists *and* every table it names is there, and
:meth:`Store.read` returns only committed replications. A run killed (or a disk filled)
between the two leaves data files without a record, or folders without files; the rerun
ignores them, repeats that replication and replaces them with identical ones.

Faults:

* **One writer at a time.** ``.lock`` in the folder is held (``flock``) for the whole
  experiment. A second experiment with other settings is refused with one line at once;
  one with the same settings waits for the first and then resumes (finding it all done).
* **Set-up before work.** ``resolved/`` is written (each file atomically) before
  ``experiment.json``, the marker of a set-up store; a reopened store rewrites any
  ``resolved/`` file that is missing or differs, so a set-up cut short is completed.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from .results import write_parquet, write_text
from .scenario import ScenarioError

PARTITION = ("scenario", "point", "replication")
PART_FILE = "part-0.parquet"


class StoreMismatch(ScenarioError):
    """The results folder holds another experiment (a scenario, seed or option changed)."""


class StoreBusy(StoreMismatch):
    """Another process is writing another experiment into the folder right now."""


LOCK_FILE = ".lock"
SETTINGS_WAIT_S = 10.0      # how long a second writer waits for the first one's experiment.json


def _lock(root: Path, settings: dict) -> int:
    """Hold the folder's lock (a file descriptor); see the module docstring."""
    import fcntl
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "another process"
            path = root / "experiment.json"
            deadline = time.monotonic() + SETTINGS_WAIT_S
            while not path.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            old = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
            if old != _as_json(settings):
                why = (f"which runs another experiment (the folder {_difference(old, settings)})" if old
                       else f"still setting it up after {SETTINGS_WAIT_S:g} s")
                raise StoreBusy(str(root), None, f"in use by {holder}, {why}; wait for it to finish "
                                "or use another output folder")
            fcntl.flock(fd, fcntl.LOCK_EX)          # same experiment: wait, then resume
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()}".encode(), 0)
        return fd
    except BaseException:
        os.close(fd)
        raise


def _as_json(settings: dict) -> dict:
    return json.loads(json.dumps(settings, sort_keys=True, default=str))


def fingerprint(resolved: str) -> str:
    """SHA-256 of a resolved scenario's YAML: equal iff every parameter is equal."""
    return hashlib.sha256(resolved.encode("utf-8")).hexdigest()


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


class Store:
    """A results folder (see module docstring). Picklable: workers get it to write their part."""

    def __init__(self, root: str | Path, keys: list[str]):
        self.root = Path(root)
        self.keys = list(keys)      # scenario keys in experiment order
        self._tmp = None            # a TemporaryDirectory kept alive with the store
        self._lock_fd = None        # held from open() to close()

    def __getstate__(self):
        return {"root": self.root, "keys": self.keys, "_tmp": None, "_lock_fd": None}

    # --- opening ------------------------------------------------------------------

    @classmethod
    def open(cls, out: str | Path | None, settings: dict, resolved: dict[str, str]) -> "Store":
        """Create the folder, or reopen it to resume if it holds the same ``settings``.

        ``settings`` must contain ``cells`` (list of dicts with ``scenario``); ``resolved``
        maps a name per cell to its resolved-scenario YAML, written under ``resolved/``. Without
        ``out`` the store lives in a temporary folder deleted with the store.
        """
        tmp = None
        if out is None:
            tmp = tempfile.TemporaryDirectory(prefix="crisis-sim-")
            out = tmp.name
        keys = list(dict.fromkeys(c["scenario"] for c in settings["cells"]))
        store = cls(out, keys)
        store._tmp = tmp
        if store.root.exists() and not store.root.is_dir():
            raise NotADirectoryError(20, "exists and is not a folder", str(store.root))
        store.root.mkdir(parents=True, exist_ok=True)
        store._lock_fd = _lock(store.root, settings)
        try:
            path = store.root / "experiment.json"
            text = json.dumps(settings, indent=2, sort_keys=True, default=str) + "\n"
            if path.exists():
                try:
                    old = json.loads(path.read_text(encoding="utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError):
                    raise StoreMismatch(str(path), None, "is not readable (not an experiment's settings); "
                                        "use another output folder or delete this one") from None
                if old != json.loads(text):
                    raise StoreMismatch(str(path), None, _difference(old, settings)
                                        + "; use another output folder or delete this one")
            for name, yaml_text in resolved.items():     # complete a set-up cut short
                f = store.root / "resolved" / f"{name}.yaml"
                if not f.is_file() or f.read_text(encoding="utf-8", errors="replace") != yaml_text:
                    write_text(f, yaml_text)
            if not path.exists():
                write_text(path, text)                   # last: the store is set up
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        """Release the folder's lock (reading the store afterwards is fine)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # --- writing ------------------------------------------------------------------

    def part(self, table: str, scenario: str, point: int, replication: int) -> Path:
        return (self.root / table / f"scenario={scenario}" / f"point={int(point)}"
                / f"replication={int(replication)}" / PART_FILE)

    def scratch(self, table: str, scenario: str, point: int, replication: int) -> Path:
        """A working file for one replication's table, outside the tables (never read as
        one): a full log streamed for the KPIs when only a sample, or nothing, is stored."""
        return self.root / ".scratch" / f"{table}-{scenario}-p{int(point)}-r{int(replication)}.parquet"

    def write_frames(self, scenario: str, point: int, replication: int,
                     frames: dict[str, pd.DataFrame]) -> str:
        """Write one replication's tables (partition columns go into the folder names);
        returns their names, comma-separated, for the record (``tables``)."""
        for table, df in frames.items():
            write_parquet(self.part(table, scenario, point, replication),
                          df.drop(columns=[c for c in PARTITION if c in df.columns]))
        return ",".join(frames)

    def commit(self, record: dict) -> None:
        """Write a replication's record (keys: scenario, point, replication, status, tables,
        ...) once its tables are written: from then on the replication counts as done."""
        row = {k: v for k, v in record.items() if k not in PARTITION}
        write_parquet(self.part("runs", record["scenario"], record["point"], record["replication"]),
                      pd.DataFrame([row]))

    def log(self, event: str, **fields) -> None:
        """Append one line to ``log.jsonl`` (only the experiment's driver writes here)."""
        line = json.dumps({"t": utc_now(), "event": event, **fields}, default=str)
        with open(self.root / "log.jsonl", "a", encoding="utf-8") as f:
            f.write(line + "\n")

    # --- reading ------------------------------------------------------------------

    def read_log(self) -> pd.DataFrame:
        """The log as a DataFrame (a line cut short by a kill is skipped)."""
        rows = []
        path = self.root / "log.jsonl"
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
        return pd.DataFrame(rows)

    def _read_raw(self, table: str) -> pd.DataFrame:
        """Every part file of a table (folders left empty by a fault are skipped)."""
        folder = self.root / table
        files = sorted(folder.glob(f"scenario=*/point=*/replication=*/{PART_FILE}")) if folder.is_dir() else []
        if files:
            import pyarrow.dataset as ds
            df = ds.dataset([str(f) for f in files], format="parquet", partitioning="hive",
                            partition_base_dir=str(folder)).to_table().to_pandas()
        else:
            df = pd.DataFrame({c: pd.Series(dtype=str if c == "scenario" else "int64") for c in PARTITION})
        df["scenario"] = pd.Categorical(df["scenario"].astype(str), categories=self.keys)
        for c in ("point", "replication"):
            df[c] = df[c].astype(str).astype("int64")
        df = df[list(PARTITION) + [c for c in df.columns if c not in PARTITION]]
        # the logs are streamed in the order calls finished: read back in call order
        key = list(PARTITION) + (["call_id"] if table in ("calls", "assignments") and "call_id" in df else [])
        return df.sort_values(key, kind="stable").reset_index(drop=True)

    def records(self, replications: int | None = None) -> pd.DataFrame:
        """The ``runs`` table: one record per committed replication (ok or failed)."""
        df = self._read_raw("runs")
        if "status" not in df:
            df["status"] = pd.Series(dtype=str)
        if replications is not None:
            df = df[df["replication"] < replications].reset_index(drop=True)
        return df

    def read(self, table: str, replications: int | None = None) -> pd.DataFrame:
        """A table's rows of committed, successful replications ``< replications``.

        Columns: ``scenario`` (categorical, experiment order), ``point``, ``replication``,
        then the table's own; sorted by those three (the call and assignments logs also by
        ``call_id``), rows otherwise in the order they were written.
        """
        if table == "runs":
            return self.records(replications)
        df = self._read_raw(table)
        ok = self.records(replications)
        ok = ok.loc[ok["status"] == "ok", list(PARTITION)]
        return df.merge(ok, on=list(PARTITION), how="inner", sort=False)

    def done(self) -> set[tuple[str, int, int]]:
        """(scenario, point, replication) of every replication committed as ok whose tables
        are all there (a replication whose files went missing is run again)."""
        r = self.records()
        r = r[r["status"] == "ok"]
        tables = r["tables"] if "tables" in r else pd.Series([""] * len(r), index=r.index)
        out = set()
        for s, p, k, names in zip(r["scenario"].astype(str), r["point"].astype(int),
                                  r["replication"].astype(int), tables.fillna("")):
            if all(self.part(t, s, p, k).is_file() for t in str(names).split(",") if t):
                out.add((s, p, k))
        return out

    def remove_temporary(self) -> None:
        """Delete the folder now if it is a temporary one."""
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _difference(old: dict, new: dict) -> str:
    """A short phrase saying what differs between two experiment settings."""
    new = json.loads(json.dumps(new, default=str))
    for key in sorted(set(old) | set(new)):
        if key == "cells":
            continue
        if old.get(key) != new.get(key):
            return f"holds an experiment with {key}={old.get(key)!r}, not {new.get(key)!r}"
    oc = {(c["scenario"], c["point"]): c for c in old.get("cells", [])}
    nc = {(c["scenario"], c["point"]): c for c in new.get("cells", [])}
    for k in list(nc) + list(oc):
        if k not in oc or k not in nc:
            return f"holds a different set of scenarios/points (scenario '{k[0]}' point {k[1]})"
        for f in sorted(set(oc[k]) | set(nc[k])):
            if oc[k].get(f) != nc[k].get(f):
                return f"holds scenario '{k[0]}' point {k[1]} with another {f}"
    return "holds a different experiment"
