"""Checkpoints (`--checkpoint-every N`, `train --resume FILE`): a killed run continues as if it had
never stopped, its output files byte-identical to an uninterrupted run's (elapsed times aside).

A checkpoint is taken between two minibatches (after the earlier one's validation, if any; at an
epoch's end after its backup) and holds everything the rest of the run depends on: parameters,
optimiser state (moments and Adam's β products), the glibc random ring, the training rows in
their shuffled order, the best model with its th/mean/std/test metrics and the early-stopping
counter (and whether any model so far was finite), the last validation's metric and threshold, the epoch's float32 running sums, elapsed
time, the position (epoch, minibatch), the per-validation history, the solver-statistics tallies
and how long each log was (with a digest of that part). The scheduler is a function of the
position. Resuming rewinds the logs to those lengths, so rows a killed run wrote after its last
checkpoint are written again, once.

The file is a NumPy .npz (no pickles) written atomically (temp file, fsync, rename): a kill while
writing leaves the previous checkpoint. It records the parameters, the engine and a digest of
every data and network file, and refuses to resume anything else.
"""

import dataclasses
import hashlib
import io
import json
import os

import numpy as np

from implicit_nn.atomic import write_atomic
from implicit_nn.errors import InputError
from implicit_nn.outpaths import DATA_AND_NETWORK, LOGS
from implicit_nn.params import SCHEMA
from implicit_nn.results import ValidationRecord

FORMAT = "implicit-nn checkpoint 1"
MOMENTS = ("v_w", "v_b", "m_w", "m_b", "u_w", "u_b")
CONFUSION = ("tpr", "fpr", "f1", "accuracy", "precision", "mcc")
TALLY = ("loss_sum", "forward_sum", "backward_sum")


@dataclasses.dataclass
class Position:
    """Where a run continues: minibatch `minibatch` (0-based; 0 = the epoch's start, before its
    shuffle) of epoch `epoch` (1-based), `seconds` into that epoch, with the epoch's running
    sums `tally` (driver.EpochTally; None at an epoch's start)."""
    epoch: int
    minibatch: int
    seconds: float = 0.0
    tally: object = None


def params_record(params):
    """The parameters as JSON values (float32 entries as the Python float of the same value)."""
    return {name: (float(getattr(params, name)) if kind == "f32" else getattr(params, name))
            for name, kind in SCHEMA}


def _digest(path, length=None):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        h.update(fh.read() if length is None else fh.read(length))
    return h.hexdigest()


def input_digests(params):
    """sha256 of every data and network file the run reads (a changed file is refused)."""
    return {entry: _digest(getattr(params, entry)) for entry in DATA_AND_NETWORK
            if os.path.isfile(getattr(params, entry))}


def log_marks(paths):
    """{path: [length, sha256 of the file]} of the logs a run appends to (absent: length 0)."""
    marks = {}
    for path in paths:
        if os.path.exists(path):
            marks[path] = [os.path.getsize(path), _digest(path)]
        else:
            marks[path] = [0, hashlib.sha256(b"").hexdigest()]
    return marks


def rewind_logs(marks, source):
    """Cut each log back to its length at the checkpoint, after checking that part is unchanged."""
    for path, (length, digest) in marks.items():
        size = os.path.getsize(path) if os.path.exists(path) else 0
        if size < length or (length and _digest(path, length) != digest):
            raise InputError(f"the log '{path}' is not what it was at the checkpoint (changed "
                             "or shorter); cannot resume into it", source)
        if size > length:
            with open(path, "r+b") as fh:
                fh.truncate(length)


