"""CUDA's own float32 maths (libdevice of CUDA 11.x, the original's toolkit) for the CPU engines.

The original evaluates its activation functions on the GPU, where `atanf`, `expf`, `logf`, … are
libdevice's instruction sequences, not the C library's. Each function here performs the
sequence that libdevice 11.8 compiles to (read from the PTX of a one-line kernel, nvcc 11.8,
compute_52 as the original's default build): the same constants, the same float32 operations in
the same order, `fma` where the PTX has `fma.rn`, IEEE division where it has `rcp.rn`/`div.rn`.
Written from those instruction listings; results are bit-identical to the device for every
input where the sequence uses only IEEE-rounded operations (atanf, logf, sinf, cosf, sqrtf).

Two hardware instructions are approximations whose exact results NVIDIA does not document:
`ex2.approx.ftz.f32` (MUFU.EX2, used by expf, tanhf, powf) and `rcp.approx.ftz.f32` (MUFU.RCP,
used by tanhf, powf). They are modelled here by the correctly rounded result (flush-to-zero as
`.ftz`); the PTX manual bounds the hardware's error (ex2: 2 ulp, rcp: 1 ulp), so results of those
functions are the device's only where the hardware rounds correctly (docs/compatibility.md).
"""
import math

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from implicit_nn.engine import jit
from implicit_nn.engine.lanes import fma

f32 = np.float32
f64 = np.float64


def _bits(word):
    """The float32 whose IEEE bit pattern is `word` (libdevice's constants are given as bits)."""
    return np.array([word], np.uint32).view(np.float32)[0]


# atanf: rational approximation on [0, 1] (numerator and denominator in r², r = |x| or 1/|x|)
_ATAN_P0, _ATAN_P1, _ATAN_P2 = _bits(0xBF52C7EA), _bits(0xC0B59883), _bits(0xC0D21907)
_ATAN_Q0, _ATAN_Q1, _ATAN_Q2 = _bits(0x41355DC0), _bits(0x41E6BD60), _bits(0x419D92C8)
_HALF_PI = _bits(0x3FC90FDB)
_ONE = f32(1.0)


@numba.njit(cache=True, inline="always", error_model="numpy")
def atanf(x):
    """libdevice atanf: |x| > 1 through the correctly rounded reciprocal and π/2 − atan(1/|x|)."""
    x = f32(x)
    a = abs(x)
    r = a
    if a > _ONE:
        r = f32(_ONE / a)
    s = f32(r * r)
    p = fma(fma(s, _ATAN_P0, _ATAN_P1), s, _ATAN_P2)
    t = f32(r * f32(s * p))
    q = fma(fma(f32(s + _ATAN_Q0), s, _ATAN_Q1), s, _ATAN_Q2)
    result = fma(t, f32(_ONE / q), r)
    if a > _ONE:
        result = f32(_HALF_PI - result)
    if a <= np.inf:                 # not NaN: the sign of x
        result = f32(math.copysign(result, x))
    return result


# -- bit patterns ------------------------------------------------------------------------------
_INT32 = ir.IntType(32)


@intrinsic
def float_bits(typingctx, x):
    """The IEEE bit pattern of a float32 as int32 (PTX mov.b32)."""
    if x != types.float32:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], _INT32)
    return types.int32(types.float32), codegen


@intrinsic
def bits_float(typingctx, i):
    """The float32 with bit pattern i (int32)."""
    if i != types.int32:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


if jit.DISABLED:        # plain Python (engine/jit.py): the same bit casts in NumPy
    def float_bits(x):  # noqa: F811
        return np.float32(x).view(np.int32)

    def bits_float(i):  # noqa: F811
        return np.int32(i).view(np.float32)


# -- the two approximate hardware instructions (models, see the module docstring) -------------
_MIN_NORMAL = _bits(0x00800000)


@numba.njit(cache=True, inline="always", error_model="numpy")
def _ftz(x):
    """Flush a subnormal float32 to a zero of the same sign (the .ftz modifier)."""
    return f32(math.copysign(f32(0.0), x)) if abs(x) < _MIN_NORMAL else x


@numba.njit(cache=True, inline="always", error_model="numpy")
def ex2_approx_ftz(x):
    """Model of PTX ex2.approx.ftz.f32: 2^x correctly rounded, subnormal input and output
    flushed to zero (the hardware's own rounding is undocumented: ≤ 2 ulp per the PTX manual;
    where the original's GPU differs shows in the published v2 runs, docs/compatibility.md)."""
    return _ftz(f32(math.exp2(f64(_ftz(f32(x))))))


@numba.njit(cache=True, inline="always", error_model="numpy")
def rcp_approx_ftz(x):
    """Model of PTX rcp.approx.ftz.f32: 1/x correctly rounded, subnormals flushed to zero
    (the hardware's own rounding is undocumented: ≤ 1 ulp per the PTX manual)."""
    return _ftz(f32(_ONE / _ftz(f32(x))))


