"""Each chart rendered from a small hand-made table; the tests check what it shows."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import sim
from sim import plots

MMCC = Path(__file__).resolve().parents[1] / "scenarios" / "validation" / "mmcc.yaml"


def make_calls(scenario="A", reps=2, n=200, response=None, eligible=True, fallback_hour=None,
               zones=("north",), warmup=0, seed=0) -> pd.DataFrame:
    """A call log with every column the charts and sim.metrics read.

    Calls arrive one per hour from Monday 00:00; with ``fallback_hour`` (hour of day) every
    eligible call arriving in that hour fell back to police and all others were diverted."""
    rng = np.random.default_rng(seed)
    frames = []
    for r in range(reps):
        t = 60.0 * np.arange(n) + 1.0
        rt = np.asarray(response if response is not None else rng.exponential(10, n), dtype=float)
        fb = np.zeros(n, bool) if fallback_hour is None else (np.floor(t / 60) % 24 == fallback_hour)
        frames.append(pd.DataFrame({
            "scenario": scenario, "replication": r, "call_id": np.arange(n),
            "call_type": "crisis", "priority": np.ones(n, dtype=np.int16),
            "zone": [zones[i % len(zones)] for i in range(n)],
            "eligible": np.full(n, eligible), "warmup": np.arange(n) < warmup,
            "t_received": t, "t_dispatched": t, "t_on_scene": t + rt, "t_team_free": t + rt + 30,
            "pool": np.where(fb, "police", "crisis_team"), "police_pool": fb, "fallback": fb,
            "backup": np.zeros(n, bool), "backup_delay": np.nan, "backup_on_scene": np.nan,
            "outcome": "resolved", "diverted": ~fb, "police_on_scene": fb,
            "response_time": rt, "queue_wait": np.zeros(n), "travel_time": rt,
        }))
    return pd.concat(frames, ignore_index=True)


def lines(fig: Figure, prefix: str):
    return [ln for ax in fig.axes for ln in ax.get_lines() if str(ln.get_gid()).startswith(prefix)]


def footnote(fig: Figure) -> str:
    return " ".join(t.get_text() for t in fig.texts if t.get_gid() == "footnote")


def renders(fig: Figure) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:4] == b"\x89PNG"


def test_response_time_cdf_one_line_per_scenario_with_percentiles_and_target():
    calls = pd.concat([make_calls("Three teams", response=np.arange(200) % 20),
                       make_calls("Five teams", response=np.arange(200) % 10, warmup=50)])
    fig = plots.response_time_cdf(calls, target_min=15)
    renders(fig)
    cdf = lines(fig, "cdf:")
    assert [ln.get_gid() for ln in cdf] == ["cdf:Three teams", "cdf:Five teams"]
    x, y = cdf[0].get_data()
    assert y[0] == 0 and y[-1] == 1 and np.all(np.diff(x) >= 0)
    assert x[-1] == 19
    # p50 and p90 markers sit on the distribution (warm-up calls left out for "Five teams")
    px, py = lines(fig, "pct:Three teams")[0].get_data()
    assert list(py) == [0.5, 0.9]
    assert px == pytest.approx(np.quantile(np.arange(200) % 20, [0.5, 0.9]))
    measured = (np.arange(200) % 10)[50:]
    assert lines(fig, "pct:Five teams")[0].get_data()[0] == pytest.approx(np.quantile(measured, [0.5, 0.9]))
    (target,) = lines(fig, "target")
    assert target.get_xdata()[0] == 15
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "80% within 15 min" in legend[0] and "100% within 15 min" in legend[1]
    ax = fig.axes[0]
    assert "(min)" in ax.get_xlabel() and "(%)" in ax.get_ylabel()
    assert fig._suptitle.get_text() == "Time until help arrives"
    assert "'Three teams', 'Five teams'" in footnote(fig) and "2 replications each" in footnote(fig)


def test_fallback_by_hour_shows_the_hour_teams_run_out():
    calls = make_calls("Pilot", n=24 * 14, fallback_hour=18)
    fig = plots.fallback_by_hour(calls)
    renders(fig)
    (fb,) = lines(fig, "fallback:")
    (dv,) = lines(fig, "diverted:")
    hours, share = fb.get_data()
    assert len(hours) == 168 and list(hours[:3]) == [0, 1, 2]
    expected = np.where(np.arange(168) % 24 == 18, 1.0, 0.0)
    assert np.allclose(share, expected)
    assert np.allclose(dv.get_ydata(), 1 - expected)
    top, bottom = fig.axes[:2]
    assert "Fell back to police" in top.get_ylabel() and "%" in top.get_ylabel()
    assert "Hour of week" in bottom.get_xlabel()
    assert [t.get_text() for t in bottom.get_xticklabels(minor=True)] == list(plots.DAYS)
    assert "'Pilot'" in footnote(fig) and "2 replications" in footnote(fig)


def test_fallback_by_hour_counts_only_eligible_calls():
    calls = pd.concat([make_calls("A", n=48, fallback_hour=3),
                       make_calls("A", n=48, eligible=False).assign(fallback=True, police_pool=True)])
    fig = plots.fallback_by_hour(calls)
    share = lines(fig, "fallback:")[0].get_ydata()
    assert share[3] == 1.0 and share[4] == 0.0


def hourly_fixture():
    """One replication over two weeks: 'crisis' has 2 teams 08:00-20:00 and is busy 1 team
    in those hours; 'police' has 4 teams all week and is never busy."""
    rows = []
    for h in range(168):
        day = 8 <= h % 24 < 20
        rows.append(("S", 0, "crisis", h, 2 * 60.0 * 2 * day, 60.0 * 2 * day))
        rows.append(("S", 0, "police", h, 4 * 60.0 * 2, 0.0))
    return pd.DataFrame(rows, columns=["scenario", "replication", "pool", "hour_of_week",
                                       "on_duty_min", "busy_min"])


def test_utilisation_by_hour_draws_schedule_and_busy_teams():
    fig = plots.utilisation_by_hour(hourly_fixture(), hours=2, pools=["crisis"])
    renders(fig)
    (duty,) = lines(fig, "duty:crisis")
    y = duty.get_ydata()
    assert len(y) == 169
    assert y[8] == 2 and y[7] == 0 and y[20] == 0 and y[24 + 19] == 2
    busy = [c for c in fig.axes[0].collections if c.get_gid() == "busy:crisis"]
    assert len(busy) == 1
    verts = busy[0].get_paths()[0].vertices
    assert verts[:, 1].max() == pytest.approx(1.0)
    assert fig.axes[0].get_title(loc="left") == "crisis: busy 50% of on-duty time"
    assert fig.axes[0].get_ylabel() == "Teams"


def test_utilisation_by_hour_one_panel_per_pool_and_hours_from_scenario():
    fig = plots.utilisation_by_hour(hourly_fixture(), hours=np.full(168, 2))
    assert [ln.get_gid() for ln in lines(fig, "duty:")] == ["duty:crisis", "duty:police"]
    assert set(lines(fig, "duty:police")[0].get_ydata()) == {4.0}


def test_hours_observed_counts_each_hour_of_the_measured_window():
    class S:  # the two fields hours_observed reads
        warmup_min = 1440.0            # Monday 00:00 -> Tuesday 00:00 is warm-up
        end_min = 1440.0 + 14 * 1440   # then two weeks
    counts = plots.hours_observed(S)
    assert counts.sum() == 14 * 24 and set(counts) == {2}


def sweep_fixture():
    teams = [1, 2, 3, 4, 5]
    mean = [0.30, 0.55, 0.72, 0.83, 0.90]
    rows = [{"pools.crisis.teams": t, "metric": "eligible_diversion_rate", "mean": m,
             "ci_low": m - 0.04, "ci_high": m + 0.04, "replications": 5} for t, m in zip(teams, mean)]
    rows += [{"pools.crisis.teams": t, "metric": "response_time_p90", "mean": 60 / t,
              "ci_low": 50 / t, "ci_high": 70 / t, "replications": 5} for t in teams]
    return pd.DataFrame(rows)


def test_sweep_curve_mean_band_and_target():
    fig = plots.sweep_curve(sweep_fixture(), "pools.crisis.teams", "eligible_diversion_rate",
                            target=0.7, field_label="Teams on duty")
    renders(fig)
    (mean,) = lines(fig, "mean:")
    assert list(mean.get_xdata()) == [1, 2, 3, 4, 5]
    assert list(mean.get_ydata()) == [0.30, 0.55, 0.72, 0.83, 0.90]
    band = [c for c in fig.axes[0].collections if str(c.get_gid()).startswith("band:")]
    ys = band[0].get_paths()[0].vertices[:, 1]
    assert ys.min() == pytest.approx(0.26) and ys.max() == pytest.approx(0.94)
    assert lines(fig, "target")[0].get_ydata()[0] == 0.7
    reached = [t for t in fig.axes[0].texts if t.get_gid() == "reached"]
    assert reached[0].get_text() == "Teams on duty = 3"
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Teams on duty"
    assert ax.get_ylabel() == "Eligible calls handled without police (%)"
    assert "5 replications" in footnote(fig)


def test_sweep_curve_falling_metric_and_unknown_metric():
    fig = plots.sweep_curve(sweep_fixture(), "pools.crisis.teams", "response_time_p90", target=20)
    reached = [t for t in fig.axes[0].texts if t.get_gid() == "reached"]
    assert reached[0].get_text() == "pools.crisis.teams = 3"
    assert fig.axes[0].get_ylabel() == "90th percentile response time (min)"
    with pytest.raises(ValueError, match="no rows for metric 'nope'"):
        plots.sweep_curve(sweep_fixture(), "pools.crisis.teams", "nope")


def occupancy_fixture():
    rows = []
    for r, level in ((0, 2), (1, 4)):
        rows += [("S", r, "crisis_center", 0.0, 0, 8), ("S", r, "crisis_center", 1440.0, level, 8),
                 ("S", r, "detox", 0.0, 1, 3), ("S", r, "detox", 2880.0, 3, 3)]
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
    bars = [p for p in fig.axes[1].patches]
    assert [b.get_height() for b in bars] == [0, 5]
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == ["crisis_center", "detox"]
    assert "(days" in fig.axes[0].get_xlabel()
    assert "'S'" in footnote(fig) and "2 replications" in footnote(fig)


def test_bed_occupancy_without_refusals_and_with_a_mapping():
    fig = plots.bed_occupancy(occupancy_fixture())
    assert len(fig.axes) == 1
    fig = plots.bed_occupancy(occupancy_fixture(), {"crisis_center": 2, "detox": 7})
    assert [b.get_height() for b in fig.axes[1].patches] == [2, 7]


def compare_fixture():
    rows = []
    for name, d, lo, hi in (("Police only", np.nan, np.nan, np.nan), ("3 teams", 0.5, 0.45, 0.55),
                            ("5 teams", 0.02, -0.01, 0.05)):
        rows.append({"scenario": name, "metric": "eligible_diversion_rate", "mean": 0.2, "ci_low": 0.1,
                     "ci_high": 0.3, "diff_mean": d, "diff_ci_low": lo, "diff_ci_high": hi, "replications": 10})
        rows.append({"scenario": name, "metric": "response_time_p90", "mean": 30, "ci_low": 28,
                     "ci_high": 32, "diff_mean": -d * 10, "diff_ci_low": -hi * 10, "diff_ci_high": -lo * 10,
                     "replications": 10})
    return pd.DataFrame(rows)


def test_forest_one_panel_per_metric_one_row_per_other_scenario():
    fig = plots.forest(compare_fixture())
    renders(fig)
    assert len(fig.axes) == 2
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["3 teams", "5 teams"]
    (m3,) = lines(fig, "diff:eligible_diversion_rate:3 teams")
    (m5,) = lines(fig, "diff:eligible_diversion_rate:5 teams")
    assert m3.get_xdata()[0] == 0.5 and m5.get_xdata()[0] == 0.02
    assert m3.get_markerfacecolor() == "black"     # interval clear of zero
    assert m5.get_markerfacecolor() == "white"     # interval crosses zero
    assert ax.get_title(loc="left") == "Eligible calls handled without police"
    assert "Difference from 'Police only' (percentage points)" == ax.get_xlabel()
    assert fig.axes[1].get_xlabel() == "Difference from 'Police only' (min)"
    assert fig._suptitle.get_text() == "Each scenario against 'Police only'"
    assert "10 replications" in footnote(fig)


def test_forest_reads_the_paired_differences_layout():
    c = compare_fixture()
    d = c[c["scenario"] != "Police only"].drop(columns=["mean", "ci_low", "ci_high"]).rename(
        columns={"diff_mean": "mean", "diff_ci_low": "ci_low", "diff_ci_high": "ci_high"})
    d.insert(1, "baseline", "Police only")
    fig = plots.forest(d, metrics=["eligible_diversion_rate"])
    assert lines(fig, "diff:eligible_diversion_rate:3 teams")[0].get_xdata()[0] == 0.5
    assert fig.axes[0].get_xlabel() == "Difference from 'Police only' (percentage points)"
    with pytest.raises(ValueError, match="baseline column"):
        plots.forest(d.drop(columns="baseline"))


def test_forest_selected_metrics():
    fig = plots.forest(compare_fixture(), metrics=["response_time_p90"])
    assert len(fig.axes) == 1 and fig.axes[0].get_title(loc="left") == "90th percentile response time"


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
    assert texts == sorted(f"{z}\n{_diverted_share(calls, z):.0%}" for z in ("zone_3", "zone_4", "rest"))
    assert ax.get_xlabel() == "x (km)" and ax.get_ylabel() == "y (km)"
    assert fig.axes[1].get_ylabel() == "Eligible calls handled without police (%)"   # colour bar
    assert "'Pilot'; 3 replications" in footnote(fig)


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
    assert [t.get_text() for t in ax.get_yticklabels()] == ["zone_3", "zone_4", "rest"]
    widths = [p.get_width() for p in ax.patches]
    for z, w in zip(("zone_3", "zone_4", "rest"), widths):
        c = calls[(calls["zone"] == z) & ~calls["warmup"]]
        assert w == pytest.approx(c.groupby("replication")["response_time"].mean().mean())
    assert ax.get_xlabel() == "Mean response time (min)"


def test_zone_kpis_reuse_metrics_per_replication(zoned):
    _, calls = zoned
    t = plots.zone_kpis(calls, "eligible_diversion_rate")
    assert sorted(t["zone"]) == ["rest", "zone_3", "zone_4"] and set(t["replications"]) == {3}
    assert (t["ci_low"] <= t["mean"]).all() and (t["mean"] <= t["ci_high"]).all()


def test_source_note_and_labels():
    df = pd.DataFrame({"scenario": ["A", "A", "B"], "replication": [0, 1, 0]})
    assert plots.source_note(df) == "Source: scenarios 'A', 'B'; 1-2 replications."
    assert plots.metric_label("utilisation.crisis") == ("Utilisation: crisis", "%")
    assert plots.axis_label("police_response_time_p1_mean") == "Police mean response time, priority 1 (min)"


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
