"""`physics: calibrated`: a sweep whose step-time quantities are the calibrated prediction.

The cube written by `rooflax sweep` is checked against core.predict composed by hand from the
catalog (peaks, the replica's link, layout ep for MoE / tp for dense, the extended model, the
shipped calibration's Engine), against `rooflax query --predicted` on the same points, and its
variables say which number they hold (`reading`)."""

import json

import numpy as np
import pytest
import xarray as xr
import yaml
from typer.testing import CliRunner

from rooflax.core import parallel, predict
from rooflax.core import roofline as rl
from rooflax.core.specs import Hardware, Workload
from rooflax.results.cli import app
from rooflax.sweeps import calibration, catalogs
from rooflax.sweeps import efficiency as eff

CONFIG = {
    "name": "calibrated", "physics": "calibrated", "dtype": "float64",
    "axes": {"hardware": ["h100-sxm", "h200"], "model": ["deepseek-v3", "llama-3.1-70b"],
             "batch": [1, 8, 64, 512], "context": [1024, 8192], "chips": 8,
             "precision": ["fp8", "bf16"]},
    "outputs": {"values": ["t_step", "latency", "throughput", "cost_per_mtok", "t_memory", "b_star"]},
}


@pytest.fixture(scope="module")
def cube(tmp_path_factory) -> xr.Dataset:
    d = tmp_path_factory.mktemp("calibrated")
    cfg = d / "calibrated.yaml"
    cfg.write_text(yaml.safe_dump({**CONFIG, "store": str(d / "calibrated.zarr")}))
    r = CliRunner().invoke(app, ["sweep", str(cfg), "--quiet"])
    assert r.exit_code == 0, r.output
    return xr.open_zarr(d / "calibrated.zarr")


def _by_hand(hw_name: str, model_name: str, weights: str, context: float):
    hw = catalogs.hardware(hw_name, chips=8.0, precision=weights)
    hw = hw.replace(link_bw=eff.replica_link_bw(hw_name, 8.0))
    arch = catalogs.architecture(model_name)
    hw = parallel.layout(hw, "ep" if arch.is_moe else "tp")
    model = parallel.extended_model(arch, weights=weights, kv="bf16")
    wl = Workload(batch=np.array([1.0, 8.0, 64.0, 512.0]), context=context)
    return hw, model, wl, calibration.engine_for(weights)


@pytest.mark.parametrize("hw_name,model_name,weights", [
    ("h200", "deepseek-v3", "fp8"), ("h100-sxm", "llama-3.1-70b", "bf16"), ("h100-sxm", "deepseek-v3", "bf16")])
def test_prediction_variables_are_core_predict(cube, hw_name, model_name, weights):
    hw, model, wl, eng = _by_hand(hw_name, model_name, weights, 8192.0)
    at = dict(hardware=hw_name, model=model_name, precision=weights, context=8192)
    step = np.asarray(predict.step_time(hw, model, wl, eng))
    # weights over the replica's HBM (hand arithmetic: N_total·w > n·M): no step to predict
    if float(model.n_total * model.bytes_per_weight) > 8 * float(catalogs.hardware(hw_name).capacity):
        assert np.isnan(cube.t_step.sel(**at).values).all() and np.isnan(cube.throughput.sel(**at).values).all()
        return
    np.testing.assert_allclose(cube.t_step.sel(**at).values, step, rtol=1e-12)
    np.testing.assert_allclose(cube.latency.sel(**at).values, step, rtol=1e-12)  # no drafting: τ = 1
    running = np.asarray(predict.running_batch(hw, model, wl, eng))
    np.testing.assert_allclose(cube.throughput.sel(**at).values, running / step, rtol=1e-12)
    # every other variable stays the bound, at the same peaks, layout and model
    np.testing.assert_allclose(cube.t_memory.sel(**at).values,
                               np.asarray(rl.t_memory(hw, model, wl)), rtol=1e-12)


def test_variables_say_which_number_they_hold(cube):
    for name in ("t_step", "latency", "throughput", "cost_per_mtok"):
        assert cube[name].attrs["reading"] == "prediction", name
        assert "calibration" in cube[name].attrs["comment"]
    for name in ("t_memory", "b_star"):
        assert cube[name].attrs["reading"] == "bound", name


