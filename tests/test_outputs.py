"""Output writers: rows, headers and prediction files byte-identical to the original's (§7, §12)."""

import re

import numpy as np
import pytest

from implicit_nn import outputs
from implicit_nn.errors import InputError
from implicit_nn.metrics import Confusion

f32 = np.float32
INF = f32(1e20)
NEG_NAN = np.frombuffer(bytes.fromhex("0000c0ff"), f32)[0]     # x86's default NaN from 0/0
CTIME = re.compile(r" \| \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} $", re.M)


def fields(line):
    return [piece.strip() for piece in line.split("|")[1:-1]]


def numbers(line):
    return [float(text) for text in fields(line)]


def confusion(f1, mcc, acc, prec, rec):
    return Confusion(tpr=rec, fpr=0.0, f1=f1, accuracy=acc, precision=prec, mcc=mcc)


def test_literal_rows_of_the_spec():
    assert outputs.results_row(1, 74, f32(0.949), f32(0.901722), f32(0.901722), f32(6), f32(5),
                               f32(0.263103), f32(0.243566), f32(0.01), 0.06) == \
        "|         1 |        74 |  9.49E-01 |  0.901722 |  0.901722 |      6.00 |      5.00 |  0.263103 |  0.243566 |  1.00E-02 |      0.06 | \n"
    nan = NEG_NAN
    assert outputs.results_row(3, 814, -nan, -INF, f32(0.920782), f32(6), f32(5), -nan, -nan,
                               f32(0.00951), 5.28) == \
        "|         3 |       814 |       NAN |-100000002004087734272.000000 |  0.920782 |      6.00 |      5.00 |       nan |       nan |  9.51E-03 |      5.28 | \n"
    assert outputs.results_row(6, 444, f32(np.inf), f32(0.885106), f32(0.916996), f32(30.57), f32(12.78),
                               -nan, -nan, f32(0.0084), 35.77) == \
        "|         6 |       444 |       INF |  0.885106 |  0.916996 |     30.57 |     12.78 |       nan |       nan |  8.40E-03 |     35.77 | \n"
    corr = confusion(f32(0.718676), f32(0.698154), f32(0.933520), f32(0.605578), f32(0.883721))
    assert outputs.metrics_row(1, 74, f32(0.949339), f32(0.901722), f32(0.718676), f32(0.698154),
                               f32(0.901722), corr, 0.06) == \
        "|         1 |        74 |  0.949339 |  0.901722 |  0.718676 |  0.698154 |  0.901722 |  0.718676 |  0.698154 |  0.933520 |  0.605578 |  0.883721 |      0.06 | \n"
    test = confusion(f32(0.732394), f32(0.714860), f32(0.936313), f32(0.614173), f32(0.906977))
    assert outputs.final_row(20, f32(0.951528), f32(0.849769), f32(0.922265), test, 33.77) == \
        "|        20 |  0.951528 |  0.849769 |  0.922265 |  0.732394 |  0.714860 |  0.936313 |  0.614173 |  0.906977 |     33.77 | \n"
    before_best = Confusion(*([-INF] * 6))
    assert outputs.metrics_row(1, 5, f32(1), f32(0), -nan, f32(0), f32(0), before_best, 1.0).count(
        "-100000002004087734272.000000") == 5
    assert "|      -nan |" in outputs.metrics_row(1, 5, f32(1), f32(0), nan, f32(0), f32(0), before_best, 1.0)


def reference_logs(reference):
    for folder in sorted((reference / "training").iterdir()):
        for path in sorted(folder.glob("*.dat")):
            if not path.name.startswith("backup"):
                yield path


def test_every_reference_row_reprints_identically(reference):
    """Parse each data row of every training log, print it again: byte-identical (all 18 x 2 x 3)."""
    checked = 0
    for path in reference_logs(reference):
        lines = path.read_text().splitlines(keepends=True)
        for line in lines:
            if not line.startswith("|") or "ITER" in line:
                continue
            values = numbers(line)
            if path.name.startswith("results_"):
                row = outputs.results_row(*values)
            elif path.name.startswith("test_metrics_final_"):
                row = outputs.final_row(values[0], *values[1:4], confusion(*values[4:9]), values[9])
            else:
                row = outputs.metrics_row(*values[:7], confusion(*values[7:12]), values[12])
            assert row == line, path.name
            checked += 1
    assert checked > 5000


