"""The fit problem: unknowns, scenarios, observations and derived quantities, and from them the
residual functions r(u) = ((pred − obs)/σ, (θ − μ)/s) the solver minimizes.

Coordinates: θ the unknowns' values; φ their natural coordinates (ln θ for a log unknown,
θ otherwise); u unconstrained (a logistic between finite bounds, exp for one bound) so every
iterate stays inside the bounds.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..specs import Hardware, Model, Workload
from .vocabulary import QUANTITIES, apply_knobs, evaluate, is_knob


@dataclasses.dataclass(frozen=True)
class Unknown:
    """A scalar to deduce. ``log`` (default: lower bound > 0) fits ln θ."""

    name: str
    lo: float = -math.inf
    hi: float = math.inf
    log: bool | None = None
    prior_mean: float | None = None
    prior_sigma: float | None = None
    start: float | None = None

    @property
    def is_log(self) -> bool:
        return bool(self.lo > 0) if self.log is None else self.log

    def __post_init__(self):
        if not self.lo < self.hi:
            raise ValueError(f"unknown {self.name!r}: lower bound {self.lo} must be < upper bound {self.hi}")
        if self.log and not self.lo > 0:
            raise ValueError(f"unknown {self.name!r}: a log unknown needs a lower bound > 0")
        if self.start is not None and not self.lo < self.start < self.hi:
            raise ValueError(f"unknown {self.name!r}: start {self.start} outside ({self.lo}, {self.hi})")
        if (self.prior_mean is None) != (self.prior_sigma is None):
            raise ValueError(f"unknown {self.name!r}: a prior needs both a mean and a sigma")
        if self.prior_sigma is not None and not self.prior_sigma > 0:
            raise ValueError(f"unknown {self.name!r}: prior sigma must be > 0")


@dataclasses.dataclass(frozen=True)
class Scenario:
    """Stated conditions: base pytrees, fixed knobs, knobs bound to unknowns."""

    hardware: Hardware
    model: Model
    workload: Workload
    knobs: Mapping[str, float] = dataclasses.field(default_factory=dict)
    bind: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Expr:
    """A quantity in a scenario, with per-use knob overrides (e.g. another context)."""

    quantity: str
    scenario: str
    knobs: Mapping[str, float] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Observation:
    """``expr`` (÷ ``over`` when given) was measured as ``value`` ± ``sigma`` (1 σ, absolute)."""

    name: str
    expr: Expr
    value: float
    sigma: float
    over: Expr | None = None


@dataclasses.dataclass(frozen=True)
class Derived:
    """A quantity to report at the fit (÷ ``over`` when given)."""

    name: str
    expr: Expr
    over: Expr | None = None


@dataclasses.dataclass(frozen=True)
class Problem:
    unknowns: tuple[Unknown, ...]
    scenarios: Mapping[str, Scenario]
    observations: tuple[Observation, ...]
    derived: tuple[Derived, ...] = ()

    def __post_init__(self):
        names = [u.name for u in self.unknowns]
        if len(set(names)) != len(names):
            raise ValueError("duplicate unknown names")
        for sname, sc in self.scenarios.items():
            _check_scenario(sname, sc, names)
        for o in (*self.observations, *self.derived):
            for e in (o.expr, o.over):
                if e is not None:
                    _check_expr(o.name, e, self.scenarios)
        for o in self.observations:
            if not (o.sigma > 0 and math.isfinite(o.sigma)):
                raise ValueError(f"observation {o.name!r}: sigma must be a positive finite number")

    def structure_key(self, iterations: int) -> str:
        """What a compiled solver depends on (not the observed values and σ)."""
        obs = [(o.name, o.expr, o.over) for o in self.observations]
        return repr((self.unknowns, sorted(self.scenarios.items()), obs, iterations))


def _check_scenario(sname: str, sc: Scenario, unknowns: list[str]) -> None:
    for knob, uname in sc.bind.items():
        if uname not in unknowns:
            raise ValueError(f"scenario {sname!r} binds {knob!r} to undefined unknown {uname!r}")
        if not is_knob(knob):
            raise ValueError(f"scenario {sname!r}: unknown knob {knob!r}")


def _check_expr(owner: str, e: Expr, scenarios: Mapping[str, Scenario]) -> None:
    if e.scenario not in scenarios:
        raise ValueError(f"{owner!r} refers to undefined scenario {e.scenario!r}")
    if not (e.quantity in QUANTITIES or is_knob(e.quantity)):
        raise ValueError(f"{owner!r}: unknown quantity {e.quantity!r}")


# --------------------------------------------------------------------------- values
def _expr_value(problem: Problem, e: Expr, theta: Mapping[str, jax.Array]) -> jax.Array:
    sc = problem.scenarios[e.scenario]
    values: dict[str, Any] = dict(sc.knobs)
    values.update({knob: theta[u] for knob, u in sc.bind.items()})
    values.update(e.knobs)
    trees = apply_knobs((sc.hardware, sc.model, sc.workload), values)
    return jnp.reshape(evaluate(e.quantity, trees), ())


def value(problem: Problem, item: Observation | Derived, theta) -> jax.Array:
    """The model's value of an observation or derived quantity at unknowns ``theta``."""
    y = _expr_value(problem, item.expr, theta)
    if item.over is not None:
        y = y / _expr_value(problem, item.over, theta)
    return y


