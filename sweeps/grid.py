"""From a :class:`~rooflax.sweeps.config.SweepConfig` to a :class:`Plan`: dims, coordinates,
the parameter pytrees, the variables to write and the blocks.

The plan carries the sweep's parameters as the core's own pytrees (``Plan.trees``: ``hw`` a
:class:`~rooflax.core.specs.Hardware`, ``m`` a :class:`~rooflax.core.specs.Model`, ``wl`` a
:class:`~rooflax.core.specs.Workload`): every leaf is a float64 array with one axis per plan dim,
of length 1 on the dims it does not vary along (as :func:`rooflax.core.specs.stack`/``along``
make them), so the trees broadcast into the grid and a block is an index of each leaf. They are
built once, through the catalog (:mod:`rooflax.sweeps.catalogs`) and
:func:`rooflax.core.parallel.layout`. Prices are $/s in the trees (``Hardware.price``); $/h appears
only as the cube's ``price_per_hour`` coordinate.

Dim order: :func:`rooflax.sweeps.config.dims_of`. A block spans the whole batch axis, so
reductions over batch happen inside it.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any

import jax
import numpy as np

from rooflax.core import quantities as Q
from rooflax.core.parallel import layout
from rooflax.core.specs import SECONDS_PER_HOUR, Hardware, Model, Workload, precision_bytes

from . import catalogs
from . import config as C
from .config import dims_of  # noqa: F401  (re-exported)

#: Hardware leaves that efficiency.hardware fills from the catalog (physics: extended).
_HW_EXT = ("flops_eff", "bw_eff", "link_bw", "link_eff", "link_latency", "overlap")

INT_VARS = {"regime": "int8", "binding": "int8"}

#: A cube coordinate that is not a dim: (its dims, its values, its attrs).
Extra = tuple[tuple[str, ...], np.ndarray, dict]


@dataclasses.dataclass
class VarSpec:
    dims: tuple[str, ...]
    dtype: str
    attrs: dict[str, Any]


@dataclasses.dataclass
class Plan:
    """Everything a block task needs (picklable, small)."""

    dims: list[str]
    coords: dict[str, np.ndarray]
    trees: dict[str, Any]
    """The parameter pytrees by argument name (``hw``, ``m``, ``wl``), leaves over ``dims``."""
    extra_coords: dict[str, Extra]
    variables: dict[str, VarSpec]
    chunks: dict[str, int]
    values: tuple[str, ...]
    sens: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] | None  # of, knobs, kinds
    dtype: str
    config_json: str
    store: str
    price: str = ""
    """The price spec of the sweep (cube attr ``rooflax_price``)."""
    handles: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False, compare=False)
    """Open Zarr handles of the cube this plan writes, by store and run id: opened by
    :func:`rooflax.sweeps.store.write_block` at a process's first block, reused by its next
    ones; never pickled (a Dask worker opens its own, once for the plan scattered to it)."""

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "handles": {}}

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(self.coords[d]) for d in self.dims)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def block_grid(self) -> tuple[int, ...]:
        return tuple(math.ceil(len(self.coords[d]) / self.chunks[d]) for d in self.dims)

    @property
    def n_blocks(self) -> int:
        return math.prod(self.block_grid)

    def block_index(self, flat: int) -> tuple[int, ...]:
        """Block index of the ``flat``-th block (C order) — arithmetic, no list of blocks."""
        return tuple(int(i) for i in np.unravel_index(int(flat), self.block_grid))

    def blocks(self) -> list[tuple[int, ...]]:
        """Every block index (small grids only: a list; runs use :meth:`block_index`)."""
        return list(itertools.product(*(range(n) for n in self.block_grid)))

    def block_slices(self, index: tuple[int, ...]) -> dict[str, slice]:
        out = {}
        for d, i in zip(self.dims, index, strict=True):
            c = self.chunks[d]
            out[d] = slice(i * c, min((i + 1) * c, len(self.coords[d])))
        return out

    @property
    def block_shape(self) -> tuple[int, ...]:
        return tuple(self.chunks[d] for d in self.dims)

    def bytes_total(self) -> int:
        total = 0
        for v in self.variables.values():
            total += math.prod(len(self.coords[d]) for d in v.dims) * np.dtype(v.dtype).itemsize
        return total


# -- leaves over the plan's dims ---------------------------------------------------------------
def _along(values: Any, dim: str, dims: list[str]) -> np.ndarray:
    """A 1-D float64 array shaped to vary along ``dim`` of the plan (numpy ``specs.along``)."""
    a = np.asarray(values, dtype=np.float64)
    return a.reshape([a.size if d == dim else 1 for d in dims])


def _scalar(value: Any, dims: list[str]) -> np.ndarray:
    """A float64 scalar shaped (1, …, 1) over the plan's dims."""
    return np.full([1] * len(dims), value, dtype=np.float64)


