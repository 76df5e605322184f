"""Zones, call locations and travel times (minutes).

Two ways to describe a city:

* zones as rectangles in km (``rect_km``), call locations uniform inside, and distance
  ``manhattan`` or ``euclidean`` driven at ``speed_kmh``;
* a zone-to-zone ``matrix_min`` of minutes.

``travel.model: none`` means no drive at all (validation models). Every drive adds a
turnout delay and, optionally, lognormal noise with mean 1 and the given CV.
"""
from __future__ import annotations

import math

import numpy as np

from .scenario import Scenario


class Geography:
    def __init__(self, s: Scenario):
        self.zone_names = list(s.zones)
        self.model = s.travel.model
        self.distance = metric(self.model)      # (x0, y0, x1, y1) -> km by the model's metric
        self.speed_km_per_min = s.travel.speed_kmh / 60.0
        self.turnout = s.travel.turnout_min.sampler()
        cv = s.travel.variation_cv
        self._sigma = math.sqrt(math.log1p(cv * cv)) if cv > 0 else 0.0
        if self._sigma:
            from scipy.special import ndtri      # only with travel noise: `import sim` stays light
            self._ndtri = ndtri
        rects = [s.zones[z].rect_km for z in self.zone_names]
        self.rects = [r if r is not None else (0.0, 0.0, 0.0, 0.0) for r in rects]
        self.centres = [((r[0] + r[2]) / 2, (r[1] + r[3]) / 2) for r in self.rects]
        if self.model == "matrix":
            m = s.travel.matrix_min
            self.matrix = [[m[a][b] for b in self.zone_names] for a in self.zone_names]
        else:
            self.matrix = None

    # --- locations -----------------------------------------------------------------

    def place(self, zone: str | None) -> tuple[float, float, int]:
        """(x, y, zone index) of a zone's centre (the first zone if None); everything sits
        at (0, 0, 0) without geography."""
        if self.model == "none":
            return (0.0, 0.0, 0)
        z = self.zone_names.index(zone) if zone else 0
        return (*self.centres[z], z)

    def post(self, post) -> tuple[float, float, int]:
        """(x, y, zone index) of a unit's post: a zone name (its centre), a point [x_km, y_km]
        (in the zone whose rectangle holds it, else the nearest zone centre), or None (the
        first zone)."""
        if self.model == "none":
            return (0.0, 0.0, 0)
        if post is None or isinstance(post, str):
            return self.place(post)
        x, y = float(post[0]), float(post[1])
        for z, r in enumerate(self.rects):
            if r[0] <= x <= r[2] and r[1] <= y <= r[3]:
                return (x, y, z)
        z = min(range(len(self.centres)), key=lambda k: (math.hypot(self.centres[k][0] - x,
                                                                     self.centres[k][1] - y), k))
        return (x, y, z)

    def bbox(self, points: list[tuple[float, float]] = ()) -> tuple[float, float, float, float]:
        """Smallest rectangle holding every zone and the given points (km)."""
        xs = [v for r in self.rects for v in (r[0], r[2])] + [p[0] for p in points]
        ys = [v for r in self.rects for v in (r[1], r[3])] + [p[1] for p in points]
        return (min(xs), min(ys), max(xs), max(ys))

    def drive_expected(self, x0: float, y0: float, z0: int, x1: float, y1: float, z1: int) -> float:
        """Expected drive time in minutes (no turnout): the travel model without its noise,
        which has mean 1. This is what the dispatcher ranks units by."""
        model = self.model
        if model == "none":
            return 0.0
        if model == "matrix":
            return self.matrix[z0][z1]
        return self.distance(x0, y0, x1, y1) / self.speed_km_per_min

    def locations(self, zones: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Uniform points inside each call's zone rectangle (km)."""
        r = np.asarray(self.rects, dtype=float)[zones] if len(zones) else np.zeros((0, 4))
        return r[:, 0] + u * (r[:, 2] - r[:, 0]), r[:, 1] + v * (r[:, 3] - r[:, 1])

    def zone_distance(self, a: int, b: int) -> float:
        if self.model == "matrix":
            return self.matrix[a][b]
        (x0, y0), (x1, y1) = self.centres[a], self.centres[b]
        return self.distance(x0, y0, x1, y1)

    # --- travel ----------------------------------------------------------------------

    def drive(self, x0: float, y0: float, z0: int, x1: float, y1: float, z1: int, u_noise: float) -> float:
        """Drive time in minutes (no turnout)."""
        base = self.drive_expected(x0, y0, z0, x1, y1, z1)
        if self._sigma and base > 0:
            s = self._sigma
            base *= math.exp(-s * s / 2 + s * float(self._ndtri(u_noise)))
        return base


def _euclidean(x0: float, y0: float, x1: float, y1: float) -> float:
    return math.hypot(x1 - x0, y1 - y0)


def _manhattan(x0: float, y0: float, x1: float, y1: float) -> float:
    return abs(x1 - x0) + abs(y1 - y0)


def metric(model: str):
    """The distance function (km) of a travel model: straight line or Manhattan."""
    return _euclidean if model == "euclidean" else _manhattan
