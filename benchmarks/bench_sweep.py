"""Sweep benchmark: grid points/s end to end (config → complete cube) vs the in-memory core.

Run: ``.venv/bin/python benchmarks/bench_sweep.py [--sizes 1e8,1e9,1e10] [--compressors]``.
``main()`` prints the table (``benchmarks/run.py`` calls it). Each size runs in its own process
(``--one SIZE``) so its peak RSS (``ru_maxrss``) is its own; target ≤ 1.5 GB at every size
(issue 12: the sweep keeps at most 2 × cores blocks in flight, so memory follows the block).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHAPES = {  # bw × c_over_bw × sparsity × batch × context
    "1e6": (8, 8, 4, 128, 32),
    "1e7": (16, 16, 8, 128, 40),
    "1e8": (32, 32, 8, 256, 48),
    "1e9": (64, 64, 16, 256, 60),
    "1e10": (128, 128, 20, 256, 120),
}
RSS_TARGET_MB = 1500


def config_for(shape, store: str):
    from rooflax.sweeps import config as C
    nb, nc, ns, nbatch, nctx = shape
    data = {
        "axes": {
            "hardware": {"bw": {"log": ["1 TB/s", "30 TB/s"], "num": nb},
                         "c_over_bw": {"log": [50, 2000], "num": nc},
                         "capacity": "288 GB", "price_per_hour": "4 $/h", "chips": 8},
            "model": {"sparsity": {"log": [1, 64], "num": ns}, "n_total": 671e9,
                      "kv_bytes_per_token": 70272},
            "batch": {"log": [1, 65536], "num": nbatch},
            "context": {"log": ["1k", "1M"], "num": nctx},
            "precision": "fp8",
        },
        "outputs": {"values": ["t_step", "throughput", "cost_per_mtok", "kv_share", "b_star",
                               "binding", "cost_per_mtok_at_b_star"],
                    "sensitivities": {"of": ["cost_at_b_star"], "knobs": ["bw", "c_over_bw", "sparsity"],
                                      "kind": ["elasticity"]}},
        "store": store,
        "dtype": "float32",
    }
    return C.SweepConfig.model_validate(data)


def memcopy_gbs() -> float:
    """This machine's memory-copy speed, GB/s of data copied (the same measure as bench_core)."""
    from bench_core import memcopy_gbps

    return memcopy_gbps()


def in_memory_rate(cfg) -> float:
    """Points/s of the jitted block kernel alone (inputs ready, outputs on host)."""
    from rooflax.sweeps import compute, grid
    plan = grid.build(cfg)
    blocks = [plan.block_index(i) for i in range(min(8, plan.n_blocks))]
    leaves = [compute.block_inputs(plan, b)[0] for b in blocks]
    k = compute.kernel_for(plan)
    for v in k(leaves[0]).values():
        np.asarray(v)
    from concurrent.futures import ThreadPoolExecutor

    def one(lv):
        for v in k(lv).values():
            np.asarray(v)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(os.cpu_count()) as ex:
        list(ex.map(one, leaves))
    dt = time.perf_counter() - t0
    return len(blocks) * int(np.prod(plan.block_shape)) / dt


def end_to_end(cfg) -> tuple[float, float]:
    from rooflax.sweeps import run as R
    t0 = time.perf_counter()
    res = R.run(cfg, overwrite=True, progress=False)
    dt = time.perf_counter() - t0
    return res.points / dt, dt


