"""Each chart rendered from a small hand-made table or a short real run; the tests check what
it shows: the numbers it prints are the KPIs, legends sit outside the data, no empty panel."""
from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import sim
from sim import plots
from sim.metrics import GLOSSARY

MMCC = Path(__file__).resolve().parents[1] / "scenarios" / "validation" / "mmcc.yaml"


def make_calls(scenario="A", reps=2, n=200, response=None, eligible=True, fallback_hour=None, reason="busy",
               zones=("north",), warmup=0, seed=0) -> pd.DataFrame:
    """A call log with the columns the charts read. Calls arrive one per hour from Monday
    00:00; with ``fallback_hour`` (hour of day) every eligible call arriving in that hour was
    answered by the second tier (police) for ``reason`` and all others were diverted."""
    rng = np.random.default_rng(seed)
    frames = []
    for r in range(reps):
        t = 60.0 * np.arange(n) + 1.0
        rt = np.asarray(response[r] if isinstance(response, list) else response if response is not None
                        else rng.exponential(10, n), dtype=float)
        fb = np.zeros(n, bool) if fallback_hour is None else (np.floor(t / 60) % 24 == fallback_hour)
        frames.append(pd.DataFrame({
            "scenario": scenario, "replication": r, "call_id": np.arange(n), "call_type": "crisis",
            "zone": [zones[i % len(zones)] for i in range(n)], "eligible": np.full(n, eligible),
            "warmup": np.arange(n) < warmup, "t_received": t, "t_on_scene": t + rt,
            "tier": fb.astype(int), "fallback_reason": np.where(fb, reason, "none"),
            "pool": np.where(fb, "police", "crisis_team"), "police_pool": fb, "diverted": ~fb,
            "outcome": "resolved", "response_time": rt}))
    return pd.concat(frames, ignore_index=True)


def summary_for(calls: pd.DataFrame, **values) -> pd.DataFrame:
    """A summary table with the given KPI means for every scenario of ``calls``."""
    return pd.DataFrame([{"scenario": s, "metric": m.replace("__", "."), "mean": v[s] if isinstance(v, dict) else v,
                          "ci_low": np.nan, "ci_high": np.nan, "replications": 2}
                         for s in pd.unique(calls["scenario"]) for m, v in values.items()])


def lines(fig: Figure, prefix: str):
    return [ln for ax in fig.axes for ln in ax.get_lines() if str(ln.get_gid()).startswith(prefix)]


def footnote(fig: Figure) -> str:
    return " ".join(t.get_text() for t in fig.texts if t.get_gid() == "footnote").replace("\n", " ")


def legend_texts(fig: Figure) -> list[str]:
    return [t.get_text().replace("\n", " ") for ax in fig.axes if ax.get_legend()
            for t in ax.get_legend().get_texts()]


def renders(fig: Figure) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:4] == b"\x89PNG"


def assert_legend_outside_data(fig: Figure) -> None:
    """No legend box overlaps the plotting area of any axes."""
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    boxes = [ax.get_window_extent(r) for ax in fig.axes]
    legends = [ax.get_legend().get_window_extent(r) for ax in fig.axes if ax.get_legend()]
    assert legends, "no legend"
    for lg in legends:
        for b in boxes:
            assert not lg.overlaps(b), (lg, b)


@pytest.fixture(scope="module")
def run():
    """A short real run (sim.metrics computes the KPIs the charts must repeat)."""
    s = sim.load_scenario(MMCC, {"horizon_days": 4, "name": "Pilot"})
    return s, sim.run(s, replications=3, seed=5, workers=1)


# --------------------------------------------------------------------------- response times


