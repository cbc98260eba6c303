"""The engine's compiled code under NUMBA_DISABLE_JIT=1: every kernel then runs as plain Python.

numba's `njit` already falls back to the Python function; what does not (ufuncs built by
`numba.vectorize`, the intrinsics of lanes.py and packing.py) checks `DISABLED` and uses a NumPy
stand-in with the same results, so that the numba engine can be stepped through and covered in
plain Python (tests/test_stages.py runs a slice of itself that way).
"""
import numba
import numpy as np

DISABLED = bool(numba.config.DISABLE_JIT)


def ufunc(signature, otype):
    """numba.vectorize([signature], cache=True), or np.vectorize of the Python function when
    compiling is disabled (vectorize would try to compile the plain-Python callees)."""
    def decorate(scalar):
        if DISABLED:
            return np.vectorize(scalar, otypes=[otype])
        return numba.vectorize([signature], cache=True)(scalar)
    return decorate
