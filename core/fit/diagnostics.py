"""What a fit's optimum says: 1-σ uncertainties from (JᵀJ)⁻¹, identifiability from the singular
values of the data Jacobian (unconstrained directions named as power laws), profile-χ² intervals,
derived quantities by the delta method, and the warnings. Works in the natural coordinates φ,
column-scaled (linear unknowns by |θ|) so that the singular values compare."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from .problem import Derived, Problem, Unknown, from_phi, phi_bounds, theta_of_phi, value
from .vocabulary import quantity_unit


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


@dataclasses.dataclass(frozen=True)
class Linearization:
    """The optimum in φ and what the Jacobians there say (scaled φ: φ / scale)."""

    phi: np.ndarray                   # φ at the optimum
    scale: np.ndarray                 # column scales (1 for log unknowns, |θ| otherwise)
    sv_data: np.ndarray               # singular values of the data Jacobian
    null: np.ndarray                  # rows: directions the data leave unconstrained
    rank: int
    condition: float
    null_full: np.ndarray             # rows: directions neither data nor priors constrain
    cov: np.ndarray                   # covariance in scaled φ (data + priors)

    @property
    def sigma_phi(self) -> np.ndarray:
        return np.sqrt(np.maximum(np.diag(self.cov), 0.0)) * self.scale


def _padded_svd(J: np.ndarray, k: int):
    """SVD of J with zero rows appended up to k (a square spectrum even for few residuals)."""
    return np.linalg.svd(np.vstack([J, np.zeros((max(k - J.shape[0], 0), k))]))


def linearize(res, y, s, phi: np.ndarray, theta: np.ndarray, unknowns, rank_tol: float) -> Linearization:
    """Jacobians of the data and full residuals at φ; their null spaces and the covariance."""
    k = len(unknowns)
    scale = np.array([1.0 if u.is_log else max(abs(theta[i]), 1e-300) for i, u in enumerate(unknowns)])
    jd = np.asarray(jax.jacfwd(lambda p: res.data(p, y, s))(jnp.asarray(phi)))
    jf = np.asarray(jax.jacfwd(lambda p: res.full(p, y, s))(jnp.asarray(phi)))
    jd = np.where(np.isfinite(jd), jd, 0.0) * scale
    jf = np.where(np.isfinite(jf), jf, 0.0) * scale
    _, sv, vt = _padded_svd(jd, k)
    smax = sv[0] if sv.size and sv[0] > 0 else 1.0
    _, svf, vtf = _padded_svd(jf, k)
    keep = svf > rank_tol * (svf[0] if svf.size and svf[0] > 0 else 1.0)
    return Linearization(
        phi=phi, scale=scale, sv_data=np.linalg.svd(jd, compute_uv=False),
        null=vt[sv <= rank_tol * smax], rank=int(np.sum(sv > rank_tol * smax)),
        condition=float(smax / sv[-1]) if sv[-1] > 0 else math.inf,
        null_full=vtf[~keep], cov=(vtf[keep].T / svf[keep] ** 2) @ vtf[keep])


def power_law(v: np.ndarray, names: list[str]) -> dict[str, float]:
    """A null direction as exponents of ∏ θ_j^v_j (largest |v_j| = 1; tiny ones dropped)."""
    v = v / np.max(np.abs(v)) if np.max(np.abs(v)) > 0 else v
    return {n: float(round(x, 3)) for n, x in zip(names, v, strict=True) if abs(x) > 1e-3}


def _status(lin: Linearization, i: int) -> str:
    data_free = lin.null.size and np.max(np.abs(lin.null[:, i])) > 1e-3
    full_free = lin.null_full.size and np.max(np.abs(lin.null_full[:, i])) > 1e-3
    return "not identifiable" if full_free else ("prior only" if data_free else "identified")


def _at_bound(u: Unknown, uu: float) -> str | None:
    """"lower"/"upper" when the unconstrained coordinate sits deep in a bound's tail."""
    lo, hi = phi_bounds(u)
    if math.isfinite(lo) and math.isfinite(hi):
        return "lower" if uu < -12 else "upper" if uu > 12 else None
    if math.isfinite(lo) and not u.is_log and uu < -20:
        return "lower"
    return None


