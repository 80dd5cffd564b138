"""Issue 12: a cube is never lost, mixed or passed off — overwrite safety, one run per store,
crash-safe start and finish, missing cells visible to plain xarray, caps, progress, errors."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml
from typer.testing import CliRunner

from rooflax.results.cli import app
from rooflax.sweeps import config as C
from rooflax.sweeps import run as R
from rooflax.sweeps import store

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
#: `python -m distributed.cli.dask_<x>` with this interpreter: a copied venv's `bin/dask` may
#: carry another checkout's shebang (its workers would import that checkout's rooflax).
DASK = [sys.executable, "-m"]


def tiny(tmp_path, name="t", store_name="cube.zarr", chips=8, **over):
    """2 hardware × 1 model × 8 batch × 4 context, 4 blocks, with sensitivities."""
    data = {
        "axes": {"hardware": ["h100-sxm", "b200"], "model": ["llama-3.1-8b"],
                 "batch": {"log": [1, 4096], "num": 8}, "context": [1024, 8192, 65536, 524288],
                 "chips": chips},
        "outputs": {"values": ["t_step", "regime", "b_star", "binding", "cost_per_mtok_at_b_star"],
                    "sensitivities": {"of": ["b_star"], "knobs": ["bw", "c_over_bw"]}},
        "chunks": {"hardware": 1, "context": 2},
        "store": str(tmp_path / store_name),
        "dtype": "float64",
    }
    data.update(over)
    f = tmp_path / f"{name}.yaml"
    f.write_text(yaml.safe_dump(data))
    return f


def cli(*args):
    r = CliRunner().invoke(app, ["sweep", *map(str, args)])
    return r.exit_code, r.stdout, r.stderr


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every path under root (links not followed) → its bytes (files) or link target."""
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "link->" + os.readlink(p)
            elif p.is_file():
                out[rel] = p.read_bytes()
            else:
                out[rel] = "dir"
    return out


def data_files(cube: Path) -> dict[str, bytes]:
    """The cube's chunk bytes and markers (every file but metadata documents)."""
    return {k: v for k, v in snapshot(cube).items() if isinstance(v, bytes)
            and not k.endswith("zarr.json")}


def one_line_error(code, err):
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err


# --- 1. --overwrite replaces only a rooflax cube -------------------------------------------

def test_overwrite_refuses_a_users_xarray_dataset(tmp_path):
    user = tmp_path / "cube.zarr"
    xr.Dataset({"t": ("x", np.arange(3.0))}).to_zarr(user, zarr_format=3, consolidated=False)
    (user / "README").write_text("my data\n")
    before = snapshot(tmp_path)
    code, _, err = cli(tiny(tmp_path), "--overwrite", "--quiet")
    one_line_error(code, err)
    assert "not a rooflax cube" in err
    assert snapshot(tmp_path) == {**before, "t.yaml": (tmp_path / "t.yaml").read_bytes()}


def test_overwrite_refuses_a_bare_zarr_json_with_user_files(tmp_path):
    user = tmp_path / "cube.zarr"
    (user / "src").mkdir(parents=True)
    (user / "zarr.json").write_text("{}")
    (user / "src" / "main.py").write_text("print('mine')\n")
    (user / "thesis.tex").write_text("\\documentclass{article}\n")
    f = tiny(tmp_path)
    before = snapshot(tmp_path)
    code, _, err = cli(f, "--overwrite", "--quiet")
    one_line_error(code, err)
    assert snapshot(tmp_path) == before