def test_response_time_cdf_prints_the_kpis_of_a_real_run(run):
    s, res = run
    for kw, suffix in (({}, ""), ({"eligible_only": True}, ".eligible")):
        for summary in (res.summary, None):                 # read from the summary, or computed by kpis()
            fig = plots.response_time_cdf(res.calls, target_min=30, summary=summary, **kw)
            px, py = lines(fig, "pct:Pilot")[0].get_data()
            assert list(py) == [0.5, 0.9]
            assert px == pytest.approx([res.kpi(f"response_time_p50{suffix}"), res.kpi(f"response_time_p90{suffix}")])
            share = res.kpi(f"share_within_30{suffix}")
            assert f"{share:.0%} within 30 min" in legend_texts(fig)[0]
    assert_legend_outside_data(fig)
    assert "Eligible calls reached (%)" == fig.axes[0].get_ylabel()


def test_response_time_cdf_averages_the_replications_distributions():
    calls = make_calls("Two", n=50, response=[np.full(50, 10.0), np.full(50, 20.0)], warmup=10)
    fig = plots.response_time_cdf(calls, target_min=15, summary=summary_for(
        calls, response_time_p50=15.0, response_time_p90=15.0, share_within_15=0.5), points=40)
    renders(fig)
    x, y = lines(fig, "cdf:Two")[0].get_data()
    assert y[np.searchsorted(x, 12)] == 0.5 and y[-1] == 1.0 and y[0] == 0.0     # half the replications by 12 min
    assert lines(fig, "target")[0].get_xdata()[0] == 15
    assert "Two: median 15 min, p90 15 min, 50% within 15 min" == legend_texts(fig)[0]
    assert "'Two'" not in footnote(fig) and "Source: scenario Two; 2 replications" in footnote(fig)
    assert fig._suptitle.get_text() == "Time until help arrives"
    assert "(min)" not in fig.axes[0].get_xlabel() or "Minutes" in fig.axes[0].get_xlabel()


# --------------------------------------------------------------------------- fallback by hour


def test_fallback_by_hour_shows_the_hour_and_the_reason():
    calls = make_calls("Pilot", n=24 * 14, fallback_hour=18)
    fig = plots.fallback_by_hour(calls)
    renders(fig)
    titles = [ax.get_title(loc="left") for ax in fig.axes if ax.get_title(loc="left")]
    assert titles == ["Every program unit busy", "Handled without police"]    # nobody fell back for lack of shifts
    hours, share = lines(fig, "busy:Pilot")[0].get_data()
    expected = np.where(np.arange(168) % 24 == 18, 1.0, 0.0)
    assert len(hours) == 168 and np.allclose(share, expected)
    assert np.allclose(lines(fig, "diverted:Pilot")[0].get_ydata(), 1 - expected)
    bottom = fig.axes[-1]
    assert "Hour of the week" in bottom.get_xlabel()
    assert [t.get_text() for t in bottom.get_xticklabels(minor=True)] == list(plots.DAYS)
    assert "Pilot" in footnote(fig) and "2 replications" in footnote(fig)
    assert_legend_outside_data(fig)
    both = pd.concat([calls, make_calls("Pilot", n=24 * 14, fallback_hour=3, reason="unstaffed").assign(
        replication=lambda d: d["replication"] + 2)])
    fig = plots.fallback_by_hour(both)
    assert [ax.get_title(loc="left") for ax in fig.axes][:2] == ["Every program unit busy", "No program unit on shift"]
    assert lines(fig, "unstaffed:Pilot")[0].get_ydata()[3] == 0.5


def test_fallback_by_hour_counts_only_eligible_calls():
    calls = pd.concat([make_calls("A", n=48, fallback_hour=3),
                       make_calls("A", n=48, eligible=False).assign(tier=1, fallback_reason="busy")])
    share = lines(plots.fallback_by_hour(calls), "busy:")[0].get_ydata()
    assert share[3] == 1.0 and share[4] == 0.0


# --------------------------------------------------------------------------- utilisation


def hourly_fixture(overtime: float = 0.0):
    """One replication over two weeks: 'crisis' has 2 teams 08:00-20:00 and is busy 1 team
    in those hours (``overtime`` of it past a shift's end); 'police' has 4 teams and is idle."""
    rows = []
    for h in range(168):
        day = 8 <= h % 24 < 20
        rows.append(("S", 0, "crisis", h, 2 * 60.0 * 2 * day, 60.0 * 2 * day, overtime * 2 * day))
        rows.append(("S", 0, "police", h, 4 * 60.0 * 2, 0.0, 0.0))
    return pd.DataFrame(rows, columns=["scenario", "replication", "pool", "hour_of_week", "on_duty_min",
                                       "busy_min", "overtime_min"])


