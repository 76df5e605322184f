"""City scale (issue 17): per-call inputs in chunks, bounded by the calls in flight, with the
very same run; fewer call rows on disk (--no-calls, --calls-sample) with the very same KPIs."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sim
import sim.model as model_mod
from sim.callpath import CallInputs
from sim.cli import main
from sim.model import Model

ROOT = Path(__file__).resolve().parents[1]
CAHOOTS = ROOT / "scenarios/eugene/cahoots.yaml"          # follow-ups, transports, backups
LA = ROOT / "scenarios/los_angeles/meu_smart.yaml"        # desk consults, second units, hand-overs
SCALE = ROOT / "scenarios/scale/city_100k.yaml"


def _run(path: Path, chunk: int, monkeypatch, days: float = 6):
    """One replication with inputs made ``chunk`` calls at a time; records, at every chunk,
    the time and how many calls' inputs (CallInputs tuples) were alive, before the chunk's
    own are made."""
    monkeypatch.setattr(model_mod, "CHUNK", chunk)
    alive = [0]

    class Counted(CallInputs):          # a CallInputs that counts itself in and out
        __slots__ = ()

        def __del__(self):
            alive[0] -= 1

    def make(values):
        alive[0] += 1
        return tuple.__new__(Counted, values)
    monkeypatch.setattr(model_mod, "_call_inputs", make)
    held = []
    chunk_inputs = Model._chunk_inputs

    def spy(self, a, b):
        held.append((self.env.now, alive[0], self._blocks[-1][0] + a))
        return chunk_inputs(self, a, b)
    monkeypatch.setattr(Model, "_chunk_inputs", spy)
    s = sim.load_scenario(path, {"horizon_days": days, "warmup_days": 1})
    return Model(s, seed=5).run(), held


@pytest.mark.parametrize("path", [CAHOOTS, LA, SCALE], ids=lambda p: p.stem)
def test_inputs_in_chunks_give_the_same_run_and_hold_only_calls_in_flight(path, monkeypatch):
    small, held = _run(path, 7, monkeypatch)
    whole, _ = _run(path, 10 ** 9, monkeypatch)
    pd.testing.assert_frame_equal(small.calls, whole.calls, check_exact=True)
    pd.testing.assert_frame_equal(small.assignments, whole.assignments, check_exact=True)
    pd.testing.assert_frame_equal(small.pools, whole.pools, check_exact=True)
    # at each chunk, the inputs held are those of calls still open (their process, or a
    # follow-up or drive back they started, still running): calls in [received, the last
    # time anything recorded for them or a unit worked on them] (a missed follow-up leaves no
    # time: such calls and those open at the end count as in flight throughout)
    c = whole.calls[~whole.calls["proactive"]]
    t0 = c["t_received"].to_numpy()
    w = whole.assignments
    last_span = w[(w["call_id"] >= 0) & (w["call_id"] < len(c))].groupby("call_id")["t_released"].max()
    spans_end = np.full(len(c), np.nan)
    spans_end[last_span.index.to_numpy()] = last_span.to_numpy()
    end = np.nanmax(np.vstack([t0, spans_end] + [c[k].to_numpy(float) for k in
                                                 ("t_cleared", "t_team_free", "t_second_free", "t_handover",
                                                  "t_followup_done")]), axis=0)
    end[c["unfinished"].to_numpy() | (c["followup"] == "missed").to_numpy()] = math.inf
    assert len(held) > 10
    for now, n_held, a in held[1:]:
        in_flight = int(((t0[:a] <= now) & (end[:a] >= now)).sum())
        assert n_held <= in_flight, (now, n_held, in_flight, a)
    assert max(h for _, h, _ in held) < len(c) / 4      # not the horizon's calls


@pytest.mark.parametrize("path", [CAHOOTS, LA], ids=lambda p: p.stem)
def test_calls_generated_a_block_at_a_time_give_the_same_run(path, tmp_path, monkeypatch):
    """The calls are generated a week at a time (arrivals.CallSource); blocks of 5 hours, or
    the whole horizon in one, give the very same logs, and a streamed run keeps only the
    blocks whose calls are not all written yet."""
    s = sim.load_scenario(path, {"horizon_days": 9, "warmup_days": 1})
    whole = sim.arrivals.generate_calls(s, sim.streams.Streams(5, 0))
    blocks = list(sim.arrivals.CallSource(s, sim.streams.Streams(5, 0), block_hours=5))
    assert len(blocks) == math.ceil(10 * 24 / 5)
    for name in ("t", "channel", "call_type", "zone", "x", "y", "person"):
        assert np.array_equal(np.concatenate([getattr(b, name) for b in blocks]), getattr(whole, name)), name
    for purpose, u in whole.u.items():
        assert np.array_equal(np.concatenate([b.u[purpose] for b in blocks]), u), purpose

    def run(block_hours: int, stream: bool):
        monkeypatch.setattr(sim.arrivals, "BLOCK_HOURS", block_hours)
        monkeypatch.setattr(sim.arrivals.CallSource.__init__, "__defaults__", (block_hours,))
        monkeypatch.setattr(model_mod, "CHUNK", 40)        # a sweep, and so a row group, every 40 calls
        kept = []
        drop = Model._drop_written_blocks

        def spy(self):
            drop(self)
            # the first block kept holds the oldest call not written yet (in flight, or
            # finished since the last row group), or is the block being started
            first, cols = self._blocks[0]
            oldest = min([*self.record.holds, *self.record.done], default=None)
            if oldest is None or oldest >= first + len(cols["t"]):
                assert len(self._blocks) == 1
            else:
                assert first <= oldest
            kept.append(len(self._blocks))
        monkeypatch.setattr(Model, "_drop_written_blocks", spy)
        files = sim.calllog.LogFiles(tmp_path / f"c{block_hours}.parquet", tmp_path / f"a{block_hours}.parquet",
                                     rows=60) if stream else None
        res = Model(s, seed=5, stream=files).run()
        if stream:
            res.calls = pd.read_parquet(files.calls.path).sort_values("call_id", ignore_index=True)
        return res, kept
    one, _ = run(10 ** 6, False)
    five, _ = run(5, False)
    streamed, kept = run(5, True)
    for other in (five, streamed):
        pd.testing.assert_frame_equal(other.pools, one.pools, check_exact=True)
    pd.testing.assert_frame_equal(five.calls, one.calls, check_exact=True)
    assert np.array_equal(streamed.calls["t_received"].to_numpy(), one.calls["t_received"].to_numpy())
    assert np.array_equal(streamed.calls["t_on_scene"].to_numpy(), one.calls["t_on_scene"].to_numpy(),
                          equal_nan=True)
    # 48 blocks of 5 hours, a row group about every 80 calls: blocks are dropped as they go
    assert len(kept) >= 5 and max(kept) < len(blocks) / 2, kept


def _cli_run(out: Path, *extra: str) -> Path:
    assert main(["run", str(CAHOOTS), "-r", "2", "--workers", "1", "--quiet", "--out", str(out),
                 "--set", "horizon_days=8", "--set", "warmup_days=1", *extra]) == 0
    return out


def test_calls_sample_and_no_calls_keep_kpis_exact(tmp_path):
    full = _cli_run(tmp_path / "full")
    part = _cli_run(tmp_path / "sample", "--calls-sample", "0.3")
    none = _cli_run(tmp_path / "none", "--no-calls")
    summary = (full / "summary.csv").read_text()
    assert (part / "summary.csv").read_text() == summary
    assert (none / "summary.csv").read_text() == summary
    assert not (none / "calls.parquet").exists() and not (none / "assignments.parquet").exists()
    assert json.loads((none / "manifest.json").read_text())["calls_stored"] == "none"
    assert json.loads((part / "manifest.json").read_text())["calls_stored"] == "sample 0.3"

    key = ["replication", "call_id"]
    a = pd.read_parquet(full / "calls.parquet").sort_values(key).reset_index(drop=True)
    b = pd.read_parquet(part / "calls.parquet").sort_values(key).reset_index(drop=True)
    # the sampled rows are the full log's rows of those calls, unchanged
    same = a.merge(b[key], on=key)
    pd.testing.assert_frame_equal(same, b, check_categorical=False, check_exact=True)
    # about 30% of calls, in each replication (99.9% binomial bounds)
    for _, g in a.groupby("replication"):
        n = len(g)
        k = len(b[b["replication"] == g["replication"].iloc[0]])
        half = 3.3 * math.sqrt(n * 0.3 * 0.7)
        assert abs(k - 0.3 * n) < half, (k, n)
    # a call's spans are kept with it, and only those
    wa = pd.read_parquet(full / "assignments.parquet")
    wb = pd.read_parquet(part / "assignments.parquet")
    expect = wa.merge(b[key], on=key).sort_values(key + ["t_assigned", "unit"]).reset_index(drop=True)
    got = wb.sort_values(key + ["t_assigned", "unit"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expect, check_categorical=False, check_exact=True)


@pytest.mark.parametrize("value", ["0", "1.5", "nan", "x"])
def test_calls_sample_out_of_range_is_one_line_exit_2(value, capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["run", str(CAHOOTS), "--calls-sample", value, "--out", str(tmp_path / "o")])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--calls-sample" in err
    assert not (tmp_path / "o").exists()


def test_compare_calls_sample_keeps_the_same_calls_in_every_scenario(tmp_path):
    """Through the results store: KPIs as without sampling; each scenario stores the rows of
    the same (replication, call id) pairs, so sampled rows can be paired across scenarios."""
    police = ROOT / "scenarios/eugene/police_only.yaml"
    args = [str(CAHOOTS), str(police), "-r", "2", "--workers", "1", "--quiet", "--set", "horizon_days=4",
            "--set", "warmup_days=1"]
    assert main(["compare", *args, "--out", str(tmp_path / "full")]) == 0
    assert main(["compare", *args, "--out", str(tmp_path / "part"), "--calls-sample", "0.2"]) == 0
    k = [pd.read_parquet(tmp_path / o / "kpis").sort_values(["scenario", "replication", "metric"])
         .reset_index(drop=True) for o in ("full", "part")]
    pd.testing.assert_frame_equal(k[0], k[1], check_exact=True)
    full, part = (pd.read_parquet(tmp_path / o / "calls") for o in ("full", "part"))
    ids = {str(s): set(zip(g["replication"], g["call_id"])) for s, g in part.groupby("scenario", observed=True)}
    assert len(ids) == 2 and ids["cahoots"] == ids["police_only"]
    kept, n = len(ids["cahoots"]), int((full["scenario"] == "cahoots").sum())
    assert abs(kept - 0.2 * n) < 3.3 * math.sqrt(n * 0.2 * 0.8), (kept, n)
    assert json.loads((tmp_path / "part" / "experiment.json").read_text())["keep_calls"] == 0.2
