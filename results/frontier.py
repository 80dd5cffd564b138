"""``rooflax frontier``: every deployment of a model on each hardware, its Pareto frontier, and
the cheapest deployment that meets an SLO.

For each hardware, the grid is chips (1…72 and the catalog's presets of that chip) × layout
(tp; ep = attention-DP over every chip; tp-ep with attention TP t for every divisor 1 < t < n)
× precision (weights = compute, every one the chip has a peak for) × KV precision × batch
(log-spaced). All of it is evaluated in ONE jitted call of :func:`rooflax.results.estimate.numbers`
— the same function ``rooflax estimate`` uses, so a chosen point's estimate is that of
``estimate`` exactly. Deployments whose KV (at isl+osl) does not fit are dropped.

Speed is output tokens/s per user, cost is $ per M output tokens (prediction by default: the
calibrated :mod:`rooflax.core.predict` of ``sweeps/catalog/calibration.yaml``, as in ``estimate``;
``peak=True`` for the roofline bound).
The frontier keeps the deployments no other is both faster and cheaper than.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import numpy as np

from . import estimate as E

#: Version of the ``--json`` output.
SCHEMA = "rooflax.frontier/1"
#: Chip counts tried on every hardware (the catalog's presets of the chip are added).
CHIPS = (1, 2, 4, 8, 16, 32, 64, 72)
#: Precisions tried for weights and compute (those the chip has a peak for).
PRECISIONS = ("bf16", "fp8", "fp4")
#: KV-cache precisions tried.
KV_PRECISIONS = ("bf16", "fp8")
#: Deployments are padded to a multiple of this (one compilation serves every hardware).
PAD = 128
#: Batches per replica tried: 1 … 131072, log-spaced (1024 values, the integers among them once).
BATCHES = np.unique(np.round(np.geomspace(1, 131072, 1100)))


@dataclasses.dataclass(frozen=True)
class Slo:
    """Service-level objectives (inf / 0: none)."""

    ttft: float = math.inf
    """Most seconds to the first token."""
    tpot: float = math.inf
    """Most seconds per output token."""
    min_speed: float = 0.0
    """Fewest output tokens/s per user."""


# -- the grid --------------------------------------------------------------------------------
def chip_counts(hardware: str) -> list[int]:
    """:data:`CHIPS` plus the chip counts of the catalog's presets of ``hardware``."""
    from rooflax.sweeps import catalogs

    key = catalogs.resolve_hardware(hardware)
    chip = catalogs.hardware_entry(key).get("preset_of") or key
    presets = [int(catalogs.hardware_entry(h)["chips"]) for h in catalogs.hardware_names()
               if catalogs.hardware_entry(h).get("preset_of") == chip]
    return sorted(set(CHIPS) | set(presets))


def layouts(n: int) -> list[tuple[str, int | None]]:
    """(layout, attention TP) pairs for n chips: tp, ep, and tp-ep for every divisor 1 < t < n."""
    if n == 1:
        return [("tp", None)]
    return [("tp", None), ("ep", None)] + [("tp-ep", t) for t in range(2, n) if n % t == 0]


def deployments(hardware: str, model: str, base: E.Deployment) -> list[E.Deployment]:
    """Every deployment of the grid but batch (``concurrency`` is set per batch later)."""
    from rooflax.sweeps import catalogs

    peaks = catalogs.hardware_entry(hardware)["peak_tflops_dense"]
    out = []
    for n in chip_counts(hardware):
        for kind, tp in layouts(n):
            for p in (p for p in PRECISIONS if peaks.get(p)):
                for kv in KV_PRECISIONS:
                    out.append(dataclasses.replace(base, hardware=hardware, model=model, chips=float(n),
                                                   layout=kind, tp=tp, precision=p, weights=None, kv=kv))
    return out