def test_utilisation_by_hour_draws_schedule_and_busy_units_without_overtime():
    fig = plots.utilisation_by_hour(hourly_fixture(overtime=30.0), hours=2, pools=["crisis"])
    renders(fig)
    y = lines(fig, "duty:crisis")[0].get_ydata()
    assert len(y) == 169 and y[8] == 2 and y[7] == 0 and y[20] == 0 and y[24 + 19] == 2
    (busy,) = [c for c in fig.axes[0].collections if c.get_gid() == "busy:crisis"]
    assert busy.get_paths()[0].vertices[:, 1].max() == pytest.approx(0.5)    # (60 - 30) min of each hour
    assert fig.axes[0].get_title(loc="left") == "crisis: busy 25% of on-duty time"
    assert fig.axes[0].get_ylabel() == "Units"
    assert_legend_outside_data(fig)
    summary = pd.DataFrame({"scenario": ["S"], "metric": ["utilisation.crisis"], "mean": [0.31]})
    fig = plots.utilisation_by_hour(hourly_fixture(overtime=30.0), hours=2, pools=["crisis"], summary=summary)
    assert fig.axes[0].get_title(loc="left") == "crisis: busy 31% of on-duty time"


def test_utilisation_title_is_the_kpi_of_a_real_run(run):
    s, res = run
    fig = plots.utilisation_by_hour(res.hourly, plots.hours_observed(s), pools=["crisis_team"])
    assert fig.axes[0].get_title(loc="left") == f"crisis team: busy {res.kpi('utilisation.crisis_team'):.0%} of on-duty time"


def test_utilisation_by_hour_one_panel_per_pool():
    fig = plots.utilisation_by_hour(hourly_fixture(), hours=np.full(168, 2))
    assert [ln.get_gid() for ln in lines(fig, "duty:")] == ["duty:crisis", "duty:police"]
    assert set(lines(fig, "duty:police")[0].get_ydata()) == {4.0}


def test_hours_observed_counts_each_hour_of_the_measured_window():
    class S:  # the two fields hours_observed reads
        warmup_min = 1440.0            # Monday 00:00 -> Tuesday 00:00 is warm-up
        end_min = 1440.0 + 14 * 1440   # then two weeks
    counts = plots.hours_observed(S)
    assert counts.sum() == 14 * 24 and set(counts) == {2}


def test_on_duty_teams_in_the_chart_equal_the_shift_schedule():
    """hours_observed divides the model's hourly audit back into the scenario's schedule."""
    s = sim.load_scenario(MMCC, {"horizon_days": 9.3, "warmup_days": 1.55, "pools.crisis_team.teams": None,
                                 "pools.crisis_team.shifts": [
                                     {"days": "weekdays", "start": "07:30", "end": "19:00", "teams": 2},
                                     {"days": "daily", "start": "22:00", "end": "02:00", "teams": 1}]})
    hourly = sim.Model(s, 1, 0).run().hourly
    fig = plots.utilisation_by_hour(hourly, plots.hours_observed(s), pools=["crisis_team"])
    duty = lines(fig, "duty:crisis_team")[0].get_ydata()[:168]
    assert duty == pytest.approx(s.pools["crisis_team"].schedule().hourly())


# --------------------------------------------------------------------------- sweeps


def sweep_fixture():
    teams = [1, 2, 3, 4, 5]
    mean = [0.30, 0.55, 0.72, 0.83, 0.90]
    rows = [{"pools.crisis.teams": t, "metric": "eligible_diversion_rate", "mean": m,
             "ci_low": m - 0.04, "ci_high": m + 0.04, "replications": 5} for t, m in zip(teams, mean)]
    rows += [{"pools.crisis.teams": t, "metric": "response_time_p90", "mean": 60 / t,
              "ci_low": 50 / t, "ci_high": 70 / t, "replications": 5} for t in teams]
    return pd.DataFrame(rows)


