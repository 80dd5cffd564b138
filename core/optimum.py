"""Closed forms of the optimum (SPEC "Derived quantities").

* crossover batch  ``B_x   = N_total·w / (BW·N_active/C − kv_read)``  (+inf: no crossover)
* capacity batch   ``B_max = (M·n − N_total·w) / kv_store``
* SLO batch        ``B_slo``: the largest B with T_step(B) ≤ SLO
* optimal batch    ``B* = min(B_x, B_max, B_slo)`` and the binding constraint

A replica must hold at least one sequence: where ``B_max < 1`` or ``B_slo < 1``
the point is *infeasible* and B* (with everything evaluated at it) is NaN.

Everything evaluated *at* B* uses T_memory, never ``max()``: B* ≤ B_x, so the
step there is memory-bound (or exactly balanced), and the derivatives of the
optimum flow through one smooth closed form per binding constraint.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from . import roofline as rl
from .quantities import BINDINGS  # noqa: F401  (code words: the registry)
from .specs import Hardware, Model, Workload

#: Binding-constraint codes returned by :func:`binding`.
CROSSOVER, CAPACITY, SLO, INFEASIBLE = 0, 1, 2, 3


def _safe_div(num: jax.Array, den: jax.Array, where_bad: float = jnp.inf) -> jax.Array:
    """num/den where den > 0, else ``where_bad``; gradients stay finite (double-where)."""
    ok = den > 0
    return jnp.where(ok, num / jnp.where(ok, den, 1.0), where_bad)


def compute_slope(hw: Hardware, model: Model, wl: Workload | None = None) -> jax.Array:
    """dT_compute/dB = (k+1)·(N_active + attn_flops/2) / C, s per sequence (seeds: N_active/C).

    Without ``wl``: the seeds' N_active/C (no attention, no drafting).
    """
    if wl is None:
        return model.n_active / hw.replica_macs
    return rl.macs_per_seq(model, wl) / hw.replica_macs


def kv_slope(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """dT_memory/dB = (kv_read·kv_replicas + state)/BW, s per sequence (see rl.kv_read_total)."""
    return rl.kv_read_total(hw, model, wl) / hw.replica_bw




def _step(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """T_step of the closed forms: the roofline's with every expert copy read (saturated)."""
    kv = wl.batch * rl.kv_read_total(hw, model, wl)
    t_m = (rl.weight_read_bytes(hw, model) + kv) / hw.replica_bw
    return rl.combine(rl.t_compute(hw, model, wl), t_m, rl.t_comm(hw, model, wl), hw.overlap)


def _b_x_memory(hw: Hardware, model: Model, wl: Workload, flat_bw: jax.Array) -> jax.Array:
    """Batch where the memory line meets a zero-intercept line of slope flat_bw/BW."""
    den = flat_bw - rl.kv_read_total(hw, model, wl)
    return _safe_div(rl.weight_read_bytes(hw, model), den)


