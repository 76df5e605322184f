"""Out-of-sample checks: does a fit's prediction cover another period of the same export?

* Hour-of-week volume: the held-out count of each of the 168 bins against its predictive
  interval. The count is Poisson around rate x exposure, times a gamma day factor of the
  fitted daily_cv, and the rate itself is estimated (its variance from the training
  exposure); the interval is the negative binomial with that mean and variance.
* On-scene time: each held-out on-scene time against the central interval of the fitted
  distribution of its call type and responder (the responder's pooled fit when the type
  had too few).

Coverage near the level means the fit predicts the held-out weeks as well as it claims;
far below means the held-out period differs (a trend, a season, a changed practice).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .fit import daily_cv, exposure_hours, how_bin, interval_minutes
from .read import CallTable


def nb_interval(mean: np.ndarray, var: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Central interval of the negative binomial with this mean and variance (Poisson when
    var <= mean)."""
    mean, var = np.asarray(mean, float), np.asarray(var, float)
    lo_q, hi_q = (1 - level) / 2, (1 + level) / 2
    over = var > mean * (1 + 1e-9)
    n = np.where(over, mean ** 2 / np.maximum(var - mean, 1e-12), 1.0)
    p = np.where(over, n / (n + mean), 0.5)
    lo = np.where(over, stats.nbinom.ppf(lo_q, n, p), stats.poisson.ppf(lo_q, mean))
    hi = np.where(over, stats.nbinom.ppf(hi_q, n, p), stats.poisson.ppf(hi_q, mean))
    return lo, hi


def coverage(fit, other: CallTable, level: float = 0.9) -> dict:
    from .core import classify

    train = fit.calls
    s0, e0 = train.period
    s1, e1 = other.period
    tz = fit.cmap.timezone
    e_train = exposure_hours(s0, e0, tz)
    e_test = exposure_hours(s1, e1, tz)
    rate = sum(p.rate for p in fit.profiles.values())
    cv = daily_cv(train.used["received"], s0, e0)[0]
    mu = rate * e_test
    with np.errstate(divide="ignore", invalid="ignore"):
        var_rate = np.where(e_train > 0, (rate + rate ** 2 * cv ** 2) / e_train, 0.0)
    var = mu + e_test * rate ** 2 * cv ** 2 + e_test ** 2 * var_rate
    lo, hi = nb_interval(mu, var, level)
    test = other.used
    counts = np.bincount(how_bin(test["received"]), minlength=168)
    seen = e_test > 0
    inside = (counts >= lo) & (counts <= hi)
    out = {"level": level, "volume_bins": int(seen.sum()),
           "volume_coverage": float(inside[seen].mean()) if seen.any() else float("nan"),
           "predicted_calls": float(mu.sum()), "observed_calls": int(len(test))}
    if "on_scene" in fit.cmap.timestamps or "on_scene" in fit.cmap.durations:
        cls = classify(test, fit.crosswalk, fit.major)
        d, status = interval_minutes(test, "on_scene", "cleared", fit.cmap.max_min("on_scene"))
        ok = status == ""
        hits, n = 0, 0
        q = np.array([(1 - level) / 2, (1 + level) / 2])
        for (r, t), idx in pd.DataFrame({"r": cls["responder"], "t": cls["rtype"]})[ok].groupby(["r", "t"]).groups.items():
            f = fit.on_scene.get((r, t)) or fit.on_scene.get((r, "*"))
            if f is None:
                continue
            a, b = f.ppf(q)
            x = d[test.index.get_indexer(idx)]
            hits += int(((x >= a) & (x <= b)).sum())
            n += len(x)
        out.update(on_scene_n=n, on_scene_coverage=hits / n if n else float("nan"))
    return out
