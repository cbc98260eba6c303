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
