"""Sixteen samples in one register: the vector type and the few operations the CPU kernels need.

The engine's hot loops are fma chains whose operands are per-sample rows (a parent's values, a
child's adjoints) and whose accumulator is the same for all samples of the minibatch. Written as
plain loops over the samples, numba keeps the accumulator in memory, so every step of a chain
waits for a store and a load. Here a block of LANES samples is one LLVM vector value: the chain
stays in a register and each step is one vector fma. Every lane computes exactly what the scalar
code computes for its sample (the same fma, the same order), so results are bit-identical.

`fma` is llvm.fma: one rounding, as the GPU's fmaf and the original's contracted a*b+c; LLVM emits
a vfmadd where the CPU has one and calls the correctly rounded libm fmaf elsewhere; `fma64` is the
same for float64 (the original's DFMA). `fma32` and `elementwise_fma64` are them elementwise over
arrays (the reference engine's). Under NUMBA_DISABLE_JIT (engine/jit.py) every name here is a
plain-Python stand-in (`exact_fma`, `exact_fma64`) with the same results.
"""
import math
from fractions import Fraction

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.core.datamodel import models
from numba.extending import intrinsic, register_model

from implicit_nn.engine import jit

LANES = 16
_FLOAT = ir.FloatType()


class Lanes(types.Type):
    """`width` float32 values held as one LLVM vector (a register, never memory)."""

    def __init__(self, width):
        self.width = width
        super().__init__(name=f"Lanes{width}xfloat32")


@register_model(Lanes)
class _LanesModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, ir.VectorType(_FLOAT, fe_type.width))


def _llvm_fma(builder, value_type, name):
    return cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(value_type, [value_type] * 3), name)


@intrinsic
def _fma32(typingctx, a, b, c):
    def codegen(context, builder, sig, args):
        return builder.call(_llvm_fma(builder, _FLOAT, "llvm.fma.f32"), args)
    return types.float32(types.float32, types.float32, types.float32), codegen


@numba.njit(cache=True, inline="always")
def fma(a, b, c):
    """a·b + c of float32 values with one rounding (engine.md §13.6)."""
    return _fma32(numba.float32(a), numba.float32(b), numba.float32(c))


@intrinsic
def _fma64(typingctx, a, b, c):
    def codegen(context, builder, sig, args):
        return builder.call(_llvm_fma(builder, ir.DoubleType(), "llvm.fma.f64"), args)
    return types.float64(types.float64, types.float64, types.float64), codegen


@numba.njit(cache=True, inline="always")
def fma64(a, b, c):
    """a·b + c of float64 values with one rounding (the original's double DFMA in Adam)."""
    return _fma64(numba.float64(a), numba.float64(b), numba.float64(c))


def _is_float32_c_array(arr):
    return isinstance(arr, types.Array) and arr.dtype == types.float32 and arr.layout == "C"


def _width(literal):
    """The vector width a constant argument asks for (None: not a usable constant)."""
    if isinstance(literal, types.IntegerLiteral) and literal.literal_value in (4, 8, 16):
        return literal.literal_value
    return None


def _vector_pointer(context, builder, array_type, array, flat, width):
    data = context.make_array(array_type)(context, builder, array).data
    return builder.bitcast(builder.gep(data, [flat]), ir.VectorType(_FLOAT, width).as_pointer())


@intrinsic(prefer_literal=True)
def zero(typingctx, width):
    """`width` zeros (width: the constant 4, 8 or 16)."""
    n = _width(width)
    if n is None:
        return None

    def codegen(context, builder, sig, args):
        return ir.Constant(ir.VectorType(_FLOAT, n), None)
    return Lanes(n)(width), codegen


