"""A replication's call log and assignments log written to Parquet while the run goes.

With ``Model(..., stream=LogFiles(calls=..., assignments=...))`` the rows of finished calls
(and the spans units worked on them) leave memory in row groups as the run goes, so a
replication's peak memory follows the calls open at once, not the horizon. The rows are
the same as in memory (``tests/test_stream.py``); only their order differs: row groups
come in the order calls finished, each sorted by ``call_id``.

Nothing half-written is ever trusted: each table is written to ``.<name>.partial`` beside
``<path>`` (``part-0.parquet`` -> ``.part-0.parquet.partial``, same folder, so the final move
stays on one filesystem) and moved onto ``<path>`` in one step when the run ends
(:meth:`ParquetLog.close`). A run killed part-way leaves only the ``.partial`` file, which no
reader opens (its name starts with ``.``: pyarrow datasets, ``pd.read_parquet`` of a folder,
dask and the store skip it) and the next run replaces.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd

ROW_GROUP = 65_536       # calls per row group: ~25 MB of frames at a time


def writer_options(schema) -> dict:
    """``pq.ParquetWriter`` options for a log of this Arrow schema: pyarrow's defaults (snappy,
    statistics on) but dictionary encoding only for categorical (dictionary-typed) and string
    columns. Floats and integers are mostly distinct per row (times, places, ids): building a
    dictionary of them is work that buys nothing, and the file comes out larger (call log
    ~120 -> ~99 B/row, writing ~2x cheaper: ``bench/bench_parquet_write.py``). Low-cardinality
    integers (priority, tier, unit) are left out too: measured, dictionary encoding them saves
    ~1 B/row and costs ~10% more write time. pyarrow never dictionary-encodes bools. Statistics
    stay on: nothing in ``sim/`` reads them, but readers of a store (DuckDB, dask, pyarrow
    datasets) may skip row groups by them, e.g. on ``call_id`` or ``t_received``. The encoding
    changes no stored value (``tests/test_calllog_encoding.py``)."""
    import pyarrow as pa
    cats = [f.name for f in schema if pa.types.is_dictionary(f.type) or pa.types.is_string(f.type)
            or pa.types.is_large_string(f.type)]
    return {"use_dictionary": cats}


class ParquetLog:
    """One table appended in row groups to ``.<name>.partial`` beside ``path`` (hidden from
    readers of the folder), moved onto ``path`` by :meth:`close`; ``prepare`` turns each frame
    into the rows to store."""

    def __init__(self, path: str | Path, prepare: Callable[[pd.DataFrame], pd.DataFrame] | None = None):
        self.path = Path(path)
        self.partial = partial_path(self.path)
        self.prepare = prepare
        self._writer = None
        self._schema = None
        self.rows = 0

    def write(self, df: pd.DataFrame) -> None:
        """Append a frame's rows (after ``prepare``) as one row group."""
        import pyarrow as pa
        if self.prepare is not None:
            df = self.prepare(df)
        # one thread: for a row group of this size, a pool of converter threads costs more
        # (their start and their GIL hand-offs) than it saves (~0.4 us per call measured)
        self.write_table(pa.Table.from_pandas(df, preserve_index=False, nthreads=1))

    def write_table(self, table) -> None:
        """Append an Arrow table as one row group (the first one fixes the schema)."""
        import pyarrow.parquet as pq
        if self._writer is None:
            from .results import make_dirs
            make_dirs(self.partial.parent)
            self._schema = table.schema
            self._writer = pq.ParquetWriter(self.partial, self._schema, **writer_options(self._schema))
        elif not table.schema.equals(self._schema, check_metadata=False):
            table = table.cast(self._schema)
        self._writer.write_table(table)
        self.rows += table.num_rows
        del table
        release_memory()

    def close(self, empty: pd.DataFrame | None = None) -> Path:
        """Finish the file and move it into place durably (``results.durable_replace``:
        flushed to disk, then renamed; ``empty``: the table's columns, written when no row
        ever came)."""
        from .results import durable_replace
        if self._writer is None:
            self.write(empty if empty is not None else pd.DataFrame())
        self._writer.close()
        self._writer = None
        durable_replace(self.partial, self.path)          # one fsync of the file, one of its folder
        return self.path

    def abort(self) -> None:
        """Stop writing and remove the partial file (the run failed)."""
        if self._writer is not None:
            try:
                self._writer.close()
            finally:
                self._writer = None
        if self.partial.exists():
            self.partial.unlink()


