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

from .inputs import (
    InputError,
    dotted,
    found,
    line_of,
    load_yaml,
    read_text,
    schema_issues,
    suggest,
)


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


def _pydantic_error(e: ValidationError, data: Any, root: Any, file: str) -> ObservationFileError:
    """The first located issue (:func:`rooflax.sweeps.inputs.schema_issues`) as the error."""
    first = schema_issues(e, data, root, _fields_at)[0]
    return ObservationFileError(file, first.line, first.field, first.expected, first.found)


def _fields_at(loc: tuple) -> list[str]:
    """The fields allowed beside the unknown field at ``loc`` (none when not known)."""
    cls = _schema_at(tuple(p for p in loc[:-1] if p not in ("str", "HardwareSpec", "ModelSpec")))
    return list(cls.model_fields) if cls is not None else []


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
                                   "an empty file" if data is None else found(data))
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


@dataclasses.dataclass(frozen=True)
class _Where:
    """Where a built file's errors point (file, YAML root) and the names it may use."""

    file: str
    root: Any
    knobs: list[str]
    quantities: list[str]

    def fail(self, path: tuple, expected: str, found: str) -> ObservationFileError:
        return ObservationFileError(self.file, _line_of(self.root, path), dotted(path), expected,
                                    found)


def _check_knobs(w: _Where, knobs: dict[str, float], path: tuple) -> None:
    for name, value in knobs.items():
        if name not in w.knobs:
            raise w.fail((*path, name), f"a knob name, one of: {', '.join(w.knobs)}",
                         f"{name!r}{suggest(name, w.knobs)}")
        if math.isnan(value):
            raise w.fail((*path, name), "a number", "NaN")


def _scenario_hardware(sc: ScenarioSpec):
    """The scenario's chip: a catalog entry, or ``Hardware.from_peak`` of its numbers."""
    from rooflax.core.specs import Hardware

    from . import catalogs

    if isinstance(sc.hardware, str):
        return catalogs.hardware(sc.hardware, chips=sc.chips, precision=sc.precision,
                                 price_per_hour=sc.price_per_hour)
    return Hardware.from_peak(flops=sc.hardware.flops, bw=sc.hardware.bw,
                              capacity=sc.hardware.capacity,
                              price_per_hour=sc.price_per_hour or 0.0, chips=sc.chips or 1.0)


def _scenario_model(sc: ScenarioSpec):
    """The scenario's model: a catalog entry, or a ``Model`` of its numbers."""
    from rooflax.core.specs import Model

    from . import catalogs

    if isinstance(sc.model, str):
        return catalogs.model(sc.model, weights=sc.weights or sc.precision, kv=sc.kv)
    ms = sc.model
    sparsity = ms.sparsity if ms.sparsity is not None else ms.n_total / ms.n_active
    return Model(n_total=ms.n_total, sparsity=sparsity,
                 kv_bytes_per_token=ms.kv_bytes_per_token, bytes_per_weight=ms.bytes_per_weight)


def _scenarios(w: _Where, spec: ObservationFile) -> dict[str, tuple]:
    """name → (hardware, model, workload, fixed knobs, {knob: unknown} filled by the unknowns)."""
    from rooflax.core.specs import Workload

    scenarios: dict[str, Any] = {}
    for sname, sc in spec.scenarios.items():
        path = ("scenarios", sname)
        try:
            hw = _scenario_hardware(sc)
        except ValueError as e:
            raise w.fail((*path, "hardware"), "a catalog hardware name with that precision",
                         str(e)) from None
        try:
            m = _scenario_model(sc)
        except ValueError as e:
            raise w.fail((*path, "model"), "a catalog model name and known precisions",
                         str(e)) from None
        _check_knobs(w, sc.knobs, (*path, "knobs"))
        scenarios[sname] = (hw, m, Workload(batch=1.0, context=0.0), dict(sc.knobs), {})
    return scenarios


def _scenario_ref(w: _Where, name: str | None, path: tuple, snames: list[str]) -> str:
    if name is None:
        if len(snames) == 1:
            return snames[0]
        raise w.fail((*path, "at"), f"a scenario name (there are several: {', '.join(snames)})",
                     "nothing (the field is missing)")
    if name not in snames:
        raise w.fail((*path, "at"), f"a scenario name, one of: {', '.join(snames)}",
                     f"{name!r}{suggest(name, snames)}")
    return name


def _bounds(w: _Where, path: tuple, u: UnknownSpec, knob: str) -> tuple[float, float]:
    """An unknown's (lower, upper) bounds (±inf when open), checked."""
    lo, hi = (u.bounds or (None, None))
    lo = -math.inf if lo is None else float(lo)
    hi = math.inf if hi is None else float(hi)
    if not lo < hi:
        raise w.fail((*path, "bounds"), "[lower, upper] with lower < upper", f"[{lo}, {hi}]")
    outside = _outside_domain(knob, lo, hi)
    if outside:
        raise w.fail((*path, "bounds"), outside, f"[{lo}, {hi}]")
    if u.log and not lo > 0:
        raise w.fail((*path, "log"), "a lower bound > 0 for a log-scale unknown",
                     f"bounds [{lo}, {hi}]")
    if u.start is not None and not lo < u.start < hi:
        raise w.fail((*path, "start"), f"a start strictly inside the bounds ({lo}, {hi})",
                     repr(u.start))
    if u.bounds is None and u.prior is None:
        raise w.fail(path, "bounds or a prior (an unknown needs one or the other)", "neither")
    return lo, hi


