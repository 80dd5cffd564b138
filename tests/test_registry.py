"""The one registry (rooflax.core.quantities): what a cube written by ``rooflax sweep`` and the
CLI's ``--json`` say about units and long names is exactly what the registry says, and each
quantity's and knob's long name is spelled in one module only."""

import dataclasses
import json
import re
from pathlib import Path

import pytest
import xarray as xr
from typer.testing import CliRunner

from rooflax.core import quantities as Q
from rooflax.core.specs import Hardware, Model, Workload
from rooflax.results.cli import app

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("core", "sweeps", "results")
#: The house spelling: these unit strings never appear in the registry.
OTHER_SPELLINGS = {"tok/s", "bytes", "bytes/s", "seqs", "sequence", "token", "bytes/token", "MAC/byte"}


def _expected(name: str) -> dict:
    """Units, long name and flags of a cube variable or coordinate, from the registry alone."""
    if name == "sensitivity_reason":
        return {**Q.REASON_ATTRS, **Q.flag_attrs(name)}
    if "__" in name:
        kind, output, knob = name.split("__")
        return Q.sensitivity_attrs(kind, output, knob)
    return {**Q.attrs(name), **Q.flag_attrs(name)}


def test_every_cube_variable_and_coordinate_has_the_registry_attributes(sweep_cube):
    ds = xr.open_zarr(sweep_cube)
    names = [*ds.coords, *ds.data_vars]
    assert {"batch", "context", "hardware", "model", "b_star", "regime", "binding",
            "elasticity__cost_at_b_star__bw", "partial__b_star__price"} <= set(names)
    for name in names:
        want = _expected(name)
        got = {k: ds[name].attrs.get(k) for k in want}
        got = {k: list(v) if isinstance(v, tuple) else v for k, v in got.items()}
        assert got == want, name


def test_an_extended_plan_takes_every_attribute_from_the_registry():
    """The extended-physics example's plan (efficiencies, link, dp, spec_k as a dim): every
    coordinate and variable it would write carries the registry's units and long name."""
    from rooflax.sweeps import config as C
    from rooflax.sweeps import grid as G

    plan = G.build(C.load(ROOT / "configs" / "extended-deepseek.yaml"))
    assert {"flops_eff", "bw_eff", "link_bw", "dp"} <= set(plan.extra_coords) and "spec_k" in plan.dims
    for name, (_, _, attrs) in plan.extra_coords.items():
        assert attrs == Q.attrs(name), name
    for name, spec in plan.variables.items():  # + which number it is: extended physics, the bound
        assert {k: v for k, v in spec.attrs.items() if k != "reading"} == _expected(name), name
        assert spec.attrs.get("reading", "bound") == "bound", name


def test_fit_aliases_are_the_registry_aliases():
    from rooflax.core.fit import vocabulary as V

    assert set(V.ALIASES) == set(Q.ALIASES)
    assert {name: unit for name, (_, unit, _) in V.QUANTITIES.items()} == {
        q.fit_name: q.units for q in Q.QUANTITIES.values() if q.fit_name}


def _json(*args: str) -> dict:
    r = CliRunner().invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_query_json_units_are_the_registry_units():
    names = ["t_step", "throughput", "b_star", "cost_per_mtok_at_b_star", "l_bal", "kv_store_bytes"]
    out = _json("query", *names, "-H", "h200", "-n", "8", "-m", "dsv3", "-L", "8k")
    assert set(out["quantities"]) == set(names)
    for name, meta in out["quantities"].items():
        assert meta == Q.attrs(name), name


def test_sensitivity_json_units_are_the_registry_units():
    out = _json("sensitivity", "-H", "h200", "-n", "8", "-m", "dsv3", "-L", "1k")
    units = out["units"]
    assert units["values"] == {o: Q.QUANTITIES[o].units for o in units["values"]}
    assert set(units["values"]) >= set(Q.SENSITIVITY_OUTPUTS)
    assert units["knobs"] == {k: Q.KNOBS[k].units for k in units["knobs"]}
    for o, per_knob in units["partial"].items():
        for k, u in per_knob.items():
            assert u == f"{Q.QUANTITIES[o].units} per {Q.KNOBS[k].units}", (o, k)


def _sources() -> dict[str, str]:
    return {str(p.relative_to(ROOT)): p.read_text() for layer in LAYERS for p in (ROOT / layer).rglob("*.py")}


@pytest.mark.parametrize("kind", ["quantity", "knob"])
def test_each_long_name_is_defined_in_one_module(kind):
    """grep: a quantity's or knob's long name appears as a string literal in one module only
    (the registry); every other module reads it from there."""
    sources = _sources()
    entries = Q.QUANTITIES.values() if kind == "quantity" else Q.KNOBS.values()
    for e in entries:
        literal = re.compile(r"""(["'])""" + re.escape(e.long_name) + r"\1")
        where = sorted(path for path, text in sources.items() if literal.search(text))
        assert where == ["core/quantities.py"], (e.name, e.long_name, where)


def test_long_names_are_unique():
    names = [e.long_name for e in (*Q.QUANTITIES.values(), *Q.KNOBS.values())]
    assert len(names) == len(set(names))


def test_the_leaves_are_exactly_the_pytree_fields():
    """Every leaf of Hardware, Model and Workload is a knob of its tree, and nothing else is."""
    trees = {"hardware": Hardware, "model": Model, "workload": Workload}
    fields = {f.name: tree for tree, cls in trees.items() for f in dataclasses.fields(cls)}
    assert {k: Q.KNOBS[k].tree for k in Q.LEAVES} == fields


def test_one_spelling_of_units():
    units = {e.units for e in (*Q.QUANTITIES.values(), *Q.KNOBS.values(), *Q.AXES.values())}
    assert not units & OTHER_SPELLINGS


def test_every_quantity_resolves_to_its_core_function():
    import rooflax.core as rc

    for q in Q.QUANTITIES.values():
        assert callable(q.fn()), q.name
        if hasattr(rc, q.name):
            assert q.fn() is getattr(rc, q.name), q.name


def test_domains_belong_to_knobs_or_inputs():
    assert set(Q.DOMAINS) <= set(Q.KNOBS) | set(Q.INPUTS)
    assert set(Q.SENSITIVITY_KNOBS) <= set(Q.DOMAINS)
