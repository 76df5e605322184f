"""Issue 17: the streamed logs are written with dictionary encoding only for categorical and
string columns (``sim.calllog.writer_options``), and that changes no stored value: what is
read back equals the run's frames in memory, and the same frames written with pyarrow's
default options (``test_stream._check_stream_equals_memory`` compares against those)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import sim
from sim.calllog import LogFiles, concatenate
from sim.experiment import _stored_rows, single_run
from test_stream import WORK_KEY, _check_stream_equals_memory

ROOT = Path(__file__).resolve().parents[1]
CAHOOTS = ROOT / "scenarios/eugene/cahoots.yaml"


def _wants_dictionary(field: pa.Field) -> bool:
    return pa.types.is_dictionary(field.type) or pa.types.is_string(field.type)


def _check_encodings(path: Path) -> pa.Schema:
    """Every column chunk of the file has a dictionary page (and dictionary-encoded data) iff
    its column is categorical or a string; returns the file's Arrow schema."""
    f = pq.ParquetFile(path)
    schema = f.schema_arrow
    assert f.metadata.num_row_groups >= 1
    for g in range(f.metadata.num_row_groups):
        rg = f.metadata.row_group(g)
        for c in range(rg.num_columns):
            col = rg.column(c)
            want = _wants_dictionary(schema.field(col.path_in_schema))
            got = (col.has_dictionary_page, "RLE_DICTIONARY" in col.encodings)
            assert got == (want, want), (path.name, g, col.path_in_schema, col.encodings)
    return schema


def _read_sorted(path: Path, key: list[str]) -> pd.DataFrame:
    return pd.read_parquet(path).sort_values(key, kind="stable").reset_index(drop=True)


def test_streamed_logs_keep_every_value_and_dictionary_encode_only_categories(tmp_path):
    s = sim.load_scenario(CAHOOTS, {"horizon_days": 6, "warmup_days": 1})
    # checks the streamed files against the frames written with pyarrow's defaults
    mem = _check_stream_equals_memory(s, 11, tmp_path, rows=150)
    assert pq.ParquetFile(tmp_path / "calls.parquet").metadata.num_row_groups >= 3

    calls = _check_encodings(tmp_path / "calls.parquet")
    work = _check_encodings(tmp_path / "assignments.parquet")
    # the columns the change is about, spelled out: a float and an integer column carry no
    # dictionary, a categorical one does (all three as the model's frames type them)
    assert pa.types.is_floating(calls.field("t_received").type) and not _wants_dictionary(calls.field("t_received"))
    assert pa.types.is_integer(calls.field("priority").type)
    assert pa.types.is_dictionary(calls.field("call_type").type)
    assert pa.types.is_floating(work.field("travel_expected").type)
    assert pa.types.is_dictionary(work.field("task").type)
    meta = pq.ParquetFile(tmp_path / "calls.parquet").metadata
    names = [meta.schema.column(i).name for i in range(meta.num_columns)]
    rg = meta.row_group(0)
    assert not rg.column(names.index("t_received")).has_dictionary_page
    assert not rg.column(names.index("priority")).has_dictionary_page
    assert rg.column(names.index("call_type")).has_dictionary_page
    assert rg.column(names.index("call_type")).statistics is not None      # statistics still written

    # and against the frames in memory themselves, with no Parquet in between: every value,
    # dtype and category as the model holds it
    pd.testing.assert_frame_equal(_read_sorted(tmp_path / "calls.parquet", ["call_id"]),
                                  mem.calls.sort_values("call_id").reset_index(drop=True), check_exact=True)
    pd.testing.assert_frame_equal(_read_sorted(tmp_path / "assignments.parquet", WORK_KEY),
                                  mem.assignments.sort_values(WORK_KEY, kind="stable").reset_index(drop=True),
                                  check_exact=True)


def test_the_stores_rows_keep_every_value_with_nullable_ids_plain(tmp_path):
    """As an experiment streams them into its store: ids of none as nulls (nullable integers,
    not dictionary encoded), equal to the in-memory frames prepared the same way and written
    with pyarrow's default options."""
    s = sim.load_scenario(CAHOOTS, {"horizon_days": 4, "warmup_days": 1})
    mem, _ = single_run(s, 5, 0)
    files = LogFiles(tmp_path / "calls.parquet", tmp_path / "assignments.parquet", prepare=_stored_rows, rows=100)
    single_run(s, 5, 0, stream=files)
    for name, frame, key in (("calls", mem.calls, ["call_id"]), ("assignments", mem.assignments, WORK_KEY)):
        path = tmp_path / f"{name}.parquet"
        schema = _check_encodings(path)
        assert str(schema.field("unit").type) == "int64"            # nullable ids: integers, no dictionary
        expected = tmp_path / f"default-{name}.parquet"
        _stored_rows(frame).to_parquet(expected, index=False)           # pyarrow's defaults
        assert pq.ParquetFile(expected).metadata.row_group(0).column(
            pq.ParquetFile(expected).schema_arrow.get_field_index("unit")).has_dictionary_page
        got = _read_sorted(path, key)
        assert not name == "calls" or got["backup_unit"].isna().any()   # ids of none stored as nulls
        pd.testing.assert_frame_equal(got, _read_sorted(expected, key), check_exact=True)

    # crisis-sim run's copy of the store's call logs (concatenate -> copy_rows): the same rule
    dst, path = tmp_path / "run-calls.parquet", tmp_path / "calls.parquet"
    concatenate(dst, [(0, path), (3, path)], "cahoots")
    schema = _check_encodings(dst)
    assert pa.types.is_dictionary(schema.field("scenario").type)
    assert pa.types.is_integer(schema.field("replication").type)
    both = pd.read_parquet(dst)
    src = pd.read_parquet(path)
    assert list(both["replication"]) == [0] * len(src) + [3] * len(src)
    assert set(both["scenario"]) == {"cahoots"}
    for r in (0, 3):
        pd.testing.assert_frame_equal(both[both["replication"] == r].drop(columns=["scenario", "replication"])
                                      .reset_index(drop=True), src, check_exact=True)

