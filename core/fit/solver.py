"""Levenberg–Marquardt on the JAX Jacobian: the plain engine (:func:`lm`, :func:`least_squares`,
used by :mod:`rooflax.sweeps.calibration` too) and :class:`Solver`, which runs many starts of a
fit problem at once and owns the compiled programs it reuses."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .problem import U_CLIP, Problem, Residuals


def _lm_step(res_u, jac, mask, state):
    """One Marquardt step (diagonal scaling); accepted if χ² drops, λ adapted either way."""
    u, lam, c = state
    r = res_u(u)
    J = jac(u)
    J = jnp.where(jnp.isfinite(J), J, 0.0) * mask
    A, g = J.T @ J, J.T @ r
    d = jnp.diag(A)
    d = jnp.maximum(d, 1e-12 * (1.0 + jnp.max(d)))
    M = A + lam * jnp.diag(d) + jnp.diag(1.0 - mask)
    step = -jnp.linalg.solve(M, g) * mask
    step = jnp.where(jnp.isfinite(step), step, 0.0)
    u_new = jnp.clip(u + step, -U_CLIP, U_CLIP)
    r_new = res_u(u_new)
    c_new = r_new @ r_new
    better = jnp.isfinite(c_new) & (c_new < c)
    lam = jnp.clip(jnp.where(better, lam * 0.3, lam * 10.0), 1e-10, 1e10)
    return jnp.where(better, u_new, u), lam, jnp.where(better, c_new, c)


def lm(res_u: Callable[[jax.Array], jax.Array], u0: jax.Array, mask: jax.Array,
       iterations: int) -> tuple[jax.Array, jax.Array]:
    """Minimize χ² = Σ res_u(u)² by Levenberg–Marquardt from ``u0``; coordinates with mask 0 stay
    put. Returns (u, χ²)."""
    jac = jax.jacfwd(res_u)
    r0 = res_u(u0)
    state = (u0, jnp.asarray(1e-2, u0.dtype), r0 @ r0)
    u, _, c = jax.lax.fori_loop(0, iterations, lambda _, s: _lm_step(res_u, jac, mask, s), state)
    return u, c


def least_squares(residual: Callable[[jax.Array], jax.Array], x0: ArrayLike, *,
                  iterations: int = 100) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Minimize Σ residual(x)² by :func:`lm` (JAX Jacobian).

    For callers whose residual is already one vectorized function of the parameters (e.g. a
    calibration over thousands of measured rows). Returns (x, covariance, χ², residual count);
    the covariance is s²·(JᵀJ)⁻¹ with s² = χ²/(n − k) (the residual scale estimated from the fit).
    """
    x0 = jnp.asarray(x0, jnp.float64)

    def safe(x):
        r = residual(x)
        return jnp.where(jnp.isfinite(r), r, 1e6)

    x, chi2 = jax.jit(lambda u: lm(safe, u, jnp.ones_like(u), iterations))(x0)
    J = np.asarray(jax.jacfwd(safe)(x))
    n, k = J.shape
    s2 = float(chi2) / max(n - k, 1)
    cov = np.linalg.pinv(J.T @ J) * s2
    return np.asarray(x), cov, float(chi2), n


class Solver:
    """Many LM runs of one problem at once (``vmap``), compiled once per problem *structure*:
    the observed values and σ are arguments, so a refit on new data reuses the program. The
    compiled programs are this object's (at most ``max_programs``, oldest dropped first)."""

    def __init__(self, max_programs: int = 32):
        self.max_programs = max_programs
        self._programs: dict[str, Callable] = {}

    def program(self, problem: Problem, iterations: int) -> Callable:
        """The compiled ``(u rows, mask rows, y, s) → (u rows, χ² per row)`` of a problem."""
        key = problem.structure_key(iterations)
        if key not in self._programs:
            if len(self._programs) >= self.max_programs:
                self._programs.pop(next(iter(self._programs)))
            res = Residuals(problem)
            self._programs[key] = jax.jit(jax.vmap(
                lambda u, m, y, s: lm(lambda v: res.of_u(v, y, s), u, m, iterations),
                in_axes=(0, 0, None, None)))
        return self._programs[key]

    def runner(self, problem: Problem, iterations: int, width: int, y, s):
        """``run(u rows, mask rows) → (u rows, χ² rows)``, rows padded to ``width`` so the starts
        and the profile scans share one program."""
        compiled = self.program(problem, iterations)

        def run(u_rows: np.ndarray, m_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            n, pad = u_rows.shape[0], width - u_rows.shape[0]
            u_rows = np.vstack([u_rows, np.repeat(u_rows[:1], pad, axis=0)])
            m_rows = np.vstack([m_rows, np.repeat(m_rows[:1], pad, axis=0)])
            uo, co = compiled(jnp.asarray(u_rows), jnp.asarray(m_rows), y, s)
            return np.asarray(uo)[:n], np.asarray(co)[:n]

        return run


#: The solver :func:`rooflax.core.fit.fit` uses unless given one.
DEFAULT_SOLVER = Solver()
