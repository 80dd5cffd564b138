"""The hardware and model catalogs shipped with rooflax (``rooflax/sweeps/catalog/*.yaml``).

The YAML files are package data, read with :mod:`importlib.resources`, so an
installed wheel works outside the repository. Names are case-insensitive and
accept aliases (``"H100"`` → ``h100-sxm``, ``"deepseek-r1"`` → ``deepseek-v3``);
an unknown name raises :class:`UnknownNameError` with close matches.

Hardware presets (``gb200-nvl72``, ``hgx-h200-8`` …) are entries with
``preset_of: <chip key>`` and ``chips: N``: every other field is the chip's.
Prices: every chip carries ``price_bases`` ($/chip-hour per *price basis*: ``tco-neocloud``,
``tco-hyperscaler``, ``rental-3yr`` — SemiAnalysis TCO — and ``market-low``/``market-high`` —
rental quotes), from ``../shared/reference/prices.yaml``. A price spec (:func:`price`) is a
basis, a comma-separated list of bases (the first one the chip has is used, and named), or a
number in $/h. The default, :data:`DEFAULT_PRICE`, is ``tco-neocloud,market-low``. A chip
without a price on the chosen bases gets price NaN (never 0) and the reason :data:`NO_PRICE`.

Leaves of the returned :class:`Hardware` / :class:`Model` are Python floats
(float64 under jax), so ``jax.grad`` can differentiate them.

Users add models without editing package files: a user catalog (``$ROOFLAX_CATALOG`` or
:func:`use_user_catalog`, same schema as ``models.yaml``; its entries merge over the packaged
ones) and Hugging Face ``config.json`` files (:func:`rooflax.sweeps.hf.register` →
:func:`add_model`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from rooflax.core.arch import Architecture, model_from_architecture
from rooflax.core.specs import SECONDS_PER_HOUR, Hardware, Model

TFLOPS = 1e12  # FLOP/s per TFLOPS
GB = 1e9  # bytes per GB


#: Environment variable naming a user model catalog (YAML, the schema of models.yaml).
USER_CATALOG_ENV = "ROOFLAX_CATALOG"

#: Price bases, $/chip-hour, each with its source in the catalog (``price_bases``).
PRICE_BASES = ("tco-neocloud", "tco-hyperscaler", "rental-3yr", "market-low", "market-high")
#: The price basis used unless one is chosen: SemiAnalysis neocloud TCO, else the lowest rental quote.
DEFAULT_PRICE = "tco-neocloud,market-low"
#: What a table says where a chip has no price on the chosen bases.
NO_PRICE = "no price"


#: libyaml's loader where available (~6× faster: the CLI starts faster).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class UnknownNameError(ValueError):
    """A hardware or model name that is in neither the catalog nor its aliases."""


class UserCatalogError(ValueError):
    """A user catalog file rooflax cannot use: one line naming the file and the field."""


#: Models added in this process (config.json files): key → entry.
_added_models: dict[str, dict[str, Any]] = {}
_user_catalog: list[str | None] = [None]


# -- raw data -------------------------------------------------------------------------------
@functools.cache
def _load(file: str, section: str) -> dict[str, dict[str, Any]]:
    text = (resources.files("rooflax.sweeps") / "catalog" / file).read_text(encoding="utf-8")
    return yaml.load(text, Loader=_LOADER)[section]


def _hardware_data() -> dict[str, dict[str, Any]]:
    return _load("hardware.yaml", "hardware")


@functools.cache
def _user_models(path: str) -> dict[str, dict[str, Any]]:
    """The ``models:`` of a user catalog, each entry checked (UserCatalogError)."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise UserCatalogError(f"{path}: cannot read the user catalog: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise UserCatalogError(f"{path}: expected YAML, found a syntax error: "
                               f"{getattr(e, 'problem', e)}") from None
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict):
        raise UserCatalogError(f"{path}: field 'models': expected a mapping of model entries, "
                               f"found {type(models).__name__ if models is not None else 'missing'}")
    out = {}
    for key, entry in models.items():
        arch = entry.get("architecture") if isinstance(entry, dict) else None
        if not isinstance(arch, dict):
            raise UserCatalogError(f"{path}: field 'models.{key}.architecture': expected a mapping "
                                   f"of Architecture fields, found {type(arch).__name__}")
        try:
            Architecture(**arch)
        except TypeError as e:
            raise UserCatalogError(f"{path}: field 'models.{key}.architecture': {e}") from None
        out[str(key)] = {"name": str(key), "type": "user catalog", "native_precision": "bf16",
                         **entry, "source": entry.get("source") or [f"user catalog {path}"]}
    return out


