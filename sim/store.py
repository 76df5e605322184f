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
:meth:`Store.read` returns only committed replications: it reads the records first and
then opens only the parts of replications committed ``ok`` (each part on its own, combined
with their Arrow types unified). A run killed (or a disk filled) between the two leaves data
files without a record, or folders without files; they may be whole, cut short or of another
schema, and nothing reads them: the rerun ignores them, repeats that replication and
replaces them with identical ones. A record part that cannot be read commits nothing (it is
skipped with a :class:`StoreWarning`, and the replication is run again); a committed data
part that cannot be read is an error naming it (:class:`StoreCorrupt`), never dropped.

Faults:

* **One writer at a time.** ``.lock`` in the folder is held (``flock``) for the whole
  experiment. A second experiment with other settings is refused with one line at once;
  one with the same settings says so in one line on stderr, waits for the first and then
  resumes (finding it all done).
* **Set-up before work.** ``resolved/`` is written (each file atomically) before
  ``experiment.json``, the marker of a set-up store; a reopened store rewrites any
  ``resolved/`` file that is missing or differs, so a set-up cut short is completed.

Object stores
-------------
``out`` may be an fsspec URL (``s3://bucket/prefix``, ``gs://...``, ``memory://...``;
``file://`` is the local folder above): :class:`ObjectStore`, the same layout and the same
reading rules. What changes is how the guarantees are had:

* **Atomic files.** An object store has no rename, but one PUT of a whole object is atomic:
  a reader sees the old object or the new one, never a part (a multipart upload, used by
  s3fs above 2 x 50 MiB, appears only when it completes). So every file is first written
  whole into a local staging folder (``root``: a temporary folder of the process, under
  ``TMPDIR``, which must hold a replication's logs; the logs stream into it through
  ``.<file>.partial`` exactly as locally), then uploaded with one ``put`` and removed. A
  worker uploads its replication's tables and logs in :meth:`write_frames`, before it
  returns; the driver uploads the ``runs`` record after that (:meth:`commit`): the record
  is still the commit. A worker killed between its uploads and the record leaves whole
  objects without a record, which readers ignore and the rerun replaces.
* **One writer at a time: a lease.** No ``flock``: the object ``.lock`` holds the
  writer's id, host, pid and ``heartbeat_utc``. It is created with an exclusive write
  (``pipe_file(mode="create")``: on S3 one PUT with ``If-None-Match: *``, which s3fs
  sends and AWS S3, MinIO, R2 and moto honour) and renewed every LEASE_BEAT_S by a thread
  of the writer with a compare-and-swap (S3: PUT with ``If-Match: <ETag>``). A lease not
  renewed for LEASE_STALE_S (by the writer's and reader's UTC clocks, so they must agree
  to a few seconds), or left by a process of this machine that is gone, is stale: the
  next writer takes it over with the same compare-and-swap, so of two newcomers one wins.
  While a fresh lease is held, a writer with other settings is refused at once with one
  line (as locally), one with the same settings says so, waits and then resumes. A writer whose
  lease was taken over, or not renewed for LEASE_STALE_S, commits no more records
  (:class:`StoreBusy` at its next one).
* **What is not guaranteed.** Mutual exclusion rests on conditional writes, which only S3
  gets here: on other fsspec filesystems (``gs://``, ``az://``...) renewal and takeover
  are a read followed by a write, and the exclusive create is atomic only where the
  filesystem implements ``mode="create"`` (fsspec's default checks, then writes), so two
  writers starting within the same instant may both pass. A writer frozen past
  LEASE_STALE_S may still upload a replication's data files after the lease moved on;
  they are that replication's deterministic files, identical to the ones the new writer
  writes. ``log.jsonl`` and the experiment's own files (``manifest.json``,
  ``summary.csv``...) are written locally and uploaded whole at most every SYNC_S and at
  :meth:`close`: a killed driver may lose its last seconds of log lines, never a record.
  ``memory://`` lives in one process (workers=1 only).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import socket
import tempfile
import threading
import time
import uuid
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .results import write_parquet, write_text
from .scenario import ScenarioError

PARTITION = ("scenario", "point", "replication")
PART_FILE = "part-0.parquet"


class StoreMismatch(ScenarioError):
    """The results folder holds another experiment (a scenario, seed or option changed)."""


class StoreBusy(StoreMismatch):
    """Another process is writing another experiment into the folder right now."""


class StoreCorrupt(ScenarioError):
    """A part file of a committed replication cannot be read."""


class StoreWarning(UserWarning):
    """Something in the store was skipped (a record part that cannot be read)."""


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
            _say_waiting(str(root), holder, "it finishes")
            fcntl.flock(fd, fcntl.LOCK_EX)          # same experiment: wait, then resume
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()}".encode(), 0)
        return fd
    except BaseException:
        os.close(fd)
        raise


def _say_waiting(where: str, holder: str, until: str) -> None:
    """One line on stderr while a writer of the same experiment holds the store: the wait
    can be long, and a silent one looks like a hang."""
    import sys
    print(f"note: {where} is in use by {holder} running this same experiment; waiting until "
          f"{until}, then resuming", file=sys.stderr, flush=True)


TEMP_PREFIX = "crisis-sim-"     # temporary stores and staging folders, in TMPDIR


def _hold(folder: Path):
    """Mark a temporary folder as this process's, as :func:`_lock` does a store: ``.lock``
    held (``flock``) and naming this process (the open file: closed with its owner), so that
    :func:`sweep_stale_temporary` leaves it alone until this process is gone."""
    import fcntl
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.pwrite(fd, f"process {os.getpid()}".encode(), 0)
    return os.fdopen(fd, "r+b", buffering=0)


def sweep_stale_temporary(folder: str | Path | None = None) -> list[Path]:
    """Delete the temporary stores and staging folders (``crisis-sim-*`` in ``folder``,
    default TMPDIR) left by a process that was killed: those whose ``.lock`` nobody holds
    (a temporary store and a staging folder hold theirs until removed) and that names a
    process of this machine that is gone. Folders of other users, or without a lock, are
    left alone. Returns the folders removed."""
    import fcntl
    import shutil
    removed = []
    for d in sorted(Path(folder or tempfile.gettempdir()).glob(TEMP_PREFIX + "*")):
        try:
            if d.is_symlink() or not d.is_dir():
                continue
            fd = os.open(d / LOCK_FILE, os.O_RDWR)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue                                    # held: its process is running
            words = os.pread(fd, 64, 0).decode("ascii", "replace").split()
            if len(words) == 2 and words[0] == "process" and words[1].isdigit() and not _alive(int(words[1])):
                shutil.rmtree(d, ignore_errors=True)
                removed.append(d)
        finally:
            os.close(fd)
    return removed


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
        self._lock_file = None      # held from open() to close() (a temporary store: until removed)

    def __getstate__(self):
        return {"root": self.root, "keys": self.keys, "_tmp": None, "_lock_file": None}

    # --- opening ------------------------------------------------------------------

    @classmethod
    def open(cls, out: str | Path | None, settings: dict, resolved: dict[str, str]) -> "Store":
        """Create the folder, or reopen it to resume if it holds the same ``settings``
        (``out`` may be an fsspec URL: an :class:`ObjectStore`).

        ``settings`` must contain ``cells`` (list of dicts with ``scenario``); ``resolved``
        maps a name per cell to its resolved-scenario YAML, written under ``resolved/``. Without
        ``out`` the store lives in a temporary folder (``crisis-sim-*`` in TMPDIR) deleted with
        the store; one left by a killed process is deleted by the next store opened without
        ``out`` (:func:`sweep_stale_temporary`).
        """
        if isinstance(out, str) and "://" in out:
            if not out.startswith("file://"):
                return ObjectStore.open(out, settings, resolved)
            out = out[len("file://"):]                   # a local folder: the local store
        tmp = None
        if out is None:
            sweep_stale_temporary()
            tmp = tempfile.TemporaryDirectory(prefix=TEMP_PREFIX)
            out = tmp.name
        keys = list(dict.fromkeys(c["scenario"] for c in settings["cells"]))
        store = cls(out, keys)
        store._tmp = tmp
        if store.root.exists() and not store.root.is_dir():
            raise NotADirectoryError(20, "exists and is not a folder", str(store.root))
        store.root.mkdir(parents=True, exist_ok=True)
        store._lock_file = os.fdopen(_lock(store.root, settings), "r+b", buffering=0)   # closed with it
        try:
            store._set_up(settings, resolved)
        except BaseException:
            store.close()
            raise
        return store

    def _set_up(self, settings: dict, resolved: dict[str, str]) -> None:
        """Check ``experiment.json`` (or write it, last) and complete ``resolved/``."""
        text = json.dumps(settings, indent=2, sort_keys=True, default=str) + "\n"
        where = self._where("experiment.json")
        raw = self._read_bytes("experiment.json")
        if raw is not None:
            try:
                old = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise StoreMismatch(where, None, "is not readable (not an experiment's settings); "
                                    "use another output folder or delete this one") from None
            if old != json.loads(text):
                raise StoreMismatch(where, None, _difference(old, settings)
                                    + "; use another output folder or delete this one")
        for name, yaml_text in resolved.items():     # complete a set-up cut short
            rel = f"resolved/{name}.yaml"
            have = self._read_bytes(rel)
            if have is None or have.decode("utf-8", errors="replace") != yaml_text:
                self._write_text(rel, yaml_text)
        if raw is None:
            self._write_text("experiment.json", text)    # last: the store is set up

    def _where(self, rel: str) -> str:
        return str(self.root / rel)

    def _read_bytes(self, rel: str) -> bytes | None:
        """A file of the store, or None if there is none."""
        path = self.root / rel
        return path.read_bytes() if path.exists() else None

    def _write_text(self, rel: str, text: str) -> None:
        write_text(self.root / rel, text)

    def close(self) -> None:
        """Release the folder's lock (reading the store afterwards is fine). A temporary
        store keeps it until :meth:`remove_temporary` (or until it is garbage-collected), so
        that no other process sweeps it away while this one still reads it."""
        if self._lock_file is not None and self._tmp is None:
            self._lock_file.close()
            self._lock_file = None

    # --- writing ------------------------------------------------------------------

    def part(self, table: str, scenario: str, point: int, replication: int) -> Path:
        return self.root / table / _rel((scenario, int(point), int(replication)))

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
        raw = self._read_bytes("log.jsonl")
        for line in (raw or b"").decode("utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass
        return pd.DataFrame(rows)

    def _part_files(self, table: str) -> tuple[list[str], str, object]:
        """(part files of a table, its folder, the filesystem to read them with: None = local)."""
        folder = self.root / table
        files = sorted(folder.glob(f"scenario=*/point=*/replication=*/{PART_FILE}")) if folder.is_dir() else []
        return [str(f) for f in files], str(folder), None

    def _parts(self, table: str) -> tuple[dict[tuple[str, int, int], str], object]:
        """The part files of a table by (scenario, point, replication), and the filesystem
        to read them with (None: local). Only listed, none opened."""
        files, folder, fs = self._part_files(table)
        out = {}
        for f in files:
            key = _partition_key(f, folder)
            if key is not None:
                out[key] = f
        return out, fs

    def _read_parts(self, table: str, parts: list[tuple[tuple[str, int, int], str]], fs,
                    records: bool = False) -> pd.DataFrame:
        """The given part files of a table, each read on its own, as one frame with the
        partition columns in front. A part that cannot be read is an error naming it
        (:class:`StoreCorrupt`), except a record (``records``): a record that cannot be read
        commits nothing; it is skipped with a :class:`StoreWarning` saying why, and the
        replication counts as not done."""
        import pyarrow as pa
        import pyarrow.parquet as pq
        tables, keys = [], []
        for key, f in parts:
            try:
                with pq.ParquetFile(f, filesystem=fs) as pf:    # ~5x less overhead than read_table
                    t = pf.read()
            except (pa.ArrowException, OSError) as e:
                why = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                if not records:
                    raise StoreCorrupt(self._where(f"{table}/{_rel(key)}"), None,
                                       f"a committed part cannot be read ({why}); delete the replication's "
                                       f"record (runs/{_rel(key)}) to have it run again") from e
                warnings.warn(f"{self._where(f'runs/{_rel(key)}')}: not a readable record ({why}); "
                              "the replication counts as not committed and is run again", StoreWarning,
                              stacklevel=3)
                continue
            tables.append(t)
            keys.append((key, t.num_rows))
        if tables:
            # one part's types may be another's narrower ones: a column all null in one
            # (Arrow type null) holds values in another, dictionary indices of int8 in one
            # and int16 in another; the combined column takes the wider type, no value lost
            df = pa.concat_tables(tables, promote_options="permissive").to_pandas()
        else:
            df = pd.DataFrame()
        n = [rows for _, rows in keys]
        df.insert(0, "scenario", pd.Categorical(np.repeat([k[0] for k, _ in keys], n).astype(str),
                                                categories=self.keys))
        for i, c in ((1, "point"), (2, "replication")):
            df.insert(i, c, np.repeat(np.array([k[i] for k, _ in keys], dtype="int64"), n))
        # the logs are streamed in the order calls finished: read back in call order
        key = list(PARTITION) + (["call_id"] if table in ("calls", "assignments") and "call_id" in df else [])
        return df.sort_values(key, kind="stable").reset_index(drop=True)

    def records(self, replications: int | None = None) -> pd.DataFrame:
        """The ``runs`` table: one record per committed replication (ok or failed). A record
        part that cannot be read is skipped with a :class:`StoreWarning` (it commits nothing)."""
        files, fs = self._parts("runs")
        # experiment order: scenarios as in ``keys`` (others after them), then point, replication
        rank = {k: i for i, k in enumerate(self.keys)}
        keys = sorted((k for k in files if replications is None or k[2] < replications),
                      key=lambda k: (rank.get(k[0], len(rank)), *k))
        df = self._read_parts("runs", [(k, files[k]) for k in keys], fs, records=True)
        if "status" not in df:
            df["status"] = pd.Series(dtype=str)
        return df

    def read(self, table: str, replications: int | None = None) -> pd.DataFrame:
        """A table's rows of committed, successful replications ``< replications``.

        Columns: ``scenario`` (categorical, experiment order), ``point``, ``replication``,
        then the table's own; sorted by those three (the call and assignments logs also by
        ``call_id``), rows otherwise in the order they were written. Only the parts of
        those replications are opened (after the records): a file of a replication that
        was never committed, whole or not, changes nothing that is read.
        """
        if table == "runs":
            return self.records(replications)
        ok = self.records(replications)
        ok = ok[ok["status"] == "ok"]
        tables = ok["tables"] if "tables" in ok else pd.Series([None] * len(ok), index=ok.index)
        files, fs = self._parts(table)
        parts = []
        for s, p, r, names in zip(ok["scenario"].astype(str), ok["point"].astype(int),
                                  ok["replication"].astype(int), tables):
            named = names is None or (isinstance(names, float) and math.isnan(names)) \
                or table in str(names).split(",")
            if named and (s, p, r) in files:
                parts.append(((s, p, r), files[(s, p, r)]))
        return self._read_parts(table, parts, fs)

    def done(self) -> set[tuple[str, int, int]]:
        """(scenario, point, replication) of every replication committed as ok whose tables
        are all there (a replication whose files went missing is run again)."""
        r = self.records()
        r = r[r["status"] == "ok"]
        tables = r["tables"] if "tables" in r else pd.Series([""] * len(r), index=r.index)
        present = self._present()
        out = set()
        for s, p, k, names in zip(r["scenario"].astype(str), r["point"].astype(int),
                                  r["replication"].astype(int), tables.fillna("")):
            if all(present(self.part(t, s, p, k)) for t in str(names).split(",") if t):
                out.add((s, p, k))
        return out

    def _present(self) -> Callable[[Path], bool]:
        """Whether a part file (as :meth:`part` names it) is in the store."""
        return Path.is_file

    def remove_temporary(self) -> None:
        """Delete the folder now if it is a temporary one."""
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
            if self._lock_file is not None:
                self._lock_file.close()
                self._lock_file = None


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


# --------------------------------------------------------------------------- object stores

LEASE_BEAT_S = 15.0     # how often the writer renews its lease
LEASE_STALE_S = 90.0    # a lease not renewed for this long is taken over
LEASE_POLL_S = 0.5      # how often a waiting writer looks at the lease again
SYNC_S = 5.0            # the experiment's own files are uploaded at most this often (and at close)
HOST = socket.gethostname()


class ObjectStore(Store):
    """A results store at an fsspec URL (``s3://bucket/prefix``...): see "Object stores" in
    the module docstring. ``root`` is this process's local staging folder; every file is
    written there, then uploaded whole. ``ObjectStore(url, keys)`` opens one for reading."""

    def __init__(self, url: str, keys: list[str], storage_options: dict | None = None):
        import fsspec
        self.url = url.rstrip("/")
        try:
            self.fs, base = fsspec.core.url_to_fs(self.url, **(storage_options or {}))
        except ImportError as e:           # fsspec names the package: "Install s3fs to access S3"
            hint = " (pip install 'crisis-sim[s3]')" if self.url.startswith(("s3://", "s3a://")) else ""
            raise ScenarioError(self.url, None, f"{e}{hint}") from None
        except ValueError as e:            # "Protocol not known: ..."
            raise ScenarioError(self.url, None, f"not a results folder or a known fsspec URL ({e})") from None
        self.base = base.rstrip("/")
        self.keys = list(keys)
        self.__setstate__({})

    def __getstate__(self):
        if "memory" in _protocols(self.fs):           # a copy in another process writes elsewhere
            raise ScenarioError(self.url, None, "is in this process's memory, which worker processes "
                                "cannot write to: use --workers 1, or a folder or a real object store")
        return {"url": self.url, "fs": self.fs, "base": self.base, "keys": self.keys}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._tmp = self._lock_file = None
        self._stage_lock = None   # the staging folder's .lock, held while this store lives
        self._stage = None      # TemporaryDirectory: this process's staging folder, made on first use
        self._lease = None      # held from open() to close()
        self._synced: dict[str, tuple[int, int]] = {}   # top-level file -> (size, mtime) uploaded
        self._last_sync = -math.inf

    @property
    def root(self) -> Path:
        if self._stage is None:
            sweep_stale_temporary()
            self._stage = tempfile.TemporaryDirectory(prefix=TEMP_PREFIX + "stage-")
            self._stage_lock = _hold(Path(self._stage.name))    # swept by a later run once this process is gone
        return Path(self._stage.name)

    @classmethod
    def open(cls, out: str, settings: dict, resolved: dict[str, str]) -> "ObjectStore":
        """:meth:`Store.open` at a URL: take the lease, then check or set up the store."""
        store = cls(out, list(dict.fromkeys(c["scenario"] for c in settings["cells"])))
        try:
            lease = _Lease(store.fs, f"{store.base}/{LOCK_FILE}")
            lease.acquire(lambda: store._read_bytes("experiment.json"), settings, store.url)
            store._lease = lease
            store._set_up(settings, resolved)
            log = store._read_bytes("log.jsonl")        # the log goes on where it was
            if log is not None:
                (store.root / "log.jsonl").write_bytes(log)
                store._mark_synced(store.root / "log.jsonl")
        except BaseException as e:
            store.close()
            if isinstance(e, OSError) and not e.filename:   # "s3://b/x: The specified bucket does not exist"
                raise OSError(e.errno, e.strerror or str(e), store.url) from e
            raise
        return store

    def close(self) -> None:
        """Upload the experiment's own files and give up the lease."""
        if self._lease is not None:
            try:
                if not self._lease.lost_why():
                    self._sync(force=True)
            finally:
                self._lease.release()
                self._lease = None

    # --- files --------------------------------------------------------------------

    def _key(self, local: Path) -> str:
        """The object a staged file goes to."""
        return f"{self.base}/{local.relative_to(self.root).as_posix()}"

    def _upload(self, local: Path) -> None:
        """Put a finished staged file as one object (one PUT, or a multipart upload that
        appears only when complete), then drop the local copy."""
        self.fs.put_file(str(local), self._key(local))
        local.unlink()

    def _where(self, rel: str) -> str:
        return f"{self.url}/{rel}"

    def _read_bytes(self, rel: str) -> bytes | None:
        try:
            return self.fs.cat_file(f"{self.base}/{rel}")
        except FileNotFoundError:
            return None

    def _write_text(self, rel: str, text: str) -> None:
        write_text(self.root / rel, text)
        self._upload(self.root / rel)

    def _mark_synced(self, f: Path) -> None:
        st = f.stat()
        self._synced[f.name] = (st.st_size, st.st_mtime_ns)

    def _sync(self, force: bool = False) -> None:
        """Upload the files the experiment wrote at the top of ``root`` (log.jsonl,
        manifest.json, summary.csv...) that changed since their last upload."""
        now = time.monotonic()
        if not force and now - self._last_sync < SYNC_S:
            return
        self._last_sync = now
        for f in sorted(self.root.iterdir()):
            if f.is_file() and not f.name.startswith("."):
                st = f.stat()
                if self._synced.get(f.name) != (st.st_size, st.st_mtime_ns):
                    self.fs.put_file(str(f), self._key(f))
                    self._mark_synced(f)

    # --- writing ------------------------------------------------------------------

    def write_frames(self, scenario: str, point: int, replication: int,
                     frames: dict[str, pd.DataFrame]) -> str:
        """Stage the tables, then upload them and the logs the replication streamed into
        its staged parts (by the worker that ran it; the record comes later)."""
        tables = super().write_frames(scenario, point, replication, frames)
        where = f"scenario={scenario}/point={int(point)}/replication={int(replication)}/{PART_FILE}"
        for f in sorted(self.root.glob(f"*/{where}")):
            self._upload(f)
        return tables

    def commit(self, record: dict) -> None:
        lost = self._lease.lost_why() if self._lease is not None else None
        if lost:
            raise StoreBusy(self.url, None, f"this run lost the store's lease ({lost}); "
                            "another writer may be using it: rerun the same command to resume")
        super().commit(record)
        self._upload(self.part("runs", record["scenario"], record["point"], record["replication"]))
        self._sync()

    def log(self, event: str, **fields) -> None:
        super().log(event, **fields)
        self._sync()

    # --- reading ------------------------------------------------------------------

    def read_log(self) -> pd.DataFrame:
        if self._lease is not None:           # the writer's own copy is ahead of the uploaded one
            self._sync(force=True)
        return super().read_log()

    def _part_files(self, table: str) -> tuple[list[str], str, object]:
        folder = f"{self.base}/{table}"
        self.fs.invalidate_cache()             # others (workers) wrote since the last listing
        return [f for f in sorted(self.fs.find(folder)) if _is_part(f, folder)], folder, self.fs

    def _present(self) -> Callable[[Path], bool]:
        self.fs.invalidate_cache()
        have = {p.lstrip("/") for p in self.fs.find(self.base)}
        return lambda part: self._key(part).lstrip("/") in have


class _Lease:
    """The one-writer lease of an object store: the object ``.lock`` naming its writer,
    renewed every LEASE_BEAT_S by a background thread (see the module docstring)."""

    def __init__(self, fs, path: str):
        self.fs, self.path = fs, path
        self.writer = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.s3 = "s3" in _protocols(fs)
        self.token = None       # the version held: its ETag on S3, else its bytes
        self.lost: str | None = None
        self._beats = 0
        self._renewed = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _body(self) -> bytes:
        self._beats += 1
        return json.dumps({"writer": self.writer, "host": HOST, "pid": os.getpid(),
                           "heartbeat_utc": utc_now(), "beat": self._beats}).encode()

    def _read(self) -> tuple[dict | None, object]:
        """(the lease as held now, or None if there is none; its version)."""
        self.fs.invalidate_cache(self.path)
        try:
            etag = self.fs.info(self.path).get("ETag") if self.s3 else None   # before the body
            raw = self.fs.cat_file(self.path)
        except FileNotFoundError:
            return None, None
        try:
            held = json.loads(raw)
        except ValueError:
            held = {}                       # garbled: counts as stale
        return (held if isinstance(held, dict) else {}), (etag if self.s3 else raw)

    def _create(self, body: bytes) -> bool:
        """Write the lease if there is none (S3: one PUT with ``If-None-Match: *``)."""
        try:
            out = self.fs.pipe_file(self.path, body, mode="create")
        except FileExistsError:
            return False
        self.token = out["ETag"] if self.s3 else body
        return True

    def _swap(self, body: bytes, token) -> object | None:
        """Replace the lease if it is still at version ``token``; its new version, or None
        if it changed or went (S3: one PUT with ``If-Match: <ETag>``; elsewhere a read, then
        a write, which is not atomic)."""
        if self.s3:
            try:
                return self.fs.pipe_file(self.path, body, IfMatch=token)["ETag"]
            except FileNotFoundError:
                return None
            except OSError as e:
                code = getattr(e.__cause__, "response", {}).get("Error", {}).get("Code")
                if code in ("PreconditionFailed", "ConditionalRequestConflict"):
                    return None
                raise
        if self._read()[1] != token:
            return None
        self.fs.pipe_file(self.path, body)
        return body

    @staticmethod
    def stale(held: dict) -> bool:
        """Not renewed for LEASE_STALE_S (by the clocks of writer and reader), or written by
        a process of this machine that is gone."""
        if held.get("host") == HOST and isinstance(held.get("pid"), int) and not _alive(held["pid"]):
            return True
        try:
            beat = _dt.datetime.fromisoformat(held["heartbeat_utc"])
        except (KeyError, TypeError, ValueError):
            return True
        return (_dt.datetime.now(_dt.timezone.utc) - beat).total_seconds() > LEASE_STALE_S

    def acquire(self, experiment: Callable[[], bytes | None], settings: dict, where: str) -> None:
        """Take the lease, waiting while a writer of the same experiment holds it; a writer of
        another experiment (``experiment()``: the store's experiment.json) is refused at once."""
        deadline = time.monotonic() + SETTINGS_WAIT_S
        checked = False
        while True:
            if self._create(self._body()):
                break
            held, token = self._read()
            if held is None:
                continue                                  # released meanwhile
            if self.stale(held):
                new = self._swap(self._body(), token)
                if new is not None:
                    self.token = new
                    break
                continue                                  # another writer was quicker
            if not checked:
                raw = experiment()
                if raw is None and time.monotonic() < deadline:
                    time.sleep(LEASE_POLL_S / 5)
                    continue
                try:
                    old = json.loads(raw) if raw is not None else None
                except ValueError:
                    old = None
                if old != _as_json(settings):
                    why = (f"which runs another experiment (the store {_difference(old, settings)})" if old
                           else f"still setting it up after {SETTINGS_WAIT_S:g} s")
                    raise StoreBusy(where, None, f"in use by writer {held.get('writer', '?')} (lease renewed "
                                    f"{held.get('heartbeat_utc', '?')}), {why}; wait for it to finish or use "
                                    "another output folder")
                checked = True                            # same experiment: wait, then resume
                _say_waiting(where, f"writer {held.get('writer', '?')} (lease renewed "
                             f"{held.get('heartbeat_utc', '?')})",
                             f"it finishes, or its lease goes {LEASE_STALE_S:g} s without renewal")
            time.sleep(LEASE_POLL_S)
        self._renewed = time.monotonic()
        self._thread = threading.Thread(target=self._renew, daemon=True, name="crisis-sim-lease")
        self._thread.start()

    def lost_why(self) -> str | None:
        """Why this writer may no longer commit (None while the lease is its own): taken
        over, or not renewed for LEASE_STALE_S (say, this process was frozen)."""
        if self.lost is None and time.monotonic() - self._renewed > LEASE_STALE_S:
            return f"not renewed for {LEASE_STALE_S:g} s"
        return self.lost

    def _renew(self) -> None:
        while not self._stop.wait(LEASE_BEAT_S):
            try:
                new = self._swap(self._body(), self.token)
            except Exception:  # noqa: BLE001 - a failed renewal is retried; too many lose the lease
                if time.monotonic() - self._renewed > LEASE_STALE_S:
                    self.lost = f"not renewed for {LEASE_STALE_S:g} s"
                    return
                continue
            if new is None:
                self.lost = "another writer took it over"
                return
            self.token, self._renewed = new, time.monotonic()

    def release(self) -> None:
        """Stop renewing and delete the lease if it is still this writer's."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            if self.lost is None and self._read()[1] == self.token:
                self.fs.rm_file(self.path)
        except OSError:
            pass                   # the store is unreachable: the lease goes stale instead


def _protocols(fs) -> tuple[str, ...]:
    return tuple(fs.protocol) if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)


def _partition_key(path: str, folder: str) -> tuple[str, int, int] | None:
    """(scenario, point, replication) of ``folder/scenario=S/point=P/replication=R/part-0.parquet``
    (None for any other path)."""
    rel = str(path).replace(os.sep, "/").lstrip("/")[len(str(folder).replace(os.sep, "/").lstrip("/")) + 1:]
    rel = rel.split("/")
    if len(rel) != 4 or rel[3] != PART_FILE or not all(r.startswith(k + "=") for r, k in zip(rel, PARTITION)):
        return None
    s, p, r = (x.split("=", 1)[1] for x in rel[:3])
    try:
        return s, int(p), int(r)
    except ValueError:
        return None


def _rel(key: tuple[str, int, int]) -> str:
    """A part's path inside its table's folder."""
    return f"scenario={key[0]}/point={key[1]}/replication={key[2]}/{PART_FILE}"


def _is_part(path: str, folder: str) -> bool:
    """``folder/scenario=*/point=*/replication=*/part-0.parquet`` (one flat listing of the
    table, not one per folder level as a glob would do on S3)."""
    rel = path.lstrip("/")[len(folder.lstrip("/")) + 1:].split("/")
    return (len(rel) == 4 and rel[3] == PART_FILE
            and all(r.startswith(k + "=") for r, k in zip(rel, PARTITION)))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
