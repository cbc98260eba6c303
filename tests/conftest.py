"""Shared test helpers: where the golden reference data lives (../shared/reference)."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
REFERENCE = SHARED / "reference"


def require_reference():
    """Skip (with the reason) when the golden data folder is not beside the checkout."""
    if not REFERENCE.is_dir():
        pytest.skip(f"golden reference data not found at {REFERENCE}")
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
