"""Observation files for ``rooflax fit``: schema, YAML loading with clear errors, problem building.

An observation file says what was measured or published (``observations``), under
which conditions (``scenarios``), what to deduce (``unknowns``) and what to report
at the fit (``derive``)::

    title: DeepSeek-V3 production decode
    scenarios:
      decode:                      # a name used by `at:` below
        hardware: h800             # catalog name, or {bw, flops, capacity} in SI units
        precision: fp8             # compute precision of the peak FLOPS
        chips: 144                 # chips per replica
        price_per_hour: 2.0        # $ per chip-hour
        model: deepseek-v3         # catalog name, or {n_total, n_active|sparsity, kv_bytes_per_token, bytes_per_weight}
        weights: fp8
        kv: bf16
        knobs: {context: 4989}     # any knob, SI units
    unknowns:
      seqs_per_gpu:
        knob: batch_per_chip       # default: the unknown's own name
        bounds: [1, 2000]          # log-scale when the lower bound is > 0 (log: false to turn off)
        prior: {mean: 100, rel_sigma: 0.5}   # optional Gaussian prior (sigma or rel_sigma)
        start: 50                  # optional
        at: [decode]               # scenarios it applies to (default: all)
    observations:
      - name: tokens/s per user
        quantity: tokens_per_s_per_user
        at: decode                 # default: the only scenario
        range: [20, 22]            # or value + sigma, or value + rel_sigma; a range is mean ± half-width (1σ)
        knobs: {context: 8000}     # optional overrides for this observation
        over: {quantity: ..., at: ..., knobs: {...}}   # optional: observe a ratio
    derive:
      - {name: cost per M output, quantity: cost_per_mtok_output, at: decode}
    fit: {starts: 8, seed: 0, profile: true}

Every error — YAML syntax, a wrong type, an unknown name, a bad reference — is an
:class:`ObservationFileError` whose message names the file, the line, the field,
what was expected and what was found; the CLI exits with code 2 on it.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .inputs import InputError, dotted, found, line_of, load_yaml, read_text, suggest


class ObservationFileError(InputError):
    """A bad observation file (the one input error of :mod:`rooflax.sweeps.inputs`; exit 2)."""


# --------------------------------------------------------------------------- schema
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _knob_values(v: Any) -> Any:
    """``knobs: {context: 32k, slo: 50 ms}``: each value read by the one parser
    (:func:`rooflax.sweeps.units.knob`, k = 1024 tokens) and checked against its domain; knobs
    of the fit only (``batch_per_chip``…) are plain numbers."""
    from rooflax.core.quantities import DOMAINS

    from . import units

    if not isinstance(v, dict):
        return v
    return {k: units.knob(k, x) if k in DOMAINS else units.parse(x, "number", positive=False)
            for k, x in v.items()}


Knobs = Annotated[dict[str, float], BeforeValidator(_knob_values)]


class HardwareSpec(_Strict):
    """A chip given by numbers (SI units) instead of a catalog name."""

    bw: float = Field(gt=0, description="HBM bandwidth per chip, bytes/s")
    flops: float = Field(gt=0, description="dense peak FLOP/s per chip")
    capacity: float = Field(default=math.inf, gt=0, description="HBM bytes per chip")


class ModelSpec(_Strict):
    """A model given by numbers instead of a catalog name."""

    n_total: float = Field(gt=0)
    n_active: float | None = Field(default=None, gt=0)
    sparsity: float | None = Field(default=None, ge=1)
    kv_bytes_per_token: float = Field(default=0.0, ge=0)
    bytes_per_weight: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _one_of(self):
        if (self.n_active is None) == (self.sparsity is None):
            raise ValueError("give exactly one of n_active and sparsity")
        return self


class ScenarioSpec(_Strict):
    hardware: str | HardwareSpec
    precision: str = "bf16"
    chips: float | None = Field(default=None, gt=0)
    price_per_hour: float | None = Field(default=None, ge=0)
    model: str | ModelSpec
    weights: str | None = None
    kv: str = "bf16"
    knobs: Knobs = Field(default_factory=dict)
    note: str = ""


class PriorSpec(_Strict):
    mean: float
    sigma: float | None = Field(default=None, gt=0)
    rel_sigma: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_of(self):
        if (self.sigma is None) == (self.rel_sigma is None):
            raise ValueError("give exactly one of sigma and rel_sigma")
        return self

    @property
    def abs_sigma(self) -> float:
        return self.sigma if self.sigma is not None else self.rel_sigma * abs(self.mean)


class UnknownSpec(_Strict):
    knob: str | None = None
    bounds: tuple[float | None, float | None] | None = None
    log: bool | None = None
    prior: PriorSpec | None = None
    start: float | None = None
    at: list[str] | None = None
    note: str = ""


class ExprSpec(_Strict):
    quantity: str
    at: str | None = None
    knobs: Knobs = Field(default_factory=dict)


class ObservationSpec(ExprSpec):
    name: str | None = None
    value: float | None = None
    sigma: float | None = Field(default=None, gt=0)
    rel_sigma: float | None = Field(default=None, gt=0)
    range: tuple[float, float] | None = None
    over: ExprSpec | None = None
    source: str = ""
    note: str = ""

    @field_validator("value")
    @classmethod
    def _finite(cls, v):
        if v is not None and not math.isfinite(v):
            raise ValueError("a finite number")
        return v

    @model_validator(mode="after")
    def _value_and_sigma(self):
        if self.range is not None:
            if self.value is not None or self.sigma is not None or self.rel_sigma is not None:
                raise ValueError("give either range, or value with sigma or rel_sigma — not both")
            lo, hi = self.range
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ValueError("range must be [low, high] with low < high")
            return self
        if self.value is None:
            raise ValueError("give value (with sigma or rel_sigma) or range")
        if (self.sigma is None) == (self.rel_sigma is None):
            raise ValueError("give exactly one of sigma and rel_sigma with value")
        if self.rel_sigma is not None and self.value == 0:
            raise ValueError("rel_sigma needs a non-zero value (use sigma)")
        return self

    @property
    def observed(self) -> tuple[float, float]:
        """(value, absolute 1σ)."""
        if self.range is not None:
            lo, hi = self.range
            return 0.5 * (lo + hi), 0.5 * (hi - lo)
        sigma = self.sigma if self.sigma is not None else self.rel_sigma * abs(self.value)
        return float(self.value), float(sigma)


class DeriveSpec(ExprSpec):
    name: str | None = None
    over: ExprSpec | None = None
    note: str = ""


class CompareSpec(_Strict):
    """A stated figure to set against the fit: ``derived`` names a ``derive`` entry."""

    name: str
    derived: str
    stated: float | tuple[float, float]
    unit: str = ""
    source: str = ""
    note: str = ""


class FitSpec(_Strict):
    starts: int = Field(default=8, ge=1, le=256)
    seed: int = 0
    profile: bool = True
    iterations: int = Field(default=150, ge=10, le=5000)


class ObservationFile(_Strict):
    title: str = ""
    description: str = ""
    scenarios: dict[str, ScenarioSpec] = Field(min_length=1)
    unknowns: dict[str, UnknownSpec] = Field(min_length=1)
    observations: list[ObservationSpec] = Field(min_length=1)
    derive: list[DeriveSpec] = Field(default_factory=list)
    fit: FitSpec = Field(default_factory=FitSpec)
    compare: list[CompareSpec] = Field(default_factory=list)
    """What a source states, set against a derived quantity (printed and in the JSON)."""


# --------------------------------------------------------------------------- locating errors
def _line_of(root: Any, path: tuple) -> int | None:
    return line_of(root, path, key_node=True)


def _found(value: Any) -> str:
    return "nothing (the field is missing)" if value is _MISSING else found(value)


_MISSING = object()


def _lookup(data: Any, path: tuple) -> Any:
    for p in path:
        try:
            data = data[p]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return data


_EXPECTED = {
    "float_parsing": "a number", "float_type": "a number", "int_parsing": "an integer",
    "int_type": "an integer", "string_type": "a string", "bool_parsing": "true or false",
    "bool_type": "true or false", "dict_type": "a mapping (key: value)", "list_type": "a list",
    "tuple_type": "a list", "missing": "this required field",
    "greater_than": "a number > {gt}", "greater_than_equal": "a number >= {ge}",
    "less_than_equal": "a number <= {le}", "too_short": "at least {min_length} item(s)",
    "too_long": "at most {max_length} item(s)",
}


def _pydantic_error(e: ValidationError, data: Any, index: dict, file: str) -> ObservationFileError:
    # prefer the most specific error; drop union-branch noise (str | Spec) where a better one exists
    errors = e.errors(include_url=False)
    err = errors[0]
    loc = tuple(x for x in err["loc"] if x not in ("str", "HardwareSpec", "ModelSpec"))
    kind = err["type"]
    if kind == "extra_forbidden":
        parent = _lookup(data, loc[:-1])
        allowed = ""
        model_cls = _schema_at(loc[:-1])
        if model_cls is not None:
            allowed = ", ".join(model_cls.model_fields)
        return ObservationFileError(file, _line_of(index, loc), dotted(loc),
                                    f"one of the known fields ({allowed})" if allowed else "a known field",
                                    f"unknown field {loc[-1]!r}" + ("" if isinstance(parent, dict) else ""))
    expected = _EXPECTED.get(kind)
    if expected is not None:
        expected = expected.format(**(err.get("ctx") or {}))
    elif kind == "value_error":
        expected = str(err.get("ctx", {}).get("error", err["msg"]))
    else:
        expected = err["msg"]
    if any(x in ("str", "HardwareSpec", "ModelSpec") for x in err["loc"]):
        expected = ("a catalog name or a mapping of numbers "
                    f"(a bad field under it: {err['msg']})")
    return ObservationFileError(file, _line_of(index, loc), dotted(loc), expected,
                                _found(_lookup(data, loc)))


def _schema_at(loc: tuple):
    """The pydantic model class at a location (for listing allowed fields)."""
    cls: Any = ObservationFile
    for p in loc:
        if isinstance(p, int):
            continue
        fields = getattr(cls, "model_fields", None)
        if fields is None:
            return None
        if p in fields:
            ann = fields[p].annotation
            cls = _inner_model(ann)
        elif cls in (ObservationFile,) or cls is None:
            return None
        else:
            # dict values (scenario/unknown names)
            continue
        if cls is None:
            return None
    return cls


def _inner_model(ann):
    import typing

    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for a in typing.get_args(ann):
        m = _inner_model(a)
        if m is not None:
            return m
    return None


# --------------------------------------------------------------------------- loading
@dataclasses.dataclass
class Loaded:
    """A checked observation file and the core problem built from it."""

    path: str
    spec: ObservationFile
    problem: Any  # rooflax.core.fit.Problem
    unknown_knobs: dict[str, str]


def parse(text: str, file: str = "<string>") -> ObservationFile:
    """Parse and validate the YAML text (schema only; see :func:`build`)."""
    try:
        data, index = load_yaml(text, file)
    except InputError as e:
        raise ObservationFileError(e.file, e.line, e.field, e.expected, e.found) from None
    if not isinstance(data, dict):
        raise ObservationFileError(file, 1, "", "a mapping with scenarios, unknowns and observations",
                                   "an empty file" if data is None else _found(data))
    try:
        return ObservationFile.model_validate(data)
    except ValidationError as e:
        raise _pydantic_error(e, data, index, file) from None


def _outside_domain(knob: str, lo: float, hi: float) -> str | None:
    """What is expected when a finite bound of an unknown lies outside the knob's one domain
    (rooflax.core.quantities.DOMAINS): ``bounds: [0, 100]`` for a batch is an error, not a fit through nonsense."""
    from rooflax.core.quantities import DOMAINS

    from . import units

    for b in (lo, hi):
        if knob in DOMAINS and math.isfinite(b):
            try:
                units.knob(knob, b)
            except units.ParseError:
                return f"bounds inside the domain of {knob}: {DOMAINS[knob][-1]}"
    return None


def build(spec: ObservationFile, text: str = "", file: str = "<string>") -> Loaded:
    """Resolve catalog names and references; build the :class:`rooflax.core.fit.Problem`."""
    from rooflax.core import fit as F
    from rooflax.core.specs import Hardware, Model, Workload

    from . import catalogs

    index = load_yaml(text, file)[1] if text else None

    def fail(path: tuple, expected: str, found: str) -> ObservationFileError:
        return ObservationFileError(file, _line_of(index, path), dotted(path), expected, found)

    knobs_all = F.knob_names()
    quantities = F.quantity_names()

    def check_knobs(knobs: dict[str, float], path: tuple):
        for name, value in knobs.items():
            if name not in knobs_all:
                raise fail((*path, name), f"a knob name, one of: {', '.join(knobs_all)}",
                           f"{name!r}{suggest(name, knobs_all)}")
            if math.isnan(value):
                raise fail((*path, name), "a number", "NaN")

    # scenarios
    scenarios: dict[str, Any] = {}
    for sname, sc in spec.scenarios.items():
        path = ("scenarios", sname)
        try:
            if isinstance(sc.hardware, str):
                hw = catalogs.hardware(sc.hardware, chips=sc.chips, precision=sc.precision,
                                       price_per_hour=sc.price_per_hour)
            else:
                hw = Hardware.from_peak(flops=sc.hardware.flops, bw=sc.hardware.bw,
                                        capacity=sc.hardware.capacity,
                                        price_per_hour=sc.price_per_hour or 0.0,
                                        chips=sc.chips or 1.0)
        except ValueError as e:
            raise fail((*path, "hardware"), "a catalog hardware name with that precision",
                       str(e)) from None
        try:
            if isinstance(sc.model, str):
                weights = sc.weights or sc.precision
                m = catalogs.model(sc.model, weights=weights, kv=sc.kv)
            else:
                ms = sc.model
                sparsity = ms.sparsity if ms.sparsity is not None else ms.n_total / ms.n_active
                m = Model(n_total=ms.n_total, sparsity=sparsity,
                          kv_bytes_per_token=ms.kv_bytes_per_token, bytes_per_weight=ms.bytes_per_weight)
        except ValueError as e:
            raise fail((*path, "model"), "a catalog model name and known precisions", str(e)) from None
        check_knobs(sc.knobs, (*path, "knobs"))
        scenarios[sname] = (hw, m, Workload(batch=1.0, context=0.0), dict(sc.knobs), {})

    snames = list(scenarios)

    def scenario_ref(name: str | None, path: tuple) -> str:
        if name is None:
            if len(snames) == 1:
                return snames[0]
            raise fail((*path, "at"), f"a scenario name (there are several: {', '.join(snames)})",
                       "nothing (the field is missing)")
        if name not in scenarios:
            raise fail((*path, "at"), f"a scenario name, one of: {', '.join(snames)}",
                       f"{name!r}{suggest(name, snames)}")
        return name

    # unknowns
    unknowns = []
    unknown_knobs = {}
    for uname, u in spec.unknowns.items():
        path = ("unknowns", uname)
        knob = u.knob or uname
        if knob not in knobs_all:
            where = (*path, "knob") if u.knob else path
            raise fail(where, f"a knob name, one of: {', '.join(knobs_all)} "
                       "(set `knob:` when the unknown's name is not a knob)",
                       f"{knob!r}{suggest(knob, knobs_all)}")
        lo, hi = (u.bounds or (None, None))
        lo = -math.inf if lo is None else float(lo)
        hi = math.inf if hi is None else float(hi)
        if not lo < hi:
            raise fail((*path, "bounds"), "[lower, upper] with lower < upper", f"[{lo}, {hi}]")
        outside = _outside_domain(knob, lo, hi)
        if outside:
            raise fail((*path, "bounds"), outside, f"[{lo}, {hi}]")
        if u.log and not lo > 0:
            raise fail((*path, "log"), "a lower bound > 0 for a log-scale unknown", f"bounds [{lo}, {hi}]")
        if u.start is not None and not lo < u.start < hi:
            raise fail((*path, "start"), f"a start strictly inside the bounds ({lo}, {hi})", repr(u.start))
        if u.bounds is None and u.prior is None:
            raise fail(path, "bounds or a prior (an unknown needs one or the other)", "neither")
        targets = u.at if u.at is not None else snames
        for i, sname in enumerate(targets):
            if sname not in scenarios:
                raise fail((*path, "at", i), f"a scenario name, one of: {', '.join(snames)}",
                           f"{sname!r}{suggest(sname, snames)}")
            fixed, bind = scenarios[sname][3], scenarios[sname][4]
            if knob in fixed:
                raise fail((*path, "knob"), f"a knob that scenario {sname!r} does not fix "
                           f"(it sets {knob} = {fixed[knob]} under knobs)", repr(knob))
            if knob in bind:
                raise fail((*path, "knob"), f"one unknown per knob and scenario ({knob!r} in "
                           f"{sname!r} is already unknown {bind[knob]!r})", repr(knob))
            bind[knob] = uname
        prior_mean = prior_sigma = None
        if u.prior is not None:
            prior_mean, prior_sigma = u.prior.mean, u.prior.abs_sigma
        unknowns.append(F.Unknown(uname, lo, hi, u.log, prior_mean, prior_sigma, u.start))
        unknown_knobs[uname] = knob

    def expr(e: ExprSpec, path: tuple) -> Any:
        if e.quantity not in quantities:
            raise fail((*path, "quantity"), f"a quantity, one of: {', '.join(quantities)}",
                       f"{e.quantity!r}{suggest(e.quantity, quantities)}")
        check_knobs(e.knobs, (*path, "knobs"))
        return F.Expr(e.quantity, scenario_ref(e.at, path), dict(e.knobs))

    observations = []
    for i, o in enumerate(spec.observations):
        path = ("observations", i)
        ex = expr(o, path)
        over = expr(o.over, (*path, "over")) if o.over is not None else None
        value, sigma = o.observed
        name = o.name or (f"{o.quantity}@{ex.scenario}" + (f"/{o.over.quantity}" if over else ""))
        observations.append(F.Observation(name, ex, value, sigma, over))

    derived = []
    for i, d in enumerate(spec.derive):
        path = ("derive", i)
        ex = expr(d, path)
        over = expr(d.over, (*path, "over")) if d.over is not None else None
        derived.append(F.Derived(d.name or f"{d.quantity}@{ex.scenario}", ex, over))

    dnames = [d.name for d in derived]
    for i, c in enumerate(spec.compare):
        if c.derived not in dnames:
            raise fail(("compare", i, "derived"), f"the name of a derive entry, one of: {', '.join(dnames)}",
                       f"{c.derived!r}{suggest(c.derived, dnames)}")

    # every unknown must reach at least one observation
    used = {u for o in observations for e in (o.expr, o.over) if e is not None
            for u in scenarios[e.scenario][4].values()}
    for u in unknowns:
        if u.name not in used and u.prior_mean is None:
            raise fail(("unknowns", u.name), "an unknown that some observation depends on "
                       "(its scenarios appear in no observation)", f"{u.name!r} unused")

    problem = F.Problem(
        unknowns=tuple(unknowns),
        scenarios={n: F.Scenario(hw, m, wl, knobs, bind) for n, (hw, m, wl, knobs, bind) in scenarios.items()},
        observations=tuple(observations),
        derived=tuple(derived),
    )
    return Loaded(path=file, spec=spec, problem=problem, unknown_knobs=unknown_knobs)


def load(path: str | Path) -> Loaded:
    """Read, validate and build an observation file; :class:`ObservationFileError` on any problem."""
    p = Path(path)
    try:
        text = read_text(p)
    except InputError as e:
        raise ObservationFileError(e.file, e.line, e.field, e.expected, e.found) from None
    spec = parse(text, str(p))
    return build(spec, text, str(p))


def loads(text: str, file: str = "<string>") -> Loaded:
    """Like :func:`load`, from text."""
    return build(parse(text, file), text, file)
