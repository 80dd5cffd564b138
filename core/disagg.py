"""Disaggregated serving: prefill and decode on separate pools, and the P:D ratio that balances them.

A request of isl prompt tokens and osl output tokens is prefilled on a prefill replica (its own
hardware, chips, layout and precision: ``hw_p``, ``model_p``; Workload ``wl_p`` with ``prompt`` = isl and
``prefill_batch`` = prompts per prefill step) and decoded on a decode replica (``hw_d``, ``wl_d``
with ``batch`` = sequences in flight and ``context`` = the mean context). Each pool is the
roofline of its own step; the KV cache crosses from one to the other once per request::

    requests/s of a prefill replica   r_p = Bp / T_prefill
    requests/s of a decode replica    r_d = B·τ / (T_step · osl)
    balance: prefill replicas per decode replica   x = r_d / r_p
    $ per request = p_p·n_p / r_p + p_d·n_d / r_d

Every function broadcasts over its pytrees' leaves.
"""

from __future__ import annotations

import jax
from jax.typing import ArrayLike

from . import prefill as pf
from . import roofline as rl
from .specs import Hardware, Model, Workload


def prefill_requests_per_second(hw: Hardware, model: Model, wl: Workload,
                                attn_flops: ArrayLike | None = None) -> jax.Array:
    """Requests a prefill replica completes per second: Bp / T_prefill, 1/s."""
    return wl.prefill_batch / pf.t_prefill(hw, model, wl, attn_flops)


def decode_requests_per_second(hw: Hardware, model: Model, wl: Workload, osl: ArrayLike) -> jax.Array:
    """Requests a decode replica completes per second: B·τ / (T_step·osl), 1/s."""
    return rl.throughput(hw, model, wl) / osl


def pd_ratio(hw_p: Hardware, model_p: Model, wl_p: Workload, hw_d: Hardware, model_d: Model,
             wl_d: Workload, osl: ArrayLike, attn_flops: ArrayLike | None = None) -> jax.Array:
    """Prefill replicas per decode replica that balance the pools: r_d / r_p."""
    return (decode_requests_per_second(hw_d, model_d, wl_d, osl)
            / prefill_requests_per_second(hw_p, model_p, wl_p, attn_flops))


def cost_per_request(hw_p: Hardware, model_p: Model, wl_p: Workload, hw_d: Hardware, model_d: Model,
                     wl_d: Workload, osl: ArrayLike, attn_flops: ArrayLike | None = None) -> jax.Array:
    """$ per request of the balanced pair: p_p·n_p/r_p + p_d·n_d/r_d."""
    prefill = hw_p.replica_price / prefill_requests_per_second(hw_p, model_p, wl_p, attn_flops)
    return prefill + hw_d.replica_price / decode_requests_per_second(hw_d, model_d, wl_d, osl)


def kv_transfer_time(model: Model, wl_p: Workload, link_bw: ArrayLike) -> jax.Array:
    """Seconds to move one request's KV (isl tokens) from the prefill to the decode pool over
    ``link_bw`` bytes/s (one NIC per request's stream)."""
    return rl.kv_store_bytes(model, wl_p.replace(context=wl_p.prompt)) / link_bw
