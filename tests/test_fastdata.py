"""The compiled data reader (fastdata.py) gives data.py's values bit for bit, or gives up.

data.py's Python path (float() + the float32 tie fix, or the fscanf scanner) is the authority:
wherever the compiled reader returns arrays they must equal it bit for bit, and a run that uses
it (`compiled=True`, as the driver reads) must raise the same errors.
"""
import random
from decimal import Decimal, getcontext

import numpy as np
import pytest

from conftest import require_reference
from implicit_nn import data, fastdata
from implicit_nn.errors import InputError
from implicit_nn.scan import to_float32

REFERENCE_FILES = [("htru2smote_train.csv", 13164, False), ("htru2smote_valid.csv", 2929, True),
                   ("htru2smote_test.csv", 1790, True), ("htru2_train.csv", 13014, False),
                   ("htru2_valid.csv", 1790, True), ("htru2_test.csv", 1790, True)]


def same(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def compiled(literals):
    """The compiled reader's float32 of each literal alone (a one-value file), None where it
    gives up."""
    out = []
    for literal in literals:
        got = fastdata.read(literal.encode(), 1, 1, False)
        out.append(None if got is None else got[0][0, 0])
    return out


@pytest.mark.parametrize("name,rows,labeled", REFERENCE_FILES)
def test_reference_data_files_bit_for_bit(name, rows, labeled):
    path = require_reference() / "data" / name
    raw = path.read_bytes()
    fast = fastdata.read(raw, rows, 8, labeled)
    assert fast is not None                      # these files never need the Python way
    x, labels = data._read_fast(raw.decode("latin-1"), rows, 8, labeled)
    assert same(fast[0], x)
    assert (fast[1] is None and labels is None) or same(fast[1], labels)
    assert same(data._read(path, rows, 8, labeled, compiled=True)[0], x)


def _random_literals(rng, count):
    """Decimal literals of every shape the compiled reader takes: 1-40 digits, a point anywhere
    or none, signs, exponents, leading zeros."""
    out = []
    for _ in range(count):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 40)))
        cut = rng.randint(0, len(digits))
        body = digits[:cut] + "." + digits[cut:] if rng.random() < 0.7 else digits
        if body == ".":
            body = "0."
        sign = rng.choice(["", "", "-", "+"])
        exp = ""
        if rng.random() < 0.4:
            exp = rng.choice("eE") + rng.choice(["", "+", "-"]) + str(rng.randint(0, 45)).zfill(
                rng.randint(1, 3))
        out.append(sign + "0" * rng.randint(0, 2) * (cut > 0) + body + exp)
    return out


def _near_midpoints(rng, count):
    """Literals within a few units of the 40th digit of a float32 midpoint, and the midpoints
    themselves (ties to even): where rounding a double twice would go wrong."""
    getcontext().prec = 80
    out = []
    for _ in range(count):
        f = np.float32(rng.uniform(-1, 1) * 10.0 ** rng.randint(-30, 30))
        g = np.nextafter(f, np.float32(np.inf))
        mid = (Decimal(float(f)) + Decimal(float(g))) / 2
        step = Decimal(10) ** (mid.adjusted() - 39)
        for k in (-2, -1, 0, 1, 2):
            out.append(format(mid + k * step, "f" if abs(mid.adjusted()) < 20 else "e"))
    return out


def test_literals_equal_strtof_or_give_up():
    rng = random.Random(17)
    literals = _random_literals(rng, 20000) + _near_midpoints(rng, 400) + [
        "0", "-0", "-0.0", "+0e5", "0e999", ".5", "5.", "-.5e-1", "1e38", "3.4028234e38",
        "1.17549435e-38", "1e-39", "1e-45", "16777217", "0.1", "007.50", "1" * 60,
        "0." + "0" * 30 + "123456789123456789123", "9" * 19, "123456789012345678.9"]
    expected = to_float32(literals)
    got = compiled(literals)
    taken = [k for k, v in enumerate(got) if v is not None]
    normal = [k for k in range(20000) if 2.0**-126 <= abs(expected[k]) < 2.0**127]
    assert len(set(taken) & set(normal)) > 0.999 * len(normal)  # the common case is compiled
    for k in taken:
        assert np.float32(got[k]).tobytes() == expected[k].tobytes(), literals[k]
    # near a midpoint the compiled reader gives up unless it is sure
    assert any(v is None for v in got[20000:22000])


@pytest.mark.parametrize("literal", ["nan", "inf", "-inf", "0x1p-3", "1e", "1e+", "+", "-", ".",
                                     "1.5x", "1,5", "1_0", "1e5000", "1e-5000", "3.5e38",
                                     "1e-40", "\u00e9"])
def test_gives_up_on_what_it_does_not_read(literal):
    assert fastdata.read(f"1 {literal}\n".encode(), 1, 2, False) is None


@pytest.mark.parametrize("text,rows,width,labeled", [
    ("1 2\n3\n", 2, 2, False), ("1 2 3\n", 1, 2, False), ("1 2\n", 2, 2, False),
    ("1 2 0.0\n", 1, 2, True), ("1 2 -1\n", 1, 2, True), ("1 2 +1\n", 1, 2, True),
    ("1 2 1234567890123456789\n", 1, 2, True), ("1\x1c2\n", 1, 2, False), ("1 2\n", 10**12, 2, False),
])
def test_gives_up_on_malformed_lines(text, rows, width, labeled):
    assert fastdata.read(text.encode(), rows, width, labeled) is None


def test_lines_blanks_and_labels():
    text = b"\r\n 1 2\t 7\r\n\x0b\n\f3 4 123456789012345678\n junk that is never read \xe9\n"
    x, labels = fastdata.read(text, 2, 2, True)
    assert x.tolist() == [[1, 2], [3, 4]] and labels.tolist() == [7, 123456789012345678]
    x, labels = fastdata.read(b"1 2 0", 1, 2, True)          # no newline at the end
    assert x.tolist() == [[1, 2]] and labels.tolist() == [0]


@pytest.mark.parametrize("lines,rows", [
    (["0.5 -1.25 3 1", "1e-3 2.5 0", "7 8 9 1"], 3), (["1 2 3 0 5"], 1),
    (["0.5 -1.25 3 1", "7 x9 9 1"], 2), (["1 2 3 0.0"], 1), (["1 2 3 -1"], 1),
    (["0.5 -1.25 3 1", "", "1 2 3 0", ""], 3), (["1 2 0x1p3 1"], 1), (["1 2 3 1"], 10**12)])
def test_compiled_reading_raises_the_same_errors(tmp_path, lines, rows):
    path = tmp_path / "d.csv"
    path.write_text("".join(line + "\n" for line in lines))
    outcomes = []
    for flag in (False, True):
        try:
            x, y = data.read_labeled(path, rows, 3, compiled=flag)
            outcomes.append((x.tobytes(), y.tobytes()))
        except InputError as exc:
            outcomes.append(str(exc))
    assert outcomes[0] == outcomes[1]
    with pytest.raises(InputError, match="cannot read file"):
        data.read_train(tmp_path / "none.csv", 1, 1, compiled=True)
