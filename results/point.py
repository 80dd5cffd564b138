"""Point queries straight from the catalog: build the pytrees, evaluate any core quantity.

This is the fast path of ``rooflax sensitivity`` / ``rooflax query``: it imports
jax, :mod:`rooflax.core` and :mod:`rooflax.sweeps.catalogs` only (no xarray,
dask or plotting packages).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

from rooflax.sweeps import metadata

#: Canonical knobs with their SI unit and the words used in sentences.
KNOB_UNITS: dict[str, str] = metadata.KNOB_UNITS
KNOB_WORDS: dict[str, str] = {
    "bw": "bandwidth", "c_over_bw": "C/BW (compute at fixed bandwidth)", "capacity": "HBM capacity",
    "price": "price per chip", "chips": "chips per replica", "n_total": "total parameters",
    "sparsity": "sparsity (N_total/N_active)", "kv_bytes_per_token": "KV bytes per token",
    "bytes_per_weight": "bytes per weight", "context": "context", "batch": "batch",
    "slo": "latency target",
}
DEFAULT_KNOBS = ("bw", "c_over_bw", "sparsity", "capacity", "price", "context")


@dataclasses.dataclass(frozen=True)
class Quantity:
    """A core quantity as the CLI, the cube and the plots name it."""

    name: str
    units: str
    long_name: str
    args: str  # which pytrees the core function takes: "hmw", "hm", "mw"
    func: str  # attribute of rooflax.core
    scale: float = 1.0

    def fn(self) -> Callable[..., Any]:
        from rooflax import core as rc

        return getattr(rc, self.func)


#: name → which pytrees its core function takes; units and long names come from the
#: cube's own table (rooflax.sweeps.metadata.UNITS), so the CLI and the cube agree.
_ARGS = {
    "t_compute": "hmw",
    "t_memory": "hmw",
    "t_step": "hmw",
    "latency": "hmw",
    "throughput": "hmw",
    "tokens_per_second_per_user": "hmw",
    "cost_per_token": "hmw",
    "cost_per_mtok": "hmw",
    "mfu": "hmw",
    "kv_share": "hmw",
    "compute_memory_ratio": "hmw",
    "regime": "hmw",
    "l_eff": "mw",
    "kv_read_bytes": "mw",
    "kv_store_bytes": "mw",
    "b_x": "hmw",
    "b_x_kv_free": "hm",
    "b_max": "hmw",
    "b_slo": "hmw",
    "b_star": "hmw",
    "binding": "hmw",
    "cost_at_b_star": "hmw",
    "cost_per_mtok_at_b_star": "hmw",
    "latency_at_b_star": "hmw",
    "throughput_at_b_star": "hmw",
    "latency_floor": "hm",
    "cost_floor": "hmw",
    "l_crit": "hmw",
    "l_bal": "hm",
    "cost_ratio_b1": "hmw",
}
QUANTITIES: dict[str, Quantity] = {
    name: Quantity(name, *metadata.UNITS[name], args, name) for name, args in _ARGS.items()
}

#: Units of the sensitivity outputs.
OUTPUT_UNITS = {o: metadata.UNITS[o][0] for o in
                ("b_star", "cost_at_b_star", "latency_at_b_star", "throughput_at_b_star")}
OUTPUT_WORDS = {"b_star": "optimal batch B*", "cost_at_b_star": "cost per token",
                "latency_at_b_star": "latency per token", "throughput_at_b_star": "throughput"}


class UserError(ValueError):
    """Bad input from the user: printed without a traceback, exit code 2."""


def enable_compilation_cache() -> None:
    """Persist XLA compilations across CLI runs (``$ROOFLAX_CACHE_DIR`` or ``~/.cache/rooflax/jax``).

    A cold ``rooflax sensitivity`` spends most of its time compiling the
    sensitivity graph; with the cache, later runs skip that. Left alone when the
    user already configured a JAX cache (``JAX_COMPILATION_CACHE_DIR``).
    """
    import os

    import jax

    if os.environ.get("ROOFLAX_NO_CACHE") or jax.config.jax_compilation_cache_dir:
        return
    path = os.environ.get("ROOFLAX_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "rooflax", "jax")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def _catalogs():
    from rooflax.sweeps import catalogs

    return catalogs


@dataclasses.dataclass
class Point:
    """One configuration: the three pytrees plus how they were named."""

    hw: Any
    model: Any
    wl: Any
    meta: dict[str, Any]

    def parameters(self) -> dict[str, float]:
        """Every canonical knob's value (SI units)."""
        from rooflax import core as rc

        trees = {"hardware": self.hw, "model": self.model, "workload": self.wl}
        return {k: float(getattr(trees[t], f)) for k, (t, f) in rc.KNOBS.items()}


