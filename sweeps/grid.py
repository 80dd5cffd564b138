"""From a :class:`~rooflax.sweeps.config.SweepConfig` to a :class:`Plan`: dims, coordinates,
the pytree leaves as small arrays along their own dims, the variables to write and the blocks.

Dim order: hardware-ish (``hardware`` | ``bw``, ``c_over_bw``), model-ish (``model`` |
``sparsity``), other swept knobs (``precision``, ``chips``, ``slo``), ``batch``, ``context``.
A block spans the whole batch axis, so reductions over batch happen inside it.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any

import numpy as np

from . import config as C
from .metadata import EXTRA_AXIS_ATTRS, KNOB_UNITS, UNITS  # noqa: F401  (re-exported)

HW_FIELDS = ("bw", "c_over_bw", "capacity", "price", "chips", "flops_eff", "bw_eff",
             "link_bw", "link_eff", "link_latency", "overlap", "dp", "expert_replicas", "moe_ep")
MODEL_FIELDS = ("n_total", "sparsity", "kv_bytes_per_token", "bytes_per_weight", "window", "top_k",
                "sqrt_coeff", "kv_bytes_per_token_local", "local_window",
                "attn_flops_per_ctx_token", "attn_flops_per_ctx_token_local", "expert_fraction",
                "expert_activation", "kv_heads", "hidden", "layers", "moe_layers",
                "experts_per_token", "route_limit", "act_bytes", "dispatch_bytes",
                "state_bytes_per_seq")
WL_FIELDS = ("batch", "context", "slo", "spec_k", "spec_alpha")
#: Hardware leaves that efficiency.hardware fills from the catalog (physics: extended).
_HW_EXT = ("flops_eff", "bw_eff", "link_bw", "link_eff", "link_latency", "overlap")

INT_VARS = {"regime": "int8", "binding": "int8"}
#: ``sensitivity_reason`` code after core's REASONS: the float64 derivative is finite but the
#: storage dtype cannot hold it (overflow, or a nonzero value that underflows to 0).
STORAGE_REASON = "storage dtype cannot hold the float64 value"


def dims_of(cfg: C.SweepConfig) -> list[str]:
    ax = cfg.axes
    dims = ["bw", "c_over_bw"] if isinstance(ax.hardware, C.HypotheticalHardware) else ["hardware"]
    dims += ["sparsity"] if isinstance(ax.model, C.SparsityModel) else ["model"]
    if isinstance(ax.precision, list | tuple):
        dims.append("precision")
    if C.is_swept(ax.chips):
        dims.append("chips")
    if C.is_swept(ax.slo):
        dims.append("slo")
    dims += [k for k in C.EXTRA_AXES if C.is_swept(getattr(ax, k))]
    return dims + ["batch", "context"]


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
    leaves: dict[str, tuple[tuple[str, ...], np.ndarray]]  # "hw.bw" → (dims, values)
    extra_coords: dict[str, tuple[tuple[str, ...], np.ndarray, dict]]
    variables: dict[str, VarSpec]
    chunks: dict[str, int]
    values: tuple[str, ...]
    sens: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] | None  # of, knobs, kinds
    dtype: str
    config_json: str
    store: str
    price: str = ""
    """The price spec of the sweep (cube attr ``rooflax_price``)."""

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


def _hw_precisions(name: str, want: str, compute: str) -> tuple[str, str]:
    """(weights precision, compute precision) for a catalog chip."""
    from . import catalogs
    return want, catalogs.compute_precision(name, want if compute == "auto" else compute)


def _inline_price(given: float | None, spec: str) -> float:
    """$/h of a chip given in the config: its own price, else the config's price if a number, else NaN."""
    from . import catalogs
    if given is not None:
        return float(given)
    parsed = catalogs.parse_price(spec)
    return parsed if isinstance(parsed, float) else float("nan")


