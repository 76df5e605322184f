"""The results store at an object-store URL (s3:// on a moto server, with s3fs): the same
tables as in a local folder, the record as the commit, one writer at a time by a lease."""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

from sim.experiment import compare  # noqa: E402
from sim.scenario import load_scenario  # noqa: E402
from sim.store import ObjectStore, Store, StoreBusy, _Lease  # noqa: E402
from sim import store as store_mod  # noqa: E402

CO = Path(__file__).resolve().parents[1] / "tests" / "data" / "co_responder.yaml"
BUCKET = "crisis-sim-test"
TABLES = ("kpis", "calls", "assignments", "pools", "hourly")
TIMING = ["session", "worker", "started_utc", "finished_utc", "wall_s"]     # differ from run to run


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on a free port of 127.0.0.1, its bucket, and s3fs configured for it
    (through fsspec's config: what ``--out s3://...`` picks up); yields the filesystem."""
    import logging

    import boto3
    import fsspec
    logging.getLogger("werkzeug").setLevel(logging.ERROR)      # one line per request otherwise
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                 region_name="us-east-1").create_bucket(Bucket=BUCKET)
    before = fsspec.config.conf.get("s3")
    fsspec.config.conf["s3"] = {"key": "test", "secret": "test", "endpoint_url": endpoint,
                                "client_kwargs": {"region_name": "us-east-1"}}
    try:
        yield fsspec.filesystem("s3")
    finally:
        if before is None:
            fsspec.config.conf.pop("s3", None)
        else:
            fsspec.config.conf["s3"] = before
        server.stop()


@pytest.fixture(scope="module")
def co():
    return [load_scenario(CO, ["horizon_days=2"]),
            load_scenario(CO, ["horizon_days=2", "pools.co_responder.teams=3"])]


def _experiment(co, out, **kw):
    return compare(co, replications=2, seed=1, labels=["n2", "n3"], workers=1, out=out, **kw)


@pytest.fixture(scope="module")
def local(co, tmp_path_factory):
    return _experiment(co, tmp_path_factory.mktemp("local") / "exp")


def _same_tables(url: str, local_res, keys=("n2", "n3")) -> None:
    """A fresh reader of the URL (not the writer) returns what the local store holds."""
    remote = ObjectStore(url, list(keys))
    for table in TABLES:
        pd.testing.assert_frame_equal(remote.read(table), local_res.store.read(table), obj=table,
                                      check_exact=True)
    runs = remote.records().drop(columns=TIMING)
    pd.testing.assert_frame_equal(runs, local_res.store.records().drop(columns=TIMING), obj="runs",
                                  check_exact=True)


def _key(runs: pd.DataFrame) -> set:
    return set(zip(runs["scenario"].astype(str), runs["point"].astype(int), runs["replication"].astype(int)))


def test_experiment_at_an_s3_url_reads_back_as_in_a_local_folder(s3, co, local):
    url = f"s3://{BUCKET}/equal"
    res = _experiment(co, url)
    assert len(res.calls) > 50 and res.failed.empty
    for name in ("kpis", "summary", "differences", "calls", "pools", "hourly", "assignments"):
        pd.testing.assert_frame_equal(getattr(res, name), getattr(local, name), obj=name, check_exact=True)
    _same_tables(url, local)
    # the experiment's own files went up at close, the lease went with it, nothing staged stayed
    base = f"{BUCKET}/equal"
    for name in ("summary.csv", "differences.csv", "cells.csv"):
        assert s3.cat_file(f"{base}/{name}") == (local.out / name).read_bytes(), name
    assert json.loads(s3.cat_file(f"{base}/manifest.json"))["complete"] is True
    assert json.loads(s3.cat_file(f"{base}/experiment.json")) == json.loads((local.out / "experiment.json").read_text())
    assert not s3.exists(f"{base}/{store_mod.LOCK_FILE}")
    assert not [f for f in res.store.root.rglob("*.parquet")], "staged parts are removed once uploaded"
    log = res.store.read_log()
    assert list(log["event"]).count("ok") == 4 and log["event"].iloc[-1] == "end"


