"""Shared test helpers: where the golden reference data lives.

The golden outputs of the original program are read from $IMPLICIT_NN_REFERENCE when it is set,
else from ../shared/reference beside the checkout. Tests that need them skip with the reason,
which pytest prints (-rs in pyproject's addopts). $IMPLICIT_NN_GOLDEN_BACKEND (default cpu) is the
engine of the load-mode golden runs: `gpu` on a device (benchmarks/gpu_check.sh).
"""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
REFERENCE_VARIABLE = "IMPLICIT_NN_REFERENCE"
REFERENCE = Path(os.environ.get(REFERENCE_VARIABLE) or SHARED / "reference")
GOLDEN_BACKEND = os.environ.get("IMPLICIT_NN_GOLDEN_BACKEND") or "cpu"


def require_reference():
    """Skip (with the reason) when the golden data folder is not there."""
    if not REFERENCE.is_dir():
        pytest.skip(f"golden reference data not found at {REFERENCE} "
                    f"(set {REFERENCE_VARIABLE} to the folder)")
    return REFERENCE


@pytest.fixture
def reference():
    return require_reference()


def log_rows(path):
    """Data rows of a results/test log as lists of stripped fields (first block only)."""
    rows = []
    for line in path.read_text().splitlines()[3:]:
        if line.startswith("-"):
            break
        rows.append([c.strip() for c in line.split("|")[1:-1]])
    return rows


def example_params(tmp_path, **overrides):
    """The bundled example's parameters with its data/network paths absolute and its outputs in
    tmp_path/outputs (created), so that it runs from any folder."""
    import dataclasses
    from implicit_nn.api import with_overrides
    from implicit_nn.params import read_params

    params = read_params(ROOT / "inputs" / "simulparams.dat")
    moved = {}
    for field in dataclasses.fields(params):
        value = getattr(params, field.name)
        if isinstance(value, str) and value.startswith("examples/"):
            moved[field.name] = str(ROOT / value)
        elif isinstance(value, str) and value.startswith("outputs/"):
            moved[field.name] = str(tmp_path / value)
    (tmp_path / "outputs").mkdir(parents=True, exist_ok=True)
    return with_overrides(params, **moved, **overrides)


def example_here(tmp_path, monkeypatch, **overrides):
    """The bundled example with its own relative paths, run from tmp_path (examples/ linked in,
    outputs/ created), so that its paths stay within the original's 99 characters. Returns the
    path of the parameter file written, inputs/simulparams.dat (the CLI's default)."""
    from implicit_nn.api import read_params
    from implicit_nn.params import write_params

    for folder in ("outputs", "inputs"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "inputs" / "simulparams.dat"
    write_params(path, read_params(ROOT / "inputs" / "simulparams.dat", **overrides))
    return path