def build(cfg: C.SweepConfig) -> Plan:
    from . import catalogs

    ax = cfg.axes
    dims = dims_of(cfg)
    coords: dict[str, np.ndarray] = {}
    leaves: dict[str, tuple[tuple[str, ...], np.ndarray]] = {}
    extra: dict[str, tuple[tuple[str, ...], np.ndarray, dict]] = {}

    # precision
    if isinstance(ax.precision, list | tuple):
        precisions = list(ax.precision)
        kv, compute = "bf16", "auto"
        coords["precision"] = np.array(precisions, dtype=object)
    elif isinstance(ax.precision, C.PrecisionSettings):
        precisions, kv, compute = [ax.precision.weights], ax.precision.kv, ax.precision.compute
    else:
        precisions, kv, compute = [ax.precision], "bf16", "auto"
    p_dims: tuple[str, ...] = ("precision",) if "precision" in dims else ()

    def squeeze_p(a: np.ndarray) -> np.ndarray:  # (n, P) → (n,) when precision is not swept
        return a if p_dims else a[:, 0]

    chips_override = None if ax.chips is None or C.is_swept(ax.chips) else C.axis_values(ax.chips)[0]
    extended = cfg.physics == "extended"
    hw_default = _defaults(rc_specs().Hardware)

    # hardware
    if isinstance(ax.hardware, C.HypotheticalHardware):
        h = ax.hardware
        coords["bw"] = np.array(C.axis_values(h.bw), dtype=np.float64)
        coords["c_over_bw"] = np.array(C.axis_values(h.c_over_bw), dtype=np.float64)
        leaves["hw.bw"] = (("bw",), coords["bw"])
        leaves["hw.c_over_bw"] = (("c_over_bw",), coords["c_over_bw"])
        leaves["hw.capacity"] = ((), np.array(h.capacity))
        leaves["hw.price"] = ((), np.array(_inline_price(h.price_per_hour, cfg.price) / 3600.0))
        chips = h.chips if chips_override is None else chips_override
        leaves["hw.chips"] = ((), np.array(chips))
        hw_dims: tuple[str, ...] = ()
        for f in _HW_EXT:
            leaves["hw." + f] = ((), np.array(hw_default[f]))
    else:
        labels, bw, cob, cap, price, chips, names, sources, comp_p = [], [], [], [], [], [], [], [], []
        bases, price_src, power = [], [], []
        ext = []  # (H, P, len(_HW_EXT))
        for item in ax.hardware:
            if isinstance(item, str):
                e = catalogs.hardware_entry(item)
                pr = catalogs.price(item, cfg.price)
                bases.append(pr.basis + (" (placeholder)" if pr.placeholder else ""))
                price_src.append(pr.source)
                power.append(catalogs.power_kw(item)[0])
                row = []
                cp_row = []
                ext_row = []
                for p in precisions:
                    _, cp = _hw_precisions(item, p, compute)
                    if extended:  # default efficiencies and the scale-up link
                        from . import efficiency
                        hw = efficiency.hardware(item, precision=cp, chips=chips_override,
                                                 price_per_hour=pr.usd_per_hour)
                    else:
                        hw = catalogs.hardware(item, precision=cp, chips=chips_override,
                                               price_per_hour=pr.usd_per_hour)
                    row.append(float(hw.c_over_bw))
                    cp_row.append(cp)
                    ext_row.append([float(np.asarray(getattr(hw, f))) for f in _HW_EXT])
                ext.append(ext_row)
                labels.append(item)
                bw.append(float(hw.bw))
                cap.append(float(hw.capacity))
                price.append(float(hw.price) * 3600.0)
                chips.append(float(hw.chips))
                names.append(str(e.get("name", item)))
                src = e.get("source", "catalog")
                sources.append("; ".join(src) if isinstance(src, list) else str(src))
                cob.append(row)
                comp_p.append(cp_row)
            else:
                labels.append(item.name)
                bw.append(item.bw)
                c = item.c_over_bw if item.c_over_bw is not None else item.flops / 2.0 / item.bw
                cob.append([c] * len(precisions))
                comp_p.append(["inline"] * len(precisions))
                ext.append([[float(hw_default[f]) for f in _HW_EXT]] * len(precisions))
                cap.append(item.capacity)
                price.append(_inline_price(item.price_per_hour, cfg.price))
                known = not np.isnan(price[-1])
                bases.append("custom" if item.price_per_hour is not None or known else catalogs.NO_PRICE)
                price_src.append(item.source if known else f"{item.name}: no price_per_hour given")
                power.append(np.nan)
                chips.append(float(chips_override if chips_override is not None else (item.chips or 1.0)))
                names.append(item.name)
                sources.append(item.source)
        coords["hardware"] = np.array(labels, dtype=object)
        hw_dims = ("hardware",)
        leaves["hw.bw"] = (hw_dims, np.array(bw))
        leaves["hw.c_over_bw"] = (hw_dims + p_dims, squeeze_p(np.array(cob)))
        leaves["hw.capacity"] = (hw_dims, np.array(cap))
        leaves["hw.price"] = (hw_dims, np.array(price) / 3600.0)
        leaves["hw.chips"] = (hw_dims, np.array(chips))
        extra["bw"] = (hw_dims, np.array(bw), {"units": "B/s", "long_name": "HBM bandwidth per chip"})
        extra["c_over_bw"] = (hw_dims + p_dims, squeeze_p(np.array(cob)),
                              {"units": "MAC/B", "long_name": "machine balance C/BW"})
        extra["compute_precision"] = (hw_dims + p_dims, squeeze_p(np.array(comp_p, dtype=object)),
                                      {"long_name": "precision of the FLOPS used"})
        extra["hardware_name"] = (hw_dims, np.array(names, dtype=object), {"long_name": "hardware"})
        extra["hardware_source"] = (hw_dims, np.array(sources, dtype=object), {"long_name": "source"})
        extra["price_basis"] = (hw_dims, np.array(bases, dtype=object),
                                {"long_name": "price basis (no price: NaN cost)"})
        extra["price_source"] = (hw_dims, np.array(price_src, dtype=object),
                                 {"long_name": "source of the price"})
        extra["power_kw"] = (hw_dims, np.array(power, dtype=np.float64),
                             {"units": "kW", "long_name": "power per chip"})
        ext_arr = np.array(ext, dtype=np.float64)
        for j, f in enumerate(_HW_EXT):
            col = ext_arr[:, :, j]
            if p_dims and not np.array_equal(col, col[:, :1].repeat(col.shape[1], 1)):
                leaves["hw." + f] = (hw_dims + p_dims, col)
            else:
                leaves["hw." + f] = (hw_dims, col[:, 0])
    extra["capacity"] = (hw_dims, np.array(leaves["hw.capacity"][1], dtype=np.float64),
                         {"units": "B", "long_name": "HBM capacity per chip"})
    extra["price_per_hour"] = (hw_dims, np.array(leaves["hw.price"][1]) * 3600.0,
                               {"units": "$/h", "long_name": "price per chip-hour"})
    if C.is_swept(ax.chips):
        coords["chips"] = np.array(C.axis_values(ax.chips), dtype=np.float64)
        leaves["hw.chips"] = (("chips",), coords["chips"])
    else:
        extra["chips"] = (hw_dims, np.array(leaves["hw.chips"][1], dtype=np.float64),
                          {"units": "chips", "long_name": "chips per replica"})
    # extended knobs set or swept by the config (hardware ones override the efficiency catalog)
    wl_default = _defaults(rc_specs().Workload)
    for k, which in C.EXTRA_AXES.items():
        v = getattr(ax, k)
        key = f"{which}.{k}"
        if C.is_swept(v):
            coords[k] = np.array(C.axis_values(v), dtype=np.float64)
            leaves[key] = ((k,), coords[k])
        elif v is not None:
            leaves[key] = ((), np.array(C.axis_values(v)[0], dtype=np.float64))
        elif which == "wl":
            leaves[key] = ((), np.array(wl_default[k], dtype=np.float64))
        if extended and not C.is_swept(v) and k in EXTRA_AXIS_ATTRS:
            u, ln = EXTRA_AXIS_ATTRS[k]
            extra[k] = (leaves[key][0], np.asarray(leaves[key][1], dtype=np.float64),
                        {"units": u, "long_name": ln})

    # model
    att = ax.attention
    if isinstance(ax.model, C.SparsityModel):
        m = ax.model
        coords["sparsity"] = np.array(C.axis_values(m.sparsity), dtype=np.float64)
        m_dims: tuple[str, ...] = ()
        leaves["m.n_total"] = ((), np.array(m.n_total))
        leaves["m.sparsity"] = (("sparsity",), coords["sparsity"])
        leaves["m.kv_bytes_per_token"] = ((), np.array(m.kv_bytes_per_token * _kv_bytes(kv) / 2.0))
        bpw = np.array([_pbytes(p) for p in precisions])
        leaves["m.bytes_per_weight"] = (p_dims, bpw if p_dims else np.array(bpw[0]))
        m_default = _defaults(rc_specs().Model)
        for f in MODEL_FIELDS[4:]:
            leaves["m." + f] = ((), np.array(float(m_default[f])))
        moe = ((), np.array(False))  # no routed-expert shapes: auto lays it out as tp
        extra["n_total"] = ((), np.array(m.n_total), {"units": "parameters", "long_name": "total parameters"})
        extra["n_active"] = (("sparsity",), m.n_total / coords["sparsity"],
                             {"units": "parameters", "long_name": "active parameters per token"})
    else:
        from rooflax.core.arch import Architecture, model_from_architecture
        from rooflax.core.parallel import extended_model
        labels, rows, sources, is_moe = [], [], [], []
        for item in ax.model:
            per_p = []
            if isinstance(item, str):
                is_moe.append(bool(catalogs.architecture(item).is_moe))
            elif item.architecture is not None:
                is_moe.append(bool(Architecture(**item.architecture).is_moe))
            else:  # counts only (no expert fraction): replicating under ep would copy all weights
                is_moe.append(False)
            for p in precisions:
                if isinstance(item, str):
                    mod = catalogs.model(item, weights=p, kv=kv, extended=extended)
                elif item.architecture is not None:
                    arch = Architecture(**item.architecture)
                    mod = (extended_model(arch, weights=p, kv=kv) if extended
                           else model_from_architecture(arch, weights=p, kv=kv))
                else:
                    sp = item.sparsity if item.sparsity is not None else item.n_total / item.n_active
                    from rooflax.core.specs import Model
                    mod = Model(n_total=item.n_total, sparsity=sp,
                                kv_bytes_per_token=item.kv_bytes_per_token * _kv_bytes(kv) / 2.0,
                                bytes_per_weight=_pbytes(p))
                per_p.append([float(np.asarray(getattr(mod, f))) for f in MODEL_FIELDS])
            rows.append(per_p)
            if isinstance(item, str):
                labels.append(item)
                src = catalogs.model_entry(item).get("source", "catalog")
                sources.append("; ".join(src) if isinstance(src, list) else str(src))
            else:
                labels.append(item.name)
                sources.append(item.source)
        arr = np.array(rows)  # (M, P, F)
        coords["model"] = np.array(labels, dtype=object)
        m_dims = ("model",)
        for j, f in enumerate(MODEL_FIELDS):
            col = arr[:, :, j]
            if f == "bytes_per_weight" and p_dims:
                leaves["m." + f] = (m_dims + p_dims, col)
            else:
                leaves["m." + f] = (m_dims, col[:, 0])
        extra["n_total"] = (m_dims, arr[:, 0, 0], {"units": "parameters", "long_name": "total parameters"})
        extra["n_active"] = (m_dims, arr[:, 0, 0] / arr[:, 0, 1],
                             {"units": "parameters", "long_name": "active parameters per token"})
        extra["sparsity"] = (m_dims, arr[:, 0, 1], {"units": "1", "long_name": "N_total / N_active"})
        extra["model_source"] = (m_dims, np.array(sources, dtype=object), {"long_name": "source"})
        moe = (m_dims, np.array(is_moe))

    # layout of a replica (core.parallel.layout): dp, expert_replicas, moe_ep
    kind = cfg.layout_kind()
    if kind == "one-chip":
        for f in ("dp", "expert_replicas", "moe_ep"):
            leaves["hw." + f] = ((), np.array(1.0))
    else:
        c_dims, c_val = leaves["hw.chips"]
        if kind == "auto":
            ep_dims, is_ep = moe
        else:
            ep_dims, is_ep = (), np.array(kind == "ep")
        u, (c, e) = _outer(dims, [(c_dims, c_val), (ep_dims, is_ep)])
        dp = np.where(e, c, 1.0).astype(np.float64)
        leaves["hw.dp"] = (u, dp)
        leaves["hw.expert_replicas"] = ((), np.array(1.0))
        leaves["hw.moe_ep"] = (ep_dims, np.where(is_ep, 1.0, 0.0))
        if extended:
            extra["dp"] = (u, dp, {"units": "groups",
                                   "long_name": "data-parallel attention groups per replica"})
    if att is not None:
        for f in ("window", "top_k", "sqrt_coeff"):
            v = getattr(att, f)
            if v is not None:
                leaves["m." + f] = ((), np.array(v))
    extra["kv_bytes_per_token"] = (leaves["m.kv_bytes_per_token"][0],
                                   np.asarray(leaves["m.kv_bytes_per_token"][1]),
                                   {"units": "B/token", "long_name": "KV-cache bytes per token"})
    state_dims, state = leaves["m.state_bytes_per_seq"]
    if np.any(np.asarray(state) > 0):  # hybrid linear-attention models only
        extra["state_bytes_per_seq"] = (state_dims, np.asarray(state, dtype=np.float64), {
            "units": "B", "long_name": "linear-attention state bytes per sequence"})
    extra["bytes_per_weight"] = (leaves["m.bytes_per_weight"][0],
                                 np.asarray(leaves["m.bytes_per_weight"][1]),
                                 {"units": "B", "long_name": "bytes per weight"})

    # workload
    coords["batch"] = np.array(C.axis_values(ax.batch), dtype=np.float64)
    coords["context"] = np.array(C.axis_values(ax.context), dtype=np.float64)
    leaves["wl.batch"] = (("batch",), coords["batch"])
    leaves["wl.context"] = (("context",), coords["context"])
    if C.is_swept(ax.slo):
        coords["slo"] = np.array(C.axis_values(ax.slo), dtype=np.float64)
        leaves["wl.slo"] = (("slo",), coords["slo"])
    else:
        slo = C.axis_values(ax.slo)
        leaves["wl.slo"] = ((), np.array(slo[0] if slo else np.inf))

    # variables
    fdt = cfg.dtype
    variables: dict[str, VarSpec] = {}
    no_b = tuple(d for d in dims if d != "batch")
    no_bc = tuple(d for d in no_b if d != "context")
    from rooflax.core import BINDINGS, REASONS, REGIMES
    for name in cfg.outputs.values:
        u, ln = UNITS[name]
        d = tuple(dims) if name in C.BATCH_OUTPUTS else no_b if name in C.OPTIMUM_OUTPUTS else no_bc
        attrs = {"units": u, "long_name": ln}
        dt = INT_VARS.get(name, fdt)
        if name == "regime":
            attrs.update(flag_values=list(range(len(REGIMES))), flag_meanings=" ".join(
                r.replace(" ", "_") for r in REGIMES))
        if name == "binding":
            attrs.update(flag_values=list(range(len(BINDINGS))), flag_meanings=" ".join(BINDINGS))
        variables[name] = VarSpec(d, dt, attrs)
    sens = None
    if cfg.outputs.sensitivities is not None:
        s = cfg.outputs.sensitivities
        sens = (tuple(s.of), tuple(s.knobs), tuple(s.kind))
        for kind in s.kind:
            for o in s.of:
                for k in s.knobs:
                    u = UNITS[o][0]
                    attrs = {"units": "1" if kind == "elasticity" else f"{u} per {KNOB_UNITS[k]}",
                             "long_name": f"{kind} of {o} with respect to {k}"}
                    variables[f"{kind}__{o}__{k}"] = VarSpec(no_b, fdt, attrs)
        variables["sensitivity_reason"] = VarSpec(no_b, "uint8", {
            "units": "1", "long_name": "why a sensitivity is NaN",
            "flag_values": list(range(len(REASONS) + 1)),
            "flag_meanings": " ".join([r.split(":")[0].split(" ")[0] for r in REASONS] + ["storage"]),
            "reasons": list(REASONS) + [STORAGE_REASON]})

    # chunks: whole batch; the rest from the config or sized to target_block_points
    shape = {d: len(coords[d]) for d in dims}
    chunks = {d: shape[d] for d in dims}
    for d, c in cfg.chunks.items():
        chunks[d] = min(c, shape[d])
    chunks["batch"] = shape["batch"]
    for d in reversed(dims[:-1]):  # shrink outer dims first (not context, then context)
        if d in cfg.chunks or d == "batch":
            continue
        rest = math.prod(chunks.values()) // chunks[d]
        chunks[d] = max(1, min(shape[d], cfg.target_block_points // max(rest, 1)))
    if "context" not in cfg.chunks:
        rest = math.prod(chunks.values()) // chunks["context"]
        chunks["context"] = max(1, min(shape["context"], cfg.target_block_points // max(rest, 1)))

    return Plan(dims=dims, coords=coords, leaves=leaves, extra_coords=extra, variables=variables,
                chunks=chunks, values=tuple(cfg.outputs.values), sens=sens, dtype=fdt,
                config_json=cfg.normalized_json(), store=str(cfg.store), price=cfg.price)


def rc_specs():
    from rooflax.core import specs
    return specs


def _defaults(cls) -> dict[str, float]:
    return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}


def _outer(dims: list[str], parts):
    """Broadcast leaves on their own dims to the union of their dims (in plan order)."""
    u = tuple(d for d in dims if any(d in pd for pd, _ in parts))
    out = []
    for pd, a in parts:
        a = np.asarray(a)
        out.append(a.reshape([a.shape[pd.index(d)] if d in pd else 1 for d in u]))
    return u, out


def _pbytes(p: str) -> float:
    from rooflax.core.specs import precision_bytes
    return precision_bytes(p)


def _kv_bytes(p: str) -> float:
    return _pbytes(p)
