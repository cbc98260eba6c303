"""Activation ids 0-11 (engine.md §2): float32 values and derivatives vs float64 formulas."""
import math

import numpy as np
import pytest

from implicit_nn.engine.activations import (
    ACTIVATION_IDS, act_derivative, act_derivative64, act_value, act_value64)

GRID = np.linspace(-6, 6, 241).astype(np.float32)
GRID = GRID[np.abs(GRID) > 1e-3]          # away from the kinks of ReLU / ELU and the pole of 1/a


def _ids(kind, shape):
    return np.full(shape, kind, np.int64)


@pytest.mark.parametrize("kind", ACTIVATION_IDS)
def test_value_matches_float64_formula(kind):
    got = act_value(_ids(kind, GRID.shape), GRID)
    want = act_value64(_ids(kind, GRID.shape), GRID.astype(np.float64))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=4e-7 if kind != 11 else 2e-6, atol=1e-7)


@pytest.mark.parametrize("kind", ACTIVATION_IDS)
def test_derivative_matches_float64_formula(kind):
    got = act_derivative(_ids(kind, GRID.shape), GRID)
    want = act_derivative64(_ids(kind, GRID.shape), GRID.astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("kind", ACTIVATION_IDS)
def test_float64_derivative_is_the_derivative(kind):
    a = GRID.astype(np.float64)
    h = 1e-6
    fd = (act_value64(_ids(kind, a.shape), a + h) - act_value64(_ids(kind, a.shape), a - h)) / (2 * h)
    np.testing.assert_allclose(act_derivative64(_ids(kind, a.shape), a), fd, rtol=1e-6, atol=1e-8)


def test_quirks_of_the_original():
    one = lambda kind, a: float(act_value(np.int64(kind), np.float32(a)))
    diff = lambda kind, a: float(act_derivative(np.int64(kind), np.float32(a)))
    assert one(3, -1.5) == 0.0 and diff(3, -1.5) == 0.0 and diff(3, 0.0) == 0.0   # plain ReLU (engine Q10)
    for unknown in (5, 12, 40):
        assert one(unknown, 1.3) == 0.0 and diff(unknown, 1.3) == 0.0
    with np.errstate(all="ignore"):
        assert np.isnan(diff(4, -90.0))                                             # SiLU' hazard (engine Q11)
        assert diff(4, -50.0) == 0.0
        assert one(11, -5000.0) == -np.inf                                          # asinh cancellation
        assert one(7, 0.0) == np.inf and diff(7, 0.0) == -np.inf
    assert one(6, 0.25) == 0.75 and diff(6, 3.0) == -1.0
    assert diff(10, 2.0) == 1.0 and one(10, -1.0) == np.float32(0.1 * (np.float64(np.float32(math.exp(-1.0))) - 1.0))
