"""The engine's compiled code under NUMBA_DISABLE_JIT=1: every kernel then runs as plain Python.

numba's `njit` already falls back to the Python function; what does not (ufuncs built by
`numba.vectorize`, the intrinsics of lanes.py and packing.py) checks `DISABLED` and uses a NumPy
stand-in with the same results, so that the numba engine can be stepped through and covered in
plain Python (tests/test_stages.py runs a slice of itself that way).
"""
import numba
import numpy as np

DISABLED = bool(numba.config.DISABLE_JIT)


class _LazyUfunc:
    """A numba.vectorize ufunc built on its first call. Building one costs 0.1-0.4 s even from
    numba's cache (its wrapper is compiled anew), and only the reference engine, gradcheck and
    tests call these: an import must not pay for them."""

    def __init__(self, scalar, signature):
        self.scalar, self.signature, self.built = scalar, signature, None
        self.__doc__ = scalar.__doc__

    def __call__(self, *args, **kwargs):
        if self.built is None:
            self.built = numba.vectorize([self.signature], cache=True)(self.scalar)
        return self.built(*args, **kwargs)


def ufunc(signature, otype):
    """numba.vectorize([signature], cache=True), built on first use; or np.vectorize of the
    Python function when compiling is disabled (vectorize would try to compile the plain-Python
    callees)."""
    def decorate(scalar):
        if DISABLED:
            return np.vectorize(scalar, otypes=[otype])
        return _LazyUfunc(scalar, signature)
    return decorate
