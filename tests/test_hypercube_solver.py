"""The exact hypercube solver (tests/hypercube.py) against closed forms it must reduce to."""
import itertools
import math

import numpy as np
import pytest

from analytic import erlang_b, erlang_c, mmc_mean_wait
from hypercube import solve

MU = 1 / 60.0     # mean service 60 min


def _random_case(n_units: int, n_atoms: int, load: float, seed: int):
    """Atoms with random rates and random preference permutations; offered load ``load`` erlangs."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.2, 1.0, n_atoms)
    rates = load * MU * w / w.sum()
    prefs = [list(rng.permutation(n_units)) for _ in range(n_atoms)]
    return rates, prefs


def test_one_unit_loss_is_erlang_b():
    a = 0.7
    h = solve([a * MU * 0.3, a * MU * 0.7], [[0], [0]], MU, line="zero")
    b = erlang_b(1, a)
    assert h.p_all_busy == pytest.approx(b, rel=1e-12)
    assert h.workload[0] == pytest.approx(a / (1 + a), rel=1e-12)
    np.testing.assert_allclose(h.f[:, 0], 1 - b, rtol=1e-12)
    np.testing.assert_allclose(h.lost, b, rtol=1e-12)


@pytest.mark.parametrize("tail", ["exact", "truncate"])
def test_one_unit_fcfs_is_mm1(tail):
    rho = 0.6
    h = solve([rho * MU], [[0]], MU, line="fcfs", tail=tail)
    assert h.p_all_busy == pytest.approx(rho, rel=1e-9)
    assert h.workload[0] == pytest.approx(rho, rel=1e-9)
    assert h.mean_queue == pytest.approx(rho ** 2 / (1 - rho), rel=1e-9)
    assert h.mean_wait == pytest.approx(rho / (MU * (1 - rho)), rel=1e-9)
    assert h.f[0, 0] == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("n_units,n_atoms,seed", [(2, 2, 1), (3, 4, 2), (4, 5, 3), (4, 3, 4)])
def test_any_preferences_give_erlang_b_for_the_number_busy(n_units, n_atoms, seed):
    """With equal service rates the number of busy units is M/M/N/N whatever the preferences."""
    a = 0.9 * n_units
    rates, prefs = _random_case(n_units, n_atoms, a, seed)
    h = solve(rates, prefs, MU, line="zero")
    b = erlang_b(n_units, a)
    assert h.p_all_busy == pytest.approx(b, rel=1e-10)
    assert h.workload.sum() == pytest.approx(a * (1 - b), rel=1e-10)
    # the whole distribution of the number busy is the truncated Poisson
    count = np.array([bin(s).count("1") for s in range(1 << n_units)])
    by_count = np.bincount(count, weights=h.state_probs)
    poisson = np.array([a ** k / math.factorial(k) for k in range(n_units + 1)])
    np.testing.assert_allclose(by_count, poisson / poisson.sum(), rtol=1e-10)
    # every call is served by exactly one unit or lost
    np.testing.assert_allclose(h.f.sum(axis=1) + h.lost, 1.0, rtol=1e-12)
    assert h.state_probs.sum() == pytest.approx(1.0, abs=1e-12) and (h.state_probs >= 0).all()
    # carried load: each unit's workload is its calls times the mean service (Little)
    np.testing.assert_allclose(h.workload, (np.asarray(rates)[:, None] * h.f).sum(axis=0) / MU, rtol=1e-10)


@pytest.mark.parametrize("n_units,n_atoms,seed", [(2, 3, 5), (3, 3, 6), (4, 4, 7)])
@pytest.mark.parametrize("tail", ["exact", "truncate"])
def test_any_preferences_with_a_line_give_erlang_c(n_units, n_atoms, seed, tail):
    a = 0.8 * n_units
    rates, prefs = _random_case(n_units, n_atoms, a, seed)
    h = solve(rates, prefs, MU, line="fcfs", tail=tail)
    lam = float(np.sum(rates))
    assert h.p_all_busy == pytest.approx(erlang_c(n_units, a), rel=1e-9)
    assert h.mean_wait == pytest.approx(mmc_mean_wait(n_units, lam, 1 / MU), rel=1e-8)
    assert h.workload.sum() == pytest.approx(a, rel=1e-9)            # nothing is lost
    np.testing.assert_allclose(h.f.sum(axis=1), 1.0, rtol=1e-10)
    np.testing.assert_allclose(h.lost, 0.0)
    assert h.state_probs.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(h.workload, (np.asarray(rates)[:, None] * h.f).sum(axis=0) / MU, rtol=1e-8)


def test_lumped_tail_equals_explicit_queue_states():
    rates, prefs = _random_case(3, 4, 2.7, 11)        # rho = 0.9: a long tail
    exact = solve(rates, prefs, MU, line="fcfs", tail="exact")
    trunc = solve(rates, prefs, MU, line="fcfs", tail="truncate")
    np.testing.assert_allclose(exact.workload, trunc.workload, rtol=1e-9)
    np.testing.assert_allclose(exact.f, trunc.f, rtol=1e-9)
    np.testing.assert_allclose(exact.state_probs, trunc.state_probs, rtol=1e-9)
    assert exact.mean_queue == pytest.approx(trunc.mean_queue, rel=1e-8)


@pytest.mark.parametrize("line", ["zero", "fcfs"])
@pytest.mark.parametrize("n_units", [2, 3, 4])
def test_symmetric_ring_shares_work_equally(line, n_units):
    """N atoms, equal rates, atom j prefers j, j+1, ... (a ring): every unit works the same and
    each atom's k-th choice serves the same share whatever the atom."""
    a = 0.75 * n_units
    rates = [a * MU / n_units] * n_units
    prefs = [[(j + k) % n_units for k in range(n_units)] for j in range(n_units)]
    h = solve(rates, prefs, MU, line=line)
    carried = a * (1 - erlang_b(n_units, a)) if line == "zero" else a
    np.testing.assert_allclose(h.workload, carried / n_units, rtol=1e-10)
    by_choice = np.array([[h.f[j, prefs[j][k]] for k in range(n_units)] for j in range(n_units)])
    np.testing.assert_allclose(by_choice, by_choice[:1].repeat(n_units, axis=0), rtol=1e-10)
    assert (np.diff(by_choice[0]) < 0).all()          # first choices serve most