def use_user_catalog(path: str | os.PathLike | None) -> None:
    """Merge a user catalog's models over the packaged ones (None: ``$ROOFLAX_CATALOG`` only)."""
    _user_catalog[0] = None if path is None else str(path)
    if path is not None:
        _user_models(str(path))  # fail now, naming the file


def add_model(key: str, entry: dict[str, Any]) -> None:
    """Add (or replace) a model entry for this process, e.g. from a config.json."""
    Architecture(**entry["architecture"])
    _added_models[key] = entry


def _model_data() -> dict[str, dict[str, Any]]:
    data = dict(_load("models.yaml", "models"))
    path = _user_catalog[0] or os.environ.get(USER_CATALOG_ENV)
    if path:
        data.update(_user_models(path))
    data.update(_added_models)
    return data


def spelling(name: Any) -> str:
    """The one form names and aliases are matched in: lower case, ``_`` read as ``-`` (tables
    write ``h100_sxm``, catalogs ``h100-sxm``)."""
    return str(name).strip().lower().replace("_", "-")


def _aliases(kind: str) -> dict[str, str]:
    """:func:`spelling` of a name or alias → canonical key."""
    if kind == "hardware":
        return _hardware_aliases()
    return _alias_table(_model_data())


@functools.cache
def _hardware_aliases() -> dict[str, str]:
    return _alias_table(_hardware_data())


def _alias_table(data: dict[str, dict[str, Any]]) -> dict[str, str]:
    table: dict[str, str] = {}
    for key, entry in data.items():
        for name in (key, *entry.get("aliases", [])):
            table.setdefault(spelling(name), key)
    return table


def _by_last_component(table: dict[str, str], name: str) -> str | None:
    """The one key whose names end in ``name``'s last path component (a local checkpoint path or
    another organization's copy: ``/models/Llama-3.1-70B`` → ``meta-llama/Llama-3.1-70B``), else None."""
    last = spelling(name).rstrip("/").rsplit("/", 1)[-1]
    keys = {key for alias, key in table.items() if alias.rsplit("/", 1)[-1] == last}
    return keys.pop() if len(keys) == 1 else None


def _resolve(kind: str, name: str) -> str:
    table = _aliases(kind)
    key = table.get(spelling(name))
    if key is None and kind == "model" and "/" in str(name):
        key = _by_last_component(table, name)
    if key is not None:
        return key
    from .inputs import found, suggest

    known = ", ".join(_hardware_data() if kind == "hardware" else _model_data())
    raise UnknownNameError(f"unknown {kind} name {found(name)}"
                           f"{suggest(spelling(name), table)}; known: {known}")


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


def peak_name(precision: str) -> str:
    """The catalog peak a weights format (a name or alias) computes at: fp4 for nvfp4/mxfp4, bf16
    for fp16, else the format itself."""
    from rooflax.core.specs import precision_name

    name = precision_name(precision)
    return {"nvfp4": "fp4", "mxfp4": "fp4", "fp16": "bf16"}.get(name, name)


def has_peak(name: str, precision: str) -> bool:
    """True where the chip's catalog lists a peak for ``precision`` (at its :func:`peak_name`)."""
    return hardware_entry(name)["peak_tflops_dense"].get(peak_name(precision)) is not None


def compute_precision(name: str, want: str) -> str:
    """The compute precision a chip runs ``want`` at: its peak (:func:`peak_name`: nvfp4 and
    mxfp4 run at fp4) where the chip has one, else bf16 (else its first listed peak) — one
    fallback rule for configs and the CLI."""
    if has_peak(name, want):  # ValueError naming the known precisions
        return peak_name(want)
    peaks = hardware_entry(name)["peak_tflops_dense"]
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
    entry["price_known"] = bool(entry.get("price_bases"))
    return entry


def model_entry(name: str) -> dict[str, Any]:
    """The catalog entry of a model, sources included."""
    key = resolve_model(name)
    return {**_model_data()[key], "key": key}