def stacked(deps: list[E.Deployment]) -> tuple[Any, Any, np.ndarray]:
    """(Hardware at datasheet peaks, Model) with leaves of shape (D, 1), power (D, 1)."""
    from rooflax.core.specs import stack

    hws, models, power = [], [], []
    for d in deps:
        hw, m, info = E.trees(d, peak=True)
        hws.append(hw)
        models.append(m)
        power.append(info["power_kw"] * 1e3)
    col = (len(deps), 1)
    return stack(hws, axis=0, ndim=2), stack(models, axis=0, ndim=2), np.reshape(power, col)


def evaluate(deps: list[E.Deployment], *, peak: bool = False,
             batches: np.ndarray = BATCHES) -> dict[str, np.ndarray]:
    """:func:`estimate.numbers` over deployments × batches in one jitted call, arrays of shape (D, B):
    the bound (``peak``) or the calibrated prediction (each deployment's :func:`estimate.engine`)."""
    import jax.numpy as jnp

    from rooflax.core.specs import stack

    pad = -len(deps) % PAD  # the same shapes on every hardware: one compilation
    padded = deps + deps[-1:] * pad
    hw, model, power = stacked(padded)
    eng = None if peak else stack([E.engine(d) for d in padded], axis=0, ndim=2)
    b = jnp.asarray(batches, dtype=float)[None, :]
    base = deps[0]
    raw = E._jitted()(hw, model, b, float(base.isl), float(base.osl), power, eng)
    shape = (len(deps) + pad, len(batches))
    return {k: np.broadcast_to(np.asarray(v), shape)[:len(deps)] for k, v in raw.items()}


# -- selection --------------------------------------------------------------------------------
def feasible(v: dict[str, np.ndarray], slo: Slo) -> np.ndarray:
    """Boolean (D, B): KV fits at isl+osl and every SLO is met."""
    return ((v["headroom_b"] >= 0) & (v["ttft_s"] <= slo.ttft) & (v["tpot_s"] <= slo.tpot)
            & (v["tok_s_per_user"] >= slo.min_speed))