def _grid_tree(rows: list[list[Any]], row_dims: tuple[str, str], dims: list[str]) -> Any:
    """Pytrees of scalars in a (item, precision) table → one pytree with leaves over ``dims``.

    A leaf keeps the precision axis only where the precision is swept and the leaf varies
    along it (the weights' bytes do, a catalog chip's bandwidth does not).
    """
    flat = [t for row in rows for t in row]
    n_item, n_p = len(rows), len(rows[0])

    def leaf(*xs: Any) -> np.ndarray:
        a = np.array([float(np.asarray(x)) for x in xs], dtype=np.float64).reshape(n_item, n_p)
        if row_dims[1] not in dims or np.array_equal(a, a[:, :1].repeat(n_p, 1), equal_nan=True):
            a = a[:, :1]
        return a.reshape([a.shape[row_dims.index(d)] if d in row_dims else 1 for d in dims])

    return jax.tree.map(leaf, *flat)


def _on(a: Any, want: tuple[str, ...], dims: list[str], sizes: dict[str, int]) -> np.ndarray:
    """Leaf ``a`` (over ``dims``) as a float64 array over the dims ``want``, full length along
    each (a leaf constant along one of them is repeated), taken at index 0 along the others."""
    a = np.asarray(a, dtype=np.float64)
    a = a.reshape(a.shape if a.ndim else [1] * len(dims))
    shape = [sizes[d] if d in want else n for d, n in zip(dims, a.shape, strict=True)]
    full = np.broadcast_to(a, shape)
    return np.asarray(full[tuple(slice(None) if d in want else 0 for d in dims)])


def _sizes(cfg: C.SweepConfig, dims: list[str]) -> dict[str, int]:
    """The length of each dim of the sweep."""
    ax = cfg.axes

    def axis(d: str) -> Any:
        if d in ("bw", "c_over_bw"):
            return getattr(ax.hardware, d)
        return ax.model.sparsity if d == "sparsity" else getattr(ax, d)

    return {d: len(C.axis_values(axis(d))) for d in dims}


# -- precision ---------------------------------------------------------------------------------
def _precisions(ax: C.Axes) -> tuple[list[str], str, str]:
    """(weights precisions along the precision axis, KV precision, compute precision setting)."""
    if isinstance(ax.precision, list | tuple):
        return list(ax.precision), "bf16", "auto"
    if isinstance(ax.precision, C.PrecisionSettings):
        return [ax.precision.weights], ax.precision.kv, ax.precision.compute
    return [ax.precision], "bf16", "auto"


def _compute_precision(name: str, want: str, compute: str) -> str:
    """The precision whose peak FLOPS a catalog chip runs at (bf16, else its first peak, if it
    lacks the one asked for)."""
    return catalogs.compute_precision(name, want if compute == "auto" else compute)


def _source(entry: dict) -> str:
    src = entry.get("source", "catalog")
    return "; ".join(src) if isinstance(src, list) else str(src)


# -- hardware ----------------------------------------------------------------------------------
def _inline_price(given: float | None, spec: str) -> float:
    """$/h of a chip given in the config: its own price, else the config's price if a number,
    else NaN."""
    if given is not None:
        return float(given)
    parsed = catalogs.parse_price(spec)
    return parsed if isinstance(parsed, float) else float("nan")


