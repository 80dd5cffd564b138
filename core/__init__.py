"""rooflax.core — pure JAX: parameters as pytrees, the roofline, cost, optimum and sensitivity.

Arrays in, arrays out; no I/O. Importing this package turns on ``jax_enable_x64``
so that queries run in float64; pass float32 leaves (``tree.astype(jnp.float32)``)
to evaluate big grids in float32.
"""

import jax

jax.config.update("jax_enable_x64", True)

from . import disagg, optimum, parallel, prefill, roofline, sensitivity  # noqa: E402
from .optimum import (  # noqa: E402
    BINDINGS,
    b_max,
    b_slo,
    b_star,
    b_x,
    b_x_kv_free,
    binding,
    cost_at_b_star,
    cost_floor,
    cost_per_mtok_at_b_star,
    cost_ratio_b1,
    l_bal,
    l_crit,
    latency_at_b_star,
    latency_floor,
    step_at_b_star,
    throughput_at_b_star,
)
from .roofline import (  # noqa: E402
    REGIMES,
    attn_flops,
    compute_memory_ratio,
    cost_per_mtok,
    cost_per_token,
    kv_read_bytes,
    kv_share,
    kv_store_bytes,
    l_eff,
    l_store,
    latency,
    macs_per_seq,
    mfu,
    regime,
    t_comm,
    t_compute,
    t_memory,
    t_step,
    throughput,
    tokens_per_second_per_user,
    tokens_per_step,
)
from .sensitivity import KNOBS, OUTPUTS, REASONS, elasticity, sensitivities  # noqa: E402
from .specs import (  # noqa: E402
    PRECISION_BYTES,
    Hardware,
    Model,
    Workload,
    along,
    jit_with_constants,
    precision_bytes,
    stack,
)

__all__ = [
    "BINDINGS", "KNOBS", "OUTPUTS", "PRECISION_BYTES", "REASONS", "REGIMES",
    "Hardware", "Model", "Workload", "along", "jit_with_constants", "b_max", "b_slo", "b_star", "b_x", "b_x_kv_free",
    "binding", "compute_memory_ratio", "cost_at_b_star", "cost_floor", "cost_per_mtok",
    "cost_per_mtok_at_b_star", "cost_per_token", "cost_ratio_b1", "elasticity", "kv_read_bytes",
    "kv_share", "kv_store_bytes", "l_bal", "l_crit", "l_eff", "l_store", "latency",
    "latency_at_b_star", "latency_floor", "mfu", "optimum", "precision_bytes", "regime",
    "roofline", "sensitivities", "sensitivity", "stack", "t_compute", "t_memory", "t_step",
    "throughput", "throughput_at_b_star", "tokens_per_second_per_user",
    "t_comm", "tokens_per_step", "attn_flops", "macs_per_seq", "step_at_b_star", "parallel",
    "prefill", "disagg",
]
