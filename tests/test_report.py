"""The HTML report: built from small real runs, self-contained, escaped, and opened in a
headless browser (Debian's chromium) with no console errors and no network requests."""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sim
from sim import report
from sim.results import manifest, write_parquet, write_run

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "validation" / "mmcc.yaml"
EVIL = "Pilot <script>alert(1)</script>"
SOURCE_URL = "https://example.org/eugene-cahoots-2020"
CHROMIUM = shutil.which("chromium") or (os.path.exists("/usr/bin/chromium") and "/usr/bin/chromium") or None


def _run_folder(out: Path, overrides: dict, reps: int = 2) -> None:
    s = sim.load_scenario(SCENARIO, {"horizon_days": 10, **overrides})
    res = sim.run(s, replications=reps, seed=7, workers=1)
    info = manifest([s], 7, reps, res.wall_s, scenario_file=str(SCENARIO), overrides=sorted(overrides))
    write_run(out, s, res.calls, res.pools, res.hourly, res.kpis, res.summary, info)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("results")
    base, pilot = root / "base", root / "pilot"
    _run_folder(base, {"name": "Baseline: 2 teams"})
    _run_folder(pilot, {"name": EVIL, "pools.crisis_team.teams": 3,
                        "description": "Three teams & a <i>pilot</i>",
                        "assumptions": ["Teams <b>never</b> call in sick"],
                        "sources": [f"CAHOOTS 2020 media guide, {SOURCE_URL}"]})
    # after-care tables as the bed model writes them, to check the beds chart is included
    occ = pd.DataFrame({"scenario": EVIL, "replication": [0, 0, 1, 1], "facility": "crisis_center",
                        "t": [0.0, 1440.0, 0.0, 2880.0], "occupied": [0, 3, 1, 2], "beds": 4})
    fac = pd.DataFrame({"scenario": EVIL, "replication": [0, 1], "facility": "crisis_center", "refusals": [2, 4]})
    write_parquet(pilot / "occupancy.parquet", occ)
    write_parquet(pilot / "facilities.parquet", fac)
    return base, pilot


