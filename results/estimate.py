"""``rooflax estimate``: one deployment in, what a serving engineer checks out.

A deployment is hardware × chips × layout (tp, ep, attention-DP) × model × precision per
component × isl/osl × concurrency (sequences in flight on one replica). Out come TTFT, TPOT,
tokens/s per user, per GPU and per replica, $/M input and output tokens, energy per output
token, the memory per GPU, and the binding constraint — twice, side by side:

* **bound** — the roofline at datasheet peaks (every efficiency 1, the link at its peak): no
  real engine beats it;
* **prediction** — :func:`rooflax.core.predict.step_time` on the same hardware with the Engine
  of the shipped calibration (``sweeps/catalog/calibration.yaml``, fitted on measured TPOT:
  :func:`rooflax.sweeps.calibration.engine_for`). Decode numbers (TPOT, tok/s, $/M output, J per
  token) are what it was fitted on; TTFT and $/M input use its realized prefill FLOPS and weight
  streaming plus its fixed step time, but no measured TTFT was fitted (see :func:`predicted`).
  A disaggregated pair's prediction: the prefill pool as TTFT here, the decode pool's step
  without interleaved prompts.

Decode runs at ``concurrency`` sequences with context isl + osl/2 (the mean over a request);
KV must fit at isl + osl (the peak). TTFT is one prefill step of one prompt of isl tokens
(no queueing); $/M input tokens is that step's cost. The JSON (``--json``) carries
``schema`` = :data:`SCHEMA`; fields are only ever added under the same version.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

from rooflax.core import quantities as Q

from .point import UserError, custom_chip

#: Version of the ``--json`` output.
SCHEMA = "rooflax.estimate/1"
#: Electricity price assumed for the energy share of cost, $/kWh (US industrial average, 2025).
ELECTRICITY_USD_PER_KWH = 0.08
#: What the two sides of an estimate are.
LABELS = {"bound": "bound: roofline at datasheet peaks (efficiencies 1)",
          "prediction": "prediction (calibrated on measured silicon: sweeps/catalog/calibration.yaml); "
                        "TPOT, tok/s, $/M output and J/token fitted on measured TPOT; TTFT and $/M "
                        "input use the calibrated prefill efficiency but were not fitted on measured TTFT"}
#: Which numbers of the prediction the calibration was fitted on (measured TPOT) and which not.
CALIBRATED = {"fitted": ["tpot_s", "tok_s_per_user", "tok_s_per_gpu", "tok_s_per_replica",
                         "usd_per_m_output", "energy_per_output_token_j"],
              "not_fitted": ["ttft_s", "usd_per_m_input"]}
#: Regime code of a predicted step where the fixed time (launches, scheduling) is over half of it.
FIXED_BOUND = 4
FIXED_REGIME = "fixed-time-bound"
#: Layout kinds accepted (core.parallel.LAYOUTS plus auto: ep for MoE models, tp for dense).
LAYOUTS = ("auto", "one-chip", "tp", "ep", "tp-ep")


class EstimateError(UserError):
    """Bad input to an estimate: one line naming the option, what was expected and found."""


#: ``--hw`` keys → (unit kind of ``sweeps.units.parse``, what it sets).
HW_KEYS = {"bw": ("bandwidth", Q.KNOBS["bw"].long_name), "flops": ("flops", Q.KNOBS["flops"].long_name),
           "hbm": ("bytes", Q.KNOBS["capacity"].long_name), "price": ("price", "$/chip-hour")}


def parse_hw(text: str | None) -> dict[str, float] | None:
    """``"bw=10TB/s,flops=5PFLOPS,hbm=288GB,price=8$/h"`` → {"bw": 1e13, …} (SI units, price $/h)."""
    if not text:
        return None
    from rooflax.sweeps.units import parse

    out: dict[str, float] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep or key not in HW_KEYS:
            raise EstimateError(f"--hw: expected KEY=VALUE with KEY one of {', '.join(HW_KEYS)}, "
                                f"found {item.strip()!r}")
        kind = HW_KEYS[key][0]
        try:
            out[key] = parse(value, kind, allow_zero=kind == "price")
        except ValueError as e:
            raise EstimateError(f"--hw {key}: {e}") from None
    return out


@dataclasses.dataclass(frozen=True)
class PrefillPool:
    """The prefill pool of a disaggregated deployment (None fields: the decode pool's)."""

    hardware: str | None = None
    chips: float = 8.0
    layout: str = "auto"
    tp: float | None = None
    precision: str | None = None
    batch: float = 1.0
    """Prompts per prefill step."""


@dataclasses.dataclass(frozen=True)
class Deployment:
    """One deployment (all sizes per replica)."""

    hardware: str
    model: str
    chips: float = 8.0
    layout: str = "auto"
    tp: float | None = None
    """Attention TP degree for ``tp-ep`` (attention-DP = chips/tp)."""
    pp: int = 1
    precision: str = "fp8"
    """Compute precision (peak FLOPS used) and, unless ``weights`` is given, the weights'."""
    weights: str | None = None
    kv: str = "bf16"
    dispatch: str = "bf16"
    """Precision of the EP dispatch (all-to-all) activations (DeepSeek: fp8)."""
    isl: float = 8192.0
    osl: float = 1024.0
    concurrency: float = 64.0
    price: object = None
    """Price spec (``catalogs.price``); None: the default basis."""
    electricity: float = ELECTRICITY_USD_PER_KWH
    hw_custom: dict[str, float] | None = None
    """Custom chip leaves (``--hw bw=…,flops=…``): replaces the catalog's numbers."""
    prefill: PrefillPool | None = None
    """Disaggregated serving: the prefill pool (this deployment is then the decode pool)."""
    engine: str | None = None
    """Serving engine whose calibrated time per layer the prediction uses (None: shared values)."""


# -- trees -------------------------------------------------------------------------------------
def _layout_kind(dep: Deployment, is_moe: bool) -> str:
    if dep.layout not in LAYOUTS:
        raise EstimateError(f"--layout: expected one of {', '.join(LAYOUTS)}, found {dep.layout!r}")
    if dep.layout == "auto":
        return "ep" if is_moe else "tp"
    return dep.layout


def trees(dep: Deployment, *, peak: bool) -> tuple[Any, Any, dict[str, Any]]:
    """(Hardware laid out, extended Model, info) of a deployment; ``peak``: the bound's hardware."""
    from rooflax.core import parallel
    from rooflax.core.specs import SECONDS_PER_HOUR, precision_bytes
    from rooflax.sweeps import catalogs
    from rooflax.sweeps import efficiency as eff

    if dep.pp != 1:
        raise EstimateError(f"--pp: pipeline parallelism is not modelled yet; expected 1, found {dep.pp}")
    try:
        hw_key = catalogs.resolve_hardware(dep.hardware)
        m_key = catalogs.resolve_model(dep.model)
        arch = catalogs.architecture(m_key)
        link = eff.replica_link_bw(hw_key, dep.chips)
        hw = eff.hardware(hw_key, precision=dep.precision, chips=float(dep.chips), peak=peak,
                          link_bw=link, price_per_hour=0.0)
    except ValueError as e:
        raise EstimateError(str(e).splitlines()[0]) from None
    if dep.hw_custom:
        hw = custom_chip(hw, dep.hw_custom)
    if peak:
        hw = hw.replace(link_eff=1.0)
    kind = _layout_kind(dep, arch.is_moe)
    if kind == "tp-ep" and dep.tp is not None and (dep.tp < 1 or dep.chips % dep.tp):
        raise EstimateError(f"--tp: expected a divisor of --chips {dep.chips:g}, found {dep.tp:g}")
    hw = parallel.layout(hw, kind, tp=dep.tp)
    weights = dep.weights or dep.precision
    try:
        model = parallel.extended_model(arch, weights=weights, kv=dep.kv,
                                        dispatch_bytes=precision_bytes(dep.dispatch))
    except ValueError as e:
        raise EstimateError(f"--weights/--kv-precision/--dispatch: {e}") from None
    try:
        pr = catalogs.price(hw_key, dep.price if dep.price is not None else catalogs.DEFAULT_PRICE)
    except ValueError as e:
        raise EstimateError(f"--price: {e}") from None
    if dep.hw_custom and "price" in dep.hw_custom:
        pr = catalogs.Price(dep.hw_custom["price"], "custom", "--hw price")
    hw = hw.replace(price=pr.usd_per_hour / SECONDS_PER_HOUR)
    power_kw, power_src = catalogs.power_kw(hw_key)
    info = {"hardware": hw_key, "model": m_key, "layout": kind, "weights": weights,
            "link": "scale-up" if dep.chips <= eff.scaleup_domain(hw_key)
            else f"scale-out ({eff.SCALE_OUT_BW / 1e9:g} GB/s per GPU)",
            "price": pr, "power_kw": power_kw, "power_source": power_src,
            "modified": bool(dep.hw_custom)}
    return hw, model, info


# -- one side (bound or prediction) -------------------------------------------------------------
def numbers(hw: Any, model: Any, batch: Any, isl: Any, osl: Any, power_w: Any,
            eng: Any = None) -> dict:
    """Every number of one side, as arrays (broadcasting; SI units). Decode at context isl+osl/2,
    KV stored at isl+osl, one prefill step of one isl-token prompt. Pure core calls (jit-able).

    ``eng`` None: the bound (:mod:`core.roofline`); an :class:`rooflax.core.predict.Engine`: the
    prediction (:func:`predicted`) on the same (datasheet-peak) hardware."""
    from rooflax import core as rc
    from rooflax.core import optimum as opt
    from rooflax.core import roofline as rl

    full = rc.Workload(batch=batch, context=isl + osl)
    kv_seq = rl.kv_store_bytes(model, full) * rl.kv_replicas(hw, model)
    weights = rl.weight_store_bytes(hw, model) / hw.chips
    kv = batch * kv_seq / hw.chips
    side = _bound(hw, model, batch, isl, osl, power_w) if eng is None else \
        predicted(hw, model, batch, isl, osl, power_w, eng)
    return {**side, "weights_b": weights, "kv_b": kv, "headroom_b": hw.capacity - weights - kv,
            "kv_per_sequence_b": kv_seq, "b_max": opt.b_max(hw, model, full)}


def _per_step(step: Any, tau: Any, running: Any, hw: Any, power_w: Any) -> dict:
    """Speeds, $/M output and J per output token of a decode step of ``running`` sequences."""
    per_replica = running * tau / step
    return {"tpot_s": step / tau, "tok_s_per_user": tau / step, "tok_s_per_replica": per_replica,
            "tok_s_per_gpu": per_replica / hw.chips, "usd_per_m_output": 1e6 * hw.replica_price / per_replica,
            "energy_per_output_token_j": power_w * hw.chips / per_replica}


def _bound(hw: Any, model: Any, batch: Any, isl: Any, osl: Any, power_w: Any) -> dict:
    """The bound: the seeds' roofline (every efficiency 1), prefill one isl-token prompt (its
    attention at the Model's prefill FLOPs per cached token: MLA un-absorbed)."""
    import jax.numpy as jnp

    from rooflax import core as rc
    from rooflax.core import prefill as pf
    from rooflax.core import roofline as rl

    wl = rc.Workload(batch=batch, context=isl + osl / 2.0)
    pwl = rc.Workload(prompt=isl, prefill_batch=jnp.ones_like(isl), context=isl)
    return {
        "ttft_s": pf.ttft(hw, model, pwl), "tpot_s": rl.latency(hw, model, wl),
        "tok_s_per_user": rl.tokens_per_second_per_user(hw, model, wl),
        "tok_s_per_replica": rl.throughput(hw, model, wl),
        "tok_s_per_gpu": rl.throughput(hw, model, wl) / hw.chips,
        "usd_per_m_output": rl.cost_per_mtok(hw, model, wl),
        "usd_per_m_input": pf.cost_per_minput(hw, model, pwl),
        "energy_per_output_token_j": rl.energy_per_token(hw, model, wl, power_w),
        "t_compute_s": rl.t_compute(hw, model, wl), "t_memory_s": rl.t_memory(hw, model, wl),
        "t_comm_s": rl.t_comm(hw, model, wl), "t_fixed_s": jnp.zeros_like(rl.t_step(hw, model, wl)),
        "running_batch": batch * jnp.ones_like(rl.t_step(hw, model, wl)),
        "regime": rl.regime(hw, model, wl),
    }


def predicted(hw: Any, model: Any, batch: Any, isl: Any, osl: Any, power_w: Any, eng: Any) -> dict:
    """The prediction: :func:`rooflax.core.predict.step_time` with the calibrated ``eng``.

    Decode (TPOT, tok/s, $/M output, J/token) is what the calibration was fitted on (measured
    TPOT). TTFT and $/M input are the bound's prefill step at the calibrated realized fractions —
    FLOPS × ``prefill_eff`` (fitted only through the prompts interleaved in aggregated decode),
    HBM × ``weight_bw_eff`` — plus the fixed step time: not fitted to a measured TTFT. The
    t_compute/t_memory split and the regime are the roofline's on those derated resources."""
    import jax.numpy as jnp

    from rooflax import core as rc
    from rooflax.core import predict as pr
    from rooflax.core import prefill as pf
    from rooflax.core import roofline as rl

    wl = rc.Workload(batch=batch, context=isl + osl / 2.0, prompt=isl)
    step, tau = pr.step_time(hw, model, wl, eng), rl.tokens_per_step(wl)
    running = pr.running_batch(hw, model, wl, eng)
    fixed = pr.fixed_time(model, eng)
    pre = prefill_hardware(hw, eng)
    dec = hw.replace(bw=hw.bw * eng.weight_bw_eff, c_over_bw=hw.c_over_bw * eng.gemm_eff / eng.weight_bw_eff)
    pwl = rc.Workload(prompt=isl, prefill_batch=jnp.ones_like(isl), context=isl)
    t_pre = pf.t_prefill(pre, model, pwl) + fixed
    dwl = wl.replace(batch=running)
    return {**_per_step(step, tau, running, hw, power_w), "ttft_s": t_pre,
            "usd_per_m_input": 1e6 * t_pre * hw.replica_price / isl,
            "t_compute_s": rl.t_compute(dec, model, dwl), "t_memory_s": rl.t_memory(dec, model, dwl),
            "t_comm_s": rl.t_comm(hw, model, dwl), "t_fixed_s": fixed * jnp.ones_like(step),
            "running_batch": running * jnp.ones_like(step),
            "regime": jnp.where(fixed > step / 2.0, FIXED_BOUND, rl.regime(dec, model, dwl))}


@functools.cache
def _jitted():
    import jax

    return jax.jit(numbers)


def engine(dep: Deployment) -> Any:
    """The calibrated Engine of a deployment (aggregated: prompts interleaved; a decode pool: not)."""
    from rooflax.sweeps import calibration, catalogs

    try:
        calibration.known_engine(dep.engine)
    except ValueError as e:
        raise EstimateError(f"--engine: {e}") from None
    arch = catalogs.architecture(catalogs.resolve_model(dep.model))
    return calibration.deployment_engine(catalogs.resolve_hardware(dep.hardware), arch,
                                         dep.weights or dep.precision, engine=dep.engine,
                                         osl=math.inf if dep.prefill is not None else float(dep.osl))


def _side(hw: Any, model: Any, dep: Deployment, info: dict[str, Any], eng: Any = None) -> dict[str, Any]:
    """:func:`numbers` of one deployment as Python floats (one trace, evaluated in NumPy; the
    trace cached on disk by :mod:`rooflax.results.programs`)."""
    from rooflax.core.specs import SECONDS_PER_HOUR

    from . import programs

    raw = programs.evaluate("estimate.numbers", numbers, hw, model, float(dep.concurrency), float(dep.isl),
                             float(dep.osl), info["power_kw"] * 1e3, eng)
    out: dict[str, Any] = {k: float(v) for k, v in raw.items()}
    from rooflax.core import roofline as rl

    out["regime"] = (*rl.REGIMES, FIXED_REGIME)[int(out["regime"])]
    out["price_per_chip_hour"] = float(hw.price) * SECONDS_PER_HOUR
    if out["weights_b"] > float(hw.capacity):  # the weights alone do not fit: no step at all
        out.update(dict.fromkeys((*DECODE_KEYS, "ttft_s", "usd_per_m_input"), math.nan))
    elif eng is None and out["headroom_b"] < 0:  # the bound has no step past capacity: no number
        out.update(dict.fromkeys(DECODE_KEYS, math.nan))
    return out


#: Decode-step numbers of a side; the bound's are NaN where the concurrency does not fit (the
#: prediction queues what does not fit and reports the running batch instead).
DECODE_KEYS = ("tpot_s", "tok_s_per_user", "tok_s_per_replica", "tok_s_per_gpu", "usd_per_m_output",
               "energy_per_output_token_j", "t_compute_s", "t_memory_s", "t_comm_s")


def memory(side: dict[str, Any], hw: Any) -> dict[str, float]:
    """Memory per GPU, bytes: weights, KV at this concurrency (context isl+osl), headroom, B_max."""
    return {"capacity_b": float(hw.capacity), "weights_b": side["weights_b"], "kv_b": side["kv_b"],
            "headroom_b": side["headroom_b"], "kv_per_sequence_b": side["kv_per_sequence_b"],
            "max_concurrency": math.floor(max(side["b_max"], 0.0))}


def binding(side: dict[str, float], mem: dict[str, float], dep: Deployment) -> str:
    """What limits the deployment: capacity if it does not fit, else the step's regime."""
    if mem["weights_b"] > mem["capacity_b"]:
        return f"does not fit: the weights need {math.ceil(mem['weights_b'] * dep.chips / mem['capacity_b'])} chips"
    if mem["headroom_b"] < 0:
        return (f"capacity: {dep.concurrency:g} sequences do not fit "
                f"(at most {mem['max_concurrency']:,})")
    return side["regime"]


# -- the estimate ---------------------------------------------------------------------------------
def estimate(dep: Deployment) -> dict[str, Any]:
    """The estimate as a JSON-able dict (schema :data:`SCHEMA`); NaN where a number is unknown."""
    if min(dep.isl, dep.osl, dep.concurrency, dep.chips) <= 0:
        raise EstimateError("--isl/--osl/--concurrency/--chips: expected > 0, found "
                            f"{dep.isl:g}/{dep.osl:g}/{dep.concurrency:g}/{dep.chips:g}")
    hw_b, model, info = trees(dep, peak=True)
    bound, pred = _side(hw_b, model, dep, info), _side(hw_b, model, dep, info, engine(dep))
    mem = memory(pred, hw_b)
    pr = info["price"]
    energy_usd_h = info["power_kw"] * dep.electricity
    return {
        "schema": SCHEMA,
        "deployment": {
            "hardware": info["hardware"] + (" (modified)" if info["modified"] else ""),
            "model": info["model"], "chips": dep.chips, "layout": info["layout"],
            "tp": float(hw_b.tp), "attention_dp": float(hw_b.dp), "ep": float(hw_b.ep),
            "pp": dep.pp, "compute_precision": dep.precision, "weights": info["weights"],
            "kv": dep.kv, "dispatch": dep.dispatch, "isl": dep.isl, "osl": dep.osl, "concurrency": dep.concurrency,
            "link": info["link"],
        },
        "price": {"usd_per_chip_hour": pr.usd_per_hour, "basis": pr.basis, "source": pr.source,
                  "placeholder": pr.placeholder},
        "power": {"kw_per_chip": info["power_kw"], "source": info["power_source"],
                  "electricity_usd_per_kwh": dep.electricity,
                  "energy_share_of_cost": energy_usd_h / pr.usd_per_hour if pr.known else math.nan},
        "memory_per_gpu": mem,
        "binding": {"bound": binding(bound, mem, dep), "prediction": binding(pred, mem, dep)},
        "bound": bound,
        "prediction": pred,
        "labels": dict(LABELS),
        "calibration": {"file": "sweeps/catalog/calibration.yaml", "engine": dep.engine or "shared",
                        **CALIBRATED},
        "disaggregated": disaggregated(dep) if dep.prefill is not None else None,
    }


# -- disaggregated serving -------------------------------------------------------------------
def prefill_deployment(dep: Deployment) -> Deployment:
    """The prefill pool of ``dep`` as a Deployment of its own."""
    pp = dep.prefill or PrefillPool()
    same = pp.hardware is None or pp.hardware == dep.hardware
    return dataclasses.replace(
        dep, hardware=dep.hardware if same else pp.hardware, chips=pp.chips, layout=pp.layout, tp=pp.tp,
        precision=pp.precision or dep.precision, weights=dep.weights if pp.precision is None else None,
        hw_custom=dep.hw_custom if same else None, prefill=None)


def pair_numbers(hw_p: Any, m_p: Any, hw_d: Any, m_d: Any, dep: Deployment,
                 eng_p: Any = None, eng_d: Any = None) -> dict[str, float]:
    """P:D balance, $/request and TTFT of a prefill/decode pair, Python floats: the bound
    (core.disagg on the roofline) or, given the pools' calibrated Engines, the prediction (the
    prefill step as in :func:`predicted`, the decode step :func:`rooflax.core.predict.step_time`)."""
    from rooflax import core as rc
    from rooflax.core import disagg, optimum
    from rooflax.core import predict as pr
    from rooflax.core import prefill as pf
    from rooflax.core import roofline as rl
    from rooflax.sweeps.efficiency import SCALE_OUT_BW

    bp = (dep.prefill or PrefillPool()).batch
    wl_p = rc.Workload(prompt=float(dep.isl), prefill_batch=float(bp), context=float(dep.isl))
    wl_d = rc.Workload(batch=float(dep.concurrency), context=dep.isl + dep.osl / 2.0, prompt=float(dep.isl))
    if eng_d is None:
        t_pre, tpot = float(pf.t_prefill(hw_p, m_p, wl_p)), float(rl.latency(hw_d, m_d, wl_d))
        r_p = float(disagg.prefill_requests_per_second(hw_p, m_p, wl_p))
        r_d = float(disagg.decode_requests_per_second(hw_d, m_d, wl_d, dep.osl))
    else:
        t_pre = float(pf.t_prefill(prefill_hardware(hw_p, eng_p), m_p, wl_p) + pr.fixed_time(m_p, eng_p))
        step = float(pr.step_time(hw_d, m_d, wl_d, eng_d))
        tpot = step / float(rl.tokens_per_step(wl_d))
        r_p = bp / t_pre
        r_d = float(pr.running_batch(hw_d, m_d, wl_d, eng_d)) / (tpot * dep.osl)
    x = r_d / r_p
    per_req = float(hw_p.replica_price) / r_p + float(hw_d.replica_price) / r_d  # core.disagg.cost_per_request
    transfer = float(disagg.kv_transfer_time(m_p, wl_p, SCALE_OUT_BW))
    fits = float(optimum.b_max(hw_p, m_p, wl_p)) >= bp
    return {"t_prefill_s": t_pre, "kv_transfer_s": transfer, "ttft_s": t_pre + transfer, "tpot_s": tpot,
            "prefill_requests_per_s": r_p, "decode_requests_per_s": r_d,
            "pd_ratio_replicas": x, "pd_ratio_chips": x * float(hw_p.chips) / float(hw_d.chips),
            "usd_per_request": per_req, "usd_per_m_output_all_in": per_req * 1e6 / dep.osl,
            "prefill_fits": fits}


def prefill_hardware(hw: Any, eng: Any) -> Any:
    """``hw`` with the realized prefill resources of ``eng``: FLOPS × prefill_eff, HBM × weight_bw_eff."""
    return hw.replace(bw=hw.bw * eng.weight_bw_eff, c_over_bw=hw.c_over_bw * eng.prefill_eff / eng.weight_bw_eff)


def disaggregated(dep: Deployment) -> dict[str, Any]:
    """The disaggregated section of an estimate: the prefill pool and the balanced pair, both sides."""
    pdep = prefill_deployment(dep)
    out: dict[str, Any] = {}
    hw_p, m_p, info_p = trees(pdep, peak=True)
    hw_d, m_d, _ = trees(dataclasses.replace(dep, prefill=None), peak=True)
    out["bound"] = pair_numbers(hw_p, m_p, hw_d, m_d, dep)
    out["prediction"] = pair_numbers(hw_p, m_p, hw_d, m_d, dep,
                                     engine(dataclasses.replace(pdep, prefill=PrefillPool())), engine(dep))
    pr = info_p["price"]
    out["prefill"] = {"hardware": info_p["hardware"], "chips": pdep.chips, "layout": info_p["layout"],
                      "tp": float(hw_p.tp), "attention_dp": float(hw_p.dp), "precision": pdep.precision,
                      "prompts_per_step": (dep.prefill or PrefillPool()).batch,
                      "price": {"usd_per_chip_hour": pr.usd_per_hour, "basis": pr.basis}}
    out["kv_transfer"] = "one request's KV (isl tokens) over one 50 GB/s scale-out NIC, added to TTFT"
    return out


def to_json(est: dict[str, Any]) -> str:
    """JSON with non-finite numbers as null."""
    import json

    def clean(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, float) and not math.isfinite(x):
            return None
        return x

    return json.dumps(clean(est), indent=2)


ROWS = (  # key, label, unit, scale
    ("ttft_s", "TTFT", "ms", 1e3), ("tpot_s", "TPOT", "ms", 1e3),
    ("tok_s_per_user", "tokens/s per user", "tokens/s", 1.0),
    ("tok_s_per_gpu", "tokens/s per GPU", "tokens/s", 1.0),
    ("tok_s_per_replica", "tokens/s per replica", "tokens/s", 1.0),
    ("usd_per_m_input", "$ per M input tokens", "$", 1.0),
    ("usd_per_m_output", "$ per M output tokens", "$", 1.0),
    ("energy_per_output_token_j", "energy per output token", "J", 1.0),
)


def render(est: dict[str, Any], console: Any) -> None:
    """Rich tables: bound and prediction side by side, memory per GPU, price and power."""
    from rich.table import Table

    d, pr, pw = est["deployment"], est["price"], est["power"]
    title = (f"{d['hardware']} ×{d['chips']:g} ({d['layout']}: tp {d['tp']:g}, attention-DP "
             f"{d['attention_dp']:g}, ep {d['ep']:g}) · {d['model']} {d['weights']} (KV {d['kv']}, "
             f"compute {d['compute_precision']}) · isl {d['isl']:g} · osl {d['osl']:g} · "
             f"concurrency {d['concurrency']:g}")
    t = Table(title=title)
    for c, j in (("quantity", "left"), ("bound", "right"), ("prediction", "right"), ("unit", "left")):
        t.add_column(c, justify=j)
    for key, label, unit, scale in ROWS:
        cells = [_fmt(est[s][key] * scale, key, pr) for s in ("bound", "prediction")]
        t.add_row(label, *cells, unit)
    t.add_row("binding", est["binding"]["bound"], est["binding"]["prediction"], "")
    console.print(t)
    m = est["memory_per_gpu"]
    console.print(f"memory per GPU: weights {m['weights_b'] / 1e9:.1f} GB + KV {m['kv_b'] / 1e9:.1f} GB "
                  f"of {m['capacity_b'] / 1e9:.0f} GB → headroom {m['headroom_b'] / 1e9:.1f} GB; "
                  f"largest concurrency that fits: {m['max_concurrency']:,}")
    price = ("no price: " + pr["source"]) if pr["usd_per_chip_hour"] != pr["usd_per_chip_hour"] else (
        f"${pr['usd_per_chip_hour']:.3g}/chip-hour, basis {pr['basis']}"
        + (" (placeholder)" if pr["placeholder"] else ""))
    share = pw["energy_share_of_cost"]
    console.print(f"price: {price} · power {pw['kw_per_chip']:.3g} kW/chip; electricity "
                  f"${pw['electricity_usd_per_kwh']:g}/kWh = "
                  f"{'n/a' if share != share else f'{100 * share:.0f}%'} of cost")
    if est.get("disaggregated"):
        render_disaggregated(est["disaggregated"], d, console)
    console.print(f"{est['labels']['bound']}; {est['labels']['prediction']}; time per layer: "
                  f"{est['calibration']['engine']}", style="dim")


DISAGG_ROWS = (  # key, label, unit, scale
    ("ttft_s", "TTFT (prefill step + KV transfer)", "ms", 1e3), ("kv_transfer_s", "KV transfer", "ms", 1e3),
    ("tpot_s", "TPOT", "ms", 1e3), ("prefill_requests_per_s", "requests/s per prefill replica", "1/s", 1.0),
    ("decode_requests_per_s", "requests/s per decode replica", "1/s", 1.0),
    ("pd_ratio_replicas", "P:D ratio (prefill replicas per decode replica)", "", 1.0),
    ("pd_ratio_chips", "P:D ratio in chips", "", 1.0),
    ("usd_per_request", "$ per request (balanced pair)", "$", 1.0),
    ("usd_per_m_output_all_in", "$ per M output tokens, prefill included", "$", 1.0),
)


def render_disaggregated(dis: dict[str, Any], d: dict[str, Any], console: Any) -> None:
    """The prefill/decode pair: balance and cost, bound and prediction."""
    from rich.table import Table

    p = dis["prefill"]
    t = Table(title=f"Disaggregated: prefill {p['hardware']} ×{p['chips']:g} ({p['layout']}, tp {p['tp']:g}, "
                    f"{p['precision']}, {p['prompts_per_step']:g} prompt(s)/step) → decode {d['hardware']} "
                    f"×{d['chips']:g} ({d['layout']})")
    for c, j in (("quantity", "left"), ("bound", "right"), ("prediction", "right"), ("unit", "left")):
        t.add_column(c, justify=j)
    for key, label, unit, scale in DISAGG_ROWS:
        t.add_row(label, *[_fmt(dis[s][key] * scale, key, p["price"]) for s in ("bound", "prediction")], unit)
    if not dis["prediction"]["prefill_fits"]:
        t.caption = "the prefill pool cannot hold the weights and these prompts' KV"
    console.print(t)


def _fmt(x: float, key: str, pr: dict[str, Any]) -> str:
    if x != x:
        return "no price" if key.startswith("usd") and pr["basis"] == "no price" else "n/a"
    return f"{x:,.4g}" if abs(x) < 1e4 else f"{x:,.0f}"
