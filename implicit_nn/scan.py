"""Character-level emulation of the original's fscanf reading (inputs.md §2), with line numbers.

The original reads every text input as a token stream with `%s`, `%llu` and `%f` and never checks
a return value. We scan the same way (so `1;` yields 1 and leaves `;`) but turn every failure into
an InputError naming the file, the line and what was expected.
"""

import os
import re
from decimal import Decimal
from fractions import Fraction

import numpy as np

from .errors import InputError, shown

_WS = " \t\n\x0b\x0c\r"                       # C isspace in the "C" locale
_SKIP_WS = re.compile(f"[{_WS}]*")
_TOKEN = re.compile(f"[^{_WS}]+")
_U64 = re.compile(r"[+-]?[0-9]+")
# longest prefix strtod accepts; hex first because alternation is ordered, not longest-match
_FLOAT = re.compile(r"""[+-]?(?:
      0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?
    | (?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?
    | [iI][nN][fF](?:[iI][nN][iI][tT][yY])?
    | [nN][aA][nN](?:\([0-9A-Za-z_]*\))?
    )""", re.X)
_HEX = re.compile(r"([+-]?)0[xX]([0-9a-fA-F]*)\.?([0-9a-fA-F]*)(?:[pP]([+-]?[0-9]+))?")

U64_MAX = 2**64 - 1
U64_DIGITS = len(str(U64_MAX))
_F32_TOP = 2.0**128                           # where float32 rounding overflows to inf


def _exact(literal):
    """The exact rational value of a finite C float literal (decimal or hex)."""
    m = _HEX.fullmatch(literal)
    if m is None:
        return Fraction(Decimal(literal))       # no int-string length limit on the way
    sign, whole, frac, exp = m.groups()
    value = Fraction(int(whole + frac or "0", 16)) * Fraction(2) ** (int(exp or 0) - 4 * len(frac))
    return -value if sign == "-" else value


def _fix_ties(d, f, literals):
    """Correct float32 rounding where the double `d` sits exactly half-way between two floats.

    d: float64 array (already the correctly rounded double), f: its float32 cast (RNE on d).
    Only then can double rounding differ from direct rounding; the exact literal decides.
    """
    g = f.astype(np.float64)
    finite = np.isfinite(d)
    miss = finite & (g != d)
    if not miss.any():
        return f
    idx = np.flatnonzero(miss)
    up = d[idx] > g[idx]
    with np.errstate(over="ignore"):            # FLT_MAX's neighbour is inf, as intended
        other = np.where(up, np.nextafter(f[idx], np.float32(np.inf)),
                         np.nextafter(f[idx], np.float32(-np.inf)))
    a = np.where(np.isinf(g[idx]), np.copysign(_F32_TOP, g[idx]), g[idx])
    b = other.astype(np.float64)
    b = np.where(np.isinf(b), np.copysign(_F32_TOP, b), b)
    tie = (a + b) / 2 == d[idx]
    for k in np.flatnonzero(tie):
        i = idx[k]
        exact, dd = _exact(literals[i]), Fraction(float(d[i]))
        if exact != dd and (exact > dd) == bool(up[k]):
            f[i] = other[k]              # the exact value lies on the neighbour's side
    return f


def to_float32(literals):
    """Parse C float literals (a sequence of str) to float32 exactly as glibc's strtof.

    Raises ValueError on any literal Python's float() rejects (hex floats, `nan(...)`): callers
    then use the Scanner, which handles every C form and names the failing token.
    """
    with np.errstate(over="ignore"):
        d = np.fromiter(map(float, literals), dtype=np.float64, count=len(literals))
        f = d.astype(np.float32)
    return _fix_ties(d, f, literals)


def _literal_to_float32(literal):
    """One C float literal (already matched by _FLOAT) to float32."""
    low = literal.lower().lstrip("+-")
    if low.startswith("nan"):
        d = float("-nan" if literal.startswith("-") else "nan")   # glibc keeps the sign
    elif "x" in low:
        d = float.fromhex(literal)
    else:
        d = float(literal)
    with np.errstate(over="ignore"):
        f = np.array([d], dtype=np.float64).astype(np.float32)
    return _fix_ties(np.array([d]), f, [literal])[0]