def unknown_results(unknowns, lin: Linearization, theta: np.ndarray, u_best: np.ndarray) -> list[UnknownResult]:
    """Estimate, linearized σ and 68 % interval (in φ, mapped to θ) and status of each unknown."""
    out = []
    for i, u in enumerate(unknowns):
        status, th, at = _status(lin, i), float(theta[i]), _at_bound(u, float(u_best[i]))
        if status == "not identifiable":
            out.append(UnknownResult(u.name, th, math.inf, (u.lo, u.hi), "none", status, at, False))
            continue
        s = lin.sigma_phi[i]
        if u.is_log:
            sigma, interval = th * s, (math.exp(lin.phi[i] - s), math.exp(lin.phi[i] + s))
        else:
            sigma, interval = s, (th - s, th + s)
        interval = (max(interval[0], u.lo), min(interval[1], u.hi))
        out.append(UnknownResult(u.name, th, float(sigma), interval, "linear", status, at, False))
    return out


def observation_results(problem: Problem, theta: dict) -> list[ObservationResult]:
    """Each observation with its prediction at the fit and its pull (pred − obs)/σ."""
    pred = [float(value(problem, o, theta)) for o in problem.observations]
    return [ObservationResult(o.name, o.value, o.sigma, p, (p - o.value) / o.sigma)
            for o, p in zip(problem.observations, pred, strict=True)]


def derived_result(problem: Problem, dq: Derived, lin: Linearization) -> DerivedResult:
    """Value and delta-method σ = √(gᵀ Σ g) in scaled φ; not identifiable when the gradient has a
    component along a direction neither data nor priors constrain."""
    def f(phi):
        return value(problem, dq, {u.name: theta_of_phi(u, phi[i]) for i, u in enumerate(problem.unknowns)})

    val = float(f(jnp.asarray(lin.phi)))
    g = np.asarray(jax.grad(f)(jnp.asarray(lin.phi))) * lin.scale
    g = np.where(np.isfinite(g), g, 0.0)
    gn = np.linalg.norm(g)
    ident = not (lin.null_full.size and gn > 0 and np.linalg.norm(lin.null_full @ g) > 1e-6 * gn)
    sigma = float(np.sqrt(max(g @ lin.cov @ g, 0.0))) if ident else math.inf
    if not math.isfinite(val):
        sigma = math.nan  # an infinite value (e.g. no crossover) has no linearized σ
    unit = quantity_unit(dq.expr.quantity) if dq.over is None else "1"
    return DerivedResult(dq.name, val, sigma, bool(ident), unit)


# --------------------------------------------------------------------------- profiles
def profile_rows(unknowns, results, lin: Linearization, u_best: np.ndarray, points: int):
    """Rows (u, mask) of the profile scans — θ_i held on a ±4σ grid, the others free — and per
    scanned unknown (i, its φ grid, its first row)."""
    k, grid_k = len(unknowns), np.linspace(-4.0, 4.0, points)
    rows_u, rows_m, spans, off = [], [], [], 0
    for i, u in enumerate(unknowns):
        sig = lin.sigma_phi[i]
        if results[i].status == "not identifiable" or not np.isfinite(sig) or sig == 0:
            continue
        lo, hi = phi_bounds(u)
        grid = np.clip(lin.phi[i] + grid_k * sig,
                       lo + 1e-9 * (abs(lo) + 1) if math.isfinite(lo) else -np.inf,
                       hi - 1e-9 * (abs(hi) + 1) if math.isfinite(hi) else np.inf)
        su = np.repeat(np.asarray(u_best)[None, :], len(grid), axis=0)
        su[:, i] = [from_phi(u, p) for p in grid]
        m = np.ones((len(grid), k))
        m[:, i] = 0.0
        rows_u.append(su)
        rows_m.append(m)
        spans.append((i, grid, off))
        off += len(grid)
    return rows_u, rows_m, spans