# -- expf ----------------------------------------------------------------------------------------
_EXP_SCALE, _EXP_ROUND = _bits(0x3BBB989D), _bits(0x4B400001)
_EXP_BIAS, _LOG2E_HI, _LOG2E_LO = _bits(0xCB40007F), _bits(0x3FB8AA3B), _bits(0x32A57060)


@numba.njit(cache=True, inline="always", error_model="numpy")
def _saturate(x):
    """PTX cvt.sat.f32.f32: clamp to [0, 1], NaN to 0."""
    if x > _ONE:
        return _ONE
    return x if x > f32(0.0) else f32(0.0)


@numba.njit(cache=True, inline="always", error_model="numpy")
def _exponent_step(t):
    """PTX fma.rm.f32(t, 252, 2^23·1.5 + 1) for t ∈ [0, 1]: the exact sum (exact in float64)
    lies in [2^23, 2^24), where float32 steps by 1, so rounding toward −∞ is the floor."""
    return f32(math.floor(f64(t) * 252.0 + f64(_EXP_ROUND)))


@numba.njit(cache=True, inline="always", error_model="numpy")
def expf(x):
    """libdevice expf: 2^k from the exponent bits, ex2.approx on the reduced argument."""
    x = f32(x)
    j = _exponent_step(_saturate(fma(x, _EXP_SCALE, f32(0.5))))
    k = f32(j + _EXP_BIAS)
    r = fma(x, _LOG2E_LO, fma(x, _LOG2E_HI, -k))
    scale = bits_float(np.int32(float_bits(j) << 23))
    return f32(ex2_approx_ftz(r) * scale)


# -- logf ----------------------------------------------------------------------------------------
_TWO23, _MINUS23, _TWO_M23 = _bits(0x4B000000), _bits(0xC1B80000), _bits(0x34000000)
_LOG_C = (_bits(0xBE055027), _bits(0x3E1039F6), _bits(0xBDF8CDCC), _bits(0x3E0F2955),
          _bits(0xBE2AD8B9), _bits(0x3E4CED0B), _bits(0xBE7FFF22), _bits(0x3EAAAA78),
          _bits(0xBF000000))
_LN2 = _bits(0x3F317218)
_OFFSET_2_3 = np.int32(0x3F2AAAAB)       # the mantissa is reduced to [2/3, 4/3)
_EXPONENT_MASK = np.int32(-8388608)      # 0xFF800000


@numba.njit(cache=True, inline="always", error_model="numpy")
def logf(x):
    """libdevice logf: x = 2^e·m with m ∈ [2/3, 4/3), log1p(m − 1) by a degree-9 polynomial."""
    x = f32(x)
    adjust = f32(0.0)
    if x < _MIN_NORMAL:                  # subnormal (and negative) inputs are scaled by 2^23
        x = f32(x * _TWO23)
        adjust = _MINUS23
    i = float_bits(x)
    e_bits = np.int32(np.int32(i - _OFFSET_2_3) & _EXPONENT_MASK)
    m = bits_float(np.int32(i - e_bits))
    e = fma(f32(e_bits), _TWO_M23, adjust)
    f = f32(m - _ONE)
    p = fma(_LOG_C[0], f, _LOG_C[1])
    for c in _LOG_C[2:]:
        p = fma(p, f, c)
    result = fma(e, _LN2, fma(f32(f * p), f, f))
    if np.uint32(i) >= np.uint32(0x7F800000):     # +inf, NaN or negative
        result = fma(x, f32(np.inf), f32(np.inf))
    if x == f32(0.0):
        result = f32(-np.inf)
    return result


# -- tanhf ---------------------------------------------------------------------------------------
_TANH_SMALL, _TANH_ONE = _bits(0x3F19999A), _bits(0x41102CB4)   # 0.6, beyond: ±1
_TWO_LOG2E = _bits(0x4038AA3B)
_TANH_C = (_bits(0x3C80F082), _bits(0xBD563CAE), _bits(0x3E085941), _bits(0xBEAAA9ED))


@numba.njit(cache=True, inline="always", error_model="numpy")
def tanhf(x):
    """libdevice tanhf: odd polynomial below 0.6, else 1 − 2/(1 + e^{2|x|}) with ex2.approx and
    rcp.approx (see the models above), ±1 from 9.01 on."""
    x = f32(x)
    a = abs(x)
    if a >= _TANH_SMALL:
        e = ex2_approx_ftz(f32(a * _TWO_LOG2E))
        t = fma(rcp_approx_ftz(f32(e + _ONE)), f32(-2.0), _ONE)
        if a >= _TANH_ONE:
            t = _ONE
        return f32(math.copysign(t, x))
    s = f32(x * x)
    p = fma(_TANH_C[0], s, _TANH_C[1])
    p = fma(p, s, _TANH_C[2])
    p = fma(p, s, _TANH_C[3])
    p = fma(p, s, f32(0.0))
    return fma(p, x, x)
