"""``fit``: multi-start Levenberg–Marquardt on a :class:`~.problem.Problem`, then the diagnostics
at the best optimum (see the package docstring)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from . import diagnostics as D
from .problem import (
    Problem,
    Residuals,
    data_arrays,
    from_phi,
    phi_bounds,
    phi_of_theta,
    theta_of_phi,
)
from .solver import DEFAULT_SOLVER, Solver


def _first_start(u) -> float:
    """The start in u of one unknown: its stated start, else its prior mean, else the middle."""
    if u.start is not None:
        return from_phi(u, phi_of_theta(u, u.start))
    if u.prior_mean is not None and u.lo < u.prior_mean < u.hi:
        return from_phi(u, phi_of_theta(u, u.prior_mean))
    lo, hi = phi_bounds(u)
    return lo + 1.0 if math.isfinite(lo) and not math.isfinite(hi) and u.is_log else 0.0


def start_points(problem: Problem, n: int, key: jax.Array) -> np.ndarray:
    """n start points in u: the stated starts (else the middle), then uniform draws in ±3
    (around the first start where a bound is open; ±6 in ln θ for a log unknown)."""
    first = np.array([_first_start(u) for u in problem.unknowns])
    rand = np.asarray(jax.random.uniform(key, (max(n - 1, 0), len(first)), jnp.float64, -3.0, 3.0))
    for i, u in enumerate(problem.unknowns):
        lo, hi = phi_bounds(u)
        if u.is_log and not math.isfinite(hi):
            rand[:, i] = first[i] + 2.0 * rand[:, i]
        elif not (math.isfinite(lo) and math.isfinite(hi)):
            rand[:, i] = first[i] + rand[:, i]
    return np.vstack([first[None, :], rand])


def _check(problem: Problem) -> None:
    if not problem.unknowns:
        raise ValueError("nothing to fit: no unknowns")
    if not problem.observations:
        raise ValueError("nothing to fit to: no observations")


def _profiles(problem, results, lin, u_best, run, chi2, points) -> list[str]:
    """Profile-χ² scans of the identifiable unknowns (one batched call); their warnings."""
    rows_u, rows_m, spans = D.profile_rows(problem.unknowns, results, lin, u_best, points)
    if not rows_u:
        return []
    _, costs = run(np.vstack(rows_u), np.vstack(rows_m))
    out = []
    for i, grid, off in spans:
        w = D.apply_profile(problem.unknowns[i], results[i], grid, costs[off:off + len(grid)] - chi2,
                            lin.phi[i])
        out += [w] if w else []
    return out


def fit(problem: Problem, *, starts: int = 8, seed: int = 0,
        iterations: int = 150, profile: bool = True, rank_tol: float = 1e-6, profile_points: int = 25,
        solver: Solver | None = None) -> D.FitResult:
    """Least-squares fit of the unknowns to the observations: χ² = Σ ((pred − obs)/σ)² +
    Σ ((θ − μ)/s)² minimized from ``starts`` points at once, then the diagnostics."""
    _check(problem)
    unknowns, k = problem.unknowns, len(problem.unknowns)
    res, (y, s) = Residuals(problem), data_arrays(problem)
    width = max(starts, k * profile_points if profile else 1)
    run = (solver or DEFAULT_SOLVER).runner(problem, iterations, width, y, s)
    u0 = start_points(problem, starts, jax.random.PRNGKey(seed))
    us, costs = run(u0, np.ones_like(u0))
    best = int(np.nanargmin(costs))
    chi2, phis = float(costs[best]), np.asarray(jax.vmap(res.phi)(jnp.asarray(us)))
    theta = np.array([float(theta_of_phi(u, phis[best][i])) for i, u in enumerate(unknowns)])
    lin = D.linearize(res, y, s, phis[best], theta, unknowns, rank_tol)
    results = D.unknown_results(unknowns, lin, theta, us[best])
    warnings = _profiles(problem, results, lin, us[best], run, chi2, profile_points) if profile else []
    names = [u.name for u in unknowns]
    unconstrained = [D.power_law(v, names) for v in lin.null]
    agree, others = D.other_minima(unknowns, costs, phis, lin, chi2)
    dof = len(problem.observations) + sum(u.prior_mean is not None for u in unknowns) - k
    th = {n: jnp.asarray(v) for n, v in zip(names, theta, strict=True)}
    return D.FitResult(
        unknowns=results, observations=D.observation_results(problem, th),
        derived=[D.derived_result(problem, dq, lin) for dq in problem.derived], chi2=chi2, dof=dof,
        singular_values=[float(x) for x in lin.sv_data], condition=lin.condition, rank=lin.rank,
        unconstrained=unconstrained, starts=int(len(costs)), starts_agreeing=agree,
        other_minima=others, warnings=warnings + D.warnings_of(results, lin, unconstrained, others, chi2, dof))
