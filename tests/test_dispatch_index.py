"""The dispatcher's idle-unit indexes find exactly the unit a full scan would (hypothesis).

The grid index looks at cells nearest first and stops at the first cell beyond the best
unit found; this replays every query against a brute-force scan over all idle units with
the same order (travel, idle since, unit id), for Manhattan and Euclidean distance, points
inside and outside the grid, and checks that it read no unit of a cell that could not hold
a nearer one.
"""
import math

from hypothesis import given, settings, strategies as st

from sim.geography import _euclidean, _manhattan
from sim.resources import _GridIndex, _ZoneIndex


class _U:
    def __init__(self, i, x, y, zone=0, since=0.0):
        self.id, self.x, self.y, self.zone, self.idle_since = i, x, y, zone, since
        self.cell = None
        self.winding = False


# geography's own metrics: the grid writes their formulas out, and its keys must be these
# functions' values to the last bit (the keys below are compared with ==)
manhattan, euclid = _manhattan, _euclidean


coord = st.floats(-2, 22, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(coord, coord, st.integers(0, 3)), min_size=1, max_size=60),
       st.lists(st.tuples(coord, coord), min_size=1, max_size=10),
       st.sampled_from([manhattan, euclid]), st.floats(0.3, 8), st.booleans())
def test_grid_index_finds_the_closest_unit(units, queries, dist, cell, use_winding):
    v = 0.5
    idx = _GridIndex((0.0, 0.0, 20.0, 20.0), cell, dist, v)
    us = [_U(i, x, y, since=float(s)) for i, (x, y, s) in enumerate(units)]
    for u in us:
        u.winding = use_winding and u.id % 3 == 0
        idx.add(u)
    ok = (lambda u: not u.winding) if use_winding else (lambda u: True)
    for qx, qy in queries:
        got = idx.best(qx, qy, 0, (math.inf, math.inf, math.inf), ok)
        cands = [(dist(u.x, u.y, qx, qy) / v, u.idle_since, u.id) for u in us if ok(u)]
        if not cands:
            assert got is None
            continue
        want = min(cands)
        assert got is not None and got[0] == want, (got, want)
    for u in us[::2]:            # removing keeps the index exact
        idx.remove(u)
    rest = us[1::2]
    for qx, qy in queries:
        got = idx.best(qx, qy, 0, (math.inf, math.inf, math.inf), ok)
        cands = [(dist(u.x, u.y, qx, qy) / v, u.idle_since, u.id) for u in rest if ok(u)]
        assert (got is None) if not cands else (got[0] == min(cands))


# points on a lattice of half cells: units and calls on cell edges and corners, many at
# exactly the same distance (ties broken by idle since, then id), the case a ring bound that
# is off by a rounding error would get wrong
lattice = st.integers(-4, 44).map(lambda k: k * 0.5)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(lattice, lattice, st.integers(0, 2)), min_size=13, max_size=80),
       st.lists(st.tuples(lattice, lattice), min_size=1, max_size=10),
       st.sampled_from([manhattan, euclid]), st.sampled_from([0.5, 1.0, 1.5, 2.0 ** 0.5]),
       st.sampled_from([0.5, 2.0 / 3.0, 1.0]))
def test_grid_index_exact_on_cell_edges_and_ties(units, queries, dist, cell, v):
    idx = _GridIndex((0.0, 0.0, 20.0, 20.0), cell, dist, v)
    us = [_U(i, x, y, since=float(s)) for i, (x, y, s) in enumerate(units)]
    for u in us:
        idx.add(u)
    for qx, qy in queries:
        got = idx.best(qx, qy, 0, (math.inf, math.inf, math.inf), None)
        assert got[0] == min((dist(u.x, u.y, qx, qy) / v, u.idle_since, u.id) for u in us)


class _Counted(_U):
    """A unit that notes each time the index reads its position."""
    seen: list = []

    @property
    def x(self):
        _Counted.seen.append(self)
        return self._x

    @x.setter
    def x(self, value):
        self._x = value


def _search(idx, units, x, y):
    """Add the units, then ask for the closest to (x, y), noting only that query's reads."""
    for u in units:
        idx.add(u)
    _Counted.seen = []
    return idx.best(x, y, 0, (math.inf, math.inf, math.inf), None)


