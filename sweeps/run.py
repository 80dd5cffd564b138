"""Run a sweep: lock the store, build the template aside, then one task per block (compute +
region write + marker), a bounded number in flight, then consolidate and mark complete.

Schedulers:

* embedded (default): a thread pool in this process. jitted XLA code releases the GIL, so
  threads use both cores with no pickling or inter-process copies. Measured on the 1e8-point
  benchmark grid (benchmarks/bench_sweep.py config, this 2-core machine): threads 6.7 s;
  ``LocalCluster`` (2 workers × 1 thread, 127.0.0.1) 11.9 s for the run, 13.1 s including
  its start. Threads it is. Blocks are fed through a sliding window (``2 × workers`` in
  flight): no task graph of every block, so memory follows the block size, not the grid.
* ``scheduler="tcp://host:port"`` (or env ``DASK_SCHEDULER_ADDRESS``): the same tasks on an
  existing ``distributed`` cluster, through the same window; a lost worker's blocks are rerun
  elsewhere (writes are idempotent: a block always writes the same chunks). The scheduler is
  contacted before anything is written.
"""

from __future__ import annotations

import math
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rooflax.core import enable_x64

from . import config as C
from . import grid, store

#: Default caps, checked right after the (1-D) coordinates are built, before any allocation
#: that grows with the grid. ``--max-points`` / ``--max-blocks`` lift them.
MAX_POINTS = 10**11
MAX_BLOCKS = 10**6
SCHEDULER_TIMEOUT_S = 10


class SchedulerError(RuntimeError):
    """The Dask scheduler cannot be reached, or was lost mid-run."""


@dataclass
class Result:
    path: str
    blocks_total: int
    blocks_run: int
    points: int
    seconds: float


def version() -> str:
    try:
        from importlib.metadata import version as v
        return v("rooflax")
    except Exception:
        return "0.0.0"


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def check_caps(plan: grid.Plan, max_points: int | None = None, max_blocks: int | None = None) -> None:
    """Refuse a grid above the caps (one line, the numbers and the option that lifts it)."""
    mp = MAX_POINTS if max_points is None else max_points
    mb = MAX_BLOCKS if max_blocks is None else max_blocks
    if plan.size > mp:
        raise store.StoreError(f"grid: expected at most {mp:.3g} points (--max-points), found "
                               f"{plan.size:.3g} ({' × '.join(map(str, plan.shape))})")
    if plan.n_blocks > mb:
        raise store.StoreError(f"grid: expected at most {mb:.3g} blocks (--max-blocks), found "
                               f"{plan.n_blocks:.3g} of {math.prod(plan.block_shape):,} points; "
                               f"raise target_block_points or chunks")


def _run_block(plan: grid.Plan, index: tuple[int, ...], run_id: str) -> tuple[int, ...]:
    """One block task (a thread here or a Dask worker process): compute it (float64 on in this
    process, :func:`~rooflax.sweeps.compute.compute_block`) and write it."""
    from .compute import compute_block
    values, sl = compute_block(plan, index)
    store.write_block(plan.store, plan, index, values, sl, run_id)
    return index


def _check_store(plan: grid.Plan, *, resume: bool, overwrite: bool) -> str:
    """'create' or 'resume' for this store, or a :class:`StoreError` (reads only)."""
    path = Path(plan.store)
    if path.is_symlink():
        raise store.StoreError(f"store {plan.store!r}: expected a directory, found a symbolic "
                               f"link (rooflax never follows one; give the real path)")
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return "create"
    if overwrite:
        problem = store.cube_problem(path)
        if problem:
            raise store.StoreError(f"store {plan.store!r}: --overwrite replaces only a rooflax "
                                   f"cube, and this {problem}; nothing was touched")
        return "create"
    attrs = store.read_attrs(path)
    if attrs is None or "rooflax_config" not in attrs:
        raise store.StoreError(
            f"store {plan.store!r}: expected a new path or a rooflax cube, found an existing "
            f"{'directory' if path.is_dir() else 'file'} that is not one (choose another store)")
    if attrs["rooflax_config"] != plan.config_json:
        raise store.StoreError(
            f"store {plan.store!r}: expected a cube of this config, found a cube made by another "
            f"config; use --overwrite to replace it or choose another store")
    if not resume:
        raise store.StoreError(
            f"store {plan.store!r} already exists; expected --resume (finish it) or "
            f"--overwrite (replace it)")
    return "resume"