def test_overwrite_symlink_and_extra_files_refused_cube_replaced_by_rename(tmp_path):
    real = tmp_path / "real.zarr"
    R.run(C.load(tiny(tmp_path, "a", "real.zarr")), progress=False)
    (tmp_path / "cube.zarr").symlink_to(real)
    f = tiny(tmp_path, "b", "cube.zarr", chips=4)
    before = snapshot(tmp_path)
    code, _, err = cli(f, "--overwrite", "--quiet")
    one_line_error(code, err)
    assert "symbolic link" in err
    assert snapshot(tmp_path) == before
    # a cube with a user's file inside is not only a cube
    (tmp_path / "cube.zarr").unlink()
    (real / "NOTES.md").write_text("keep me\n")
    before = snapshot(tmp_path)
    code, _, err = cli(tiny(tmp_path, "c", "real.zarr", chips=4), "--overwrite", "--quiet")
    one_line_error(code, err)
    assert "NOTES.md" in err
    snap = snapshot(tmp_path)
    assert {k: v for k, v in snap.items() if k != "c.yaml"} == before
    # a real cube of another config is replaced, nothing of ours is left beside it
    (real / "NOTES.md").unlink()
    code, out, err = cli(tiny(tmp_path, "d", "real.zarr", chips=4), "--overwrite", "--quiet")
    assert code == 0, err
    ds = store.open_cube(real)
    assert C.load(tmp_path / "d.yaml").normalized_json() == ds.attrs["rooflax_config"]
    assert float(ds["chips"].values[0]) == 4.0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("real")) == ["real.zarr"]


# --- 2. one run owns a store ---------------------------------------------------------------

def _lock_for(path, pid, run_id="other-run"):
    import socket
    store.lock_path(path).write_text(json.dumps(
        {"pid": pid, "host": socket.gethostname(), "run_id": run_id, "started": "t"}))


def test_live_lock_refuses_plain_resume_and_overwrite(tmp_path):
    f = tiny(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        _lock_for(tmp_path / "cube.zarr", holder.pid)
        for extra in ([], ["--resume"], ["--overwrite"], ["--break-lock"]):
            code, _, err = cli(f, "--quiet", *extra)
            one_line_error(code, err)
            assert f"pid {holder.pid}" in err and "other-run" in err and "still running" in err
        assert not (tmp_path / "cube.zarr").exists()
    finally:
        holder.kill()
        holder.wait()
    # the holder is dead now: a stale lock, reported, then broken explicitly
    code, _, err = cli(f, "--quiet")
    one_line_error(code, err)
    assert "stale lock" in err and "--break-lock" in err
    assert not (tmp_path / "cube.zarr").exists()
    code, out, err = cli(f, "--quiet", "--break-lock")
    assert code == 0, err
    assert "(4/4 blocks)" in out
    assert not store.lock_path(tmp_path / "cube.zarr").exists()


def test_second_run_never_mixes_into_a_running_one(tmp_path):
    """Writer A holds the store; B (other config, --overwrite) refuses; if A's lock is broken
    and B takes the cube over, A's next block write and its completion refuse."""
    fa = tiny(tmp_path, "a")
    plan, todo = R.prepare(C.load(fa), "run-a")
    R.execute(plan, np.arange(2), "run-a", progress=False)
    fb = tiny(tmp_path, "b", chips=16)
    with pytest.raises(store.LockedError, match="run-a"):
        R.run(C.load(fb), overwrite=True, progress=False)
    with pytest.raises(store.LockedError, match="run-a"):
        R.run(C.load(fa), resume=True, progress=False)
    store.lock_path(plan.store).unlink()  # A's lock is lost (broken by hand)
    res = R.run(C.load(fa), resume=True, progress=False)  # B finishes A's cube
    assert res.blocks_run == 2
    ref = store.open_cube(plan.store).load()
    with pytest.raises(store.StoreError, match="taken over"):
        R.execute(plan, np.arange(2, 4), "run-a", progress=False)
    with pytest.raises(store.StoreError, match="taken over"):
        store.mark_complete(plan.store, "run-a")
    xr.testing.assert_identical(ref, store.open_cube(plan.store).load())


# --- 3. crash-safe start and finish --------------------------------------------------------

@pytest.mark.slow  # kill and resume, one process per stage (make test-fast skips it)
@pytest.mark.parametrize("stage", store.FAULT_STAGES)
def test_sigkill_at_each_stage_then_resume_is_bitwise_identical(tmp_path, stage):
    ref = tiny(tmp_path, "ref", "ref.zarr")
    R.run(C.load(ref), progress=False)
    f = tiny(tmp_path, "k", "k.zarr")
    args = [str(BIN / "rooflax"), "sweep", str(f), "--quiet"]
    if stage == "swap":  # only --overwrite swaps: over a cube of another config
        R.run(C.load(tiny(tmp_path, "o", "k.zarr", chips=2)), progress=False)
        args.append("--overwrite")
    r = subprocess.run(args, cwd=str(tmp_path), env=dict(os.environ, ROOFLAX_FAULT=stage),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == -signal.SIGKILL, r.stderr
    res = R.run(C.load(f), resume=True, progress=False)
    assert res.blocks_total == 4
    assert data_files(tmp_path / "k.zarr") == data_files(tmp_path / "ref.zarr")
    a = store.open_cube(tmp_path / "ref.zarr").load()
    b = store.open_cube(tmp_path / "k.zarr").load()
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("k.zarr"))
    assert leftovers == ["k.zarr"], leftovers


def test_disk_full_template_and_block_one_line_then_resume(tmp_path, monkeypatch):
    f = tiny(tmp_path)
    real_template, real_block = store.write_template, store.write_block

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "cube.zarr"))
    monkeypatch.setattr(store, "write_template", full)
    code, _, err = cli(f, "--quiet")
    one_line_error(code, err)
    assert "disk full (ENOSPC)" in err and f"rooflax sweep {f} --resume" in err
    assert not (tmp_path / "cube.zarr").exists()
    monkeypatch.setattr(store, "write_template", real_template)
    calls = []

    def full_later(*a, **k):
        calls.append(1)
        if len(calls) > 1:
            raise OSError(errno.EROFS, "Read-only file system")
        return real_block(*a, **k)
    monkeypatch.setattr(store, "write_block", full_later)
    code, _, err = cli(f, "--quiet", "--resume")
    one_line_error(code, err)
    assert "read-only file system (EROFS)" in err and "--resume" in err
    monkeypatch.setattr(store, "write_block", real_block)
    code, out, err = cli(f, "--quiet", "--resume")
    assert code == 0, err
    assert "/4 blocks)" in out and "(4/4" not in out
    assert not store.lock_path(tmp_path / "cube.zarr").exists()