def capture(run, position):
    """The checkpoint of `run` (driver.Run) at `position`, as .npz bytes."""
    engine, best, rng = run.engine, run.best, run.rng
    weights, biases = engine.get_parameters()
    state = engine.optimizer_state()
    arrays = {"weights": weights, "biases": biases, "betas": np.asarray(state.betas, np.float32),
              "rng_state": rng.state.copy(), "train_x": run.train_x,
              "best_weights": best.weights, "best_biases": best.biases,
              "best_numbers": np.array([best.th, best.mean, best.std, best.metric,
                                        *best.test, run.valid_metric, run.valid_th],
                                       np.float32)}
    arrays.update({name: getattr(state, name) for name in MOMENTS})
    tally = position.tally
    if tally is not None:
        arrays["tally_sums"] = np.array([getattr(tally, f) for f in TALLY], np.float32)
    if run.solver_stats is not None:
        arrays.update(run.solver_stats.tallies_as_arrays())
    meta = {
        "format": FORMAT, "params": params_record(run.params), "engine": engine.name,
        "stats": run.stats_path, "inputs": run.input_digests,
        "position": [position.epoch, position.minibatch, position.seconds],
        "tally_counts": None if tally is None else [tally.rows, tally.minibatches],
        "rng_ring": [rng.front, rng.rear], "best_counter": best.counter,
        "finite_model": bool(run.finite_model),
        "elapsed": run.elapsed, "steps": run.steps,
        "history": [dataclasses.astuple(r) for r in run.history],
        "logs": log_marks([getattr(run.params, e) for e in LOGS]
                          + ([run.stats_path] if run.stats_path else [])),
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def save(path, run, position):
    write_atomic(path, capture(run, position), "cannot write the checkpoint")


@dataclasses.dataclass
class Checkpoint:
    """A checkpoint read back: `meta` (JSON values) and `arrays` (NumPy arrays)."""
    path: str
    meta: dict
    arrays: dict

    def check_matches(self, params, engine_name, stats_path, digests, source):
        """Refuse to resume with other parameters, another engine, another --stats file or
        changed data / network files: the continuation would not be the same run."""
        saved = self.meta["params"]
        for name, value in params_record(params).items():
            if saved[name] != value:
                raise InputError(f"entry '{name}' is {value!r} here but {saved[name]!r} in the "
                                 f"checkpoint {self.path}; resume with the same parameters",
                                 source)
        if self.meta["engine"] != engine_name:
            raise InputError(f"the checkpoint was written by the {self.meta['engine']} engine, "
                             f"this run uses {engine_name}; resume with the same --backend and "
                             "solver options",
                             self.path)
        if self.meta["stats"] != stats_path:
            raise InputError(f"the run wrote --stats {self.meta['stats']}; resume with the "
                             "same --stats (or none if it had none)", self.path)
        for entry, digest in self.meta["inputs"].items():
            if digests.get(entry) != digest:
                raise InputError(f"{entry} '{getattr(params, entry)}' changed since the "
                                 "checkpoint; cannot resume", self.path)


def load(path):
    """Read a checkpoint (one line InputError if it is not one)."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        meta = json.loads(arrays.pop("meta").tobytes().decode())
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"not a readable checkpoint ({exc})", path) from None
    if meta.get("format") != FORMAT:
        raise InputError(f"not a checkpoint of this version (expected '{FORMAT}')", path)
    return Checkpoint(path, meta, arrays)


def restore(run, ckpt, tally_type, optimizer_type):
    """Put the checkpoint's state into `run` (after its start-up); returns the Position."""
    meta, arrays = ckpt.meta, ckpt.arrays
    run.engine.set_parameters(arrays["weights"], arrays["biases"])
    run.engine.set_optimizer_state(optimizer_type(
        **{name: arrays[name] for name in MOMENTS}, betas=arrays["betas"]))
    run.rng.state[:] = arrays["rng_state"]
    run.rng.front, run.rng.rear = meta["rng_ring"]
    run.train_x[:] = arrays["train_x"]
    numbers = [np.float32(v) for v in arrays["best_numbers"]]
    best = run.best
    best.th, best.mean, best.std, best.metric = numbers[:4]
    best.test = type(best.test)(*numbers[4:10])
    run.valid_metric, run.valid_th = numbers[10:12]
    best.weights, best.biases = arrays["best_weights"].copy(), arrays["best_biases"].copy()
    best.counter = meta["best_counter"]
    run.finite_model = meta["finite_model"]
    run.elapsed, run.steps = meta["elapsed"], meta["steps"]
    run.history = [ValidationRecord(*r) for r in meta["history"]]
    if run.solver_stats is not None:
        run.solver_stats.restore_tallies(arrays)
    epoch, minibatch, seconds = meta["position"]
    tally = None
    if meta["tally_counts"] is not None:
        tally = tally_type(*(np.float32(v) for v in arrays["tally_sums"]),
                           *meta["tally_counts"])
    return Position(epoch, minibatch, seconds, tally)