def prepare(cfg: C.SweepConfig, run_id: str, *, resume: bool = False, overwrite: bool = False,
            break_lock: bool = False, max_points: int | None = None,
            max_blocks: int | None = None,
            plan: grid.Plan | None = None) -> tuple[grid.Plan, np.ndarray | None]:
    """Lock the store and make it ready; return the plan and the flat indices of the blocks to
    run (None: all of them). The caller releases the lock (``store.release_lock``)."""
    plan = plan or grid.build(cfg)
    check_caps(plan, max_points, max_blocks)
    _check_store(plan, resume=resume, overwrite=overwrite)  # refuse before writing anything
    notice = store.acquire_lock(plan.store, run_id, break_lock=break_lock, break_stale=resume)
    if notice:
        print(f"note: store {plan.store!r}: {notice}", file=sys.stderr)
    try:
        if _check_store(plan, resume=resume, overwrite=overwrite) == "create":
            Path(plan.store).parent.mkdir(parents=True, exist_ok=True)
            store.create(plan, plan.store, version(), run_id)
            return plan, None
        store.set_root_attrs(plan.store, rooflax_run_id=run_id)
        if not store.has_markers(plan.store):  # markers lost: nothing can be trusted
            store.write_markers(plan, plan.store)
            return plan, None
        if store.is_complete(plan.store):
            return plan, np.empty(0, dtype=np.int64)
        return plan, store.missing_blocks(plan.store)
    except BaseException:
        store.release_lock(plan.store, run_id)
        raise


class _Progress:
    """A rich bar on a TTY; otherwise one stderr line at the first block, every 2 s, and the
    last: ``sweep: n/N blocks, E s elapsed, ETA s``."""

    def __init__(self, total: int, tty: bool):
        self.total, self.n, self.t0, self.tty = total, 0, time.perf_counter(), tty
        self.last = 0.0
        self.bar = None
        if tty and total:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            self.bar = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                transient=False)
            self.bar.start()
            self.task = self.bar.add_task("blocks", total=total)

    def step(self) -> None:
        self.n += 1
        if self.bar is not None:
            self.bar.advance(self.task)
            return
        now = time.perf_counter()
        if self.n == 1 or now - self.last > 2.0 or self.n == self.total:
            el = now - self.t0
            eta = el / self.n * (self.total - self.n)
            print(f"sweep: {self.n}/{self.total} blocks, {el:.1f}s elapsed, ETA {eta:.1f}s",
                  file=sys.stderr, flush=True)
            self.last = now

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _blocks(plan: grid.Plan, todo: np.ndarray | None) -> Iterator[tuple[int, ...]]:
    flat = range(plan.n_blocks) if todo is None else todo
    return (plan.block_index(i) for i in flat)


def _threads(plan, todo, run_id, step: Callable, workers: int) -> None:
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
    ex = ThreadPoolExecutor(workers, thread_name_prefix="rooflax-block")
    pending: set = set()
    try:
        for b in _blocks(plan, todo):
            while len(pending) >= 2 * workers:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    f.result()
                    step()
            pending.add(ex.submit(_run_block, plan, b, run_id))
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                f.result()
                step()
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def _distributed(plan, todo, run_id, step: Callable, client) -> None:
    from distributed import as_completed
    window = 2 * max(1, sum(client.nthreads().values()))
    plan_f = client.scatter(plan, broadcast=True)
    ac = as_completed(loop=client.loop)
    for b in _blocks(plan, todo):
        while ac.count() >= window:
            next(ac).result()
            step()
        ac.add(client.submit(_run_block, plan_f, b, run_id, pure=False, retries=2,
                             key=f"rooflax-block-{run_id}-{'-'.join(map(str, b))}"))
    for f in ac:
        f.result()
        step()


def _from_cluster(e: BaseException) -> bool:
    """An error of the cluster's plumbing (comm closed, future cancelled...), not of a block."""
    return type(e).__module__.startswith(("distributed", "asyncio")) or \
        "Cancelled" in type(e).__name__


def _lost(client) -> bool:
    return client.status not in ("running", "connecting")


def execute(plan: grid.Plan, todo: np.ndarray | None, run_id: str, *, client=None,
            progress: bool | None = None, on_block: Callable | None = None,
            num_workers: int | None = None) -> None:
    """Run the blocks ``todo`` (flat indices; None: all) with at most 2 × workers in flight."""
    total = plan.n_blocks if todo is None else len(todo)
    prog = _Progress(total, sys.stderr.isatty() if progress is None else progress)

    def step() -> None:
        prog.step()
        if on_block:
            on_block()
    try:
        if not total:
            return
        if client is None:
            _threads(plan, todo, run_id, step, num_workers or max(1, os.cpu_count() or 1))
            return
        try:
            _distributed(plan, todo, run_id, step, client)
        except store.StoreError:
            raise
        except Exception as e:
            if _from_cluster(e) or _lost(client):
                first = (str(e).splitlines() or [""])[0].rstrip(".")
                raise SchedulerError(f"lost the Dask scheduler ({type(e).__name__}: {first})") from None
            raise
    finally:
        prog.close()


