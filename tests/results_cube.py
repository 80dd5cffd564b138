"""A small result cube built from core functions, in the cube contract's layout (tests of rooflax.results).

Dims ``hardware × model × batch × context`` with the catalog fields as coordinates;
batch-free variables (B*, sensitivities) have no batch dimension. Written with plain
xarray ``to_zarr`` and reopened, so the tests read what a saved cube gives them.
When ``rooflax.sweeps`` writes cubes, this fixture can switch to a real sweep.
"""

from __future__ import annotations

import numpy as np

HARDWARE = ("h100-sxm", "h200")
MODELS = ("deepseek-v3", "llama-3.1-70b")
BATCH = tuple(float(2**i) for i in range(0, 15))  # 1 … 16384
CONTEXT = (1024.0, 8192.0, 32768.0)
CHIPS = 8.0
KNOBS = ("bw", "c_over_bw", "sparsity", "capacity", "price", "context")

UNITS = {
    "t_compute": ("s", "compute time per step"), "t_memory": ("s", "memory time per step"),
    "t_step": ("s", "time per decode step"), "throughput": ("tokens/s", "throughput per replica"),
    "latency": ("s", "latency per token"), "cost_per_token": ("$", "cost per token"),
    "cost_per_mtok": ("$/Mtok", "cost per million tokens"), "mfu": ("1", "MFU"),
    "kv_share": ("1", "KV share"), "regime": ("code", "regime"), "b_x": ("seqs", "crossover batch"),
    "b_max": ("seqs", "capacity batch"), "b_slo": ("seqs", "SLO batch"),
    "b_star": ("seqs", "optimal batch"), "binding": ("code", "binding constraint"),
    "cost_at_b_star": ("$", "cost per token at B*"),
    "cost_per_mtok_at_b_star": ("$/Mtok", "cost per Mtok at B*"),
    "latency_at_b_star": ("s", "latency at B*"), "throughput_at_b_star": ("tokens/s", "throughput at B*"),
    "l_crit": ("tokens", "critical context"), "l_bal": ("tokens", "balanced context"),
    "latency_floor": ("s", "latency floor"), "cost_floor": ("$", "cost floor"),
}
BATCHED = ("t_compute", "t_memory", "t_step", "throughput", "latency", "cost_per_token",
           "cost_per_mtok", "mfu", "kv_share", "regime", "l_crit")


def build_dataset():
    import xarray as xr

    from rooflax import core as rc
    from rooflax.sweeps import catalogs

    hws = [catalogs.hardware(h, chips=CHIPS, precision="fp8") for h in HARDWARE]
    mds = [catalogs.model(m, weights="fp8") for m in MODELS]
    hw = rc.stack(hws, axis=0, ndim=4)
    md = rc.stack(mds, axis=1, ndim=4)
    B = rc.along(np.array(BATCH), 2, 4)
    L = rc.along(np.array(CONTEXT), 3, 4)
    wl = rc.Workload(batch=B, context=L)
    wl1 = rc.Workload(batch=np.ones((1, 1, 1, 1)), context=L)
    full = (len(HARDWARE), len(MODELS), len(BATCH), len(CONTEXT))
    dims4 = ("hardware", "model", "batch", "context")
    dims3 = ("hardware", "model", "context")
    data = {}
    for name in UNITS:
        fn = getattr(rc, name)
        if name in ("l_bal", "latency_floor"):
            arr = np.broadcast_to(np.asarray(fn(hw, md)), full[:2] + (1, 1))[:, :, 0, :]
            arr = np.broadcast_to(arr, full[:2] + (len(CONTEXT),))
            dims = dims3
        elif name in BATCHED:
            arr, dims = np.broadcast_to(np.asarray(fn(hw, md, wl)), full), dims4
        else:
            arr = np.broadcast_to(np.asarray(fn(hw, md, wl1)), full[:2] + (1, len(CONTEXT)))[:, :, 0]
            dims = dims3
        data[name] = xr.Variable(dims, np.array(arr), attrs={"units": UNITS[name][0],
                                                             "long_name": UNITS[name][1]})
    s = rc.sensitivities(hw, md, wl1, knobs=KNOBS)
    for o in s["partial"]:
        for k in KNOBS:
            for kind in ("partial", "elasticity"):
                arr = np.broadcast_to(np.asarray(s[kind][o][k]), full[:2] + (1, len(CONTEXT)))[:, :, 0]
                data[f"{kind}__{o}__{k}"] = xr.Variable(
                    dims3, np.array(arr), attrs={"units": "1" if kind == "elasticity" else "mixed",
                                                 "long_name": f"{kind} of {o} by {k}"})
    reason = np.broadcast_to(np.asarray(s["reason"]), full[:2] + (1, len(CONTEXT)))[:, :, 0]
    data["sensitivity_reason"] = xr.Variable(dims3, np.array(reason, dtype=np.int8),
                                             attrs={"units": "code", "long_name": "reason"})
    coords = {
        "hardware": np.array(HARDWARE, dtype=object), "model": np.array(MODELS, dtype=object),
        "batch": list(BATCH), "context": list(CONTEXT),
        "hardware_name": ("hardware", np.array(HARDWARE, dtype=object)),
        "bw": ("hardware", [float(h.bw) for h in hws]),
        "c_over_bw": ("hardware", [float(h.c_over_bw) for h in hws]),
        "capacity": ("hardware", [float(h.capacity) for h in hws]),
        "price_per_hour": ("hardware", [float(h.price) * 3600 for h in hws]),
        "chips": ("hardware", [float(h.chips) for h in hws]),
        "n_total": ("model", [float(m.n_total) for m in mds]),
        "n_active": ("model", [float(m.n_active) for m in mds]),
        "sparsity": ("model", [float(m.sparsity) for m in mds]),
        "kv_bytes_per_token": ("model", [float(m.kv_bytes_per_token) for m in mds]),
        "bytes_per_weight": ("model", [float(m.bytes_per_weight) for m in mds]),
    }
    ds = xr.Dataset(data, coords=coords, attrs={"rooflax_version": "test", "rooflax_config": "{}",
                                            "rooflax_complete": True,
                                            "rooflax_dims": list(dims4)})
    ds["batch"].attrs.update(units="seqs", long_name="batch")
    ds["context"].attrs.update(units="tokens", long_name="context")
    return ds


def write_cube(path) -> str:
    import xarray as xr

    ds = build_dataset()
    ds.to_zarr(str(path), mode="w")
    xr.open_zarr(str(path)).close()
    return str(path)
