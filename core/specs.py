"""Parameters as pytrees: ``Hardware``, ``Model`` and ``Workload``.

Each is a frozen dataclass registered with ``jax.tree_util.register_dataclass``:
every field is a leaf (a scalar or an array), so

* leaves broadcast against each other — a ``Hardware`` whose leaves have shape
  ``(H, 1, 1, 1)`` and a ``Workload`` whose ``batch`` has shape ``(1, 1, B, 1)``
  evaluate a whole grid in one call;
* ``jax.grad(f)(hw)`` returns a ``Hardware`` of sensitivities, one per knob.

We chose ``register_dataclass`` over ``equinox.Module`` (one dependency fewer,
same pytree behaviour, ``dataclasses.replace`` for edits) and over ``NamedTuple``
(field defaults, docstrings per field, no accidental tuple arithmetic).

All leaves are in SI units: bytes, bytes/s, MAC/byte, $/s, seconds, tokens.
The parametrization is the one of SPEC "Sensitivity": ``FLOPS = 2·c_over_bw·bw``
so ∂/∂bw holds the machine balance fixed; ``N_active = n_total / sparsity`` so
∂/∂sparsity holds N_total fixed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

#: Bytes per element of the precisions rooflax knows. ``mxfp4`` is 4 bits plus
#: one 8-bit scale per 32 elements (4.25 bits); ``nvfp4`` is 4 bits plus one fp8 scale per 16
#: elements (4.5 bits).
PRECISION_BYTES: dict[str, float] = {
    "fp32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "fp6": 0.75,
    "fp4": 0.5,
    "int4": 0.5,
    "mxfp4": 4.25 / 8,
    "nvfp4": 4.5 / 8,
}

SECONDS_PER_HOUR = 3600.0  # s/h


def enable_x64() -> None:
    """Turn on JAX float64 (``jax_enable_x64``) for this process; idempotent.

    rooflax never flips it on import: the entry points call this (the CLI, the sweep runner and
    each of its block tasks, benchmarks, the tests). Without it JAX computes in float32 and a
    float64 request (``astype(jnp.float64)``) is truncated to float32 with a warning.
    """
    if not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)


#: Other spellings of those precisions (PyTorch dtypes, engines' and tables' words) → the name
#: above; every reader canonicalizes through :func:`precision_name`.
PRECISION_ALIASES: dict[str, str] = {
    "float32": "fp32", "float": "fp32",
    "bfloat16": "bf16",
    "float16": "fp16", "half": "fp16",
    "float8_e4m3fn": "fp8", "float8": "fp8", "e4m3": "fp8", "fp8_e4m3": "fp8",
    "float4_e2m1": "fp4", "e2m1": "fp4",
}


def precision_name(precision: str) -> str:
    """The canonical name of a precision or one of its :data:`PRECISION_ALIASES` (any case);
    ValueError naming the known precisions."""
    text = str(precision).strip().lower()
    name = PRECISION_ALIASES.get(text, text)
    if name not in PRECISION_BYTES:
        known = ", ".join(PRECISION_BYTES)
        raise ValueError(f"unknown precision {precision!r}; expected one of: {known}")
    return name


def precision_bytes(precision: str) -> float:
    """Bytes per element for a precision name or alias (``"bf16"``, ``"bfloat16"``, ``"fp4"``, …)."""
    return PRECISION_BYTES[precision_name(precision)]


class _Leaves:
    """Shared helpers of the three parameter pytrees."""

    def __post_init__(self) -> None:
        # Lists and tuples of numbers become arrays (a list would otherwise be a sub-pytree).
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, list | tuple):
                object.__setattr__(self, field.name, np.asarray(value, dtype=float))

    def replace(self, **changes: Any):
        """A copy with some leaves changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def astype(self, dtype: Any):
        """Every leaf as a ``jnp`` array of ``dtype`` (float64 for queries, float32 for big grids)."""
        return jax.tree.map(lambda x: jnp.asarray(x, dtype=dtype), self)

    @property
    def shape(self) -> tuple[int, ...]:
        """The broadcast shape of all leaves."""
        return jnp.broadcast_shapes(*(jnp.shape(x) for x in jax.tree.leaves(self)))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Hardware(_Leaves):
    """One chip and the replica it belongs to.

    In the base model a replica of ``chips`` chips acts as one chip ``chips``
    times larger (FLOPS, bandwidth, capacity and price all scale with n).
    """

    bw: ArrayLike
    """HBM bandwidth of one chip, bytes/s."""
    c_over_bw: ArrayLike
    """Machine balance C/BW in MAC/byte, with C = FLOPS/2 (≈300 for H100 at fp8)."""
    capacity: ArrayLike
    """HBM capacity of one chip, bytes."""
    price: ArrayLike = 0.0
    """Price of one chip, $/s (catalog and configs say $/h: divide by 3600)."""
    chips: ArrayLike = 1.0
    """Chips serving one model replica (n)."""
    flops_eff: ArrayLike = 1.0
    """Achieved fraction of peak FLOPS (1 = the roofline bound)."""
    bw_eff: ArrayLike = 1.0
    """Achieved fraction of peak HBM bandwidth (1 = the roofline bound)."""
    # Extended model: interconnect and layout (core.parallel). Neutral defaults = the seeds'
    # "one big chip": a free link, no replication of weights or KV.
    link_bw: ArrayLike = jnp.inf
    """Scale-out/scale-up link bandwidth per chip, bytes/s, one direction (inf: free)."""
    link_eff: ArrayLike = 1.0
    """Achieved fraction of peak link bandwidth."""
    link_latency: ArrayLike = 0.0
    """Latency per collective message (one all-reduce, one dispatch or combine), s."""
    overlap: ArrayLike = 1.0
    """1: communication overlaps compute/memory (max); 0: serialized (sum); in between: a blend."""
    dp: ArrayLike = 1.0
    """Data-parallel attention groups in the replica; attention/dense TP degree = chips/dp."""
    expert_replicas: ArrayLike = 1.0
    """Copies of each routed expert in the replica (EP degree = chips/expert_replicas; >1 also
    for redundant experts, e.g. 288 slots for 256 experts: 1.125)."""
    moe_ep: ArrayLike = 1.0
    """1: routed experts are expert-parallel (all-to-all); 0: tensor-parallel (all-reduce)."""

    @classmethod
    def from_peak(
        cls,
        *,
        flops: ArrayLike,
        bw: ArrayLike,
        capacity: ArrayLike,
        price_per_hour: ArrayLike = 0.0,
        chips: ArrayLike = 1.0,
        flops_eff: ArrayLike = 1.0,
        bw_eff: ArrayLike = 1.0,
        **extended: ArrayLike,
    ) -> Hardware:
        """From datasheet numbers: dense peak FLOP/s, bytes/s, bytes, $/h per chip."""
        return cls(
            bw=bw,
            c_over_bw=jnp.asarray(flops) / 2.0 / jnp.asarray(bw),
            capacity=capacity,
            price=jnp.asarray(price_per_hour) / SECONDS_PER_HOUR,
            chips=chips,
            flops_eff=flops_eff,
            bw_eff=bw_eff,
            **extended,
        )

    # Replica-level resources (what the equations use). -----------------------
    @property
    def flops(self) -> jax.Array:
        """Peak dense FLOP/s of one chip: 2·c_over_bw·bw."""
        return 2.0 * self.c_over_bw * self.bw

    @property
    def replica_macs(self) -> jax.Array:
        """C of the replica, MAC/s, derated by ``flops_eff``."""
        return self.c_over_bw * self.bw * self.chips * self.flops_eff

    @property
    def replica_bw(self) -> jax.Array:
        """BW of the replica, bytes/s, derated by ``bw_eff``."""
        return self.bw * self.chips * self.bw_eff

    @property
    def replica_capacity(self) -> jax.Array:
        """M·n, bytes."""
        return self.capacity * self.chips

    @property
    def replica_price(self) -> jax.Array:
        """p·n, $/s."""
        return self.price * self.chips

    @property
    def replica_link_bw(self) -> jax.Array:
        """Achieved link bandwidth of one chip, bytes/s (link_bw·link_eff)."""
        return self.link_bw * self.link_eff

    @property
    def tp(self) -> jax.Array:
        """Tensor-parallel degree of attention and dense layers: chips/dp."""
        return self.chips / self.dp

    @property
    def ep(self) -> jax.Array:
        """Expert-parallel degree: chips/expert_replicas."""
        return self.chips / self.expert_replicas

    @property
    def price_per_hour(self) -> jax.Array:
        """Price of one chip, $/h."""
        return self.price * SECONDS_PER_HOUR


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Model(_Leaves):
    """A model as the roofline sees it.

    Attention kinds (SPEC "The decode step") are leaves too, so they can be swept:
    the number of cached tokens read per step is
    ``L_eff = min(L, window, top_k, sqrt_coeff·√L)`` and the number kept is
    ``L_store = min(L, window)``. ``inf`` switches a kind off: the defaults are
    dense attention. A second cached stream — the sliding-window layers of a hybrid
    (Gemma-3, gpt-oss), or the key cache of a DeepSeek-sparse-attention indexer (DeepSeek-V3.2,
    GLM-5: ``local_window`` = ∞, and ``top_k`` caps the global layers) — has
    ``kv_bytes_per_token_local`` bytes per token over ``min(L, local_window)`` tokens, read and
    stored.
    """

    n_total: ArrayLike
    """Total parameters N_total."""
    sparsity: ArrayLike
    """N_total / N_active (1 for a dense model; ≈18 for DeepSeek-V3)."""
    kv_bytes_per_token: ArrayLike
    """b: KV-cache bytes per token of context over all (global-attention) layers."""
    bytes_per_weight: ArrayLike = 2.0
    """w: bytes per weight (bf16 2, fp8 1, fp4 0.5)."""
    window: ArrayLike = jnp.inf
    """Sliding window of the global layers, tokens (inf: dense)."""
    top_k: ArrayLike = jnp.inf
    """Top-k sparse attention: cached tokens read per step (inf: off)."""
    sqrt_coeff: ArrayLike = jnp.inf
    """√L sparse attention: c in L_eff = c·√L (inf: off)."""
    kv_bytes_per_token_local: ArrayLike = 0.0
    """KV bytes per token of the second stream: the sliding-window (local) layers of a hybrid
    model, or a sparse-attention indexer's keys."""
    local_window: ArrayLike = jnp.inf
    """Window of the local layers, tokens (∞ for an indexer: it scores every cached token)."""
    state_bytes_per_seq: ArrayLike = 0.0
    """Constant-size state per sequence of linear-attention / state-space layers (Gated DeltaNet,
    Mamba: recurrent state + conv state over all such layers), bytes. Read and kept every step
    whatever the context L; sharded over tensor parallelism by heads, never replicated.
    0: no such layers (the seeds' model)."""
    # Extended model (defaults: the seeds' model). ------------------------------------------
    attn_flops_per_ctx_token: ArrayLike = 0.0
    """Decode attention FLOPs per generated token per cached token read by the global layers
    (dense/GQA 4·layers·heads·head_dim; MLA absorbed 2·layers·heads·(2·kv_lora+rope);
    DeepSeek-V3 ≈ 16 990 208). 0: the seeds' model (T_compute = B·2·N_active/FLOPS)."""
    attn_flops_per_ctx_token_local: ArrayLike = 0.0
    """The same for the second stream, over min(L, W_local): the sliding-window layers of a
    hybrid model, or a sparse-attention indexer's scoring (2·heads·head_dim per layer)."""
    attn_flops_prefill_per_ctx_token: ArrayLike = 0.0
    """Prefill attention FLOPs per query per cached token of the global layers where they differ
    from decode's: MLA prefill runs un-absorbed, 2·layers·heads·(nope + rope + v) — DeepSeek-V3
    4 997 120 against decode's 16 990 208. 0: decode's ``attn_flops_per_ctx_token``."""
    expert_fraction: ArrayLike = 0.0
    """Fraction of N_total that is routed experts (0: treat all weights as dense/replicated alike)."""
    expert_activation: ArrayLike = 1.0
    """experts_per_token / num_experts: the chance a token touches a given routed expert
    (weights read per step: experts touched by B tokens, 1 − (1 − k/E)^tokens)."""
    kv_heads: ArrayLike = jnp.inf
    """KV heads (1 for MLA): KV is replicated max(1, tp/kv_heads) times under tensor parallelism."""
    hidden: ArrayLike = 0.0
    """Hidden size d (activations communicated per token per collective), elements."""
    layers: ArrayLike = 0.0
    """Decoder layers."""
    moe_layers: ArrayLike = 0.0
    """Layers with routed experts."""
    experts_per_token: ArrayLike = 0.0
    """Routed experts per token (top-k): all-to-all copies per token per MoE layer."""
    route_limit: ArrayLike = jnp.inf
    """Most destinations a token's dispatch crosses the link to (DeepSeek-V3 node-limited
    routing: 4 nodes, one copy per node, forwarded inside the node); inf: experts_per_token."""
    act_bytes: ArrayLike = 2.0
    """Bytes per activation element in all-reduce and EP combine (bf16 2)."""
    dispatch_bytes: ArrayLike = 2.0
    """Bytes per activation element in EP dispatch (fp8 dispatch ≈ 1)."""

    @property
    def n_active(self) -> jax.Array:
        """Active parameters per token: n_total / sparsity."""
        return self.n_total / self.sparsity

    @property
    def weight_bytes(self) -> jax.Array:
        """N_total·w, bytes."""
        return self.n_total * self.bytes_per_weight

    @classmethod
    def from_counts(
        cls,
        *,
        n_total: ArrayLike,
        n_active: ArrayLike,
        kv_bytes_per_token: ArrayLike,
        bytes_per_weight: ArrayLike = 2.0,
        **attention: ArrayLike,
    ) -> Model:
        """From parameter counts (N_total, N_active) rather than sparsity."""
        sparsity = jnp.asarray(n_total) / jnp.asarray(n_active)
        return cls(
            n_total=n_total,
            sparsity=sparsity,
            kv_bytes_per_token=kv_bytes_per_token,
            bytes_per_weight=bytes_per_weight,
            **attention,
        )


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Workload(_Leaves):
    """What is asked of a replica in one decode step."""

    batch: ArrayLike = 1.0
    """B: sequences decoded together in one step."""
    context: ArrayLike = 0.0
    """L: tokens of context held in KV per sequence."""
    slo: ArrayLike = jnp.inf
    """Per-token latency target, s (inf: none)."""
    spec_k: ArrayLike = 0.0
    """Speculative decoding / MTP: tokens drafted per step (continuous relaxation; 0: off)."""
    spec_alpha: ArrayLike = 0.0
    """Acceptance rate of a drafted token, in [0, 1]."""
    prompt: ArrayLike = 0.0
    """Prefill: prompt tokens per sequence (core.prefill)."""
    prefill_batch: ArrayLike = 1.0
    """Prefill: prompts processed together in one prefill step (core.prefill)."""


