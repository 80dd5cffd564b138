"""The hardware and model catalogs shipped with rooflax (``rooflax/sweeps/catalog/*.yaml``).

The YAML files are package data, read with :mod:`importlib.resources`, so an
installed wheel works outside the repository. Names are case-insensitive and
accept aliases (``"H100"`` → ``h100-sxm``, ``"deepseek-r1"`` → ``deepseek-v3``);
an unknown name raises :class:`UnknownNameError` with close matches.

Hardware presets (``gb200-nvl72``, ``hgx-h200-8`` …) are entries with
``preset_of: <chip key>`` and ``chips: N``: every other field is the chip's.
A chip without a published price gets price 0 in :func:`hardware`; its entry
and table row say ``price_known: False``.

Leaves of the returned :class:`Hardware` / :class:`Model` are Python floats
(float64 under jax), so ``jax.grad`` can differentiate them.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import yaml

from rooflax.core.arch import Architecture, model_from_architecture
from rooflax.core.specs import SECONDS_PER_HOUR, Hardware, Model

TFLOPS = 1e12  # FLOP/s per TFLOPS
GB = 1e9  # bytes per GB


class UnknownNameError(ValueError):
    """A hardware or model name that is in neither the catalog nor its aliases."""


# -- raw data -------------------------------------------------------------------------------
@functools.cache
def _load(file: str, section: str) -> dict[str, dict[str, Any]]:
    text = (resources.files("rooflax.sweeps") / "catalog" / file).read_text(encoding="utf-8")
    # libyaml's safe loader when present (the catalogs are ~10x faster to read: CLI start-up)
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))[section]


def _hardware_data() -> dict[str, dict[str, Any]]:
    return _load("hardware.yaml", "hardware")


def _model_data() -> dict[str, dict[str, Any]]:
    return _load("models.yaml", "models")


@functools.cache
def _aliases(kind: str) -> dict[str, str]:
    """Lower-case name or alias → canonical key."""
    data = _hardware_data() if kind == "hardware" else _model_data()
    table: dict[str, str] = {}
    for key, entry in data.items():
        for name in (key, *entry.get("aliases", [])):
            table[name.lower()] = key
    return table


def _resolve(kind: str, name: str) -> str:
    table = _aliases(kind)
    key = table.get(str(name).strip().lower())
    if key is not None:
        return key
    from .inputs import found, suggest

    known = ", ".join(_hardware_data() if kind == "hardware" else _model_data())
    raise UnknownNameError(f"unknown {kind} name {found(name)}"
                           f"{suggest(str(name).lower(), table)}; known: {known}")


# -- names and entries ----------------------------------------------------------------------
def hardware_names() -> list[str]:
    """Canonical hardware keys (chips, then presets)."""
    return list(_hardware_data())


def model_names() -> list[str]:
    """Canonical model keys."""
    return list(_model_data())


def resolve_hardware(name: str) -> str:
    """Canonical hardware key of a name or alias (case-insensitive)."""
    return _resolve("hardware", name)


def resolve_model(name: str) -> str:
    """Canonical model key of a name or alias (case-insensitive)."""
    return _resolve("model", name)


def compute_precision(name: str, want: str) -> str:
    """The compute precision a chip runs ``want`` at: ``want`` where the chip has a peak for
    it, else bf16 (else its first listed peak) — one fallback rule for configs and the CLI."""
    from rooflax.core.specs import precision_bytes

    precision_bytes(want)  # ValueError naming the known precisions
    peaks = hardware_entry(name)["peak_tflops_dense"]
    if peaks.get(want) is not None:
        return want
    return "bf16" if peaks.get("bf16") is not None else next(p for p, v in peaks.items() if v)


def hardware_entry(name: str) -> dict[str, Any]:
    """The catalog entry of a chip or preset (a preset merged over its chip), sources included."""
    key = resolve_hardware(name)
    entry = dict(_hardware_data()[key])
    chip_key = entry.get("preset_of")
    if chip_key:
        entry = {**_hardware_data()[chip_key], **entry}
    entry["chips"] = float(entry.get("chips", 1))
    entry["key"] = key
    entry["price_known"] = entry.get("price_usd_per_hour") is not None
    return entry


def model_entry(name: str) -> dict[str, Any]:
    """The catalog entry of a model, sources included."""
    key = resolve_model(name)
    return {**_model_data()[key], "key": key}


# -- pytrees --------------------------------------------------------------------------------
def peak_flops(name: str, precision: str = "bf16") -> float:
    """Dense peak FLOP/s of one chip at a precision; ValueError if the chip lacks it."""
    entry = hardware_entry(name)
    peaks = entry["peak_tflops_dense"]
    tflops = peaks.get(precision.lower())
    if tflops is None:
        have = ", ".join(p for p, v in peaks.items() if v is not None)
        raise ValueError(
            f"{entry['key']} ({entry['name']}) has no {precision} peak; it has: {have}"
        )
    return float(tflops) * TFLOPS


def hardware(
    name: str,
    *,
    chips: float | None = None,
    precision: str = "bf16",
    price_per_hour: float | None = None,
) -> Hardware:
    """A :class:`Hardware` from the catalog (same leaves as ``Hardware.from_peak``).

    ``chips`` defaults to the preset's (1 for a chip); ``price_per_hour`` ($/h per
    chip) overrides the catalog price, which is 0 where none is known (see
    ``hardware_entry(name)["price_known"]``).
    """
    entry = hardware_entry(name)
    flops = peak_flops(name, precision)
    bw = float(entry["hbm_bw"])
    if price_per_hour is None:
        price_per_hour = entry.get("price_usd_per_hour") or 0.0
    return Hardware(
        bw=bw,
        c_over_bw=flops / 2.0 / bw,
        capacity=float(entry["hbm_gb"]) * GB,
        price=float(price_per_hour) / SECONDS_PER_HOUR,
        chips=float(entry["chips"] if chips is None else chips),
    )


def architecture(name: str) -> Architecture:
    """The :class:`Architecture` of a catalog model."""
    return Architecture(**model_entry(name)["architecture"])


def model(name: str, *, weights: str = "bf16", kv: str = "bf16", extended: bool = False) -> Model:
    """A :class:`Model` of a catalog model; ``weights="native"`` for the checkpoint's precision.

    ``extended=True`` adds the extended model's leaves (decode attention FLOPs per cached
    token, layer/expert shapes for communication) — :func:`rooflax.core.parallel.extended_model`;
    the default is the seeds' decode step (no attention compute).
    """
    if extended:
        from rooflax.core.parallel import extended_model

        return extended_model(architecture(name), weights=weights, kv=kv)
    return model_from_architecture(architecture(name), weights=weights, kv=kv)


# -- tables for printing --------------------------------------------------------------------
def hardware_table() -> list[dict[str, Any]]:
    """One flat dict per hardware entry: key numbers and sources."""
    rows = []
    for key in hardware_names():
        e = hardware_entry(key)
        peaks = e["peak_tflops_dense"]
        rows.append({
            "name": key,
            "full_name": e["name"],
            "vendor": e["vendor"],
            "chips": e["chips"],
            **{f"{p}_tflops": peaks.get(p) for p in ("bf16", "fp8", "fp4")},
            "hbm_gb": e["hbm_gb"],
            "hbm_tb_s": e["hbm_bw"] / 1e12,
            "c_over_bw_bf16": peaks["bf16"] * TFLOPS / 2.0 / e["hbm_bw"],
            "price_usd_per_hour": e.get("price_usd_per_hour"),
            "price_known": e["price_known"],
            "price_kind": e.get("price_kind"),
            "source": "; ".join(e["source"]),
        })
    return rows


def model_table() -> list[dict[str, Any]]:
    """One flat dict per model: derived and published counts, KV bytes, sources."""
    rows = []
    for key in model_names():
        e = model_entry(key)
        arch = Architecture(**e["architecture"])
        rows.append({
            "name": key,
            "type": e["type"],
            "n_total": arch.n_total(),
            "n_active": arch.n_active(),
            "published_total": e["params_published_total"],
            "published_active": e["params_published_active"],
            "kv_bytes_per_token_bf16": arch.kv_bytes_per_token("bf16"),
            "kv_bytes_per_token_local_bf16": arch.kv_bytes_per_token_local("bf16"),
            "sliding_window": arch.sliding_window or None,
            "native_precision": e["native_precision"],
            "max_context": e.get("max_context"),
            "source": "; ".join(e["source"]),
        })
    return rows
