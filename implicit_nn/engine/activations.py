"""Activation functions by id (engine.md §2), value and derivative at the pre-activation.

One source of formulas for every engine: the numba engine calls the scalar `activation` /
`activation_derivative` from its kernels, the reference engine uses the ufuncs `act_value` /
`act_derivative`. They round as the original's compiled device code (docs/compatibility.md, fma
table): float64 from a double literal on, rounded to float32 where the original stores into a
float, fma where nvcc fused, and CUDA's own atanf/expf/tanhf/logf (engine/cudamath.py). The
host code of the original (predictions' sigmoid) keeps the C library: `host_sigmoid`.
"""
import math

import numba
import numpy as np

from implicit_nn.engine import cudamath, jit
from implicit_nn.engine.lanes import fma
from implicit_nn.network import ACTIVATION_IDS

f32 = np.float32
f64 = np.float64

IDENTITY, SIGMOID, TANH, RELU, SILU, ZERO, ONE_MINUS, INVERSE, COS, ATAN, ELU, ASINH = ACTIVATION_IDS


@numba.njit(cache=True, error_model="numpy")
def host_sigmoid(a):
    """σ(a) as the original's host code: the C library's expf, 1.0 + e and the division in double
    (prediction transform and seed of bce_multilabeling)."""
    e = math.exp(-f32(a))
    return f32(1.0 / (1.0 + f64(e)))


@numba.njit(cache=True, error_model="numpy")
def sigmoid(a):
    """σ(a) on the device: CUDA's expf, 1.0 + e and the division in double."""
    return f32(1.0 / (1.0 + f64(cudamath.expf(-a))))


@numba.njit(cache=True, inline="always", error_model="numpy")
def _asinh_root(a):
    """sqrtf(a·a + 1.0): the compiled original narrows the double sum to float and fuses it."""
    return f32(math.sqrt(fma(a, a, f32(1.0))))


@numba.njit(cache=True, error_model="numpy")
def activation(kind, a):
    """f_kind(a) for float32 a, rounded as the original's device code; unknown ids give 0."""
    a = f32(a)
    if kind == 0:
        return a
    if kind == 1:
        return sigmoid(a)
    if kind == 2:
        return cudamath.tanhf(a)
    if kind == 3:
        return a if a > 0 else f32(0.0)
    if kind == 4:
        return f32(f64(a) / (1.0 + f64(cudamath.expf(-a))))
    if kind == 6:
        return f32(1.0 - f64(a))
    if kind == 7:
        return f32(1.0 / f64(a))
    if kind == 8:
        return f32(math.cos(a))
    if kind == 9:
        return cudamath.atanf(a)
    if kind == 10:
        if a > 0:
            return a
        return f32(0.1 * (f64(cudamath.expf(a)) - 1.0))
    if kind == 11:
        return cudamath.logf(f32(_asinh_root(a) + a))
    return f32(0.0)


@numba.njit(cache=True, error_model="numpy")
def activation_derivative(kind, a):
    """f'_kind(a) for float32 a (at the pre-activation), rounded as the original's device code;
    unknown ids give 0."""
    a = f32(a)
    if kind == 0:
        return f32(1.0)
    if kind == 1:
        s = sigmoid(a)
        return f32(f64(s) * (1.0 - f64(s)))
    if kind == 2:
        t = cudamath.tanhf(a)
        return fma(-t, t, f32(1.0))      # 1.0 − t·t narrowed to float and fused by nvcc
    if kind == 3:
        return f32(1.0) if a > 0 else f32(0.0)
    if kind == 4:
        e = cudamath.expf(-a)
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
        return f32(0.1 * f64(cudamath.expf(a)))
    if kind == 11:
        return f32(1.0 / f64(_asinh_root(a)))
    return f32(0.0)


@jit.ufunc("float32(int64, float32)", np.float32)
def act_value(kind, a):
    """Elementwise f_kind(a) (ufunc over arrays of ids and float32 values)."""
    return activation(kind, a)


@jit.ufunc("float32(float32)", np.float32)
def host_sigmoid_value(a):
    """Elementwise host σ (prediction transform of bce_multilabeling)."""
    return host_sigmoid(a)


@jit.ufunc("float32(int64, float32)", np.float32)
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


@jit.ufunc("float64(int64, float64)", np.float64)
def act_value64(kind, a):
    return activation64(kind, a)


@jit.ufunc("float64(int64, float64)", np.float64)
def act_derivative64(kind, a):
    return activation_derivative64(kind, a)