def build_point(
    hardware: str,
    model: str,
    *,
    chips: float | None = None,
    precision: str = "bf16",
    weights: str | None = None,
    kv_precision: str = "bf16",
    price_per_hour: float | None = None,
    price: object = None,
    context: float = 0.0,
    batch: float = 1.0,
    slo: float = math.inf,
    set_: dict[str, float] | None = None,
    scale: dict[str, float] | None = None,
    hw_custom: dict[str, float] | None = None,
) -> Point:
    """Pytrees for a catalog hardware × model at a workload.

    ``precision`` is the compute precision (peak FLOPS); weights default to the
    same precision (``weights="native"`` for the checkpoint's). ``set_`` sets any
    canonical knob to a value and ``scale`` multiplies it (after ``set_``), for
    hypothetical hardware: ``scale={"bw": 10, "c_over_bw": 0.1}`` is 10× bandwidth
    at the same C. ``hw_custom`` (``--hw``: bw, flops, hbm, price in SI units and $/h)
    replaces the chip's numbers; the hardware is then labelled "modified". ``price`` is a price spec (basis, bases or $/h; default
    ``catalogs.DEFAULT_PRICE``); ``price_per_hour`` overrides it. NaN: no price.
    """
    from rooflax import core as rc
    from rooflax.core.specs import SECONDS_PER_HOUR

    cat = _catalogs()
    hw_key = cat.resolve_hardware(hardware)
    m_key = cat.resolve_model(model)
    weights = weights or precision
    try:
        pr = (cat.Price(float(price_per_hour), "custom", "given") if price_per_hour is not None
              else cat.price(hw_key, cat.DEFAULT_PRICE if price is None else price))
    except ValueError as e:
        raise UserError(f"--price: {e}") from None
    try:
        hw = cat.hardware(hw_key, chips=chips, precision=precision, price_per_hour=pr.usd_per_hour)
    except cat.UnknownNameError:
        raise
    except (ValueError, KeyError) as e:
        raise UserError(str(e)) from None
    try:
        mdl = cat.model(m_key, weights=weights, kv=kv_precision)
    except cat.UnknownNameError:
        raise
    except (ValueError, KeyError) as e:
        raise UserError(str(e)) from None
    if hw_custom:
        from .estimate import custom_chip

        hw = custom_chip(hw, hw_custom)
        if "price" in hw_custom:
            pr = cat.Price(hw_custom["price"], "custom", "--hw price")
            hw = hw.replace(price=pr.usd_per_hour / SECONDS_PER_HOUR)
    wl = rc.Workload(batch=float(batch), context=float(context), slo=float(slo))
    trees = {"hardware": hw, "model": mdl, "workload": wl}
    for ops, how in ((set_ or {}, "set"), (scale or {}, "scale")):
        for knob, v in ops.items():
            if knob not in rc.KNOBS:
                raise UserError(f"unknown knob {knob!r}; knobs: {', '.join(rc.KNOBS)}")
            t, f = rc.KNOBS[knob]
            old = float(getattr(trees[t], f))
            new = float(v) if how == "set" else old * float(v)
            _check_knob(knob, new, how)
            trees[t] = trees[t].replace(**{f: new})
    hw, mdl, wl = trees["hardware"], trees["model"], trees["workload"]
    meta = {
        "hardware": hw_key + (" (modified)" if hw_custom else ""), "model": m_key,
        "chips": float(hw.chips), "precision": precision,
        "weights": weights, "kv_precision": kv_precision,
        "price_per_hour": float(hw.price) * SECONDS_PER_HOUR,
        "price_basis": "custom" if "price" in {**(set_ or {}), **(scale or {})} else pr.basis,
        "price_source": pr.source, "set": dict(set_ or {}),
        "scale": dict(scale or {}),
    }
    return Point(hw, mdl, wl, meta)


def _check_knob(knob: str, value: float, how: str) -> None:
    """UserError if ``value`` is outside the knob's one domain (sweeps.metadata.DOMAINS)."""
    from rooflax.sweeps import units

    d = units.domain(knob)
    d.pop("kind")
    what = d.pop("what")
    try:
        units.check(value, what, stated=True, **d)
    except units.ParseError as e:
        raise UserError(f"--{how} {knob}: {e}") from None


def evaluate(name: str, hw: Any, model: Any, wl: Any):
    """Any quantity of :data:`QUANTITIES` on (broadcasting) pytrees, as a numpy array."""
    import numpy as np

    q = QUANTITIES.get(name)
    if q is None:
        from rooflax.sweeps.inputs import suggest

        raise UserError(f"unknown quantity {name!r}{suggest(name, list(QUANTITIES))}; "
                        f"known: {', '.join(QUANTITIES)}")
    args = {"hmw": (hw, model, wl), "hm": (hw, model), "mw": (model, wl)}[q.args]
    return np.asarray(q.fn()(*args))