def _catalog_chip(cfg: C.SweepConfig, name: str, chips: float | None) -> tuple[list[Hardware], dict]:
    """A catalog chip at each weights precision (its compute precision's peak), and its labels."""
    precisions, _, compute = _precisions(cfg.axes)
    pr = catalogs.price(name, cfg.price)
    if cfg.physics == "extended":  # default efficiencies and the scale-up link
        from .efficiency import hardware as make
    elif cfg.physics == "calibrated":
        make = _calibrated_chip
    else:
        make = catalogs.hardware
    comp = [_compute_precision(name, p, compute) for p in precisions]
    row = [make(name, precision=cp, chips=chips, price_per_hour=pr.usd_per_hour) for cp in comp]
    entry = catalogs.hardware_entry(name)
    return row, {"label": name, "compute_precision": comp, "hardware_name": str(entry.get("name", name)),
                 "hardware_source": _source(entry), "power_kw": catalogs.power_kw(name)[0],
                 "price_basis": pr.basis + (" (placeholder)" if pr.placeholder else ""),
                 "price_source": pr.source}


def _calibrated_chip(name: str, *, precision: str, chips: float | None,
                     price_per_hour: float | None) -> Hardware:
    """Catalog peaks with the replica's link: the hardware the calibration was fitted on
    (``sweeps.calibration``'s rows; its Engine carries the realized efficiencies)."""
    from .efficiency import replica_link_bw

    hw = catalogs.hardware(name, precision=precision, chips=chips, price_per_hour=price_per_hour)
    return hw.replace(link_bw=replica_link_bw(name, float(hw.chips)))


def _inline_chip(cfg: C.SweepConfig, item: C.InlineHardware,
                 chips: float | None) -> tuple[list[Hardware], dict]:
    """A chip given in the config (same leaves at every precision), and its labels."""
    n_p = len(_precisions(cfg.axes)[0])
    usd = _inline_price(item.price_per_hour, cfg.price)
    cob = item.c_over_bw if item.c_over_bw is not None else item.flops / 2.0 / item.bw
    hw = Hardware(bw=item.bw, c_over_bw=cob, capacity=item.capacity, price=usd / SECONDS_PER_HOUR,
                  chips=float(chips if chips is not None else (item.chips or 1.0)))
    known = not np.isnan(usd)
    return [hw] * n_p, {
        "label": item.name, "compute_precision": ["inline"] * n_p, "hardware_name": item.name,
        "hardware_source": item.source, "power_kw": np.nan,
        "price_basis": "custom" if item.price_per_hour is not None or known else catalogs.NO_PRICE,
        "price_source": item.source if known else f"{item.name}: no price_per_hour given"}


#: Labels of the hardware axis written as coordinates: name → long name.
#: Text coordinates of a chip list (attributes: the registry's axes).
_HW_LABELS = ("hardware_name", "hardware_source", "price_basis", "price_source")


def _hardware_list(cfg: C.SweepConfig, dims: list[str], chips: float | None):
    """(hw, coords, extra coords) of a list of chips (catalog names or inline chips)."""
    rows, infos, sizes = [], [], _sizes(cfg, dims)
    for item in cfg.axes.hardware:
        make = _catalog_chip if isinstance(item, str) else _inline_chip
        row, info = make(cfg, item, chips)
        rows.append(row)
        infos.append(info)
    hw = _grid_tree(rows, ("hardware", "precision"), dims)
    hp = tuple(d for d in dims if d in ("hardware", "precision"))
    col = {k: [i[k] for i in infos] for k in infos[0]}
    comp = np.array(col["compute_precision"], dtype=object)
    extra: dict[str, Extra] = {
        "bw": (("hardware",), _on(hw.bw, ("hardware",), dims, sizes),
               Q.attrs("bw")),
        "c_over_bw": (hp, _on(hw.c_over_bw, hp, dims, sizes),
                      Q.attrs("c_over_bw")),
        "compute_precision": (hp, comp if "precision" in dims else comp[:, 0],
                              Q.attrs("compute_precision"))}
    for k in _HW_LABELS:
        extra[k] = (("hardware",), np.array(col[k], dtype=object), Q.attrs(k))
    extra["power_kw"] = (("hardware",), np.array(col["power_kw"], dtype=np.float64),
                         Q.attrs("power_kw"))
    return hw, {"hardware": np.array(col["label"], dtype=object)}, extra


