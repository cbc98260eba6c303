"""Scanner: fscanf semantics of inputs.md §2 (%s, %llu, %f), line numbers, exact float32 rounding."""

import ctypes
import os
import random

import numpy as np
import pytest

from conftest import require_reference
from implicit_nn.errors import InputError
from implicit_nn.scan import Scanner, to_float32

_libc = ctypes.CDLL(None)
_libc.strtof.restype = ctypes.c_float
_libc.strtof.argtypes = [ctypes.c_char_p, ctypes.c_void_p]


def strtof(literal):
    """glibc's correctly rounded decimal/hex → float32: the original's %f."""
    return np.float32(_libc.strtof(literal.encode(), None))


def bits(x):
    return np.asarray(x, dtype=np.float32).view(np.uint32)


def test_graph_line_with_attached_separator():
    s = Scanner("g.dat", text="2 ### 3 1; 3 2; ### 1 ### 0 \n")
    assert s.u64("k") == 2
    s.separator("###")
    assert (s.u64("t"), s.u64("i")) == (3, 1)
    s.separator(";")                       # `1;`: the number stops before ';', left as a token
    assert (s.u64("t"), s.u64("i")) == (3, 2)
    s.separator(";")
    s.separator("###")
    assert s.u64("b") == 1
    s.separator("###")
    assert s.u64("a") == 0 and s.at_end()


def test_partial_integer_token_splits_like_llu():
    s = Scanner("p", text="11.0 x")
    assert s.u64("n") == 11
    assert s.token("rest") == ".0"          # the original's split
    with pytest.raises(InputError) as err:
        Scanner("p", text="11.0").u64("learn_num", whole=True)
    assert str(err.value) == "p:1: expected learn_num, found '11.0'"


def test_float_prefix_forms():
    s = Scanner("f", text="0x1.8p1 -INF Infinity nan(7) -nan 1e 1.5e+2x .5 +3.")
    assert s.f32("hex") == 3.0
    assert s.f32("i") == -np.inf and s.f32("i") == np.inf
    assert np.isnan(s.f32("n"))
    v = s.f32("n")
    assert np.isnan(v) and np.signbit(v)
    assert s.f32("e") == 1.0 and s.token("rest") == "e"      # strtod: "1e" is 1, 'e' left
    assert s.f32("x") == 150.0 and s.token("rest") == "x"
    assert s.f32("a") == 0.5 and s.f32("b") == 3.0 and s.at_end()


def test_exact_tie_rounding():
    # 1 + 2^-24 is exactly half-way between float32 1 and 1 + 2^-23: a decimal a hair above it
    # rounds to that double, and plain double→float32 (ties to even) would give 1.0
    above = "1.00000005960464477539062500000000000001"
    below = "1.00000005960464477539062499999999999999"
    assert float(above) == float(below) == 1 + 2**-24
    assert Scanner("t", text=above).f32("x") == strtof(above) == np.float32(1 + 2**-23)
    assert Scanner("t", text=below).f32("x") == strtof(below) == np.float32(1.0)
    got = to_float32([above, below, "1.000000059604644775390625"])
    assert list(bits(got)) == list(bits([strtof(above), strtof(below), np.float32(1.0)]))
    # hex literal with more bits than a double, tie broken by the last bit
    hexlit = "0x1.000001000000000000001p0"
    assert Scanner("t", text=hexlit).f32("x") == strtof(hexlit)


def test_random_literals_match_glibc():
    rng = random.Random(5)
    lits = []
    for _ in range(3000):
        m = rng.getrandbits(25) | 1                     # odd 25-bit mantissa: float32 ties
        e = rng.randint(-150, 100)
        tie = m * 2.0**e
        lits.append(repr(tie))
        lits.append(f"{tie:.25e}"[:-4] + "1" + f"{tie:.25e}"[-4:])
        lits.append(f"{rng.uniform(-1e3, 1e3):.{rng.randint(1, 20)}g}")
    got = to_float32(lits)
    want = np.array([strtof(x) for x in lits], dtype=np.float32)
    assert np.array_equal(bits(got), bits(want))
    one = np.array([Scanner("r", text=x).f32("x") for x in lits[:600]], dtype=np.float32)
    assert np.array_equal(bits(one), bits(want[:600]))


