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
#: one 8-bit scale per 32 elements (4.25 bits).
PRECISION_BYTES: dict[str, float] = {
    "fp32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "fp6": 0.75,
    "fp4": 0.5,
    "mxfp4": 4.25 / 8,
}

SECONDS_PER_HOUR = 3600.0  # s/h


def precision_bytes(precision: str) -> float:
    """Bytes per element for a precision name (``"bf16"``, ``"fp8"``, ``"fp4"``, …)."""
    try:
        return PRECISION_BYTES[precision.lower()]
    except KeyError:
        known = ", ".join(PRECISION_BYTES)
        raise ValueError(f"unknown precision {precision!r}; expected one of: {known}") from None


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
    dense attention. Hybrid models (Gemma-3, gpt-oss) also have layers with a
    sliding window of their own: ``kv_bytes_per_token_local`` bytes per token
    over ``min(L, local_window)`` tokens, read and stored.
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
    """KV bytes per token of the sliding-window (local) layers of a hybrid model."""
    local_window: ArrayLike = jnp.inf
    """Window of the local layers, tokens."""

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