def test_sweep_curve_mean_band_target_and_words():
    fig = plots.sweep_curve(sweep_fixture(), "pools.crisis.teams", "eligible_diversion_rate", target=0.7)
    renders(fig)
    (mean,) = lines(fig, "mean:")
    assert list(mean.get_xdata()) == [1, 2, 3, 4, 5] and list(mean.get_ydata()) == [0.30, 0.55, 0.72, 0.83, 0.90]
    band = [c for c in fig.axes[0].collections if str(c.get_gid()).startswith("band:")]
    ys = band[0].get_paths()[0].vertices[:, 1]
    assert ys.min() == pytest.approx(0.26) and ys.max() == pytest.approx(0.94)
    assert lines(fig, "target")[0].get_ydata()[0] == 0.7
    assert [t.get_text() for t in fig.axes[0].texts if t.get_gid() == "reached"] == ["3: smallest meeting the target"]
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Teams on duty, crisis (24/7)"
    assert ax.get_ylabel() == "Eligible calls handled without police (%)"
    assert "target 70%" in legend_texts(fig)
    assert "5 replications" in footnote(fig)
    assert_legend_outside_data(fig)


def test_sweep_curve_falling_metric_and_unknown_metric():
    fig = plots.sweep_curve(sweep_fixture(), "pools.crisis.teams", "response_time_p90", target=20,
                            field_label="Crisis teams")
    assert [t.get_text() for t in fig.axes[0].texts if t.get_gid() == "reached"] == ["3: smallest meeting the target"]
    assert fig.axes[0].get_ylabel() == "90th percentile response time (min)"
    assert fig.axes[0].get_xlabel() == "Crisis teams"
    with pytest.raises(ValueError, match="no rows for metric 'nope'"):
        plots.sweep_curve(sweep_fixture(), "pools.crisis.teams", "nope")


def test_smallest_meeting_says_how_sure_it_is():
    s = sweep_fixture()
    best = plots.smallest_meeting(s, "pools.crisis.teams", "eligible_diversion_rate", 0.7)
    assert best["value"] == 3 and best["sure"] is False and best["at_least"] is True    # 0.72 - 0.04 < 0.7
    assert plots.smallest_meeting(s, "pools.crisis.teams", "eligible_diversion_rate", 0.5)["sure"] is True
    fall = plots.smallest_meeting(s, "pools.crisis.teams", "response_time_p90", 25)
    assert fall["value"] == 3 and fall["at_least"] is False
    assert plots.smallest_meeting(s, "pools.crisis.teams", "eligible_diversion_rate", 0.95) is None


# --------------------------------------------------------------------------- beds


def occupancy_fixture():
    rows = []
    for r, level in ((0, 2), (1, 4)):
        rows += [("S", r, "crisis_center", 0.0, 0, 8), ("S", r, "crisis_center", 1440.0, level, 8),
                 ("S", r, "detox", 0.0, 1, 3), ("S", r, "detox", 2880.0, 3, 3),
                 ("S", r, "hospital_ed", 0.0, 5, np.nan),       # unlimited: no panel
                 ("S", r, "shelter", 0.0, 0, 20)]                # never used: no panel
    return pd.DataFrame(rows, columns=["scenario", "replication", "facility", "t", "occupied", "beds"])


