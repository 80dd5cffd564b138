"""Inverse queries: deduce serving knobs from prices and measurements (seed 002, "deductive power").

Pure JAX, no I/O. A :class:`Problem` holds

* **scenarios** — a (Hardware, Model, Workload) triple at stated conditions, some
  knobs fixed (``knobs``), some bound to unknowns (``bind``: knob → unknown name);
* **unknowns** — named scalars with bounds, an optional Gaussian prior and an
  optional start; ``log`` unknowns are fitted in ln θ;
* **observations** — a quantity the model predicts (:data:`QUANTITIES`: the registry's
  quantities by their observation names, :mod:`rooflax.core.quantities`; or any knob)
  in a scenario, optionally with per-observation knob overrides and divided by a
  second quantity (``over``: a ratio), with a 1-σ uncertainty;
* **derived** — quantities to report at the fit, with propagated uncertainty.

Modules, one job each: :mod:`.vocabulary` (knobs and quantities by name), :mod:`.problem`
(unknowns, observations → residual functions), :mod:`.solver` (Levenberg–Marquardt on the JAX
Jacobian; :func:`least_squares`; :class:`Solver` owns the compiled programs),
:mod:`.diagnostics` (σ, identifiability, profiles, derived quantities, warnings) and
:mod:`.driver` (:func:`fit`).

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

from .diagnostics import DerivedResult, FitResult, ObservationResult, UnknownResult
from .driver import fit, start_points
from .problem import Derived, Expr, Observation, Problem, Scenario, Unknown, predict, simulate
from .solver import DEFAULT_SOLVER, Solver, least_squares, lm
from .vocabulary import (
    ALIASES,
    QUANTITIES,
    Trees,
    apply_knobs,
    evaluate,
    knob_names,
    knob_value,
    quantity_names,
    quantity_unit,
)

__all__ = [
    "ALIASES", "DEFAULT_SOLVER", "QUANTITIES", "Derived", "DerivedResult", "Expr", "FitResult",
    "Observation", "ObservationResult", "Problem", "Scenario", "Solver", "Trees", "Unknown",
    "UnknownResult", "apply_knobs", "evaluate", "fit", "knob_names", "knob_value", "least_squares",
    "lm", "predict", "quantity_names", "quantity_unit", "simulate", "start_points",
]
