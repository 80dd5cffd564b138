"""Sensitivities through the calibrated prediction (core.sensitivity.predicted_sensitivities):
elasticities against central finite differences, the neutral engine against the bound's
autodiff, and `rooflax sensitivity --predicted` against `query --predicted` on the same point."""

import json
import math

import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from rooflax import core as rc
from rooflax.core import predict
from rooflax.core import roofline as rl
from rooflax.core.sensitivity import PREDICTED_OUTPUTS, predicted_sensitivities
from rooflax.results.cli import app
from rooflax.results.point import build_point, predicted_trees

#: chips is left out of the finite differences: with expert parallelism it sets experts per rank,
#: a whole number of binomial trials in the expected maximum of touched experts — a step
#: function there, so a finite difference across it is not a derivative.
KNOBS = ("bw", "c_over_bw", "sparsity", "capacity", "price", "context", "batch",
         "kv_bytes_per_token", "n_total")


def _point(batch: float, context: float = 8192.0):
    pt = build_point("h200", "deepseek-v3", chips=8, precision="fp8", context=context)
    hw, model, eng = predicted_trees(pt)
    return hw, model, pt.wl.replace(batch=batch), eng


def _log_fd(hw, model, wl, eng, output: str, knob: str, h: float = 1e-5) -> float:
    """Central difference of ln y in ln x: (ln y(x·e^h) − ln y(x·e^−h))/2h."""
    tree, field = rc.KNOBS[knob]
    trees = {"hardware": hw, "model": model, "workload": wl}
    x = getattr(trees[tree], field)

    def y(scale):
        t = dict(trees)
        t[tree] = t[tree].replace(**{field: x * scale})
        return float(predict.outputs(t["hardware"], t["model"], t["workload"], eng)[output])

    return (math.log(y(math.exp(h))) - math.log(y(math.exp(-h)))) / (2 * h)


@pytest.mark.parametrize("batch", [1.0, 64.0, 4096.0])  # 4096: KV-limited (queueing)
def test_elasticities_match_finite_differences(batch):
    hw, model, wl, eng = _point(batch)
    s = predicted_sensitivities(hw, model, wl, eng, knobs=KNOBS)
    for o in PREDICTED_OUTPUTS:
        for k in KNOBS:
            fd = _log_fd(hw, model, wl, eng, o, k)
            assert float(s["elasticity"][o][k]) == pytest.approx(fd, rel=1e-4, abs=1e-7), (o, k)


def test_neutral_engine_gives_the_bounds_elasticities():
    """Engine() makes the prediction the seeds' step: its elasticities are the bound's, computed
    by core's own autodiff of roofline.latency/throughput/cost_per_token."""
    hw, model, wl, _ = _point(64.0)
    s = predicted_sensitivities(hw, model, wl, predict.Engine(), knobs=KNOBS)
    for o, fn in (("latency", rl.latency), ("throughput", rl.throughput),
                  ("cost_per_token", rl.cost_per_token)):
        for k in KNOBS:
            e = float(rc.elasticity(fn, hw, model, wl, k))
            assert float(s["elasticity"][o][k]) == pytest.approx(e, rel=1e-9, abs=1e-12), (o, k)


def test_partials_are_elasticities_times_y_over_x():
    hw, model, wl, eng = _point(jnp.asarray([1.0, 64.0]))
    s = predicted_sensitivities(hw, model, wl, eng, knobs=("bw", "batch"))
    y = np.asarray(s["value"]["latency"])
    np.testing.assert_allclose(np.asarray(s["partial"]["latency"]["bw"]) * float(hw.bw) / y,
                               np.asarray(s["elasticity"]["latency"]["bw"]), rtol=1e-12)
    assert np.asarray(s["value"]["latency"]).shape == (2,)


def test_cli_predicted_matches_query_predicted():
    args = ["-H", "h200", "-n", "8", "-m", "deepseek-v3", "-p", "fp8", "-L", "8k", "-B", "64"]
    r = CliRunner().invoke(app, ["sensitivity", "--predicted", *args, "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["reading"] == "prediction" and rep["inputs"]["batch"] == 64
    q = CliRunner().invoke(app, ["query", "latency", "throughput", "cost_per_token", "--predicted",
                                 *args, "--json"])
    assert q.exit_code == 0, q.output
    row = json.loads(q.output)["rows"][0]
    for name in ("latency", "throughput", "cost_per_token"):
        assert rep["values"][name] == pytest.approx(row[name], rel=1e-12)
    assert rep["units"]["values"]["latency"] == "s"
    assert "bandwidth" in rep["sentences"]["latency"]["bw"]


def test_cli_predicted_needs_a_batch_and_a_catalog_point(sweep_cube):
    r = CliRunner().invoke(app, ["sensitivity", "--predicted", "-H", "h200", "-m", "deepseek-v3"])
    assert r.exit_code == 2 and "--batch" in r.output
    r = CliRunner().invoke(app, ["sensitivity", sweep_cube, "--predicted", "-B", "8",
                                 "--sel", "hardware=h200", "--sel", "model=deepseek-v3"])
    assert r.exit_code == 2 and "cube" in r.output


def test_cli_predicted_where_the_weights_do_not_fit():
    """DeepSeek-V3 in bf16 (671e9 · 2 B) on one 80 GB H100: no step, so no number and the reason
    — never a feasible-looking TPOT."""
    r = CliRunner().invoke(app, ["sensitivity", "--predicted", "-B", "8", "-H", "h100-sxm", "-n", "1",
                                 "-m", "deepseek-v3", "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert all(v is None for v in rep["values"].values()) and rep["running_batch"] is None
    need = math.ceil(671e9 * 2 / 80e9)  # 17 chips
    assert f"does not fit: needs {need} chips" in rep["reason"]
    assert all(e is None for row in rep["elasticity"].values() for e in row.values())