def test_bed_occupancy_lines_beds_and_refusals():
    refusals = pd.DataFrame({"scenario": "S", "replication": [0, 1, 0, 1],
                             "facility": ["crisis_center", "crisis_center", "detox", "detox"],
                             "refusals": [0, 0, 4, 6]})
    fig = plots.bed_occupancy(occupancy_fixture(), refusals, points=5)
    renders(fig)
    assert [ln.get_gid() for ln in lines(fig, "occupied:")] == ["occupied:crisis_center", "occupied:detox"]
    x, y = lines(fig, "occupied:crisis_center")[0].get_data()
    assert list(x) == [0.0, 0.5, 1.0, 1.5, 2.0]          # days
    assert list(y) == [0.0, 0.0, 3.0, 3.0, 3.0]           # mean of 2 and 4 from day 1
    assert list(lines(fig, "occupied:detox")[0].get_ydata()) == [1, 1, 1, 1, 3]
    assert set(lines(fig, "beds:detox")[0].get_ydata()) == {3}
    assert sorted(b.get_width() for b in fig.axes[1].patches) == [0, 5]
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == ["crisis center", "detox"]
    assert "Days" in fig.axes[0].get_xlabel()
    assert "Source: scenario S" in footnote(fig) and "2 replications" in footnote(fig)
    assert_legend_outside_data(fig)


def test_bed_occupancy_leaves_out_empty_panels():
    fig = plots.bed_occupancy(occupancy_fixture(), {"crisis_center": 0, "detox": 0})
    assert len(fig.axes) == 1 and "no arrival was turned away" in footnote(fig)      # all-zero refusals
    fig = plots.bed_occupancy(occupancy_fixture(), {"crisis_center": 2, "detox": 7})
    assert sorted(b.get_width() for b in fig.axes[1].patches) == [2, 7]
    assert plots.limited_facilities(occupancy_fixture()) == ["crisis_center", "detox"]
    unlimited = occupancy_fixture()[lambda d: d["facility"].isin(["hospital_ed", "shelter"])]
    with pytest.raises(ValueError, match="no facility with a limited number of beds was used"):
        plots.bed_occupancy(unlimited)


# --------------------------------------------------------------------------- differences


def compare_fixture():
    rows = []
    for name, d, lo, hi in (("Police only", np.nan, np.nan, np.nan), ("3 teams", 0.5, 0.45, 0.55),
                            ("5 teams", 0.02, -0.01, 0.05)):
        rows.append({"scenario": name, "metric": "eligible_diversion_rate", "mean": 0.2, "ci_low": 0.1,
                     "ci_high": 0.3, "diff_mean": d, "diff_ci_low": lo, "diff_ci_high": hi, "replications": 10})
        rows.append({"scenario": name, "metric": "response_time_p90", "mean": 30, "ci_low": 28,
                     "ci_high": 32, "diff_mean": -d * 10, "diff_ci_low": -hi * 10, "diff_ci_high": -lo * 10,
                     "replications": 10})
        rows.append({"scenario": name, "metric": "police_backup_rate", "mean": np.nan, "ci_low": np.nan,
                     "ci_high": np.nan, "diff_mean": np.nan, "diff_ci_low": np.nan, "diff_ci_high": np.nan,
                     "replications": 0})
    return pd.DataFrame(rows)


def test_forest_one_panel_per_metric_one_row_per_other_scenario():
    fig = plots.forest(compare_fixture(), metrics=["eligible_diversion_rate", "response_time_p90"])
    renders(fig)
    assert len(fig.axes) == 2
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["3 teams", "5 teams"]
    (m3,) = lines(fig, "diff:eligible_diversion_rate:3 teams")
    (m5,) = lines(fig, "diff:eligible_diversion_rate:5 teams")
    assert m3.get_xdata()[0] == 0.5 and m5.get_xdata()[0] == 0.02
    assert m3.get_markerfacecolor() == "black"     # interval clear of zero
    assert m5.get_markerfacecolor() == "white"     # interval crosses zero
    assert ax.get_title(loc="left") == "Eligible calls handled without police (percentage points)"
    assert fig.axes[1].get_title(loc="left") == "90th percentile response time (min)"
    assert fig.axes[-1].get_xlabel() == "Difference from Police only"
    assert fig._suptitle.get_text() == "Each scenario against Police only"
    assert "10 replications" in footnote(fig) and "0 to" not in footnote(fig)      # the empty KPI is not a count


def test_forest_panel_titles_can_name_the_period():
    fig = plots.forest(compare_fixture(), metrics=["response_time_p90"],
                       titles={"response_time_p90": "90th percentile over the 7 measured days (min)"})
    assert fig.axes[0].get_title(loc="left") == "90th percentile over the 7 measured days (min)"


