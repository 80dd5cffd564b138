"""core.fit: synthetic round trips (known knobs → noisy observations → fit → knobs back within
the reported uncertainty), non-identifiable set-ups reported as such, bounds respected."""

import math

import jax
import pytest

from rooflax import core as rc
from rooflax.core import fit as F

# An H100-like chip in SI units (no catalog needed), a DeepSeek-like MoE and a dense model.
HW = rc.Hardware.from_peak(flops=1.979e15, bw=3.35e12, capacity=80e9, price_per_hour=2.0, chips=8.0)
MOE = rc.Model.from_counts(n_total=671e9, n_active=37e9, kv_bytes_per_token=70272.0, bytes_per_weight=1.0)
DENSE = rc.Model(n_total=70e9, sparsity=1.0, kv_bytes_per_token=327680.0, bytes_per_weight=2.0)


def _problem(unknowns, scenario, obs_specs, rel, derived=()):
    """obs_specs: (name, quantity, knobs) in the single scenario 's'; values filled in later."""
    obs = tuple(F.Observation(n, F.Expr(q, "s", k), 1.0, 1.0) for n, q, k in obs_specs)
    return F.Problem(tuple(unknowns), {"s": scenario}, obs, tuple(derived)), rel


def _with_data(problem, truth, rel, seed):
    y = F.simulate(problem, truth, rel_noise=rel, key=jax.random.PRNGKey(seed))
    obs = tuple(F.Observation(o.name, o.expr, float(v), rel * abs(float(v)), o.over)
                for o, v in zip(problem.observations, y, strict=True))
    return F.Problem(problem.unknowns, problem.scenarios, obs, problem.derived)


def _check_recovered(result, truth, nsigma=3.0, max_rel_sigma=0.5):
    for name, value in truth.items():
        u = result.estimate(name)
        assert u.status == "identified", (name, u.status)
        assert math.isfinite(u.sigma) and u.sigma > 0
        assert abs(u.estimate - value) <= nsigma * u.sigma, (name, u.estimate, value, u.sigma)
        assert u.sigma <= max_rel_sigma * abs(value), (name, u.sigma, value)
    assert result.rank == len(result.unknowns)


@pytest.mark.parametrize("seed", [0, 1])
def test_round_trip_batch_and_efficiency(seed):
    """DeepSeek-style: sequences per chip and bandwidth efficiency from per-user and per-chip speed."""
    sc = F.Scenario(HW, MOE, rc.Workload(batch=1.0, context=5000.0),
                    bind={"batch_per_chip": "seqs", "bw_eff": "eff"})
    truth = {"seqs": 90.0, "eff": 0.3}
    p, rel = _problem([F.Unknown("seqs", 1, 4000), F.Unknown("eff", 0.01, 1.0)], sc,
                      [("user", "tokens_per_s_per_user", {}), ("chip", "tokens_per_s_per_chip", {})], 0.03)
    p = _with_data(p, truth, rel, seed)
    r = F.fit(p, starts=4, seed=seed, profile=False)
    _check_recovered(r, truth)
    assert r.chi2 < 1e-6  # two observations, two unknowns: an exact solution exists


@pytest.mark.parametrize("seed", [3, 4])
def test_round_trip_context_and_sparsity(seed):
    """Per-user speed at several batches: small B sees weights + KV (context), big B sees compute (sparsity)."""
    sc = F.Scenario(HW, MOE, rc.Workload(batch=1.0, context=1.0),
                    bind={"context": "ctx", "sparsity": "sparsity"})
    truth = {"ctx": 1000.0, "sparsity": 12.0}  # B_x ≈ 5.6K: the two biggest batches are compute-bound
    specs = [(f"user@B={b}", "tokens_per_s_per_user", {"batch": float(b)}) for b in (64, 512, 2048, 8192, 32768)]
    p, rel = _problem([F.Unknown("ctx", 10, 1e7), F.Unknown("sparsity", 1.0, 100.0)], sc, specs, 0.02)
    p = _with_data(p, truth, rel, seed)
    r = F.fit(p, starts=6, seed=seed, profile=False)
    _check_recovered(r, truth)
    assert r.dof == 3