def _crossing(d: np.ndarray, grid: np.ndarray, j0: int, direction: int) -> float | None:
    """φ where Δχ² first reaches 1 walking from j0 in ``direction`` (linear interpolation)."""
    j = j0
    while 0 <= j + direction < len(d):
        a, b = d[j], d[j + direction]
        if b >= 1.0 > a:
            t = (1.0 - a) / (b - a) if np.isfinite(b) else 0.0
            return grid[j] + t * (grid[j + direction] - grid[j])
        j += direction
    return None


def apply_profile(u: Unknown, r: UnknownResult, grid: np.ndarray, d: np.ndarray, phi_best: float) -> str | None:
    """Set ``r``'s profile and Δχ² = 1 interval; a warning when a side is not reached."""
    d = np.where(np.isfinite(d), d, np.inf)
    r.profile = [(float(theta_of_phi(u, p)), float(x)) for p, x in zip(grid, d, strict=True)]
    j0 = int(np.argmin(np.abs(np.asarray(grid) - phi_best)))
    left, right = _crossing(d, grid, j0, -1), _crossing(d, grid, j0, +1)
    r.interval = (float(theta_of_phi(u, left)) if left is not None else u.lo,
                  float(theta_of_phi(u, right)) if right is not None else u.hi)
    r.interval_kind = "profile"
    if left is not None and right is not None:
        a, b = r.estimate - r.interval[0], r.interval[1] - r.estimate  # in θ: is "± σ" fair?
        r.asymmetric = bool(max(a, b) > 1.25 * max(min(a, b), 1e-300))
        return None
    r.asymmetric = True
    return (f"{u.name}: the profile does not reach Δχ²=1 on the {'lower' if left is None else 'upper'} "
            f"side within 4σ or the bound: a one-sided constraint")


# --------------------------------------------------------------------------- starts and minima
def other_minima(unknowns, costs: np.ndarray, phis: np.ndarray, lin: Linearization, chi2: float):
    """(starts agreeing with the best, distinct other minima within Δχ² < 4 as θ with "chi2")."""
    tol = 1e-3 * max(chi2, 1.0)
    ok = np.isfinite(costs)
    agree = int(np.sum(ok & (np.abs(costs - chi2) <= tol)))
    others: list[dict[str, float]] = []
    if lin.rank < len(unknowns):
        return agree, others
    seen = [lin.phi]
    for j in np.argsort(np.where(ok, costs, np.inf)):
        if not ok[j] or costs[j] - chi2 <= tol or costs[j] >= chi2 + 4.0:
            continue
        if all(np.max(np.abs(phis[j] - q) / (lin.scale * (1 + np.abs(q)))) > 1e-2 for q in seen):
            seen.append(phis[j])
            others.append({**{u.name: float(theta_of_phi(u, phis[j][i])) for i, u in enumerate(unknowns)},
                           "chi2": float(costs[j])})
    return agree, others


def warnings_of(results, lin: Linearization, unconstrained, others, chi2: float, dof: int) -> list[str]:
    """The fit's warnings: multimodality, unconstrained directions, a poor χ², unknowns at bounds."""
    k, out = len(results), []
    if others:
        out.append(f"{len(others)} other local minima within Δχ² < 4 of the best: the fit may be multimodal")
    if lin.rank < k:
        out.append(f"the data constrain {lin.rank} of {k} unknown directions; unconstrained: "
                   + "; ".join(" · ".join(f"{n}^{e:+.2f}" for n, e in pl.items()) for pl in unconstrained))
    if dof > 0 and chi2 / dof > 4.0:
        out.append(f"χ²/dof = {chi2 / dof:.1f}: the observations disagree with the model "
                   "beyond their stated uncertainties")
    out += [f"{r.name} sits at its {r.at_bound} bound: the data push it there" for r in results if r.at_bound]
    return out
