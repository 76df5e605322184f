"""The fits: arrivals by hour of week, over-dispersion, mixes, zones and durations.

Units: rates are calls per hour, durations minutes, times naive local datetimes.

* **Hour of week** (Monday 00:00 = bin 0, the simulation clock's origin). Each bin's
  *exposure* is the number of real hours the calibration period spent in it: a period of
  2 weeks and 6 days observes Saturday bins twice and the others three times; the week
  daylight saving ends has two real hours in local 01:00 and the week it starts none in
  02:00. Two Poisson models are fitted by maximum likelihood with that exposure: one rate
  per bin (168 parameters) and day-of-week x hour-of-day (30), and the lower AIC wins.
  Either way sum(exposure x rate) equals the number of calls.
* **daily_cv**: days of the same weekday vary more than Poisson; with k days of a weekday
  and mean m, E[sample variance] = m + m^2 cv^2 under the simulator's gamma day factor, so
  cv^2 = sum(SS - (k-1) m) / sum((k-1) m^2) over weekdays, floored at 0.
* **Durations** (processing, turnout, travel, on scene): lognormal and gamma by maximum
  likelihood and an empirical histogram density (Freedman-Diaconis bins, bins-1
  parameters); the lowest AIC wins. Fewer than ``min_samples`` values: no fit of its own
  (the pooled fit is used and the table says so).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

HOURS = 168
EMPIRICAL_POINTS = 100


# --------------------------------------------------------------------------- hour of week


def how_bin(t: pd.Series) -> np.ndarray:
    """Hour-of-week bin (Monday 00:00 = 0) of naive local datetimes."""
    return (t.dt.day_of_week * 24 + t.dt.hour).to_numpy(dtype=np.int64)


def exposure_hours(start: pd.Timestamp, end: pd.Timestamp, tz: str | None) -> np.ndarray:
    """Real hours the period [start, end) spends in each local hour-of-week bin."""
    if tz is None:
        hours = pd.date_range(start, end, freq="h", inclusive="left")
        return np.bincount(hours.day_of_week * 24 + hours.hour, minlength=HOURS).astype(float)
    a = start.tz_localize(tz, ambiguous=False, nonexistent="shift_forward").tz_convert("UTC")
    b = end.tz_localize(tz, ambiguous=False, nonexistent="shift_forward").tz_convert("UTC")
    local = pd.date_range(a, b, freq="h", inclusive="left").tz_convert(tz)
    return np.bincount(local.day_of_week * 24 + local.hour, minlength=HOURS).astype(float)


def _poisson_ll(counts: np.ndarray, mu: np.ndarray) -> float:
    ok = mu > 0
    return float(np.sum(counts[ok] * np.log(mu[ok]) - mu[ok]) - np.sum([math.lgamma(c + 1) for c in counts]))


@dataclass
class ProfileFit:
    counts: np.ndarray        # calls per bin
    exposure: np.ndarray      # real hours per bin
    rate: np.ndarray          # fitted calls per hour per bin (unobserved days: the average day)
    model: str                # "hour_of_week" (168 rates) or "day_x_hour" (30)
    aic: dict[str, float]
    notes: list[str] = field(default_factory=list)

    @property
    def per_week(self) -> float:
        return float(self.rate.sum())

    @property
    def raw_rate(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.exposure > 0, self.counts / self.exposure, np.nan)


def _day_x_hour(counts: np.ndarray, exposure: np.ndarray, iters: int = 200) -> np.ndarray:
    """Poisson MLE of rate[d, h] = a[d] b[h] with exposure, by iterative proportional fitting."""
    n, e = counts.reshape(7, 24), exposure.reshape(7, 24)
    a, b = np.ones(7), np.full(24, max(n.sum(), 1) / max(e.sum(), 1))
    seen = e.sum(axis=1) > 0
    for _ in range(iters):
        a_new = np.where(seen, n.sum(axis=1) / np.maximum((e * b).sum(axis=1), 1e-300), 0.0)
        b_new = n.sum(axis=0) / np.maximum((e * a_new[:, None]).sum(axis=0), 1e-300)
        done = np.allclose(a_new, a, rtol=1e-10) and np.allclose(b_new, b, rtol=1e-10)
        a, b = a_new, b_new
        if done:
            break
    if not seen.all():
        a = np.where(seen, a, a[seen].mean())
    return (a[:, None] * b[None, :]).ravel()


def fit_profile(bins: np.ndarray, exposure: np.ndarray) -> ProfileFit:
    counts = np.bincount(bins, minlength=HOURS).astype(float)
    seen = exposure > 0
    notes = []
    mult = _day_x_hour(counts, exposure)
    aic = {"day_x_hour": 2 * (int(seen.reshape(7, 24).any(axis=1).sum()) + 23)
           - 2 * _poisson_ll(counts[seen], (mult * exposure)[seen])}
    if seen.all():
        full = counts / exposure
        aic["hour_of_week"] = 2 * HOURS - 2 * _poisson_ll(counts, full * exposure)
    else:
        notes.append(f"{int((~seen).sum())} of 168 hour-of-week bins not observed (the period is shorter "
                     "than a week): day x hour model, unobserved days take the average day")
    model = min(aic, key=aic.get)
    rate = counts / exposure if model == "hour_of_week" else mult
    return ProfileFit(counts=counts, exposure=exposure, rate=rate, model=model, aic=aic, notes=notes)


def daily_cv(days: pd.Series, start: pd.Timestamp, end: pd.Timestamp) -> tuple[float, int]:
    """(daily_cv, days used) from calendar-day counts, each weekday against its own mean."""
    all_days = pd.date_range(start, end, freq="D", inclusive="left")
    n = days.dt.floor("D").value_counts().reindex(all_days, fill_value=0)
    num = den = 0.0
    for _, g in n.groupby(n.index.day_of_week):
        k = len(g)
        if k < 2:
            continue
        m = float(g.mean())
        num += float(((g - m) ** 2).sum()) - (k - 1) * m
        den += (k - 1) * m * m
    if den <= 0:
        return 0.0, len(n)
    return math.sqrt(max(num / den, 0.0)), len(n)


# --------------------------------------------------------------------------- durations


@dataclass
class DistFit:
    family: str               # lognormal | gamma | empirical
    n: int
    mean: float
    sd: float
    aic: dict[str, float]
    quantiles: np.ndarray     # EMPIRICAL_POINTS mid-quantiles of the data (empirical form)
    sample: np.ndarray = field(repr=False, default=None)

    def dist(self) -> dict:
        """The scenario form (:class:`sim.distributions.Dist`), minutes."""
        if self.family == "empirical":
            return {"empirical": [round(float(v), 3) for v in self.quantiles]}
        return {self.family: {"mean": round(self.mean, 4), "sd": round(self.sd, 4)}}

    def _frozen(self):
        """The fitted lognormal or gamma as a scipy distribution (None for empirical)."""
        if self.family == "lognormal":
            s2 = math.log1p((self.sd / self.mean) ** 2)
            return stats.lognorm(math.sqrt(s2), scale=math.exp(math.log(self.mean) - s2 / 2))
        if self.family == "gamma":
            return stats.gamma((self.mean / self.sd) ** 2, scale=self.sd ** 2 / self.mean)
        return None

    def ppf(self, q: np.ndarray) -> np.ndarray:
        """Quantiles (minutes) of the fitted distribution, as the simulation samples it."""
        q = np.asarray(q, dtype=float)
        d = self._frozen()
        if d is not None:
            return d.ppf(q)
        v = np.sort(self.quantiles)
        return v[np.minimum((q * len(v)).astype(int), len(v) - 1)]


def _histogram_ll(x: np.ndarray) -> tuple[float, int]:
    q75, q25 = np.percentile(x, [75, 25])
    width = 2 * (q75 - q25) / len(x) ** (1 / 3)
    k = int(np.clip(math.ceil((x.max() - x.min()) / width) if width > 0 else 1, 1, 200))
    counts, edges = np.histogram(x, bins=k)
    w = np.diff(edges)
    ok = counts > 0
    ll = float(np.sum(counts[ok] * np.log(counts[ok] / (len(x) * w[ok]))))
    return ll, k - 1


def fit_duration(x: np.ndarray, min_samples: int = 30) -> DistFit | None:
    """Lognormal / gamma / empirical by AIC for positive durations (minutes); None below
    ``min_samples``."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x) & (x > 0)]
    n = len(x)
    if n < max(min_samples, 2) or np.ptp(x) == 0:
        return None
    aic, params = {}, {}
    lx = np.log(x)
    mu, sig = float(lx.mean()), float(lx.std())
    aic["lognormal"] = 2 * 2 - 2 * float(np.sum(stats.norm.logpdf(lx, mu, sig) - lx))
    params["lognormal"] = (math.exp(mu + sig * sig / 2), math.exp(mu + sig * sig / 2) * math.sqrt(math.expm1(sig * sig)))
    k, _, theta = stats.gamma.fit(x, floc=0)
    aic["gamma"] = 2 * 2 - 2 * float(np.sum(stats.gamma.logpdf(x, k, scale=theta)))
    params["gamma"] = (k * theta, math.sqrt(k) * theta)
    ll, p = _histogram_ll(x)
    aic["empirical"] = 2 * p - 2 * ll
    params["empirical"] = (float(x.mean()), float(x.std()))
    family = min(aic, key=aic.get)
    qs = np.quantile(x, (np.arange(EMPIRICAL_POINTS) + 0.5) / EMPIRICAL_POINTS)
    mean, sd = params[family]
    return DistFit(family=family, n=n, mean=float(mean), sd=float(sd), aic=aic, quantiles=qs, sample=x)