def test_a_replication_without_its_record_is_rerun_alone_and_strays_are_ignored(s3, co, local):
    url, base = f"s3://{BUCKET}/resume", f"{BUCKET}/resume"
    _experiment(co, url)
    lost = "scenario=n3/point=0/replication=1/part-0.parquet"
    s3.rm_file(f"{base}/runs/{lost}")                 # the worker's files are up, the record is not
    # a killed worker's whole files without a record (an object is there whole or not at all:
    # a multipart upload cut short never appears), and a streamed log's working file
    s3.copy(f"{base}/kpis/{lost}", f"{base}/kpis/scenario=n2/point=0/replication=5/part-0.parquet")
    s3.pipe_file(f"{base}/calls/scenario=n3/point=0/replication=1/.part-0.parquet.partial", b"\x00")
    s3.pipe_file(f"{base}/assignments/{lost}", b"not parquet")     # an uncommitted part is never opened
    cut = "resume/calls/scenario=n2/point=0/replication=6/part-0.parquet"
    upload = s3.call_s3("create_multipart_upload", Bucket=BUCKET, Key=cut)
    s3.call_s3("upload_part", Bucket=BUCKET, Key=cut, UploadId=upload["UploadId"], PartNumber=1, Body=b"x" * 1024)
    s3.invalidate_cache()
    assert not s3.exists(f"{BUCKET}/{cut}")
    reader = ObjectStore(url, ["n2", "n3"])
    assert _key(reader.records()) == {("n2", 0, 0), ("n2", 0, 1), ("n3", 0, 0)}
    want = local.store.read("kpis")
    want = want[~((want["scenario"] == "n3") & (want["replication"] == 1))].reset_index(drop=True)
    pd.testing.assert_frame_equal(reader.read("kpis"), want, check_exact=True)
    want = local.store.read("assignments")
    want = want[~((want["scenario"] == "n3") & (want["replication"] == 1))].reset_index(drop=True)
    pd.testing.assert_frame_equal(reader.read("assignments"), want, check_exact=True)
    assert reader.done() == _key(reader.records())

    again = _experiment(co, url)
    log = again.store.read_log()
    sessions = log.loc[log["event"] == "session", "session"].tolist()
    assert len(sessions) == 2
    rerun = log[(log["session"] == sessions[1]) & (log["event"] == "submit")]
    assert _key(rerun) == {("n3", 0, 1)}                 # only that replication ran again
    for name in ("kpis", "summary", "differences", "calls"):
        pd.testing.assert_frame_equal(getattr(again, name), getattr(local, name), obj=name, check_exact=True)
    _same_tables(url, local)


def test_a_second_writer_with_other_settings_is_refused_with_one_line(s3, capsys, monkeypatch):
    from sim.cli import main
    url = f"s3://{BUCKET}/busy"
    settings = {"kind": "compare", "keep_calls": True, "cells": [{"scenario": "other", "point": 0}]}
    monkeypatch.setattr(store_mod, "SETTINGS_WAIT_S", 1.0)
    holder = Store.open(url, settings, {})
    try:
        rc = main(["compare", str(CO), "-r", "1", "--workers", "1", "--quiet",
                   "--set", "horizon_days=1", "--out", url])
        err = capsys.readouterr().err
        assert rc == 2, err
        assert len(err.strip().splitlines()) == 1 and "in use by writer" in err and url in err, err
        assert "runs another experiment" in err, err
    finally:
        holder.close()
    # free again, but experiment.json holds the other experiment: refused as in a local folder
    rc = main(["compare", str(CO), "-r", "1", "--workers", "1", "--quiet",
               "--set", "horizon_days=1", "--out", url])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "another output folder" in err, err


@pytest.fixture(params=["s3", "memory"])
def lease_store(request):
    """(filesystem, URL, path of the lease) on S3 (conditional writes) and in memory (fsspec's
    exclusive create; a takeover there is a read, then a write)."""
    import fsspec
    if request.param == "s3":
        return request.getfixturevalue("s3"), f"s3://{BUCKET}/lease", f"{BUCKET}/lease/{store_mod.LOCK_FILE}"
    fs = fsspec.filesystem("memory")
    if fs.exists("/lease-test"):
        fs.rm("/lease-test", recursive=True)
    return fs, "memory://lease-test", f"/lease-test/{store_mod.LOCK_FILE}"


