"""Activation functions by id (engine.md §2), value and derivative at the pre-activation.

One source of formulas for every engine: the numba engine calls the scalar `activation` /
`activation_derivative` from its kernels, the reference engine uses the ufuncs `act_value` /
`act_derivative`. Precision follows engine.md §13.2: where the original has a double literal
the expression is evaluated in float64 from that point and rounded to float32 where the
original stores into a float; everything else stays float32.
"""
import math

import numba
import numpy as np

from implicit_nn.network import ACTIVATION_IDS

f32 = np.float32
f64 = np.float64

IDENTITY, SIGMOID, TANH, RELU, SILU, ZERO, ONE_MINUS, INVERSE, COS, ATAN, ELU, ASINH = ACTIVATION_IDS


@numba.njit(cache=True, error_model="numpy")
def sigmoid(a):
    """σ(a): expf in float, 1.0 + e and the division in double."""
    e = math.exp(-a)
    return f32(1.0 / (1.0 + f64(e)))


@numba.njit(cache=True, error_model="numpy")
def activation(kind, a):
    """f_kind(a) for float32 a; unknown ids give 0."""
    a = f32(a)
    if kind == 0:
        return a
    if kind == 1:
        return sigmoid(a)
    if kind == 2:
        return f32(math.tanh(a))
    if kind == 3:
        return a if a > 0 else f32(0.0)
    if kind == 4:
        e = f32(math.exp(-a))
        return f32(f64(a) / (1.0 + f64(e)))
    if kind == 6:
        return f32(1.0 - f64(a))
    if kind == 7:
        return f32(1.0 / f64(a))
    if kind == 8:
        return f32(math.cos(a))
    if kind == 9:
        return f32(math.atan(a))
    if kind == 10:
        if a > 0:
            return a
        return f32(0.1 * (f64(f32(math.exp(a))) - 1.0))
    if kind == 11:
        r = f32(math.sqrt(f32(f64(a * a) + 1.0)))
        return f32(math.log(f32(r + a)))
    return f32(0.0)


@numba.njit(cache=True, error_model="numpy")
def activation_derivative(kind, a):
    """f'_kind(a) for float32 a (at the pre-activation); unknown ids give 0."""
    a = f32(a)
    if kind == 0:
        return f32(1.0)
    if kind == 1:
        s = sigmoid(a)
        return f32(f64(s) * (1.0 - f64(sigmoid(a))))
    if kind == 2:
        t = f32(math.tanh(a))
        return f32(1.0 - f64(f32(t * t)))
    if kind == 3:
        return f32(1.0) if a > 0 else f32(0.0)
    if kind == 4:
        e = f32(math.exp(-a))
        num = (1.0 + f64(e)) + f64(f32(a * e))
        base = f32(1.0 + f64(e))
        den = f32(base * base)
        return f32(num / f64(den))
    if kind == 6:
        return f32(-1.0)
    if kind == 7:
        sq = f32(a * a)
        return f32(-1.0 / f64(sq))
    if kind == 8:
        return f32(-f32(math.sin(a)))
    if kind == 9:
        return f32(1.0 / (1.0 + f64(f32(a * a))))
    if kind == 10:
        if a > 0:
            return f32(1.0)
        return f32(0.1 * f64(f32(math.exp(a))))
    if kind == 11:
        r = f32(math.sqrt(f32(f64(a * a) + 1.0)))
        return f32(1.0 / f64(r))
    return f32(0.0)


@numba.vectorize(["float32(int64, float32)"], cache=True)
def act_value(kind, a):
    """Elementwise f_kind(a) (ufunc over arrays of ids and float32 values)."""
    return activation(kind, a)


@numba.vectorize(["float32(int64, float32)"], cache=True)
def act_derivative(kind, a):
    """Elementwise f'_kind(a)."""
    return activation_derivative(kind, a)


@numba.njit(cache=True, error_model="numpy")
def activation64(kind, a):
    """f_kind(a) in plain float64: the mathematical formula, for finite differences and tests."""
    if kind == 0:
        return a
    if kind == 1:
        return 1.0 / (1.0 + math.exp(-a))
    if kind == 2:
        return math.tanh(a)
    if kind == 3:
        return a if a > 0 else 0.0
    if kind == 4:
        return a / (1.0 + math.exp(-a))
    if kind == 6:
        return 1.0 - a
    if kind == 7:
        return 1.0 / a
    if kind == 8:
        return math.cos(a)
    if kind == 9:
        return math.atan(a)
    if kind == 10:
        return a if a > 0 else 0.1 * (math.exp(a) - 1.0)
    if kind == 11:
        return math.log(math.sqrt(a * a + 1.0) + a)
    return 0.0


@numba.njit(cache=True, error_model="numpy")
def activation_derivative64(kind, a):
    """f'_kind(a) in plain float64."""
    if kind == 0:
        return 1.0
    if kind == 1:
        s = 1.0 / (1.0 + math.exp(-a))
        return s * (1.0 - s)
    if kind == 2:
        return 1.0 - math.tanh(a) ** 2
    if kind == 3:
        return 1.0 if a > 0 else 0.0
    if kind == 4:
        e = math.exp(-a)
        return (1.0 + e + a * e) / (1.0 + e) ** 2
    if kind == 6:
        return -1.0
    if kind == 7:
        return -1.0 / (a * a)
    if kind == 8:
        return -math.sin(a)
    if kind == 9:
        return 1.0 / (1.0 + a * a)
    if kind == 10:
        return 1.0 if a > 0 else 0.1 * math.exp(a)
    if kind == 11:
        return 1.0 / math.sqrt(a * a + 1.0)
    return 0.0


@numba.vectorize(["float64(int64, float64)"], cache=True)
def act_value64(kind, a):
    return activation64(kind, a)


@numba.vectorize(["float64(int64, float64)"], cache=True)
def act_derivative64(kind, a):
    return activation_derivative64(kind, a)
