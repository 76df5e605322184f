"""What writing the streamed logs to Parquet costs, with pyarrow's default writer options and
with the log's own (``sim.calllog.writer_options``: dictionary encoding only for categorical
and string columns), issue 17.

Runs ``scenarios/scale/city_100k.yaml`` once, streamed as an experiment's worker runs it, and
keeps the Arrow tables the run hands to ``ParquetLog.write_table`` (call log and assignments
log, row group by row group). Then writes those very tables to Parquet files with the old
options and the new ones, alternating in each round, and prints per log: CPU time per row
(``time.process_time``, so pyarrow's own threads count; minimum over rounds), bytes per row of
the file, and the median over rounds of the per-round CPU ratio new / old. Also checks that
both files read back equal.

    python bench/bench_parquet_write.py [--days 365] [--rounds 7] [--stored]

``--days 365`` gives the row groups of a real year (65,536 calls each); a shorter horizon ends
in one smaller group. ``--stored``: the rows as an experiment's store keeps them (ids of none
as nulls, no scenario/replication columns) instead of as ``single_run`` streams them.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

import sim
from sim.calllog import LogFiles, ParquetLog, writer_options
from sim.experiment import _stored_rows, single_run

ROOT = Path(__file__).resolve().parents[1]


def captured_tables(days: float, stored: bool, folder: Path) -> tuple[dict[str, list], float, int]:
    """({log file name: the Arrow tables written to it}, run CPU seconds, calls) of one run."""
    tables: dict[str, list] = {}
    write_table = ParquetLog.write_table

    def keep(self, table):
        tables.setdefault(self.path.name, []).append(table)
        return write_table(self, table)
    s = sim.load_scenario(ROOT / "scenarios/scale/city_100k.yaml", {"horizon_days": days})
    files = LogFiles(folder / "calls.parquet", folder / "assignments.parquet",
                     prepare=_stored_rows if stored else None)
    ParquetLog.write_table = keep
    try:
        c0 = time.process_time()
        res, _ = single_run(s, s.seed, 0, stream=files)
        cpu = time.process_time() - c0
    finally:
        ParquetLog.write_table = write_table
    return tables, cpu, int(res.info["calls"])


def write(path: Path, tables: list, options: dict) -> float:
    """CPU seconds to write ``tables`` as row groups of one file with these writer options."""
    c0 = time.process_time()
    w = pq.ParquetWriter(path, tables[0].schema, **options)
    for t in tables:
        w.write_table(t)
    w.close()
    return time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=float, default=365)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--stored", action="store_true", help="rows as an experiment's store keeps them")
    a = ap.parse_args()
    scratch = tempfile.TemporaryDirectory()
    folder = Path(scratch.name)
    logs, run_cpu, calls = captured_tables(a.days, a.stored, folder)
    print(f"city_100k, {a.days:g} days, {calls} calls, run {run_cpu / calls * 1e6:.1f} us CPU/call "
          f"(streamed{', stored rows' if a.stored else ''}); {platform.python_version()}, pyarrow "
          f"{pa.__version__}, "
          f"{a.rounds} rounds")
    per_call = {"old": 0.0, "new": 0.0}
    for name, tables in logs.items():
        rows = sum(t.num_rows for t in tables)
        options = {"old": {}, "new": writer_options(tables[0].schema)}
        cpu = {k: [] for k in options}
        for r in range(a.rounds):
            order = list(options) if r % 2 == 0 else list(options)[::-1]     # alternate who goes first
            for k in order:
                cpu[k].append(write(folder / f"{k}-{name}", tables, options[k]))
        old, new = (pq.read_table(folder / f"{k}-{name}") for k in options)
        assert old.equals(new), f"{name}: the two files differ"
        ratios = [n / o for n, o in zip(cpu["new"], cpu["old"])]
        print(f"{name} ({rows} rows in {len(tables)} row groups):")
        for k in options:
            size = (folder / f"{k}-{name}").stat().st_size
            print(f"  {k}: {min(cpu[k]) / rows * 1e6:6.3f} us/row  {size / rows:6.1f} B/row")
            per_call[k] += min(cpu[k]) / calls * 1e6
        print(f"  new/old CPU: median {statistics.median(ratios):.3f} (rounds {min(ratios):.3f}-{max(ratios):.3f})")
    print(f"both logs per call: old {per_call['old']:.2f} us, new {per_call['new']:.2f} us "
          f"(of a run's {run_cpu / calls * 1e6:.1f} us/call)")


if __name__ == "__main__":
    main()