@pytest.fixture(scope="module")
def built(folders, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("report") / "report.html"
    report.build_report(list(folders), out, target_min=5)
    return out, out.read_text(encoding="utf-8")


def test_report_is_self_contained(built):
    _, html = built
    assert "<script" not in html.lower()
    refs = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]*)""", html, flags=re.I)
    assert refs and all(r.startswith(("data:", "#")) for r in refs), [r[:40] for r in refs if not r.startswith(("data:", "#"))]
    assert "url(" not in html and "@import" not in html.lower()
    # the only web address is a scenario's source, shown as text in the sources list, not a link
    urls = re.findall(r"https?://[^\s<\"']+", html)
    assert urls == [SOURCE_URL]
    assert f"<li>CAHOOTS 2020 media guide, {SOURCE_URL}</li>" in html


def test_text_from_scenario_files_is_escaped(built):
    _, html = built
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "alert(1)</script>" not in html
    assert "Teams &lt;b&gt;never&lt;/b&gt; call in sick" in html
    assert "Three teams &amp; a &lt;i&gt;pilot&lt;/i&gt;" in html


def test_report_content_matches_the_results(built, folders):
    _, html = built
    base, pilot = folders
    for folder, teams in ((base, 2), (pilot, 3)):
        summary = pd.read_csv(folder / "summary.csv").set_index("metric")
        m, lo, hi = summary.loc["eligible_diversion_rate", ["mean", "ci_low", "ci_high"]]
        expected = (f"With {teams} crisis teams on duty around the clock, {m:.0%} [{lo:.0%}–{hi:.0%}] "
                    "of eligible calls are handled without police")
        assert expected.replace("%–", "–") in html
        fb = summary.loc["fallback_rate", "mean"]
        assert f"{fb:.0%} [" in html
    assert "Compared with &#x27;Baseline: 2 teams&#x27;" in html and "percentage points more" in html
    # KPI table: one column per scenario
    assert "<th>Baseline: 2 teams</th><th>Pilot &lt;script&gt;" in html
    # charts: response-time CDF, fallback by hour, forest, utilisation x2, beds
    assert html.count("<img ") == 6
    assert 'alt="Beds: Pilot &lt;script&gt;alert(1)&lt;/script&gt;"' in html
    # manifests: version, commit and seed of each run
    m = json.loads((base / "manifest.json").read_text())
    assert html.count("<th scope='row'>seed</th><td>7</td>") == 2
    assert f"<td>{m['git_commit']}</td>" in html and "crisis_sim_version" in html
    assert "Not shown" not in html


def _experiment_folder(path: Path, kind: str, summary: pd.DataFrame, differences=None) -> Path:
    path.mkdir(exist_ok=True)
    summary.to_csv(path / "summary.csv", index=False)
    if differences is not None:
        differences.to_csv(path / "differences.csv", index=False)
    (path / "manifest.json").write_text(json.dumps({"kind": kind, "seed": 1, "replications": 5,
                                                   "scenarios": list(dict.fromkeys(summary["scenario"]))}))
    return path


def test_report_reads_compare_and_sweep_folders(tmp_path):
    rows = [{"scenario": sc, "point": 0, "metric": "eligible_diversion_rate", "mean": m, "ci_low": m - 0.05,
             "ci_high": m + 0.05, "replications": 5} for sc, m in (("police_only", 0.0), ("macro", 0.6))]
    diffs = pd.DataFrame([{"scenario": "macro", "baseline": "police_only", "metric": "eligible_diversion_rate",
                           "mean": 0.6, "ci_low": 0.55, "ci_high": 0.65, "replications": 5}])
    cmp = _experiment_folder(tmp_path / "cmp", "compare", pd.DataFrame(rows), diffs)
    sweep = pd.DataFrame([{"scenario": "macro", "point": t - 1, "pools.macro.teams": t,
                           "metric": "eligible_diversion_rate", "mean": 0.2 * t, "ci_low": 0.2 * t - 0.05,
                           "ci_high": 0.2 * t + 0.05, "replications": 5} for t in (1, 2, 3)])
    swp = _experiment_folder(tmp_path / "swp", "sweep", sweep)
    out = report.build_report([cmp, swp], tmp_path / "r.html")
    html = out.read_text()
    assert ("Compared with &#x27;police_only&#x27;, &#x27;macro&#x27; handles 60.0 percentage points more "
            "[+55.0 to +65.0] of eligible calls without police") in html
    assert "<th>police_only</th><th>macro</th>" in html
    assert "<th>pools.macro.teams=1</th><th>pools.macro.teams=2</th><th>pools.macro.teams=3</th>" in html
    assert 'alt="Differences to police_only"' in html and 'alt="Sweep of pools.macro.teams"' in html
    assert "Not shown" not in html and "<script" not in html


def test_compare_folder_charts_come_from_the_stored_call_log(folders, tmp_path):
    rows = []
    for folder, key in zip(folders, ("base", "pilot")):
        summary = pd.read_csv(folder / "summary.csv").assign(scenario=key, point=0)
        rows.append(summary)
        calls = pd.read_parquet(folder / "calls.parquet").drop(columns=["scenario"])
        for r, g in calls.groupby("replication"):
            part = tmp_path / "cmp" / "calls" / f"scenario={key}" / "point=0" / f"replication={r}"
            part.mkdir(parents=True)
            g.drop(columns=["replication"]).to_parquet(part / "part-0.parquet", index=False)
    cmp = _experiment_folder(tmp_path / "cmp", "compare", pd.concat(rows, ignore_index=True))
    html = report.build_report([cmp], tmp_path / "r.html", target_min=5).read_text()
    assert 'alt="Response-time distribution: base, pilot"' in html and 'alt="Fallback by hour: base, pilot"' in html
    assert "Not shown" not in html


def test_compare_table_pairs_replications(folders):
    base, pilot = (report.load_results(f) for f in folders)
    t = report.compare_table([base, pilot])
    row = t[(t["scenario"] == EVIL) & (t["metric"] == "eligible_diversion_rate")].iloc[0]
    kb = base.kpis[base.kpis["metric"] == "eligible_diversion_rate"].set_index("replication")["value"]
    kp = pilot.kpis[pilot.kpis["metric"] == "eligible_diversion_rate"].set_index("replication")["value"]
    assert row["diff_mean"] == pytest.approx((kp - kb).mean())
    assert row["diff_ci_low"] < row["diff_mean"] < row["diff_ci_high"] and bool(row["paired"])
    same = report.compare_table([base, base])
    assert (same.loc[same["scenario"] == base.name, "diff_mean"].dropna() == 0).all()


def test_fallback_window_finds_the_evening():
    t = np.concatenate([60 * (17 + np.arange(6) + 24 * d) + 5.0 for d in range(3)] + [[60 * 3 + 5.0]])
    calls = pd.DataFrame({"t_received": t, "eligible": True, "fallback": True, "police_pool": True,
                          "warmup": False})
    # 3 calls in each hour 17:00-23:00 and one at 03:00: half of 19 needs four evening hours
    assert report.fallback_window(calls) == (17, 21, pytest.approx(12 / 19))
    assert report.fallback_window(calls, share=0.9) == (17, 23, pytest.approx(18 / 19))
    assert report.fallback_window(calls.assign(fallback=False)) is None


def test_staffing_phrase_for_shifts():
    s = sim.load_scenario(SCENARIO, {"pools.crisis_team.teams": None, "pools.crisis_team.shifts": [
        {"days": "daily", "start": "13:00", "end": "21:00", "teams": 2}]})
    assert report.staffing_phrase(s) == "up to 2 crisis teams on shifts (112 team-hours a week)"
    s = sim.load_scenario(SCENARIO.with_name("mmc.yaml"), {"pools.team.teams": 1})
    assert report.staffing_phrase(s) == "1 team on duty around the clock"


def test_cli_report_command(folders, tmp_path, capsys):
    p = argparse.ArgumentParser()
    report.register_cli(p.add_subparsers(dest="command"))
    out = tmp_path / "r.html"
    args = p.parse_args(["report", str(folders[0]), "--out", str(out), "--charts-dir", str(tmp_path / "charts")])
    assert args.func(args) == 0 and out.exists()
    charts = sorted(p.name for p in (tmp_path / "charts").iterdir())
    assert charts == ["01-response-time-distribution.png", "02-fallback-by-hour-of-week.png",
                      "03-utilisation-by-hour-baseline-2-teams.png"]
    assert (tmp_path / "charts" / charts[0]).read_bytes()[:4] == b"\x89PNG"
    assert f"wrote {out}" in capsys.readouterr().out
    args = p.parse_args(["report", str(tmp_path / "missing")])
    assert args.func(args) == 2
    assert "not a folder" in capsys.readouterr().err


def _page_requests(netlog: Path) -> list[str]:
    """URLs the page itself asked for (the browser's own background requests have no origin)."""
    text = netlog.read_text()
    if not text.rstrip().endswith("}"):
        text = text.rstrip().rstrip(",") + "]}"
    log = json.loads(text)
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = []
    for e in log["events"]:
        p = e.get("params", {})
        if e["type"] == start and "url" in p and (p.get("initiator") != "not an origin"
                                                  or "file://" in p.get("network_isolation_key", "")):
            urls.append(p["url"])
    return urls


def _chromium(page: Path, tmp: Path) -> tuple[Path, str, list[str]]:
    shot, netlog = tmp / "shot.png", tmp / "net.json"
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp / 'profile'}",
         "--enable-logging=stderr", "--v=0", f"--log-net-log={netlog}", f"--screenshot={shot}",
         "--window-size=1280,2000", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [ln for ln in proc.stderr.splitlines() if ":CONSOLE" in ln]
    return shot, "\n".join(console), _page_requests(netlog)


