"""Solver statistics (`--stats FILE`): how the fixed-point solves went, one row per validation.

The results log has only IF/IB, the mean iteration counts. A row here summarises, separately for
the training forward solves, the training adjoint solves and the validation-time forward solves
(validation and test predictions) since the previous row: how many solves, iterations (mean,
max), the fraction that hit maxiter_fix without converging, the fraction whose residual is not
finite, and the final max-norm residual ‖f(z) − z‖∞ and relative residual ‖f(z) − z‖∞ / ‖f(z)‖∞
(mean, max); NaN residuals (a diverged solve) make the mean and max NaN. A last row (kind
"final") covers the end-of-run predictions.

Format by extension: `.jsonl`, `.json` or `.ndjson` give JSON lines (NaN as null), anything else
CSV with a header. Rows are appended and flushed as they come, so a running job can be watched.
"""

import csv
import io
import json
import math
import os

import numpy as np

from implicit_nn.errors import InputError

GROUPS = ("train_forward", "train_backward", "valid_forward")
MEASURES = ("solves", "iter_mean", "iter_max", "maxiter_frac", "nonfinite_frac",
            "residual_mean", "residual_max", "relative_mean", "relative_max")
COLUMNS = ("kind", "epoch", "minibatch") + tuple(f"{g}_{m}" for g in GROUPS for m in MEASURES)
JSON_SUFFIXES = (".jsonl", ".json", ".ndjson")


class SolveTally:
    """The solves of one group since the last row (Solve or Solves records of engine.base)."""

    FIELDS = ("iterations", "converged", "residual", "norm")

    def __init__(self):
        self.parts = []

    def add(self, solves):
        """A Solve or a Solves (e.g. a predict call's chunks); their `norm`, the last iterate's
        max-norm, makes the residual relative."""
        self.parts.append(tuple(np.atleast_1d(getattr(solves, name)) for name in self.FIELDS))

    def summary(self, maxiter):
        """MEASURES of the solves so far (NaN where there were none), then empty."""
        if not self.parts:
            return dict(zip(MEASURES, [0] + [math.nan] * (len(MEASURES) - 1)))
        it, ok, res, norm = (np.concatenate(column) for column in zip(*self.parts))
        self.parts = []
        res64 = res.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(res64 == 0, 0.0, res64 / norm.astype(np.float64))
        return {"solves": int(it.size), "iter_mean": float(it.mean()), "iter_max": int(it.max()),
                "maxiter_frac": float(np.mean((it >= maxiter) & ~ok)),
                "nonfinite_frac": float(np.mean(~np.isfinite(res64))),
                "residual_mean": float(res64.mean()), "residual_max": float(res64.max()),
                "relative_mean": float(rel.mean()), "relative_max": float(rel.max())}


class StatsLog:
    """The --stats file of one run: tallies fed by the driver, one row per validation."""

    def __init__(self, path, maxiter, maxiter_backward=None):
        self.path = os.fspath(path)
        self.maxiter = int(maxiter)       # maxiter_fix; the adjoint's own with --maxiter-backward
        self.maxiter_of = {"train_backward": int(maxiter if maxiter_backward is None
                                                 else maxiter_backward)}
        self.json = self.path.lower().endswith(JSON_SUFFIXES)
        self.tallies = {group: SolveTally() for group in GROUPS}

    def start(self, length=0):
        """Truncate the file to `length` bytes (0: a new run; a checkpoint's length on resume)
        and write the CSV header when the file is empty."""
        try:
            with open(self.path, "a+b") as fh:
                fh.truncate(length)
            if length == 0 and not self.json:
                self._append(",".join(COLUMNS) + "\n")
        except OSError as exc:
            raise InputError(f"cannot write the stats file: {exc.strerror}", self.path) from None

    def tallies_as_arrays(self):
        """The solves tallied since the last row, as named arrays (for a checkpoint)."""
        arrays = {}
        for group, tally in self.tallies.items():
            columns = [np.concatenate(c) for c in zip(*tally.parts)] if tally.parts else \
                [np.zeros(0, t) for t in (np.int64, bool, np.float32, np.float32)]
            tally.parts = [tuple(columns)] if tally.parts else []
            for name, column in zip(SolveTally.FIELDS, columns):
                arrays[f"stats_{group}_{name}"] = column
        return arrays

    def restore_tallies(self, arrays):
        """Tallies as tallies_as_arrays gave them."""
        for group, tally in self.tallies.items():
            columns = tuple(arrays[f"stats_{group}_{name}"] for name in SolveTally.FIELDS)
            tally.parts = [columns] if columns[0].size else []

    def train(self, step):
        """One training minibatch's engine StepStats."""
        self.tallies["train_forward"].add(step.forward)
        self.tallies["train_backward"].add(step.backward)

    def valid(self, solves):
        """The chunks of one validation-time (or final) prediction."""
        self.tallies["valid_forward"].add(solves)

    def row(self, kind, epoch, minibatch):
        """Write the row of everything tallied since the last one."""
        values = {"kind": kind, "epoch": int(epoch), "minibatch": int(minibatch)}
        for group, tally in self.tallies.items():
            for measure, value in tally.summary(self.maxiter_of.get(group, self.maxiter)).items():
                values[f"{group}_{measure}"] = value
        if self.json:
            clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                     for k, v in values.items()}
            self._append(json.dumps(clean) + "\n")
        else:
            text = io.StringIO()
            csv.writer(text, lineterminator="\n").writerow([_cell(values[c]) for c in COLUMNS])
            self._append(text.getvalue())

    def _append(self, text):
        try:
            with open(self.path, "a") as fh:
                fh.write(text)
        except OSError as exc:
            raise InputError(f"cannot write the stats file: {exc.strerror}", self.path) from None


def _cell(value):
    """CSV cell: ints as such, floats in shortest round-trip form ('nan', 'inf' as Python)."""
    return repr(value) if isinstance(value, float) else str(value)


def read_stats(path):
    """The rows of a --stats file as dicts (numbers as float/int, null/nan as NaN)."""
    path = os.fspath(path)
    with open(path) as fh:
        text = fh.read()
    if path.lower().endswith(JSON_SUFFIXES):
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        return [{k: (math.nan if v is None else v) for k, v in row.items()} for row in rows]
    rows = list(csv.DictReader(io.StringIO(text)))
    if rows and set(rows[0]) != set(COLUMNS):
        raise InputError("not a --stats file (unexpected columns)", path, 1)
    return [{k: (v if k == "kind" else _number(v)) for k, v in row.items()} for row in rows]


def _number(text):
    try:
        return int(text)
    except ValueError:
        return float(text)
