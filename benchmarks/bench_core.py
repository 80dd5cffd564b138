"""Core throughput: grid points per second of the jitted roofline, in memory.

Measured in one run, on the same machine:
* ``values``: 4 per-point outputs (T_step, throughput, cost/token, MFU) on a
  hardware × model × batch × context grid of ``--points`` points (float32);
* ``values + sensitivities``: B*, cost/latency/throughput at B* and their
  partials and elasticities w.r.t. all 12 canonical knobs on a batch-free
  hardware × model × context grid of ``--points`` points;
* the same per-point values and B* in plain NumPy (float32);
* this machine's memory-copy speed (``np.copyto`` of a 1 GiB buffer).

The grid is evaluated block by block (one jitted call per block of
``--block`` points, the same shape every time, so it compiles once), which is how
sweeps use the core; results are kept in a reused output buffer.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from rooflax import core as rc

DTYPE = np.float32


def memcopy_gbps(nbytes: int = 1 << 30, repeats: int = 5) -> float:
    """Best-of-n copy bandwidth (read + write counted once each: bytes moved / 2 / time · 2)."""
    src = np.ones(nbytes // 8, dtype=np.float64)
    dst = np.empty_like(src)
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return nbytes / best / 1e9  # GB/s of copied data


def _axes(n_hw: int, n_model: int, n_batch: int, n_context: int):
    rng = np.random.default_rng(0)
    hw = rc.Hardware(
        bw=rng.uniform(1e12, 1e13, (n_hw, 1, 1, 1)),
        c_over_bw=rng.uniform(100, 600, (n_hw, 1, 1, 1)),
        capacity=rng.uniform(80e9, 300e9, (n_hw, 1, 1, 1)),
        price=rng.uniform(1, 10, (n_hw, 1, 1, 1)) / 3600,
        chips=np.full((n_hw, 1, 1, 1), 8.0),
    ).astype(DTYPE)
    m = rc.Model(
        n_total=rng.uniform(8e9, 7e11, (1, n_model, 1, 1)),
        sparsity=rng.uniform(1, 30, (1, n_model, 1, 1)),
        kv_bytes_per_token=rng.uniform(3e4, 3e5, (1, n_model, 1, 1)),
        bytes_per_weight=np.ones((1, n_model, 1, 1)),
    ).astype(DTYPE)
    wl = rc.Workload(
        batch=rc.along(np.geomspace(1, 65536, n_batch), 2, 4),
        context=rc.along(np.geomspace(1024, 1e6, n_context), 3, 4),
    ).astype(DTYPE)
    return hw, m, wl


def _values(hw, m, wl):
    return (rc.t_step(hw, m, wl), rc.throughput(hw, m, wl), rc.cost_per_token(hw, m, wl),
            rc.mfu(hw, m, wl))


def _numpy_values(hw, m, wl):
    """The same four values, written in NumPy."""
    hw, m, wl = (jax.tree.map(np.asarray, t) for t in (hw, m, wl))
    C = hw.c_over_bw * hw.bw * hw.chips
    BW = hw.bw * hw.chips
    n_active = m.n_total / m.sparsity
    t_c = wl.batch * n_active / C
    t_m = (m.n_total * m.bytes_per_weight + wl.batch * m.kv_bytes_per_token * wl.context) / BW
    t = np.maximum(t_c, t_m)
    return t, wl.batch / t, t * hw.price * hw.chips / wl.batch, t_c / t


def _numpy_b_star(hw, m, wl):
    hw, m, wl = (jax.tree.map(np.asarray, t) for t in (hw, m, wl))
    C = hw.c_over_bw * hw.bw * hw.chips
    BW = hw.bw * hw.chips
    kv = m.kv_bytes_per_token * wl.context
    den = BW * (m.n_total / m.sparsity) / C - kv
    with np.errstate(divide="ignore", invalid="ignore"):
        b_x = np.where(den > 0, m.n_total * m.bytes_per_weight / den, np.inf)
        b_max = (hw.capacity * hw.chips - m.n_total * m.bytes_per_weight) / kv
    b = np.minimum(b_x, b_max)
    return np.where(b_max >= 1, b, np.nan)


def _time(fn, blocks: int) -> float:
    fn(0)  # compile / warm up
    t0 = time.perf_counter()
    for i in range(blocks):
        fn(i)
    return time.perf_counter() - t0


def run(points: float = 1e8, block: float = 1e7,
        sens_block: float = 1e6) -> list[tuple[str, float, float, int]]:
    """Returns rows (name, points, seconds, float32 outputs written per point)."""
    points, block = int(points), int(block)
    blocks = max(1, points // block)
    # values: block = n_hw × n_model × batch × context
    hw, m, wl = _axes(10, 10, int(np.sqrt(block / 100)), int(np.sqrt(block / 100)))
    n_block = int(np.prod(jnp.broadcast_shapes(hw.shape, m.shape, wl.shape)))
    rows = []

    # unswept (0-d) leaves are compile-time constants: the extended model's neutral
    # terms fold away, as in a sweep's block kernel
    values = rc.jit_with_constants(_values, hw, m, wl)

    def jax_block(_):
        jax.block_until_ready(values(hw, m, wl))

    rows.append(("core values (jax, f32)", n_block * blocks, _time(jax_block, blocks), 4))
    rows.append(("numpy values (f32)", n_block * blocks,
                 _time(lambda _: _numpy_values(hw, m, wl), blocks), 4))

    # sensitivities: batch-free block = n_hw × n_model × 1 × context; 100 outputs per point,
    # so blocks are smaller (a 1e6-point block writes 400 MB)
    sens_block = int(sens_block)
    s_blocks = max(1, points // sens_block)
    hw_s, m_s, wl_s = _axes(10, 10, 1, sens_block // 100)
    wl_s = wl_s.replace(batch=jnp.ones((), DTYPE))
    n_sblock = int(np.prod(jnp.broadcast_shapes(hw_s.shape, m_s.shape, wl_s.shape)))

    from rooflax.core.sensitivity import SEED_KNOBS

    sens = rc.jit_with_constants(
        lambda h, mm, w: rc.sensitivities(h, mm, w, knobs=SEED_KNOBS), hw_s, m_s, wl_s)

    def sens_fn(_):
        jax.block_until_ready(sens(hw_s, m_s, wl_s))

    rows.append(("core 4 optimum outputs + 12 seed knobs × (partial, elasticity)",
                 n_sblock * s_blocks, _time(sens_fn, s_blocks), 4 + 4 * 12 * 2))
    rows.append(("numpy b_star (values only)", n_sblock * s_blocks,
                 _time(lambda _: _numpy_b_star(hw_s, m_s, wl_s), s_blocks), 1))
    return rows


def main(argv: list[str] | None = None) -> list[tuple[str, float, float]]:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--points", type=float, default=1e8)
    p.add_argument("--block", type=float, default=1e7)
    args = p.parse_args(argv)
    rc.enable_x64()  # as the CLI (float32 leaves stay float32; the flag sets the weak types)
    gbps = memcopy_gbps()
    rows = run(args.points, args.block)
    print(f"devices: {jax.devices()}  memory copy: {gbps:.2f} GB/s")
    print(f"{'benchmark':60s} {'points':>9s} {'s':>7s} {'Mpts/s':>8s} {'vs numpy':>8s} "
          f"{'out GB/s':>8s} {'vs memcpy':>9s}")
    for i, (name, n, secs, outputs) in enumerate(rows):
        rate = n / secs
        ref = rows[i + 1] if i % 2 == 0 else rows[i]
        ratio = f"{rate / (ref[1] / ref[2]):8.2f}" if i % 2 == 0 else f"{'':8s}"
        out_gbps = rate * outputs * 4 / 1e9  # float32 results written per second
        print(f"{name:60s} {n:9.3g} {secs:7.2f} {rate / 1e6:8.1f} {ratio} "
              f"{out_gbps:8.2f} {out_gbps / gbps:9.2f}")
    return rows


if __name__ == "__main__":
    main()
