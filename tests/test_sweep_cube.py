"""Sweeps end to end: real Zarr stores, resume after SIGKILL, LocalCluster, a real dask cluster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from rooflax import core as rc
from rooflax.sweeps import catalogs, store
from rooflax.sweeps import config as C
from rooflax.sweeps import run as R

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
#: `python -m distributed.cli.dask_<x>` with this interpreter: a copied venv's `bin/dask` may
#: carry another checkout's shebang (its workers would import that checkout's rooflax).
DASK = [sys.executable, "-m"]
HW = ["h100-sxm", "b200", "mi300x"]
MODELS = ["llama-3.1-8b", "deepseek-v3", "gpt-oss-120b"]


def write_config(tmp_path, name="c", store_name="cube.zarr", **over):
    data = {
        "axes": {"hardware": HW, "model": MODELS, "batch": {"log": [1, 8192], "num": 16},
                 "context": {"log": ["1k", "512k"], "num": 10}, "chips": 8,
                 "precision": {"weights": "fp8", "compute": "auto"}},
        "outputs": {"values": ["t_step", "throughput", "cost_per_mtok", "kv_share", "regime",
                               "b_star", "binding", "cost_per_mtok_at_b_star", "latency_floor",
                               "l_bal"],
                    "sensitivities": {"of": ["b_star", "cost_at_b_star"],
                                      "knobs": ["bw", "c_over_bw", "sparsity"]}},
        "chunks": {"hardware": 1, "context": 4},
        "store": str(tmp_path / store_name),
        "dtype": "float64",
    }
    for k, v in over.items():
        data[k] = v
    f = tmp_path / f"{name}.yaml"
    f.write_text(yaml.safe_dump(data))
    return f


def load(f):
    return C.load(f)


@pytest.mark.slow  # a sweep with sensitivities read in a fresh interpreter (make test-fast skips it)
def test_cube_values_plain_xarray(tmp_path):
    cfg = load(write_config(tmp_path))
    res = R.run(cfg, progress=False)
    assert res.blocks_total == 3 * 3 and res.blocks_run == res.blocks_total
    # plain xarray in a process that never imports rooflax
    code = textwrap.dedent(f"""
        import sys, numpy as np, xarray as xr
        ds = xr.open_zarr({res.path!r})
        assert not any(m.startswith("rooflax") for m in sys.modules), "rooflax imported"
        assert ds.attrs["rooflax_complete"] is True
        assert list(ds["t_step"].dims) == ["hardware", "model", "batch", "context"]
        assert list(ds["b_star"].dims) == ["hardware", "model", "context"]
        assert list(ds["l_bal"].dims) == ["hardware", "model"]
        for v in ds.data_vars:
            assert "units" in ds[v].attrs and "long_name" in ds[v].attrs, v
        np.savez({str(tmp_path / 'plain.npz')!r}, hardware=np.array([str(x) for x in ds.hardware.values]),
                 model=np.array([str(x) for x in ds.model.values]), **{{v: ds[v].values for v in
                 ["t_step", "cost_per_mtok", "b_star", "binding", "regime",
                  "elasticity__cost_at_b_star__bw", "latency_floor", "kv_share"]}},
                 batch=ds.batch.values, context=ds.context.values)
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=str(tmp_path), timeout=120)
    z = np.load(tmp_path / "plain.npz")
    assert list(z["hardware"]) == HW and list(z["model"]) == MODELS
    rng = np.random.default_rng(0)
    for _ in range(12):
        i, j = rng.integers(3), rng.integers(3)
        b, c = rng.integers(len(z["batch"])), rng.integers(len(z["context"]))
        peaks = catalogs.hardware_entry(HW[i])["peak_tflops_dense"]
        hw = catalogs.hardware(HW[i], chips=8, precision="fp8" if peaks.get("fp8") else "bf16")
        m = catalogs.model(MODELS[j], weights="fp8", kv="bf16")
        wl = rc.Workload(batch=float(z["batch"][b]), context=float(z["context"][c]))
        np.testing.assert_allclose(z["t_step"][i, j, b, c], rc.t_step(hw, m, wl), rtol=1e-12)
        np.testing.assert_allclose(z["cost_per_mtok"][i, j, b, c], rc.cost_per_mtok(hw, m, wl), rtol=1e-12)
        np.testing.assert_allclose(z["kv_share"][i, j, b, c], rc.kv_share(hw, m, wl), rtol=1e-12)
        assert z["regime"][i, j, b, c] == int(rc.regime(hw, m, wl))
        wl1 = rc.Workload(batch=1.0, context=float(z["context"][c]))
        np.testing.assert_allclose(z["b_star"][i, j, c], rc.b_star(hw, m, wl1), rtol=1e-12)
        assert z["binding"][i, j, c] == int(rc.binding(hw, m, wl1))
        np.testing.assert_allclose(z["latency_floor"][i, j], rc.latency_floor(hw, m), rtol=1e-12)
        s = rc.sensitivities(hw, m, wl1, outputs=("cost_at_b_star",), knobs=("bw",))
        np.testing.assert_allclose(z["elasticity__cost_at_b_star__bw"][i, j, c],
                                   s["elasticity"]["cost_at_b_star"]["bw"], rtol=1e-9)


