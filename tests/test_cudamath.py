"""CUDA-exact float32 maths (engine/cudamath.py) against an independent executable form of the
PTX that libdevice 11.8 compiles each function to (nvcc 11.8, one-line kernel, compute_52).

The listings below are those PTX sequences written as predicated straight-line code (a branch
over a block becomes a predicate on its instructions; register names shortened). A small
vectorised interpreter runs them over millions of float32 inputs with numpy: IEEE float32
arithmetic from numpy, fma exactly rounded by a float64 round-to-odd sum (independent of the
llvm.fma the engines use), and the two approximate instructions (ex2.approx, rcp.approx) by
the same documented model as cudamath. Results must agree bit for bit (any NaN equals any NaN).
"""
import numba
import numpy as np
import pytest

from implicit_nn.engine import cudamath

ATANF = """
abs.f32 a, x
setp.gt.f32 big, a, 0f3F800000
mov.f32 r, a
@big rcp.rn.f32 r, a
mul.rn.f32 s, r, r
fma.rn.f32 p, s, 0fBF52C7EA, 0fC0B59883
fma.rn.f32 p, p, s, 0fC0D21907
mul.f32 t, s, p
mul.f32 t, r, t
add.f32 q, s, 0f41355DC0
fma.rn.f32 q, q, s, 0f41E6BD60
fma.rn.f32 q, q, s, 0f419D92C8
rcp.rn.f32 q, q
fma.rn.f32 y, t, q, r
sub.f32 w, 0f3FC90FDB, y
selp.f32 y, w, y, big
mov.b32 yb, y
mov.b32 xb, x
and.b32 sign, xb, -2147483648
or.b32 yb, sign, yb
mov.b32 signed, yb
setp.le.f32 finite, a, 0f7F800000
selp.f32 out, signed, y, finite
"""

EXPF = """
fma.rn.f32 t, x, 0f3BBB989D, 0f3F000000
cvt.sat.f32.f32 t, t
fma.rm.f32 j, t, 0f437C0000, 0f4B400001
add.f32 k, j, 0fCB40007F
neg.f32 k, k
fma.rn.f32 r, x, 0f3FB8AA3B, k
fma.rn.f32 r, x, 0f32A57060, r
mov.b32 jb, j
shl.b32 jb, jb, 23
mov.b32 scale, jb
ex2.approx.ftz.f32 e, r
mul.f32 out, e, scale
"""

LOGF = """
setp.lt.f32 tiny, x, 0f00800000
mul.f32 xs, x, 0f4B000000
selp.f32 v, xs, x, tiny
selp.f32 adj, 0fC1B80000, 0f00000000, tiny
mov.b32 i, v
add.s32 t, i, -1059760811
and.b32 eb, t, -8388608
sub.s32 mb, i, eb
mov.b32 m, mb
cvt.rn.f32.s32 ef, eb
fma.rn.f32 e, ef, 0f34000000, adj
add.f32 f, m, 0fBF800000
fma.rn.f32 p, 0fBE055027, f, 0f3E1039F6
fma.rn.f32 p, p, f, 0fBDF8CDCC
fma.rn.f32 p, p, f, 0f3E0F2955
fma.rn.f32 p, p, f, 0fBE2AD8B9
fma.rn.f32 p, p, f, 0f3E4CED0B
fma.rn.f32 p, p, f, 0fBE7FFF22
fma.rn.f32 p, p, f, 0f3EAAAA78
fma.rn.f32 p, p, f, 0fBF000000
mul.f32 q, f, p
fma.rn.f32 q, q, f, f
fma.rn.f32 out, e, 0f3F317218, q
setp.ge.u32 special, i, 2139095040
@special fma.rn.f32 out, v, 0f7F800000, 0f7F800000
setp.eq.f32 zero, v, 0f00000000
selp.f32 out, 0fFF800000, out, zero
"""

TANHF = """
abs.f32 a, x
mul.f32 u, a, 0f4038AA3B
ex2.approx.ftz.f32 e, u
add.f32 d, e, 0f3F800000
rcp.approx.ftz.f32 d, d
fma.rn.f32 big, d, 0fC0000000, 0f3F800000
setp.ge.f32 one, a, 0f41102CB4
selp.f32 big, 0f3F800000, big, one
mov.b32 bb, big
mov.b32 xb, x
and.b32 sign, xb, -2147483648
or.b32 bb, sign, bb
mov.b32 big, bb
mul.f32 s, x, x
fma.rn.f32 p, 0f3C80F082, s, 0fBD563CAE
fma.rn.f32 p, p, s, 0f3E085941
fma.rn.f32 p, p, s, 0fBEAAA9ED
fma.rn.f32 p, p, s, 0f00000000
fma.rn.f32 small, p, x, x
setp.ltu.f32 near, a, 0f3F19999A
selp.f32 out, small, big, near
"""

F32, U32, I32 = np.float32, np.uint32, np.int32


def _const(token):
    if token.startswith("0f"):
        return np.array([int(token[2:], 16)], U32).view(F32)[0]
    return int(token)


def _fma_exact(a, b, c, down=False):
    """float32 fma with one rounding: the float64 sum rounded to odd, then to float32 (exact for
    products of float32 values); `down` rounds toward −∞ instead of to nearest."""
    a, b, c = (np.asarray(v, np.float64) for v in (a, b, c))
    with np.errstate(all="ignore"):
        p = a * b                                   # exact: 24 + 24 bits
        s = p + c
        bb = s - p
        err = (p - (s - bb)) + (c - bb)             # TwoSum: s + err == p + c exactly
        bits = s.view(np.uint64)
        odd = np.where((err != 0) & np.isfinite(s) & ((bits & 1) == 0),
                       np.where((err > 0) == (s > 0), bits + 1, bits - 1), bits)
        s = np.where(np.isfinite(s), odd.view(np.float64), s)
        if not down:
            return s.astype(F32)
        exact_hi, exact_lo = p + c, err
        r = s.astype(F32)
        over = (r.astype(np.float64) - exact_hi) > exact_lo
        return np.where(over & np.isfinite(r), np.nextafter(r, F32(-np.inf)), r)


