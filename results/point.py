"""Point queries straight from the catalog: build the pytrees, evaluate any core quantity.

This is the fast path of ``rooflax sensitivity`` / ``rooflax query``: it imports
jax, :mod:`rooflax.core` and :mod:`rooflax.sweeps.catalogs` only (no xarray,
dask or plotting packages).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

#: The knobs the sensitivity report leads with.
DEFAULT_KNOBS = ("bw", "c_over_bw", "sparsity", "capacity", "price", "context")


def query_quantities() -> dict[str, Any]:
    """The quantities ``rooflax query`` evaluates: every registry quantity a cube may hold, and
    the per-sequence ones (:mod:`rooflax.core.quantities`: units and long names shared with the
    cube). Read on use: importing the registry imports jax (through ``rooflax.core``), which the
    cube commands that import this module for :class:`UserError` do not need."""
    from rooflax.core import quantities as Q

    return {n: Q.QUANTITIES[n] for n in Q.quantities_of("point", "optimum", "static", "sequence")}


def __getattr__(name: str) -> Any:
    """``QUANTITIES`` (:func:`query_quantities`) and ``Quantity`` (the registry's record), on use."""
    if name == "QUANTITIES":
        return query_quantities()
    if name == "Quantity":
        from rooflax.core.quantities import Quantity

        return Quantity
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


def custom_chip(hw: Any, spec: dict[str, float]) -> Any:
    """``hw`` with the chip's numbers replaced: bw (B/s), flops (FLOP/s), hbm (B); price handled by caller."""
    bw = spec.get("bw", float(hw.bw))
    flops = spec.get("flops", float(hw.flops))
    return hw.replace(bw=bw, c_over_bw=flops / 2.0 / bw, capacity=spec.get("hbm", float(hw.capacity)))


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
    """UserError if ``value`` is outside the knob's one domain (rooflax.core.quantities.DOMAINS)."""
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

    known = query_quantities()
    q = known.get(name)
    if q is None:
        from rooflax.sweeps.inputs import suggest

        raise UserError(f"unknown quantity {name!r}{suggest(name, list(known))}; "
                        f"known: {', '.join(known)}")
    from . import programs

    return np.asarray(programs.evaluate(f"quantity:{name}", q, hw, model, wl))


#: What a number of ``query``/``sensitivity`` is: the seeds' roofline, or the calibrated prediction.
READINGS = {"bound": "bound: the seeds' roofline (datasheet peaks, every efficiency 1)",
            "prediction": "prediction (calibrated on measured silicon: sweeps/catalog/calibration.yaml): "
                          "core.predict decode step, no prompts interleaved (query has no isl/osl)"}


def prediction_label(engine: str | None = None) -> str:
    """:data:`READINGS`' prediction, naming whose time per layer it uses (``engine``'s own, or
    the value shared by all engines)."""
    whose = f"{engine}'s own time per layer" if engine else "time per layer shared by all engines"
    return f"{READINGS['prediction']}; {whose}"


def predicted_trees(pt: Point, engine: str | None = None) -> tuple[Any, Any, Any]:
    """(hardware, model, Engine) of the prediction at a point: the point's hardware with the
    replica's link laid out as a sweep's ``layout: auto`` (ep for MoE, tp for dense — what
    ``physics: calibrated`` sweeps use), the model extended with its layers and experts (the
    physics the calibration needs; knobs set or scaled on the model carried over), the shipped
    calibration's Engine for its weights (``engine``: that engine's own time per layer; UserError
    for an engine the calibration does not hold)."""
    from rooflax import core as rc
    from rooflax.core import parallel
    from rooflax.sweeps import calibration
    from rooflax.sweeps.efficiency import replica_link_bw

    cat = _catalogs()
    arch = cat.architecture(pt.meta["model"])
    model = parallel.extended_model(arch, weights=pt.meta["weights"], kv=pt.meta["kv_precision"])
    knobs = {**pt.meta["set"], **pt.meta["scale"]}
    for knob in knobs:
        tree, field = rc.KNOBS[knob]
        if tree == "model":
            model = model.replace(**{field: getattr(pt.model, field)})
    hw, name = pt.hw, pt.meta["hardware"].removesuffix(" (modified)")
    if "link_bw" not in knobs:
        hw = hw.replace(link_bw=replica_link_bw(name, float(hw.chips)))
    hw = parallel.layout(hw, "ep" if arch.is_moe else "tp")
    try:
        calibration.known_engine(engine)
    except ValueError as e:
        raise UserError(f"--engine: {e}") from None
    return hw, model, calibration.deployment_engine(cat.resolve_hardware(name), arch,
                                                    pt.meta["weights"], engine=engine)


def check_predicted(name: str) -> None:
    """UserError unless the calibration covers quantity ``name``."""
    from rooflax.core import predict  # its OUTPUTS: the decode step and what follows from it

    if name not in predict.OUTPUTS:
        raise UserError(f"--predicted: expected quantities the calibration covers "
                        f"({', '.join(predict.OUTPUTS)}), found {name!r}")


def evaluate_predicted(name: str, hw: Any, model: Any, wl: Any, eng: Any):
    """A quantity of :data:`rooflax.core.predict.OUTPUTS` through :func:`rooflax.core.predict.outputs`, as a numpy array."""
    import numpy as np

    from rooflax.core import predict

    from . import programs

    check_predicted(name)
    return np.asarray(programs.evaluate("predict.outputs", predict.outputs, hw, model, wl, eng)[name])


#: Quantities that describe the limits themselves: kept where a point is infeasible.
LIMIT_QUANTITIES = ("b_max", "binding", "kv_read_bytes", "kv_store_bytes", "l_eff")


def feasibility(hw: Any, model: Any, wl: Any):
    """(feasible, reason) per (broadcast) point, numpy arrays: reason is ``""`` where feasible,
    else "does not fit: needs N chips" (weights exceed the replica's HBM), "does not fit: no
    room for one sequence's KV cache" (B_max < 1) or "past capacity: B > B_max = …"."""
    import numpy as np

    from rooflax import core as rc
    from rooflax.core import roofline as rl

    from . import programs

    weights = np.asarray(rl.weight_store_bytes(hw, model), dtype=float)
    per_chip = np.asarray(hw.capacity, dtype=float)
    cap = np.asarray(hw.replica_capacity, dtype=float)
    bmax = np.asarray(programs.evaluate("feasibility.b_max", rc.b_max, hw, model, wl), dtype=float)
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