def test_grid_index_searches_no_wider_than_the_ball():
    """Manhattan: with the nearest unit a third of a cell away, the search looks at the
    units of a few cells around the call, not at every idle unit, and still finds it (in
    rotated coordinates the Manhattan ball is a square of cells: no ring wider than needed)."""
    idx = _GridIndex((0.0, 0.0, 100.0, 100.0), 1.0, manhattan, 1.0)
    others = [_Counted(i, 10.0 + 3.0 * (i % 20), 10.0 + 3.0 * (i // 20)) for i in range(400)]
    near = _Counted(1000, 50.2, 50.1)
    got = _search(idx, others + [near], 50.0, 50.0)
    assert got[1] is near and got[0][0] == manhattan(50.2, 50.1, 50.0, 50.0)
    assert 1 <= len(_Counted.seen) <= 3      # the near unit and the few in its cells, not 401 units


def test_grid_index_stops_at_the_first_cell_beyond_the_best():
    """Euclidean, 1 km cells: the call is 0.05 km from its cell's right edge and the nearest
    unit 0.1 km away, just across it. Every other cell next to the call's is at least 0.45 km
    away, so none of their units is read (a search by whole rings of cells reads all eight)."""
    idx = _GridIndex((0.0, 0.0, 20.0, 20.0), 1.0, euclid, 1.0)
    around = [(i, j) for i in (9, 10, 11) for j in (9, 10, 11) if (i, j) not in ((10, 10), (11, 10))]
    others = [_Counted(k, i + 0.5, j + 0.5) for k, (i, j) in enumerate(around)]
    others += [_Counted(100 + k, 2.5 + k, 2.5) for k in range(12)]    # far away: a grid search
    near = _Counted(1000, 11.05, 10.5)
    got = _search(idx, others + [near], 10.95, 10.5)
    assert got[1] is near and got[0][0] == euclid(11.05, 10.5, 10.95, 10.5)
    assert _Counted.seen == [near]


def _cell_bound(idx, x, y, u):
    """The distance (km) from (x, y) to the nearest point of the grid cell holding ``u``,
    along the farther axis, in the grid's coordinates (Manhattan: the rotated x + y, x - y,
    in which it is the Manhattan distance to the cell): what no unit in the cell can beat."""
    def grid(px, py):
        return (px + py - idx.x0, px - py - idx.y0) if idx.manhattan else (px - idx.x0, py - idx.y0)
    gx, gy = grid(x, y)
    ux, uy = grid(u._x, u.y)
    i, j = int(ux // idx.h), int(uy // idx.h)        # the cell as the index numbers it
    return max(0.0, i * idx.h - gx, gx - (i + 1) * idx.h, j * idx.h - gy, gy - (j + 1) * idx.h)


inside = st.floats(0.0, 20.0, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(inside, inside, st.integers(0, 3)), min_size=13, max_size=80),
       st.lists(st.tuples(inside, inside), min_size=1, max_size=10),
       st.sampled_from([manhattan, euclid]), st.floats(0.3, 8))
def test_grid_index_reads_only_cells_that_could_hold_a_nearer_unit(units, queries, dist, cell):
    """Rule replay: every unit the search reads lies in a cell whose distance from the call
    is within the drive of the unit it returns (points inside the grid, its grid path)."""
    v = 0.5
    idx = _GridIndex((0.0, 0.0, 20.0, 20.0), cell, dist, v)
    us = [_Counted(i, x, y, since=float(s)) for i, (x, y, s) in enumerate(units)]
    for u in us:
        idx.add(u)
    scans = []
    consider = idx._consider
    idx._consider = lambda *a: scans.append(1) or consider(*a)
    for qx, qy in queries:
        _Counted.seen, scans[:] = [], []
        got = idx.best(qx, qy, 0, (math.inf, math.inf, math.inf), None)
        assert got[0] == min((dist(u._x, u.y, qx, qy) / v, u.idle_since, u.id) for u in us)
        if scans:
            # a plain scan after the grid: only when the best is farther than every cell the
            # grid searches could have shown (the last of them is at least RINGS - 1/2 cells away)
            assert got[0][0] * v > (idx.RINGS - 1) * idx.h, got
            continue
        for u in _Counted.seen:
            assert _cell_bound(idx, qx, qy, u) <= got[0][0] * v + 1e-9, (u.id, got)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.lists(st.integers(0, 30), min_size=n, max_size=n), min_size=n, max_size=n),
    st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, 5)), min_size=1, max_size=20),
    st.integers(0, n - 1))))
def test_zone_index_finds_the_closest_unit(case):
    n, matrix, units, call_zone = case
    idx = _ZoneIndex([[float(t) for t in row] for row in matrix])
    us = [_U(i, 0.0, 0.0, zone=z, since=float(s)) for i, (z, s) in enumerate(units)]
    for u in sorted(us, key=lambda u: (u.idle_since, u.id)):   # insertion order = idle since
        idx.add(u)
    got = idx.best(0.0, 0.0, call_zone, (math.inf, math.inf, math.inf), lambda u: True)
    want = min((float(matrix[u.zone][call_zone]), u.idle_since, u.id) for u in us)
    assert got[0] == want