def test_one_writer_at_a_time_by_a_lease_renewed_taken_over_when_stale(lease_store, monkeypatch, capsys):
    fs, url, lock = lease_store
    settings = {"kind": "compare", "keep_calls": True, "cells": [{"scenario": "x", "point": 0}]}
    monkeypatch.setattr(store_mod, "LEASE_BEAT_S", 0.05)
    monkeypatch.setattr(store_mod, "LEASE_POLL_S", 0.05)
    first = Store.open(url, settings, {})
    # a writer of the same experiment waits while the lease is fresh, then resumes
    opened = []
    waiter = threading.Thread(target=lambda: opened.append(Store.open(url, settings, {})))
    waiter.start()
    beat = json.loads(fs.cat_file(lock))["beat"]
    for _ in range(200):                                # meanwhile the first one renews its lease
        if json.loads(fs.cat_file(lock))["beat"] > beat + 1:
            break
        time.sleep(0.02)
    else:
        pytest.fail("the lease was not renewed")
    assert not opened and json.loads(fs.cat_file(lock))["writer"] == first._lease.writer
    holder = first._lease.writer
    first.close()
    waiter.join(timeout=20)
    assert opened and json.loads(fs.cat_file(lock))["writer"] == opened[0]._lease.writer
    # the waiter said so, once, naming the holder and when it would go on
    said = [line for line in capsys.readouterr().err.splitlines() if "running this same experiment" in line]
    assert len(said) == 1 and f"writer {holder}" in said[0] and "without renewal" in said[0]
    first = opened[0]
    # it stops renewing (a frozen machine); once stale, a second writer takes the lease over
    first._lease._stop.set()
    first._lease._thread.join()
    held = json.loads(fs.cat_file(lock))
    assert not _Lease.stale(held)
    monkeypatch.setattr(store_mod, "LEASE_STALE_S", 0.0)
    assert first._lease.lost_why() == "not renewed for 0 s"    # it would commit nothing now
    second = Store.open(url, settings, {})
    assert json.loads(fs.cat_file(lock))["writer"] == second._lease.writer != held["writer"]
    # the first one comes back: its next renewal finds the lease changed, and it commits nothing more
    first._lease._stop = threading.Event()
    first._lease._thread = threading.Thread(target=first._lease._renew, daemon=True)
    first._lease._thread.start()
    first._lease._thread.join(timeout=10)
    assert first._lease.lost == "another writer took it over"
    with pytest.raises(StoreBusy, match="lost the store's lease"):
        first.commit({"scenario": "x", "point": 0, "replication": 0, "status": "ok", "tables": ""})
    assert not fs.exists(lock.replace(store_mod.LOCK_FILE, "runs"))
    first.close()                                       # leaves the other writer's lease alone
    assert json.loads(fs.cat_file(lock))["writer"] == second._lease.writer
    second.close()
    assert not fs.exists(lock)
    # a lease left by a dead process of this machine is stale at once
    fs.pipe_file(lock, json.dumps({"writer": "gone", "host": store_mod.HOST, "pid": _dead_pid(),
                                   "heartbeat_utc": store_mod.utc_now()}).encode())
    monkeypatch.setattr(store_mod, "LEASE_STALE_S", 3600.0)
    third = Store.open(url, settings, {})
    assert json.loads(fs.cat_file(lock))["writer"] == third._lease.writer
    third.close()


def _dead_pid() -> int:
    import subprocess
    import sys
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_dask_workers_write_their_replications_to_the_url(s3, co, local):
    from distributed import LocalCluster
    url = f"s3://{BUCKET}/dask"
    with LocalCluster(processes=True, n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        res = compare(co, replications=2, seed=1, labels=["n2", "n3"], backend="dask",
                      scheduler=cluster.scheduler_address, out=url)
    for name in ("kpis", "summary", "calls", "pools"):
        pd.testing.assert_frame_equal(getattr(res, name), getattr(local, name), obj=name, check_exact=True)
    _same_tables(url, local)
    # the data files were written by the worker processes, not by this one
    assert f":{os.getpid()}" not in " ".join(res.runs["worker"])