def test_forest_reads_the_paired_differences_layout():
    c = compare_fixture()
    d = c[c["scenario"] != "Police only"].drop(columns=["mean", "ci_low", "ci_high"]).rename(
        columns={"diff_mean": "mean", "diff_ci_low": "ci_low", "diff_ci_high": "ci_high"})
    d.insert(1, "baseline", "Police only")
    fig = plots.forest(d, metrics=["eligible_diversion_rate"])
    assert lines(fig, "diff:eligible_diversion_rate:3 teams")[0].get_xdata()[0] == 0.5
    with pytest.raises(ValueError, match="baseline column"):
        plots.forest(d.drop(columns="baseline"))


def test_forest_money_ticks_have_no_offset():
    c = compare_fixture().assign(metric="cost_per_year", diff_mean=1.26e6, diff_ci_low=1.2e6, diff_ci_high=1.3e6)
    fig = plots.forest(c.drop_duplicates("scenario"), currency="EUR")
    fig.canvas.draw()
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels() if t.get_text()]
    assert ticks and all(t.endswith("M") for t in ticks if t not in ("0",))
    assert fig.axes[0].xaxis.get_offset_text().get_text() == ""
    assert fig.axes[0].get_title(loc="left") == "Total cost per year (EUR a year)"


# --------------------------------------------------------------------------- zones


@pytest.fixture(scope="module")
def zoned():
    """A short real run with three zones (sim.metrics reads the model's own call log)."""
    s = sim.load_scenario(MMCC, {"horizon_days": 4, "name": "Pilot", "zones": {
        "zone_3": {"share": 0.3, "rect_km": [0, 0, 2, 2]}, "zone_4": {"share": 0.3, "rect_km": [2, 0, 4, 2]},
        "rest": {"share": 0.4, "rect_km": [0, 2, 4, 4]}}})
    return s, pd.concat([sim.Model(s, 3, r).run().calls for r in range(3)], ignore_index=True)


def _diverted_share(calls: pd.DataFrame, zone: str) -> float:
    c = calls[(calls["zone"] == zone) & ~calls["warmup"] & calls["eligible"]]
    return float(c.groupby("replication")["diverted"].mean().mean())


def test_zone_map_colours_rectangles_by_kpi(zoned):
    s, calls = zoned
    fig = plots.zone_map(calls, s.zones)
    renders(fig)
    ax = fig.axes[0]
    rects = {p.get_gid(): p for p in ax.patches}
    assert set(rects) == {"zone:zone_3", "zone:zone_4", "zone:rest"}
    assert rects["zone:rest"].get_xy() == (0, 2) and rects["zone:rest"].get_width() == 4
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts == sorted(f"{z.replace('_', ' ')}\n{_diverted_share(calls, z):.0%}" for z in ("zone_3", "zone_4", "rest"))
    assert ax.get_xlabel() == "x (km)" and ax.get_ylabel() == "y (km)"
    assert fig.axes[1].get_ylabel() == "Eligible calls handled without police (%)"   # colour bar
    assert "Source: scenario Pilot; 3 replications" in footnote(fig)


def test_zone_map_colour_follows_the_value(zoned):
    s, calls = zoned
    calls = calls.copy()
    calls.loc[calls["zone"] == "rest", "diverted"] = False          # nobody diverted in 'rest'
    fig = plots.zone_map(calls, s.zones)
    rects = {p.get_gid(): p for p in fig.axes[0].patches}
    assert "rest\n0%" in [t.get_text() for t in fig.axes[0].texts]
    lum = {z: np.dot(rects[f"zone:{z}"].get_facecolor()[:3], [0.299, 0.587, 0.114]) for z in ("rest", "zone_3")}
    assert lum["rest"] < lum["zone_3"]        # cividis: lower value is darker, also in greyscale


