"""Reading an export: columns checked against the map, dates parsed with the map's explicit
formats (vectorised, never guessed), and every row either used or excluded with a reason.

:func:`read_calls` returns a :class:`CallTable`: one row per data row of the file, in file
order, with the standard columns ``received``, ``queued`` ... ``cleared`` (naive local
datetimes, NaT when not recorded), ``call_type`` (the raw type the crosswalk reads),
``call_type_final``, ``priority`` (Int64, 1 = most urgent), ``disposition``, ``zone``,
``channel``, ``responder``, ``x``, ``y``, ``bad_<stage>`` (a value was there but matched no
date format) and ``excluded`` (the reason, or "" for a used row).
"""
from __future__ import annotations

import csv
import gzip
import io
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .columns import STAGES, ColumnMap, FromDataError, Rule

UNIT_MIN = {"s": 1 / 60.0, "min": 1.0, "h": 60.0}
# Row-level exclusion reasons, in the order they are applied (a row gets the first that holds).
SELF_INITIATED = "self-initiated (officer-initiated)"
CANCELLED = "cancelled or duplicate"
BAD_RECEIVED = "received: date matches none of the map's formats"
NO_RECEIVED = "received: not recorded"
OUTSIDE = "outside the calibration period"


@dataclass
class CallTable:
    """The rows of one export in standard columns, with the reason each excluded row is out."""

    rows: pd.DataFrame
    file: str
    map_name: str
    period: tuple[pd.Timestamp, pd.Timestamp]      # [start, end) local, whole days unless given
    rows_in_file: int
    notes: list[str] = field(default_factory=list)

    @property
    def used(self) -> pd.DataFrame:
        return self.rows[self.rows["excluded"] == ""]

    def exclusions(self) -> pd.DataFrame:
        """reason, rows: every row-level exclusion with its count (used rows last)."""
        vc = self.rows["excluded"].replace("", "(used)").value_counts()
        out = vc.rename_axis("reason").reset_index(name="rows")
        order = out["reason"].eq("(used)")
        return pd.concat([out[~order], out[order]], ignore_index=True)


def _header(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as f:
            return next(csv.reader(io.StringIO(f.readline())), [])
    except (OSError, UnicodeDecodeError, EOFError) as e:
        raise FromDataError(path, None, f"cannot read the file as UTF-8 CSV ({e})") from None


def _read_text(path: Path, columns: list[str]) -> pd.DataFrame:
    """The named columns as text ('' for empty cells), with pyarrow's multithreaded reader."""
    import pyarrow as pa
    from pyarrow import csv as pacsv

    try:
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
            include_columns=columns, column_types={c: pa.string() for c in columns},
            strings_can_be_null=False, quoted_strings_can_be_null=False))
    except (pa.ArrowInvalid, OSError) as e:
        raise FromDataError(path, None, f"cannot parse the CSV ({str(e).splitlines()[0]})") from None
    return pd.DataFrame({c: table.column(c).to_numpy(zero_copy_only=False).astype(object) for c in columns})


def _clean(s: pd.Series) -> pd.Series:
    return s.astype(str).str.strip()


def rule_mask(df: pd.DataFrame, rule: Rule) -> np.ndarray:
    """Rows a rule selects (values: exact, trimmed, case-insensitive; pattern: regex search)."""
    s = _clean(df[rule.column])
    if rule.values is not None:
        return s.str.upper().isin([v.strip().upper() for v in rule.values]).to_numpy()
    with warnings.catch_warnings():   # groups in a pattern are fine here: only the match counts
        warnings.simplefilter("ignore", UserWarning)
        return s.str.contains(rule.pattern, regex=True, na=False).to_numpy()


def _field(df: pd.DataFrame, spec, missing: set[str]) -> pd.Series:
    """A mapped field as text; None where not recorded."""
    s = _clean(df[spec.column])
    gone = s.isin(missing | set(spec.missing))
    if spec.pattern is not None:
        rx = re.compile(spec.pattern)
        groups = rx.groups
        ext = s.str.extract(f"({spec.pattern})", expand=True)
        s = ext.iloc[:, 1] if groups else ext.iloc[:, 0]
        gone |= s.isna()
        s = s.fillna("")
    if spec.map is not None:
        mapped = s.map(spec.map)
        s = mapped.where(mapped.notna(), spec.default if spec.default is not None else s)
    return s.where(~gone, None)


def parse_times(s: pd.Series, formats: list[str], missing: set[str]) -> tuple[pd.Series, pd.Series]:
    """(datetimes, unparseable mask): each format tried in order on the values still unparsed."""
    s = _clean(s)
    absent = s.isin(missing)
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[us]")
    for fmt in formats:
        todo = out.isna() & ~absent
        if not todo.any():
            break
        out[todo] = pd.to_datetime(s[todo], format=fmt, errors="coerce").astype("datetime64[us]")
    return out, out.isna() & ~absent


