"""The HTML report: its brief replays the KPIs of real runs (Eugene police-only against
CAHOOTS, two weeks, two replications), it is self-contained and escaped, it reads on a
420-pixel screen without page-level horizontal scrolling, and its PDF (headless Chromium)
has no page whose text is cut. Browser checks need Debian's chromium and poppler-utils
(``make browser``); they skip without them, and fail with CI=true."""
from __future__ import annotations

import argparse
import base64
import html as htmllib
import json
import os
import re
import shutil
import subprocess
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sim
from sim import report
from sim.results import manifest, write_parquet, write_run

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "validation" / "mmcc.yaml"
EUGENE = ROOT / "scenarios" / "eugene"
EVIL = "Pilot <script>alert(1)</script>"
SOURCE_URL = "https://example.org/eugene-cahoots-2020"
CHROMIUM = report.chromium()
PDFTOPPM = shutil.which("pdftoppm")
EUGENE_DAYS = 7


# --------------------------------------------------------------------------- fixtures


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
    # after-care tables as the bed model writes them: one limited facility that was used
    occ = pd.DataFrame({"scenario": EVIL, "replication": [0, 0, 1, 1], "facility": "crisis_center",
                        "t": [0.0, 1440.0, 0.0, 2880.0], "occupied": [0, 3, 1, 2], "beds": 4})
    fac = pd.DataFrame({"scenario": EVIL, "replication": [0, 1], "facility": "crisis_center", "refusals": [2, 4]})
    write_parquet(pilot / "occupancy.parquet", occ)
    write_parquet(pilot / "facilities.parquet", fac)
    return base, pilot


@pytest.fixture(scope="module")
def built(folders, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("report") / "report.html"
    report.build_report(list(folders), out, target_min=30)
    return out, out.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def eugene(tmp_path_factory):
    """Eugene police-only against CAHOOTS on the same calls: a week, two replications."""
    root = tmp_path_factory.mktemp("eugene")
    over = {"horizon_days": EUGENE_DAYS, "warmup_days": 1}
    runs = [sim.load_scenario(EUGENE / f, over) for f in ("police_only.yaml", "cahoots.yaml")]
    sim.compare(runs, replications=2, seed=11, out=root / "cmp", workers=1)
    out = root / "report.html"
    report.build_report([root / "cmp"], out, target_min=30, charts_dir=root / "charts")
    views = report.compare_members(report.load_results(root / "cmp"))
    return root, out, out.read_text(encoding="utf-8"), views


def section(doc: str, sid: str) -> str:
    m = re.search(rf"<section id='{sid}'.*?</section>", doc, flags=re.S)
    assert m, f"no section {sid}"
    return m.group(0)


def visible(fragment: str) -> str:
    """The text a reader sees (tags and embedded images dropped, entities decoded)."""
    text = re.sub(r"<img[^>]*>", " ", fragment)
    text = re.sub(r"<[^>]+>", " ", text)
    return re.sub(r"\s+", " ", htmllib.unescape(text))


def table_after(fragment: str, heading: str) -> list[list[str]]:
    """The rows (cells as visible text) of the first table after ``<h3>heading</h3>``."""
    start = fragment.index(f"<h3>{htmllib.escape(heading, quote=False)}</h3>")
    body = fragment[start:fragment.index("</table>", start)]
    return [[visible(c).strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r, flags=re.S)]
            for r in re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)]


def _kpi(view, metric: str) -> float:
    s = view.summary.set_index("metric")
    return float(s.loc[metric, "mean"])


def _paired_interval(views, metric: str) -> tuple[float, float, float]:
    a, b = (v.kpis[v.kpis["metric"] == metric].set_index("replication")["value"] for v in views)
    return sim.metrics.t_interval(b - a)


def _paired(views, metric: str) -> float:
    a, b = (v.kpis[v.kpis["metric"] == metric].set_index("replication")["value"] for v in views)
    return float((b - a).mean())


# --------------------------------------------------------------------------- the brief (Eugene)