def partial_path(path: str | Path) -> Path:
    """The working file of a log being written to ``path``: ``.<name>.partial`` in the same
    folder (a leading ``.``, so that folder readers skip it; the same filesystem, so that
    :meth:`ParquetLog.close` renames it in one step)."""
    path = Path(path)
    return path.with_name(f".{path.name}.partial")


class LogFiles:
    """Where a streaming replication writes its call log and its assignments log."""

    def __init__(self, calls: str | Path, assignments: str | Path,
                 prepare: Callable[[pd.DataFrame], pd.DataFrame] | None = None, rows: int | None = None):
        self.calls = ParquetLog(calls, prepare)
        self.assignments = ParquetLog(assignments, prepare)
        self.rows = int(ROW_GROUP if rows is None else rows)     # calls per row group

    def close(self, empty_calls: pd.DataFrame, empty_work: pd.DataFrame) -> None:
        self.calls.close(empty_calls)
        self.assignments.close(empty_work)

    def abort(self) -> None:
        self.calls.abort()
        self.assignments.abort()


def batches(path: str | Path, columns: tuple[str, ...] | list[str], rows: int | None = None):
    """The named columns of a stored log (those it has) as DataFrames of at most ``rows`` rows
    (default :data:`ROW_GROUP`), in file order, ids back to the engine's -1 for none (the
    inverse of ``columns.nullify``), as the model's own frames hold them: what the audits and
    the KPIs read a streamed log by, so that their memory follows a batch, not the file. A
    log with no rows gives one empty frame of its columns."""
    import pyarrow.parquet as pq
    from .columns import denullify
    # pre_buffer (pyarrow's default) keeps the buffers of every row group read so far: the
    # memory of reading a 1e7-call log grew by ~400 MB; without it a batch is all there is
    f = pq.ParquetFile(path, pre_buffer=False)
    have = f.schema_arrow.names
    cols = [c for c in columns if c in have]
    empty = True
    for b in f.iter_batches(batch_size=int(rows or ROW_GROUP), columns=cols, use_threads=False):
        empty = False
        yield denullify(b.to_pandas())
    if empty:
        yield denullify(f.schema_arrow.empty_table().select(cols).to_pandas())


def row_count(path: str | Path) -> int:
    """Rows of a stored log (from its footer; nothing is read)."""
    import pyarrow.parquet as pq
    return pq.ParquetFile(path).metadata.num_rows


def release_memory() -> None:
    """Hand memory the allocators keep for reuse back to the system: Arrow's pool, and (on
    glibc) C malloc's free pages, which it otherwise keeps after big arrays are freed. Called
    between the phases of a streamed replication so the next phase does not stack on top of
    the last one's freed memory."""
    import pyarrow as pa
    pa.default_memory_pool().release_unused()
    if _libc is not None:
        _libc.malloc_trim(0)


def _load_libc():
    import ctypes
    import ctypes.util
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim
    except (OSError, AttributeError):
        return None                      # not glibc: nothing to trim
    return libc


_libc = _load_libc()


def row_groups(path: str | Path):
    """The row groups of a Parquet file one at a time, as Arrow tables (a log with no rows
    still has one, empty: ``ParquetLog.close`` writes its columns)."""
    import pyarrow.parquet as pq
    f = pq.ParquetFile(path, pre_buffer=False)    # as in batches(): no buffers kept across groups
    for g in range(f.num_row_groups):
        yield f.read_row_group(g)


def copy_rows(dst: str | Path, tables) -> None:
    """Write the Arrow tables ``tables`` to ``dst`` as row groups, one at a time, into a
    partial file moved into place at the end (nothing half-written is left on an error)."""
    log = ParquetLog(dst)
    try:
        for t in tables:
            log.write_table(t)
        log.close()
    except BaseException:
        log.abort()
        raise


def concatenate(dst: str | Path, parts: list[tuple[int, Path]], scenario: str) -> None:
    """One file of a run's stored logs (``parts``: (replication, file), in order), with the
    ``scenario`` and ``replication`` columns in front, copied row group by row group (a
    city's year of calls is never in memory at once)."""
    import pyarrow as pa

    def tables():
        for replication, path in parts:
            for t in row_groups(path):
                n = t.num_rows
                t = t.add_column(0, "replication", pa.array([replication] * n, pa.int64()))
                yield t.add_column(0, "scenario", pa.DictionaryArray.from_arrays(
                    pa.array([0] * n, pa.int8()), pa.array([scenario])))
    copy_rows(dst, tables())
