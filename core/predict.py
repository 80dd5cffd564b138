"""The predicted decode step: the roofline bound plus the physics of a real serving engine.

:func:`rooflax.core.roofline.t_step` is the exact *bound* (the seeds' roofline). A real engine
adds, each term here a leaf of :class:`Engine` with a neutral default (all defaults: the
prediction equals the bound):

* **kernels in sequence** (``per_kernel``): dense GEMMs, routed experts and attention are each
  bound by their own resource and run one after another;
* **fixed step time** — kernel launches and synchronization per decoder layer (``t_layer``, s per
  layer; ``t_moe_layer`` more per MoE layer; ``t_dequant_layer`` more per layer where the chip
  dequantizes weights it cannot multiply natively, ``dequant``) plus the engine's per-step scheduling (``t_overhead``,
  s per step) and per-sequence host/sampling work (``t_seq``, s per running sequence per step);
* **expected maximum of touched experts over EP ranks** (``expert_max``: 0 mean, 1 max) — the
  step waits for the busiest rank (:func:`expected_max_touched`);
* **realized efficiency** of weight streaming (``weight_bw_eff``), KV streaming (``kv_bw_eff``)
  and GEMMs (``gemm_eff``; ``prefill_eff`` for the interleaved prompts) — fractions of the hardware's bandwidth/FLOPS (callers pick the
  weight-streaming value by the weights' precision);
* **prefill interleaved in aggregated serving** — each step also prefills the B/osl prompts
  that start, ``wl.prompt`` tokens each (``osl``: output tokens per request; inf: off), without
  the embedding lookup and LM head of all but the last token (``prefill_skip``);
* **running batch limited by KV capacity** — at most ``(kv_capacity_fraction·M·n − weights)/KV
  per sequence`` sequences run; the rest queue (``kv_capacity_fraction``; inf: no limit).

Pure JAX; every leaf broadcasts and is differentiable.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln
from jax.typing import ArrayLike

from . import prefill
from . import roofline as rl
from .specs import Hardware, Model, Workload, _Leaves

#: Largest experts-per-rank count :func:`expected_max_touched` sums over (grid size); beyond it
#: (or on one rank) the mean is used.
MAX_EXPERTS_PER_RANK = 256


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Engine(_Leaves):
    """Serving-engine physics on top of the roofline; the defaults are neutral (= the bound)."""

    t_layer: ArrayLike = 0.0
    """Fixed time per decoder layer per step (kernel launches, synchronization), s."""
    t_moe_layer: ArrayLike = 0.0
    """Extra fixed time per MoE layer per step (router, top-k, dispatch/combine kernels), s."""
    t_overhead: ArrayLike = 0.0
    """Fixed time per step (scheduling, sampling, host work), s."""
    t_dequant_layer: ArrayLike = 0.0
    """Extra fixed time per decoder layer where the weights are dequantized before every GEMM
    (weight-only quantization: a format the chip does not multiply natively, such as mxfp4 on
    Hopper), s per layer."""
    dequant: ArrayLike = 0.0
    """1 where the weights are stored in a format the chip cannot multiply natively (each GEMM
    dequantizes them first), 0 where every format is native."""
    t_seq: ArrayLike = 0.0
    """Time per running sequence per step (scheduler bookkeeping, sampling, detokenization,
    block-table and metadata updates — host and small-kernel work ∝ batch), s per sequence."""
    weight_bw_eff: ArrayLike = 1.0
    """Realized fraction of the replica bandwidth when streaming weights (by precision)."""
    kv_bw_eff: ArrayLike = 1.0
    """Realized fraction of the replica bandwidth when streaming KV."""
    gemm_eff: ArrayLike = 1.0
    """Realized fraction of the replica's FLOPS in decode GEMMs."""
    attn_eff: ArrayLike = 1.0
    """Realized fraction of the replica's FLOPS in decode attention kernels (often 16-bit)."""
    prefill_eff: ArrayLike = 1.0
    """Realized fraction of the replica's FLOPS in the interleaved prefill (large GEMMs)."""
    per_kernel: ArrayLike = 0.0
    """0: the seeds' max(T_compute, T_memory) over the whole step; 1: Σ over kernel classes (dense
    GEMMs, routed experts, attention) of each one's max — kernels run in sequence."""
    expert_max: ArrayLike = 0.0
    """0: experts read = mean touched per rank; 1: the expected maximum over EP ranks."""
    prefill_skip: ArrayLike = 0.0
    """Weights of N_active a prompt's tokens never multiply in prefill: the input embedding (a
    lookup) and the LM head (logits of the last token only), weights."""
    osl: ArrayLike = jnp.inf
    """Output tokens per request in aggregated serving (B/osl prompts start per step); inf: off."""
    kv_capacity_fraction: ArrayLike = jnp.inf
    """Fraction of HBM the engine gives weights + KV; running batch ≤ what fits (inf: no limit)."""