def test_eugene_brief_response_by_responder_against_the_counterfactual(eugene):
    _, _, doc, (police, cahoots) = eugene
    brief = section(doc, "brief")
    rows = {r[0]: r[1:] for r in table_after(brief, "Crisis callers: how long until help is on scene")}
    for v in (police, cahoots):
        label = next(k for k in rows if k.startswith(f"{v.name}: all eligible calls"))
        assert rows[label][:2] == [f"{_kpi(v, 'response_time_p50.eligible'):.1f} min",
                                   f"{_kpi(v, 'response_time_p90.eligible'):.1f} min"]
        assert rows[label][2] == f"{_kpi(v, 'share_within_30.eligible'):.1%}"
    assert "(all answered by police)" in next(k for k in rows if k.startswith(police.name))
    for who, kind in (("CAHOOTS teams", "civilian"), ("police", "police")):
        assert rows[f"… answered by {who}"][:2] == [f"{_kpi(cahoots, f'response_time_p50.eligible.{kind}'):.1f} min",
                                                   f"{_kpi(cahoots, f'response_time_p90.eligible.{kind}'):.1f} min"]
    # the comparison says worse when it is worse (CAHOOTS' median wait is longer than police-only's)
    text = visible(brief)
    m, lo, hi = _paired_interval((police, cahoots), "response_time_p50.eligible")
    assert m > 0 and f"{m:.1f} min longer [{lo:+.1f} to {hi:+.1f}] " + (
        "(worse)" if lo > 0 else "(not distinguishable from no difference)") in text
    dshare = _paired((police, cahoots), "share_within_30.eligible")
    assert f"{abs(dshare) * 100:.1f} percentage points {'fewer' if dshare < 0 else 'more'}" in text
    # the first lines: four points a reader takes in at a glance
    points = visible(re.search(r"<ul class='points'>.*?</ul>", brief, flags=re.S).group(0))
    p50, b50 = _kpi(cahoots, "response_time_p50.eligible"), _kpi(police, "response_time_p50.eligible")
    lo = _paired_interval((police, cahoots), "response_time_p50.eligible")[1]
    assert f"median wait {p50:.0f} min against {b50:.0f} min in {police.name} " \
           f"({'worse' if lo > 0 else 'no clear difference'})" in points
    take = _kpi(cahoots, "eligible_share.program_no_police") + _kpi(cahoots, "eligible_share.program_police_on_scene")
    assert f"CAHOOTS teams take {take:.0%} of eligible calls" in points
    assert "unit-hours a year freed, worth USD" in points and "Cost: USD" in points


def test_eugene_brief_eligible_shares_add_to_100_and_name_the_reasons(eugene):
    _, _, doc, (police, cahoots) = eugene
    brief = section(doc, "brief")
    rows = table_after(brief, "Where eligible calls go")
    head, body, total = rows[0], rows[1:-1], rows[-1]
    assert head[1:] == [police.name, cahoots.name] and total[0] == "All eligible calls"
    for col in (1, 2):
        shares = [float(r[col].rstrip("%")) for r in body if r[col] != report.NOT_APPLICABLE]
        assert round(sum(shares), 6) == 100.0 and total[col] == "100.0%"
    by_label = {r[0]: r for r in body}
    busy = by_label[sim.plots.SHARE_LABELS["fallback_busy"]]
    assert busy[1] == report.NOT_APPLICABLE                       # police-only has no fallback at all
    assert abs(float(busy[2].rstrip("%")) / 100 - _kpi(cahoots, "eligible_share.fallback_busy")) <= 0.0005
    assert by_label[sim.plots.SHARE_LABELS["police_first"]][1] == "100.0%"
    # the reasons in words, with the hours of the day the busy fallbacks came in
    text = visible(brief)
    fb = _kpi(cahoots, "eligible_share.fallback_busy")
    assert f"{fb:.1%} because every one of the CAHOOTS teams was busy (" in text
    start, end, share = report.fallback_window(cahoots.calls, reason="busy")
    assert f"{share:.0%} of them came in between {start:02d}:00 and" in text
    assert "none because none of the CAHOOTS teams was on shift" in text
    assert _kpi(cahoots, "fallback_unstaffed_rate") == 0


def test_eugene_brief_police_hours_value_and_annual_costs(eugene):
    _, _, doc, (police, cahoots) = eugene
    text = visible(section(doc, "brief"))
    year = 365.0 / EUGENE_DAYS
    freed = -_paired((police, cahoots), "police_hours") * year
    assert freed > 0 and f"police spend {freed:,.0f} fewer unit-hours a year" in text
    officer = cahoots.scenario.roles["officer"].hourly_cost
    assert f"At {report.money(officer, 'USD')} per police unit-hour" in text
    assert f"worth {report.money(freed * officer, 'USD')} a year" in text
    rows = {r[0]: r[1:] for r in table_after(section(doc, "brief"), "What it costs")}
    totals = [_kpi(v, "cost_per_year") for v in (police, cahoots)]
    assert rows["Total"] == [report.money(t, "USD") for t in totals] + \
        [report.money(_paired((police, cahoots), "cost_per_year"), "USD")]
    # the parts (staff hours by role) add up to the cost_per_year KPI
    for v, t in zip((police, cahoots), totals):
        assert sum(report.cost_parts(v).values()) == pytest.approx(t, rel=1e-9)
    assert rows["Staff hours: medic"][0] == "USD 0" and rows["Staff hours: medic"][1] != "USD 0"
    assert "Caveat: these are simulated figures" in text and "costs count staff hours only" in text


RAW_KEY = re.compile(r"\b[a-z][a-z0-9]*(?:[_.][a-z0-9]+)+\b")