@intrinsic(prefer_literal=True)
def load(typingctx, array, flat, width):
    """array.flat[flat:flat+width] of a C-contiguous float32 array; the caller keeps it in range."""
    n = _width(width)
    if n is None or not _is_float32_c_array(array):
        return None

    def codegen(context, builder, sig, args):
        pointer = _vector_pointer(context, builder, sig.args[0], args[0], args[1], n)
        return builder.load(pointer, align=4)
    return Lanes(n)(array, types.intp, width), codegen


@intrinsic
def at(typingctx, array, flat):
    """array.flat[flat] of a C-contiguous array, without numba's negative-index wraparound (the
    caller keeps it in range): in a tile's inner loop those checks cost more than the fma."""
    if not (isinstance(array, types.Array) and array.layout == "C" and
            isinstance(array.dtype, (types.Float, types.Integer))):
        return None

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        return builder.load(builder.gep(data, [args[1]]))
    return array.dtype(array, types.intp), codegen


def _shuffle(builder, a, b, mask):
    return builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(ir.IntType(32), 8), mask))


@intrinsic
def transpose8(typingctx, source, source_flat, source_stride, target, target_flat, target_stride):
    """target.flat[target_flat + j·target_stride + i] = source.flat[source_flat + i·source_stride
    + j] for i, j < 8 (C-contiguous float32 arrays; the caller keeps all in range): an 8×8 block
    in eight loads, 24 shuffles and eight stores (unpack, pair, swap the halves)."""
    if not (_is_float32_c_array(source) and _is_float32_c_array(target)):
        return None

    def codegen(context, builder, sig, args):
        src, src_at, src_step, dst, dst_at, dst_step = args
        r = [builder.load(_vector_pointer(context, builder, sig.args[0], src, builder.add(
            src_at, builder.mul(src_step, ir.Constant(src_step.type, i))), 8), align=4)
             for i in range(8)]
        lo, hi = [0, 8, 1, 9, 4, 12, 5, 13], [2, 10, 3, 11, 6, 14, 7, 15]
        t = [_shuffle(builder, r[i], r[i + 1], m) for i in (0, 2, 4, 6) for m in (lo, hi)]
        first, second = [0, 1, 8, 9, 4, 5, 12, 13], [2, 3, 10, 11, 6, 7, 14, 15]
        u = [_shuffle(builder, t[i], t[i + 2], m) for i in (0, 1, 4, 5) for m in (first, second)]
        low, high = [0, 1, 2, 3, 8, 9, 10, 11], [4, 5, 6, 7, 12, 13, 14, 15]
        columns = [_shuffle(builder, u[j], u[j + 4], half) for half in (low, high) for j in range(4)]
        for j, column in enumerate(columns):
            at = builder.add(dst_at, builder.mul(dst_step, ir.Constant(dst_step.type, j)))
            builder.store(column, _vector_pointer(context, builder, sig.args[3], dst, at, 8),
                          align=4)
        return context.get_dummy_value()
    return types.none(source, types.intp, types.intp, target, types.intp, types.intp), codegen


@intrinsic
def store(typingctx, array, flat, value):
    """array.flat[flat:flat+width] = value (C-contiguous float32; the caller keeps it in range)."""
    if not _is_float32_c_array(array) or not isinstance(value, Lanes):
        return None

    def codegen(context, builder, sig, args):
        pointer = _vector_pointer(context, builder, sig.args[0], args[0], args[1], value.width)
        builder.store(args[2], pointer, align=4)
        return context.get_dummy_value()
    return types.none(array, types.intp, value), codegen


@intrinsic
def fma_splat(typingctx, scalar, vector, acc):
    """fma(scalar, vector[j], acc[j]) in every lane j."""
    if scalar != types.float32 or not isinstance(vector, Lanes) or acc != vector:
        return None
    n = vector.width

    def codegen(context, builder, sig, args):
        vector_type = ir.VectorType(_FLOAT, n)
        first = builder.insert_element(ir.Constant(vector_type, ir.Undefined), args[0],
                                       ir.Constant(ir.IntType(32), 0))
        splat = builder.shuffle_vector(first, ir.Constant(vector_type, ir.Undefined),
                                       ir.Constant(ir.VectorType(ir.IntType(32), n), [0] * n))
        fn = _llvm_fma(builder, vector_type, f"llvm.fma.v{n}f32")
        return builder.call(fn, [splat, args[1], args[2]])
    return vector(types.float32, vector, vector), codegen