# --------------------------------------------------------------------------- intervals

NOT_RECORDED = "not recorded"
UNPARSEABLE = "date matches none of the map's formats"
PLACEHOLDER = "placeholder (stamped with the received time)"
ZERO = "zero (not observed)"
NEGATIVE = "negative (timestamps out of order)"


def interval_minutes(rows: pd.DataFrame, a: str, b: str, max_min: float) -> tuple[np.ndarray, np.ndarray]:
    """(minutes, status) for interval a -> b; status '' when usable, else the reason."""
    d = (rows[b] - rows[a]).dt.total_seconds().to_numpy() / 60.0
    status = np.full(len(rows), "", dtype=object)

    def mark(mask, why):
        sel = (status == "") & np.asarray(mask, dtype=bool)
        status[sel] = why
    mark(rows[f"bad_{a}"].to_numpy() | rows[f"bad_{b}"].to_numpy(), UNPARSEABLE)
    mark(~np.isfinite(d), NOT_RECORDED)
    if b != "received" and a != "received":
        mark((rows[b] == rows["received"]).to_numpy(), PLACEHOLDER)
    mark(d == 0, ZERO)
    mark(d < 0, NEGATIVE)
    mark(d > max_min, f"absurd (over {max_min:g} min)")
    return d, status


# --------------------------------------------------------------------------- Poisson tests


