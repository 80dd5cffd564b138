"""`rooflax explore`: with a catalog hardware and model loaded, the calibrated prediction is drawn
and read out beside the bound — core.predict composed by hand, the same trees as
`query --predicted` (layout tp for a dense model, the replica's link, the extended model)."""

import numpy as np
import panel as pn

from rooflax.core import parallel, predict
from rooflax.core.specs import Workload
from rooflax.results import explore
from rooflax.sweeps import calibration, catalogs
from rooflax.sweeps import efficiency as eff


def _widgets(app) -> dict:
    return {w.name: w for w in app.select(pn.widgets.Widget)}


def _pred_pane(app):
    return next(p for p in app.select(pn.pane.HTML) if "rooflax-pred" in p.css_classes)


def test_loaded_pick_draws_and_reads_the_prediction():
    app = explore.build_app()
    assert "n/a" in _pred_pane(app).object  # the seed's numbers: no chip or layers to predict with
    w = _widgets(app)
    w["hardware"].value, w["chips"].value, w["precision"].value = "h200", 8, "fp8"
    w["model"].value, w["weights"].value = "llama-3.1-70b", "fp8"
    w["Load from catalog"].clicks += 1
    arch = catalogs.architecture("llama-3.1-70b")
    hw = catalogs.hardware("h200", chips=8.0, precision="fp8")
    hw = parallel.layout(hw.replace(link_bw=eff.replica_link_bw("h200", 8.0)), "tp")
    model = parallel.extended_model(arch, weights="fp8", kv="bf16")
    eng = calibration.engine_for("fp8", prefill_skip=calibration.prefill_skip_of(arch))
    # the seed's L = 1024 and B = 128 stay where they were
    want = float(predict.step_time(hw, model, Workload(batch=128.0, context=1024.0), eng))
    assert f"<span id='predstep'>{explore.sci(want)}</span>" in _pred_pane(app).object
    src = next(s for s in app.select(pn.pane.Bokeh)[0].object.select({"type": __import__(
        "bokeh.models", fromlist=["ColumnDataSource"]).ColumnDataSource}) if "tp" in s.data)
    B = np.asarray(src.data["B"])
    np.testing.assert_allclose(src.data["tp"], predict.step_time(
        hw, model, Workload(batch=B, context=1024.0), eng), rtol=1e-9)
    # moving L moves the prediction
    w["L — context (tokens)"].value = 32768.0
    want = float(predict.step_time(hw, model, Workload(batch=128.0, context=32768.0), eng))
    assert f"<span id='predstep'>{explore.sci(want)}</span>" in _pred_pane(app).object
    # back to the seed: no prediction
    w["model"].value = explore.SEED
    w["Load from catalog"].clicks += 1
    assert "n/a" in _pred_pane(app).object and len(src.data["tp"]) == 0