def test_two_units_two_atoms_closed_form():
    """Hand-solved 2-unit loss system: atom 1 prefers unit 0, atom 2 prefers unit 1.
    P0 = 1 / (1 + a + a^2/2); P(unit 0 only) - P(unit 1 only) = (l1 - l2) P0 / (l + mu)."""
    l1, l2 = 1.3 * MU, 0.4 * MU
    lam, a = l1 + l2, (l1 + l2) / MU
    h = solve([l1, l2], [[0, 1], [1, 0]], MU, line="zero")
    p0 = 1 / (1 + a + a * a / 2)
    diff = (l1 - l2) * p0 / (lam + MU)
    pa, pb, pf = (a * p0 + diff) / 2, (a * p0 - diff) / 2, a * a / 2 * p0
    np.testing.assert_allclose(h.state_probs, [p0, pa, pb, pf], rtol=1e-12)
    np.testing.assert_allclose(h.workload, [pa + pf, pb + pf], rtol=1e-12)
    # atom 1: unit 0 when unit 0 is free (states 00, 01), else unit 1 (state 10)
    np.testing.assert_allclose(h.f, [[p0 + pb, pa], [pb, p0 + pa]], rtol=1e-12)


def test_fcfs_queued_calls_are_split_evenly():
    """In the FCFS variant f adds P(all busy) / N to every unit for every atom."""
    rates, prefs = [0.9 * MU, 0.6 * MU], [[0, 1], [1, 0]]
    loss, fcfs = solve(rates, prefs, MU, "zero"), solve(rates, prefs, MU, "fcfs")
    # below all-busy the routing is the same; only the weights of the states differ
    for j, n in itertools.product(range(2), range(2)):
        assert fcfs.f[j, n] >= fcfs.p_all_busy / 2
    np.testing.assert_allclose(fcfs.f.sum(axis=1), 1.0, rtol=1e-10)
    assert loss.p_all_busy < fcfs.p_all_busy


@pytest.mark.parametrize("bad", [
    dict(rates=[1.0], preferences=[[0, 0]], mu=1.0),               # not a permutation
    dict(rates=[1.0, 1.0], preferences=[[0, 1]], mu=1.0),          # one list for two atoms
    dict(rates=[-1.0], preferences=[[0]], mu=1.0),
    dict(rates=[1.0], preferences=[[0]], mu=0.0),
    dict(rates=[2.0], preferences=[[0, 1]], mu=1.0, line="fcfs"),   # rho = 1
])
def test_bad_input_is_refused(bad):
    with pytest.raises(ValueError):
        solve(**bad)