def test_round_trip_price_and_kv_bytes_with_derived():
    """Price per hour and KV bytes/token from cost per M tokens at several contexts; a derived
    quantity (L_bal) comes back with an uncertainty that covers its true value."""
    sc = F.Scenario(HW, DENSE, rc.Workload(batch=64.0, context=1.0),
                    bind={"price_per_hour": "price", "kv_bytes_per_token": "kv"})
    truth = {"price": 3.1, "kv": 160000.0}
    specs = [(f"$/M@L={L}", "cost_per_mtok_output", {"context": float(L)}) for L in (1000, 8000, 32000, 128000)]
    derived = (F.Derived("l_bal", F.Expr("l_bal", "s")), F.Derived("b_x@8k", F.Expr("b_x", "s", {"context": 8000.0})))
    p, rel = _problem([F.Unknown("price", 0.1, 50.0), F.Unknown("kv", 1e3, 1e7)], sc, specs, 0.02, derived)
    p = _with_data(p, truth, rel, 7)
    r = F.fit(p, starts=4, seed=0, profile=False)
    _check_recovered(r, truth)
    trees = F.apply_knobs((HW, DENSE, rc.Workload(batch=64.0, context=8000.0)),
                          {"price_per_hour": truth["price"], "kv_bytes_per_token": truth["kv"]})
    true_lbal = float(rc.l_bal(*trees[:2]))
    d = r.derived_value("l_bal")
    assert d.identifiable and abs(d.value - true_lbal) <= 3 * d.sigma
    bx = r.derived_value("b_x@8k")  # KV-bound at 8K: no crossover, +inf with no σ (not a fake 0)
    assert math.isinf(bx.value) and math.isnan(bx.sigma)


@pytest.mark.slow  # many refits (make test-fast skips it)
def test_coverage_over_seeds():
    """Over 12 noisy data sets, the reported 1σ covers the truth about 68 % of the time (≥ 50 %)."""
    sc = F.Scenario(HW, MOE, rc.Workload(batch=1.0, context=5000.0),
                    bind={"batch_per_chip": "seqs", "bw_eff": "eff"})
    truth = {"seqs": 60.0, "eff": 0.5}
    base, rel = _problem([F.Unknown("seqs", 1, 4000), F.Unknown("eff", 0.01, 1.0)], sc,
                         [("user", "tokens_per_s_per_user", {}), ("chip", "tokens_per_s_per_chip", {}),
                          ("user2", "tokens_per_s_per_user", {"context": 20000.0})], 0.05)
    inside = 0
    for seed in range(12):
        r = F.fit(_with_data(base, truth, rel, 100 + seed), starts=2, seed=seed, profile=False)
        u = r.estimate("seqs")
        inside += abs(u.estimate - truth["seqs"]) <= u.sigma
    assert inside >= 6


def test_kv_bound_everywhere_leaves_sparsity_unidentified():
    """At 20K context this MoE is KV-bound at every batch (no crossover): compute never binds, so the
    data say nothing about sparsity — and the fit says so instead of returning a number."""
    sc = F.Scenario(HW, MOE, rc.Workload(batch=1.0, context=1.0),
                    bind={"context": "ctx", "sparsity": "sparsity"})
    truth = {"ctx": 20000.0, "sparsity": 12.0}
    specs = [(f"user@B={b}", "tokens_per_s_per_user", {"batch": float(b)}) for b in (64, 512, 2048, 8192, 32768)]
    p, rel = _problem([F.Unknown("ctx", 10, 1e7), F.Unknown("sparsity", 1.0, 100.0)], sc, specs, 0.02)
    r = F.fit(_with_data(p, truth, rel, 3), starts=6, seed=3, profile=False)
    assert r.estimate("sparsity").status == "not identifiable"
    assert r.estimate("ctx").status == "identified"
    assert r.unconstrained == [{"sparsity": 1.0}]


