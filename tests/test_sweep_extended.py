"""Sweeps with the extended physics (issue 5): configs/extended-deepseek.yaml against direct core
calls, and a seeds config that does not change."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from rooflax import core as rc
from rooflax.core import optimum as opt
from rooflax.core import quantities as Q
from rooflax.core import roofline as rl
from rooflax.core.parallel import layout
from rooflax.core.sensitivity import KNOBS as CORE_KNOBS
from rooflax.core.sensitivity import sensitivities
from rooflax.sweeps import catalogs, efficiency
from rooflax.sweeps import config as C
from rooflax.sweeps import grid as G
from rooflax.sweeps import run as R

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "configs" / "extended-deepseek.yaml"


def _expected(hw_name, model_name, spec_k, spec_alpha):
    cp = G._compute_precision(hw_name, "fp8", "auto")
    hw = efficiency.hardware(hw_name, precision=cp)
    hw = layout(hw, "ep" if catalogs.architecture(model_name).is_moe else "tp")
    m = catalogs.model(model_name, weights="fp8", kv="bf16", extended=True)
    return hw, m, rc.Workload(spec_k=spec_k, spec_alpha=spec_alpha)


def test_extended_example_matches_core(tmp_path):
    cfg = C.load(EXAMPLE)
    assert cfg.physics == "extended" and cfg.layout_kind() == "auto"
    cfg = cfg.model_copy(update={"store": str(tmp_path / "ext.zarr"), "dtype": "float64"})
    plan = G.build(cfg)
    assert plan.dims == ["hardware", "model", "spec_k", "batch", "context"]
    R.run(cfg, progress=False)
    ds = xr.open_zarr(cfg.store)
    np.testing.assert_array_equal(ds.spec_k.values, [0.0, 1.0, 3.0])
    alpha = 0.8
    rng = np.random.default_rng(5)
    points = [("hgx-h200-8", "deepseek-v3", 1), ("gb200-nvl72", "deepseek-v3", 3),
              ("hgx-h200-8", "llama-3.1-70b", 0), ("gb200-nvl72", "qwen3-235b-a22b", 1)]
    for i, (hw_name, model_name, k) in enumerate(points):
        hw, m, wl0 = _expected(hw_name, model_name, float(k), alpha)
        sel = dict(hardware=hw_name, model=model_name, spec_k=float(k))
        for _ in range(1):
            b = float(ds.batch.values[rng.integers(len(ds.batch))])
            c = float(ds.context.values[rng.integers(len(ds.context))])
            wl = wl0.replace(batch=b, context=c)
            at = ds.sel(**sel, batch=b, context=c)
            np.testing.assert_allclose(at.t_step.values, rl.t_step(hw, m, wl), rtol=1e-9)
            np.testing.assert_allclose(at.cost_per_mtok.values, rl.cost_per_mtok(hw, m, wl),
                                       rtol=1e-9)
            wl1 = wl.replace(batch=1.0)
            at = ds.sel(**sel, context=c)
            np.testing.assert_allclose(at.b_star.values, opt.b_star(hw, m, wl1), rtol=1e-9)
            np.testing.assert_allclose(at.cost_per_mtok_at_b_star.values,
                                       opt.cost_per_mtok_at_b_star(hw, m, wl1), rtol=1e-9)
            assert int(at.binding.values) == int(opt.binding(hw, m, wl1))
            if i % 2:
                continue  # sensitivities (slow eagerly) at half the points
            s = sensitivities(hw, m, wl1, outputs=("cost_at_b_star",),
                              knobs=("flops_eff", "bw_eff", "spec_alpha"))
            for knob in ("flops_eff", "bw_eff", "spec_alpha"):
                np.testing.assert_allclose(
                    at[f"partial__cost_at_b_star__{knob}"].values,
                    s["partial"]["cost_at_b_star"][knob], rtol=1e-6, equal_nan=True,
                    atol=1e-9 * float(s["value"]["cost_at_b_star"]))  # ~0 partials: rounding
    # the extended leaves are in the cube as coordinates
    assert float(ds.dp.sel(hardware="gb200-nvl72", model="deepseek-v3")) == 72.0
    assert float(ds.dp.sel(hardware="gb200-nvl72", model="llama-3.1-70b")) == 1.0
    assert float(ds.link_bw.sel(hardware="hgx-h200-8")) == efficiency.link_bw("hgx-h200-8")


def _seeds_cfg(tmp_path, **axes):
    data = {"axes": {"hardware": ["h100-sxm", "b200"], "model": ["deepseek-v3", "llama-3.1-8b"],
                     "batch": [1, 64], "context": [1024, 8192], "chips": 8, **axes},
            "store": str(tmp_path / "s.zarr")}
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(data))
    return C.load(f)


def test_seeds_config_unaffected(tmp_path):
    cfg = _seeds_cfg(tmp_path)
    d = json.loads(cfg.normalized_json())
    assert "physics" not in d and "layout" not in d
    assert not set(C.EXTRA_AXES) & set(d["axes"])
    plan = G.build(cfg)
    assert plan.dims == ["hardware", "model", "batch", "context"]
    neutral = {"hw.flops_eff": 1.0, "hw.bw_eff": 1.0, "hw.link_bw": np.inf, "hw.link_eff": 1.0,
               "hw.link_latency": 0.0, "hw.overlap": 1.0, "hw.dp": 1.0, "hw.expert_replicas": 1.0,
               "hw.moe_ep": 1.0, "wl.spec_k": 0.0, "wl.spec_alpha": 0.0,
               "m.attn_flops_per_ctx_token": 0.0, "m.experts_per_token": 0.0}
    for key, v in neutral.items():
        tree, field = key.split(".")
        leaf = getattr(plan.trees[tree], field)
        assert np.ndim(leaf) == 4, key  # over the plan's 4 dims
        np.testing.assert_array_equal(leaf, v, err_msg=key)
    for name in ("flops_eff", "link_bw", "dp", "spec_k"):
        assert name not in plan.extra_coords and name not in plan.coords


def test_seeds_config_with_overrides(tmp_path):
    cfg = _seeds_cfg(tmp_path, flops_eff=0.5, link_bw="900 GB/s", spec_alpha=[0.5, 0.9])
    plan = G.build(cfg)
    assert plan.dims == ["hardware", "model", "spec_alpha", "batch", "context"]
    assert float(plan.trees["hw"].flops_eff.squeeze()) == 0.5
    assert float(plan.trees["hw"].link_bw.squeeze()) == 900e9
    assert plan.trees["wl"].spec_alpha.shape == (1, 1, 2, 1, 1)  # along its own dim
    np.testing.assert_array_equal(plan.coords["spec_alpha"], [0.5, 0.9])


def test_knobs_follow_core():
    assert tuple(CORE_KNOBS) == C.KNOBS
    assert set(C.KNOBS) <= set(Q.KNOBS)


def test_knob_typo_and_layout_errors(tmp_path):
    data = {"axes": {"hardware": ["h100-sxm"], "model": ["llama-3.1-8b"], "batch": [1],
                     "context": [1024]},
            "outputs": {"sensitivities": {"knobs": ["flops_ef"]}}, "store": str(tmp_path / "k.zarr")}
    f = tmp_path / "k.yaml"
    f.write_text(yaml.safe_dump(data))
    with pytest.raises(C.ConfigError) as e:
        C.load(f)
    assert "did you mean 'flops_eff'" in str(e.value)
    data.pop("outputs")
    data["layout"] = "epp"
    f.write_text(yaml.safe_dump(data))
    with pytest.raises(C.ConfigError) as e:
        C.load(f)
    assert "layout" in str(e.value) and "did you mean 'ep'" in str(e.value)


def test_extended_layouts(tmp_path):
    data = {"axes": {"hardware": ["h200"], "batch": [1], "context": [1024], "chips": [8, 16],
                     "model": ["deepseek-v3", "llama-3.1-8b",
                               {"name": "counts", "n_total": 6e11, "sparsity": 18,
                                "kv_bytes_per_token": "70 kB"}]},
            "physics": "extended", "store": str(tmp_path / "l.zarr")}
    f = tmp_path / "l.yaml"
    f.write_text(yaml.safe_dump(data))
    plan = G.build(C.load(f))
    assert plan.dims == ["hardware", "model", "chips", "batch", "context"]
    dp = plan.trees["hw"].dp
    assert dp.shape == (1, 3, 2, 1, 1)
    np.testing.assert_array_equal(dp[0, :, :, 0, 0], [[8, 16], [1, 1], [1, 1]])  # ep for MoE only
    np.testing.assert_array_equal(plan.trees["hw"].moe_ep.squeeze(), [1, 0, 0])
    assert plan.extra_coords["dp"][0] == ("model", "chips")
    data["layout"] = "one-chip"
    f.write_text(yaml.safe_dump(data))
    np.testing.assert_array_equal(G.build(C.load(f)).trees["hw"].dp, 1.0)