def _same_lanes(*args):
    return isinstance(args[0], Lanes) and all(a == args[0] for a in args)


def _lanewise(build, arity):
    """An intrinsic of `arity` Lanes arguments of one width: build(builder, *values) in every
    lane."""
    def codegen(context, builder, sig, values):
        return build(builder, *values)

    if arity == 1:
        @intrinsic
        def op(typingctx, a):
            return (a(a), codegen) if _same_lanes(a) else None
    elif arity == 2:
        @intrinsic
        def op(typingctx, a, b):
            return (a(a, b), codegen) if _same_lanes(a, b) else None
    else:
        @intrinsic
        def op(typingctx, a, b, c):
            return (a(a, b, c), codegen) if _same_lanes(a, b, c) else None
    return op


def _vector_fma(builder, a, b, c):
    return builder.call(_llvm_fma(builder, a.type, f"llvm.fma.v{a.type.count}f32"), [a, b, c])


def _fabs(builder, a):
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(a.type, [a.type]),
                                        f"llvm.fabs.v{a.type.count}f32")
    return builder.call(fn, [a])


# Lanewise float32 arithmetic, each operation rounded once as its scalar counterpart: a + b,
# a − b, a·b, fma(a, b, c), |a|, and `larger(a, b)`: a where a > b, else b (NaN a keeps b: the
# scalar `a if a > b else b`).
add = _lanewise(lambda builder, a, b: builder.fadd(a, b), 2)
sub = _lanewise(lambda builder, a, b: builder.fsub(a, b), 2)
mul = _lanewise(lambda builder, a, b: builder.fmul(a, b), 2)
fma_lanes = _lanewise(_vector_fma, 3)
absolute = _lanewise(_fabs, 1)
larger = _lanewise(lambda builder, a, b: builder.select(builder.fcmp_ordered(">", a, b), a, b), 2)


def _any(builder, flags):
    """i64 1 if any of the <n x i1> flags is set."""
    bits = builder.bitcast(flags, ir.IntType(flags.type.count))
    return builder.zext(builder.icmp_unsigned("!=", bits, ir.Constant(bits.type, 0)),
                        ir.IntType(64))


@intrinsic
def differ(typingctx, a, b):
    """1 if a lane of a and b differs in its bits (−0 and 0, NaN payloads), else 0."""
    if not isinstance(a, Lanes) or a != b:
        return None

    def codegen(context, builder, sig, args):
        ints = ir.VectorType(ir.IntType(32), a.width)
        x, y = builder.bitcast(args[0], ints), builder.bitcast(args[1], ints)
        return _any(builder, builder.icmp_unsigned("!=", x, y))
    return types.int64(a, b), codegen


@intrinsic
def any_finite(typingctx, a):
    """1 if a lane of a is finite (a − a == 0), else 0."""
    if not isinstance(a, Lanes):
        return None

    def codegen(context, builder, sig, args):
        value = args[0]
        zero_vector = ir.Constant(value.type, None)
        return _any(builder, builder.fcmp_ordered("==", builder.fsub(value, value), zero_vector))
    return types.int64(a), codegen


@intrinsic(prefer_literal=True)
def splat(typingctx, scalar, width):
    """`width` copies of a float32 (width: the constant 4, 8 or 16)."""
    n = _width(width)
    if n is None or scalar != types.float32:
        return None

    def codegen(context, builder, sig, args):
        vector_type = ir.VectorType(_FLOAT, n)
        first = builder.insert_element(ir.Constant(vector_type, ir.Undefined), args[0],
                                       ir.Constant(ir.IntType(32), 0))
        return builder.shuffle_vector(first, ir.Constant(vector_type, ir.Undefined),
                                      ir.Constant(ir.VectorType(ir.IntType(32), n), [0] * n))
    return Lanes(n)(scalar, width), codegen