def _hardware_space(cfg: C.SweepConfig, dims: list[str], chips: float | None):
    """(hw, coords, extra coords) of hypothetical hardware on continuous bw × C/BW axes."""
    h = cfg.axes.hardware
    coords = {k: np.array(C.axis_values(getattr(h, k)), dtype=np.float64) for k in ("bw", "c_over_bw")}
    usd = _inline_price(h.price_per_hour, cfg.price)
    hw = Hardware(bw=_along(coords["bw"], "bw", dims),
                  c_over_bw=_along(coords["c_over_bw"], "c_over_bw", dims),
                  capacity=_scalar(h.capacity, dims), price=_scalar(usd / SECONDS_PER_HOUR, dims),
                  chips=_scalar(h.chips if chips is None else chips, dims))
    return hw, coords, {}


def _hardware(cfg: C.SweepConfig, dims: list[str]):
    """(hw, hw dims, coords, extra coords): the chips, their prices ($/s) and chip counts."""
    ax = cfg.axes
    fixed = None if ax.chips is None or C.is_swept(ax.chips) else C.axis_values(ax.chips)[0]
    space = isinstance(ax.hardware, C.HypotheticalHardware)
    hw, coords, extra = (_hardware_space if space else _hardware_list)(cfg, dims, fixed)
    hw, hw_dims, sizes = _filled(hw, dims), () if space else ("hardware",), _sizes(cfg, dims)
    extra["capacity"] = (hw_dims, _on(hw.capacity, hw_dims, dims, sizes),
                         Q.attrs("capacity"))
    extra["price_per_hour"] = (hw_dims, _on(hw.price, hw_dims, dims, sizes) * SECONDS_PER_HOUR,
                               Q.attrs("price_per_hour"))
    if C.is_swept(ax.chips):
        coords["chips"] = np.array(C.axis_values(ax.chips), dtype=np.float64)
        hw = hw.replace(chips=_along(coords["chips"], "chips", dims))
    else:
        extra["chips"] = (hw_dims, _on(hw.chips, hw_dims, dims, sizes),
                          Q.attrs("chips"))
    return hw, hw_dims, coords, extra


def _knobs(cfg: C.SweepConfig, dims: list[str], hw: Hardware, wl: Workload, hw_dims: tuple[str, ...]):
    """(hw, wl, coords, extra coords) with the extended knobs the config sets or sweeps
    (a hardware knob set in the config overrides the efficiency catalog)."""
    trees: dict[str, Any] = {"hw": hw, "wl": wl}
    sizes = _sizes(cfg, dims)
    coords: dict[str, np.ndarray] = {}
    extra: dict[str, Extra] = {}
    for k, which in C.EXTRA_AXES.items():
        v = getattr(cfg.axes, k)
        if C.is_swept(v):
            coords[k] = np.array(C.axis_values(v), dtype=np.float64)
            trees[which] = trees[which].replace(**{k: _along(coords[k], k, dims)})
        elif v is not None:
            trees[which] = trees[which].replace(**{k: _scalar(C.axis_values(v)[0], dims)})
        if cfg.physics == "extended" and not C.is_swept(v):
            leaf = getattr(trees[which], k)
            own = hw_dims if which == "hw" and v is None else ()
            if "precision" in dims and np.shape(leaf)[dims.index("precision")] > 1:
                own += ("precision",)  # the efficiency catalog's value differs by precision
            extra[k] = (own, _on(leaf, own, dims, sizes), Q.attrs(k))
    return trees["hw"], trees["wl"], coords, extra


def _workload(cfg: C.SweepConfig, dims: list[str]):
    """(wl, coords): batch and context along their dims, the SLO (s; inf: none)."""
    ax = cfg.axes
    coords = {k: np.array(C.axis_values(getattr(ax, k)), dtype=np.float64) for k in ("batch", "context")}
    if C.is_swept(ax.slo):
        coords["slo"] = np.array(C.axis_values(ax.slo), dtype=np.float64)
        slo = _along(coords["slo"], "slo", dims)
    else:
        given = C.axis_values(ax.slo)
        slo = _scalar(given[0] if given else np.inf, dims)
    wl = Workload(batch=_along(coords["batch"], "batch", dims),
                  context=_along(coords["context"], "context", dims), slo=slo)
    return _filled(wl, dims), coords