def _probe(address: str, timeout: float) -> None:
    """Fail fast (refused, no route, bad host) on a ``tcp://host:port`` address: distributed
    itself retries a refused connection until its timeout."""
    import socket
    from urllib.parse import urlsplit
    u = urlsplit(address if "://" in address else f"tcp://{address}")
    if u.scheme != "tcp" or not u.hostname or not u.port:
        return
    try:
        socket.create_connection((u.hostname, u.port), timeout=timeout).close()
    except OSError as e:
        raise SchedulerError(f"cannot reach the Dask scheduler at {address} "
                             f"({e.strerror or type(e).__name__})") from None


def connect(address: str, timeout: float = SCHEDULER_TIMEOUT_S):
    """A ``distributed.Client`` on ``address``, or :class:`SchedulerError` within ``timeout``."""
    from distributed import Client
    _probe(address, timeout)
    try:
        return Client(address, timeout=f"{timeout}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as e:
        raise SchedulerError(f"cannot reach the Dask scheduler at {address} within {timeout:g} s "
                             f"({type(e).__name__})") from None


def run(cfg: C.SweepConfig, *, resume: bool = False, overwrite: bool = False,
        scheduler: str | None = None, progress: bool | None = None, break_lock: bool = False,
        max_points: int | None = None, max_blocks: int | None = None) -> Result:
    t0 = time.perf_counter()
    enable_x64()
    scheduler = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
    run_id = new_run_id()
    plan = grid.build(cfg)
    check_caps(plan, max_points, max_blocks)
    client = connect(scheduler) if scheduler else None  # before anything is written
    try:
        plan, todo = prepare(cfg, run_id, resume=resume, overwrite=overwrite, plan=plan,
                             break_lock=break_lock, max_points=max_points, max_blocks=max_blocks)
        try:
            execute(plan, todo, run_id, client=client, progress=progress)
            if not store.is_complete(plan.store):
                store.mark_complete(plan.store, run_id)
        finally:
            store.release_lock(plan.store, run_id)
    finally:
        if client is not None:
            client.close()
    n_run = plan.n_blocks if todo is None else len(todo)
    return Result(plan.store, plan.n_blocks, n_run, plan.size, time.perf_counter() - t0)


def measure_block(plan: grid.Plan) -> tuple[float, float]:
    """(seconds of the first block: compile + compute + compressed write, seconds of a warm one)
    measured on this machine with block 0 written to a scratch Zarr group."""
    import tempfile

    import zarr

    from .compute import compute_block

    def once(root) -> float:
        t = time.perf_counter()
        values, _ = compute_block(plan, plan.block_index(0))
        g = zarr.open_group(root, mode="a", zarr_format=3)
        for k, v in values.items():
            a = g.create_array(k, shape=v.shape, chunks=v.shape, dtype=v.dtype,
                               compressors=store.compressors(), overwrite=True)
            a[...] = v
        return time.perf_counter() - t
    with tempfile.TemporaryDirectory(prefix="rooflax-dry-") as d:
        first = once(d)
        warm = once(d)
    return first, warm


def dry_run(cfg: C.SweepConfig, *, measure: bool = True, workers: int | None = None) -> dict:
    """Grid size, blocks, bytes and (``measure``) a time estimate from a measured block:
    first block + (blocks - 1) × warm block / workers. Allocates nothing per block."""
    plan = grid.build(cfg)
    w = workers or max(1, os.cpu_count() or 1)
    info = {"store": plan.store, "dims": {d: len(plan.coords[d]) for d in plan.dims},
            "points": plan.size, "blocks": plan.n_blocks, "block_shape": plan.block_shape,
            "variables": len(plan.variables), "bytes": plan.bytes_total(), "workers": w,
            "estimated_seconds": None, "over_caps": None}
    try:
        check_caps(plan)
    except store.StoreError as e:
        info["over_caps"] = str(e)
    if measure:
        first, warm = measure_block(plan)
        info["block_seconds"] = warm
        info["estimated_seconds"] = first + (plan.n_blocks - 1) * warm / min(w, plan.n_blocks)
    return info