def exact_fma(a, b, c):
    """fma(a, b, c) of float32 values (scalars or arrays) with one rounding, in NumPy: the float64
    product of two float32 values is exact, the float64 sum is rounded to odd (TwoSum gives its
    exact error), and a value rounded to odd with 29 spare bits rounds to float32 correctly."""
    a, b, c = (np.asarray(v, np.float32).astype(np.float64) for v in (a, b, c))
    with np.errstate(all="ignore"):     # IEEE results (inf, NaN) without warnings, as the kernels
        product = a * b
        total = product + c
        back = total - product
        error = (product - (total - back)) + (c - back)
        inexact_even = (error != 0) & np.isfinite(total) & ((total.view(np.int64) & 1) == 0)
        odd = np.nextafter(total, np.where(error > 0, np.inf, -np.inf))
        return np.where(inexact_even, odd, total).astype(np.float32)[()]


def exact_fma64(a, b, c):
    """fma(a, b, c) of float64 scalars with one rounding, in Python: exact rational arithmetic,
    rounded once by the correctly rounded int / int division of float(Fraction)."""
    a, b, c = float(a), float(b), float(c)
    if not all(map(math.isfinite, (a, b, c))):
        return a * b + c
    exact = Fraction(a) * Fraction(b) + Fraction(c)
    return float(exact) if exact else a * b + c     # an exact zero keeps IEEE's sign


if jit.DISABLED:        # plain Python: a block of samples is a NumPy array
    fma = fma_splat = exact_fma     # noqa: F811
    fma64 = exact_fma64             # noqa: F811

    def add(a, b):      # noqa: F811
        return (a + b).astype(np.float32)

    def sub(a, b):      # noqa: F811
        return (a - b).astype(np.float32)

    def mul(a, b):      # noqa: F811
        return (a * b).astype(np.float32)

    fma_lanes = exact_fma   # noqa: F811

    def absolute(a):    # noqa: F811
        return np.abs(a)

    def larger(a, b):   # noqa: F811
        return np.where(a > b, a, b)

    def differ(a, b):   # noqa: F811
        return int(np.any(a.view(np.int32) != b.view(np.int32)))

    def any_finite(a):  # noqa: F811
        return int(np.any(a - a == 0))

    def splat(scalar, width):   # noqa: F811
        return np.full(width, scalar, np.float32)

    def zero(width):    # noqa: F811
        return np.zeros(width, np.float32)

    def at(array, flat):            # noqa: F811
        return array.reshape(-1)[flat]

    def transpose8(source, source_flat, source_stride, target, target_flat,  # noqa: F811
                   target_stride):
        for i in range(8):
            for j in range(8):
                target.reshape(-1)[target_flat + j * target_stride + i] = \
                    source.reshape(-1)[source_flat + i * source_stride + j]

    def load(array, flat, width):   # noqa: F811
        return array.reshape(-1)[flat:flat + width].copy()

    def store(array, flat, value):  # noqa: F811
        array.reshape(-1)[flat:flat + value.size] = value


def _fma_elementwise(a, b, c):
    return fma(a, b, c)


def _fma64_elementwise(a, b, c):
    return fma64(a, b, c)


# fma(a, b, c) elementwise over float32 arrays, one rounding: the reference engine rounds every
# chain step as the kernels do (a float64 product+sum rounded to float32 would round twice).
fma32 = exact_fma if jit.DISABLED else \
    jit.ufunc("float32(float32, float32, float32)", np.float32)(_fma_elementwise)
# the same for float64 arrays: the original's Adam moments are double DFMAs
elementwise_fma64 = jit.ufunc("float64(float64, float64, float64)", np.float64)(_fma64_elementwise)