def test_headers_and_closing_rules_match_reference(reference, tmp_path):
    folder = reference / "training" / "v0_5_32_8"
    cases = [("results_", outputs.append_results_header, outputs.append_results_closing, 3),
             ("test_metrics_v", outputs.append_test_header, outputs.append_test_closing, 3)]
    for prefix, header, closing, size in cases:
        expected = next(folder.glob(prefix + "*_1.dat")).read_text().splitlines(keepends=True)
        out = tmp_path / (prefix + ".dat")
        header(out)
        closing(out)
        got = out.read_text().splitlines(keepends=True)
        assert got[0] == expected[0] and got[2] == expected[2] and got[-1] == expected[-1]
        assert CTIME.sub("", got[1]) == CTIME.sub("", expected[1])
        assert CTIME.search(got[1])
    assert len(expected[-1]) == 157 and len(expected[0]) == 158      # 156 vs 157 dashes (driver Q21)


def test_final_block_matches_reference_and_appends(reference, tmp_path):
    expected = next((reference / "training" / "v0_5_32_8").glob("test_metrics_final_*_1.dat")).read_text()
    values = numbers(expected.splitlines()[3])
    out = tmp_path / "final.dat"
    for _ in range(2):
        outputs.append_final(out, int(values[0]), *values[1:4], confusion(*values[4:9]), values[9])
    got = out.read_text()
    assert CTIME.sub("", got) == CTIME.sub("", expected) * 2


def eval_py_table(path):
    """What eval.py (§10) reads from a final-metrics file: column names and the data row."""
    lines = [line.strip() for line in path.read_text().splitlines()]
    header = lines[1:-1]
    del header[1]
    names = [piece.strip() for piece in header[0].split("|")][1:-1]
    row = [float(piece.strip()) for piece in lines[3].split("|")[1:-1]]
    return names, row


def test_eval_py_parses_what_we_write(tmp_path):
    out = tmp_path / "test_metrics_final.dat"
    nan = NEG_NAN
    outputs.append_final(out, 20, f32(0.5), nan, -INF, confusion(*[f32(0.25)] * 5), 12.5)
    outputs.append_final(out, 0, f32(0.1), f32(0.1), f32(0.1), confusion(*[f32(0.1)] * 5), 1.0)
    names, row = eval_py_table(out)
    assert names == ["ITER", "VAUC", "VMCC", "VF1", "CTF1", "CTMCC", "CTACC", "CTP", "CTR", "ET"]
    assert row[0] == 20 and row[1] == 0.5 and np.isnan(row[2]) and row[3] == -1.0000000200408773e20
    assert row[4:] == [0.25] * 5 + [12.5]


def test_predictions_reprint_reference_file_identically(reference, tmp_path):
    for kind in ("valid", "test"):
        path = next((reference / "inference" / "v0_5_32_8").glob(f"predict_{kind}_*_1.dat"))
        text = path.read_text()
        pred = np.array(text.split(), dtype=np.float64).astype(f32).reshape(-1, 8)
        out = tmp_path / f"{kind}.dat"
        outputs.write_predictions(out, pred)
        assert out.read_text() == text
        assert [p.name for p in tmp_path.iterdir() if "tmp" in p.name] == []


def test_predictions_with_nan_and_overwrite(tmp_path):
    out = tmp_path / "p.dat"
    out.write_text("old content that is longer than the new one\n" * 3)
    nan = NEG_NAN
    outputs.write_predictions(out, np.array([[nan, -nan], [f32(1e20), -f32(np.inf)]], f32))
    assert out.read_text() == "-nan nan \n100000002004087734272.000000 -inf \n"


def test_unwritable_paths_are_input_errors(tmp_path):
    missing = tmp_path / "no" / "such" / "dir" / "file.dat"
    with pytest.raises(InputError, match="file.dat"):
        outputs.write_predictions(missing, np.zeros((1, 2), f32))
    with pytest.raises(InputError, match="cannot write the log file"):
        outputs.append_results_header(missing)
