"""rooflax.core — pure JAX: parameters as pytrees, the roofline, cost, optimum and sensitivity.

Arrays in, arrays out; no I/O, no process-wide state. Importing this package leaves JAX's
``jax_enable_x64`` as it is (off by default: JAX computes in float32 and truncates a float64
request to float32 with a warning). Queries, sensitivities and fits are meant to run in
float64: call :func:`enable_x64` once (idempotent) before building float64 leaves — the
``rooflax`` CLI, the sweep runner (and each of its block tasks, in every Dask worker),
the benchmarks and the tests do. Pass float32 leaves (``tree.astype(jnp.float32)``) to
evaluate big grids in float32.
"""

from . import disagg, optimum, parallel, prefill, roofline, sensitivity
from .optimum import (
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
from .roofline import (
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
from .sensitivity import KNOBS, OUTPUTS, REASONS, elasticity, sensitivities
from .specs import (
    PRECISION_BYTES,
    Hardware,
    Model,
    Workload,
    along,
    enable_x64,
    jit_with_constants,
    precision_bytes,
    stack,
)

__all__ = [
    "BINDINGS", "KNOBS", "OUTPUTS", "PRECISION_BYTES", "REASONS", "REGIMES",
    "Hardware", "Model", "Workload", "along", "enable_x64", "jit_with_constants", "b_max", "b_slo", "b_star", "b_x", "b_x_kv_free",
    "binding", "compute_memory_ratio", "cost_at_b_star", "cost_floor", "cost_per_mtok",
    "cost_per_mtok_at_b_star", "cost_per_token", "cost_ratio_b1", "elasticity", "kv_read_bytes",
    "kv_share", "kv_store_bytes", "l_bal", "l_crit", "l_eff", "l_store", "latency",
    "latency_at_b_star", "latency_floor", "mfu", "optimum", "precision_bytes", "regime",
    "roofline", "sensitivities", "sensitivity", "stack", "t_compute", "t_memory", "t_step",
    "throughput", "throughput_at_b_star", "tokens_per_second_per_user",
    "t_comm", "tokens_per_step", "attn_flops", "macs_per_seq", "step_at_b_star", "parallel",
    "prefill", "disagg",
]
