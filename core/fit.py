"""Inverse queries: deduce serving knobs from prices and measurements (seed 002, "deductive power").

Pure JAX, no I/O. A :class:`Problem` holds

* **scenarios** — a (Hardware, Model, Workload) triple at stated conditions, some
  knobs fixed (``knobs``), some bound to unknowns (``bind``: knob → unknown name);
* **unknowns** — named scalars with bounds, an optional Gaussian prior and an
  optional start; ``log`` unknowns are fitted in ln θ;
* **observations** — a quantity the model predicts (:data:`QUANTITIES`, or any knob)
  in a scenario, optionally with per-observation knob overrides and divided by a
  second quantity (``over``: a ratio), with a 1-σ uncertainty;
* **derived** — quantities to report at the fit, with propagated uncertainty.

:func:`fit` minimizes χ² = Σ ((pred − obs)/σ)² + Σ ((θ − μ)/s)² (priors) by
Levenberg–Marquardt with the Jacobian from ``jax.jacfwd``, in an unconstrained
space ``u`` (logistic transform between finite bounds, exp for a lower bound) so
that every iterate stays inside the bounds; several starts run at once (``vmap``).
At the optimum it reports, in the natural coordinates φ (ln θ for log unknowns,
θ otherwise):

* the estimate and a 1-σ uncertainty from (JᵀJ)⁻¹;
* identifiability from the singular values of the *data* Jacobian (priors left
  out): directions with σ_k/σ_max < ``rank_tol`` are not constrained by the data,
  and each such direction is named as a power law ∏ θ_j^v_j — e.g. two unknowns
  that only enter as a product give ``batch^0.71 · kv_bytes_per_token^-0.71``;
  an unknown with a component along such a direction is "not identifiable"
  (or "prior only" when a prior pins it);
* a profile-χ² scan per identifiable unknown (others re-minimized), whose
  Δχ² = 1 crossings give an interval that may be asymmetric;
* derived quantities with their delta-method σ, or "not identifiable" when their
  gradient has a component along an unconstrained direction (a product of two
  non-identifiable unknowns may still be identifiable).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from . import optimum as opt
from . import prefill
from . import roofline as rl
from .specs import SECONDS_PER_HOUR, Hardware, Model, Workload

Trees = tuple[Hardware, Model, Workload]

# --------------------------------------------------------------------------- knobs
_FIELDS: dict[str, int] = {}
for _i, _cls in enumerate((Hardware, Model, Workload)):
    for _f in dataclasses.fields(_cls):
        _FIELDS.setdefault(_f.name, _i)


def _set(trees: Trees, field: str, value: Any) -> Trees:
    i = _FIELDS[field]
    out = list(trees)
    out[i] = out[i].replace(**{field: value})
    return tuple(out)  # type: ignore[return-value]


def _get(trees: Trees, field: str) -> Any:
    return getattr(trees[_FIELDS[field]], field)


#: Knobs that are not a leaf themselves: name → (setter, getter, unit, description).
ALIASES: dict[str, tuple[Callable, Callable, str, str]] = {
    "price_per_hour": (
        lambda t, v: _set(t, "price", v / SECONDS_PER_HOUR),
        lambda t: _get(t, "price") * SECONDS_PER_HOUR,
        "$/h", "price of one chip per hour (sets price = value/3600)"),
    "batch_per_chip": (
        lambda t, v: _set(t, "batch", v * _get(t, "chips")),
        lambda t: _get(t, "batch") / _get(t, "chips"),
        "sequences", "concurrent sequences per chip (sets batch = value·chips)"),
    "n_active": (
        lambda t, v: _set(t, "sparsity", _get(t, "n_total") / v),
        lambda t: _get(t, "n_total") / _get(t, "sparsity"),
        "parameters", "active parameters per token (sets sparsity = n_total/value)"),
    "efficiency": (
        lambda t, v: _set(_set(t, "flops_eff", v), "bw_eff", v),
        lambda t: _get(t, "bw_eff"),
        "1", "one achieved fraction of peak for both FLOPS and bandwidth"),
    "flops": (
        lambda t, v: _set(t, "c_over_bw", v / 2.0 / _get(t, "bw")),
        lambda t: 2.0 * _get(t, "c_over_bw") * _get(t, "bw"),
        "FLOP/s", "peak dense FLOP/s of one chip (sets c_over_bw = value/2/bw)"),
}


def knob_names() -> list[str]:
    """Every knob an unknown or a fixed value may set: the pytree leaves, then the aliases."""
    return [*_FIELDS, *ALIASES]


def apply_knobs(trees: Trees, values: Mapping[str, Any]) -> Trees:
    """The trees with knobs set: leaves first, then aliases (so ``batch_per_chip`` sees ``chips``)."""
    for name, value in values.items():
        if name in _FIELDS:
            trees = _set(trees, name, value)
        elif name not in ALIASES:
            raise KeyError(f"unknown knob {name!r}; knobs: {', '.join(knob_names())}")
    for name, value in values.items():
        if name in ALIASES:
            trees = ALIASES[name][0](trees, value)
    return trees


def knob_value(trees: Trees, name: str) -> Any:
    """The value of a knob (leaf or alias)."""
    if name in _FIELDS:
        return _get(trees, name)
    return ALIASES[name][1](trees)


# --------------------------------------------------------------------------- quantities
def _per_chip(f):
    return lambda hw, m, wl: f(hw, m, wl) / hw.chips


#: Predicted quantities: name → (function of (hw, model, wl), unit, description).
QUANTITIES: dict[str, tuple[Callable[[Hardware, Model, Workload], jax.Array], str, str]] = {
    "tokens_per_s_per_user": (rl.tokens_per_second_per_user, "tok/s", "output tokens/s one user sees: τ/T_step"),
    "tokens_per_s_per_chip": (_per_chip(rl.throughput), "tok/s", "output tokens/s per chip: B/(T_step·n)"),
    "tokens_per_s_per_replica": (rl.throughput, "tok/s", "output tokens/s of a replica: B/T_step"),
    "latency_per_token": (rl.latency, "s", "per-token latency T_step/τ (τ accepted tokens per step)"),
    "cost_per_mtok_output": (rl.cost_per_mtok, "$/Mtok", "cost per million output tokens: 1e6·T_step·p·n/B"),
    "cost_per_mtok_output_at_b_star": (opt.cost_per_mtok_at_b_star, "$/Mtok", "cost per million output tokens at B*"),
    "l_crit": (opt.l_crit, "tokens", "context of the weight-bound → KV-bound flip at batch B: N_total·w/(B·b)"),
    "l_bal": (lambda hw, m, wl: opt.l_bal(hw, m), "tokens", "context where the KV slope equals the compute slope"),
    "b_star": (opt.b_star, "sequences", "optimal batch min(B_x, B_max, B_slo)"),
    "b_x": (opt.b_x, "sequences", "crossover batch T_compute = T_memory"),
    "b_max": (opt.b_max, "sequences", "capacity batch"),
    "mfu": (rl.mfu, "1", "model FLOPs utilization"),
    "kv_share": (rl.kv_share, "1", "KV fraction of memory traffic"),
    "t_compute": (rl.t_compute, "s", "compute time of a step"),
    "t_memory": (rl.t_memory, "s", "memory time of a step"),
    "kv_bytes_per_sequence": (lambda hw, m, wl: rl.kv_store_bytes(m, wl), "bytes", "KV bytes one sequence keeps"),
    "weight_bytes": (lambda hw, m, wl: m.weight_bytes, "bytes", "N_total·w"),
}


QUANTITIES.update({
    "cost_per_mtok_input": (prefill.cost_per_minput, "$/Mtok", "cost per million input (prompt) tokens"),
    "ttft": (prefill.ttft, "s", "time to first token"),
    "input_tokens_per_s_per_replica": (prefill.input_throughput, "tok/s", "prefill tokens/s of a replica"),
    "input_tokens_per_s_per_chip": (_per_chip(prefill.input_throughput), "tok/s", "prefill tokens/s per chip"),
    "output_input_price_ratio": (prefill.output_input_price_ratio, "1",
                                 "cost per output token over cost per input token"),
})


def quantity_names() -> list[str]:
    """Every name an observation may predict: the quantities, then every knob (its own value)."""
    return [*QUANTITIES, *knob_names()]


#: Units of the pytree leaves (for reports).
LEAF_UNITS: dict[str, str] = {
    "bw": "bytes/s", "c_over_bw": "MAC/byte", "capacity": "bytes", "price": "$/s", "chips": "chips",
    "flops_eff": "1", "bw_eff": "1", "n_total": "parameters", "sparsity": "1",
    "kv_bytes_per_token": "bytes/token", "bytes_per_weight": "bytes", "window": "tokens",
    "top_k": "tokens", "sqrt_coeff": "1", "kv_bytes_per_token_local": "bytes/token",
    "local_window": "tokens", "batch": "sequences", "context": "tokens", "slo": "s",
}


def quantity_unit(name: str) -> str:
    """Unit of a quantity or knob ("" where unknown)."""
    if name in QUANTITIES:
        return QUANTITIES[name][1]
    if name in ALIASES:
        return ALIASES[name][2]
    return LEAF_UNITS.get(name, "")


def evaluate(name: str, trees: Trees) -> jax.Array:
    """A quantity (or a knob's value) at the trees."""
    if name in QUANTITIES:
        return QUANTITIES[name][0](*trees)
    if name in _FIELDS or name in ALIASES:
        return jnp.asarray(knob_value(trees, name))
    raise KeyError(f"unknown quantity {name!r}; quantities: {', '.join(quantity_names())}")


# --------------------------------------------------------------------------- problem
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
            for knob, uname in sc.bind.items():
                if uname not in names:
                    raise ValueError(f"scenario {sname!r} binds {knob!r} to undefined unknown {uname!r}")
                if knob not in _FIELDS and knob not in ALIASES:
                    raise ValueError(f"scenario {sname!r}: unknown knob {knob!r}")
        for o in (*self.observations, *self.derived):
            for e in (o.expr, o.over):
                if e is None:
                    continue
                if e.scenario not in self.scenarios:
                    raise ValueError(f"{o.name!r} refers to undefined scenario {e.scenario!r}")
                evaluate_check = e.quantity in QUANTITIES or e.quantity in _FIELDS or e.quantity in ALIASES
                if not evaluate_check:
                    raise ValueError(f"{o.name!r}: unknown quantity {e.quantity!r}")
        for o in self.observations:
            if not (o.sigma > 0 and math.isfinite(o.sigma)):
                raise ValueError(f"observation {o.name!r}: sigma must be a positive finite number")


def _expr_value(problem: Problem, e: Expr, theta: Mapping[str, jax.Array]) -> jax.Array:
    sc = problem.scenarios[e.scenario]
    values: dict[str, Any] = dict(sc.knobs)
    values.update({knob: theta[u] for knob, u in sc.bind.items()})
    values.update(e.knobs)
    trees = apply_knobs((sc.hardware, sc.model, sc.workload), values)
    return jnp.reshape(evaluate(e.quantity, trees), ())


def _value(problem: Problem, item: Observation | Derived, theta) -> jax.Array:
    y = _expr_value(problem, item.expr, theta)
    if item.over is not None:
        y = y / _expr_value(problem, item.over, theta)
    return y


def predict(problem: Problem, theta: Mapping[str, float]) -> np.ndarray:
    """Model predictions of every observation at unknown values ``theta`` (name → value)."""
    t = {k: jnp.asarray(v, jnp.float64) for k, v in theta.items()}
    return np.array([float(_value(problem, o, t)) for o in problem.observations])


def simulate(problem: Problem, theta: Mapping[str, float], *, rel_noise: float | np.ndarray = 0.0,
             key: jax.Array | None = None) -> np.ndarray:
    """Synthetic observed values: predictions × (1 + rel_noise·N(0, 1)) (for round-trip tests)."""
    y = predict(problem, theta)
    if key is None:
        return y
    eps = np.asarray(jax.random.normal(key, y.shape, jnp.float64))
    return y * (1.0 + np.asarray(rel_noise) * eps)


# --------------------------------------------------------------------------- transforms
_U_CLIP = 30.0


def _phi_bounds(u: Unknown) -> tuple[float, float]:
    if u.is_log:
        return math.log(u.lo), (math.log(u.hi) if math.isfinite(u.hi) else math.inf)
    return u.lo, u.hi


def _to_phi(unk: Unknown, x: jax.Array) -> jax.Array:
    """u (unconstrained) → φ (ln θ or θ), inside the bounds."""
    lo, hi = _phi_bounds(unk)
    if math.isfinite(lo) and math.isfinite(hi):
        return lo + (hi - lo) * jax.nn.sigmoid(x)
    if math.isfinite(lo):
        return x if unk.is_log else lo + jnp.exp(x)
    if math.isfinite(hi):
        return hi - jnp.exp(x)
    return x


def _from_phi(unk: Unknown, phi: float) -> float:
    lo, hi = _phi_bounds(unk)
    if math.isfinite(lo) and math.isfinite(hi):
        p = min(max((phi - lo) / (hi - lo), 1e-13), 1 - 1e-13)
        return math.log(p / (1 - p))
    if math.isfinite(lo):
        return phi if unk.is_log else math.log(max(phi - lo, 1e-300))
    if math.isfinite(hi):
        return math.log(max(hi - phi, 1e-300))
    return phi


def _theta_of_phi(unk: Unknown, phi):
    return jnp.exp(phi) if unk.is_log else phi


def _phi_of_theta(unk: Unknown, theta: float) -> float:
    return math.log(theta) if unk.is_log else theta


# --------------------------------------------------------------------------- residuals
def _residual_fns(problem: Problem):
    """Residual functions; ``y`` and ``s`` (observed values and σ) are arguments of the
    data residual so that a compiled fit can be reused for new data (same structure)."""
    unknowns = problem.unknowns
    obs = problem.observations
    prior_idx = [i for i, u in enumerate(unknowns) if u.prior_mean is not None]

    def theta_of_phi(phi):
        return {u.name: _theta_of_phi(u, phi[i]) for i, u in enumerate(unknowns)}

    def data_res_ys(phi, y, s):
        th = theta_of_phi(phi)
        pred = jnp.stack([_value(problem, o, th) for o in obs]) if obs else jnp.zeros(0)
        return (pred - y) / s

    def prior_res(phi):
        th = theta_of_phi(phi)
        rows = [(th[unknowns[i].name] - unknowns[i].prior_mean) / unknowns[i].prior_sigma for i in prior_idx]
        return jnp.stack(rows) if rows else jnp.zeros(0)

    def res_phi_ys(phi, y, s):
        return jnp.concatenate([data_res_ys(phi, y, s), prior_res(phi)])

    def phi_of_u(u):
        return jnp.stack([_to_phi(unk, u[i]) for i, unk in enumerate(unknowns)])

    def res_u_ys(u, y, s):
        r = res_phi_ys(phi_of_u(u), y, s)
        return jnp.where(jnp.isfinite(r), r, 1e6)

    return res_u_ys, res_phi_ys, data_res_ys, phi_of_u


#: Compiled multi-start LM per problem *structure* (observed values and σ are arguments).
_COMPILED: dict[str, Any] = {}


def _structure_key(problem: Problem, iterations: int) -> str:
    obs = [(o.name, o.expr, o.over) for o in problem.observations]
    return repr((problem.unknowns, sorted(problem.scenarios.items()), obs, iterations))


def _lm(res_u, u0, mask, iterations):
    """Levenberg–Marquardt (Marquardt's diagonal scaling) from u0; coordinates with mask 0 stay put."""
    n = u0.shape[0]
    jac = jax.jacfwd(res_u)

    def cost(u):
        r = res_u(u)
        return r @ r

    def body(_, state):
        u, lam, c = state
        r = res_u(u)
        J = jac(u)
        J = jnp.where(jnp.isfinite(J), J, 0.0) * mask
        A = J.T @ J
        g = J.T @ r
        d = jnp.diag(A)
        d = jnp.maximum(d, 1e-12 * (1.0 + jnp.max(d)))
        M = A + lam * jnp.diag(d) + jnp.diag(1.0 - mask)
        step = -jnp.linalg.solve(M, g) * mask
        step = jnp.where(jnp.isfinite(step), step, 0.0)
        u_new = jnp.clip(u + step, -_U_CLIP, _U_CLIP)
        c_new = cost(u_new)
        better = jnp.isfinite(c_new) & (c_new < c)
        u = jnp.where(better, u_new, u)
        c = jnp.where(better, c_new, c)
        lam = jnp.clip(jnp.where(better, lam * 0.3, lam * 10.0), 1e-10, 1e10)
        return u, lam, c

    state = (u0, jnp.asarray(1e-2, u0.dtype), cost(u0))
    u, _, c = jax.lax.fori_loop(0, iterations, body, state)
    del n
    return u, c


# --------------------------------------------------------------------------- results
@dataclasses.dataclass
class UnknownResult:
    name: str
    estimate: float
    sigma: float                      # linearized 1 σ in θ units (inf: not identifiable)
    interval: tuple[float, float]     # 68 % interval (profile where run, else linearized in φ)
    interval_kind: str                # "profile" | "linear" | "none"
    status: str                       # "identified" | "prior only" | "not identifiable"
    at_bound: str | None              # "lower" | "upper" | None
    asymmetric: bool
    profile: list[tuple[float, float]] | None = None  # (θ, Δχ²)


@dataclasses.dataclass
class ObservationResult:
    name: str
    observed: float
    sigma: float
    predicted: float
    pull: float                       # (predicted − observed)/σ


@dataclasses.dataclass
class DerivedResult:
    name: str
    value: float
    sigma: float                      # inf where not identifiable
    identifiable: bool
    unit: str


@dataclasses.dataclass
class FitResult:
    unknowns: list[UnknownResult]
    observations: list[ObservationResult]
    derived: list[DerivedResult]
    chi2: float
    dof: int
    singular_values: list[float]      # of the data Jacobian in φ coordinates (column-scaled)
    condition: float
    rank: int
    unconstrained: list[dict[str, float]]   # each: unknown → exponent of an unconstrained power law
    starts: int
    starts_agreeing: int
    other_minima: list[dict[str, float]]    # distinct local minima found (θ), with "chi2"
    warnings: list[str]

    def estimate(self, name: str) -> UnknownResult:
        return next(u for u in self.unknowns if u.name == name)

    def derived_value(self, name: str) -> DerivedResult:
        return next(d for d in self.derived if d.name == name)


def _starts(problem: Problem, n: int, key: jax.Array) -> np.ndarray:
    """Start points in u: the stated starts (else the middle), then random draws."""
    k = len(problem.unknowns)
    first = np.zeros(k)
    for i, u in enumerate(problem.unknowns):
        if u.start is not None:
            first[i] = _from_phi(u, _phi_of_theta(u, u.start))
        elif u.prior_mean is not None and u.lo < u.prior_mean < u.hi:
            first[i] = _from_phi(u, _phi_of_theta(u, u.prior_mean))
        else:
            lo, hi = _phi_bounds(u)
            if math.isfinite(lo) and math.isfinite(hi):
                first[i] = 0.0
            elif math.isfinite(lo) and u.is_log:
                first[i] = lo + 1.0
            else:
                first[i] = 0.0
    rand = np.asarray(jax.random.uniform(key, (max(n - 1, 0), k), jnp.float64, -3.0, 3.0))
    for i, u in enumerate(problem.unknowns):   # log with only a lower bound: spread around it
        lo, hi = _phi_bounds(u)
        if u.is_log and not math.isfinite(hi):
            rand[:, i] = first[i] + 2.0 * rand[:, i]
        elif not (math.isfinite(lo) and math.isfinite(hi)):
            rand[:, i] = first[i] + rand[:, i]
    return np.vstack([first[None, :], rand])


def _power_law(v: np.ndarray, names: list[str]) -> dict[str, float]:
    v = v / np.max(np.abs(v)) if np.max(np.abs(v)) > 0 else v
    return {n: float(round(x, 3)) for n, x in zip(names, v, strict=True) if abs(x) > 1e-3}


def fit(problem: Problem, *, starts: int = 8, seed: int = 0, iterations: int = 150,
        profile: bool = True, rank_tol: float = 1e-6, profile_points: int = 25) -> FitResult:
    """Least-squares fit of the unknowns to the observations (see the module docstring)."""
    unknowns = problem.unknowns
    names = [u.name for u in unknowns]
    k = len(unknowns)
    if k == 0:
        raise ValueError("nothing to fit: no unknowns")
    if not problem.observations:
        raise ValueError("nothing to fit to: no observations")
    res_u_ys, res_phi_ys, data_res_ys, phi_of_u = _residual_fns(problem)
    y_obs = jnp.array([o.value for o in problem.observations], jnp.float64)
    s_obs = jnp.array([o.sigma for o in problem.observations], jnp.float64)

    def res_phi(phi):
        return res_phi_ys(phi, y_obs, s_obs)

    def data_res(phi):
        return data_res_ys(phi, y_obs, s_obs)

    warnings: list[str] = []

    # -- several starts at once
    # one compiled, vmapped LM serves the starts and the profile scans (same padded batch size)
    width = max(starts, k * profile_points if profile else 1)
    key = _structure_key(problem, iterations)
    if key not in _COMPILED:
        if len(_COMPILED) > 32:
            _COMPILED.pop(next(iter(_COMPILED)))
        _COMPILED[key] = jax.jit(jax.vmap(
            lambda u, m, y, s: _lm(lambda v: res_u_ys(v, y, s), u, m, iterations),
            in_axes=(0, 0, None, None)))
    compiled = _COMPILED[key]

    def batched(u_rows, m_rows):
        return compiled(u_rows, m_rows, y_obs, s_obs)

    def run(u_rows: np.ndarray, m_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = u_rows.shape[0]
        pad = width - n
        u_rows = np.vstack([u_rows, np.repeat(u_rows[:1], pad, axis=0)])
        m_rows = np.vstack([m_rows, np.repeat(m_rows[:1], pad, axis=0)])
        uo, co = batched(jnp.asarray(u_rows), jnp.asarray(m_rows))
        return np.asarray(uo)[:n], np.asarray(co)[:n]

    u0 = _starts(problem, starts, jax.random.PRNGKey(seed))
    us, costs = run(u0, np.ones_like(u0))
    best = int(np.nanargmin(costs))
    u_best = jnp.asarray(us[best])
    chi2 = float(costs[best])
    phi_best = np.asarray(phi_of_u(u_best))
    phis = np.asarray(jax.vmap(phi_of_u)(jnp.asarray(us)))
    theta_best = np.array([float(_theta_of_phi(u, phi_best[i])) for i, u in enumerate(unknowns)])

    # -- Jacobians at the optimum, natural coordinates φ; column scales for linear unknowns
    scale = np.array([1.0 if u.is_log else max(abs(theta_best[i]), 1e-300) for i, u in enumerate(unknowns)])
    Jd = np.asarray(jax.jacfwd(data_res)(jnp.asarray(phi_best)))
    Jf = np.asarray(jax.jacfwd(res_phi)(jnp.asarray(phi_best)))
    Jd = np.where(np.isfinite(Jd), Jd, 0.0)
    Jf = np.where(np.isfinite(Jf), Jf, 0.0)
    Jds, Jfs = Jd * scale, Jf * scale
    sv_full = np.linalg.svd(Jds, compute_uv=False)
    _, sv, vt = np.linalg.svd(np.vstack([Jds, np.zeros((max(k - Jds.shape[0], 0), k))]))
    smax = sv[0] if sv.size and sv[0] > 0 else 1.0
    null = vt[sv <= rank_tol * smax]
    rank = int(np.sum(sv > rank_tol * smax))
    condition = float(smax / sv[-1]) if sv[-1] > 0 else math.inf
    unconstrained = [_power_law(v, names) for v in null]

    # covariance in scaled φ from the full (data + prior) Jacobian
    _, svf, vtf = np.linalg.svd(np.vstack([Jfs, np.zeros((max(k - Jfs.shape[0], 0), k))]))
    smaxf = svf[0] if svf.size and svf[0] > 0 else 1.0
    keep = svf > rank_tol * smaxf
    null_full = vtf[~keep]
    cov_s = (vtf[keep].T / svf[keep] ** 2) @ vtf[keep]
    sig_phi = np.sqrt(np.maximum(np.diag(cov_s), 0.0)) * scale

    n_obs = len(problem.observations)
    dof = n_obs + sum(u.prior_mean is not None for u in unknowns) - k

    # -- per-unknown status
    results: list[UnknownResult] = []
    identified = []
    for i, u in enumerate(unknowns):
        data_free = null.size and np.max(np.abs(null[:, i])) > 1e-3
        full_free = null_full.size and np.max(np.abs(null_full[:, i])) > 1e-3
        status = "not identifiable" if full_free else ("prior only" if data_free else "identified")
        identified.append(status != "not identifiable")
        at_bound = None
        uu = float(us[best][i])
        lo, hi = _phi_bounds(u)
        if math.isfinite(lo) and math.isfinite(hi):
            if uu < -12:
                at_bound = "lower"
            elif uu > 12:
                at_bound = "upper"
        elif math.isfinite(lo) and not u.is_log and uu < -20:
            at_bound = "lower"
        th = theta_best[i]
        if status == "not identifiable":
            results.append(UnknownResult(u.name, th, math.inf, (u.lo, u.hi), "none", status, at_bound, False))
            continue
        s = sig_phi[i]
        if u.is_log:
            sigma = th * s
            interval = (math.exp(phi_best[i] - s), math.exp(phi_best[i] + s))
        else:
            sigma = s
            interval = (th - s, th + s)
        interval = (max(interval[0], u.lo), min(interval[1], u.hi))
        results.append(UnknownResult(u.name, th, float(sigma), interval, "linear", status, at_bound, False))

    # -- profile scans: θ_i held on a grid of ±4σ, the others re-minimized (one batched call)
    if profile:
        grid_k = np.linspace(-4.0, 4.0, profile_points)
        rows_u, rows_m, spans = [], [], []
        for i, u in enumerate(unknowns):
            r = results[i]
            if r.status == "not identifiable" or not np.isfinite(sig_phi[i]) or sig_phi[i] == 0:
                continue
            lo, hi = _phi_bounds(u)
            grid = np.clip(phi_best[i] + grid_k * sig_phi[i],
                           lo + 1e-9 * (abs(lo) + 1) if math.isfinite(lo) else -np.inf,
                           hi - 1e-9 * (abs(hi) + 1) if math.isfinite(hi) else np.inf)
            su = np.repeat(np.asarray(u_best)[None, :], len(grid), axis=0)
            su[:, i] = [_from_phi(u, p) for p in grid]
            m = np.ones((len(grid), k))
            m[:, i] = 0.0
            rows_u.append(su)
            rows_m.append(m)
            spans.append((i, grid, sum(len(x) for x in rows_u[:-1])))
        if rows_u:
            _, pc_all = run(np.vstack(rows_u), np.vstack(rows_m))
        for i, phis_grid, off in spans:
            u, r = unknowns[i], results[i]
            d = pc_all[off:off + len(phis_grid)] - chi2
            d = np.where(np.isfinite(d), d, np.inf)
            thetas = [float(_theta_of_phi(u, p)) for p in phis_grid]
            r.profile = [(t, float(x)) for t, x in zip(thetas, d, strict=True)]
            j0 = int(np.argmin(np.abs(np.asarray(phis_grid) - phi_best[i])))

            def crossing(direction, j0=j0, d=d, phis_grid=phis_grid):
                j = j0
                while 0 <= j + direction < len(d):
                    a, b = d[j], d[j + direction]
                    if b >= 1.0 > a:
                        t = (1.0 - a) / (b - a) if np.isfinite(b) else 0.0
                        return phis_grid[j] + t * (phis_grid[j + direction] - phis_grid[j])
                    j += direction
                return None

            left, right = crossing(-1), crossing(+1)
            r.interval = (float(_theta_of_phi(u, left)) if left is not None else u.lo,
                          float(_theta_of_phi(u, right)) if right is not None else u.hi)
            r.interval_kind = "profile"
            if left is not None and right is not None:
                a, b = r.estimate - r.interval[0], r.interval[1] - r.estimate  # in θ: is "± σ" fair?
                r.asymmetric = bool(max(a, b) > 1.25 * max(min(a, b), 1e-300))
            else:
                r.asymmetric = True
                side = "lower" if left is None else "upper"
                warnings.append(f"{u.name}: the profile does not reach Δχ²=1 on the {side} side "
                                f"within 4σ or the bound: a one-sided constraint")

    # -- observations at the fit
    th_dict = {n: jnp.asarray(v) for n, v in zip(names, theta_best, strict=True)}
    pred = [float(_value(problem, o, th_dict)) for o in problem.observations]
    obs_res = [ObservationResult(o.name, o.value, o.sigma, p, (p - o.value) / o.sigma)
               for o, p in zip(problem.observations, pred, strict=True)]

    # -- derived quantities: delta method in scaled φ, identifiable if ⟂ unconstrained directions
    der_res = []
    for dq in problem.derived:
        def f(phi, dq=dq):
            th = {u.name: _theta_of_phi(u, phi[i]) for i, u in enumerate(unknowns)}
            return _value(problem, dq, th)

        val = float(f(jnp.asarray(phi_best)))
        g = np.asarray(jax.grad(f)(jnp.asarray(phi_best))) * scale
        g = np.where(np.isfinite(g), g, 0.0)
        gn = np.linalg.norm(g)
        ident = not (null_full.size and gn > 0 and np.linalg.norm(null_full @ g) > 1e-6 * gn)
        sigma = float(np.sqrt(max(g @ cov_s @ g, 0.0))) if ident else math.inf
        if not math.isfinite(val):
            sigma = math.nan  # an infinite value (e.g. no crossover) has no linearized σ
        unit = quantity_unit(dq.expr.quantity) if dq.over is None else "1"
        der_res.append(DerivedResult(dq.name, val, sigma, bool(ident), unit))

    # -- multiple starts: agreement and other minima
    tol = 1e-3 * max(chi2, 1.0)
    ok = np.isfinite(costs)
    agree = int(np.sum(ok & (np.abs(costs - chi2) <= tol)))
    others: list[dict[str, float]] = []
    seen = [phi_best]
    if rank == k:
        for j in np.argsort(np.where(ok, costs, np.inf)):
            if not ok[j] or costs[j] - chi2 <= tol or costs[j] >= chi2 + 4.0:
                continue
            if all(np.max(np.abs(phis[j] - q) / (scale * (1 + np.abs(q)))) > 1e-2 for q in seen):
                seen.append(phis[j])
                th = {n: float(_theta_of_phi(u, phis[j][i])) for i, (n, u) in enumerate(zip(names, unknowns, strict=True))}
                others.append({**th, "chi2": float(costs[j])})
        if others:
            warnings.append(f"{len(others)} other local minima within Δχ² < 4 of the best: the fit may be multimodal")

    if rank < k:
        warnings.append(f"the data constrain {rank} of {k} unknown directions; unconstrained: "
                        + "; ".join(" · ".join(f"{n}^{e:+.2f}" for n, e in pl.items()) for pl in unconstrained))
    if dof > 0 and chi2 / dof > 4.0:
        warnings.append(f"χ²/dof = {chi2 / dof:.1f}: the observations disagree with the model "
                        "beyond their stated uncertainties")
    for r in results:
        if r.at_bound:
            warnings.append(f"{r.name} sits at its {r.at_bound} bound: the data push it there")

    return FitResult(
        unknowns=results, observations=obs_res, derived=der_res, chi2=chi2, dof=dof,
        singular_values=[float(x) for x in sv_full], condition=condition, rank=rank,
        unconstrained=unconstrained, starts=int(len(costs)), starts_agreeing=agree,
        other_minima=others, warnings=warnings)


# --------------------------------------------------------------------------- plain least squares
def least_squares(residual: Callable[[jax.Array], jax.Array], x0: ArrayLike, *,
                  iterations: int = 100) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Minimize Σ residual(x)² by the Levenberg–Marquardt engine of :func:`fit` (JAX Jacobian).

    For callers whose residual is already one vectorized function of the parameters (e.g. a
    calibration over thousands of measured rows). Returns (x, covariance, χ², residual count);
    the covariance is s²·(JᵀJ)⁻¹ with s² = χ²/(n − k) (the residual scale estimated from the fit).
    """
    x0 = jnp.asarray(x0, jnp.float64)

    def safe(x):
        r = residual(x)
        return jnp.where(jnp.isfinite(r), r, 1e6)

    x, chi2 = jax.jit(lambda u: _lm(safe, u, jnp.ones_like(u), iterations))(x0)
    J = np.asarray(jax.jacfwd(safe)(x))
    n, k = J.shape
    s2 = float(chi2) / max(n - k, 1)
    cov = np.linalg.pinv(J.T @ J) * s2
    return np.asarray(x), cov, float(chi2), n