# -- prices -----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Price:
    """A chip's price on a price spec: $/chip-hour (NaN: none), the basis used, its source."""

    usd_per_hour: float
    """$/chip-hour; NaN where the chip has no price on the chosen bases."""
    basis: str
    """The basis used (``tco-neocloud`` …), ``custom`` for a number, :data:`NO_PRICE` if none."""
    source: str
    """Where the number comes from, or why there is none."""
    placeholder: bool = False
    """True for a guessed price (prices.yaml ``placeholder``: B300/GB300 TCO)."""

    @property
    def known(self) -> bool:
        """Whether the price is a number."""
        return not math.isnan(self.usd_per_hour)


def parse_price(spec: object) -> tuple[str, ...] | float:
    """A price spec as bases (a tuple, first available wins) or a number of $/h; ValueError if neither.

    ``"tco-neocloud"``, ``"market-low,market-high"``, ``8``, ``"8$/h"``, ``"8 $/h"``.
    """
    if isinstance(spec, str) and not any(ch.isdigit() for ch in spec.split("-")[0]):
        bases = tuple(b.strip().lower() for b in spec.split(",") if b.strip())
        bad = [b for b in bases if b not in PRICE_BASES]
        if bad or not bases:
            raise ValueError(f"expected a price basis ({', '.join(PRICE_BASES)}, or several joined "
                             f"by commas) or a price such as '8 $/h', found {spec!r}")
        return bases
    from .units import parse

    return parse(spec, "price", allow_zero=True)


def price(name: str, spec: object = DEFAULT_PRICE) -> Price:
    """The price of one chip of ``name`` on a price spec (see :func:`parse_price`)."""
    parsed = parse_price(spec)
    if isinstance(parsed, float):
        return Price(parsed, "custom", f"given: {spec}")
    entry = hardware_entry(name)
    have = entry.get("price_bases") or {}
    for basis in parsed:
        item = have.get(basis)
        if item is not None:
            return Price(float(item["usd_per_hour"]), basis, str(item["source"]),
                         bool(item.get("placeholder", False)))
    others = ", ".join(have) or "none"
    return Price(math.nan, NO_PRICE,
                 f"{entry['key']} has no {' or '.join(parsed)} price (bases it has: {others})")


def power_kw(name: str) -> tuple[float, str]:
    """(power per chip in kW, NaN if unknown; its source): all-in from the TCO model, else TDP."""
    entry = hardware_entry(name)
    kw = entry.get("power_kw")
    return (math.nan if kw is None else float(kw)), str(entry.get("power_source", "no power"))


# -- pytrees --------------------------------------------------------------------------------
def peak_flops(name: str, precision: str = "bf16") -> float:
    """Dense peak FLOP/s of one chip at a precision (a weights format at its :func:`peak_name`:
    nvfp4 at fp4); ValueError if the chip lacks it."""
    entry = hardware_entry(name)
    peaks = entry["peak_tflops_dense"]
    tflops = peaks.get(peak_name(precision))
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
    price_spec: object = DEFAULT_PRICE,
) -> Hardware:
    """A :class:`Hardware` from the catalog (same leaves as ``Hardware.from_peak``).

    ``chips`` defaults to the preset's (1 for a chip); ``price_per_hour`` ($/h per
    chip) overrides the catalog price; otherwise the price on ``price_spec`` (a basis,
    bases or $/h: :func:`price`), NaN where the chip has none.
    """
    entry = hardware_entry(name)
    flops = peak_flops(name, precision)
    bw = float(entry["hbm_bw"])
    if price_per_hour is None:
        price_per_hour = price(name, price_spec).usd_per_hour
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
            **{f"price_{b}": (e.get("price_bases") or {}).get(b, {}).get("usd_per_hour", math.nan)
               for b in PRICE_BASES},
            "price_known": e["price_known"],
            "power_kw": math.nan if e.get("power_kw") is None else e["power_kw"],
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
            "type": e.get("type"),
            "n_total": arch.n_total(),
            "n_active": arch.n_active(),
            "published_total": e.get("params_published_total"),
            "published_active": e.get("params_published_active"),
            "kv_bytes_per_token_bf16": arch.kv_bytes_per_token("bf16"),
            "kv_bytes_per_token_local_bf16": arch.kv_bytes_per_token_local("bf16"),
            "index_bytes_per_token": arch.index_bytes_per_token(),
            "index_topk": arch.index_topk or None,
            "state_bytes_per_seq_bf16": arch.state_bytes_per_seq("bf16"),
            "sliding_window": arch.sliding_window or None,
            "native_precision": e.get("native_precision"),
            "max_context": e.get("max_context"),
            "source": "; ".join(e["source"]),
        })
    return rows