def pareto(speed: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Indices of the points no other is both at least as fast and cheaper than, fastest first."""
    ok = np.flatnonzero(np.isfinite(speed) & np.isfinite(cost))
    order = ok[np.lexsort((cost[ok], -speed[ok]))]  # fastest first, cheapest first among ties
    keep, best = [], math.inf
    for i in order:
        if cost[i] < best:
            keep.append(i)
            best = cost[i]
    return np.asarray(keep, dtype=int)


def cheapest(v: dict[str, np.ndarray], mask: np.ndarray) -> tuple[int, int] | None:
    """(deployment, batch) index of the least $/M output tokens among ``mask``; None if none."""
    cost = np.where(mask, v["usd_per_m_output"], np.inf)
    if not np.isfinite(cost).any():
        return None
    return tuple(int(i) for i in np.unravel_index(np.argmin(cost), cost.shape))


def prefill_pool(hardware: str, model: str, base: E.Deployment, slo: Slo, kv: str,
                 peak: bool = False) -> dict[str, Any] | None:
    """The cheapest prefill pool (one prompt per step, KV in ``kv``) whose TTFT, KV transfer
    included, meets ``slo.ttft``: {"deployment", "ttft_s", "usd_per_request"}; None if none does."""
    import rooflax.core as rc
    from rooflax.core import disagg
    from rooflax.sweeps.efficiency import SCALE_OUT_BW

    deps = [d for d in deployments(hardware, model, base) if d.kv == kv]
    v = evaluate(deps, peak=peak, batches=np.array([1.0]))
    _, m, _ = E.trees(deps[0], peak=peak)
    transfer = float(disagg.kv_transfer_time(m, rc.Workload(prompt=float(base.isl)), SCALE_OUT_BW))
    ttft = v["ttft_s"][:, 0] + transfer
    per_request = v["usd_per_m_input"][:, 0] * base.isl / 1e6
    ok = (v["headroom_b"][:, 0] >= 0) & (ttft <= slo.ttft) & np.isfinite(per_request)
    if not ok.any():
        return None
    i = int(np.argmin(np.where(ok, per_request, np.inf)))
    return {"deployment": deps[i], "ttft_s": float(ttft[i]), "usd_per_request": float(per_request[i])}


def with_prefill(v: dict[str, np.ndarray], deps: list[E.Deployment], pools: dict[str, Any],
                 osl: float) -> dict[str, np.ndarray]:
    """Decode numbers with each deployment's prefill pool (by KV precision): TTFT is the pool's,
    $/M output adds its $ per request over osl tokens; NaN where no pool meets the SLO."""
    ttft = np.array([[pools[d.kv]["ttft_s"] if pools[d.kv] else np.nan] for d in deps])
    req = np.array([[pools[d.kv]["usd_per_request"] if pools[d.kv] else np.nan] for d in deps])
    shape = v["ttft_s"].shape
    return dict(v, ttft_s=np.broadcast_to(ttft, shape),
                usd_per_m_output=v["usd_per_m_output"] + req * 1e6 / osl)


def _point(dep: E.Deployment, batch: float, v: dict[str, np.ndarray], i: int, j: int) -> dict[str, Any]:
    keys = ("tok_s_per_user", "usd_per_m_output", "ttft_s", "tpot_s", "tok_s_per_gpu")
    return {"chips": dep.chips, "layout": dep.layout, "tp": dep.tp, "precision": dep.precision,
            "kv": dep.kv, "concurrency": float(batch), **{k: float(v[k][i, j]) for k in keys}}


def frontier(hardware: list[str], model: str, *, slo: Slo = Slo(), base: E.Deployment | None = None,
             peak: bool = False, batches: np.ndarray = BATCHES, disagg: bool = False) -> dict[str, Any]:
    """Per hardware: deployments evaluated, seconds, the Pareto frontier, the cheapest meeting ``slo``.

    ``disagg``: prefill on a pool of its own — the cheapest prefill deployment meeting the TTFT
    SLO (KV transfer included) — and decode on the grid; cost then includes the prefill pool's
    $ per request spread over osl tokens, and TTFT is the prefill pool's.
    """
    from rooflax.sweeps import catalogs

    base = base or E.Deployment(hardware="", model=model)
    out: dict[str, Any] = {"schema": SCHEMA, "model": catalogs.resolve_model(model), "disaggregated": disagg,
                           "isl": base.isl, "osl": base.osl, "slo": dataclasses.asdict(slo),
                           "side": "bound" if peak else "prediction",
                           "label": E.LABELS["bound" if peak else "prediction"], "hardware": {}}
    for h in hardware:
        key = catalogs.resolve_hardware(h)
        t0 = time.perf_counter()
        deps = deployments(key, model, base)
        if disagg:  # decode pools: no prompts interleaved in the predicted step
            deps = [dataclasses.replace(d, prefill=E.PrefillPool()) for d in deps]
        v = evaluate(deps, peak=peak, batches=batches)
        pools = {kv: prefill_pool(key, model, base, slo, kv, peak) for kv in KV_PRECISIONS} if disagg else {}
        if disagg:
            v = with_prefill(v, deps, pools, base.osl)
        seconds = time.perf_counter() - t0
        fits = feasible(v, Slo())
        speed = np.where(fits, v["tok_s_per_user"], np.nan).ravel()
        front = pareto(speed, v["usd_per_m_output"].ravel())
        nb = len(batches)
        pr = catalogs.price(key, base.price if base.price is not None else catalogs.DEFAULT_PRICE)
        if base.hw_custom and "price" in base.hw_custom:
            pr = catalogs.Price(base.hw_custom["price"], "custom", "--hw price")
        best = cheapest(v, feasible(v, slo))
        entry: dict[str, Any] = {
            "deployments": int(v["tpot_s"].size), "fit": int(fits.sum()), "seconds": seconds,
            "price": {"usd_per_chip_hour": pr.usd_per_hour, "basis": pr.basis},
            "frontier": [_point(deps[k // nb], batches[k % nb], v, k // nb, k % nb) for k in front],
            "best": None, "estimate": None,
        }
        pre = pools.get(deps[best[0]].kv) if best is not None else None
        if pre is not None:
            pd = pre["deployment"]
            entry["prefill"] = {"chips": pd.chips, "layout": pd.layout, "tp": pd.tp, "precision": pd.precision,
                                "kv": pd.kv, "ttft_s": pre["ttft_s"], "usd_per_request": pre["usd_per_request"]}
        if best is not None:
            i, j = best
            entry["best"] = _point(deps[i], batches[j], v, i, j)
            chosen = dataclasses.replace(deps[i], concurrency=float(batches[j]))
            if pre is not None:
                pd = pre["deployment"]
                chosen = dataclasses.replace(chosen, prefill=E.PrefillPool(
                    chips=pd.chips, layout=pd.layout, tp=pd.tp, precision=pd.precision))
            entry["estimate"] = E.estimate(chosen)
        elif not pr.known:
            entry["why_none"] = f"{catalogs.NO_PRICE}: {pr.source}"
        elif disagg and not any(pools.values()):
            entry["why_none"] = "no prefill pool meets the TTFT SLO"
        else:
            entry["why_none"] = "no deployment meets the SLO" if fits.any() else "the model does not fit"
        out["hardware"][key + (" (modified)" if base.hw_custom else "")] = entry
    return out


# -- output -----------------------------------------------------------------------------------
def render(res: dict[str, Any], console: Any) -> None:
    """One table: per hardware, the cheapest deployment meeting the SLO and the frontier's size."""
    from rich.table import Table

    slo = res["slo"]
    want = ", ".join(x for x in (
        f"TTFT ≤ {slo['ttft'] * 1e3:g} ms" if math.isfinite(slo["ttft"]) else "",
        f"TPOT ≤ {slo['tpot'] * 1e3:g} ms" if math.isfinite(slo["tpot"]) else "",
        f"≥ {slo['min_speed']:g} tok/s per user" if slo["min_speed"] > 0 else "") if x) or "no SLO"
    how = "disaggregated (decode pool shown; $ includes the prefill pool)" if res["disaggregated"] else ""
    t = Table(title=f"Cheapest deployment of {res['model']} (isl {res['isl']:g}, osl {res['osl']:g}) "
                    f"meeting {want} — {res['side']} {how}")
    for c in ("hardware", "price basis", "chips", "layout", "precision (w/kv)", "concurrency",
              "tok/s/user", "$/M out", "TTFT ms", "TPOT ms", "frontier pts", "evaluated"):
        t.add_column(c, justify="right")
    for h, e in res["hardware"].items():
        b = e["best"]
        basis = e["price"]["basis"]
        count = f"{e['deployments']:,} in {e['seconds']:.2f} s"
        if b is None:
            t.add_row(h, basis, *([""] * 7), e.get("why_none", ""), str(len(e["frontier"])), count)
            continue
        lay = b["layout"] + (f" tp{b['tp']:g}" if b["tp"] else "")
        t.add_row(h, basis, f"{b['chips']:g}", lay, f"{b['precision']}/{b['kv']}", f"{b['concurrency']:g}",
                  f"{b['tok_s_per_user']:.1f}", f"{b['usd_per_m_output']:.3g}", f"{b['ttft_s'] * 1e3:.0f}",
                  f"{b['tpot_s'] * 1e3:.1f}", str(len(e["frontier"])), count)
    console.print(t)
    for h, e in res["hardware"].items():
        if e.get("prefill"):
            p = e["prefill"]
            tp = f" tp{p['tp']:g}" if p["tp"] else ""
            console.print(f"{h} prefill pool: {p['chips']:g} chips {p['layout']}{tp} {p['precision']}, "
                          f"TTFT {p['ttft_s'] * 1e3:.0f} ms, ${p['usd_per_request']:.3g} per request")
    console.print(res["label"], style="dim")


def to_json(res: dict[str, Any]) -> str:
    """JSON with non-finite numbers as null."""
    return E.to_json(res)
