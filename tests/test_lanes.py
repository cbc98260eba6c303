"""The fma and the vector lanes of the CPU kernels (implicit_nn/engine/lanes.py): llvm.fma, the
reference's fma32 and the NumPy exact_fma of plain-Python mode all round once, like exact
arithmetic rounded to float32."""
from fractions import Fraction

import numba
import numpy as np
import pytest

from implicit_nn.engine import lanes
from implicit_nn.engine.lanes import elementwise_fma64 as fma64, exact_fma, exact_fma64, fma32

f32 = np.float32


def _rounded_fma(a, b, c):
    """a·b + c computed exactly, then rounded once to float32 (ties to even)."""
    exact = Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))
    near = f32(float(exact))                      # within one float32 step of the exact value
    candidates = [near, np.nextafter(near, f32(np.inf)), np.nextafter(near, f32(-np.inf))]
    best = min(abs(Fraction(float(v)) - exact) for v in candidates)
    ties = [v for v in candidates if abs(Fraction(float(v)) - exact) == best]
    return min(ties, key=lambda v: int(v.view(np.uint32)) & 1)


@numba.njit
def _scalar_fma(a, b, c):
    return lanes.fma(a, b, c)


def test_fma_rounds_once_where_a_double_rounding_would_not():
    # 1.000244140625² + 2⁻⁸⁰ lies just above the float32 midpoint 1 + 2⁻¹¹ + 2⁻²⁴: rounding first to
    # float64 lands on the midpoint and ties-to-even goes down; the one-rounding fma goes up.
    a, c = f32(1 + 2.0 ** -12), f32(2.0 ** -80)
    twice = f32(np.float64(a) * np.float64(a) + np.float64(c))
    want = f32(1 + 2.0 ** -11 + 2.0 ** -23)
    assert twice == f32(1 + 2.0 ** -11) != want
    assert _rounded_fma(a, a, c) == want
    assert _scalar_fma(a, a, c) == want
    assert fma32(a, a, c) == want
    assert exact_fma(a, a, c) == want


def test_fma_equals_exact_rounding_on_random_operands():
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((2, 300)).astype(np.float32)
    c = (rng.standard_normal(300) * 10.0 ** rng.integers(-9, 9, 300)).astype(np.float32)
    got, numpy = fma32(a, b, c), exact_fma(a, b, c)
    for j in range(300):
        assert got[j] == numpy[j] == _rounded_fma(a[j], b[j], c[j]) == _scalar_fma(a[j], b[j], c[j])


def test_exact_fma_on_ties_zeros_and_specials():
    """Rounding to odd in float64 keeps every float32 tie-break right, also near the edges."""
    rng = np.random.default_rng(11)
    a = (1 + rng.integers(0, 2 ** 12, 2000) * 2.0 ** -12).astype(np.float32)   # 13-bit products:
    c = (rng.integers(-2 ** 20, 2 ** 20, 2000) * 2.0 ** -44).astype(np.float32)  # many near-ties
    got = exact_fma(a, a, c)
    assert all(got[j] == _rounded_fma(a[j], a[j], c[j]) for j in range(2000))
    tiny, big = f32(2.0 ** -140), f32(3e38)
    assert exact_fma(tiny, f32(0.5), tiny) == _rounded_fma(tiny, f32(0.5), tiny)    # subnormal
    assert exact_fma(big, f32(2), f32(0)) == np.inf and np.isnan(exact_fma(f32(np.inf), f32(0), f32(1)))
    assert np.signbit(exact_fma(f32(-0.0), f32(1), f32(-0.0)))


def test_fma64_rounds_once():
    # (1 + 2⁻³⁰)² − 1 = 2⁻²⁹ + 2⁻⁶⁰ exactly; the float64 product alone drops the 2⁻⁶⁰.
    a, c = 1 + 2.0 ** -30, -1.0
    assert a * a + c == 2.0 ** -29
    want = float(Fraction(a) * Fraction(a) + Fraction(c))
    assert want == 2.0 ** -29 + 2.0 ** -60
    assert numba.njit(lambda x, y, z: lanes.fma64(x, y, z))(a, a, c) == want
    assert fma64(a, a, c) == want == exact_fma64(a, a, c)