def test_zone_map_falls_back_to_bars_without_rectangles(zoned):
    _, calls = zoned
    fig = plots.zone_map(calls, {"zone_3": None, "zone_4": None, "rest": None}, metric="response_time_mean")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["zone 3", "zone 4", "rest"]
    for z, w in zip(("zone_3", "zone_4", "rest"), [p.get_width() for p in ax.patches]):
        c = calls[(calls["zone"] == z) & ~calls["warmup"]]
        assert w == pytest.approx(c.groupby("replication")["response_time"].mean().mean())
    assert ax.get_xlabel() == "Mean response time (min)"


def test_zone_kpis_reuse_metrics_per_replication(zoned):
    _, calls = zoned
    t = plots.zone_kpis(calls, "eligible_diversion_rate")
    assert sorted(t["zone"]) == ["rest", "zone_3", "zone_4"] and set(t["replications"]) == {3}
    assert (t["ci_low"] <= t["mean"]).all() and (t["mean"] <= t["ci_high"]).all()


# --------------------------------------------------------------------------- words, files


RAW = re.compile(r"[a-z0-9][_.][a-z]")


def test_every_kpi_of_a_real_run_has_a_label_in_words(run):
    _, res = run
    names = set(res.summary["metric"]) | {k.replace("<stat>", "p90").replace("<T>", "30").replace("<pool>", "crisis_team")
                                          .replace("<kind>", "co_responder").replace("<type>", "mental_health")
                                          .replace("<category>", "fallback_busy").replace("<f>", "hospital_ed")
                                          .replace("<k>", "2") for k in GLOSSARY}
    for name in names:
        label, unit = plots.metric_label(name, "EUR")
        assert not RAW.search(label), (name, label)
        assert "currency" not in unit and "units" not in unit
    assert plots.metric_label("utilisation.crisis_team")[0] == "Utilisation (busy share of on-duty time): crisis team"
    assert plots.metric_label("response_time_p90.eligible.civilian") == (
        "90th percentile response time, eligible calls answered by civilian teams", "min")
    assert plots.metric_label("share_within_30.eligible") == ("Eligible calls reached on scene within 30 min", "%")
    assert plots.metric_label("cost_per_call.police", "EUR") == ("Staffed cost per call: police", "EUR per call")
    assert plots.axis_label("police_response_time_p1_mean") == "Police mean response time, priority 1 (min)"
    assert plots.metric_label("some_new.thing")[0] == "Some new thing"          # the fallback has no raw key either


def test_describe_field_in_words():
    assert plots.describe_field("pools.cahoots.shifts.1.teams") == "Teams on duty, cahoots, shift 2"
    assert plots.describe_field("facilities.crisis_center.beds") == "Beds at crisis center"
    assert plots.describe_field("triage.paths.behavioral.max_wait_min") == \
        "Longest wait for the first responder, behavioral calls (min)"
    assert not RAW.search(plots.describe_field("channels.911.volume.per_year"))


def test_source_note_names_scenarios_without_quotes():
    df = pd.DataFrame({"scenario": ["A", "A", "B"], "replication": [0, 1, 0]})
    assert plots.source_note(df) == "Source: scenarios A, B; 1 to 2 replications."


def test_svg_keeps_text_and_is_reproducible():
    calls = make_calls("Pilot", n=24 * 7, fallback_hour=18)
    one, two = plots.figure_svg(plots.fallback_by_hour(calls)), plots.figure_svg(plots.fallback_by_hour(calls))
    assert one == two and "<dc:date>" not in one
    assert "Every program unit busy" in one                          # text as text, not outlines
    png = plots.figure_png(plots.fallback_by_hour(calls))
    assert int.from_bytes(png[16:20], "big") == round(plots.WIDTH * 200)


def test_a_dollar_sign_in_a_name_is_text_not_a_formula():
    """'$' in a scenario name (an unbalanced mathtext formula) still saves, as SVG and PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from sim.plots import figure_png, figure_svg
    fig = Figure()
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.set_title("Budget $5M (pilot $")
    svg = figure_svg(fig)
    assert "Budget $5M (pilot $" in svg
    assert figure_png(fig)[:8] == b"\x89PNG\r\n\x1a\n"