def test_no_raw_metric_key_in_the_brief_or_main_tables(eugene):
    _, _, doc, views = eugene
    keys = {k for v in views for k in v.summary["metric"] if re.search(r"[_.]", k)}   # 'calls' is a word
    shown = visible(section(doc, "brief")) + " " + visible(section(doc, "charts"))
    labels = [r[0] for r in table_after(section(doc, "appendix"), "Every figure")]
    for name in [v.name for v in views]:
        shown = shown.replace(name, " ")            # labels carry their overrides (horizon_days=7)
    assert [k for k in keys if re.search(rf"(?<![\w.]){re.escape(k)}(?![\w.])", shown)] == []
    assert RAW_KEY.findall(shown) == []
    assert [lab for lab in labels if RAW_KEY.search(lab)] == [] and len(labels) > 20
    # the check would see a raw key
    assert RAW_KEY.findall(shown + " fallback_busy_rate ") == ["fallback_busy_rate"]


def test_every_figure_table_folds_zero_rows_and_marks_program_figures(eugene):
    _, _, doc, (police, cahoots) = eugene
    appendix = section(doc, "appendix")
    rows = {r[0]: r[1:] for r in table_after(appendix, "Every figure")}
    assert rows["Eligible calls that fell back: every program unit busy (%)"][0] == report.NOT_APPLICABLE
    folded = appendix[appendix.index("<details>"):appendix.index("</details>")]
    assert "Calls nobody answered (%)" in visible(folded)
    assert "Calls nobody answered (%)" not in rows                   # zero in both: folded away
    assert "<h3>Glossary</h3>" in appendix
    for term in ("eligible call", "fallback", "90th percentile, p90", "percentage points (pp)", "paired difference"):
        assert f"<dt>{term}</dt>" in appendix
    assert all(f"<code>{htmllib.escape(k)}</code>" in appendix for k in sim.metrics.glossary())


def _svg(doc: str, alt: str) -> str:
    """The text of an embedded SVG chart (text elements joined by spaces, wrapped lines too)."""
    m = re.search(rf'<img alt="{re.escape(htmllib.escape(alt))}" src="data:image/svg\+xml;base64,([^"]+)"', doc)
    assert m, f"no chart {alt}"
    svg = base64.b64decode(m.group(1)).decode("utf-8")
    texts = re.findall(r"<(?:text|tspan)\b[^>]*>([^<]*)<", svg)
    return re.sub(r"\s+", " ", " ".join(texts))


def test_eugene_charts_read_the_kpis_and_skip_empty_panels(eugene):
    root, _, doc, (police, cahoots) = eugene
    cdf = htmllib.unescape(_svg(doc, "Eligible calls: time until help is on scene"))
    for v in (police, cahoots):
        assert (f"median {_kpi(v, 'response_time_p50.eligible'):.0f} min, p90 "
                f"{_kpi(v, 'response_time_p90.eligible'):.0f} min, {_kpi(v, 'share_within_30.eligible'):.0%} "
                f"within 30 min") in cdf
    util = htmllib.unescape(_svg(doc, f"Utilisation by hour: {cahoots.name}"))
    assert f"cahoots: busy {_kpi(cahoots, 'utilisation.cahoots'):.0%} of on-duty time" in util
    # unlimited facilities (hospital ED, jail) get no bed chart; police-only never uses the sobering centre
    assert f'alt="Beds: {htmllib.escape(police.name)}"' not in doc
    beds = htmllib.unescape(_svg(doc, f"Beds: {cahoots.name}"))
    assert "sobering center" in beds and "hospital ed" not in beds and "jail" not in beds
    # no panel for a reason nobody fell back for (no van was ever off shift)
    fb = htmllib.unescape(_svg(doc, "When eligible calls go to police instead"))
    assert "Every program unit busy" in fb and "No program unit on shift" not in fb
    assert not re.search(r"\(units\)|currency/|0 to \d+ replications|0-\d+ replications", doc)
    names = sorted(p.name for p in (root / "charts").iterdir())
    assert "01-eligible-calls-time-until-help-is-on-scene.svg" in names
    assert "01-eligible-calls-time-until-help-is-on-scene.png" in names and len(names) % 2 == 0


# --------------------------------------------------------------------------- smaller pieces


def test_shares_to_100_rounds_by_largest_remainder():
    s = report.shares_to_100({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3, "d": 0.0})
    assert sum(s.values()) == pytest.approx(1.0) and sorted(s.values()) == [0.0, 0.333, 0.333, 0.334]
    plain = report.shares_to_100({"a": 0.5, "b": 0.2})                  # not a partition: plain rounding
    assert plain == {"a": 0.5, "b": 0.2}


def _fallback_log(times, reason="busy"):
    t = np.asarray(times, dtype=float)
    return pd.DataFrame({"t_received": t, "eligible": True, "tier": 1, "fallback_reason": reason, "warmup": False})