def test_product_is_not_identifiable_but_the_product_is():
    """Batch and KV bytes enter l_crit only as B·b: the fit says so and does not return a number for
    either, yet the derived flip context (a function of the product) is identified."""
    sc = F.Scenario(HW, DENSE, rc.Workload(batch=1.0, context=1.0),
                    bind={"batch": "batch", "kv_bytes_per_token": "kv"})
    obs = (F.Observation("tier", F.Expr("l_crit", "s"), 200000.0, 20000.0),)
    der = (F.Derived("l_crit", F.Expr("l_crit", "s")), F.Derived("kv", F.Expr("kv_bytes_per_token", "s")))
    p = F.Problem((F.Unknown("batch", 1, 1e5), F.Unknown("kv", 10, 1e8)), {"s": sc}, obs, der)
    r = F.fit(p, starts=4, profile=True)
    assert r.rank == 1
    for name in ("batch", "kv"):
        u = r.estimate(name)
        assert u.status == "not identifiable" and math.isinf(u.sigma)
    (law,) = r.unconstrained
    assert set(law) == {"batch", "kv"} and law["batch"] == pytest.approx(-law["kv"])
    lc = r.derived_value("l_crit")
    assert lc.identifiable and lc.value == pytest.approx(200000.0, rel=1e-6)
    assert lc.sigma == pytest.approx(20000.0, rel=1e-3)
    assert not r.derived_value("kv").identifiable
    assert any("constrain 1 of 2" in w for w in r.warnings)


def test_prior_only():
    """With a prior on the batch the same set-up becomes solvable, and both unknowns say that
    only the prior pins them."""
    sc = F.Scenario(HW, DENSE, rc.Workload(batch=1.0, context=1.0),
                    bind={"batch": "batch", "kv_bytes_per_token": "kv"})
    obs = (F.Observation("tier", F.Expr("l_crit", "s"), 200000.0, 20000.0),)
    p = F.Problem((F.Unknown("batch", 1, 1e5, prior_mean=100.0, prior_sigma=20.0), F.Unknown("kv", 10, 1e8)),
                  {"s": sc}, obs)
    r = F.fit(p, starts=4, profile=False)
    assert [u.status for u in r.unknowns] == ["prior only", "prior only"]
    kv = r.estimate("kv")
    assert kv.estimate == pytest.approx(70e9 * 2 / (100 * 200000.0), rel=1e-3)
    assert math.isfinite(kv.sigma) and kv.sigma / kv.estimate == pytest.approx(math.hypot(0.1, 0.2), rel=0.05)


def test_bounds_respected_and_flagged():
    """Data that want bw_eff = 2 (twice the roofline) leave it at its upper bound 1, flagged."""
    sc = F.Scenario(HW, MOE, rc.Workload(batch=8.0, context=1000.0), bind={"bw_eff": "eff"})
    trees = F.apply_knobs((HW, MOE, rc.Workload(batch=8.0, context=1000.0)), {"bw_eff": 2.0})
    fast = float(rc.tokens_per_second_per_user(*trees))
    p = F.Problem((F.Unknown("eff", 0.01, 1.0),), {"s": sc},
                  (F.Observation("user", F.Expr("tokens_per_s_per_user", "s"), fast, 0.01 * fast),))
    r = F.fit(p, starts=3, profile=False)
    u = r.estimate("eff")
    assert 0.01 <= u.estimate <= 1.0 and u.estimate == pytest.approx(1.0, abs=1e-4)
    assert u.at_bound == "upper"
    assert any("upper bound" in w for w in r.warnings)


def test_profile_interval_asymmetric_for_a_ratio():
    """tokens/s per user ∝ 1/(W + B·L·b): a wide log-scale unknown gets an asymmetric profile interval
    that brackets the estimate and agrees with the linearized one to first order."""
    sc = F.Scenario(HW, DENSE, rc.Workload(batch=32.0, context=1.0), bind={"context": "ctx"})
    trees = (HW, DENSE, rc.Workload(batch=32.0, context=30000.0))
    y = float(rc.tokens_per_second_per_user(*trees))
    p = F.Problem((F.Unknown("ctx", 10, 1e7),), {"s": sc},
                  (F.Observation("user", F.Expr("tokens_per_s_per_user", "s"), y, 0.3 * y),))
    r = F.fit(p, starts=2, profile=True)
    u = r.estimate("ctx")
    assert u.estimate == pytest.approx(30000.0, rel=1e-4)
    lo, hi = u.interval
    assert u.interval_kind == "profile" and lo < u.estimate < hi
    assert u.asymmetric and (hi - u.estimate) > 1.25 * (u.estimate - lo)
    deltas = dict(u.profile)
    assert min(deltas.values()) == pytest.approx(0.0, abs=1e-8)


