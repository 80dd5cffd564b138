"""Sweep config schema (pydantic v2, frozen, ``extra="forbid"``) and the loader with clear errors.

A config is one YAML file::

    store: out/default.zarr          # where the cube goes (default: out/<file stem>.zarr)
    dtype: float32                   # float32 | float64
    axes:
      hardware: [h100-sxm, b200]     # catalog names | inline entries | {bw: range, c_over_bw: range, ...}
      model: [deepseek-v3]           # catalog names | inline counts/architecture | {sparsity: range, ...}
      batch: {log: [1, 65536], num: 64}
      context: {log: [1k, 1M], num: 32}
      precision: fp8                 # weights+compute precision; a list sweeps it
      chips: 8                       # scalar overrides the catalog; a list sweeps it
      slo: [inf, 50 ms]              # per-token latency targets (optional)
      # extended knobs (optional; scalar: override, list/range: a dim of its own):
      # flops_eff, bw_eff, link_bw ("900 GB/s"), link_eff, link_latency, overlap, spec_k, spec_alpha
    physics: seeds                   # seeds | extended (attention FLOPs, efficiencies, link)
    layout: auto                     # auto (ep for MoE, tp for dense) | ep | tp | one-chip
    outputs:
      values: [t_step, throughput, cost_per_mtok, b_star, binding, cost_per_mtok_at_b_star]
      sensitivities: {of: [b_star, cost_at_b_star], knobs: [bw, c_over_bw, sparsity],  # any core KNOB
                      kind: [partial, elasticity]}
    chunks: {context: 8}

:func:`load` returns a :class:`SweepConfig` or raises :class:`ConfigError`, whose message
names the file, the line, the field, what was expected and what was found.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictInt,
    Tag,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from rooflax.core import predict
from rooflax.core import quantities as Q
from rooflax.core.specs import PRECISION_BYTES, precision_name

from . import units
from .catalogs import DEFAULT_PRICE
from .inputs import InputError, found, load_mapping, node_at, schema_issues, suggest

# -- names the schema knows: the registry's (rooflax.core.quantities) -------------------------------
#: Per-point quantities (have a batch dim). Names are rooflax.core function names.
BATCH_OUTPUTS = Q.quantities_of("point")
#: Batch-free quantities (the optimum over batch and the floors).
OPTIMUM_OUTPUTS = Q.quantities_of("optimum")
#: Quantities with neither batch nor context.
STATIC_OUTPUTS = Q.quantities_of("static")
ALL_OUTPUTS = BATCH_OUTPUTS + OPTIMUM_OUTPUTS + STATIC_OUTPUTS
#: The per-point quantities ``physics: calibrated`` computes as the prediction.
PREDICTED_OUTPUTS = predict.OUTPUTS
SENS_OUTPUTS = Q.SENSITIVITY_OUTPUTS
KNOBS = Q.SENSITIVITY_KNOBS
#: Extended-physics scalar knobs a config may set (scalar) or sweep (list/range), in dim order:
#: leaf name → which pytree ("hw" | "wl").
EXTRA_AXES = {k: {"hardware": "hw", "workload": "wl"}[Q.KNOBS[k].tree] for k in
              ("flops_eff", "bw_eff", "link_bw", "link_eff", "link_latency", "overlap", "spec_k", "spec_alpha")}
LAYOUTS = ("auto", "one-chip", "tp", "ep")
PRECISIONS = tuple(PRECISION_BYTES)  # one list: core.specs
DEFAULT_VALUES = ("t_step", "throughput", "cost_per_mtok", "kv_share", "regime", "b_star",
                  "binding", "cost_per_mtok_at_b_star", "latency_at_b_star",
                  "throughput_at_b_star")


def _choice(kind: str, choices: tuple[str, ...]):
    def check(v: Any) -> str:
        if not isinstance(v, str) or v not in choices:
            raise ValueError(
                f"expected one of {kind} {', '.join(choices)}; found {found(v)}{suggest(v, choices)}"
            )
        return v
    return check


def _q(kind: str, **kw):
    return BeforeValidator(lambda v: units.parse(v, kind, **kw))


def _k(name: str):
    """A field holding knob ``name``: parsed and checked against its one domain
    (:data:`rooflax.core.quantities.DOMAINS`)."""
    return BeforeValidator(lambda v: units.knob(name, v))


Bandwidth = Annotated[float, _q("bandwidth"), Field(json_schema_extra={"examples": ["3.35 TB/s"]})]
Bytes = Annotated[float, _q("bytes"), Field(json_schema_extra={"examples": ["80 GB"]})]
BytesPerToken = Annotated[float, _q("bytes", allow_zero=True)]
Flops = Annotated[float, _q("flops"), Field(json_schema_extra={"examples": ["989 TFLOPS"]})]
Price = Annotated[float, _q("price", allow_zero=True), Field(json_schema_extra={"examples": ["2.5 $/h"]})]
Time = Annotated[float, _q("time", allow_inf=True), Field(json_schema_extra={"examples": ["50 ms"]})]
Tokens = Annotated[float, _q("tokens", allow_zero=True), Field(json_schema_extra={"examples": ["128k"]})]
Number = Annotated[float, _q("number")]
Chips = Annotated[float, _k("chips")]
Sparsity = Annotated[float, _k("sparsity")]
Batch = Annotated[float, _k("batch")]
LinkBandwidth = Annotated[float, _q("bandwidth", allow_inf=True),
                          Field(json_schema_extra={"examples": ["900 GB/s"]})]
Latency = Annotated[float, _q("time", allow_zero=True), Field(json_schema_extra={"examples": ["5 us"]})]
def _precision(v: Any) -> str:
    """A precision name or alias (``bfloat16``) → its name (:func:`~rooflax.core.specs.precision_name`);
    anything else fails as a choice among the precisions (with "did you mean")."""
    try:
        return precision_name(v)
    except ValueError:
        return _choice("precisions", PRECISIONS)(v)


Precision = Annotated[str, BeforeValidator(_precision)]
OutputName = Annotated[str, BeforeValidator(_choice("outputs", ALL_OUTPUTS))]
SensOutput = Annotated[str, BeforeValidator(_choice("sensitivity outputs", SENS_OUTPUTS))]
Knob = Annotated[str, BeforeValidator(_choice("knobs", KNOBS))]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _range_model(item: Any, label: str):
    class Range(_Frozen):
        lin: tuple[item, item] | None = Field(None, description="[start, stop], evenly spaced")
        log: tuple[item, item] | None = Field(None, description="[start, stop], log spaced")
        num: StrictInt = Field(..., ge=1, le=10_000_000, description="number of points")

        @model_validator(mode="after")
        def _one(self):
            if (self.lin is None) == (self.log is None):
                raise ValueError("expected exactly one of 'lin' or 'log' with 'num'")
            if self.log is not None and min(self.log) <= 0:
                raise ValueError(f"expected log range bounds > 0, found {list(self.log)}")
            return self

        def values(self) -> list[float]:
            import numpy as np
            if self.lin is not None:
                v = np.linspace(self.lin[0], self.lin[1], self.num)
            else:
                v = np.geomspace(self.log[0], self.log[1], self.num)
            return [float(x) for x in v]

    Range.__name__ = Range.__qualname__ = f"{label}Range"
    return Range


def _axis(item: Any, label: str, scalar: bool = True):
    """list of items | {lin|log: [a, b], num: N} | a single item."""
    rng = _range_model(item, label)

    def which(v: Any) -> str:
        if isinstance(v, dict) or isinstance(v, BaseModel):
            return "range"
        if isinstance(v, list | tuple):
            return "list"
        return "scalar"

    parts = [Annotated[Annotated[list[item], Field(min_length=1)], Tag("list")],
             Annotated[rng, Tag("range")]]
    if scalar:
        parts.append(Annotated[item, Tag("scalar")])
    from typing import Union
    return Annotated[Union[tuple(parts)], Discriminator(which)]  # noqa: UP007


def axis_values(axis: Any) -> list[Any]:
    if axis is None:
        return []
    if isinstance(axis, list | tuple):
        return list(axis)
    if hasattr(axis, "values") and isinstance(axis, BaseModel):
        return axis.values()
    return [axis]


def is_swept(axis: Any) -> bool:
    return isinstance(axis, list | tuple) or (isinstance(axis, BaseModel) and hasattr(axis, "num"))


TokenAxis = _axis(Tokens, "Tokens")
BatchAxis = _axis(Batch, "Batch")
ChipsAxis = _axis(Chips, "Chips")
SparsityAxis = _axis(Sparsity, "Sparsity")


def _knob_axis(name: str):
    return _axis(Annotated[float, _k(name)], name.title().replace("_", ""))

BandwidthAxis = _axis(Bandwidth, "Bandwidth")
NumberAxis = _axis(Number, "Number")
TimeAxis = _axis(Time, "Time")
LinkBandwidthAxis = _axis(LinkBandwidth, "LinkBandwidth")
LatencyAxis = _axis(Latency, "Latency")


def _catalog():
    from . import catalogs
    return catalogs


def _catalog_name(kind: str):
    def check(v: Any) -> str:
        if not isinstance(v, str):
            raise ValueError(f"expected a {kind} catalog name, found {v!r}")
        cat = _catalog()
        resolve = cat.resolve_hardware if kind == "hardware" else cat.resolve_model
        try:
            resolve(v)
        except ValueError as e:
            raise ValueError(str(e)) from None
        return v
    return check


def _canonical(kind: str, name: str) -> str:
    """The catalog key of a name (so that 'h100-sxm' and 'H100-SXM' are one entry)."""
    cat = _catalog()
    return (cat.resolve_hardware if kind == "hardware" else cat.resolve_model)(name)


def _architecture(v: Any) -> dict[str, Any]:
    """An ``architecture:`` mapping: known fields of core.arch.Architecture only, whole numbers
    ≥ 0 (≥ 1 for the required sizes) or true/false for the flags."""
    import dataclasses

    from rooflax.core.arch import Architecture

    if not isinstance(v, dict) or not v:
        raise ValueError(f"expected a mapping of architecture fields, found {v!r}")
    fields = {f.name: f for f in dataclasses.fields(Architecture)}
    required = [n for n, f in fields.items() if f.default is dataclasses.MISSING]
    for name, x in v.items():
        if name not in fields:
            raise ValueError(f"expected an architecture field, found {name!r}"
                             f"{suggest(name, fields)}; fields: {', '.join(fields)}")
        kind = str(fields[name].type)
        if kind == "bool":
            if not isinstance(x, bool):
                raise ValueError(f"expected true or false for {name}, found {x!r}")
        elif kind.startswith("str"):
            if not (x is None and "None" in kind) and not isinstance(x, str):
                raise ValueError(f"expected a name for {name}, found {x!r}")
        elif kind.startswith("tuple[str"):
            if not isinstance(x, list | tuple) or not all(isinstance(t, str) for t in x):
                raise ValueError(f"expected a list of names for {name}, found {x!r}")
        elif isinstance(x, bool) or not isinstance(x, int) or x < (1 if name in required else 0):
            raise ValueError(f"expected a whole number ≥ {1 if name in required else 0} "
                             f"for {name}, found {x!r}")
    missing = [n for n in required if n not in v]
    if missing:
        raise ValueError(f"expected the architecture fields {', '.join(missing)}, found none")
    return v


HardwareName = Annotated[str, BeforeValidator(_catalog_name("hardware"))]
ModelName = Annotated[str, BeforeValidator(_catalog_name("model"))]


class InlineHardware(_Frozen):
    """A chip not in the catalog."""

    name: str = Field(..., min_length=1)
    bw: Bandwidth
    flops: Flops | None = Field(None, description="dense peak FLOP/s at the compute precision")
    c_over_bw: Number | None = Field(None, description="machine balance C/BW, MAC/byte")
    capacity: Bytes
    price_per_hour: Price | None = Field(None, description="$/chip-hour (unset: the config's price if "
                                         "it is a number, else NaN: no price)")
    chips: Chips | None = None
    source: str = "inline"

    @model_validator(mode="after")
    def _compute(self):
        if (self.flops is None) == (self.c_over_bw is None):
            raise ValueError("expected exactly one of 'flops' or 'c_over_bw'")
        return self


class HypotheticalHardware(_Frozen):
    """Hardware on continuous axes: bw × c_over_bw (dims ``bw`` and ``c_over_bw``)."""

    bw: BandwidthAxis
    c_over_bw: NumberAxis
    capacity: Bytes
    price_per_hour: Price | None = Field(None, description="$/chip-hour (unset: the config's price if "
                                         "it is a number, else NaN: no price)")
    chips: Chips = 1.0


class InlineModel(_Frozen):
    """A model not in the catalog: counts (n_total with n_active or sparsity), an architecture,
    or ``hf_config: PATH`` (a Hugging Face config.json, relative to the config file's folder)."""

    name: str | None = Field(None, min_length=1, description="required unless hf_config gives it")
    n_total: Number | None = None
    n_active: Number | None = None
    sparsity: Sparsity | None = None
    kv_bytes_per_token: BytesPerToken | None = None
    architecture: Annotated[dict[str, Any], BeforeValidator(_architecture)] | None = None
    hf_config: str | None = None
    source: str = "inline"

    @model_validator(mode="before")
    @classmethod
    def _from_hf_config(cls, v: Any, info: ValidationInfo) -> Any:
        if not isinstance(v, dict) or v.get("hf_config") is None:
            return v
        from . import hf

        path = Path(str(v["hf_config"]))
        base = (info.context or {}).get("config_dir")
        if not path.is_absolute() and base is not None and (Path(base) / path).exists():
            path = Path(base) / path
        entry = hf.catalog_entry(path)  # HFConfigError (a ValueError): one line, file and field
        return {"name": entry["name"], "source": entry["source"][0], **v,
                "architecture": entry["architecture"]}

    @model_validator(mode="after")
    def _counts(self):
        if self.name is None:
            raise ValueError("expected 'name' (or 'hf_config')")
        if self.architecture is None:
            if self.n_total is None or self.kv_bytes_per_token is None:
                raise ValueError("expected 'n_total' and 'kv_bytes_per_token' (or 'architecture')")
            if (self.n_active is None) == (self.sparsity is None):
                raise ValueError("expected exactly one of 'n_active' or 'sparsity'")
            if self.n_active is not None and self.n_active > self.n_total:
                raise ValueError(f"expected n_active ≤ n_total, found {self.n_active:g} > {self.n_total:g}")
        return self


class SparsityModel(_Frozen):
    """A model family on a continuous sparsity axis (N_total fixed; dim ``sparsity``)."""

    sparsity: SparsityAxis
    n_total: Number
    kv_bytes_per_token: BytesPerToken
    name: str = "sparsity-family"


def _by_type(v: Any) -> str:
    return "name" if isinstance(v, str) else "inline"


HardwareItem = Annotated[
    Annotated[HardwareName, Tag("name")] | Annotated[InlineHardware, Tag("inline")],
    Discriminator(_by_type),
]
ModelItem = Annotated[
    Annotated[ModelName, Tag("name")] | Annotated[InlineModel, Tag("inline")],
    Discriminator(_by_type),
]


def _one_hf_model(v: Any) -> Any:
    """``model: {hf_config: PATH}`` (one mapping) is a list of one inline model."""
    return [v] if isinstance(v, dict) and "hf_config" in v else v


def _list_or_map(v: Any) -> str:
    return "continuous" if isinstance(v, dict) or isinstance(v, HypotheticalHardware | SparsityModel) else "list"


class PrecisionSettings(_Frozen):
    weights: Precision = "bf16"
    kv: Precision = "bf16"
    compute: Precision | Literal["auto"] = Field(
        "auto", description="FLOPS precision; auto: the weights' precision if the chip has it, else bf16")


class Attention(_Frozen):
    """Attention overrides applied to every model (inf: off)."""

    window: Tokens | None = None
    top_k: Tokens | None = None
    sqrt_coeff: Number | None = None


class Axes(_Frozen):
    hardware: Annotated[
        Annotated[Annotated[list[HardwareItem], Field(min_length=1)], Tag("list")]
        | Annotated[HypotheticalHardware, Tag("continuous")],
        Discriminator(_list_or_map),
    ]
    model: Annotated[
        Annotated[Annotated[list[ModelItem], Field(min_length=1)], Tag("list")]
        | Annotated[SparsityModel, Tag("continuous")],
        Discriminator(_list_or_map),
        BeforeValidator(_one_hf_model),
    ]
    batch: BatchAxis = Field(..., description="sequences per step: list or {log: [1, 65536], num: 64}")
    context: TokenAxis = Field(..., description="tokens of context: list or {log: [1k, 1M], num: 32}")
    precision: Annotated[
        Annotated[Annotated[list[Precision], Field(min_length=1)], Tag("list")]
        | Annotated[PrecisionSettings, Tag("settings")]
        | Annotated[Precision, Tag("scalar")],
        Discriminator(lambda v: "list" if isinstance(v, list | tuple) else
                      "settings" if isinstance(v, dict | PrecisionSettings) else "scalar"),
    ] = "bf16"
    chips: ChipsAxis | None = None
    slo: TimeAxis | None = None
    attention: Attention | None = None
    # extended physics knobs: a scalar overrides every point (and the efficiency catalog), a
    # list/range sweeps it as its own dim. Unset: the catalog's value (physics: extended) or the
    # neutral default (physics: seeds: efficiencies 1, free link, no speculative decoding).
    flops_eff: _knob_axis("flops_eff") | None = Field(None, description=Q.KNOBS["flops_eff"].long_name)
    bw_eff: _knob_axis("bw_eff") | None = Field(None, description=Q.KNOBS["bw_eff"].long_name)
    link_bw: LinkBandwidthAxis | None = Field(
        None, description=Q.KNOBS["link_bw"].long_name + " ('900 GB/s'; inf: free)")
    link_eff: _knob_axis("link_eff") | None = Field(None, description=Q.KNOBS["link_eff"].long_name)
    link_latency: LatencyAxis | None = Field(None, description=Q.KNOBS["link_latency"].long_name)
    overlap: _knob_axis("overlap") | None = Field(
        None, description=Q.KNOBS["overlap"].long_name)
    spec_k: _knob_axis("spec_k") | None = Field(None, description=Q.KNOBS["spec_k"].long_name)
    spec_alpha: _knob_axis("spec_alpha") | None = Field(None, description=Q.KNOBS["spec_alpha"].long_name)

    @model_validator(mode="after")
    def _unique(self):
        for name in ("hardware", "model"):
            ax = getattr(self, name)
            if isinstance(ax, list | tuple):
                labels = [_canonical(name, x) if isinstance(x, str) else x.name for x in ax]
                dup = {x for x in labels if labels.count(x) > 1}
                if dup:
                    raise ValueError(f"expected distinct {name} names, found {sorted(dup)} twice")
        return self


class Sensitivities(_Frozen):
    of: list[SensOutput] = Field(default_factory=lambda: ["b_star", "cost_at_b_star"], min_length=1)
    knobs: list[Knob] = Field(default_factory=lambda: ["bw", "c_over_bw", "sparsity"], min_length=1)
    kind: list[Literal["partial", "elasticity"]] = Field(
        default_factory=lambda: ["partial", "elasticity"], min_length=1)


class Outputs(_Frozen):
    values: list[OutputName] = Field(default_factory=lambda: list(DEFAULT_VALUES), min_length=1)
    sensitivities: Sensitivities | None = None


def _outputs_before(v: Any) -> Any:
    return {"values": v} if isinstance(v, list) else v




def _price_spec(v: Any) -> str:
    parsed = _catalog().parse_price(v)
    return ",".join(parsed) if isinstance(parsed, tuple) else f"{parsed:g} $/h"


class SweepConfig(_Frozen):
    """One sweep job."""

    name: str | None = None
    description: str | None = None
    axes: Axes
    outputs: Annotated[Outputs, BeforeValidator(_outputs_before)] = Field(default_factory=Outputs)
    chunks: dict[str, Annotated[int, Field(ge=1)]] = Field(
        default_factory=dict, description="block size per dim (batch is always whole)")
    target_block_points: int = Field(4_000_000, ge=1000, description="points per block when chunks are not given")
    store: str | None = Field(None, description="Zarr store path (default: out/<config stem>.zarr)")
    dtype: Literal["float32", "float64"] = "float32"
    physics: Literal["seeds", "extended", "calibrated"] = Field(
        "seeds", description="seeds: the seeds' decode step (catalog peaks, one big chip); extended: "
        "attention FLOPs, default efficiencies, the scale-up link and a multi-chip layout; calibrated: "
        "the prediction of core.predict with the shipped calibration for t_step, latency, throughput, "
        "tokens_per_second_per_user, cost_per_token and cost_per_mtok (each variable's 'reading' "
        "attribute says prediction), the bound for every other variable")
    price: Annotated[str, BeforeValidator(_price_spec)] = Field(
        DEFAULT_PRICE, description="price basis of catalog chips: tco-neocloud | tco-hyperscaler | "
        "rental-3yr | market-low | market-high, several joined by commas (first the chip has), or a "
        "price such as '8 $/h' for every chip; a chip without one gets NaN ('no price')")
    layout: Annotated[str, BeforeValidator(_choice("layouts", LAYOUTS))] | None = Field(
        None, description="replica layout (core.parallel.layout); auto: ep for MoE architectures, tp for "
        "dense ones and for models given by counts. Default: auto with physics extended or calibrated, "
        "one-chip with seeds")

    @model_validator(mode="after")
    def _calibrated_needs_layers(self):
        """The calibrated prediction charges a time per decoder layer: a model given by counts has
        no layers, and its prediction would silently drop that time."""
        if self.physics != "calibrated":
            return self
        models = self.axes.model if isinstance(self.axes.model, list | tuple) else [self.axes.model]
        for m in models:
            if isinstance(m, SparsityModel) or (isinstance(m, InlineModel) and m.architecture is None):
                raise ValueError(
                    f"axes.model: physics calibrated charges a time per decoder layer, so it needs each "
                    f"model's layers (a catalog name, 'architecture' or 'hf_config'); found {m.name!r} "
                    "given by counts (use physics extended for the bound of a family)")
        return self

    def layout_kind(self) -> str:
        return self.layout or ("one-chip" if self.physics == "seeds" else "auto")

    def normalized_json(self) -> str:
        """The config as canonical JSON (what the cube's ``rooflax_config`` attr holds).

        Fields added with the extended physics are left out while unset, so the JSON (and the
        resume check of existing cubes) of a seeds config is what it was before them.
        """
        d = self.model_dump(mode="json")
        if d.get("physics") == "seeds":
            d.pop("physics")
        if d.get("layout") is None:
            d.pop("layout", None)
        if d.get("price") == DEFAULT_PRICE:
            d.pop("price")
        for k in EXTRA_AXES:
            if d["axes"].get(k) is None:
                d["axes"].pop(k, None)
        return json.dumps(d, sort_keys=True, separators=(",", ":"))


def json_schema() -> dict:
    schema = SweepConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "rooflax sweep config"
    return schema


# -- errors ------------------------------------------------------------------------------------


class ConfigError(Exception):
    """A bad config: ``issues`` is a list of (line or None, field, message)."""

    def __init__(self, path: str, issues: list[tuple[int | None, str, str]]):
        self.path = str(path)
        self.issues = issues
        lines = []
        for line, field, msg in issues:
            where = f"{self.path}:{line}" if line else self.path
            lines.append(f"{where}: {field or '(top level)'}: {msg}")
        super().__init__("\n".join(lines))


_MODEL_FIELDS = {
    "SweepConfig": SweepConfig, "Axes": Axes, "Outputs": Outputs, "Sensitivities": Sensitivities,
    "InlineHardware": InlineHardware, "HypotheticalHardware": HypotheticalHardware,
    "InlineModel": InlineModel, "SparsityModel": SparsityModel, "Attention": Attention,
    "PrecisionSettings": PrecisionSettings,
}


def _parent_fields(loc: tuple, data: Any) -> list[str]:
    """Allowed field names at the parent of an extra field (best effort)."""
    node: Any = data
    for part in loc[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
    keys = set(node) if isinstance(node, dict) else set()
    best, score = [], -1
    for model in _MODEL_FIELDS.values():
        fields = set(model.model_fields)
        s = len(keys & fields)
        if s > score:
            best, score = sorted(fields), s
    return best


def dims_of(cfg: SweepConfig) -> list[str]:
    """The sweep's dims in cube order: hardware-ish (``hardware`` | ``bw``, ``c_over_bw``),
    model-ish (``model`` | ``sparsity``), other swept knobs, ``batch``, ``context``."""
    ax = cfg.axes
    dims = ["bw", "c_over_bw"] if isinstance(ax.hardware, HypotheticalHardware) else ["hardware"]
    dims += ["sparsity"] if isinstance(ax.model, SparsityModel) else ["model"]
    if isinstance(ax.precision, list | tuple):
        dims.append("precision")
    dims += [k for k in ("chips", "slo") if is_swept(getattr(ax, k))]
    dims += [k for k in EXTRA_AXES if is_swept(getattr(ax, k))]
    return dims + ["batch", "context"]


def default_store(path: str | os.PathLike) -> str:
    return str(Path("out") / (Path(path).stem + ".zarr"))


def load(path: str | os.PathLike) -> SweepConfig:
    """Read and validate a config file; :class:`ConfigError` on any problem."""
    path = str(path)
    try:
        data, root, _ = load_mapping(path, "a mapping of fields (axes, outputs, store, ...)")
    except InputError as e:
        raise ConfigError(path, [(e.line, e.field, f"expected {e.expected}, found {e.found}")]) from None
    try:
        cfg = SweepConfig.model_validate(data, context={"config_dir": str(Path(path).parent)})
    except ValidationError as e:
        issues = schema_issues(e, data, root, lambda loc: _parent_fields(loc, data))
        raise ConfigError(path, [(i.line, i.field, i.message) for i in issues]) from None
    if cfg.store is None:
        cfg = cfg.model_copy(update={"store": default_store(path)})
    # checks that need the grid's dims
    dims = dims_of(cfg)
    for d in cfg.chunks:
        if d not in dims:
            node = node_at(root, ("chunks", d), key_node=True)
            raise ConfigError(path, [(node.start_mark.line + 1 if node else None, f"chunks.{d}",
                                      f"expected a dimension of this sweep ({', '.join(dims)}), "
                                      f"found {d!r}{suggest(d, dims)}")])
    try:
        err = check_store_writable(cfg.store)
    except (OSError, ValueError) as e:
        err = f"expected a usable store path, found {found(cfg.store)} ({e})"
    if err:
        node = node_at(root, ("store",))
        raise ConfigError(path, [(node.start_mark.line + 1 if node is not root else None, "store", err)])
    return cfg


def check_store_writable(store: str) -> str | None:
    p = Path(store).absolute()
    if p.exists() and not p.is_dir():
        return f"expected a directory path for the Zarr store, found an existing file {store!r}"
    parent = p
    while not parent.exists():
        parent = parent.parent
    probe_dir = p if p.exists() else parent
    if not probe_dir.is_dir() or not _can_write(probe_dir):
        return (f"expected a writable location for the store, found {store!r} "
                f"(cannot write in {str(probe_dir)!r})")
    return None


def _can_write(d: Path) -> bool:
    """Really try (root passes os.access everywhere, even on /proc)."""
    import tempfile
    try:
        fd, name = tempfile.mkstemp(dir=d, prefix=".rooflax-probe-")
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True