def _binom_logpmf(x: jax.Array, m: jax.Array, p: jax.Array) -> jax.Array:
    """log P(X = x), X ~ Binomial(m, p), x on a grid (continuous m allowed), p in (0, 1)."""
    p = jnp.clip(p, 1e-12, 1.0 - 1e-12)
    xm = jnp.minimum(x, m)
    return (gammaln(m + 1.0) - gammaln(xm + 1.0) - gammaln(m - xm + 1.0)
            + xm * jnp.log(p) + (m - xm) * jnp.log1p(-p))


def expected_max_touched(p: ArrayLike, m: ArrayLike, ranks: ArrayLike) -> jax.Array:
    """E[max over ``ranks`` ranks of the experts touched on a rank], experts.

    Each rank holds ``m`` experts, each touched independently with probability ``p``:
    X_r ~ Binomial(m, p) i.i.d. and E[max_r X_r] = Σ_{x=0}^{m−1} (1 − F(x)^ranks), F the
    binomial CDF (exact for independent experts; top-k routing without replacement makes them
    slightly negatively correlated). ``ranks`` = 1 gives the mean m·p.
    """
    p, m, ranks = jnp.asarray(p), jnp.asarray(m), jnp.asarray(ranks)
    shape = jnp.broadcast_shapes(p.shape, m.shape, ranks.shape)
    x = jnp.arange(MAX_EXPERTS_PER_RANK, dtype=p.dtype if p.dtype != jnp.int32 else float)
    x = x.reshape((1,) * len(shape) + (-1,))
    pe, me, re_ = p[..., None], m[..., None], ranks[..., None]
    pmf = jnp.where(x <= me, jnp.exp(_binom_logpmf(x, me, pe)), 0.0)
    cdf = jnp.clip(jnp.cumsum(pmf, axis=-1), 0.0, 1.0)
    terms = jnp.where(x < me, 1.0 - jnp.power(cdf, re_), 0.0)
    return jnp.sum(terms, axis=-1)


def touched_fraction(hw: Hardware, model: Model, wl: Workload, eng: Engine) -> jax.Array:
    """Fraction of each rank's routed experts read per step: mean (seeds) or busiest rank's."""
    mean = rl.experts_touched(hw, model, wl)
    experts = model.experts_per_token / jnp.where(model.expert_activation > 0,
                                                  model.expert_activation, 1.0)
    ranks = 1.0 + hw.moe_ep * (jnp.maximum(hw.ep, 1.0) - 1.0)  # tensor-parallel experts: no imbalance
    per_rank = jnp.maximum(experts / ranks, 1.0)
    busiest = expected_max_touched(mean, jnp.minimum(per_rank, MAX_EXPERTS_PER_RANK), ranks) / per_rank
    busiest = jnp.where((ranks > 1.0) & (per_rank <= MAX_EXPERTS_PER_RANK), busiest, mean)
    return mean + eng.expert_max * (busiest - mean)


def kv_batch_limit(hw: Hardware, model: Model, wl: Workload, eng: Engine) -> jax.Array:
    """Sequences whose KV fits: (fraction·M·n − weights stored)/(KV kept per sequence), inf if off."""
    on = jnp.isfinite(eng.kv_capacity_fraction)
    frac = jnp.where(on, eng.kv_capacity_fraction, 1.0)
    free = frac * hw.replica_capacity - rl.weight_store_bytes(hw, model)
    per_seq = rl.kv_store_bytes(model, wl) * rl.kv_replicas(hw, model)
    limit = rl._safe_div(jnp.maximum(free, 0.0), per_seq, jnp.inf)
    return jnp.where(on, jnp.maximum(limit, 1.0), jnp.inf)


def running_batch(hw: Hardware, model: Model, wl: Workload, eng: Engine) -> jax.Array:
    """Sequences decoded per step: min(B, KV-capacity limit); the rest queue."""
    return jnp.minimum(wl.batch, kv_batch_limit(hw, model, wl, eng))


def prefill_macs(model: Model, wl: Workload, eng: Engine) -> jax.Array:
    """MACs of the prompts interleaved in one step: (B/osl)·(P·(N_active − skip) + A(P)/2), MAC
    (``skip``: ``prefill_skip``, the embedding lookup and the LM head a prompt token never runs;
    A(P): the prompt's attention FLOPs, :func:`rooflax.core.prefill.prompt_attn_flops`, at the
    decode step's attention FLOPs per cached token — chunks prefilled among decodes attend to
    their cached prefix as decode does (MLA absorbed): with MLA's un-absorbed prefill value the
    leave-one-system-out median of the calibration went 17.2% → 17.4%)."""
    starts = rl._safe_div(jnp.asarray(wl.batch), jnp.asarray(eng.osl), 0.0)
    starts = jnp.where(jnp.isfinite(eng.osl), starts, 0.0)
    attn = prefill.prompt_attn_flops(model, wl.prompt, model.attn_flops_per_ctx_token)
    return starts * (wl.prompt * (model.n_active - eng.prefill_skip) + attn / 2.0)


