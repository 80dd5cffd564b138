"""Calibration of the predicted decode step (:mod:`rooflax.core.predict`) on measured silicon.

A few physical parameters, shared by every chip and model (no per-system or per-model table),
are fitted by Levenberg–Marquardt on the JAX Jacobian (:func:`rooflax.core.fit.least_squares`)
to the log of measured TPOT. The engine's own software time per layer (:data:`ENGINE_PARAMETERS`)
is fitted per engine around the shared value (a prior of :data:`ENGINE_SPREAD` in log units); an
engine the data does not hold gets the shared value:

==================  =====  =====================================================================
parameter           unit   meaning
==================  =====  =====================================================================
t_layer             s      fixed time per decoder layer per step (launches, synchronization)
t_overhead          s      fixed time per step (scheduling, sampling)
t_moe_layer         s      extra fixed time per MoE layer (router, top-k, dispatch/combine kernels)
t_seq               s      time per running sequence per step (scheduler, sampling, metadata)
t_dequant_layer     s      extra fixed time per layer whose weights the chip cannot multiply
                           natively (weight-only quantization: dequantizing GEMM kernels)
weight_bw_eff_16    1      realized fraction of HBM bandwidth streaming 16-bit weights
weight_bw_eff_8     1      … 8-bit weights (fp8, int8)
weight_bw_eff_4     1      … 4-bit weights (nvfp4, mxfp4: dequantization and scales)
kv_bw_eff           1      realized fraction of HBM bandwidth streaming KV (attention kernels)
gemm_eff            1      realized fraction of peak FLOPS in decode GEMMs
prefill_eff         1      realized fraction of peak FLOPS in the interleaved prefill
attn_eff            1      realized fraction of peak FLOPS in decode attention kernels
==================  =====  =====================================================================

Fixed physics (not fitted): kernels in sequence (dense GEMMs, experts, attention each bound by
its own resource), the busiest EP rank's experts are read (expected maximum), prompts
of aggregated serving are interleaved (B/osl per step), and the running batch is what the KV
capacity holds at ``KV_CAPACITY_FRACTION`` of HBM.

The **bound** of a row is :func:`rooflax.core.roofline.t_step` on the same layout with every
efficiency 1; the **prediction** is :func:`rooflax.core.predict.latency` with a calibration.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import yaml

from rooflax.core import fit as core_fit
from rooflax.core import parallel, predict
from rooflax.core import roofline as rl
from rooflax.core.specs import Hardware, Model, Workload, precision_bytes
from rooflax.sweeps import catalogs
from rooflax.sweeps import efficiency as eff
from rooflax.sweeps.measurements import Measurement

#: Fraction of HBM counted for weights + KV when limiting the running batch: all of it, so the
#: limit is certain (engines reserve 5–15 % more for activations and CUDA graphs, e.g. vLLM
#: gpu_memory_utilization 0.9; with catalog capacities known to a few % a tighter value would
#: flag runs that do fit, such as DeepSeek-R1 fp8 on 4 B200).
KV_CAPACITY_FRACTION = 1.0

#: name → (unit, start value, description).
PARAMETERS: dict[str, tuple[str, float, str]] = {
    "t_layer": ("s", 2e-5, "fixed time per decoder layer per step"),
    "t_overhead": ("s", 2e-3, "fixed time per step"),
    "t_moe_layer": ("s", 2e-5, "extra fixed time per MoE layer per step"),
    "t_seq": ("s", 5e-6, "time per running sequence per step (host, sampling, metadata)"),
    "t_dequant_layer": ("s", 2e-5, "extra fixed time per layer where weights are dequantized"),
    "weight_bw_eff_16": ("1", 0.8, "realized HBM fraction streaming 16-bit weights"),
    "weight_bw_eff_8": ("1", 0.7, "realized HBM fraction streaming 8-bit weights"),
    "weight_bw_eff_4": ("1", 0.5, "realized HBM fraction streaming 4-bit weights"),
    "kv_bw_eff": ("1", 0.7, "realized HBM fraction streaming KV"),
    "gemm_eff": ("1", 0.5, "realized fraction of peak FLOPS in decode GEMMs"),
    "prefill_eff": ("1", 0.5, "realized fraction of peak FLOPS in interleaved prefill"),
    "attn_eff": ("1", 0.3, "realized fraction of peak FLOPS in decode attention"),
}
NAMES = list(PARAMETERS)

#: The engine's software time per layer (kernel launches, synchronization, fusion; its MoE
#: kernels; its kernels for weights the chip cannot multiply natively): fitted per engine as the
#: shared value × exp(δ), δ ~ N(0, ENGINE_SPREAD²) — a prior that keeps an engine with few rows
#: near the shared value. Every other parameter is shared by all engines.
ENGINE_PARAMETERS = ("t_layer", "t_moe_layer", "t_dequant_layer")
#: Prior spread of an engine's time per layer around the shared value, log units (2: ×7.4 — a
#: weak prior: engines differ several-fold; it fixes the shared value an unknown engine gets).
ENGINE_SPREAD = 2.0
#: Fewest rows of an engine for its own time per layer (fewer: the shared values).
MIN_ENGINE_ROWS = 50
#: Scale of the log residuals the prior is weighed against before the data give their own, log
#: units (the shipped fit's rms is ≈ 0.3).
RESIDUAL_SCALE = 0.3


def neutral(name: str) -> float:
    """The value of a parameter that adds no physics (a file written before it existed): 0 s for
    times, 1 for realized fractions (the :class:`rooflax.core.predict.Engine` defaults)."""
    return 0.0 if PARAMETERS[name][0] == "s" else 1.0


def bulk_precision(is_moe: bool, dense: str, experts: str) -> str:
    """The format of the bulk of the weights a step streams (an MoE's experts): it picks the
    weight-streaming efficiency, for measured rows and deployments alike."""
    return experts if is_moe else dense


def _bits_class(precision: str) -> str:
    bits = 8 * precision_bytes(precision)
    return "weight_bw_eff_16" if bits > 12 else ("weight_bw_eff_8" if bits > 6 else "weight_bw_eff_4")


def is_native(hw_key: str, precision: str) -> bool:
    """True where the chip multiplies weights of ``precision`` as they are stored (it has a peak
    for that format); False for weight-only quantization (mxfp4 on Hopper, fp8 on Ampere)."""
    return catalogs.has_peak(hw_key, precision)


def dequant_of(hw_key: str, *precisions: str, compute: str | None = None) -> float:
    """1.0 where the GEMMs dequantize weights first, else 0.0 —
    :attr:`rooflax.core.predict.Engine.dequant`: any of the weights' ``precisions`` is not native
    to the chip (:func:`is_native`), or the first (the dense weights) is narrower than the GEMM's
    ``compute`` precision (weight-only quantization such as int4 weights in bf16 GEMMs)."""
    narrower = compute is not None and precision_bytes(precisions[0]) < precision_bytes(compute)
    return 0.0 if all(is_native(hw_key, p) for p in precisions) and not narrower else 1.0


def prefill_skip_of(arch: Any) -> float:
    """Weights of N_active a prompt token never multiplies in prefill, weights: the input
    embedding (a lookup) and the LM head (only the last token's logits are computed)."""
    return float(arch.embedding_params() + arch.lm_head_params())


@functools.cache
def _model(model_key: str, weights: str, experts: str, kv: str) -> Model:
    arch = catalogs.architecture(model_key)
    m = parallel.extended_model(arch, weights=weights, kv=kv)
    f = float(m.expert_fraction)
    w = (1.0 - f) * precision_bytes(weights) + f * precision_bytes(experts)
    return m.replace(bytes_per_weight=w)


def _row_trees(m: Measurement) -> tuple[Hardware, Model, Workload, dict[str, float]]:
    hw_key = catalogs.resolve_hardware(m.hardware)
    model_key = catalogs.resolve_model(m.model)
    prec = catalogs.compute_precision(hw_key, m.compute)
    hw = catalogs.hardware(hw_key, chips=float(m.chips), precision=prec)
    hw = hw.replace(link_bw=eff.replica_link_bw(hw_key, m.chips), dp=float(m.attention_dp),
                    expert_replicas=1.0,
                    moe_ep=1.0 if m.moe_ep > 1 else 0.0)
    model = _model(model_key, m.weights, m.experts, m.kv)
    arch = catalogs.architecture(model_key)
    wl = Workload(batch=float(m.batch), context=m.isl + m.osl / 2.0, prompt=float(m.isl),
                  spec_k=float(m.spec_k), spec_alpha=float(m.spec_alpha))
    extra = {"osl": m.osl if m.mode == "agg" else math.inf,
             "class": NAMES.index(_bits_class(bulk_precision(arch.is_moe, m.weights, m.experts))),
             "skip": prefill_skip_of(arch),
             "dequant": dequant_of(hw_key, m.weights, m.experts, compute=m.compute)}
    return hw, model, wl, extra


@dataclasses.dataclass
class Rows:
    """Measurements stacked into pytrees of shape (N,) for one vectorized evaluation."""

    items: list[Measurement]
    hw: Hardware
    model: Model
    wl: Workload
    osl: jax.Array
    weight_class: np.ndarray   # index into NAMES of each row's weight-streaming efficiency
    measured_s: np.ndarray     # measured TPOT, s
    skip: np.ndarray           # weights prefill never multiplies (:func:`prefill_skip_of`)
    dequant: np.ndarray        # 1 where the weights are not native to the chip (:func:`dequant_of`)


def _stack_np(items: list[Any]) -> Any:
    """Pytrees of scalars → one pytree of (N,) arrays (numpy: fast for thousands of rows)."""
    return jax.tree.map(lambda *xs: jnp.asarray(np.asarray(xs, dtype=float)), *items)


def rows(items: Sequence[Measurement]) -> Rows:
    """Stack expressible measurements (TPOT rows); raises KeyError/ValueError on a bad name."""
    trees = [_row_trees(m) for m in items]
    hw, model, wl = (_stack_np([t[i] for t in trees]) for i in range(3))
    return Rows(list(items), hw, model, wl, jnp.asarray([t[3]["osl"] for t in trees]),
                np.asarray([t[3]["class"] for t in trees]),
                np.asarray([m.value * 1e-3 for m in items]),
                np.asarray([t[3]["skip"] for t in trees]),
                np.asarray([t[3]["dequant"] for t in trees]))


def engine_of(theta: jax.Array, r: Rows) -> predict.Engine:
    """The per-row :class:`Engine` of parameters θ (natural units, ordered as :data:`NAMES`;
    shape (k,) for all rows, or (k, N) row by row)."""
    n = len(r.items)
    theta = jnp.broadcast_to(jnp.reshape(theta, (len(NAMES), -1)), (len(NAMES), n))
    cls = jnp.asarray(r.weight_class)[None, :]
    t = dict(zip(NAMES, theta, strict=True))
    return _engine(t, jnp.take_along_axis(theta, cls, 0)[0], r.osl, jnp.asarray(r.skip),
                   jnp.asarray(r.dequant))


def _engine(t: dict[str, Any], weight_bw_eff: Any, osl: Any, skip: Any = 0.0,
            dequant: Any = 0.0) -> predict.Engine:
    """The :class:`Engine` of calibrated parameters ``t`` (name → value), its weight-streaming
    efficiency already picked by weight precision, ``skip`` the model's :func:`prefill_skip_of`,
    ``dequant`` :func:`dequant_of` the chip and weights: one construction for rows and deployments."""
    return predict.Engine(
        t_layer=t["t_layer"], t_moe_layer=t["t_moe_layer"], t_overhead=t["t_overhead"],
        t_seq=t["t_seq"], t_dequant_layer=t["t_dequant_layer"], dequant=dequant,
        weight_bw_eff=weight_bw_eff, kv_bw_eff=t["kv_bw_eff"],
        gemm_eff=t["gemm_eff"], prefill_eff=t["prefill_eff"], attn_eff=t["attn_eff"],
        prefill_skip=skip, per_kernel=1.0, expert_max=1.0, osl=osl,
        kv_capacity_fraction=KV_CAPACITY_FRACTION)


def predicted_s(theta: jax.Array, r: Rows) -> jax.Array:
    """Predicted TPOT of each row, s."""
    return predict.latency(r.hw, r.model, r.wl, engine_of(theta, r))


def bound_s(r: Rows) -> jax.Array:
    """The roofline bound on TPOT of each row (every efficiency 1, concurrency = batch), s."""
    return rl.latency(r.hw, r.model, r.wl)


def unfit(r: Rows) -> dict[int, str]:
    """Rows whose weights do not fit the replica's HBM (catalog capacity): index → the reason
    (the table's layout or the chip's memory is not what it says; no step to predict)."""
    store = np.asarray(rl.weight_store_bytes(r.hw, r.model))
    cap = np.asarray(r.hw.replica_capacity)
    return {int(i): f"weights: {store[i] / 1e9:.0f} GB stored exceed the replica's "
            f"{cap[i] / 1e9:.0f} GB of HBM ({r.items[i].chips} × {r.items[i].hardware}, catalog): "
            "the row's layout or chip memory is not what the table states"
            for i in np.flatnonzero(store > cap)}


def running_batch(r: Rows) -> np.ndarray:
    """Sequences the KV capacity lets run per step (≤ the stated batch)."""
    eng = predict.Engine(kv_capacity_fraction=KV_CAPACITY_FRACTION)
    return np.asarray(predict.running_batch(r.hw, r.model, r.wl, eng))


@dataclasses.dataclass
class Calibration:
    """Fitted parameters: values, 1-σ, units; ``per_engine`` overrides for named engines."""

    values: dict[str, float]
    sigmas: dict[str, float]
    rows: int = 0
    rms_log: float = math.nan
    per_engine: dict[str, Calibration] = dataclasses.field(default_factory=dict)

    def theta(self, engine: str | None = None) -> np.ndarray:
        src = self.per_engine.get(engine or "", self)
        return np.asarray([src.values[n] for n in NAMES])

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "parameters": {n: {"value": float(self.values[n]), "sigma": float(self.sigmas[n]),
                               "unit": PARAMETERS[n][0], "description": PARAMETERS[n][2]}
                           for n in NAMES},
            "fixed": {"kv_capacity_fraction": KV_CAPACITY_FRACTION, "expert_max": 1.0,
                      "engine_parameters": list(ENGINE_PARAMETERS), "engine_spread": ENGINE_SPREAD},
            "rows": self.rows, "rms_log_residual": float(self.rms_log)}
        if self.per_engine:
            out["per_engine"] = {k: v.to_dict() for k, v in self.per_engine.items()}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        params = data["parameters"]
        per = {k: cls.from_dict(v) for k, v in (data.get("per_engine") or {}).items()}
        return cls({n: float(params[n]["value"]) if n in params else neutral(n) for n in NAMES},
                   {n: float(params.get(n, {}).get("sigma", math.nan)) for n in NAMES},
                   int(data.get("rows", 0)), float(data.get("rms_log_residual", math.nan)), per)


def _robust_weights(res: np.ndarray, scale: float) -> np.ndarray:
    """Cauchy weights √(1/(1+(r/c)²)) on log residuals (queueing outliers pull less)."""
    return 1.0 / np.sqrt(1.0 + (res / scale) ** 2)


def _engine_index(r: Rows, engines: Sequence[str]) -> np.ndarray:
    """Each row's index into ``engines`` (``len(engines)``: an engine with only shared values)."""
    return np.asarray([engines.index(m.engine) if m.engine in engines else len(engines)
                       for m in r.items])


def theta_rows(x: jax.Array, r: Rows, engines: Sequence[str] = ()) -> jax.Array:
    """θ of each row, (k, N), from the fit's coordinates ``x``: log of the shared parameters
    (:data:`NAMES`), then δ of :data:`ENGINE_PARAMETERS` per engine of ``engines`` (parameter-major)."""
    k, n = len(NAMES), len(r.items)
    theta = jnp.broadcast_to(jnp.exp(x[:k])[:, None], (k, n))
    if not engines:
        return theta
    delta = jnp.reshape(x[k:], (len(ENGINE_PARAMETERS), len(engines)))
    delta = jnp.concatenate([delta, jnp.zeros((len(ENGINE_PARAMETERS), 1))], axis=1)
    at = np.asarray([NAMES.index(p) for p in ENGINE_PARAMETERS])
    factor = jnp.ones((k, n)).at[at].set(jnp.exp(delta[:, _engine_index(r, engines)]))
    return theta * factor


def _calibration(x: np.ndarray, cov: np.ndarray, r: Rows, engines: Sequence[str],
                 res: np.ndarray) -> Calibration:
    """The :class:`Calibration` of fitted coordinates ``x`` (see :func:`theta_rows`) and their
    covariance: shared values ± 1σ, and each engine's values with its own time per layer."""
    k = len(NAMES)
    theta = np.exp(x[:k])
    sig = theta * np.sqrt(np.maximum(np.diag(cov)[:k], 0.0))
    cal = Calibration(dict(zip(NAMES, map(float, theta), strict=True)),
                      dict(zip(NAMES, map(float, sig), strict=True)), len(r.items),
                      float(np.sqrt(np.mean(res ** 2))))
    idx = _engine_index(r, engines)
    for j, engine in enumerate(engines):
        values, sigmas = dict(cal.values), dict(cal.sigmas)
        for i, p in enumerate(ENGINE_PARAMETERS):
            a, b = NAMES.index(p), k + i * len(engines) + j
            values[p] = float(theta[a] * np.exp(x[b]))
            sigmas[p] = float(values[p] * np.sqrt(max(cov[a, a] + cov[b, b] + 2 * cov[a, b], 0.0)))
        mine = idx == j
        cal.per_engine[engine] = Calibration(values, sigmas, int(mine.sum()),
                                             float(np.sqrt(np.mean(res[mine] ** 2))))
    return cal


def fit(r: Rows, *, robust: float | None = 0.25, rounds: int = 2, iterations: int = 40,
        engines: Sequence[str] = ()) -> Calibration:
    """Fit θ (log-parametrized) to log measured TPOT; robust: iteratively reweighted (Cauchy scale
    ``robust`` in log units; None: plain least squares). ``engines``: those whose time per layer
    (:data:`ENGINE_PARAMETERS`) is fitted on its own around the shared value: a prior δ ~
    N(0, ENGINE_SPREAD²) against residuals of the data's own scale s (re-estimated each round,
    starting from :data:`RESIDUAL_SCALE`)."""
    engines, k = list(engines), len(NAMES)
    y = jnp.log(jnp.asarray(r.measured_s))
    w, scale = np.ones(len(r.items)), RESIDUAL_SCALE
    x = np.concatenate([np.log([PARAMETERS[n][1] for n in NAMES]),
                        np.zeros(len(ENGINE_PARAMETERS) * len(engines))])
    for _ in range(rounds if robust or engines else 1):
        wj = jnp.asarray(w)

        def residual(lx, wj=wj, scale=scale):
            data = wj * (jnp.log(predicted_s(theta_rows(lx, r, engines), r)) - y)
            return jnp.concatenate([data, scale * lx[k:] / ENGINE_SPREAD])

        x, cov, chi2, n = core_fit.least_squares(residual, x, iterations=iterations)
        res = np.asarray(jnp.log(predicted_s(theta_rows(jnp.asarray(x), r, engines), r)) - y)
        if robust:
            w = _robust_weights(res, robust)
        scale = float(np.sqrt(np.mean((w * res) ** 2)))
    return _calibration(np.asarray(x), np.asarray(cov), r, engines, res)


def subset(r: Rows, mask: np.ndarray) -> Rows:
    """The rows where ``mask`` is true."""
    idx = np.flatnonzero(mask)
    take = functools.partial(jax.tree.map, lambda a: jnp.asarray(a)[idx] if jnp.ndim(a) else a)
    return Rows([r.items[i] for i in idx], take(r.hw), take(r.model), take(r.wl),
                jnp.asarray(r.osl)[idx], r.weight_class[idx], r.measured_s[idx], r.skip[idx],
                r.dequant[idx])


#: Loader rules whose rows carry an inferred (not stated) running batch: predicted and validated,
#: but not used to fit the calibration.
NOT_TRAINING = ("disagg-batch-from-concurrency",)


def training_rows(r: Rows) -> Rows:
    """The rows a calibration is fitted on: all but those of :data:`NOT_TRAINING` rules."""
    keep = np.asarray([not set(m.rules) & set(NOT_TRAINING) for m in r.items])
    return subset(r, keep) if keep.any() else r


def calibrate(r: Rows, *, per: str | None = "engine", **kw: Any) -> Calibration:
    """The calibration: shared parameters and, with ``per="engine"`` (the default), each engine's
    own time per layer (:data:`ENGINE_PARAMETERS`) for engines with ≥ :data:`MIN_ENGINE_ROWS` rows;
    ``per=None``: shared values only.

    Fitted on :func:`training_rows` (rows with a stated running batch)."""
    r = training_rows(r)
    count = collections.Counter(m.engine for m in r.items)
    engines = sorted(e for e, c in count.items() if e and c >= MIN_ENGINE_ROWS) if per == "engine" else []
    return fit(r, engines=engines, **kw)


def predict_rows(r: Rows, cal: Calibration) -> np.ndarray:
    """Predicted TPOT of each row with ``cal`` (its engine's parameters where it has them), s."""
    theta = np.stack([cal.theta(m.engine) for m in r.items], axis=1)  # (k, N)
    return np.asarray(predicted_s(jnp.asarray(theta), r))


def shipped_path() -> Path:
    """The calibration shipped as package data (what "predicted" means)."""
    return Path(str(resources.files("rooflax.sweeps") / "catalog" / "calibration.yaml"))


def load(path: str | Path | None = None) -> Calibration:
    """A calibration file (default: the shipped one)."""
    p = Path(path) if path is not None else shipped_path()
    return Calibration.from_dict(yaml.safe_load(p.read_text(encoding="utf-8")))


def save(cal: Calibration, path: str | Path, *, source: str = "") -> None:
    """Write a calibration file (YAML, parameters with units and 1-σ)."""
    data = {"rooflax_calibration": 1, "source": source, **cal.to_dict()}
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


@functools.cache
def _cached(path: str) -> Calibration:
    return load(path)


def engines(path: str | Path | None = None) -> list[str]:
    """The engines a calibration file holds a time per layer of their own for (default: shipped)."""
    return sorted(_cached(str(Path(path) if path is not None else shipped_path())).per_engine)


def known_engine(engine: str | None, path: str | Path | None = None) -> str | None:
    """``engine`` where the calibration holds its own time per layer (None: the shared values);
    ValueError naming the engines it holds otherwise."""
    if engine is not None and engine not in engines(path):
        raise ValueError(f"expected one of {', '.join(engines(path))} (the engines the "
                         f"calibration holds), found {engine!r}")
    return engine


def engine_for(weights: str, *, osl: float = math.inf, engine: str | None = None,
               path: str | Path | None = None, prefill_skip: float = 0.0,
               dequant: float = 0.0) -> predict.Engine:
    """The calibrated :class:`Engine` of any deployment (what "prediction" means everywhere).

    The parameters are shared by every chip and model; a deployment picks only the weight-streaming
    efficiency by its weights' precision (``weights``: a :data:`core.specs` precision name) and the
    interleaved prefill by its output length (``osl``, tokens per request, aggregated serving;
    inf: a disaggregated decode pool; ``prefill_skip``: :func:`prefill_skip_of` the model's
    architecture; ``dequant``: :func:`dequant_of` the chip and weights). ``engine``: that engine's
    time per layer if the file has it (else the shared values);
    ``path``: a calibration file (default: :func:`shipped_path`). Apply it to the *bound's*
    hardware (datasheet peaks), as :func:`predicted_s` does for a measured row.
    """
    cal = _cached(str(Path(path) if path is not None else shipped_path()))
    t = dict(zip(NAMES, map(float, cal.theta(engine)), strict=True))
    return _engine(t, t[_bits_class(weights)], float(osl), float(prefill_skip), float(dequant))


def deployment_engine(hw_key: str, arch: Any, weights: str, *, osl: float = math.inf,
                      engine: str | None = None) -> predict.Engine:
    """The calibrated :class:`Engine` of catalog chip ``hw_key`` serving architecture ``arch`` with
    ``weights`` (a precision, or ``"native"``: the checkpoint's, experts apart — gpt-oss's mxfp4):
    the weight-streaming efficiency of the bulk of the bytes (the experts of an MoE), dequantization
    where a stored format is not native to the chip, the prompts' skipped weights. One rule for
    ``estimate``, ``query``/``sensitivity --predicted`` and ``explore``."""
    dense = experts = weights
    if weights.lower() == "native":
        dense = arch.native_precision
        experts = arch.native_expert_precision or dense
    return engine_for(bulk_precision(arch.is_moe, dense, experts), osl=osl, engine=engine,
                      prefill_skip=prefill_skip_of(arch), dequant=dequant_of(hw_key, dense, experts))