def read_calls(path: str | Path, cmap: ColumnMap, map_where: str = "", *, period=None,
               include_self_initiated: bool = False, include_cancelled: bool = False) -> CallTable:
    """Read ``path`` (CSV, optionally .gz) with column map ``cmap``; a mapped column missing
    from the file is a :class:`FromDataError` naming the column and the map."""
    path = Path(path)
    if not path.exists():
        raise FromDataError(path, None, "file not found")
    header = _header(path)
    wanted = cmap.columns()
    for col, where in wanted.items():
        if col not in header:
            raise FromDataError(path, None, f"column '{col}' ({where} in column map {map_where or cmap.name}) "
                                f"is not in the file; it has: {', '.join(header[:12])}"
                                + (" ..." if len(header) > 12 else ""))
    raw = _read_text(path, list(wanted))
    n = len(raw)
    missing = {m.strip() for m in cmap.missing_values}
    out = pd.DataFrame({"row": np.arange(1, n + 1)})
    bad = {}
    for stage, spec in cmap.timestamps.items():
        t, b = parse_times(raw[spec.column], spec.formats or cmap.date_formats, missing)
        out[stage], bad[stage] = t.to_numpy(), b.to_numpy()
    for stage in STAGES:                      # durations after another stage, in stage order
        d = cmap.durations.get(stage)
        if d is None:
            continue
        s = _clean(raw[d.column])
        absent = s.isin(missing)
        v = pd.to_numeric(s.where(~absent), errors="coerce")
        bad[stage] = (v.isna() & ~absent).to_numpy()
        out[stage] = (out[d.after] + pd.to_timedelta(v * UNIT_MIN[d.unit] * 60.0, unit="s")).to_numpy()
    for stage in STAGES:
        if stage not in out:
            out[stage] = pd.Series(pd.NaT, index=out.index, dtype="datetime64[us]")
            bad[stage] = np.zeros(n, dtype=bool)
        out[f"bad_{stage}"] = bad[stage]
    for name in ("call_type", "call_type_initial", "disposition", "zone", "channel", "id"):
        spec = cmap.fields.get(name)
        out[name] = _field(raw, spec, missing).to_numpy(dtype=object) if spec else None
    out["call_type_final"] = out["call_type"]
    out["call_type"] = out[cmap.classify_by]
    out["call_type"] = out["call_type"].where(out["call_type"].notna(), out["call_type_final"])
    out["call_type"] = out["call_type"].fillna("(none)")
    if "priority" in cmap.fields:
        p = pd.to_numeric(_field(raw, cmap.fields["priority"], missing), errors="coerce")
        out["priority"] = p.where((p >= 1) & (p == p.round())).astype("Int64")
    else:
        out["priority"] = pd.array([pd.NA] * n, dtype="Int64")
    for name in ("x", "y"):
        spec = cmap.fields.get(name)
        out[name] = pd.to_numeric(_field(raw, spec, missing), errors="coerce") if spec else np.nan
    if "channel" in cmap.fields:     # a blank channel cell: the map's default channel, else 'unknown'
        out["channel"] = out["channel"].fillna(cmap.fields["channel"].default or "unknown")
    else:
        out["channel"] = "911"
    if cmap.responder:
        r = _field(raw, cmap.responder, missing).fillna(cmap.responder.default or "police")
        # kinds are names in the scenario (pools, roles): lower snake case, so POLICE is police
        out["responder"] = r.str.lower().str.replace(r"[^a-z0-9]+", "_", regex=True).str.strip("_").replace("", "police")
        if cmap.responder.civilian:
            out.loc[rule_mask(raw, cmap.responder.civilian), "responder"] = "civilian"
    else:
        out["responder"] = "police"

    reason = np.full(n, "", dtype=object)

    def mark(mask, why):
        sel = (reason == "") & np.asarray(mask, dtype=bool)
        reason[sel] = why

    mark(bad["received"], BAD_RECEIVED)
    mark(out["received"].isna().to_numpy(), NO_RECEIVED)
    if not include_self_initiated:
        for r in cmap.self_initiated:
            mark(rule_mask(raw, r), r.reason or SELF_INITIATED)
    if not include_cancelled:
        for r in cmap.cancelled:
            mark(rule_mask(raw, r), r.reason or CANCELLED)
    for r in cmap.exclude:
        mark(rule_mask(raw, r), r.reason or f"excluded by the map ({r.column})")
    notes: list[str] = []
    recv = out["received"][reason == ""]
    if period is not None:
        try:
            start, end = (pd.Timestamp(p) for p in period)
        except (ValueError, TypeError) as e:
            raise FromDataError(path, "period", f"not a date: {e} (give START END as YYYY-MM-DD[ HH:MM])") from None
        if not start < end:
            raise FromDataError(path, "period", f"START {start} must be before END {end}")
    elif len(recv):
        start, end = recv.min().floor("D"), recv.max().floor("D") + pd.Timedelta(days=1)
        notes.append(f"period: whole days from the first to the last used call, {start:%Y-%m-%d} to "
                     f"{(end - pd.Timedelta(days=1)):%Y-%m-%d}")
    else:
        raise FromDataError(path, None, f"no usable rows: {n} rows read, every one excluded "
                            f"({pd.Series(reason).value_counts().idxmax() if n else 'the file is empty'})")
    mark(((out["received"] < start) | (out["received"] >= end)).to_numpy() & (reason == ""), OUTSIDE)
    out["excluded"] = reason
    if not (out["excluded"] == "").any():
        raise FromDataError(path, None, "no usable rows in the calibration period")
    return CallTable(rows=out, file=str(path), map_name=cmap.name, period=(start, end), rows_in_file=n, notes=notes)
