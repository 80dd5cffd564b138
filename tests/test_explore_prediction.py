"""`rooflax explore`: with a catalog hardware and model loaded, the calibrated prediction is drawn
and read out beside the bound — core.predict composed by hand, the same trees as
`query --predicted` (layout tp for a dense model, the replica's link, the extended model).

The app is built and driven in a subprocess: importing panel registers its Bokeh extensions for
the whole process, and the offline HTML plots other tests write here must not reference them."""

import json
import subprocess
import sys

import numpy as np

from rooflax.core import parallel, predict
from rooflax.core.specs import Workload
from rooflax.results.explore import sci
from rooflax.sweeps import calibration, catalogs
from rooflax.sweeps import efficiency as eff

DRIVE = r"""
import json, os
os.environ["JAX_ENABLE_X64"] = "1"
import panel as pn
from bokeh.models import ColumnDataSource
from rooflax.results import explore

app = explore.build_app()
w = {x.name: x for x in app.select(pn.widgets.Widget)}
pane = next(p for p in app.select(pn.pane.HTML) if "rooflax-pred" in p.css_classes)
src = next(s for s in app.select(pn.pane.Bokeh)[0].object.select({"type": ColumnDataSource})
           if "tp" in s.data)
out = {"seed": pane.object}
w["hardware"].value, w["chips"].value, w["precision"].value = "h200", 8, "fp8"
w["model"].value, w["weights"].value = "llama-3.1-70b", "fp8"
w["Load from catalog"].clicks += 1
out["loaded"], out["B"], out["tp"] = pane.object, list(src.data["B"]), list(src.data["tp"])
w["L — context (tokens)"].value = 32768.0
out["long"] = pane.object
w["engine (prediction)"].value = "vllm"
w["Load from catalog"].clicks += 1
out["vllm"] = pane.object
w["engine (prediction)"].value = explore.SHARED
w["model"].value = explore.SEED
w["Load from catalog"].clicks += 1
out["back"], out["tp_back"] = pane.object, list(src.data["tp"])
w["hardware"].value, w["chips"].value, w["precision"].value = "h100-sxm", 1, "bf16"
w["model"].value, w["weights"].value = "deepseek-v3", "bf16"
w["Load from catalog"].clicks += 1
out["too_big"] = pane.object
print(json.dumps(out, default=float))
"""


def test_loaded_pick_draws_and_reads_the_prediction():
    run = subprocess.run([sys.executable, "-c", DRIVE], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert "n/a" in out["seed"]  # the seed's numbers: no chip or layers to predict with
    arch = catalogs.architecture("llama-3.1-70b")
    hw = catalogs.hardware("h200", chips=8.0, precision="fp8")
    hw = parallel.layout(hw.replace(link_bw=eff.replica_link_bw("h200", 8.0)), "tp")
    model = parallel.extended_model(arch, weights="fp8", kv="bf16")
    eng = calibration.engine_for("fp8", prefill_skip=calibration.prefill_skip_of(arch))

    def step(batch, context):
        return np.asarray(predict.step_time(hw, model, Workload(batch=batch, context=context), eng))

    # the seed's L = 1024 and B = 128 stay where they were
    assert f"<span id='predstep'>{sci(float(step(128.0, 1024.0)))}</span>" in out["loaded"]
    B = np.asarray(out["B"])
    np.testing.assert_allclose(out["tp"], step(B, 1024.0), rtol=1e-9)
    # moving L moves the prediction
    assert f"<span id='predstep'>{sci(float(step(128.0, 32768.0)))}</span>" in out["long"]
    # vLLM's own time per layer (calibration.yaml's per_engine values)
    eng_v = calibration.engine_for("fp8", prefill_skip=calibration.prefill_skip_of(arch), engine="vllm")
    t_v = float(predict.step_time(hw, model, Workload(batch=128.0, context=32768.0), eng_v))
    assert f"<span id='predstep'>{sci(t_v)}</span>" in out["vllm"] and "vllm engine values" in out["vllm"]
    assert sci(t_v) != sci(float(step(128.0, 32768.0)))
    # back to the seed: no prediction
    assert "n/a" in out["back"] and out["tp_back"] == []
    # DeepSeek-V3 in bf16 on one 80 GB H100 (671e9 · 2 B > 80 GB): no predicted step, and why
    assert "<span id='predstep'>n/a</span>" in out["too_big"] and "does not fit" in out["too_big"]