def splits_as_c(text):
    """True when str.split() finds the tokens C's isspace would: ASCII without the separators
    \\x1c-\\x1f, which only Python treats as whitespace."""
    return text.isascii() and not any(c in text for c in "\x1c\x1d\x1e\x1f")


def whole_float32(token):
    """A whole token read by %f as Scanner.f32(whole=True) reads it (float32), or None when
    the token is not one C float literal."""
    m = _FLOAT.match(token)
    return _literal_to_float32(token) if m is not None and m.end() == len(token) else None


def file_name(text):
    """A %s token of the scanned text (its bytes, kept as latin-1 characters) as the str that
    names the same bytes on this system: UTF-8 names read as UTF-8, other bytes kept exactly."""
    return os.fsdecode(text.encode("latin-1"))


def _shown_token(text):
    """A token quoted in an error line: its bytes read as UTF-8, escaped and cut (errors.shown)."""
    return shown(text[:4 * 60].encode("latin-1").decode("utf-8", "surrogateescape"))


def read_bytes(path):
    """A whole input file's bytes, or the one-line error naming it."""
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}", str(path)) from None


class Scanner:
    """A whole text file read as the original's fscanf stream: one position, line-aware."""

    def __init__(self, path, text=None):
        self.path = str(path)
        self.text = read_bytes(path).decode("latin-1") if text is None else text  # C's bytes
        self.pos = 0
        self._counted_to = 0
        self._line = 1

    # -- position --------------------------------------------------------------------------
    def _skip_ws(self):
        self.pos = _SKIP_WS.match(self.text, self.pos).end()

    @property
    def line(self):
        """1-based line of the next token (after skipping whitespace)."""
        self._skip_ws()
        self._line += self.text.count("\n", self._counted_to, self.pos)
        self._counted_to = self.pos
        return self._line

    def at_end(self):
        self._skip_ws()
        return self.pos >= len(self.text)

    def peek(self):
        """The next whitespace token without consuming it ('' at end of file)."""
        self._skip_ws()
        m = _TOKEN.match(self.text, self.pos)
        return m.group() if m else ""

    def peek_shown(self):
        """The next token as an error line may quote it (escaped, cut)."""
        return _shown_token(self.peek())

    def error(self, what, detail=""):
        """InputError at the next token: `expected <what>, found '<token>'`."""
        line = self.line
        tok = self.peek()
        if not tok:      # name the last line with content, not the empty one after it
            line = self.text.count("\n", 0, len(self.text.rstrip(_WS))) + 1
        found = f"'{_shown_token(tok)}'" if tok else "end of file"
        return InputError(f"expected {what}, found {found}{detail}", self.path, line)

    # -- conversions -----------------------------------------------------------------------
    def token(self, what):
        """%s: the next maximal run of non-whitespace characters."""
        if self.at_end():
            raise self.error(what)
        m = _TOKEN.match(self.text, self.pos)
        self.pos = m.end()
        return m.group()

    def separator(self, expected, what=None):
        """Skip one %s token; our port checks it is `expected` (the original never looks)."""
        if self.peek() != expected:
            raise self.error(what or f"'{expected}'")
        self.token(expected)

    def _number(self, regex, what, whole):
        self._skip_ws()
        m = regex.match(self.text, self.pos)
        if m is None:
            raise self.error(what)
        if whole and m.end() < len(self.text) and self.text[m.end()] not in _WS:
            raise self.error(what)
        return m

    def u64(self, what, whole=False):
        """%llu: optional sign and digits, stopping before the first non-digit.

        The original wraps a leading '-' modulo 2^64 and saturates on overflow; both only ever
        come from a broken file, so we reject them. whole=True also rejects a number that is
        only the start of its token (`11.0`), which the original would silently split.
        """
        m = self._number(_U64, what, whole)
        digits = m.group().lstrip("+").lstrip("0")
        if m.group().startswith("-") or len(digits) > U64_DIGITS or int(digits or 0) > U64_MAX:
            raise self.error(what)
        self.pos = m.end()
        return int(digits or 0)

    def f32(self, what, whole=False):
        """%f: the longest valid C float prefix, correctly rounded to float32."""
        m = self._number(_FLOAT, what, whole)
        self.pos = m.end()
        return _literal_to_float32(m.group())
