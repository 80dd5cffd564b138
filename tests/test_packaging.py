"""The built wheel imports from outside the repository, catalogs included."""

import os
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_wheel_imports_outside_the_repo(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(dist), str(REPO)],
        check=True, cwd=tmp_path,
    )
    (wheel,) = dist.glob("rooflax-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "rooflax/core/__init__.py" in names
    assert "rooflax/sweeps/catalog/hardware.yaml" in names
    assert "rooflax/sweeps/catalog/models.yaml" in names
    assert "rooflax/results/data/validation.yaml" in names
    assert "rooflax/sweeps/catalog/calibration.yaml" in names
    assert "rooflax/sweeps/data/decode_silicon_train.csv" in names
    assert not any(n.startswith(("core/", "sweeps/", "results/", "tests/")) for n in names)

    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    # The venv's site-packages go on PYTHONPATH (so .pth files — the editable
    # install's finder among them — are not processed), after the unpacked wheel.
    deps = [p for p in site.getsitepackages() if p.endswith("site-packages")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(unpacked), *deps])}
    code = (
        "import rooflax.core as rc, rooflax.sweeps.catalogs as cat;"
        f"assert rc.__file__.startswith({str(unpacked)!r}), rc.__file__;"
        "hw = cat.hardware('h200', chips=8, precision='fp8');"
        "m = cat.model('deepseek-v3', weights='fp8');"
        "print(rc.BINDINGS[int(rc.binding(hw, m, rc.Workload(context=4096.0)))])"
    )
    out = subprocess.run([sys.executable, "-s", "-c", code], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() in ("crossover", "capacity")
