"""A compiled reader for well-formed data files: the common case of data.py in one pass.

`data.py`'s Python path splits lines and converts every literal with Python's `float()` and a
float32 tie fix; on the paper's 13 164-row training file that is 0.1 s of every run, most of it
correctly rounding 17-digit literals. Here one compiled pass over the file's bytes reads the
same rows into float32 and int64 arrays, or gives up (returns None) on anything but plain
decimal literals on one-sample lines, and on any value it cannot round with certainty: data.py
then reads the file as before, so values and error messages never depend on this module.

Each literal is read as an integer of at most 18 significant digits (later digits dropped, so
the value is that or at most 10^-17 relative above) times a power of ten; their double product
is within 4·2^-53 relative of the literal's value. Rounding that product to float32 gives
strtof's (correctly rounded) result unless it lies within 2^-48 relative of a midpoint between
two floats, where the literal's last digits could decide: such a file (about one literal in
10^7) goes the Python way, as do subnormals, overflows and literals of more than 80 decades.

Imported by the driver only (it loads numba); `implicit-nn check` reads with data.py alone.
"""
import math

import numpy as np
from numba import config, njit

_DIGITS = 18                                     # significant digits kept: < 2^63
_DECADES = 80                                    # powers of ten in the table: 10^-80 … 10^80
_POW10 = np.array([float(f"1e{k}") for k in range(-_DECADES, _DECADES + 1)])  # correctly rounded
_EXACT_INTEGER, _EXACT_DECADES = 2 ** 53, 22          # a product of these is exact
_MARGIN = 2.0 ** -48                             # above the product's error bound (2^-51)
_F32_MIN_NORMAL = 2.0 ** -126
_F32_TOP = 2.0 ** 127
_NEWLINE, _PLUS, _MINUS, _DOT, _ZERO, _NINE = 10, 43, 45, 46, 48, 57


def read(raw, rows, input_num, labeled):
    """(x float32 [rows, input_num], labels int64 [rows] or None) of a data file's bytes, or
    None when data.py's Python path must read it (and word any error)."""
    width = input_num + labeled
    if rows <= 0 or config.DISABLE_JIT:          # plain Python here would take seconds
        return None
    if rows > min(raw.count(b"\n") + 1, len(raw) // (2 * max(width, 1)) + 1):
        return None                              # more rows than the file can hold: the error
    x = np.empty((rows, input_num), dtype=np.float32)
    labels = np.empty(rows if labeled else 0, dtype=np.int64)
    if not _parse(np.frombuffer(raw, dtype=np.uint8), rows, input_num, labeled, x, labels):
        return None
    return x, (labels if labeled else None)


@njit(cache=True)
def _is_blank(c):
    """C isspace except the newline, which ends a sample (' ', \\t, \\v, \\f, \\r)."""
    return c == 32 or (9 <= c <= 13 and c != _NEWLINE)


@njit(cache=True)
def _ends_token(buf, pos):
    return pos >= buf.shape[0] or _is_blank(buf[pos]) or buf[pos] == _NEWLINE


@njit(cache=True)
def _float32(buf, pos, out):
    """The decimal literal at `pos` into out[0] (float32 as strtof); the position after it, or
    -1 when it is not a plain decimal literal or cannot be rounded with certainty."""
    n = buf.shape[0]
    negative = False
    if buf[pos] == _PLUS or buf[pos] == _MINUS:
        negative = buf[pos] == _MINUS
        pos += 1
    mantissa, kept, exponent, digits, dropped = 0, 0, 0, 0, False
    while pos < n and _ZERO <= buf[pos] <= _NINE:          # integer part
        digits += 1
        if kept < _DIGITS:
            if mantissa or buf[pos] != _ZERO:
                mantissa = mantissa * 10 + (buf[pos] - _ZERO)
                kept += mantissa > 0
        else:
            exponent += 1
            dropped = dropped or buf[pos] != _ZERO
        pos += 1
    if pos < n and buf[pos] == _DOT:                        # fraction
        pos += 1
        while pos < n and _ZERO <= buf[pos] <= _NINE:
            digits += 1
            if kept < _DIGITS:
                mantissa = mantissa * 10 + (buf[pos] - _ZERO)
                kept += mantissa > 0
                exponent -= 1
            else:
                dropped = dropped or buf[pos] != _ZERO
            pos += 1
    if digits == 0:
        return -1
    if pos < n and (buf[pos] == 101 or buf[pos] == 69):    # e, E
        pos += 1
        sign = 1
        if pos < n and (buf[pos] == _PLUS or buf[pos] == _MINUS):
            sign = -1 if buf[pos] == _MINUS else 1
            pos += 1
        if pos >= n or not _ZERO <= buf[pos] <= _NINE:
            return -1
        power = 0
        while pos < n and _ZERO <= buf[pos] <= _NINE:
            if power < 100000:
                power = power * 10 + (buf[pos] - _ZERO)
            pos += 1
        exponent += sign * power
    if not _ends_token(buf, pos):
        return -1
    if mantissa == 0:
        out[0] = np.float32(-0.0) if negative else np.float32(0.0)
        return pos
    if exponent < -_DECADES or exponent > _DECADES:
        return -1
    value = np.float64(mantissa) * _POW10[exponent + _DECADES]
    if value < _F32_MIN_NORMAL or value >= _F32_TOP:
        return -1
    rounded = np.float32(value)
    if not dropped and mantissa <= _EXACT_INTEGER and 0 <= exponent <= _EXACT_DECADES:
        out[0] = -rounded if negative else rounded           # value is the literal's, exactly
        return pos
    fraction, power2 = math.frexp(np.float64(rounded))
    if fraction == 0.5 and value < rounded:                 # the float below is closer spaced
        return -1
    half_ulp = math.ldexp(1.0, power2 - 25)
    if abs(abs(value - np.float64(rounded)) - half_ulp) <= value * _MARGIN:
        return -1
    out[0] = -rounded if negative else rounded
    return pos


@njit(cache=True)
def _label(buf, pos, labels, row):
    """A label of 1-18 decimal digits (no sign) into labels[row]; the position after, or -1."""
    n, value, digits = buf.shape[0], 0, 0
    while pos < n and _ZERO <= buf[pos] <= _NINE:
        value = value * 10 + (buf[pos] - _ZERO)
        digits += 1
        pos += 1
    if digits == 0 or digits > _DIGITS or not _ends_token(buf, pos):
        return -1
    labels[row] = value
    return pos


@njit(cache=True)
def _parse(buf, rows, input_num, labeled, x, labels):
    """The first `rows` lines with values, each exactly input_num values (+ a label); lines of
    blanks are skipped, later lines ignored. False: read the file the Python way."""
    n = buf.shape[0]
    width = input_num + (1 if labeled else 0)
    value = np.empty(1, dtype=np.float32)
    pos, row = 0, 0
    while row < rows:
        count = 0
        while True:
            while pos < n and _is_blank(buf[pos]):
                pos += 1
            if pos >= n or buf[pos] == _NEWLINE:
                break
            if buf[pos] > 127 or count >= width:
                return False
            if count < input_num:
                pos = _float32(buf, pos, value)
                if pos < 0:
                    return False
                x[row, count] = value[0]
            else:
                pos = _label(buf, pos, labels, row)
                if pos < 0:
                    return False
            count += 1
        if count:
            if count != width:
                return False
            row += 1
        if pos >= n:
            return row == rows
        pos += 1                                            # the newline
    return True
