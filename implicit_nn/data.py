"""Training / validation / test data files → float32 arrays (inputs.md §5, driver.md §2).

The original reads a token stream of exactly `rows` samples (I `%f` features, then a `%llu`
label for validation/test) and ignores line structure, so one missing or extra value shifts every
later sample silently. We keep its numbers (C-exact float32) but require one sample per line, with
exactly I (+1) values, and enough lines; later lines are ignored as the original ignores them.
"""

import itertools
import re

import numpy as np

from .errors import InputError
from .scan import Scanner, read_bytes, splits_as_c, to_float32

_LABELS = re.compile(r"[0-9]{1,18}(?:\n[0-9]{1,18})*")   # fits int64; anything else: exact path


def read_train(path, rows, input_num, compiled=False):
    """`rows` training samples of `input_num` features (targets are the inputs).
    compiled: try fastdata's compiled reader first (it loads numba; the same values)."""
    return _read(path, rows, input_num, False, compiled)[0]


def read_labeled(path, rows, input_num, compiled=False):
    """`rows` samples of `input_num` features and an integer label (validation / test)."""
    return _read(path, rows, input_num, True, compiled)


def _read(path, rows, input_num, labeled, compiled=False):
    raw = read_bytes(path)
    if compiled:
        from . import fastdata
        done = fastdata.read(raw, rows, input_num, labeled)
        if done is not None:
            return done
    scan = Scanner(path, raw.decode("latin-1"))          # bytes, as C sees them
    fast = _read_fast(scan.text, rows, input_num, labeled)
    return fast if fast is not None else _read_exact(scan, rows, input_num, labeled)


def _read_fast(text, rows, input_num, labeled):
    """Whole-file split + vectorised conversion; None when the file needs the exact scanner
    (a malformed line, a hex float, ...), which then also words the error."""
    if not splits_as_c(text) or "_" in text:        # float() would read 1_000
        return None
    width = input_num + labeled
    lines = [tokens for tokens in map(str.split, text.split("\n")) if tokens]
    if len(lines) < rows:
        return None
    lines = lines[:rows]
    if any(len(tokens) != width for tokens in lines):
        return None
    flat = list(itertools.chain.from_iterable(lines))
    labels = None
    if labeled:
        labels = flat[input_num::width]
        del flat[input_num::width]
        if rows and not _LABELS.fullmatch("\n".join(labels)):
            return None
        labels = np.array(labels).astype(np.int64) if rows else np.zeros(0, np.int64)
    try:
        x = to_float32(flat).reshape(rows, input_num)
    except ValueError:
        return None
    return x, labels


def _rows_possible(text, width):
    """An upper bound on the samples `text` can hold (one per line, `width` tokens of at least
    one character and one separator each): arrays are sized by what the file can really hold,
    so a huge learn_num is the error naming the file's row count, not a failed allocation."""
    return min(text.count("\n") + 1, len(text) // (2 * max(width, 1)) + 1)


def _read_exact(scan, rows, input_num, labeled):
    """Token by token with the fscanf emulation; raises the InputError for a malformed file."""
    width = input_num + labeled
    size = min(rows, _rows_possible(scan.text, width))
    x = np.empty((size, input_num), dtype=np.float32)
    y = np.empty(size, dtype=np.int64)
    shape = f"{input_num} features" + (" and a label" if labeled else "")
    for r in range(rows):
        if scan.at_end():
            raise scan.error(f"row {r + 1} of {rows} ({shape})", f" (the file has {r} rows)")
        line = scan.line
        for j in range(width):
            if scan.line != line:
                raise InputError(f"row {r + 1} has {j} values, expected {width} ({shape})",
                                 scan.path, line)
            if j < input_num:
                x[r, j] = scan.f32(f"feature {j + 1} of row {r + 1} (a number)", whole=True)
            else:
                label = scan.u64(f"the label of row {r + 1} (a non-negative integer)", whole=True)
                if label >= 2**63:
                    raise InputError(f"label {label} of row {r + 1} is too large", scan.path, line)
                y[r] = label
        if not scan.at_end() and scan.line == line:
            raise scan.error(f"the end of row {r + 1} after {width} values ({shape})")
    return x, (y if labeled else None)
