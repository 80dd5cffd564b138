"""The sweep plan carries the core's pytrees: leaves over the plan's dims, one price unit, blocks
cut by indexing the leaves."""

from __future__ import annotations

import jax
import numpy as np
import yaml

from rooflax.core.specs import Hardware, Model, Workload
from rooflax.sweeps import catalogs, compute
from rooflax.sweeps import config as C
from rooflax.sweeps import grid as G


def _plan(tmp_path, **extra):
    data = {"axes": {"hardware": ["h100-sxm", "h200"], "model": ["llama-3.1-8b", "deepseek-v3"],
                     "precision": ["fp8", "bf16"], "batch": [1, 8, 64], "context": [1024, 4096, 8192]},
            "price": "tco-neocloud", "store": str(tmp_path / "p.zarr"), **extra}
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump(data))
    return G.build(C.load(f))


def test_trees_are_core_pytrees_over_the_plan_dims(tmp_path):
    plan = _plan(tmp_path)
    assert plan.dims == ["hardware", "model", "precision", "batch", "context"]
    hw, m, wl = plan.trees["hw"], plan.trees["m"], plan.trees["wl"]
    assert (type(hw), type(m), type(wl)) == (Hardware, Model, Workload)
    assert all(np.ndim(x) == 5 for x in jax.tree.leaves(plan.trees))
    # bytes per weight vary along precision (fp8 1 B, bf16 2 B); a chip's bandwidth does not
    np.testing.assert_array_equal(m.bytes_per_weight[0, 0, :, 0, 0], [1.0, 2.0])
    assert hw.bw.shape == (2, 1, 1, 1, 1)
    np.testing.assert_array_equal(wl.context.ravel(), [1024, 4096, 8192])
    # C/BW per (chip, precision): the catalog's dense peak / 2 / HBM bandwidth
    for i, name in enumerate(["h100-sxm", "h200"]):
        e = catalogs.hardware_entry(name)
        want = [e["peak_tflops_dense"][p] * 1e12 / 2 / e["hbm_bw"] for p in ("fp8", "bf16")]
        np.testing.assert_allclose(plan.extra_coords["c_over_bw"][1][i], want, rtol=1e-12)


def test_one_price_unit(tmp_path):
    """$/s in the pytree; $/h only as the price_per_hour coordinate (prices.yaml's number)."""
    plan = _plan(tmp_path)
    dims, per_hour, attrs = plan.extra_coords["price_per_hour"]
    assert dims == ("hardware",) and attrs["units"] == "$/h"
    for i, name in enumerate(["h100-sxm", "h200"]):
        usd_h = catalogs.hardware_entry(name)["price_bases"]["tco-neocloud"]["usd_per_hour"]
        assert per_hour[i] == usd_h
        np.testing.assert_allclose(plan.trees["hw"].price[i].item(), usd_h / 3600, rtol=1e-15)


def test_blocks_tile_every_leaf(tmp_path):
    """Block inputs put back together (padding dropped) are the plan's leaves, brute force."""
    plan = _plan(tmp_path, chunks={"hardware": 1, "precision": 1, "context": 2})
    assert plan.n_blocks == 2 * 1 * 2 * 1 * 2
    full = jax.tree.map(lambda a: np.broadcast_to(a, plan.shape), plan.trees)
    seen = jax.tree.map(lambda a: np.full(plan.shape, np.nan), plan.trees)
    for index in plan.blocks():
        trees, sl = compute.block_inputs(plan, index)
        assert all(np.ndim(x) == 5 for x in jax.tree.leaves(trees))
        region = tuple(sl[d] for d in plan.dims)
        true = tuple(slice(0, s.stop - s.start) for s in region)

        def put(dst, a, region=region, true=true):
            dst[region] = np.broadcast_to(a, plan.block_shape)[true]
            return dst

        jax.tree.map(put, seen, trees)
    for a, b in zip(jax.tree.leaves(seen), jax.tree.leaves(full), strict=True):
        np.testing.assert_array_equal(a, b)


def test_plan_pickles(tmp_path):
    """Dask ships the plan to workers: the pytrees survive a pickle round trip."""
    import pickle

    plan = _plan(tmp_path)
    back = pickle.loads(pickle.dumps(plan))
    assert jax.tree.structure(back.trees) == jax.tree.structure(plan.trees)
    for a, b in zip(jax.tree.leaves(back.trees), jax.tree.leaves(plan.trees), strict=True):
        np.testing.assert_array_equal(a, b)