def test_fallback_window_and_day_find_the_evening():
    t = np.concatenate([60 * (17 + np.arange(6) + 24 * d) + 5.0 for d in range(3)] + [[60 * 3 + 5.0]])
    calls = _fallback_log(t)
    # 3 calls in each hour 17:00-23:00 and one at 03:00: half of 19 needs four evening hours
    assert report.fallback_window(calls) == (17, 21, pytest.approx(12 / 19))
    assert report.fallback_window(calls, share=0.9) == (17, 23, pytest.approx(18 / 19))
    assert report.fallback_window(calls, reason="unstaffed") is None
    assert report.fallback_window(calls.assign(tier=0)) is None
    assert report.busiest_day(calls) == ("Mondays", pytest.approx(7 / 19))
    assert report.when_phrase(calls, "busy") == "63% of them came in between 17:00 and 21:00, the most on Mondays (37%)"


def test_money_and_period_words():
    assert report.money(15_456_000, "USD") == "USD 15.46M" and report.money(-632.4, "EUR") == "−EUR 632"
    f = report.RunFolder(path=Path("."), name="x", kind="run", raw={"horizon_days": 365, "warmup_days": 7},
                         scenario=None, manifest={})
    assert report.period_phrase(f) == "a year (365 days after a 7-day warm-up)"
    f.raw = {"horizon_days": 10}
    assert report.period_phrase(f) == "10 days"


def test_staffing_phrase_for_shifts():
    s = sim.load_scenario(SCENARIO, {"pools.crisis_team.teams": None, "pools.crisis_team.shifts": [
        {"days": "daily", "start": "13:00", "end": "21:00", "teams": 2}]})
    assert report.staffing_phrase(s) == "up to 2 crisis teams on shifts (112 team-hours a week)"
    s = sim.load_scenario(SCENARIO.with_name("mmc.yaml"), {"pools.team.teams": 1})
    assert report.staffing_phrase(s) == "1 team on duty around the clock"


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


# --------------------------------------------------------------------------- self-contained, escaped, CLI


def test_report_is_self_contained(built):
    _, doc = built
    assert "<script" not in doc.lower()
    refs = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]*)""", doc, flags=re.I)
    assert refs and all(r.startswith(("data:", "#")) for r in refs), [r[:40] for r in refs if not r.startswith(("data:", "#"))]
    assert "url(" not in doc and "@import" not in doc.lower()
    # the only web address is a scenario's source, shown as text in the sources list, not a link
    assert re.findall(r"https?://[^\s<\"']+", doc) == [SOURCE_URL]
    assert f"<li>CAHOOTS 2020 media guide, {SOURCE_URL}</li>" in doc
    # embedded SVG charts carry no script either
    for data in re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', doc):
        svg = base64.b64decode(data).decode("utf-8")
        assert "<script" not in svg
        assert not re.search(r"""(?:href|src)\s*=\s*["'](?!#|data:)""", svg)      # namespaces only, no links


def test_text_from_scenario_files_is_escaped(built):
    _, doc = built
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in doc
    assert "alert(1)</script>" not in doc
    assert "Teams &lt;b&gt;never&lt;/b&gt; call in sick" in doc
    assert "Three teams &amp; a &lt;i&gt;pilot&lt;/i&gt;" in doc


def test_run_folders_report_brief_charts_and_appendix(built, folders):
    _, doc = built
    base, pilot = folders
    assert [m for m in re.findall(r"<section id='(\w+)'", doc)] == ["brief", "charts", "appendix"]
    brief = visible(section(doc, "brief"))
    assert f"{EVIL} against Baseline: 2 teams: what the model gives for 10 days" in brief
    busy = pd.read_csv(pilot / "summary.csv").set_index("metric").loc["eligible_share.fallback_busy", "mean"]
    assert f"{f'{busy:.1%}' if busy > 0 else 'none'} because every one of the crisis teams was busy" in brief
    alts = re.findall(r'<img alt="([^"]*)"', doc)
    assert alts == ["Eligible calls: time until help is on scene", "When eligible calls go to police instead",
                    "Differences to Baseline: 2 teams", "Utilisation by hour: Baseline: 2 teams",
                    "Utilisation by hour: Pilot &lt;script&gt;alert(1)&lt;/script&gt;",
                    "Beds: Pilot &lt;script&gt;alert(1)&lt;/script&gt;"]
    m = json.loads((base / "manifest.json").read_text())
    assert doc.count("<th scope='row'>seed</th><td>7</td>") == 2
    assert f"<td>{m['git_commit']}</td>" in doc and "crisis_sim_version" in doc
    assert "Not shown" not in doc