def _ftz(v):
    v = np.asarray(v, F32)
    return np.where(np.abs(v) < np.finfo(F32).tiny, np.copysign(F32(0), v), v)


def run(listing, x):
    """Interpret a listing over the float32 array x; returns the register `out`."""
    reg = {"x": x}

    def val(token, kind):
        if token in reg:
            v = reg[token]
        else:
            v = _const(token)
            v = np.full(x.shape, v, F32 if isinstance(v, np.floating) else np.int64)
        if kind == "f":
            return np.asarray(v).view(F32) if np.asarray(v).dtype == I32 else np.asarray(v, F32)
        return np.asarray(v).astype(np.int64).astype(I32) if np.asarray(v).dtype != F32 \
            else np.asarray(v).view(I32)

    with np.errstate(all="ignore"):
        for line in listing.strip().splitlines():
            pred = None
            if line.startswith("@"):
                pred, line = line[1:].split(" ", 1)
            op, args = line.split(" ", 1)
            dst, *src = [a.strip() for a in args.split(",")]
            f = [val(s, "f") if not s.isidentifier() or s in reg else None for s in src]
            if op in ("abs.f32", "neg.f32", "mov.f32"):
                out = {"abs.f32": np.abs, "neg.f32": np.negative, "mov.f32": np.asarray}[op](f[0])
            elif op in ("mul.f32", "mul.rn.f32"):
                out = f[0] * f[1]
            elif op in ("add.f32", "add.rn.f32"):
                out = f[0] + f[1]
            elif op == "sub.f32":
                out = f[0] - f[1]
            elif op in ("fma.rn.f32", "fma.rm.f32"):
                out = _fma_exact(f[0], f[1], f[2], down=op == "fma.rm.f32")
            elif op == "rcp.rn.f32":
                out = F32(1) / f[0]
            elif op == "rcp.approx.ftz.f32":
                out = _ftz(F32(1) / _ftz(f[0]))
            elif op == "ex2.approx.ftz.f32":
                out = _ftz(np.exp2(_ftz(f[0]).astype(np.float64)).astype(F32))
            elif op == "cvt.sat.f32.f32":
                out = np.where(f[0] > 1, F32(1), np.where(f[0] > 0, f[0], F32(0)))
            elif op == "cvt.rn.f32.s32":
                out = val(src[0], "i").astype(F32)
            elif op.startswith("setp."):
                cmp = op.split(".")[1]
                if op.endswith(".u32"):
                    a_, b_ = (val(s, "i").view(U32) for s in src)
                else:
                    a_, b_ = f
                unordered = np.isnan(a_) | np.isnan(b_) if a_.dtype == F32 else False
                base = {"lt": np.less, "le": np.less_equal, "gt": np.greater,
                        "ge": np.greater_equal, "eq": np.equal, "ne": np.not_equal}[cmp.rstrip("u")]
                out = base(a_, b_) | (unordered if cmp.endswith("u") and cmp != "eq" else False)
            elif op.startswith("selp."):
                out = np.where(reg[src[2]], val(src[0], "f"), val(src[1], "f"))
            elif op == "mov.b32":
                v = reg[src[0]]
                out = v.view(I32) if v.dtype == F32 else v.view(F32)
            elif op in ("and.b32", "or.b32", "add.s32", "sub.s32", "shl.b32"):
                a_, b_ = val(src[0], "i"), val(src[1], "i")
                out = {"and.b32": np.bitwise_and, "or.b32": np.bitwise_or, "add.s32": np.add,
                       "sub.s32": np.subtract, "shl.b32": np.left_shift}[op](a_, b_).astype(I32)
            else:
                raise ValueError(op)
            if pred is not None:
                out = np.where(reg[pred], out, reg[dst])
            reg[dst] = out
    return reg["out"]


def inputs(count, seed=0):
    """Every special value, then random bit patterns (all classes: ±0, subnormal, normal, ±inf,
    NaN) and dense samples of the ranges the activations meet."""
    rng = np.random.default_rng(seed)
    special = np.array([0.0, -0.0, 1e-45, -1e-45, 1e-40, 1.1754942e-38, 1.17549435e-38, 0.5, 0.6,
                        1.0, -1.0, 2.0, 9.010913, 88.72283, 88.72284, -87.33655, -103.97, 1e30,
                        3.4028235e38, np.inf, -np.inf, np.nan], F32)
    bits = rng.integers(0, 2**32, count // 2, dtype=np.uint64).astype(U32).view(F32)
    dense = rng.uniform(-20, 20, count // 2).astype(F32)
    return np.concatenate([special, bits, dense])


def same_bits(got, want):
    got, want = np.asarray(got, F32), np.asarray(want, F32)
    return (got.view(U32) == want.view(U32)) | (np.isnan(got) & np.isnan(want))


def _vectorised(function):
    return numba.vectorize(["float32(float32)"])(function)


@pytest.mark.parametrize("name, listing", [("atanf", ATANF), ("expf", EXPF), ("logf", LOGF),
                                           ("tanhf", TANHF)])
def test_function_equals_its_ptx_on_millions_of_inputs(name, listing):
    x = inputs(2_000_000)
    got = _vectorised(getattr(cudamath, name).py_func)(x)
    want = run(listing, x)
    bad = ~same_bits(got, want)
    assert not bad.any(), (name, x[bad][:5], got[bad][:5], want[bad][:5])