def _filled(tree: Any, dims: list[str]) -> Any:
    """Every leaf a float64 array over the plan's dims (defaults become (1, …, 1) arrays)."""
    return jax.tree.map(lambda x: x if np.ndim(x) == len(dims) else _scalar(x, dims), tree)


# -- model -------------------------------------------------------------------------------------
def _model_item(item: Any, precisions: list[str], kv: str, extended: bool) -> tuple[list[Model], bool]:
    """A listed model (catalog name or inline) at each weights precision; whether it is MoE
    (a model given by counts only is laid out as dense: no expert fraction to replicate)."""
    from rooflax.core.arch import Architecture, model_from_architecture
    from rooflax.core.parallel import extended_model

    if isinstance(item, str):
        return ([catalogs.model(item, weights=p, kv=kv, extended=extended) for p in precisions],
                bool(catalogs.architecture(item).is_moe))
    if item.architecture is not None:
        arch = Architecture(**item.architecture)
        make = extended_model if extended else model_from_architecture
        return [make(arch, weights=p, kv=kv) for p in precisions], bool(arch.is_moe)
    sp = item.sparsity if item.sparsity is not None else item.n_total / item.n_active
    return [Model(n_total=item.n_total, sparsity=sp, bytes_per_weight=precision_bytes(p),
                  kv_bytes_per_token=item.kv_bytes_per_token * precision_bytes(kv) / 2.0)
            for p in precisions], False


def _model_list(cfg: C.SweepConfig, dims: list[str]):
    """(m, is-MoE over dims, coords, extra coords) of a list of models."""
    precisions, kv, _ = _precisions(cfg.axes)
    rows, moe, labels, sources, sizes = [], [], [], [], _sizes(cfg, dims)
    for item in cfg.axes.model:
        row, is_moe = _model_item(item, precisions, kv, cfg.physics != "seeds")
        rows.append(row)
        moe.append(is_moe)
        labels.append(item if isinstance(item, str) else item.name)
        sources.append(_source(catalogs.model_entry(item)) if isinstance(item, str) else item.source)
    m = _grid_tree(rows, ("model", "precision"), dims)
    n_total = _on(m.n_total, ("model",), dims, sizes)
    sparsity = _on(m.sparsity, ("model",), dims, sizes)
    extra: dict[str, Extra] = {
        "n_total": (("model",), n_total, Q.attrs("n_total")),
        "n_active": (("model",), n_total / sparsity, Q.attrs("n_active")),
        "sparsity": (("model",), sparsity, Q.attrs("sparsity")),
        "model_source": (("model",), np.array(sources, dtype=object), Q.attrs("model_source"))}
    return m, _along(moe, "model", dims) > 0, {"model": np.array(labels, dtype=object)}, extra


def _model_space(cfg: C.SweepConfig, dims: list[str]):
    """(m, is-MoE, coords, extra coords) of a model family along a sparsity axis."""
    precisions, kv, _ = _precisions(cfg.axes)
    fam = cfg.axes.model
    coords = {"sparsity": np.array(C.axis_values(fam.sparsity), dtype=np.float64)}
    bpw = [precision_bytes(p) for p in precisions]
    bpw = _along(bpw, "precision", dims) if "precision" in dims else _scalar(bpw[0], dims)
    m = Model(n_total=_scalar(fam.n_total, dims), sparsity=_along(coords["sparsity"], "sparsity", dims),
              kv_bytes_per_token=_scalar(fam.kv_bytes_per_token * precision_bytes(kv) / 2.0, dims),
              bytes_per_weight=bpw)
    extra: dict[str, Extra] = {
        "n_total": ((), np.array(fam.n_total), Q.attrs("n_total")),
        "n_active": (("sparsity",), fam.n_total / coords["sparsity"], Q.attrs("n_active"))}
    return m, np.array(False), coords, extra  # no routed-expert shapes: auto lays it out as tp