def test_cli_report_command(folders, tmp_path, capsys):
    p = argparse.ArgumentParser()
    report.register_cli(p.add_subparsers(dest="command"))
    out, charts = tmp_path / "r.html", tmp_path / "charts"
    charts.mkdir()
    (charts / "09-stale-chart.png").write_bytes(b"old")
    args = p.parse_args(["report", str(folders[0]), "--out", str(out), "--charts-dir", str(charts)])
    assert args.func(args) == 0 and out.exists()
    names = sorted(p.name for p in charts.iterdir())
    assert names == ["01-eligible-calls-time-until-help-is-on-scene.png",
                     "01-eligible-calls-time-until-help-is-on-scene.svg",
                     "02-when-eligible-calls-go-to-police-instead.png",
                     "02-when-eligible-calls-go-to-police-instead.svg",
                     "03-utilisation-by-hour-baseline-2-teams.png", "03-utilisation-by-hour-baseline-2-teams.svg"]
    png = (charts / names[0]).read_bytes()
    assert png[:4] == b"\x89PNG"
    width = int.from_bytes(png[16:20], "big")
    assert width >= 2 * 640                                       # 6.4 in at 200 dpi: twice screen resolution
    assert f"wrote {out}" in capsys.readouterr().out
    args = p.parse_args(["report", str(tmp_path / "missing")])
    assert args.func(args) == 2
    assert "not a folder" in capsys.readouterr().err


def test_chart_file_names_keep_whole_words():
    long = "Utilisation by hour: Eugene — CAHOOTS (2019) with a second van from 14:00 and a third one at night"
    assert report.chart_slug(long) == "utilisation-by-hour-eugene-cahoots-2019-with-a-second-van-from-14-00-and-a-third"
    assert report.chart_slug("Beds: " + "x" * 90) == "beds"            # never a word cut in two
    assert report.chart_slug("Zones: Eugene — CAHOOTS (2019)") == "zones-eugene-cahoots-2019"