def stack(items: Sequence[Any], axis: int = 0, ndim: int = 1) -> Any:
    """Stack pytrees of scalars into one pytree whose leaves vary along ``axis``.

    The leaves get shape ``(1, …, n, …, 1)`` with ``ndim`` dimensions and ``n``
    at ``axis``, so pytrees stacked on different axes broadcast into a grid::

        hw = stack([h100, h200], axis=0, ndim=4)      # (2, 1, 1, 1)
        m = stack([llama, dsv3], axis=1, ndim=4)      # (1, 2, 1, 1)
    """
    if not items:
        raise ValueError("stack() needs at least one item")
    shape = [1] * ndim
    shape[axis] = len(items)

    def _stack(*leaves: ArrayLike) -> jax.Array:
        return jnp.stack([jnp.asarray(x) for x in leaves]).reshape(shape)

    return jax.tree.map(_stack, *items)


def along(values: ArrayLike, axis: int, ndim: int) -> jax.Array:
    """A 1-D array reshaped to vary along ``axis`` of an ``ndim``-D grid."""
    values = jnp.asarray(values)
    shape = [1] * ndim
    shape[axis] = values.shape[0]
    return values.reshape(shape)


def jit_with_constants(fn: Any, *trees: Any) -> Any:
    """``fn`` jitted with the 0-d leaves of ``trees`` baked in as compile-time constants.

    Leaves that do not vary over the grid (a knob at its neutral default, a single
    chip count) then fold away in XLA — the extended model costs nothing where it is
    switched off. Returns ``g(*trees)``; call it again only with trees whose 0-d leaves
    are the same values (array leaves may change).
    """
    flat, treedef = jax.tree.flatten(trees)
    is_const = [jnp.ndim(x) == 0 for x in flat]
    consts = [float(x) if c else None for x, c in zip(flat, is_const, strict=True)]

    @jax.jit
    def inner(arrays: list[jax.Array]) -> Any:
        it = iter(arrays)
        leaves = [c if k else next(it) for c, k in zip(consts, is_const, strict=True)]
        return fn(*jax.tree.unflatten(treedef, leaves))

    def call(*new_trees: Any) -> Any:
        leaves = jax.tree.leaves(new_trees)
        return inner([x for x, k in zip(leaves, is_const, strict=True) if not k])

    return call
