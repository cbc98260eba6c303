"""The original's output files, byte for byte apart from timestamps (driver.md §7).

API (paths are str/Path; numbers are printed as C printf via implicit_nn.cformat):
  append_results_header(path) / append_results_row(path, epoch, mb, le, vm, bvm, it_f, it_b,
      maw, mab, lr, et) / append_results_closing(path)                      results log §7.2
  append_test_header(path) / append_test_row(path, epoch, mb, le, vm, tf1, tmcc, bvm, corr, et)
      / append_test_closing(path)                                           test log §7.3
  append_final(path, iteration, vauc, vmcc, vf1, test, et)                  final block §7.4
  write_predictions(path, pred)                                             predictions §7.5
  results_row / metrics_row / final_row(...)                                one row as text
`corr` / `test` are metrics.Confusion values (f1, mcc, accuracy, precision, tpr are used).
The logs are appended to, as the original does (re-runs add blocks); files written whole go
through a temporary file in the same folder, so a crash never leaves half a file.
"""

import time

import numpy as np

from implicit_nn.atomic import write_atomic
from implicit_nn.cformat import cfmt
from implicit_nn.errors import InputError

RESULTS_COLUMNS = ("ITER", "MB", "LE", "VM", "BVM", "IF", "IB", "MAW", "MAB", "LR", "ET")
TEST_COLUMNS = ("ITER", "MB", "LE", "VM", "TF1", "TMCC", "BVM", "CTF1", "CTMCC", "CTACC", "CTP",
                "CTR", "ET")
FINAL_COLUMNS = ("ITER", "VAUC", "VMCC", "VF1", "CTF1", "CTMCC", "CTACC", "CTP", "CTR", "ET")
RESULTS_WIDTH, TEST_WIDTH, FINAL_WIDTH = 133, 157, 121


def _row(fields):
    return "|" + " |".join(fields) + " | \n"


def _header(columns, width):
    """Rule of '*', column names with ctime (each header its own time() call), rule of '-'."""
    names = "|" + " |".join(f"{name:>10}" for name in columns) + " | " + time.ctime() + " \n"
    return "*" * width + "\n" + names + "-" * width + "\n"


def _int(value):
    return f"{int(value):10d}"


def _append(path, text):
    try:
        with open(path, "a") as f:
            f.write(text)
    except OSError as exc:
        raise InputError(f"cannot write the log file: {exc.strerror}", path) from None


def results_row(epoch, mb, le, vm, bvm, it_f, it_b, maw, mab, lr, et):
    return _row([_int(epoch), _int(mb), cfmt("%10.2E", le), cfmt("%10.6f", vm), cfmt("%10.6f", bvm),
                 cfmt("%10.2f", it_f), cfmt("%10.2f", it_b), cfmt("%10.6f", maw), cfmt("%10.6f", mab),
                 cfmt("%10.2E", lr), cfmt("%10.2f", et)])


def metrics_row(epoch, mb, le, vm, tf1, tmcc, bvm, corr, et):
    values = (le, vm, tf1, tmcc, bvm, corr.f1, corr.mcc, corr.accuracy, corr.precision, corr.tpr)
    return _row([_int(epoch), _int(mb)] + [cfmt("%10.6f", v) for v in values] + [cfmt("%10.2f", et)])


def final_row(iteration, vauc, vmcc, vf1, test, et):
    values = (vauc, vmcc, vf1, test.f1, test.mcc, test.accuracy, test.precision, test.tpr)
    return _row([_int(iteration)] + [cfmt("%10.6f", v) for v in values] + [cfmt("%10.2f", et)])


def append_results_header(path):
    _append(path, _header(RESULTS_COLUMNS, RESULTS_WIDTH))


def append_results_row(path, *values):
    _append(path, results_row(*values))


def append_results_closing(path):
    _append(path, "-" * RESULTS_WIDTH + "\n")


def append_test_header(path):
    _append(path, _header(TEST_COLUMNS, TEST_WIDTH))


def append_test_row(path, *values):
    _append(path, metrics_row(*values))


def append_test_closing(path):
    _append(path, "-" * (TEST_WIDTH - 1) + "\n")      # one dash shorter than the header (driver Q21)


def append_final(path, iteration, vauc, vmcc, vf1, test, et):
    rule = "-" * FINAL_WIDTH + "\n"
    _append(path, _header(FINAL_COLUMNS, FINAL_WIDTH) + final_row(iteration, vauc, vmcc, vf1, test, et)
            + rule)


def predictions_text(pred):
    """One line per sample, every value as C's '%f ' (the line ends with a space)."""
    pred = np.asarray(pred, dtype=np.float64)
    rows, outputs = pred.shape
    if not np.isnan(pred).any():          # Python's %f equals glibc's except for NaN's sign
        return (("%f " * outputs + "\n") * rows) % tuple(pred.ravel().tolist())
    return "".join("".join(cfmt("%f", v) + " " for v in row) + "\n" for row in pred)


def write_predictions(path, pred):
    write_atomic(path, predictions_text(pred))
