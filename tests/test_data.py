"""Data files (inputs.md §5): HTRU2 reference files, one sample per line, errors with line numbers."""

import numpy as np
import pytest

from conftest import require_reference
from implicit_nn import data
from implicit_nn.errors import InputError
from implicit_nn.scan import Scanner

ROWS = ["0.5 -1.25 3 1", "1e-3 2.5 -0.0 0", "7 8 9 1"]


def write(tmp_path, lines, name="d.csv"):
    path = tmp_path / name
    path.write_text("".join(line + "\n" for line in lines))
    return path


@pytest.mark.parametrize("name,rows,positives", [
    ("htru2smote_valid.csv", 2929, 1452), ("htru2_test.csv", 1790, 172),
    ("htru2_valid.csv", 1790, 163)])
def test_reference_labeled_files(name, rows, positives):
    path = require_reference() / "data" / name
    x, y = data.read_labeled(path, rows, 8)
    assert x.shape == (rows, 8) and x.dtype == np.float32 and y.dtype == np.int64
    assert int(y.sum()) == positives and set(np.unique(y)) == {0, 1}
    first = path.read_text().split("\n", 1)[0].split()
    assert x[0].tolist() == [np.float32(float(v)) for v in first[:8]]


def test_reference_training_file_fast_path_equals_scanner():
    path = require_reference() / "data" / "htru2smote_train.csv"
    x = data.read_train(path, 13164, 8)
    assert x.shape == (13164, 8) and x.dtype == np.float32
    exact, _ = data._read_exact(Scanner(path), 13164, 8, labeled=False)
    assert np.array_equal(x.view(np.uint32), exact.view(np.uint32))
    assert data.read_train(path, 100, 8).tolist() == x[:100].tolist()    # longer file: truncated


def test_small_file_blank_lines_crlf_and_hex(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"\r\n".join(r.encode() for r in ROWS[:2]) + b"\r\n\r\n0x1p-2 7 8 1\n")
    x, y = data.read_labeled(path, 3, 3)
    assert x.tolist() == [[0.5, -1.25, 3.0], [np.float32(1e-3), 2.5, -0.0], [0.25, 7.0, 8.0]]
    assert y.tolist() == [1, 0, 1]
    assert np.signbit(x[1, 2])
    assert data.read_train(write(tmp_path, ["1 2", "", "3 4"]), 2, 2).tolist() == [[1, 2], [3, 4]]
    empty_x, empty_y = data.read_labeled(write(tmp_path, []), 0, 3)
    assert empty_x.shape == (0, 3) and empty_y.shape == (0,)


MALFORMED = [
    ("missing column", ["0.5 -1.25 3 1", "1e-3 2.5 0", "7 8 9 1"], 2,
     "row 2 has 3 values, expected 4 (3 features and a label)"),
    ("extra column", ["0.5 -1.25 3 1", "1 2 3 0 5", "7 8 9 1"], 2,
     "expected the end of row 2 after 4 values (3 features and a label), found '5'"),
    ("not a number", ["0.5 -1.25 3 1", "1 2 3 0", "7 x9 9 1"], 3,
     "expected feature 2 of row 3 (a number), found 'x9'"),
    ("partial number", ["0.5 -1.25 3 1", "1 2 3,5 0", "7 8 9 1"], 2,
     "expected feature 3 of row 2 (a number), found '3,5'"),
    ("float label", ["0.5 -1.25 3 1", "1 2 3 0.0", "7 8 9 1"], 2,
     "expected the label of row 2 (a non-negative integer), found '0.0'"),
    ("negative label", ["0.5 -1.25 3 1", "1 2 3 -1", "7 8 9 1"], 2,
     "expected the label of row 2 (a non-negative integer), found '-1'"),
    ("short file", ["0.5 -1.25 3 1", "", "1 2 3 0", ""], 3,
     "expected row 3 of 3 (3 features and a label), found end of file (the file has 2 rows)"),
]


@pytest.mark.parametrize("kind,lines,line,message", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_lines(tmp_path, kind, lines, line, message):
    path = write(tmp_path, lines)
    with pytest.raises(InputError) as err:
        data.read_labeled(path, 3, 3)
    assert str(err.value) == f"{path}:{line}: {message}"


def test_training_row_with_a_label_column_is_rejected(tmp_path):
    path = write(tmp_path, ["1 2 3", "4 5 6 1"])
    with pytest.raises(InputError, match=r":2: expected the end of row 2 after 3 values"):
        data.read_train(path, 2, 3)


def test_lines_after_the_requested_rows_are_not_read(tmp_path):
    path = write(tmp_path, ["1 2 3 0", "4 5 6 1", "garbage"])
    x, y = data.read_labeled(path, 2, 3)
    assert x.tolist() == [[1, 2, 3], [4, 5, 6]] and y.tolist() == [0, 1]


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="none.csv: cannot read file"):
        data.read_train(tmp_path / "none.csv", 1, 1)


@pytest.mark.parametrize("rows", [10**12, 2**64 - 1])
def test_row_count_far_beyond_the_file_is_the_file_error(tmp_path, rows):
    """Arrays are sized by what the file can hold: the error names its real row count instead of
    an allocation failure (MemoryError / ValueError traceback)."""
    path = write(tmp_path, ROWS + ["1 2 x 0"])
    with pytest.raises(InputError) as err:
        data.read_labeled(path, rows, 3)
    assert str(err.value) == f"{path}:4: expected feature 3 of row 4 (a number), found 'x'"
    path = write(tmp_path, ROWS)
    with pytest.raises(InputError) as err:
        data.read_labeled(path, rows, 3)
    assert str(err.value) == (f"{path}:3: expected row 4 of {rows} (3 features and a label), "
                              "found end of file (the file has 3 rows)")
