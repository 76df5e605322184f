"""Duration distributions as planners write them, sampled by inversion.

A scenario writes a duration (minutes) as a bare number (fixed) or as one of::

    {exponential: {mean: 60}}
    {lognormal: {mean: 45, sd: 30}}          # mean and sd of the duration itself
    {gamma: {mean: 45, sd: 30}}
    {uniform: {low: 5, high: 15}}
    {triangular: {low: 5, mode: 8, high: 20}}
    {empirical: [12, 30, 41, 55]}            # resampled with equal weights
    {fixed: 5}

with an optional ``max:`` beside it that caps the draw (a 30-day stay limit).

Every parameter is a finite number of minutes up to :data:`MAX_MINUTES` (ten years), and a
lognormal or gamma has a coefficient of variation (sd / mean) up to :data:`MAX_CV`: beyond
those a draw overflows or the distribution is a point mass at 0 in all but name.

Every draw is an inverse-CDF transform of a U(0,1) number. Two scenarios that give the
same call the same uniform therefore draw the same (or, with another distribution, the
matching-quantile) duration: this is what makes common random numbers line up.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_MINUTES = 10 * 365 * 1440.0   # ten years: the longest duration a scenario may give
MAX_CV = 100.0                    # sd / mean of a lognormal or gamma

Minutes = Annotated[float, Field(ge=0, le=MAX_MINUTES)]
PositiveMinutes = Annotated[float, Field(gt=0, le=MAX_MINUTES)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class MeanSd(_Strict):
    mean: PositiveMinutes
    sd: PositiveMinutes

    @model_validator(mode="after")
    def _cv(self):
        if self.sd > MAX_CV * self.mean:
            raise ValueError(f"sd ({self.sd:g}) is more than {MAX_CV:g} times the mean ({self.mean:g})")
        return self


class Exponential(_Strict):
    mean: PositiveMinutes


class Uniform(_Strict):
    low: Minutes
    high: Minutes

    @model_validator(mode="after")
    def _order(self):
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must be >= low ({self.low})")
        return self


class Triangular(_Strict):
    low: Minutes
    mode: Minutes
    high: Minutes

    @model_validator(mode="after")
    def _order(self):
        if not (self.low <= self.mode <= self.high) or self.low == self.high:
            raise ValueError("needs low <= mode <= high with low < high")
        return self


KINDS = ("fixed", "exponential", "lognormal", "gamma", "uniform", "triangular", "empirical")


class Dist(_Strict):
    """One duration distribution in minutes (see module docstring)."""

    fixed: Minutes | None = None
    exponential: Exponential | None = None
    lognormal: MeanSd | None = None
    gamma: MeanSd | None = None
    uniform: Uniform | None = None
    triangular: Triangular | None = None
    empirical: list[Minutes] | None = None
    max: PositiveMinutes | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_number(cls, v):
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return {"fixed": v}
        return v

    @model_validator(mode="after")
    def _exactly_one(self):
        given = [k for k in KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give a number of minutes or exactly one of: " + ", ".join(KINDS)
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.empirical is not None and len(self.empirical) == 0:
            raise ValueError("empirical needs at least one value")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if getattr(self, k) is not None)

    def mean(self) -> float:
        """Mean in minutes, before any ``max`` cap."""
        k = self.kind
        if k == "fixed":
            return float(self.fixed)
        if k == "exponential":
            return self.exponential.mean
        if k in ("lognormal", "gamma"):
            return getattr(self, k).mean
        if k == "uniform":
            return (self.uniform.low + self.uniform.high) / 2
        if k == "triangular":
            t = self.triangular
            return (t.low + t.mode + t.high) / 3
        return float(np.mean(self.empirical))

    def sampler(self) -> Callable[[float], float]:
        """A scalar function u -> duration (inverse CDF), built once per model."""
        f = _inverse_cdf(self)
        if self.max is None:
            return f
        cap = float(self.max)
        return lambda u: min(f(u), cap)

    def sample(self, u: np.ndarray) -> np.ndarray:
        """Vectorised inverse CDF of an array of uniforms."""
        f = self.sampler()
        return np.fromiter((f(x) for x in np.asarray(u, dtype=float).ravel()), float,
                           count=np.asarray(u).size).reshape(np.shape(u))


def _inverse_cdf(d: Dist) -> Callable[[float], float]:
    k = d.kind
    if k == "fixed":
        c = float(d.fixed)
        return lambda u: c
    if k == "exponential":
        m = d.exponential.mean
        return lambda u: -m * math.log1p(-u)
    if k == "lognormal":
        m, s = d.lognormal.mean, d.lognormal.sd
        sigma2 = math.log1p((s / m) ** 2)
        mu, sigma = math.log(m) - sigma2 / 2, math.sqrt(sigma2)
        from scipy.special import ndtri      # here, not at import: validate stays light
        return lambda u: math.exp(mu + sigma * float(ndtri(u)))
    if k == "gamma":
        m, s = d.gamma.mean, d.gamma.sd
        shape, scale = (m / s) ** 2, s * s / m
        from scipy.special import gammaincinv as inv
        return lambda u: scale * float(inv(shape, u))
    if k == "uniform":
        lo, hi = d.uniform.low, d.uniform.high
        return lambda u: lo + (hi - lo) * u
    if k == "triangular":
        a, c, b = d.triangular.low, d.triangular.mode, d.triangular.high
        fc = (c - a) / (b - a)

        def tri(u: float) -> float:
            if u < fc:
                return a + math.sqrt(u * (b - a) * (c - a))
            return b - math.sqrt((1 - u) * (b - a) * (b - c))
        return tri
    values = sorted(float(x) for x in d.empirical)
    n = len(values)
    return lambda u: values[min(int(u * n), n - 1)]