def _ks_uniform(u: np.ndarray) -> tuple[int, float, float]:
    u = np.asarray(u, dtype=float)
    if len(u) < 2:
        return len(u), float("nan"), float("nan")
    r = stats.kstest(u, "uniform")
    return len(u), float(r.statistic), float(r.pvalue)


def poisson_tests(times: pd.Series, start: pd.Timestamp, rate_per_h: np.ndarray) -> list[dict]:
    """KS tests of arrival times (naive local) as a Poisson process.

    * ``conditional uniform`` (Kim & Whitt 2014): given n arrivals in a clock hour, a
      piecewise-constant-rate Poisson process puts them uniformly in the hour; the pooled
      positions are tested against U(0,1).
    * ``CU + Lewis``: the same order statistics turned into exponential spacings
      (Lewis 1965) and back to uniforms, the more powerful variant Kim & Whitt recommend.
    * ``time rescaling``: with the fitted hour-of-week rates, the integrated rate between
      successive arrivals is Exp(1); this also tests the fitted profile and is expected to
      reject when days vary more than Poisson (daily_cv > 0).
    """
    t = times.sort_values()
    sec = (t - start).dt.total_seconds().to_numpy()
    hour = np.floor(sec / 3600.0).astype(np.int64)
    u = sec / 3600.0 - hour
    out = [dict(test="conditional uniform (Kim & Whitt 2014)", **dict(zip(("n", "D", "p_value"), _ks_uniform(u))))]
    # Lewis: per hour, sorted uniforms -> normalised exponential spacings
    order = np.lexsort((u, hour))
    h, uu = hour[order], u[order]
    first = np.r_[True, h[1:] != h[:-1]]
    grp = np.cumsum(first) - 1
    n_in = np.bincount(grp)[grp]
    j = np.arange(len(h)) - np.flatnonzero(first)[grp]          # 0-based rank within hour
    e = -np.log1p(-np.minimum(uu, 1 - 1e-12))
    e_prev = np.where(first, 0.0, np.r_[0.0, e[:-1]])
    x = (n_in - j) * (e - e_prev)
    out.append(dict(test="CU + Lewis spacings (Kim & Whitt 2014)", **dict(zip(("n", "D", "p_value"),
                                                                            _ks_uniform(-np.expm1(-x))))))
    bins = ((start.day_of_week * 24 + start.hour) + np.arange(int(hour.max()) + 2 if len(hour) else 1)) % 168
    r = rate_per_h[bins]
    cum = np.r_[0.0, np.cumsum(r)]
    lam = cum[hour] + r[hour] * u
    z = np.diff(lam)
    out.append(dict(test="time rescaling with the fitted rates", **dict(zip(("n", "D", "p_value"),
                                                                           _ks_uniform(-np.expm1(-z))))))
    return out