@numba.njit
def _chains(rows, weights, sources, out, width):
    """out[flat:flat+width] = fma chain over sources of weights[p]·rows[src, lanes], per block."""
    numba.literally(width)                                    # a compile-time vector width
    columns = rows.shape[1]
    for d0 in range(0, columns - width + 1, width):
        chain = lanes.zero(width)
        for p in range(sources.size):
            chain = lanes.fma_splat(weights[p], lanes.load(rows, sources[p] * columns + d0, width),
                                    chain)
        lanes.store(out, d0, chain)


@pytest.mark.parametrize("width", [4, 8, 16])
def test_lane_chains_equal_scalar_chains(width):
    rng = np.random.default_rng(width)
    rows = rng.standard_normal((9, 3 * width)).astype(np.float32)
    weights = rng.standard_normal(12).astype(np.float32)
    sources = rng.integers(0, 9, 12)
    out = np.full(3 * width + 5, np.float32(7.0))
    _chains(rows, weights, sources, out, width)
    want = np.zeros(3 * width, np.float32)
    for p in range(12):
        want = fma32(weights[p], rows[sources[p]], want)
    np.testing.assert_array_equal(out[:3 * width], want)      # bit for bit, lane by lane
    assert np.all(out[3 * width:] == 7.0)                     # nothing written past the blocks


@numba.njit
def _load_float64(array):
    return lanes.load(array, 0, 16)


@numba.njit
def _odd_width(array):
    return lanes.load(array, 0, 5)


def test_lanes_refuse_what_they_cannot_address():
    with pytest.raises(numba.core.errors.TypingError):
        _load_float64(np.zeros(16))                           # float64: not a float32 array
    with pytest.raises(numba.core.errors.TypingError):
        _odd_width(np.zeros(16, np.float32))                  # widths are 4, 8 or 16


@numba.njit
def _lanewise(a, b, c, out):
    """Every lanewise operation of 16 lanes, and the flags of differ / any_finite."""
    x, y, z = lanes.load(a, 0, 16), lanes.load(b, 0, 16), lanes.load(c, 0, 16)
    results = (lanes.add(x, y), lanes.sub(x, y), lanes.mul(x, y), lanes.fma_lanes(x, y, z),
               lanes.absolute(x), lanes.larger(x, y), lanes.splat(lanes.at(c, 3), 16))
    for j in range(len(results)):
        lanes.store(out, 16 * j, results[j])
    return lanes.differ(x, y), lanes.differ(x, x), lanes.any_finite(x), lanes.any_finite(y)


def test_lanewise_operations_equal_the_scalar_ones():
    """Lane by lane what the kernels' scalar loops compute, bit for bit, signed zeros and NaN
    included: the sweeps' vector blocks use them in place of those loops."""
    special = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -3.5, 2.0 ** 100]
    rng = np.random.default_rng(4)
    a = np.array(special + list(rng.standard_normal(8)), np.float32)
    b = np.array(list(rng.standard_normal(8)) + special[::-1], np.float32)
    c = rng.standard_normal(16).astype(np.float32)
    out = np.zeros(7 * 16, np.float32)
    flags = _lanewise(a, b, c, out)
    with np.errstate(all="ignore"):
        want = [a + b, a - b, a * b, fma32(a, b, c), np.abs(a),
                np.array([p if p > q else q for p, q in zip(a, b)], np.float32),
                np.full(16, c[3], np.float32)]
    for j, values in enumerate(want):
        np.testing.assert_array_equal(out[16 * j:16 * (j + 1)].view(np.int32),
                                      np.asarray(values, np.float32).view(np.int32), err_msg=str(j))
    all_nan = np.full(16, np.nan, np.float32)
    assert flags == (1, 0, 1, 1)
    assert _lanewise(all_nan, -all_nan, c, out)[2:] == (0, 0)     # no finite lane; NaN bits differ
    assert _lanewise(np.zeros(16, np.float32), -np.zeros(16, np.float32), c, out)[0] == 1


@numba.njit
def _transposed(source, source_flat, source_stride, target, target_flat, target_stride):
    lanes.transpose8(source, source_flat, source_stride, target, target_flat, target_stride)


def test_transpose8_moves_one_block_and_nothing_else():
    source = np.random.default_rng(5).standard_normal((12, 20)).astype(np.float32)
    target = np.full((10, 30), np.float32(7.0))
    _transposed(source, 3 * 20 + 2, 20, target, 1 * 30 + 5, 30)
    want = np.full((10, 30), np.float32(7.0))
    want[1:9, 5:13] = source[3:11, 2:10].T
    np.testing.assert_array_equal(target, want)
