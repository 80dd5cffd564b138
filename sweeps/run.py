"""Run a sweep: template first, then one Dask task per block (compute + region write + marker).

Schedulers:

* embedded (default): Dask's threaded scheduler in this process. jitted XLA code releases
  the GIL, so threads use both cores with no pickling or inter-process copies. Measured on
  the 1e8-point benchmark grid (benchmarks/bench_sweep.py config, this 2-core machine):
  threads 6.7 s; ``LocalCluster`` (2 workers × 1 thread, 127.0.0.1) 11.9 s for the run,
  13.1 s including its start. Threads it is.
* ``scheduler="tcp://host:port"`` (or env ``DASK_SCHEDULER_ADDRESS``): the same tasks on an
  existing ``distributed`` cluster; a lost worker's blocks are rerun elsewhere (writes are
  idempotent: a block always writes the same chunks).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import config as C
from . import grid, store


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


def _run_block(plan: grid.Plan, index: tuple[int, ...]) -> tuple[int, ...]:
    from .compute import compute_block
    values, sl = compute_block(plan, index)
    store.write_block(plan.store, plan, index, values, sl)
    return index


def prepare(cfg: C.SweepConfig, *, resume: bool, overwrite: bool) -> tuple[grid.Plan, list]:
    """Check the store, write the template if needed; return the plan and the blocks to run."""
    plan = grid.build(cfg)
    path = Path(plan.store)
    attrs = store.read_attrs(path)
    if path.exists() and not overwrite:
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
        if attrs.get("rooflax_complete"):
            return plan, []
        return plan, store.missing_blocks(path)
    if path.exists():
        if path.is_dir() and attrs is None and any(path.iterdir()):
            raise store.StoreError(
                f"store {plan.store!r}: refusing to overwrite a non-empty directory that is not a "
                f"Zarr store")
        if not path.is_dir():
            raise store.StoreError(f"store {plan.store!r}: expected a directory, found a file")
        store.remove(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    store.write_template(plan, path, version())
    return plan, plan.blocks()


class _Progress:
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
        if now - self.last > 2.0 or self.n == self.total:
            el = now - self.t0
            eta = el / self.n * (self.total - self.n)
            print(f"sweep: {self.n}/{self.total} blocks, {el:.1f}s elapsed, ETA {eta:.1f}s",
                  file=sys.stderr, flush=True)
            self.last = now

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def execute(plan: grid.Plan, blocks: list, *, scheduler: str | None = None,
            progress: bool | None = None, on_block: Callable | None = None,
            num_workers: int | None = None) -> None:
    import dask
    from dask import delayed

    tty = sys.stderr.isatty() if progress is None else progress
    prog = _Progress(len(blocks), tty)
    try:
        if not blocks:
            return
        if scheduler:
            from distributed import Client, as_completed
            with Client(scheduler, timeout="20s") as client:
                plan_f = client.scatter(plan, broadcast=True)
                futs = [client.submit(_run_block, plan_f, b, pure=False, retries=2,
                                      key=f"rooflax-block-{'-'.join(map(str, b))}-{time.time_ns()}")
                        for b in blocks]
                for fut in as_completed(futs):
                    fut.result()
                    prog.step()
                    if on_block:
                        on_block()
        else:
            from dask.callbacks import Callback

            class CB(Callback):
                def _posttask(self, key, result, dsk, state, id):
                    if isinstance(key, tuple) and str(key[0]).startswith("block-") or \
                       str(key).startswith("block-"):
                        prog.step()
                        if on_block:
                            on_block()

            plan_d = delayed(plan, pure=True, name="plan")
            tasks = [delayed(_run_block, pure=True, name=f"block-{'-'.join(map(str, b))}")(plan_d, b)
                     for b in blocks]
            with CB():
                dask.compute(*tasks, scheduler="threads",
                             num_workers=num_workers or max(1, os.cpu_count() or 1))
    finally:
        prog.close()


def run(cfg: C.SweepConfig, *, resume: bool = False, overwrite: bool = False,
        scheduler: str | None = None, progress: bool | None = None) -> Result:
    t0 = time.perf_counter()
    scheduler = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
    plan, blocks = prepare(cfg, resume=resume, overwrite=overwrite)
    execute(plan, blocks, scheduler=scheduler, progress=progress)
    if not store.read_attrs(plan.store).get("rooflax_complete"):
        store.mark_complete(plan.store)
    return Result(plan.store, len(plan.blocks()), len(blocks), plan.size, time.perf_counter() - t0)


def dry_run(cfg: C.SweepConfig, rate: float = 2.0e7) -> dict:
    plan = grid.build(cfg)
    return {"store": plan.store, "dims": {d: len(plan.coords[d]) for d in plan.dims},
            "points": plan.size, "blocks": len(plan.blocks()), "block_shape": plan.block_shape,
            "variables": len(plan.variables), "bytes": plan.bytes_total(),
            "estimated_seconds": 3.0 + plan.size / rate}
