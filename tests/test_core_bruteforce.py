"""Closed forms against brute-force search on a fine grid, in plain NumPy.

The brute force never calls rooflax: it re-states the decode step
(T_compute = B·N_active/C, T_memory = (N_total·w + B·kv_read)/BW) in NumPy and
searches a batch or context grid. Random hardware × model × context draws come
from hypothesis.
"""

import numpy as np
import pytest
from bruteforce import BATCH_GRID, STEP, assert_b_star_is_brute_minimum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rooflax import core as rc

CONTEXT_GRID = np.geomspace(1.0, 1e9, 400_001)


@st.composite
def points(draw, attention=True, slo=True):
    hw = dict(
        bw=draw(st.floats(5e11, 2e13)),
        c_over_bw=draw(st.floats(20.0, 1500.0)),
        capacity=draw(st.floats(8e9, 300e9)),
        price=draw(st.floats(0.5, 12.0)) / 3600,
        chips=float(draw(st.sampled_from([1, 2, 4, 8, 16, 72]))),
    )
    model = dict(
        n_total=draw(st.floats(1e9, 2e12)),
        sparsity=draw(st.floats(1.0, 60.0)),
        kv_bytes_per_token=draw(st.floats(1e3, 6e5)),
        bytes_per_weight=draw(st.sampled_from([0.5, 1.0, 2.0])),
    )
    if draw(st.booleans()):  # linear-attention layers: a constant state per sequence
        model["state_bytes_per_seq"] = draw(st.floats(1e5, 3e8))
    if attention:
        kind = draw(st.sampled_from(["dense", "window", "top_k", "sqrt"]))
        if kind == "window":
            model["window"] = draw(st.floats(64.0, 1e5))
        elif kind == "top_k":
            model["top_k"] = draw(st.floats(64.0, 1e5))
        elif kind == "sqrt":
            model["sqrt_coeff"] = draw(st.floats(1.0, 64.0))
    wl = dict(context=draw(st.floats(1.0, 2e6)))
    if slo and draw(st.booleans()):
        wl["slo"] = draw(st.floats(1e-3, 0.5))
    return rc.Hardware(**hw), rc.Model(**model), rc.Workload(**wl)


def np_l_eff(m: rc.Model, L):
    L = np.asarray(L, dtype=float)
    return np.minimum.reduce([L, np.full_like(L, m.window), np.full_like(L, m.top_k),
                              m.sqrt_coeff * np.sqrt(L) if np.isfinite(m.sqrt_coeff) else L])


def np_kv_read(m: rc.Model, L):
    """b·L_eff + the linear-attention state (read every step, whatever L)."""
    return m.kv_bytes_per_token * np_l_eff(m, L) + m.state_bytes_per_seq


def np_times(hw: rc.Hardware, m: rc.Model, L, B):
    C = hw.c_over_bw * hw.bw * hw.chips
    BW = hw.bw * hw.chips
    n_active = m.n_total / m.sparsity
    t_c = B * n_active / C
    t_m = (m.n_total * m.bytes_per_weight + B * np_kv_read(m, L)) / BW
    return t_c, t_m


def np_kv_store(m: rc.Model, L):
    return m.kv_bytes_per_token * np.minimum(L, m.window) + m.state_bytes_per_seq


SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(points(slo=False))
def test_b_x_brute_force(p):
    hw, m, wl = p
    t_c, t_m = np_times(hw, m, wl.context, BATCH_GRID)
    crossed = np.nonzero(t_c >= t_m)[0]
    bx = float(rc.b_x(hw, m, wl))
    if crossed.size == 0:
        # no crossover inside the grid: either none at all, or beyond its end
        assert bx > BATCH_GRID[-1]
    elif crossed[0] == 0:
        assert bx <= 1.0
    else:
        assert bx == pytest.approx(BATCH_GRID[crossed[0]], rel=2 * STEP)
    if np.isinf(bx):  # no crossover: the KV slope is at least the compute slope
        assert np.all(t_m > t_c)


@SETTINGS
@given(points(slo=False))
def test_b_max_brute_force(p):
    hw, m, wl = p
    fits = m.n_total * m.bytes_per_weight + BATCH_GRID * np_kv_store(m, wl.context) <= (
        hw.capacity * hw.chips)
    bm = float(rc.b_max(hw, m, wl))
    if not fits.any():
        assert bm < 1.0
    elif fits.all():
        assert bm >= BATCH_GRID[-1]
    else:
        assert bm == pytest.approx(BATCH_GRID[np.nonzero(fits)[0][-1]], rel=2 * STEP)


@SETTINGS
@given(points())
def test_b_star_brute_force(p):
    """B* = the cheapest batch at the lowest latency, among batches that fit and meet the SLO."""
    hw, m, wl = p
    t_c, t_m = np_times(hw, m, wl.context, BATCH_GRID)
    t = np.maximum(t_c, t_m)
    feasible = (m.n_total * m.bytes_per_weight + BATCH_GRID * np_kv_store(m, wl.context)
                <= hw.capacity * hw.chips) & (t <= wl.slo)
    cost = t * hw.price * hw.chips / BATCH_GRID
    assert_b_star_is_brute_minimum(hw, m, wl, feasible, cost)


@SETTINGS
@given(points(slo=False), st.floats(1.0, 1e4))
def test_l_crit_brute_force(p, batch):
    hw, m, wl = p
    wl = wl.replace(batch=batch)
    kv = batch * np_kv_read(m, CONTEXT_GRID)
    flipped = np.nonzero(kv >= m.n_total * m.bytes_per_weight)[0]
    lc = float(rc.l_crit(hw, m, wl))
    if flipped.size == 0:
        assert lc > CONTEXT_GRID[-1]
    elif flipped[0] == 0:
        assert lc <= 1.0
    else:
        assert lc == pytest.approx(CONTEXT_GRID[flipped[0]], rel=2 * STEP)


@SETTINGS
@given(points(slo=False))
def test_l_bal_brute_force(p):
    hw, m, _ = p
    kv_slope = np_kv_read(m, CONTEXT_GRID) / (hw.bw * hw.chips)
    compute_slope = (m.n_total / m.sparsity) / (hw.c_over_bw * hw.bw * hw.chips)
    balanced = np.nonzero(kv_slope >= compute_slope)[0]
    lb = float(rc.l_bal(hw, m))
    if balanced.size == 0:
        assert lb > CONTEXT_GRID[-1]
    elif balanced[0] == 0:
        assert lb <= 1.0
    else:
        assert lb == pytest.approx(CONTEXT_GRID[balanced[0]], rel=2 * STEP)


def test_hybrid_local_layers_l_crit():
    """Gemma-style hybrid: local layers add b_local·min(L, W) to kv_read."""
    m = rc.Model(n_total=27e9, sparsity=1.0, kv_bytes_per_token=81_920.0, bytes_per_weight=2.0,
                 kv_bytes_per_token_local=425_984.0, local_window=1024.0)
    hw = rc.Hardware(bw=3.35e12, c_over_bw=295.0, capacity=80e9)
    wl = rc.Workload(batch=64.0)
    L = CONTEXT_GRID
    kv = 64.0 * (81_920.0 * L + 425_984.0 * np.minimum(L, 1024.0))
    expected = L[np.nonzero(kv >= 27e9 * 2.0)[0][0]]
    assert float(rc.l_crit(hw, m, wl)) == pytest.approx(expected, rel=2 * STEP)