def _bind(w: _Where, path: tuple, uname: str, u: UnknownSpec, knob: str,
          scenarios: dict[str, tuple]) -> None:
    """Record the unknown under ``knob`` in each scenario it applies to (checked)."""
    snames = list(scenarios)
    for i, sname in enumerate(u.at if u.at is not None else snames):
        if sname not in scenarios:
            raise w.fail((*path, "at", i), f"a scenario name, one of: {', '.join(snames)}",
                         f"{sname!r}{suggest(sname, snames)}")
        fixed, bind = scenarios[sname][3], scenarios[sname][4]
        if knob in fixed:
            raise w.fail((*path, "knob"), f"a knob that scenario {sname!r} does not fix "
                         f"(it sets {knob} = {fixed[knob]} under knobs)", repr(knob))
        if knob in bind:
            raise w.fail((*path, "knob"), f"one unknown per knob and scenario ({knob!r} in "
                         f"{sname!r} is already unknown {bind[knob]!r})", repr(knob))
        bind[knob] = uname


def _unknowns(w: _Where, spec: ObservationFile, scenarios: dict[str, tuple]):
    """(the fit's unknowns, unknown → knob), each bound into its scenarios."""
    from rooflax.core import fit as F

    unknowns, unknown_knobs = [], {}
    for uname, u in spec.unknowns.items():
        path = ("unknowns", uname)
        knob = u.knob or uname
        if knob not in w.knobs:
            raise w.fail((*path, "knob") if u.knob else path,
                         f"a knob name, one of: {', '.join(w.knobs)} "
                         "(set `knob:` when the unknown's name is not a knob)",
                         f"{knob!r}{suggest(knob, w.knobs)}")
        lo, hi = _bounds(w, path, u, knob)
        _bind(w, path, uname, u, knob, scenarios)
        prior_mean = prior_sigma = None
        if u.prior is not None:
            prior_mean, prior_sigma = u.prior.mean, u.prior.abs_sigma
        unknowns.append(F.Unknown(uname, lo, hi, u.log, prior_mean, prior_sigma, u.start))
        unknown_knobs[uname] = knob
    return unknowns, unknown_knobs


def _expr(w: _Where, e: ExprSpec, path: tuple, snames: list[str]) -> Any:
    from rooflax.core import fit as F

    if e.quantity not in w.quantities:
        raise w.fail((*path, "quantity"), f"a quantity, one of: {', '.join(w.quantities)}",
                     f"{e.quantity!r}{suggest(e.quantity, w.quantities)}")
    _check_knobs(w, e.knobs, (*path, "knobs"))
    return F.Expr(e.quantity, _scenario_ref(w, e.at, path, snames), dict(e.knobs))


def _observed(w: _Where, spec: ObservationFile, snames: list[str]):
    """(the fit's observations, its derived quantities); ``compare`` entries name derived ones."""
    from rooflax.core import fit as F

    observations = []
    for i, o in enumerate(spec.observations):
        path = ("observations", i)
        ex = _expr(w, o, path, snames)
        over = _expr(w, o.over, (*path, "over"), snames) if o.over is not None else None
        value, sigma = o.observed
        name = o.name or (f"{o.quantity}@{ex.scenario}" + (f"/{o.over.quantity}" if over else ""))
        observations.append(F.Observation(name, ex, value, sigma, over))
    derived = []
    for i, d in enumerate(spec.derive):
        path = ("derive", i)
        ex = _expr(w, d, path, snames)
        over = _expr(w, d.over, (*path, "over"), snames) if d.over is not None else None
        derived.append(F.Derived(d.name or f"{d.quantity}@{ex.scenario}", ex, over))
    dnames = [d.name for d in derived]
    for i, c in enumerate(spec.compare):
        if c.derived not in dnames:
            raise w.fail(("compare", i, "derived"),
                         f"the name of a derive entry, one of: {', '.join(dnames)}",
                         f"{c.derived!r}{suggest(c.derived, dnames)}")
    return observations, derived


def _check_used(w: _Where, unknowns: list, observations: list, scenarios: dict) -> None:
    """Every unknown without a prior reaches at least one observation."""
    used = {u for o in observations for e in (o.expr, o.over) if e is not None
            for u in scenarios[e.scenario][4].values()}
    for u in unknowns:
        if u.name not in used and u.prior_mean is None:
            raise w.fail(("unknowns", u.name), "an unknown that some observation depends on "
                         "(its scenarios appear in no observation)", f"{u.name!r} unused")


def build(spec: ObservationFile, text: str = "", file: str = "<string>") -> Loaded:
    """Resolve catalog names and references; build the :class:`rooflax.core.fit.Problem`."""
    from rooflax.core import fit as F

    w = _Where(file, load_yaml(text, file)[1] if text else None, F.knob_names(),
               F.quantity_names())
    scenarios = _scenarios(w, spec)
    unknowns, unknown_knobs = _unknowns(w, spec, scenarios)
    observations, derived = _observed(w, spec, list(scenarios))
    _check_used(w, unknowns, observations, scenarios)
    problem = F.Problem(
        unknowns=tuple(unknowns),
        scenarios={n: F.Scenario(hw, m, wl, knobs, bind)
                   for n, (hw, m, wl, knobs, bind) in scenarios.items()},
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