def b_x(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Crossover ("knee") batch: where compute becomes the binding resource; +inf if never.

    Seeds: N_total·w / (BW·N_active/C − kv_read), T_compute = T_memory. With communication
    (T_comm = a_k + s_k·B) overlapped (overlap = 1) the knee is where compute overtakes both
    the memory and the comm line: max(B_x(memory), a_k/(s_c − s_k)); with a latency-free link
    whose slope exceeds compute's, the flat line is comm's. Serialized or blended (overlap < 1):
    the memory crossover (beyond it cost only falls by the comm latency amortized, a_k/B).
    """
    c_bw = hw.replica_bw * rl.macs_per_seq(model, wl) / hw.replica_macs  # BW·s_c
    s_k = rl.comm_slope(hw, model, wl)
    a_k = rl.comm_intercept(hw, model)
    full = hw.overlap >= 1.0
    k_bw = jnp.where(full & (a_k <= 0), hw.replica_bw * s_k, 0.0)
    bx_m = _b_x_memory(hw, model, wl, jnp.maximum(c_bw, k_bw))
    s_c = rl.macs_per_seq(model, wl) / hw.replica_macs
    bx_k = jnp.where(full & (a_k > 0), _safe_div(a_k, s_c - s_k), 0.0)
    return jnp.maximum(bx_m, bx_k)


def b_x_kv_free(hw: Hardware, model: Model) -> jax.Array:
    """Crossover batch with KV neglected: (C/BW)·(N_total·w/N_active) — "300 × inverse sparsity".

    With replicated weights, × their copies (no attention, no drafting, no comm).
    """
    balance = hw.replica_macs / hw.replica_bw
    return balance * model.sparsity * model.bytes_per_weight * rl.weight_copies(hw, model)


def b_max(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Capacity batch (M·n − weights stored)/(kv_store·kv_replicas); ≤ 0 when weights do not fit."""
    free = hw.replica_capacity - rl.weight_store_bytes(hw, model)
    kv = rl.kv_store_total(hw, model, wl)
    return jnp.where(kv > 0, _safe_div(free, kv), jnp.where(free >= 0, jnp.inf, -jnp.inf))


def _lines(hw: Hardware, model: Model, wl: Workload):
    """(intercept, slope) of T_compute, T_memory, T_comm as affine functions of B (saturated)."""
    s_c = compute_slope(hw, model, wl)
    c = (jnp.zeros_like(s_c), s_c)
    m = (rl.weight_read_bytes(hw, model) / hw.replica_bw, kv_slope(hw, model, wl))
    k = (rl.comm_intercept(hw, model), rl.comm_slope(hw, model, wl))
    return c, m, k


def _solve(budget: jax.Array, a: jax.Array, s: jax.Array) -> jax.Array:
    """Largest B with a + s·B ≤ budget (+inf if s = 0 and a ≤ budget, −inf if never)."""
    head = budget - a
    return jnp.where(s > 0, _safe_div(head, s), jnp.where(head >= 0, jnp.inf, -jnp.inf))


def _b_slo_memory(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Largest B with T_memory(B) ≤ SLO·τ: (SLO·τ·BW − weights)/kv_read."""
    finite = jnp.isfinite(wl.slo)  # no target: +inf, with NaN-free reverse-mode gradients
    budget = jnp.where(finite, wl.slo, 0.0) * rl.tokens_per_step(wl)
    head = budget * hw.replica_bw - rl.weight_read_bytes(hw, model)
    kv = rl.kv_read_total(hw, model, wl)
    value = jnp.where(kv > 0, _safe_div(head, kv), jnp.where(head >= 0, jnp.inf, -jnp.inf))
    return jnp.where(finite, value, jnp.inf)


def b_slo(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Largest B with T_step(B)/τ ≤ SLO; +inf without an SLO.

    T_step = overlap·max(c, m, k) + (1−overlap)·(max(c, m) + k) is the max over the six
    affine lines overlap·i + (1−overlap)·(j + k), i ∈ {c, m, k}, j ∈ {c, m}: B_slo is the
    smallest of their solutions (seeds: min(SLO·C/N_active, (SLO·BW − N_total·w)/kv_read)).
    """
    finite = jnp.isfinite(wl.slo)
    budget = jnp.where(finite, wl.slo, 0.0) * rl.tokens_per_step(wl)
    (ac, sc), (am, sm), (ak, sk) = _lines(hw, model, wl)
    o = hw.overlap
    has_comm = (ak > 0) | (sk > 0) | (o < 1.0)
    best = jnp.minimum(_solve(budget, ac, sc), _b_slo_memory(hw, model, wl))
    for ai, si in ((ac, sc), (am, sm), (ak, sk)):
        for aj, sj in ((ac, sc), (am, sm)):
            a = o * ai + (1.0 - o) * (aj + ak)
            s_ = o * si + (1.0 - o) * (sj + sk)
            best = jnp.where(has_comm, jnp.minimum(best, _solve(budget, a, s_)), best)
    return jnp.where(finite, best, jnp.inf)


def _code(bx: jax.Array, bm: jax.Array, bs: jax.Array) -> jax.Array:
    code = jnp.where(bx <= jnp.minimum(bm, bs), CROSSOVER, jnp.where(bm <= bs, CAPACITY, SLO))
    infeasible = (bm < 1.0) | (bs < 1.0)
    return jnp.where(infeasible, INFEASIBLE, code).astype(jnp.int8)


def binding(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Which constraint sets B*: 0 crossover, 1 capacity, 2 slo, 3 infeasible (int8).

    Ties go to the earlier code (crossover, then capacity, then slo).
    """
    return _code(b_x(hw, model, wl), b_max(hw, model, wl), b_slo(hw, model, wl))


def _optimum(hw: Hardware, model: Model, wl: Workload) -> tuple[jax.Array, jax.Array]:
    """(B*, infeasible): B* selected by the binding constraint, 1.0 where infeasible.

    The value is *selected* rather than taken with ``min``, so its derivative is
    the binding closed form's own (no 0.5/0.5 tie split); infeasible points get a
    harmless 1.0 so that masking them keeps reverse-mode gradients NaN-free.
    """
    bx, bm, bs = b_x(hw, model, wl), b_max(hw, model, wl), b_slo(hw, model, wl)
    code = _code(bx, bm, bs)
    value = jnp.where(code == CROSSOVER, bx, jnp.where(code == CAPACITY, bm, bs))
    infeasible = code == INFEASIBLE
    return jnp.where(infeasible, 1.0, value), infeasible


def at_b_star(hw: Hardware, model: Model, wl: Workload) -> dict[str, jax.Array]:
    """Everything evaluated at B*, from ONE evaluation of the optimum (NaN where infeasible).

    Keys: ``b_star``, ``step_at_b_star`` (T_step, s), ``latency_at_b_star`` (T_step/τ, s),
    ``throughput_at_b_star`` (B*·τ/T_step, tokens/s), ``cost_at_b_star`` ($/token).
    Seeds: T_step(B*) = T_memory(B*), since B* ≤ B_x.
    """
    b, infeasible = _optimum(hw, model, wl)
    step = _step(hw, model, _at(wl, b))
    tau = rl.tokens_per_step(wl)
    out = {
        "b_star": b,
        "step_at_b_star": step,
        "latency_at_b_star": step / tau,
        "throughput_at_b_star": b * tau / step,
        "cost_at_b_star": step * hw.replica_price / (b * tau),
    }
    return {k: jnp.where(infeasible, jnp.nan, v) for k, v in out.items()}


def _at(wl: Workload, batch: jax.Array) -> Workload:
    return wl.replace(batch=batch)


def b_star(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Optimal batch B* = min(B_x, B_max, B_slo); NaN where infeasible."""
    b, infeasible = _optimum(hw, model, wl)
    return jnp.where(infeasible, jnp.nan, b)


def step_at_b_star(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """T_step at B*, s (seeds: T_memory(B*), since B* ≤ B_x)."""
    return at_b_star(hw, model, wl)["step_at_b_star"]


def latency_at_b_star(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Per-token latency at B*: T_step(B*)/τ (seeds: T_memory(B*)), s."""
    return at_b_star(hw, model, wl)["latency_at_b_star"]


def throughput_at_b_star(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Output tokens/s of a replica at B*: B*·τ/T_step(B*)."""
    return at_b_star(hw, model, wl)["throughput_at_b_star"]


def cost_at_b_star(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Cost per output token at B*, $: T_step(B*)·p·n/(B*·τ)."""
    return at_b_star(hw, model, wl)["cost_at_b_star"]


def cost_per_mtok_at_b_star(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Cost per million output tokens at B*, $/Mtok."""
    return 1e6 * cost_at_b_star(hw, model, wl)


def latency_floor(hw: Hardware, model: Model) -> jax.Array:
    """Step time as B → 0: weights read (all copies) / BW, with the comm latency by the seeds' rule, s.

    Seeds: N_total·w / BW. Per token, divide by τ (speculative decoding).
    """
    t_m = rl.weight_read_bytes(hw, model) / hw.replica_bw
    t_k = rl.comm_intercept(hw, model)
    return rl.combine(jnp.zeros_like(t_m), t_m, t_k, hw.overlap)


def cost_floor(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Cost per token as B → ∞: [overlap·max(s_c, s_m, s_k) + (1−overlap)(max(s_c, s_m) + s_k)]·p·n/τ, $.

    Seeds: max(N_active/C, kv_read/BW)·p·n.
    """
    s_c, s_m, s_k = compute_slope(hw, model, wl), kv_slope(hw, model, wl), rl.comm_slope(hw, model, wl)
    slope = rl.combine(s_c, s_m, s_k, hw.overlap)
    return slope * hw.replica_price / rl.tokens_per_step(wl)


def _context_for(model: Model, per_seq: jax.Array, coef: jax.Array,
                 coef_local: jax.Array) -> jax.Array:
    """Smallest context L with coef·L_eff + coef_local·min(L, W_local) ≥ ``per_seq`` (+inf if never).

    The local (sliding-window) layers of a hybrid model are taken at their full
    window, which holds whenever the answer exceeds that window (every catalog
    model: windows are 128–1024 tokens).
    """
    local_finite = jnp.isfinite(model.local_window)
    local_bytes = jnp.where(
        local_finite,
        coef_local * jnp.where(local_finite, model.local_window, 0.0),
        0.0,
    )
    b_global = coef + jnp.where(local_finite, 0.0, coef_local)
    tokens = jnp.maximum(_safe_div(per_seq - local_bytes, b_global), 0.0)  # L_eff needed
    cap = jnp.minimum(model.window, model.top_k)
    c = jnp.asarray(model.sqrt_coeff)
    c_on = jnp.isfinite(c)
    by_sqrt = jnp.where(c_on, jnp.square(tokens / jnp.where(c_on, c, 1.0)), 0.0)
    return jnp.where(tokens > cap, jnp.inf, jnp.maximum(tokens, by_sqrt))


def l_crit(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Critical context where KV traffic equals weight traffic at batch B: N_total·w/(B·b), tokens.

    A linear-attention state s per sequence counts as KV: (N_total·w/B − s)/b (0 if s alone
    reaches the weights).

    The weight-bound → KV-bound flip behind long-context price tiers. Extended: weights read
    (all copies) against B·kv_read·kv_replicas.
    """
    r = rl.kv_replicas(hw, model)
    per_seq = rl.weight_read_bytes(hw, model) / wl.batch - model.state_bytes_per_seq
    return _context_for(model, per_seq,
                        model.kv_bytes_per_token * r, model.kv_bytes_per_token_local * r)


def l_bal(hw: Hardware, model: Model, wl: Workload | None = None) -> jax.Array:
    """Balanced context where the KV slope equals the compute slope: BW·N_active/(C·b), tokens.

    With a linear-attention state s per sequence: (BW·N_active/C − s)/b.

    Extended (with ``wl`` for k_spec): attention FLOPs grow with L too, so the KV slope
    per cached token is kv_replicas·b − BW·(k+1)·a/(2C); +inf when attention compute grows
    at least as fast as KV traffic.
    """
    k1 = 1.0 if wl is None else jnp.asarray(wl.spec_k) + 1.0
    r = rl.kv_replicas(hw, model)
    flop_bytes = hw.replica_bw * k1 / (2.0 * hw.replica_macs)  # bytes-equivalent per FLOP
    coef = model.kv_bytes_per_token * r - flop_bytes * model.attn_flops_per_ctx_token
    coef_local = (model.kv_bytes_per_token_local * r
                  - flop_bytes * model.attn_flops_per_ctx_token_local)
    target = hw.replica_bw * (k1 * model.n_active) / hw.replica_macs - model.state_bytes_per_seq
    return _context_for(model, target, coef, coef_local)


def cost_ratio_b1(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Cost per token at B = 1 over cost at B* ("a thousand times worse" unbatched)."""
    return rl.cost_per_token(hw, model, _at(wl, jnp.ones_like(wl.batch))) / cost_at_b_star(
        hw, model, wl
    )