def fixed_time(model: Model, eng: Engine, batch: ArrayLike = 0.0) -> jax.Array:
    """t_layer·layers + t_moe_layer·moe_layers + t_dequant_layer·dequant·layers + t_overhead
    + t_seq·batch, s per step
    (``batch``: running sequences of one scheduler — an attention-DP rank, B/dp; the
    per-sequence part is fixed per sequence, not per token)."""
    return ((eng.t_layer + eng.t_dequant_layer * eng.dequant) * model.layers
            + eng.t_moe_layer * model.moe_layers + eng.t_overhead + eng.t_seq * batch)


def _kernel_times(hw: Hardware, model: Model, wl: Workload, eng: Engine):
    """(compute, memory) times of the three kernel classes of a decode step, s, each (c, m):

    dense GEMMs (attention projections, dense FFN, shared experts, LM head), routed-expert GEMMs,
    attention over the cache. Prefill MACs of the interleaved prompts go with the dense GEMMs.
    """
    spec = jnp.asarray(wl.spec_k) + 1.0
    f = model.expert_fraction
    routed_active = model.n_total * f * jnp.where(f > 0, model.expert_activation, 0.0)
    c_attn = wl.batch * spec * rl.attn_flops(model, wl) / 2.0
    c_exp = wl.batch * spec * routed_active
    c_dense = wl.batch * spec * (model.n_active - routed_active)
    touched = jnp.where(f > 0, touched_fraction(hw, model, wl, eng), 1.0)
    m_dense = model.weight_bytes * (1.0 - f) * hw.dp / (hw.replica_bw * eng.weight_bw_eff)
    m_exp = model.weight_bytes * f * hw.expert_replicas * touched / (hw.replica_bw * eng.weight_bw_eff)
    m_attn = wl.batch * rl.kv_read_bytes(model, wl) * rl.kv_replicas(hw, model) / (
        hw.replica_bw * eng.kv_bw_eff)
    macs = hw.replica_macs * eng.gemm_eff
    c_pre = prefill_macs(model, wl, eng) / (hw.replica_macs * eng.prefill_eff)
    c_attn = c_attn / (hw.replica_macs * eng.attn_eff)
    return (c_dense / macs + c_pre, m_dense), (c_exp / macs, m_exp), (c_attn, m_attn)


def step_time(hw: Hardware, model: Model, wl: Workload, eng: Engine) -> jax.Array:
    """Predicted decode step, s: realized compute/memory/comm combined + fixed time.

    ``per_kernel`` 0 (the seeds): one max(ΣT_compute, ΣT_memory); 1: each kernel class bound by
    its own resource, Σ max(c_i, m_i) (kernels run one after another). With ``Engine()`` (every
    leaf neutral) this equals :func:`rooflax.core.roofline.t_step`.
    """
    wl = wl.replace(batch=running_batch(hw, model, wl, eng))
    kernels = _kernel_times(hw, model, wl, eng)
    t_c = sum(k[0] for k in kernels)
    t_m = sum(k[1] for k in kernels)
    seeds = jnp.maximum(t_c, t_m)
    per_kernel = sum(jnp.maximum(c, m) for c, m in kernels)
    cm = seeds + eng.per_kernel * (per_kernel - seeds)
    t_k = rl.t_comm(hw, model, wl)
    both = hw.overlap * jnp.maximum(cm, t_k) + (1.0 - hw.overlap) * (cm + t_k)
    # per-sequence host work runs on each attention-DP rank's own scheduler: B/dp sequences each
    return both + fixed_time(model, eng, wl.batch / hw.dp)


def latency(hw: Hardware, model: Model, wl: Workload, eng: Engine) -> jax.Array:
    """Predicted time per output token of one user (TPOT), s: step_time/τ."""
    return step_time(hw, model, wl, eng) / rl.tokens_per_step(wl)


def fits(hw: Hardware, model: Model) -> jax.Array:
    """True where the weights stored fit the replica's HBM (M·n ≥ weights): a step exists."""
    return rl.weight_store_bytes(hw, model) <= hw.replica_capacity


#: What the prediction reports at a workload's batch, each a registry quantity (units there).
OUTPUTS = ("t_step", "latency", "tokens_per_second_per_user", "throughput", "cost_per_token",
            "cost_per_mtok")


def outputs(hw: Hardware, model: Model, wl: Workload, eng: Engine) -> dict[str, jax.Array]:
    """The prediction at the workload's batch B: the step (s), TPOT = step/τ (s), tokens/s per
    user τ/step, output tokens/s of the replica R·τ/step and $ per output token
    step·price·n/(R·τ) (and per million), R = :func:`running_batch` (what does not fit queues);
    NaN where the weights do not fit the replica (:func:`fits`): no step to predict."""
    step = jnp.where(fits(hw, model), step_time(hw, model, wl, eng), jnp.nan)
    tau = rl.tokens_per_step(wl)
    tokens = running_batch(hw, model, wl, eng) * tau
    cost = step * hw.replica_price / tokens
    return {"t_step": step, "latency": step / tau, "tokens_per_second_per_user": tau / step,
            "throughput": tokens / step, "cost_per_token": cost, "cost_per_mtok": 1e6 * cost}