@pytest.mark.parametrize("sig,expected", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
@pytest.mark.slow  # kill and resume (make test-fast skips it)
def test_sigterm_and_sigint_say_how_to_resume(tmp_path, monkeypatch, sig, expected):
    f = tiny(tmp_path)
    real = R._run_block
    sent = []

    def killing(plan, index, run_id):
        out = real(plan, index, run_id)
        if not sent:  # once: as a user's Ctrl-C / a scheduler's SIGTERM
            sent.append(index)
            os.kill(os.getpid(), sig)
        return out
    monkeypatch.setattr(R, "_run_block", killing)
    code, _, err = cli(f, "--quiet")
    assert code == expected, err
    assert signal.Signals(sig).name in err and f"rooflax sweep {f} --resume" in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert not store.lock_path(tmp_path / "cube.zarr").exists()
    monkeypatch.setattr(R, "_run_block", real)
    code, out, err = cli(f, "--quiet", "--resume")
    assert code == 0, err
    assert store.is_complete(tmp_path / "cube.zarr")


def test_unreachable_scheduler_refused_before_anything_is_written(tmp_path):
    f = tiny(tmp_path)
    code, _, err = cli(f, "--quiet", "--scheduler", "tcp://127.0.0.1:9")
    one_line_error(code, err)
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.yaml"]


# --- 4. missing never looks valid ----------------------------------------------------------

def test_plain_xarray_shows_unwritten_cells_as_missing(tmp_path):
    f = tiny(tmp_path)
    plan, _ = R.prepare(C.load(f), "run-x")
    R.execute(plan, np.array([0]), "run-x", progress=False)  # hardware 0, contexts 0-1
    store.release_lock(plan.store, "run-x")
    ds = xr.open_zarr(plan.store, consolidated=False)  # plain xarray, default decoding
    assert ds.attrs["rooflax_complete"] is False
    for v in ("binding", "regime", "sensitivity_reason", "b_star", "t_step"):
        a = ds[v].values
        written = a[(0,) + (slice(None),) * (a.ndim - 2) + (slice(0, 2),)]
        assert np.isfinite(written).all(), v
        assert np.isnan(a[1]).all() and np.isnan(a[0, ..., 2:]).all(), v
    code, out, err = cli(f, "--quiet", "--resume")
    assert code == 0 and "(3/4 blocks)" in out, err
    done = store.open_cube(plan.store)
    assert done["binding"].dtype == np.int8 and done["sensitivity_reason"].dtype == np.uint8
    assert int(done["binding"].min()) >= 0


def test_float32_cube_derivatives_match_float64(tmp_path):
    """Derivatives are taken in float64 whatever the storage dtype: a float32 cube holds the
    float64 cube's derivatives rounded to float32 (no +inf where the reason says ok)."""
    axes = {"hardware": {"bw": {"log": ["1 TB/s", "30 TB/s"], "num": 16},
                         "c_over_bw": {"log": [50, 2000], "num": 16},
                         "capacity": "288 GB", "price_per_hour": "4 $/h", "chips": 8},
            "model": {"sparsity": {"log": [1, 64], "num": 8}, "n_total": 671e9,
                      "kv_bytes_per_token": 70272},
            "batch": [1, 64], "context": {"log": ["1k", "1M"], "num": 16}, "precision": "fp8"}
    outs = {"values": ["b_star"], "sensitivities": {"of": ["b_star"], "knobs": ["c_over_bw"],
                                                    "kind": ["partial"]}}
    cubes = {}
    for dt in ("float32", "float64"):
        f = tiny(tmp_path, dt, f"{dt}.zarr", axes=axes, outputs=outs, dtype=dt, chunks={})
        cubes[dt] = store.open_cube(R.run(C.load(f), progress=False).path).load()
    a, b = cubes["float32"], cubes["float64"]
    np.testing.assert_array_equal(a["sensitivity_reason"], b["sensitivity_reason"])
    for v in a.data_vars:
        if "__" in v:
            assert np.isfinite(a[v].values[a["sensitivity_reason"].values == 0]).all(), v
            np.testing.assert_allclose(a[v].values, b[v].values, rtol=1e-6, err_msg=v)


# --- 5. scale ------------------------------------------------------------------------------

def test_huge_grid_refused_in_one_line_and_dry_run_allocates_nothing_per_block(tmp_path):
    axes = {"hardware": {"bw": {"log": ["1 TB/s", "30 TB/s"], "num": 10000},
                         "c_over_bw": {"log": [50, 2000], "num": 10000},
                         "capacity": "288 GB", "price_per_hour": "4 $/h", "chips": 8},
            "model": {"sparsity": {"log": [1, 64], "num": 1000}, "n_total": 671e9,
                      "kv_bytes_per_token": 70272},
            "batch": {"log": [1, 65536], "num": 100}, "context": {"log": ["1k", "1M"], "num": 100},
            "precision": "fp8"}
    f = tiny(tmp_path, axes=axes, chunks={}, dtype="float32")
    code, _, err = cli(f, "--quiet")
    one_line_error(code, err)
    assert "expected at most 1e+11 points (--max-points), found 1e+15" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.yaml"]
    plan = R.grid.build(C.load(f))
    assert plan.n_blocks * np.prod(plan.block_shape, dtype=float) >= 1e15
    with pytest.raises(store.StoreError, match="blocks"):
        R.check_caps(plan, max_points=10**16)
    R.check_caps(plan, max_points=10**16, max_blocks=10**12)
    info = R.dry_run(C.load(f), measure=False)
    assert info["points"] == 10**15 and "1e+15" in info["over_caps"]


def test_progress_lines_from_the_first_block_threads(tmp_path):
    f = tiny(tmp_path)
    code, out, err = cli(f, "--quiet")
    assert code == 0, err
    lines = [ln for ln in err.splitlines() if ln.startswith("sweep: ")]
    assert lines[0].startswith("sweep: 1/4 blocks") and lines[-1].startswith("sweep: 4/4 blocks")
    assert all("ETA" in ln for ln in lines)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_lost_scheduler_one_line_then_resume(tmp_path):
    """A real `dask scheduler` + worker; the scheduler is killed mid-sweep: one line naming the
    cause and the resume command, exit 2; `--resume` (threads) finishes the cube."""
    import time
    sched_file = tmp_path / "scheduler.json"
    env = dict(os.environ, DASK_DISTRIBUTED__WORKER__DAEMON="False")
    procs = [subprocess.Popen([*DASK, "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(sched_file)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)]
    try:
        t0, addr = time.time(), None
        while addr is None and time.time() - t0 < 60:
            time.sleep(0.2)
            try:
                addr = json.loads(sched_file.read_text())["address"]
            except (OSError, ValueError, KeyError):
                pass
        procs.append(subprocess.Popen([*DASK, "distributed.cli.dask_worker", addr, "--nthreads", "1",
                                       "--no-dashboard", "--host", "127.0.0.1"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
        f = tiny(tmp_path, chunks={"hardware": 1, "context": 1},
                 axes={"hardware": ["h100-sxm", "b200", "mi300x"], "model": ["llama-3.1-8b"],
                       "batch": {"log": [1, 4096], "num": 8},
                       "context": {"log": ["1k", "512k"], "num": 40}, "chips": 8})
        p = subprocess.Popen([str(BIN / "rooflax"), "sweep", str(f), "--quiet", "--scheduler", addr],
                             cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env)
        cube = tmp_path / "cube.zarr"
        t0 = time.time()
        while time.time() - t0 < 120:
            if store.has_markers(cube) and store.done_mask(cube).sum() >= 3:
                break
            time.sleep(0.1)
        procs[0].kill()
        out, err = p.communicate(timeout=200)
        assert p.returncode == 2, err
        lines = [ln for ln in err.splitlines() if not ln.startswith("sweep: ")]
        assert len(lines) == 1 and "lost the Dask scheduler" in lines[0], err
        assert f"rooflax sweep {f} --resume --scheduler {addr}" in lines[0]
        assert not store.lock_path(cube).exists()
    finally:
        for q in reversed(procs):
            if q.poll() is None:
                q.kill()
            q.wait(30)
    code, out, err = cli(f, "--quiet", "--resume")
    assert code == 0, err
    assert store.is_complete(cube)


def test_open_handles_belong_to_the_plan_and_never_travel(tmp_path):
    """No module-level cache: the plan that writes holds its Zarr handles, by store and run; a
    pickled plan (a Dask worker's copy) carries none and opens its own."""
    import pickle

    plan, _ = R.prepare(C.load(tiny(tmp_path)), "run-h")
    assert plan.handles == {}
    R.execute(plan, np.arange(2), "run-h", progress=False)
    assert list(plan.handles) == [f"{Path(plan.store).absolute()}#run-h"]
    copy = pickle.loads(pickle.dumps(plan))
    assert copy.handles == {} and copy.store == plan.store
    R.execute(copy, np.arange(2, 4), "run-h", progress=False)
    assert list(copy.handles) == list(plan.handles)
    store.mark_complete(plan.store, "run-h")
    store.release_lock(plan.store, "run-h")
    assert store.is_complete(plan.store) and store.done_mask(plan.store).all()
    assert not [k for k, v in vars(store).items() if isinstance(v, dict) and not k.startswith("__")]