def test_a_corrupt_file_is_one_report_error(folders, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(folders[0], bad)
    (bad / "manifest.json").write_bytes(b"\x00\xffnot json{{{")
    with pytest.raises(report.ReportError, match=r"manifest\.json: cannot be read") as e:
        report.load_results(bad)
    assert "\n" not in str(e.value)
    (bad / "manifest.json").write_text("{}")
    (bad / "calls.parquet").write_bytes(b"PAR1garbage")
    with pytest.raises(report.ReportError, match=r"calls\.parquet: cannot be read"):
        report.load_results(bad)


# --------------------------------------------------------------------------- compare and sweep folders


def _experiment_folder(path: Path, kind: str, summary: pd.DataFrame, differences=None) -> Path:
    path.mkdir(exist_ok=True)
    summary.to_csv(path / "summary.csv", index=False)
    if differences is not None:
        differences.to_csv(path / "differences.csv", index=False)
    (path / "manifest.json").write_text(json.dumps({"kind": kind, "seed": 1, "replications": 5,
                                                   "scenarios": list(dict.fromkeys(summary["scenario"]))}))
    return path


def _sweep(tmp_path: Path, teams=(1, 2, 3)) -> Path:
    rows = []
    for t in teams:
        for metric, m in (("eligible_diversion_rate", 0.2 * t), ("response_time_p90.eligible", 90 / t)):
            rows.append({"scenario": "macro", "point": t - 1, "pools.macro.teams": t, "metric": metric, "mean": m,
                         "ci_low": m - 0.05, "ci_high": m + 0.05, "replications": 5})
    return _experiment_folder(tmp_path / "swp", "sweep", pd.DataFrame(rows))


def test_sweep_report_names_the_smallest_configuration_with_its_confidence(tmp_path):
    swp = _sweep(tmp_path)
    doc = report.build_report([swp], tmp_path / "r.html", goal="eligible_diversion_rate>=0.5").read_text()
    brief = visible(section(doc, "brief"))
    assert ("The smallest setting of teams on duty, macro (24/7) that meets the target (eligible calls handled without "
            "police at least 50%) is 3, with 60% [55–65%]; it meets it with 95% confidence") in brief
    svg = htmllib.unescape(_svg(doc, "Sweep of Teams on duty, macro (24/7)"))
    assert "target 50%" in svg and "3: smallest meeting the target" in svg and "Teams on duty, macro (24/7)" in svg
    doc = report.build_report([swp], tmp_path / "r.html", goal="eligible_diversion_rate>=58%").read_text()
    assert "it meets it on average only: the 95% interval reaches past the target" in visible(doc)
    doc = report.build_report([swp], tmp_path / "r.html", goal="response_time_p90.eligible<=40").read_text()
    assert "(90th percentile response time, eligible calls at most 40 min) is 3" in visible(doc)
    doc = report.build_report([swp], tmp_path / "r.html", goal="eligible_diversion_rate>=0.9").read_text()
    assert "No swept setting of teams on duty, macro (24/7) meets the target" in visible(doc)


def test_sweep_table_folds_to_four_columns(tmp_path):
    doc = report.build_report([_sweep(tmp_path, teams=range(1, 7))], tmp_path / "r.html").read_text()
    tables = re.findall(r"<h3>Key figures by configuration</h3>(.*?)<p class='note'>", doc, flags=re.S)[0]
    heads = [re.findall(r"<th scope='col'>", t) for t in re.findall(r"<thead>(.*?)</thead>", tables, flags=re.S)]
    assert [len(h) for h in heads] == [5, 3]                      # Figure + 4 configurations, Figure + 2
    assert "Teams on duty, macro (24/7) = 5" in tables and "pools.macro.teams" not in tables


def test_goal_that_is_not_understood_is_one_line(tmp_path, capsys):
    with pytest.raises(report.ReportError, match="write KPI>=VALUE or KPI<=VALUE"):
        report.parse_goal("diversion > lots")
    from sim.cli import main
    assert main(["report", str(_sweep(tmp_path)), "--out", str(tmp_path / "r.html"), "--goal", "nope>=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no KPI 'nope'" in err[0]


def test_report_reads_compare_and_sweep_folders(tmp_path):
    rows = [{"scenario": sc, "point": 0, "metric": "eligible_diversion_rate", "mean": m, "ci_low": m - 0.05,
             "ci_high": m + 0.05, "replications": 5} for sc, m in (("police_only", 0.0), ("macro", 0.6))]
    diffs = pd.DataFrame([{"scenario": "macro", "baseline": "police_only", "metric": "eligible_diversion_rate",
                           "mean": 0.6, "ci_low": 0.55, "ci_high": 0.65, "replications": 5}])
    cmp = _experiment_folder(tmp_path / "cmp", "compare", pd.DataFrame(rows), diffs)
    doc = report.build_report([cmp, _sweep(tmp_path)], tmp_path / "r.html").read_text()
    assert 'alt="Sweep of Teams on duty, macro (24/7)"' in doc
    assert "<th scope='col'>Teams on duty, macro (24/7) = 1</th>" in doc
    assert "<script" not in doc


def test_compare_report_has_each_scenario_in_the_appendix(tmp_path):
    a = sim.load_scenario(SCENARIO, {"horizon_days": 3, "name": "Two teams",
                                     "assumptions": ["Two teams <always> on"]})
    b = sim.load_scenario(SCENARIO, {"horizon_days": 3, "name": "Three teams", "pools.crisis_team.teams": 3})
    sim.compare([a, b], replications=2, seed=3, out=tmp_path / "cmp", workers=1)
    views = report.compare_members(report.load_results(tmp_path / "cmp"))
    doc = report.build_report([tmp_path / "cmp"], tmp_path / "report.html").read_text(encoding="utf-8")
    for v in views:
        assert f'alt="Utilisation by hour: {htmllib.escape(v.name)}"' in doc
        assert f"<h3>{htmllib.escape(v.name)}</h3>" in section(doc, "appendix")
    assert "Two teams &lt;always&gt; on" in doc
    assert "paired differences" in visible(section(doc, "brief"))


# --------------------------------------------------------------------------- in a browser


@pytest.fixture
def browser():
    if CHROMIUM is None or PDFTOPPM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium and poppler-utils are required with CI=true (make browser)")
        pytest.skip("chromium or poppler-utils is not installed (make browser)")
    return CHROMIUM


def _chromium(args: list[str], tmp: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp / 'profile'}",
         *args], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


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


def _open(page: Path, tmp: Path) -> tuple[Path, str, list[str]]:
    shot, netlog = tmp / "shot.png", tmp / "net.json"
    proc = _chromium(["--enable-logging=stderr", "--v=0", f"--log-net-log={netlog}", f"--screenshot={shot}",
                      "--window-size=1280,2000", page.resolve().as_uri()], tmp)
    console = [ln for ln in proc.stderr.splitlines() if ":CONSOLE" in ln]
    return shot, "\n".join(console), _page_requests(netlog)


def test_report_opens_in_headless_chromium(browser, built, tmp_path):
    page, _ = built
    shot, console, requests = _open(page, tmp_path)
    from matplotlib.image import imread
    img = imread(shot)
    assert img.shape[:2] == (2000, 1280) and img[..., :3].std() > 0.05       # not a blank page
    assert console == ""                       # no console messages, so no errors
    assert requests == []


def test_the_browser_check_sees_errors_and_requests(browser, tmp_path):
    """The checks above would notice a script error and a fetched resource."""
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><script>nope();</script><img src="http://example.invalid/x.png"></body></html>')
    _, console, requests = _open(bad, tmp_path)
    assert "Uncaught ReferenceError" in console
    assert requests == ["http://example.invalid/x.png"]


def _scroll_width(page: Path, tmp: Path, width: int = 420) -> tuple[int, int]:
    """(scrollWidth, clientWidth) of ``page`` shown ``width`` CSS pixels wide: in an iframe of
    that width (headless windows are at least 500 px wide), read by a probe page's script."""
    probe = tmp / f"probe-{page.stem}.html"
    probe.write_text(
        f"<html><body style='margin:0'><iframe id='f' src='{page.resolve().as_uri()}' "
        f"style='width:{width}px;height:900px;border:0'></iframe><script>document.getElementById('f').onload="
        "function(){var d=this.contentDocument.documentElement;"
        "document.body.setAttribute('data-sw',d.scrollWidth+'/'+d.clientWidth)}</script></body></html>")
    dom = _chromium(["--allow-file-access-from-files", "--virtual-time-budget=30000", "--window-size=800,1000",
                     "--dump-dom", probe.resolve().as_uri()], tmp).stdout
    m = re.search(r'data-sw="(\d+)/(\d+)"', dom)
    assert m, dom[-500:]
    return int(m.group(1)), int(m.group(2))


def test_report_reads_at_420_px_without_page_scroll(browser, eugene, tmp_path):
    _, page, doc, _ = eugene
    scroll, client = _scroll_width(page, tmp_path)
    assert client <= 420 and scroll <= client
    # the check sees a page that is too wide
    wide = tmp_path / "wide.html"
    wide.write_text(doc.replace("<h2>The brief</h2>", "<h2>The brief</h2><div style='width:900px'>x</div>"))
    scroll, client = _scroll_width(wide, tmp_path)
    assert scroll > client


def _pdf_pages(pdf: Path) -> list[str]:
    n = int(re.search(r"Pages:\s+(\d+)", subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True,
                                                         check=True).stdout).group(1))
    return [subprocess.run(["pdftotext", "-f", str(k), "-l", str(k), "-layout", str(pdf), "-"], capture_output=True,
                           text=True, check=True).stdout for k in range(1, n + 1)]


def test_pdf_breaks_between_sections_and_cuts_no_text(browser, eugene, tmp_path):
    _, page, doc, (police, cahoots) = eugene
    pdf = report.print_pdf(page, tmp_path / "report.pdf")
    assert oct(pdf.stat().st_mode & 0o777) == oct(0o666 & ~sim.results.current_umask())
    pages = _pdf_pages(pdf)
    flat = [re.sub(r"\s+", " ", unicodedata.normalize("NFKC", p)) for p in pages]     # ligatures as letters
    # sections start a page
    for head in ("Charts", "Appendix"):
        k = next(i for i, p in enumerate(pages) if re.search(rf"^\s*{head}\s*$", p, flags=re.M))
        assert pages[k].strip().startswith(head), pages[k][:200]
    # a table is not split: its heading and its last row are on one page
    for first, last in (("Where eligible calls go", "All eligible calls"), ("What it costs", "Total USD")):
        assert any(first in p and last in p for p in flat), (first, last)
    # a chart is not split: its title and the end of its footnote are on one page
    alts = [htmllib.unescape(a) for a in re.findall(r'<img alt="([^"]*)"', doc)]
    ends = {"Eligible calls: time until help is on scene": "95th percentile.",
            "When eligible calls go to police instead": "the hour they came in.",
            "Each scenario against": "the interval leaves out 0.",
            "Units busy against units on duty": "as in the utilisation figure.",
            "After-care beds": "lack of a bed."}
    assert len(alts) >= len(ends)
    for title, end in ends.items():
        on = [p for p in flat if title in p]
        assert on and all("Source: scenario" in p[p.index(title):] and end in p[p.index(title):] for p in on), title
    # no word lies outside its page, and nothing is drawn into the right or bottom margin
    bbox = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    for size, words in re.findall(r'<page width="([\d.]+)" height="[\d.]+">(.*?)</page>', bbox, flags=re.S):
        xs = [float(x) for x in re.findall(r'xMax="([\d.]+)"', words)]
        assert xs and max(xs) <= float(size) - 20
    subprocess.run(["pdftoppm", "-r", "30", "-png", str(pdf), str(tmp_path / "page")], check=True)
    from matplotlib.image import imread
    shots = sorted(tmp_path.glob("page-*.png"))
    assert len(shots) == len(pages)
    for shot in shots:
        img = imread(shot)[..., :3]
        assert img.std() > 0.01                                       # something on every page
        margin = int(img.shape[1] * 0.03)
        assert img[:, -margin:].min() > 0.95 and img[-margin:, :].min() > 0.95, shot.name


def test_pdf_without_chromium_is_one_line(folders, tmp_path, monkeypatch, capsys):
    from sim.cli import main
    monkeypatch.setattr(report, "chromium", lambda: None)
    assert main(["report", str(folders[0]), "--out", str(tmp_path / "r.html"), "--pdf"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--pdf needs headless Chromium: run 'make browser'" in err[0]
    assert (tmp_path / "r.html").exists() and not (tmp_path / "r.pdf").exists()
    with pytest.raises(SystemExit) as e:
        main(["report", str(folders[0]), "--target-min", "-5"])
    assert e.value.code == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1


def test_caveat_names_the_inputs_the_screening_ranks_first(folders, tmp_path):
    screen = tmp_path / "screening"
    screen.mkdir()
    pd.DataFrame([{"kpi": "fallback_rate", "input": inp, "low": lo, "high": hi, "at_low": 0.1, "at_high": 0.1 + sw,
                   "at_value": 0.12, "swing": sw, "rank": r}
                  for r, (inp, lo, hi, sw) in enumerate((("pools.crisis_team.teams", 1, 4, 0.30),
                                                         ("triage.paths.crisis.max_wait_min", 10, 60, 0.12),
                                                         ("channels.911.volume.per_year", 9000, 11000, 0.01)), 1)]
                 ).to_csv(screen / "sensitivity.csv", index=False)
    doc = report.build_report([*folders, screen], tmp_path / "r.html").read_text(encoding="utf-8")
    caveat = visible(re.search(r"<p class='caveat'>.*?</p>", doc).group(0))
    assert ("most of all on teams on duty, crisis team (24/7) (1 to 4) and longest wait for the first responder, "
            "crisis calls (min) (10 to 60), the inputs that moved the results most in the sensitivity screening") \
        in caveat
    assert "channels" not in caveat and not RAW_KEY.search(caveat)


def test_compare_report_reads_only_committed_replications(tmp_path):
    # a replication killed after writing its tables but before its record (the commit) is in
    # no figure of the report: the store's reading rule, not every part file in the folder
    import shutil
    a = sim.load_scenario(SCENARIO, {"horizon_days": 3, "name": "Two teams"})
    b = sim.load_scenario(SCENARIO, {"horizon_days": 3, "name": "Three teams", "pools.crisis_team.teams": 3})
    sim.compare([a, b], replications=2, seed=3, out=tmp_path / "cmp", workers=1)
    before = report.compare_members(report.load_results(tmp_path / "cmp"))
    for table in ("kpis", "calls", "pools"):
        for part in (tmp_path / "cmp" / table).glob("scenario=*/point=0/replication=0"):
            ghost = part.with_name("replication=7")
            shutil.copytree(part, ghost)
            df = pd.read_parquet(ghost / "part-0.parquet")
            if "value" in df:
                df["value"] = df["value"] + 1000.0          # would move every mean if it were read
            df.to_parquet(ghost / "part-0.parquet")
    assert len(pd.read_parquet(tmp_path / "cmp" / "kpis")["replication"].unique()) == 3   # (it is there)
    views = report.compare_members(report.load_results(tmp_path / "cmp"))
    assert len(views) == len(before) == 2
    for v, w in zip(views, before):
        for t in ("kpis", "calls", "pools"):
            assert set(getattr(v, t)["replication"]) == {0, 1}
            pd.testing.assert_frame_equal(getattr(v, t).reset_index(drop=True),
                                          getattr(w, t).reset_index(drop=True), check_exact=True)


def test_report_of_a_compare_written_to_a_url_matches_the_local_one(tmp_path, capsys):
    # compare --out s3://... writes the store to an object store; the report reads it there
    # (memory:// stands in for S3: the same fsspec calls) and says what the local copy says
    import uuid

    import fsspec
    a = sim.load_scenario(SCENARIO, {"horizon_days": 3, "name": "Two teams"})
    b = sim.load_scenario(SCENARIO, {"horizon_days": 3, "name": "Three teams", "pools.crisis_team.teams": 3})
    url = f"memory://report-{uuid.uuid4().hex}/cmp"
    try:
        sim.compare([a, b], replications=2, seed=3, out=url, workers=1)
        sim.compare([a, b], replications=2, seed=3, out=tmp_path / "cmp", workers=1)
        remote = report.build_report([url], tmp_path / "remote.html").read_text(encoding="utf-8")
        local = report.build_report([tmp_path / "cmp"], tmp_path / "local.html").read_text(encoding="utf-8")
        for sid in ("brief", "charts"):
            assert section(remote, sid) == section(local, sid)
        assert f"Folder: {url}" in remote
        views = report.compare_members(report.load_results(
            report.fetch(url, tmp_path / "copy"), source=url))
        assert [v.name for v in views] == ["Two teams", "Three teams"]
        assert all(set(v.kpis["replication"]) == {0, 1} for v in views)
    finally:
        fsspec.filesystem("memory").rm(url.removeprefix("memory://").split("/")[0], recursive=True)
    p = argparse.ArgumentParser()
    report.register_cli(p.add_subparsers(dest="command"))
    args = p.parse_args(["report", "memory://no-such-results", "--out", str(tmp_path / "r.html")])
    assert args.func(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "memory://no-such-results: not a results folder" in err[0]
