"""`make bench`: the core's in-memory throughput, then sweeps end to end.

Both report grid points per second beside a plain-NumPy evaluation and this
machine's memory-copy speed, measured in the same run. Pass --quick for a
smaller grid (10^7 points) when iterating.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_core  # noqa: E402
import bench_sweep  # noqa: E402

from rooflax.core import enable_x64  # noqa: E402


def main() -> None:
    enable_x64()  # as the CLI: rooflax.core leaves float64 off until an entry point turns it on
    quick = "--quick" in sys.argv
    print("== core, in memory ==")
    bench_core.main(["--points", "1e7" if quick else "1e8"])
    print("\n== sweeps, config -> complete Zarr cube ==")
    bench_sweep.main(sizes=("1e7",) if quick else ("1e8", "1e9", "1e10"))


if __name__ == "__main__":
    main()