@pytest.mark.slow  # three sweeps and a resume (make test-fast skips it)
def test_same_config_twice_identical_and_resume(tmp_path):
    f1 = write_config(tmp_path, "a", "a.zarr")
    f2 = write_config(tmp_path, "b", "b.zarr")
    R.run(load(f1), progress=False)
    # b: write the template and only some blocks, as a killed sweep would leave it
    cfg2 = load(f2)
    plan, todo = R.prepare(cfg2, "first-run")
    assert todo is None and plan.n_blocks == 9
    R.execute(plan, np.arange(4), "first-run", progress=False)
    store.release_lock(plan.store, "first-run")
    with pytest.raises(store.IncompleteCubeError, match="5 block"):
        store.open_cube(plan.store)
    res = R.run(cfg2, resume=True, progress=False)
    assert res.blocks_run == 5
    a, b = store.open_cube(tmp_path / "a.zarr").load(), store.open_cube(tmp_path / "b.zarr").load()
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())


def _wait_blocks(path, lo, timeout=90):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            n = int(store.done_mask(path).sum())
            if n >= lo:
                return n
        except Exception:
            pass
        time.sleep(0.05)
    raise TimeoutError("no blocks written")


def _many_blocks(tmp_path, name, store_name):
    return write_config(tmp_path, name, store_name, chunks={"hardware": 1, "model": 1, "context": 1},
                        axes={"hardware": HW, "model": MODELS, "batch": {"log": [1, 8192], "num": 16},
                              "context": {"log": ["1k", "512k"], "num": 4}, "chips": 8})


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_sigkill_then_resume_identical(tmp_path):
    ref = _many_blocks(tmp_path, "ref", "ref.zarr")
    R.run(load(ref), progress=False)
    f = _many_blocks(tmp_path, "k", "k.zarr")
    total = 3 * 3 * 4
    p = subprocess.Popen([str(BIN / "rooflax"), "sweep", str(f), "--quiet"], cwd=str(tmp_path),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        n = _wait_blocks(tmp_path / "k.zarr", 5)
        os.kill(p.pid, signal.SIGKILL)
        p.wait(30)
    finally:
        if p.poll() is None:
            p.kill()
    done = int(store.done_mask(tmp_path / "k.zarr").sum())
    assert n <= done < total, done
    with pytest.raises(store.IncompleteCubeError):
        store.open_cube(tmp_path / "k.zarr")
    r = subprocess.run([str(BIN / "rooflax"), "sweep", str(f), "--resume", "--quiet"],
                       cwd=str(tmp_path), capture_output=True, text=True, timeout=200)
    assert r.returncode == 0, r.stderr
    assert f"({total - done}/{total} blocks)" in r.stdout
    a = store.open_cube(tmp_path / "ref.zarr").load()
    b = store.open_cube(tmp_path / "k.zarr").load()
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_local_cluster_equals_threads(tmp_path, capsys):
    from distributed import LocalCluster
    f1 = write_config(tmp_path, "a", "a.zarr")
    f2 = write_config(tmp_path, "b", "b.zarr")
    R.run(load(f1), progress=False)
    capsys.readouterr()
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", processes=True,
                      dashboard_address=":0") as cluster:
        R.run(load(f2), scheduler=cluster.scheduler_address, progress=False)
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("sweep: ")]
    assert lines[0].startswith("sweep: 1/9 blocks") and lines[-1].startswith("sweep: 9/9 blocks")
    a, b = store.open_cube(tmp_path / "a.zarr").load(), store.open_cube(tmp_path / "b.zarr").load()
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_dask_cluster_scale_out_and_worker_kill(tmp_path):
    sched_file = tmp_path / "scheduler.json"
    procs = []
    env = dict(os.environ, DASK_DISTRIBUTED__WORKER__DAEMON="False")
    try:
        procs.append(subprocess.Popen([*DASK, "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                       "--port", "0", "--no-dashboard", "--scheduler-file",
                                       str(sched_file)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, env=env))
        t0 = time.time()
        while not sched_file.exists() and time.time() - t0 < 60:
            time.sleep(0.2)
        import json
        addr = json.loads(sched_file.read_text())["address"]
        for _ in range(2):
            procs.append(subprocess.Popen([*DASK, "distributed.cli.dask_worker", addr, "--nthreads", "1",
                                           "--no-dashboard", "--host", "127.0.0.1"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          env=env))
        from distributed import Client
        with Client(addr, timeout="60s") as c:
            c.wait_for_workers(2, timeout=90)
        ref = _many_blocks(tmp_path, "ref", "ref.zarr")
        R.run(load(ref), progress=False)
        # the same job on the cluster, through the CLI and DASK_SCHEDULER_ADDRESS
        f = _many_blocks(tmp_path, "c", "c.zarr")
        r = subprocess.run([str(BIN / "rooflax"), "sweep", str(f), "--quiet"], cwd=str(tmp_path),
                           env=dict(env, DASK_SCHEDULER_ADDRESS=addr), capture_output=True,
                           text=True, timeout=200)
        assert r.returncode == 0, r.stderr
        lines = [ln for ln in r.stderr.splitlines() if ln.startswith("sweep: ")]  # non-TTY bar
        assert lines[0].startswith("sweep: 1/36 blocks"), r.stderr
        assert lines[-1].startswith("sweep: 36/36 blocks"), r.stderr
        a = store.open_cube(tmp_path / "ref.zarr").load().drop_attrs()
        xr.testing.assert_identical(a, store.open_cube(tmp_path / "c.zarr").load().drop_attrs())
        # again, killing one worker mid-sweep
        f2 = _many_blocks(tmp_path, "k", "k.zarr")
        p = subprocess.Popen([str(BIN / "rooflax"), "sweep", str(f2), "--scheduler", addr,
                              "--quiet"], cwd=str(tmp_path), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
        _wait_blocks(tmp_path / "k.zarr", 10)
        os.kill(procs[1].pid, signal.SIGKILL)
        out, err = p.communicate(timeout=200)
        assert p.returncode == 0, err
        xr.testing.assert_identical(a, store.open_cube(tmp_path / "k.zarr").load().drop_attrs())
    finally:
        for q in reversed(procs):
            if q.poll() is None:
                q.terminate()
        for q in procs:
            try:
                q.wait(20)
            except subprocess.TimeoutExpired:
                q.kill()
