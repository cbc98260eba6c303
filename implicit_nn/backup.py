"""Weight backup files (inputs.md §6): the original's byte format, written atomically.

Layout: one line of `%f ` weights per neuron, a blank line, one line of `%f ` biases per neuron,
then `th mean std`; 2N + 2 lines. Reading is a token stream, as the original's fscanf loop.
"""

import itertools
import re

import numpy as np

from .cformat import cfloat
from .atomic import write_atomic
from .errors import InputError
from .scan import Scanner, to_float32

_TOKEN = re.compile(r"[^ \t\n\v\f\r]+")             # C isspace separates tokens
_PLAIN = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _cells(values):
    """'%f ' of each value; Python's %f is glibc's except for the sign of NaN (cformat)."""
    return ["%f " % v if v == v else cfloat(v) + " "
            for v in np.asarray(values, dtype=np.float32).astype(np.float64).tolist()]


def _lines(cells, first, count):
    return ["".join(cells[f:f + c]) + "\n" for f, c in zip(first.tolist(), count.tolist())]


def backup_text(network, weights, biases, th, mean, std):
    """The whole file as the original's save_weight_bias writes it."""
    parts = _lines(_cells(weights), network.first_ind_neighbour, network.neighbour_number)
    parts.append("\n")
    parts += _lines(_cells(biases), network.first_ind_bias, network.bias_number)
    parts.append("".join(_cells([th, mean, std])) + "\n")
    return "".join(parts)


def save_backup(path, network, weights, biases, th, mean, std):
    """Write to a temp file beside `path`, then rename: a reader never sees half a file."""
    write_atomic(path, backup_text(network, weights, biases, th, mean, std),
                 "File write error in backup file")


def load_backup(path, network):
    """E weights, A biases, th, mean, std (raw float32; the caller re-applies fixed values).

    The original loads whatever count it finds; we insist on exactly E + A + 3 numbers (inputs Q15), so
    a backup of another topology or a truncated file is an error, not a silent partial load.
    """
    e_num, a_num = network.all_neighbour_num, network.all_input_num
    total = e_num + a_num + 3
    scan = Scanner(path)
    tokens = _TOKEN.findall(scan.text)
    if len(tokens) == total and all(_PLAIN.fullmatch(t) for t in tokens):
        values = to_float32(tokens)          # the usual file: plain decimals, exact count
    else:
        values = _scan_values(scan, total, e_num, a_num)
    _check_finite(scan, values, network)
    th, mean, std = values[e_num + a_num:]
    return values[:e_num].copy(), values[e_num:e_num + a_num].copy(), th, mean, std


def _check_finite(scan, values, network):
    """A trainable weight or bias that is NaN or infinite makes the backup unusable (a blown-up
    training's): refused, naming its line. Fixed entries are replaced by their fixwb values and
    th / mean / std may be NaN legitimately (a validation set without normal samples)."""
    e_num = network.all_neighbour_num
    trainable = np.concatenate([network.graph_logic == 1, network.bias_logic == 1])
    bad = np.flatnonzero(~np.isfinite(values[:trainable.size]) & trainable)
    if bad.size:
        k = int(bad[0])
        what = f"weight {k + 1}" if k < e_num else f"bias {k - e_num + 1}"
        token = next(itertools.islice(_TOKEN.finditer(scan.text), k, None))
        line = scan.text.count("\n", 0, token.start()) + 1
        raise InputError(f"{what} is '{token.group()}': a backup with non-finite trainable "
                         f"parameters ({bad.size} of them) cannot be used", scan.path, line)


def _scan_values(scan, total, e_num, a_num):
    """Token by token, so that the first problem is reported with its line."""
    values = np.empty(total, dtype=np.float32)
    expect = (f"{total} numbers ({e_num} weights, {a_num} biases, threshold, mean, std) "
              f"for this network")
    for k in range(total):
        if scan.at_end():
            raise scan.error(f"number {k + 1} of {expect}", f" (the file holds only {k})")
        values[k] = scan.f32(f"number {k + 1} of {expect}", whole=True)
    if not scan.at_end():
        raise InputError(f"backup has more than the {expect}: '{scan.peek_shown()}'", scan.path,
                         scan.line)
    return values
