"""Default efficiencies (achieved fractions of peak) per hardware, each with its source.

Data: ``rooflax/sweeps/catalog/efficiency.yaml`` (package data). A preset (``gb200-nvl72``,
``hgx-h200-8`` …) uses its chip's entry; a chip or precision without a measurement falls back to
the file's ``defaults`` (marked ``assumed``). Everything is overridable: pass the leaves to
:class:`~rooflax.core.specs.Hardware` yourself, or ``overrides`` here.
"""

from __future__ import annotations

import functools
import math
from importlib import resources
from typing import Any

import yaml

from rooflax.core.specs import Hardware

from . import catalogs

FIELDS = ("flops_eff", "bw_eff", "link_eff")


@functools.cache
def _data() -> dict[str, Any]:
    text = (resources.files("rooflax.sweeps") / "catalog" / "efficiency.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def _chip_key(name: str) -> str:
    entry = catalogs.hardware_entry(name)
    return entry.get("preset_of") or entry["key"]


def efficiency(name: str, precision: str = "bf16") -> dict[str, dict[str, Any]]:
    """``{"flops_eff": {"value", "source", "assumed"}, "bw_eff": …, "link_eff": …}`` for a chip/preset."""
    data = _data()
    chip = data["hardware"].get(_chip_key(name), {})
    out: dict[str, dict[str, Any]] = {}
    for field in FIELDS:
        mine, default = chip.get(field), data["defaults"][field]
        if field == "flops_eff":
            mine = (mine or {}).get(precision.lower())
            default = default.get(precision.lower(), default["bf16"])
        item = dict(mine if mine is not None else default)
        item.setdefault("assumed", mine is None)
        item["assumed"] = bool(item["assumed"])
        out[field] = item
    return out


def efficiency_values(name: str, precision: str = "bf16") -> dict[str, float]:
    """``{"flops_eff": x, "bw_eff": y, "link_eff": z}`` (floats) for a chip/preset."""
    return {k: float(v["value"]) for k, v in efficiency(name, precision).items()}


def link_bw(name: str) -> float:
    """Scale-up link bandwidth per chip, bytes/s, one direction (inf where the catalog has none)."""
    entry = catalogs.hardware_entry(name)
    uni = entry.get("scaleup_bw_unidirectional")
    if uni is None and entry.get("scaleup_bw_bidirectional") is not None:
        uni = entry["scaleup_bw_bidirectional"] / 2.0
    return math.inf if uni is None else float(uni)


#: Scale-out bandwidth per GPU beyond the scale-up domain, bytes/s one direction (400 Gb/s NIC).
SCALE_OUT_BW = 50e9
#: Scale-up domain assumed where the catalog gives none (an 8-GPU node).
DEFAULT_DOMAIN = 8


def scaleup_domain(name: str) -> int:
    """Chips in one scale-up domain (NVLink/xGMI), from the catalog text; 8 where it gives none."""
    import re

    text = str(catalogs.hardware_entry(name).get("scaleup_domain") or "")
    m = re.match(r"\s*(\d+)", text)
    return int(m.group(1)) if m else DEFAULT_DOMAIN


def replica_link_bw(name: str, chips: float) -> float:
    """Collective bandwidth of a replica of ``chips`` chips, bytes/s per chip one direction: the
    scale-up link (NVLink/xGMI) when the replica fits one scale-up domain, else the scale-out NIC
    (:data:`SCALE_OUT_BW`): a ring over two nodes runs at its slowest hop."""
    return link_bw(name) if chips <= scaleup_domain(name) else SCALE_OUT_BW


def hardware(name: str, *, precision: str = "bf16", chips: float | None = None,
             price_per_hour: float | None = None, peak: bool = False,
             **overrides: Any) -> Hardware:
    """Catalog hardware with default efficiencies and the scale-up link filled in.

    ``peak=True`` keeps every efficiency at 1 (the roofline bound); ``overrides`` set any leaf
    (``flops_eff=0.6``, ``link_bw=50e9`` for InfiniBand, ``link_latency=…``).
    """
    hw = catalogs.hardware(name, chips=chips, precision=precision, price_per_hour=price_per_hour)
    leaves: dict[str, Any] = {"link_bw": link_bw(name)}
    if not peak:
        leaves.update(efficiency_values(name, precision))
    leaves.update(overrides)
    return hw.replace(**leaves)
