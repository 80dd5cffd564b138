"""What a fit can set and observe: knobs (pytree leaves and aliases) and quantities, by the
registry's names (:mod:`rooflax.core.quantities`); pure functions on (Hardware, Model, Workload)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from .. import quantities as Q
from ..specs import SECONDS_PER_HOUR, Hardware, Model, Workload

Trees = tuple[Hardware, Model, Workload]

#: Leaf name → index of its tree in (hw, model, wl).
_FIELDS: dict[str, int] = {k: Q.TREES.index(Q.KNOBS[k].tree) for k in Q.LEAVES}


def _set(trees: Trees, field: str, value: Any) -> Trees:
    i = _FIELDS[field]
    out = list(trees)
    out[i] = out[i].replace(**{field: value})
    return tuple(out)  # type: ignore[return-value]


def _get(trees: Trees, field: str) -> Any:
    return getattr(trees[_FIELDS[field]], field)


#: Knobs that are not a leaf themselves: name → (setter, getter); units and words: the registry.
ALIASES: dict[str, tuple[Callable, Callable]] = {
    "price_per_hour": (lambda t, v: _set(t, "price", v / SECONDS_PER_HOUR),
                       lambda t: _get(t, "price") * SECONDS_PER_HOUR),
    "batch_per_chip": (lambda t, v: _set(t, "batch", v * _get(t, "chips")),
                       lambda t: _get(t, "batch") / _get(t, "chips")),
    "n_active": (lambda t, v: _set(t, "sparsity", _get(t, "n_total") / v),
                 lambda t: _get(t, "n_total") / _get(t, "sparsity")),
    "efficiency": (lambda t, v: _set(_set(t, "flops_eff", v), "bw_eff", v),
                   lambda t: _get(t, "bw_eff")),
    "flops": (lambda t, v: _set(t, "c_over_bw", v / 2.0 / _get(t, "bw")),
              lambda t: 2.0 * _get(t, "c_over_bw") * _get(t, "bw")),
}


def knob_names() -> list[str]:
    """Every knob an unknown or a fixed value may set: the pytree leaves, then the aliases."""
    return [*_FIELDS, *ALIASES]


def is_knob(name: str) -> bool:
    return name in _FIELDS or name in ALIASES


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


#: Observable quantities by the name observation files use: name → (function of (hw, model, wl),
#: unit, words) — the registry's quantities with a ``fit_name``.
QUANTITIES: dict[str, tuple[Callable[[Hardware, Model, Workload], jax.Array], str, str]] = {
    q.fit_name: (q, q.units, q.sentence) for q in Q.QUANTITIES.values() if q.fit_name}


def quantity_names() -> list[str]:
    """Every name an observation may predict: the quantities, then every knob (its own value)."""
    return [*QUANTITIES, *knob_names()]


def quantity_unit(name: str) -> str:
    """Unit of a quantity or knob ("" where unknown), from the registry."""
    if name in QUANTITIES:
        return QUANTITIES[name][1]
    return Q.units_of(name)


def evaluate(name: str, trees: Trees) -> jax.Array:
    """A quantity (or a knob's value) at the trees."""
    if name in QUANTITIES:
        return QUANTITIES[name][0](*trees)
    if is_knob(name):
        return jnp.asarray(knob_value(trees, name))
    raise KeyError(f"unknown quantity {name!r}; quantities: {', '.join(quantity_names())}")