def predict(problem: Problem, theta: Mapping[str, float]) -> np.ndarray:
    """Model predictions of every observation at unknown values ``theta`` (name → value)."""
    t = {k: jnp.asarray(v, jnp.float64) for k, v in theta.items()}
    return np.array([float(value(problem, o, t)) for o in problem.observations])


def simulate(problem: Problem, theta: Mapping[str, float], *, rel_noise: float | np.ndarray = 0.0,
             key: jax.Array | None = None) -> np.ndarray:
    """Synthetic observed values: predictions × (1 + rel_noise·N(0, 1)) (for round-trip tests)."""
    y = predict(problem, theta)
    if key is None:
        return y
    eps = np.asarray(jax.random.normal(key, y.shape, jnp.float64))
    return y * (1.0 + np.asarray(rel_noise) * eps)


# --------------------------------------------------------------------------- coordinates
#: |u| at most this: a logistic at ±30 is within 1e-13 of its bound.
U_CLIP = 30.0


def phi_bounds(u: Unknown) -> tuple[float, float]:
    """Bounds of φ (ln θ or θ)."""
    if u.is_log:
        return math.log(u.lo), (math.log(u.hi) if math.isfinite(u.hi) else math.inf)
    return u.lo, u.hi


def to_phi(unk: Unknown, x: jax.Array) -> jax.Array:
    """u (unconstrained) → φ, inside the bounds."""
    lo, hi = phi_bounds(unk)
    if math.isfinite(lo) and math.isfinite(hi):
        return lo + (hi - lo) * jax.nn.sigmoid(x)
    if math.isfinite(lo):
        return x if unk.is_log else lo + jnp.exp(x)
    if math.isfinite(hi):
        return hi - jnp.exp(x)
    return x


def from_phi(unk: Unknown, phi: float) -> float:
    """φ → u (the inverse of :func:`to_phi`, clipped just inside finite bounds)."""
    lo, hi = phi_bounds(unk)
    if math.isfinite(lo) and math.isfinite(hi):
        p = min(max((phi - lo) / (hi - lo), 1e-13), 1 - 1e-13)
        return math.log(p / (1 - p))
    if math.isfinite(lo):
        return phi if unk.is_log else math.log(max(phi - lo, 1e-300))
    if math.isfinite(hi):
        return math.log(max(hi - phi, 1e-300))
    return phi


def theta_of_phi(unk: Unknown, phi):
    """φ → θ: exp for a log unknown."""
    return jnp.exp(phi) if unk.is_log else phi


def phi_of_theta(unk: Unknown, theta: float) -> float:
    """θ → φ: ln for a log unknown."""
    return math.log(theta) if unk.is_log else theta


# --------------------------------------------------------------------------- residuals
@dataclasses.dataclass(frozen=True)
class Residuals:
    """The residual functions of a problem. ``y`` and ``s`` (observed values and σ) are
    arguments, so that a compiled solver can be reused for new data of the same structure."""

    problem: Problem

    def theta(self, phi) -> dict[str, jax.Array]:
        return {u.name: theta_of_phi(u, phi[i]) for i, u in enumerate(self.problem.unknowns)}

    def data(self, phi, y, s) -> jax.Array:
        """(pred − obs)/σ of every observation."""
        th, obs = self.theta(phi), self.problem.observations
        pred = jnp.stack([value(self.problem, o, th) for o in obs]) if obs else jnp.zeros(0)
        return (pred - y) / s

    def prior(self, phi) -> jax.Array:
        """(θ − μ)/s of every unknown with a prior."""
        th = self.theta(phi)
        rows = [(th[u.name] - u.prior_mean) / u.prior_sigma
                for u in self.problem.unknowns if u.prior_mean is not None]
        return jnp.stack(rows) if rows else jnp.zeros(0)

    def full(self, phi, y, s) -> jax.Array:
        return jnp.concatenate([self.data(phi, y, s), self.prior(phi)])

    def phi(self, u) -> jax.Array:
        return jnp.stack([to_phi(unk, u[i]) for i, unk in enumerate(self.problem.unknowns)])

    def of_u(self, u, y, s) -> jax.Array:
        """The residual in u (non-finite entries replaced by 1e6: a step there is refused)."""
        r = self.full(self.phi(u), y, s)
        return jnp.where(jnp.isfinite(r), r, 1e6)


def data_arrays(problem: Problem) -> tuple[jax.Array, jax.Array]:
    """(observed values, their σ) as float64 arrays."""
    return (jnp.array([o.value for o in problem.observations], jnp.float64),
            jnp.array([o.sigma for o in problem.observations], jnp.float64))

