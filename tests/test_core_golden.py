"""Golden values from the seeds (SPEC "Golden values from the seeds")."""

import pytest

from rooflax import core as rc

# Seed 000's simulator defaults: N_active=37G, C=1P MAC/s, N_total=671G (1 byte each),
# BW=4.8 TB/s, L=1.02K (1024), b=71.68 KB/token, at B=128.
SEED_HW = rc.Hardware(bw=4.8e12, c_over_bw=1e15 / 4.8e12, capacity=1e15)
SEED_MODEL = rc.Model.from_counts(
    n_total=671e9, n_active=37e9, kv_bytes_per_token=71_680.0, bytes_per_weight=1.0
)
SEED_WL = rc.Workload(batch=128.0, context=1024.0)


def test_seed_simulator_compute_memory_ratio():
    assert float(rc.compute_memory_ratio(SEED_HW, SEED_MODEL, SEED_WL)) == pytest.approx(
        3.34e-2, abs=0.005e-2
    )


def test_seed_simulator_kv_share():
    assert float(rc.kv_share(SEED_HW, SEED_MODEL, SEED_WL)) == pytest.approx(1.38e-2, abs=0.005e-2)


def test_sweet_spot_300_deepseek():
    hw = SEED_HW.replace(c_over_bw=300.0)
    # (C/BW)·(N_total·w/N_active) = 300 · 671/37 ≈ 5 440
    assert float(rc.b_x_kv_free(hw, SEED_MODEL)) == pytest.approx(5440, rel=1e-3)
    kv_free = SEED_MODEL.replace(kv_bytes_per_token=0.0)
    assert float(rc.b_x(hw, kv_free, SEED_WL)) == pytest.approx(300.0 * 671 / 37, rel=1e-12)


@pytest.mark.parametrize("c_over_bw,n_total,n_active,w", [(300.0, 671e9, 37e9, 1.0),
                                                         (206.1, 70e9, 70e9, 2.0),
                                                         (76.5, 46.7e9, 12.9e9, 0.5)])
def test_kv_free_crossover_exact(c_over_bw, n_total, n_active, w):
    hw = rc.Hardware(bw=3.35e12, c_over_bw=c_over_bw, capacity=1e12)
    m = rc.Model.from_counts(n_total=n_total, n_active=n_active, kv_bytes_per_token=0.0,
                             bytes_per_weight=w)
    expected = c_over_bw * (n_total * w / n_active)
    assert float(rc.b_x(hw, m, rc.Workload(context=4096.0))) == pytest.approx(expected, rel=1e-12)