def compressors(cfg) -> list[tuple[str, float, float]]:
    """Compress the first block's variables with each codec: (name, GB/s, ratio)."""
    import zarr
    import zarr.codecs as zc

    from rooflax.sweeps import compute, grid
    plan = grid.build(cfg)
    vals, _ = compute.compute_block(plan, plan.block_index(0))
    out = []
    for name, codec in [("blosc lz4+shuffle", zc.BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")),
                        ("zstd (zarr default)", zc.ZstdCodec(level=0))]:
        d = tempfile.mkdtemp()
        raw = stored = 0
        t0 = time.perf_counter()
        g = zarr.open_group(d, mode="w")
        for k, v in vals.items():
            a = g.create_array(k, shape=v.shape, chunks=v.shape, dtype=v.dtype, compressors=[codec])
            a[...] = v
            raw += v.nbytes
        dt = time.perf_counter() - t0
        for p in Path(d).rglob("c/*"):
            if p.is_file():
                stored += p.stat().st_size
        for p in Path(d).rglob("*"):
            if p.is_file() and "c" in p.parts[len(Path(d).parts):-1]:
                pass
        stored = sum(p.stat().st_size for p in Path(d).rglob("*") if p.is_file() and p.name != "zarr.json")
        shutil.rmtree(d)
        out.append((name, raw / dt / 1e9, raw / max(stored, 1)))
    return out


def one(size: str, tmp: Path) -> dict:
    """Benchmark one size in this process: rates, seconds, this process's peak RSS."""
    cfg = config_for(SHAPES[size], str(tmp / f"bench-{size}.zarr"))
    mem = in_memory_rate(cfg)
    e2e, dt = end_to_end(cfg)
    shutil.rmtree(tmp / f"bench-{size}.zarr", ignore_errors=True)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"size": size, "points": int(np.prod(SHAPES[size])), "mem": mem, "e2e": e2e,
            "seconds": dt, "rss_mb": rss}


def main(sizes=("1e8", "1e9", "1e10"), with_compressors=False) -> None:
    import json
    import subprocess

    from rich.console import Console
    from rich.table import Table
    tmp = Path(os.environ.get("ROOFLAX_BENCH_DIR", "out/bench"))
    tmp.mkdir(parents=True, exist_ok=True)
    t = Table(title=f"rooflax sweep benchmark ({os.cpu_count()} cores)")
    for c in ("grid", "points", "in-memory Mpts/s", "end-to-end Mpts/s", "e2e/in-mem", "seconds",
              f"peak RSS MB (≤ {RSS_TARGET_MB})"):
        t.add_column(c, justify="right")
    copy = memcopy_gbs()
    for s in sizes:
        r = subprocess.run([sys.executable, __file__, "--one", s, "--dir", str(tmp)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            t.add_row(s, "failed", "", "", "", "", r.stderr.strip().splitlines()[-1:][0][:60])
            continue
        d = json.loads(r.stdout.strip().splitlines()[-1])
        ok = "" if d["rss_mb"] <= RSS_TARGET_MB else " OVER"
        t.add_row(s, f"{d['points']:,}", f"{d['mem'] / 1e6:.1f}", f"{d['e2e'] / 1e6:.1f}",
                  f"{d['e2e'] / d['mem']:.2f}", f"{d['seconds']:.1f}", f"{d['rss_mb']:.0f}{ok}")
    con = Console()
    con.print(t)
    con.print(f"memory copy (numpy copyto, GB/s of data copied): {copy:.1f} GB/s")
    con.print("outputs: 4 values (t_step, throughput, cost_per_mtok, kv_share) + b_star, binding, "
              "cost_per_mtok_at_b_star + 3 elasticities (bw, c_over_bw, sparsity); float32")
    if with_compressors:
        for name, gbs, ratio in compressors(config_for(SHAPES["1e8"], str(tmp / "x.zarr"))):
            con.print(f"compressor {name}: {gbs:.2f} GB/s, ratio {ratio:.2f}x")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1e8,1e9,1e10")
    ap.add_argument("--compressors", action="store_true")
    ap.add_argument("--one", help="run one size in this process and print its JSON line")
    ap.add_argument("--dir", default=os.environ.get("ROOFLAX_BENCH_DIR", "out/bench"))
    a = ap.parse_args()
    if a.one:
        import json
        print(json.dumps(one(a.one, Path(a.dir))))
    else:
        main(tuple(a.sizes.split(",")), a.compressors)
    sys.exit(0)
