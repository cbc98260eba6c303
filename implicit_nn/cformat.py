"""C printf emulation for the original's output files.

Python's %-formatting equals glibc for finite values and inf; only the sign of NaN differs
(glibc prints `-nan` when the sign bit is set), so NaN is handled here.
"""

import math
import struct

import numpy as np


def _nan_text(x, upper):
    negative = struct.pack(">d", float(x))[0] & 0x80
    text = "-nan" if negative else "nan"
    return text.upper() if upper else text


def cfmt(spec, x):
    """Format one float like C's printf(spec): spec is e.g. '%f', '%10.6f', '%10.2E'."""
    x = float(np.float64(x))
    if math.isnan(x):
        width = spec[1:].split(".")[0].rstrip("fFeE") or "0"
        return _nan_text(x, spec[-1].isupper()).rjust(int(width))
    return spec % x


def cfloat(x):
    """`%f` of a float32/float value, as the backup and prediction files use."""
    return cfmt("%f", x)