def test_validation_errors():
    sc = F.Scenario(HW, MOE, rc.Workload(), bind={"batch": "nope"})
    with pytest.raises(ValueError, match="undefined unknown"):
        F.Problem((F.Unknown("b", 1, 10),), {"s": sc}, ())
    with pytest.raises(ValueError, match="lower bound"):
        F.Unknown("b", 10, 1)
    with pytest.raises(KeyError, match="unknown knob"):
        F.apply_knobs((HW, MOE, rc.Workload()), {"bandwidth": 1.0})
    assert "batch_per_chip" in F.knob_names() and "l_crit" in F.quantity_names()


def test_fit_latency_is_core_latency_under_speculative_decoding():
    """Fit's latency_per_token is core's latency (T_step/τ), not T_step: with k = 3 drafted tokens at
    acceptance 0.7, τ = (1 − 0.7⁴)/(1 − 0.7) = 2.533 accepted tokens per step (closed form)."""
    wl = rc.Workload(batch=64.0, context=4096.0, spec_k=3.0, spec_alpha=0.7)
    tau = (1.0 - 0.7**4) / (1.0 - 0.7)
    latency = F.QUANTITIES["latency_per_token"][0](HW, MOE, wl)
    assert float(latency) == pytest.approx(float(rc.t_step(HW, MOE, wl)) / tau, rel=1e-12)
    assert float(latency) == pytest.approx(float(rc.latency(HW, MOE, wl)), rel=1e-12)
    per_user = F.QUANTITIES["tokens_per_s_per_user"][0](HW, MOE, wl)
    assert float(latency) * float(per_user) == pytest.approx(1.0, rel=1e-12)


def test_prefill_quantities_are_registered():
    """Input-token quantities come from core.prefill, by name (no guessing inside try/except)."""
    for name in ("cost_per_mtok_input", "ttft", "input_tokens_per_s_per_replica",
                 "input_tokens_per_s_per_chip", "output_input_price_ratio"):
        assert name in F.QUANTITIES, name
    wl = rc.Workload(prompt=2048.0, prefill_batch=4.0)
    per_chip = F.QUANTITIES["input_tokens_per_s_per_chip"][0](HW, MOE, wl)
    per_replica = F.QUANTITIES["input_tokens_per_s_per_replica"][0](HW, MOE, wl)
    assert float(per_chip) * 8.0 == pytest.approx(float(per_replica), rel=1e-12)


def test_a_solver_owns_its_compiled_programs_and_reuses_them_for_new_data():
    """Refits of one problem structure on new data reuse one compiled program, held by the Solver
    (no module-level cache): the same answer as a fresh solver, one program in each."""
    sc = F.Scenario(HW, MOE, rc.Workload(batch=1.0, context=5000.0),
                    bind={"batch_per_chip": "seqs", "bw_eff": "eff"})
    p, rel = _problem([F.Unknown("seqs", 1, 4000), F.Unknown("eff", 0.01, 1.0)], sc,
                      [("user", "tokens_per_s_per_user", {}), ("chip", "tokens_per_s_per_chip", {})], 0.03)
    truth = {"seqs": 90.0, "eff": 0.3}
    shared, fresh = F.Solver(), F.Solver()
    first = F.fit(_with_data(p, truth, rel, 0), starts=4, profile=False, solver=shared)
    again = F.fit(_with_data(p, truth, rel, 1), starts=4, profile=False, solver=shared)
    alone = F.fit(_with_data(p, truth, rel, 1), starts=4, profile=False, solver=fresh)
    assert len(shared._programs) == 1 and len(fresh._programs) == 1
    assert first.estimate("seqs").estimate != again.estimate("seqs").estimate
    assert again.estimate("seqs").estimate == alone.estimate("seqs").estimate