#: What a number of ``query``/``sensitivity`` is: the seeds' roofline, or the calibrated prediction.
READINGS = {"bound": "bound: the seeds' roofline (datasheet peaks, every efficiency 1)",
            "prediction": "prediction (calibrated on measured silicon: sweeps/catalog/calibration.yaml): "
                          "core.predict decode step, no prompts interleaved (query has no isl/osl)"}
#: Quantities the calibration covers (decode step time and what follows from it).
PREDICTED = ("t_step", "latency", "throughput", "tokens_per_second_per_user", "cost_per_token",
             "cost_per_mtok")


def predicted_trees(pt: Point) -> tuple[Any, Any, Any]:
    """(hardware, model, Engine) of the prediction at a point: the point's hardware, the model
    extended with its layers and experts (the physics the calibration needs; knobs set or
    scaled on the model carried over), the shipped calibration's Engine for its weights."""
    from rooflax import core as rc
    from rooflax.core import parallel
    from rooflax.sweeps import calibration

    cat = _catalogs()
    arch = cat.architecture(pt.meta["model"])
    model = parallel.extended_model(arch, weights=pt.meta["weights"], kv=pt.meta["kv_precision"])
    for knob in {**pt.meta["set"], **pt.meta["scale"]}:
        tree, field = rc.KNOBS[knob]
        if tree == "model":
            model = model.replace(**{field: getattr(pt.model, field)})
    return pt.hw, model, calibration.engine_for(pt.meta["weights"],
                                                prefill_skip=calibration.prefill_skip_of(arch))


def check_predicted(name: str) -> None:
    """UserError unless the calibration covers quantity ``name``."""
    if name not in PREDICTED:
        raise UserError(f"--predicted: expected quantities the calibration covers "
                        f"({', '.join(PREDICTED)}), found {name!r}")


def evaluate_predicted(name: str, hw: Any, model: Any, wl: Any, eng: Any):
    """A quantity of :data:`PREDICTED` through :mod:`rooflax.core.predict`, as a numpy array."""
    import numpy as np

    from rooflax.core import predict
    from rooflax.core import roofline as rl

    check_predicted(name)
    step = predict.step_time(hw, model, wl, eng)
    tokens = predict.running_batch(hw, model, wl, eng) * rl.tokens_per_step(wl)  # per step
    out = {"t_step": step, "latency": step / rl.tokens_per_step(wl), "throughput": tokens / step,
           "tokens_per_second_per_user": rl.tokens_per_step(wl) / step,
           "cost_per_token": step * hw.replica_price / tokens,
           "cost_per_mtok": 1e6 * step * hw.replica_price / tokens}[name]
    return np.asarray(out)


#: Quantities that describe the limits themselves: kept where a point is infeasible.
LIMIT_QUANTITIES = ("b_max", "binding", "kv_read_bytes", "kv_store_bytes", "l_eff")


def feasibility(hw: Any, model: Any, wl: Any):
    """(feasible, reason) per (broadcast) point, numpy arrays: reason is ``""`` where feasible,
    else "does not fit: needs N chips" (weights exceed the replica's HBM), "does not fit: no
    room for one sequence's KV cache" (B_max < 1) or "past capacity: B > B_max = …"."""
    import numpy as np

    from rooflax import core as rc
    from rooflax.core import roofline as rl

    weights = np.asarray(rl.weight_store_bytes(hw, model), dtype=float)
    per_chip = np.asarray(hw.capacity, dtype=float)
    cap = np.asarray(hw.replica_capacity, dtype=float)
    bmax = np.asarray(rc.b_max(hw, model, wl), dtype=float)
    batch = np.asarray(wl.batch, dtype=float)
    shape = np.broadcast_shapes(weights.shape, cap.shape, bmax.shape, batch.shape)
    weights, per_chip, cap, bmax, batch = (np.broadcast_to(a, shape)
                                           for a in (weights, per_chip, cap, bmax, batch))
    reason = np.full(shape, "", dtype=object)
    for idx in np.ndindex(shape):
        if weights[idx] > cap[idx]:
            reason[idx] = f"does not fit: needs {math.ceil(weights[idx] / per_chip[idx])} chips"
        elif bmax[idx] < 1:
            reason[idx] = "does not fit: no room for one sequence's KV cache at this context"
        elif batch[idx] > bmax[idx]:
            reason[idx] = f"past capacity: B > B_max = {bmax[idx]:.4g}"
    return reason == "", reason