def _model(cfg: C.SweepConfig, dims: list[str]):
    """(m, m dims, is-MoE, coords, extra coords), attention overrides applied."""
    space = isinstance(cfg.axes.model, C.SparsityModel)
    m, moe, coords, extra = (_model_space if space else _model_list)(cfg, dims)
    m_dims, sizes = () if space else ("model",), _sizes(cfg, dims)
    att = cfg.axes.attention
    if att is not None:
        given = {f: _scalar(getattr(att, f), dims) for f in ("window", "top_k", "sqrt_coeff")
                 if getattr(att, f) is not None}
        m = m.replace(**given)
    m = _filled(m, dims)
    extra["kv_bytes_per_token"] = (m_dims, _on(m.kv_bytes_per_token, m_dims, dims, sizes),
                                   Q.attrs("kv_bytes_per_token"))
    if np.any(m.state_bytes_per_seq > 0):  # hybrid linear-attention models only
        extra["state_bytes_per_seq"] = (m_dims, _on(m.state_bytes_per_seq, m_dims, dims, sizes),
                                        Q.attrs("state_bytes_per_seq"))
    mp = tuple(d for d in dims if d in m_dims + ("precision",))
    extra["bytes_per_weight"] = (mp, _on(m.bytes_per_weight, mp, dims, sizes),
                                 Q.attrs("bytes_per_weight"))
    return m, m_dims, moe, coords, extra


# -- layout ------------------------------------------------------------------------------------
def _laid_out(hw: Hardware, kind: str, moe: np.ndarray) -> Hardware:
    """``hw`` laid out by :func:`rooflax.core.parallel.layout`; ``"auto"``: ep for MoE models,
    tp for dense ones (``moe`` a boolean over the plan's dims)."""
    if kind != "auto":
        return layout(hw, kind)
    ep, tp = layout(hw, "ep"), layout(hw, "tp")
    return hw.replace(dp=np.where(moe, ep.dp, tp.dp), expert_replicas=ep.expert_replicas,
                      moe_ep=np.where(moe, ep.moe_ep, tp.moe_ep))


def _layout(cfg: C.SweepConfig, dims: list[str], hw: Hardware, moe: np.ndarray,
            hw_dims: tuple[str, ...], m_dims: tuple[str, ...]) -> tuple[Hardware, dict[str, Extra]]:
    """(hw with dp, expert_replicas and moe_ep set, the ``dp`` coordinate beyond the seeds' physics)."""
    kind = cfg.layout_kind()
    hw = _filled(_laid_out(hw, kind, moe), dims)
    if kind == "one-chip" or cfg.physics == "seeds":
        return hw, {}
    own = ("chips",) if C.is_swept(cfg.axes.chips) else hw_dims
    own += m_dims if kind == "auto" else ()
    own, sizes = tuple(d for d in dims if d in own), _sizes(cfg, dims)
    return hw, {"dp": (own, _on(hw.dp, own, dims, sizes), Q.attrs("dp"))}


# -- the calibrated engine ---------------------------------------------------------------------
def _engine(cfg: C.SweepConfig, dims: list[str]) -> Any:
    """The shipped calibration's Engine (``physics: calibrated``) by chip and weights precision
    (the weight-streaming efficiency; whether the chip dequantizes the weights), leaves over the
    plan's dims; decode only (no prompts interleaved: a sweep has no isl/osl)."""
    from .calibration import dequant_of, engine_for

    precisions = _precisions(cfg.axes)[0]
    hws = cfg.axes.hardware
    chips = [None] if isinstance(hws, C.HypotheticalHardware) else hws  # numbers: formats native
    rows = [[engine_for(p, dequant=dequant_of(c, p) if isinstance(c, str) else 0.0)
             for p in precisions] for c in chips]
    return _grid_tree(rows, ("hardware", "precision"), dims)


