"""Calibration speed on the largest shipped export, and pyarrow reading against row-by-row.

Reads the San Diego extract (26,595 rows, the most rows; ../shared/data/cfs) and the DECC
export (18,915 rows x 29 columns, six timestamps each) and times, in alternating rounds,

* ``sim.from_cad`` end to end (read, parse dates, exclusions, every fit, the scenario);
* the fit report (charts and KS tests);
* reading the mapped columns with pyarrow (what from_cad does) against Python's csv module
  row by row (csv.DictReader, the way not to do it), the median of paired ratios.

    python bench/bench_fromdata.py [--rounds 5]

Target: from_cad on the largest export in under 30 s on 2 cores.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import sim
from sim.fromdata.columns import load_column_map
from sim.fromdata.read import _read_text

CFS = Path(__file__).resolve().parents[2] / "shared" / "data" / "cfs"
EXPORTS = [("san_diego", CFS / "san_diego" / "sdpd_calls_for_service_2023-01-01_to_2023-01-20.csv.gz"),
           ("decc", CFS / "decc_psap" / "decc_cad_2025-08-24_to_2025-11-08.csv.gz")]


def row_by_row(path: Path, columns: list[str]) -> dict[str, list[str]]:
    out = {c: [] for c in columns}
    with gzip.open(path, "rt", encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f):
            for c in columns:
                out[c].append(row[c])
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    for name, path in EXPORTS:
        if not path.exists():
            print(f"{name}: {path} not found, skipped")
            continue
        cmap, _ = load_column_map(name)
        cols = list(cmap.columns())
        fit_s, rep_s, ratios, arrow_s, rows_s = [], [], [], [], []
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(a.rounds):
                t = time.perf_counter()
                fit = sim.from_cad(path, name, name)
                fit_s.append(time.perf_counter() - t)
                t = time.perf_counter()
                fit.report(Path(tmp) / "fit.html")
                rep_s.append(time.perf_counter() - t)
                t = time.perf_counter()
                _read_text(path, cols)
                ta = time.perf_counter() - t
                t = time.perf_counter()
                row_by_row(path, cols)
                tr = time.perf_counter() - t
                arrow_s.append(ta)
                rows_s.append(tr)
                ratios.append(tr / ta)
        med = statistics.median
        print(f"{name}: {fit.calls.rows_in_file:,} rows, {len(cols)} mapped columns")
        print(f"  from_cad end to end   {med(fit_s):6.2f} s   (min {min(fit_s):.2f}, max {max(fit_s):.2f})")
        print(f"  fit report            {med(rep_s):6.2f} s")
        print(f"  read: pyarrow {med(arrow_s):.3f} s, csv row by row {med(rows_s):.3f} s, "
              f"median paired ratio {med(ratios):.1f}x")


if __name__ == "__main__":
    main()