def test_htru2_files_round_like_glibc():
    ref = require_reference()
    for name in ("htru2smote_train.csv", "htru2_test.csv"):
        tokens = (ref / "data" / name).read_text().split()
        got = to_float32(tokens)
        want = np.array([strtof(t) for t in tokens], dtype=np.float32)
        assert np.array_equal(bits(got), bits(want))


def test_errors_name_line_and_token():
    s = Scanner("d.csv", text="1 2\n\n  3 abc\n")
    s.u64("a")
    assert s.line == 1
    s.u64("b")
    assert s.line == 3                       # the line of the next token
    s.u64("c")
    with pytest.raises(InputError) as err:
        s.f32("a number")
    assert str(err.value) == "d.csv:3: expected a number, found 'abc'"
    s.token("abc")
    with pytest.raises(InputError) as err:
        s.token("more")
    assert str(err.value) == "d.csv:3: expected more, found end of file"
    with pytest.raises(InputError, match="expected '###', found ';'"):
        Scanner("g", text="; 1").separator("###")


@pytest.mark.parametrize("text", ["-3", "18446744073709551616", "+", "x1"])
def test_u64_rejects_what_the_original_wraps_or_misreads(text):
    with pytest.raises(InputError, match="expected n"):
        Scanner("u", text=text).u64("n")


def test_u64_limits():
    assert Scanner("u", text="+18446744073709551615").u64("n") == 2**64 - 1


def test_missing_file():
    with pytest.raises(InputError, match=r"^/nonexistent/x\.dat: cannot read file"):
        Scanner("/nonexistent/x.dat")


@pytest.mark.parametrize("text", ["9" * 5000, "+" + "1" * 4400, "-" + "2" * 10000])
def test_u64_thousands_of_digits_is_the_usual_error(text):
    """Python's 4300-digit int-string limit must not surface as a ValueError."""
    with pytest.raises(InputError) as err:
        Scanner("u", text=text + " x").u64("a count", whole=True)
    assert str(err.value) == f"u:1: expected a count, found '{text[:60]}...'"


def test_u64_leading_zeros_are_not_digits_of_the_value():
    assert Scanner("u", text="0" * 5000 + "18446744073709551615").u64("n") == 2**64 - 1


def test_exact_tie_with_thousands_of_digits():
    """The tie test reads the literal exactly without Python's int-string limit."""
    above = "1.000000059604644775390625" + "0" * 5000 + "1"
    assert Scanner("t", text=above).f32("x") == strtof(above) == np.float32(1 + 2**-23)
    assert Scanner("t", text="1" * 5000).f32("x") == np.float32(np.inf)


def test_quoted_tokens_are_escaped_and_cut():
    """Control bytes and huge tokens never reach the error line raw (one short line)."""
    with pytest.raises(InputError) as err:
        _two_f32("1 \x1b[31m\x01x\n")
    assert str(err.value) == "d:1: expected b, found '\\x1b[31m\\x01x'"
    with pytest.raises(InputError) as err:
        Scanner("d", text="q" * 200000).f32("a")
    assert str(err.value) == "d:1: expected a, found '" + "q" * 60 + "...'"
    utf8 = "donn\u00e9es".encode().decode("latin-1")         # how the scanner holds the bytes
    with pytest.raises(InputError) as err:
        Scanner("d", text=utf8 + " \xff").f32("a")
    assert str(err.value) == "d:1: expected a, found 'donn\u00e9es'"
    with pytest.raises(InputError) as err:
        Scanner("d", text="\xff\xfe").f32("a")                # not UTF-8: the bytes, escaped
    assert str(err.value) == "d:1: expected a, found '\\xff\\xfe'"


def _two_f32(text):
    s = Scanner("d", text=text)
    s.f32("a")
    return s.f32("b")


def test_file_names_are_the_bytes_of_the_file():
    """A %s token names the file whose bytes it holds: UTF-8 names stay UTF-8."""
    from implicit_nn.scan import file_name
    raw = "donn\u00e9es/train.dat".encode()
    assert file_name(raw.decode("latin-1")) == "donn\u00e9es/train.dat"
    assert os.fsencode(file_name(b"x\xff.dat".decode("latin-1"))) == b"x\xff.dat"