# -- variables and chunks ----------------------------------------------------------------------
def _value_specs(cfg: C.SweepConfig, dims: list[str]) -> dict[str, VarSpec]:
    """The requested quantities: per point (all dims), optimum (no batch), static (neither)."""
    no_b = tuple(d for d in dims if d != "batch")
    no_bc = tuple(d for d in no_b if d != "context")
    out = {}
    for name in cfg.outputs.values:
        d = tuple(dims) if name in C.BATCH_OUTPUTS else no_b if name in C.OPTIMUM_OUTPUTS else no_bc
        attrs = {**Q.attrs(name), **Q.flag_attrs(name), **_reading(cfg, name)}
        out[name] = VarSpec(d, INT_VARS.get(name, cfg.dtype), attrs)
    return out


def _reading(cfg: C.SweepConfig, name: str) -> dict[str, str]:
    """A variable's ``reading``: the prediction (``physics: calibrated``, the quantities it
    covers) or the bound (the seeds' roofline, at this physics' peaks and layout)."""
    if cfg.physics == "calibrated" and name in C.PREDICTED_OUTPUTS:
        return {"reading": "prediction", "comment": "core.predict with the shipped calibration "
                "(sweeps/catalog/calibration.yaml), decode only (no prompts interleaved)"}
    return {"reading": "bound"}


def _sensitivity_specs(cfg: C.SweepConfig, dims: list[str]) -> dict[str, VarSpec]:
    """``{kind}__{of}__{knob}`` (no batch dim) and ``sensitivity_reason``; none unless asked."""
    s = cfg.outputs.sensitivities
    if s is None:
        return {}
    no_b = tuple(d for d in dims if d != "batch")
    out = {f"{kind}__{o}__{k}": VarSpec(no_b, cfg.dtype, Q.sensitivity_attrs(kind, o, k))
           for kind, o, k in itertools.product(s.kind, s.of, s.knobs)}
    out["sensitivity_reason"] = VarSpec(no_b, "uint8", {**Q.REASON_ATTRS, **Q.flag_attrs("sensitivity_reason")})
    return out


def _chunks(cfg: C.SweepConfig, dims: list[str], coords: dict[str, np.ndarray]) -> dict[str, int]:
    """Whole batch; the rest from the config or sized to ``target_block_points``
    (outer dims shrink first, context last)."""
    shape = {d: len(coords[d]) for d in dims}
    chunks = {d: shape[d] for d in dims}
    for d, c in cfg.chunks.items():
        chunks[d] = min(c, shape[d])
    chunks["batch"] = shape["batch"]
    for d in [*reversed(dims[:-1]), "context"]:
        if d in cfg.chunks or d == "batch":
            continue
        rest = math.prod(chunks.values()) // chunks[d]
        chunks[d] = max(1, min(shape[d], cfg.target_block_points // max(rest, 1)))
    return chunks


# -- the plan ----------------------------------------------------------------------------------
def build(cfg: C.SweepConfig) -> Plan:
    """The plan of a sweep: dims, coordinates, parameter pytrees, variables and chunks."""
    dims = dims_of(cfg)
    hw, hw_dims, coords, extra = _hardware(cfg, dims)
    wl, wl_coords = _workload(cfg, dims)
    hw, wl, knob_coords, knob_extra = _knobs(cfg, dims, hw, wl, hw_dims)
    m, m_dims, moe, m_coords, m_extra = _model(cfg, dims)
    hw, layout_extra = _layout(cfg, dims, hw, moe, hw_dims, m_dims)
    precisions = _precisions(cfg.axes)[0]
    if "precision" in dims:
        coords["precision"] = np.array(precisions, dtype=object)
    coords.update(**knob_coords, **m_coords, **wl_coords)
    extra.update(**knob_extra, **layout_extra, **m_extra)
    s = cfg.outputs.sensitivities
    trees = {"hw": hw, "m": m, "wl": wl}
    if cfg.physics == "calibrated":
        trees["eng"] = _engine(cfg, dims)
    return Plan(dims=dims, coords=coords, trees=trees, extra_coords=extra,
                variables={**_value_specs(cfg, dims), **_sensitivity_specs(cfg, dims)},
                chunks=_chunks(cfg, dims, coords), values=tuple(cfg.outputs.values),
                sens=None if s is None else (tuple(s.of), tuple(s.knobs), tuple(s.kind)),
                dtype=cfg.dtype, config_json=cfg.normalized_json(), store=str(cfg.store), price=cfg.price)