@pytest.fixture
def browser():
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (apt-get install -y chromium); required with CI=true")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return CHROMIUM


def test_report_opens_in_headless_chromium(browser, built, tmp_path):
    page, _ = built
    shot, console, requests = _chromium(page, tmp_path)
    assert shot.exists() and shot.stat().st_size > 20_000
    from matplotlib.image import imread
    img = imread(shot)
    assert img.shape[:2] == (2000, 1280)
    assert img[..., :3].std() > 0.05           # not a blank page
    assert console == ""                       # no console messages, so no errors
    assert requests == []


def test_the_browser_check_sees_errors_and_requests(browser, tmp_path):
    """The checks above would notice a script error and a fetched resource."""
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><script>nope();</script><img src="http://example.invalid/x.png"></body></html>')
    _, console, requests = _chromium(bad, tmp_path)
    assert "Uncaught ReferenceError" in console
    assert requests == ["http://example.invalid/x.png"]


def test_compare_report_has_a_section_per_scenario(tmp_path):
    """A real comparison folder: each scenario gets its own utilisation chart against its
    schedule, with its assumptions, besides the comparison's charts."""
    a = sim.load_scenario(SCENARIO, {"horizon_days": 5, "name": "Two teams",
                                     "assumptions": ["Two teams <always> on"]})
    b = sim.load_scenario(SCENARIO, {"horizon_days": 5, "name": "Three teams", "pools.crisis_team.teams": 3})
    sim.compare([a, b], replications=2, seed=3, out=tmp_path / "cmp", workers=1)
    out = tmp_path / "report.html"
    report.build_report([tmp_path / "cmp"], out)
    html = out.read_text(encoding="utf-8")
    for name in ("Two teams", "Three teams"):
        assert f'alt="Utilisation by hour: {name}"' in html
    for name in ("Two teams", "Three teams"):
        assert f"<h3>{name}</h3>" in html
    assert "Two teams &lt;always&gt; on" in html