def test_query_predicted_reads_the_same_prediction(cube):
    r = CliRunner().invoke(app, ["query", "t_step", "cost_per_mtok", "--predicted", "-H", "h200", "-n", "8",
                                 "-m", "deepseek-v3", "-p", "fp8", "-L", "1024", "-B", "1,8,64,512",
                                 "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)["rows"]
    at = dict(hardware="h200", model="deepseek-v3", precision="fp8", context=1024)
    np.testing.assert_allclose([row["t_step"] for row in rows], cube.t_step.sel(**at).values, rtol=1e-12)
    np.testing.assert_allclose([row["cost_per_mtok"] for row in rows],
                               cube.cost_per_mtok.sel(**at).values, rtol=1e-12)


def test_a_seeds_cube_is_unchanged_by_the_option(tmp_path):
    """physics: seeds (the default) still writes the bound, labelled so."""
    cfg = tmp_path / "seeds.yaml"
    seeds = {**CONFIG, "physics": "seeds", "store": str(tmp_path / "seeds.zarr")}
    cfg.write_text(yaml.safe_dump(seeds))
    r = CliRunner().invoke(app, ["sweep", str(cfg), "--quiet"])
    assert r.exit_code == 0, r.output
    ds = xr.open_zarr(tmp_path / "seeds.zarr")
    assert ds.t_step.attrs["reading"] == "bound"
    hw = catalogs.hardware("h200", chips=8.0, precision="fp8")
    model = catalogs.model("deepseek-v3", weights="fp8", kv="bf16")
    wl = Workload(batch=np.array([1.0, 8.0, 64.0, 512.0]), context=8192.0)
    np.testing.assert_allclose(ds.t_step.sel(hardware="h200", model="deepseek-v3", precision="fp8",
                                             context=8192).values,
                               np.asarray(rl.t_step(hw, model, wl)), rtol=1e-12)


def test_dequantizing_chip_adds_its_time_per_layer(tmp_path):
    """fp4 weights on H100 (no fp4 peak: dequantized) and on B200 (native): each cube point is
    core.predict by hand, and on H100 the step is t_dequant_layer × 36 layers longer than the
    same Engine without dequantization (gpt-oss-120b has 36 layers)."""
    cfg = {"name": "dequant", "physics": "calibrated", "dtype": "float64",
           "store": str(tmp_path / "dq.zarr"),
           "axes": {"hardware": ["h100-sxm", "b200"], "model": ["gpt-oss-120b"], "chips": 8,
                    "batch": [1, 64], "context": [2048], "precision": ["fp4", "fp8"]},
           "outputs": {"values": ["t_step"]}}
    (tmp_path / "dq.yaml").write_text(yaml.safe_dump(cfg))
    r = CliRunner().invoke(app, ["sweep", str(tmp_path / "dq.yaml"), "--quiet"])
    assert r.exit_code == 0, r.output
    cube = xr.open_zarr(tmp_path / "dq.zarr")
    per_layer = calibration.load().values["t_dequant_layer"]
    for hw_name, weights, dq in (("h100-sxm", "fp4", 1.0), ("b200", "fp4", 0.0),
                                 ("h100-sxm", "fp8", 0.0)):
        # the sweep computes at the chip's peak for the weights, else bf16 (fp4 on H100)
        hw = catalogs.hardware(hw_name, chips=8.0,
                               precision=catalogs.compute_precision(hw_name, weights))
        hw = parallel.layout(hw.replace(link_bw=eff.replica_link_bw(hw_name, 8.0)), "ep")
        model = parallel.extended_model(catalogs.architecture("gpt-oss-120b"), weights=weights, kv="bf16")
        wl, eng = Workload(batch=np.array([1.0, 64.0]), context=2048.0), calibration.engine_for(weights)
        assert calibration.dequant_of(hw_name, weights) == dq
        step = np.asarray(predict.step_time(hw, model, wl, eng.replace(dequant=dq)))
        got = cube.t_step.sel(hardware=hw_name, model="gpt-oss-120b", precision=weights).values[:, 0]
        np.testing.assert_allclose(got, step, rtol=1e-12)
        native = np.asarray(predict.step_time(hw, model, wl, eng))
        np.testing.assert_allclose(step - native, [dq * 36 * per_layer] * 2, rtol=1e-9, atol=1e-15)


def test_query_predicted_with_the_checkpoints_own_weights():
    """--weights native (gpt-oss-120b: bf16 attention, mxfp4 experts) on H200: the experts'
    4-bit streaming efficiency and Hopper's dequantization — core.predict composed by hand."""
    r = CliRunner().invoke(app, ["query", "t_step", "--predicted", "-H", "h200", "-n", "8",
                                 "-m", "gpt-oss-120b", "-p", "fp8", "--weights", "native",
                                 "-L", "2048", "-B", "1,64", "--json"])
    assert r.exit_code == 0, r.output
    got = [row["t_step"] for row in json.loads(r.stdout)["rows"]]
    arch = catalogs.architecture("gpt-oss-120b")
    assert (arch.native_precision, arch.native_expert_precision) == ("bf16", "mxfp4")
    hw = catalogs.hardware("h200", chips=8.0, precision="fp8")
    hw = parallel.layout(hw.replace(link_bw=eff.replica_link_bw("h200", 8.0)), "ep")
    model = parallel.extended_model(arch, weights="native", kv="bf16")
    eng = calibration.engine_for("mxfp4", dequant=1.0, prefill_skip=calibration.prefill_skip_of(arch))
    want = predict.step_time(hw, model, Workload(batch=np.array([1.0, 64.0]), context=2048.0), eng)
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-9)


def test_hypothetical_hardware_calibrated(tmp_path):
    """A chip given by its numbers (bw axis, C/BW, capacity) under physics calibrated: each point is
    core.predict by hand with the shipped calibration's shared Engine (formats native: no
    dequantization), layout ep, a free link (none given) — and the per-layer time is there:
    the prediction exceeds the bound by more than 61 layers × t_layer at batch 1."""
    cfg = {"name": "hyp", "physics": "calibrated", "dtype": "float64", "store": str(tmp_path / "h.zarr"),
           "axes": {"hardware": {"bw": ["4.8 TB/s", "8 TB/s"], "c_over_bw": [206.1], "capacity": "141 GB",
                                 "price_per_hour": "4 $/h", "chips": 8},
                    "model": ["deepseek-v3"], "batch": [1, 64], "context": [8192], "precision": "fp8"},
           "outputs": {"values": ["t_step", "t_memory"]}}
    (tmp_path / "h.yaml").write_text(yaml.safe_dump(cfg))
    r = CliRunner().invoke(app, ["sweep", str(tmp_path / "h.yaml"), "--quiet"])
    assert r.exit_code == 0, r.output
    cube = xr.open_zarr(tmp_path / "h.zarr")
    model = parallel.extended_model(catalogs.architecture("deepseek-v3"), weights="fp8", kv="bf16")
    eng = calibration.engine_for("fp8")
    wl = Workload(batch=np.array([1.0, 64.0]), context=8192.0)
    for bw in (4.8e12, 8e12):
        hw = parallel.layout(Hardware(bw=bw, c_over_bw=206.1, capacity=141e9, price=4.0 / 3600.0,
                                      chips=8.0), "ep")
        got = cube.t_step.sel(bw=bw, c_over_bw=206.1).squeeze().values
        np.testing.assert_allclose(got, np.asarray(predict.step_time(hw, model, wl, eng)), rtol=1e-12)
        bound = cube.t_memory.sel(bw=bw, c_over_bw=206.1).squeeze().values
        assert got[0] - bound[0] > 61 * calibration.load().values["t_layer"]


def test_calibrated_refuses_a_model_given_by_counts(tmp_path):
    """A family by counts has no layers: its prediction would drop the time per layer — exit 2."""
    cfg = {"name": "fam", "physics": "calibrated", "store": str(tmp_path / "f.zarr"),
           "axes": {"hardware": ["h200"], "model": {"sparsity": 18, "n_total": 671e9,
                                                    "kv_bytes_per_token": "70272 B"},
                    "batch": [1], "context": [1024], "chips": 8, "precision": "fp8"}}
    (tmp_path / "f.yaml").write_text(yaml.safe_dump(cfg))
    r = CliRunner().invoke(app, ["sweep", str(tmp_path / "f.yaml"), "--quiet"])
    assert r.exit_code == 2 and "time per decoder layer" in r.output
    assert not (tmp_path / "f.zarr").exists()
