"""The Python API: parameters, training in-process, prediction with a backup.

    from implicit_nn import read_params, train, load_network
    params = read_params("inputs/simulparams.dat", maxiter_grad=3)
    result = train(params)                  # the same files as `implicit-nn train`, no console
    result.final.valid_f1, result.history[-1].loss
    model = load_network(params, result.paths.backup)
    scores = model.scores(x)                # z-scores of the reconstruction error

Errors in inputs raise implicit_nn.InputError (the message the CLI prints); wrong Python
arguments raise TypeError / ValueError. The engine (numba or CuPy) is imported only when a
function needs it, so `import implicit_nn` stays fast.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional, Union

import numpy as np

from implicit_nn.solver import SolverOptions
from implicit_nn.errors import InputError
from implicit_nn.params import SCHEMA, Params, read_params as _read_file
from implicit_nn.results import OutputPaths, TrainResult

PathLike = Union[str, "os.PathLike[str]"]
ParamsLike = Union[Params, PathLike]
_KINDS = dict(SCHEMA)

# Every entry that has one obvious value: the settings of the paper's published HTRU2 runs
# (shared/reference/README.md). make_params needs the rest: file names and sizes.
PAPER_SETTINGS = dict(
    seed=2025, shuffle_num=100000, thread_num=2, tol_fixit=1.0e-5, maxiter_grad=20,
    maxiter_fix=50, initdx=1.0, mini_batch_size=16, shared_weights_num=0, shared_biases_num=0,
    alpha=1.0e-4, train_lossfunction_type="MSE", valid_metric_type="F1", valid_metric_type_2="F1",
    range_div=8000, optimizer=1, nesterov=1, grad_alpha=0.01, adam_alpha=1.0e-3, adam_beta1=0.9,
    adam_beta2=0.999, adam_eps=1.0e-8, lr_scheduler=2, cyclic_momentum=0, pcr=1.0,
    base_momentum=0.85, max_momentum=0.95, div_factor=10.0, final_div_factor=10.0, step_size=1,
    lr_gamma=0.5, early_stopping=0, ff_optimization=0, clipping=0, clipping_threshold=1.0,
    loaddatas=0, load_backup="none", shared_w_datas="none", shared_b_datas="none")


def _coerce(name: str, value: object) -> object:
    """A keyword value as the parameter file would give it (int, numpy.float32 or str)."""
    kind = _KINDS.get(name)
    if kind is None:
        raise TypeError(f"unknown parameter {name!r} (see implicit_nn.params.SCHEMA)")
    if kind == "str":
        return os.fspath(value) if isinstance(value, os.PathLike) else str(value)
    if kind == "f32":
        if isinstance(value, (bool, str)) or not isinstance(value, (int, float, np.number)):
            raise TypeError(f"parameter {name!r} takes a number, got {value!r}")
        return np.float32(value)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"parameter {name!r} takes a non-negative integer, got {value!r}")
    return int(value)


def with_overrides(params: Params, **overrides: object) -> Params:
    """A copy of `params` with some entries changed (names as in simulparams.dat)."""
    return dataclasses.replace(params, **{k: _coerce(k, v) for k, v in overrides.items()})


def read_params(path: PathLike, **overrides: object) -> Params:
    """Read a simulparams.dat file (58 entries, checked), then apply keyword overrides."""
    return with_overrides(_read_file(os.fspath(path)), **overrides)


def make_params(**values: object) -> Params:
    """Parameters built in Python: the published runs' settings (PAPER_SETTINGS) for what is not
    given; the file names and sizes must be given (TypeError names the missing ones)."""
    merged = dict(PAPER_SETTINGS, **values)
    missing = [name for name, _ in SCHEMA if name not in merged]
    unknown = sorted(set(values) - set(_KINDS))
    if unknown:
        raise TypeError(f"unknown parameter(s): {', '.join(unknown)}")
    if missing:
        raise TypeError(f"make_params() needs: {', '.join(missing)}")
    return Params(**{name: _coerce(name, merged[name]) for name, _ in SCHEMA})


def _params_and_source(params: ParamsLike) -> tuple[Params, str]:
    if isinstance(params, Params):
        return params, "parameters"
    return read_params(params), os.fspath(params)


def train(params: ParamsLike, *, backend: str = "auto", verbose: bool = False,
          stats: Optional[PathLike] = None, checkpoint_every: int = 0,
          checkpoint: Optional[PathLike] = None, resume: Optional[PathLike] = None,
          solver: str = "faithful", anderson_m: Optional[int] = None,
          anderson_beta: Optional[float] = None, anderson_start: Optional[int] = None,
          tol_backward: Optional[float] = None, maxiter_backward: Optional[int] = None
          ) -> TrainResult:
    """Train as `implicit-nn train` does, in this process; the same output files are written.

    `params` is a Params or the path of a parameter file. Nothing is printed unless `verbose`.
    `stats` names a solver-statistics file to write as `--stats` does (CSV, or JSON lines for
    .jsonl/.json). `checkpoint_every` N > 0 writes a checkpoint every N minibatches to
    `checkpoint` (default `<output_name>.ckpt`, or the `resume` file); `resume` continues a run
    from its checkpoint (same parameters, files, engine and solver). `solver` "blocks" solves the
    fixed points block by block (`--solver blocks`, docs/architecture.md; numba engine only);
    "anderson" (cpu and reference backends) accelerates both fixed points with Anderson mixing of
    the last `anderson_m` residual differences (default 5), damping `anderson_beta` (default
    1.0), after `anderson_start` plain sweeps (default 8); `tol_backward` / `maxiter_backward`
    give the adjoint its own stop rule (default tol_fixit / maxiter_fix):
    docs/solvers.md. Returns the per-validation history, the best validation metric, the final
    metrics and the paths of the files written."""
    options = SolverOptions.of(solver, anderson_m, anderson_beta, tol_backward, maxiter_backward,
                               anderson_start)
    return _train(*_params_and_source(params), backend, verbose, stats=stats,
                  checkpoint_every=checkpoint_every, checkpoint=checkpoint, resume=resume,
                  solver=options)


def _path(path: Optional[PathLike]) -> Optional[str]:
    return None if path is None else os.fspath(path)


def _train(params: Params, source: str, backend: str, verbose: bool,
           stats: Optional[PathLike] = None, checkpoint_every: int = 0,
           checkpoint: Optional[PathLike] = None,
           resume: Optional[PathLike] = None,
           solver: Union[str, SolverOptions, None] = None) -> TrainResult:
    from implicit_nn import driver

    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) \
            or checkpoint_every < 0:
        raise InputError(f"must be a non-negative number of minibatches, got "
                         f"{checkpoint_every!r}", "--checkpoint-every")
    run = driver.train(params, backend=backend, quiet=not verbose, source=source,
                       stats=_path(stats), checkpoint=_path(checkpoint),
                       checkpoint_every=checkpoint_every, resume=_path(resume), solver=solver)
    best = run.best
    return TrainResult(tuple(run.history), float(best.metric), float(best.th), float(best.mean),
                       float(best.std), run.final, run.stopped, OutputPaths.of(params),
                       run.engine.name, params)


@dataclasses.dataclass
class Model:
    """A network with parameters (a backup's, or the seeded initial ones), ready to predict.

    `threshold`, `mean` and `std` are the backup's last line: the z-score normalisation of the
    reconstruction error and the anomaly threshold the best validation chose."""
    params: Params
    network: object
    weights: np.ndarray
    biases: np.ndarray
    threshold: float
    mean: float
    std: float
    backend: str = "auto"
    _engine: object = dataclasses.field(default=None, repr=False)

    def _rows(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.params.input_num:
            raise ValueError(f"x must have shape (rows, {self.params.input_num}), got {x.shape}")
        return x

    @property
    def engine(self):
        """The engine holding these parameters (built on first use: it loads numba or CuPy)."""
        if self._engine is None:
            from implicit_nn.engine import make_engine, resolve_backend
            backend, _ = resolve_backend(self.backend)
            self._engine = make_engine(self.network, self.params, backend)
            self._engine.set_parameters(self.weights, self.biases)
        return self._engine

    def predict(self, x: np.ndarray, batch_size: Optional[int] = None) -> np.ndarray:
        """Network outputs (output transform applied) for rows of x, float32 [rows, output_num].

        Rows are solved in consecutive chunks of `batch_size` (default mini_batch_size), as the
        original predicts; an implicit network's solve stops per chunk, so the chunking matters
        in the last digits."""
        size = self.params.mini_batch_size if batch_size is None else int(batch_size)
        if size < 1:
            raise ValueError(f"batch_size must be positive, got {size}")
        return self.engine.predict(self._rows(x), size)

    def errors(self, x: np.ndarray) -> np.ndarray:
        """Per-row reconstruction error (RMSE for MSE, mean |d| for MAE) as validation uses it."""
        from implicit_nn import metrics
        x = self._rows(x)
        return metrics.reconstruction_errors(self.predict(x), x,
                                             self.params.train_lossfunction_type)

    def scores(self, x: np.ndarray) -> np.ndarray:
        """z-scores of the reconstruction error with the backup's mean and std."""
        from implicit_nn import metrics
        return metrics.zscores(self.errors(x), np.float32(self.mean), np.float32(self.std))

    def classify(self, x: np.ndarray) -> np.ndarray:
        """1 where the z-score is above the backup's threshold (an anomaly), else 0."""
        return (self.scores(x) > np.float32(self.threshold)).astype(np.int64)


def load_network(params: ParamsLike, backup: Optional[PathLike] = None, *,
                 backend: str = "auto") -> Model:
    """The network the parameters name, with the parameters of `backup`; without a backup, the
    seeded initial parameters training would start from (threshold, mean and std 0)."""
    from implicit_nn.network import read_network

    params, _ = _params_and_source(params)
    network = read_network(params)
    if backup is not None:
        from implicit_nn.backup import load_backup
        weights, biases, th, mean, std = load_backup(os.fspath(backup), network)
        weights, biases = network.apply_fixed(weights, biases)
    else:
        from implicit_nn.rand import GlibcRandom, initial_parameters
        weights, biases = initial_parameters(network, params.initdx, GlibcRandom(params.seed))
        th = mean = std = 0.0
    return Model(params, network, weights, biases, float(th), float(mean), float(std), backend)


def predict(params: ParamsLike, x: np.ndarray, backup: PathLike, *, backend: str = "auto",
            batch_size: Optional[int] = None) -> np.ndarray:
    """Outputs of the network with a backup's parameters for the rows of x (Model.predict)."""
    return load_network(params, backup, backend=backend).predict(x, batch_size)


# -- the command line's train and predict: thin layers over the functions above -----------------
def solver_of(args) -> SolverOptions:
    """The solver options of a command line (cli.add_solver_options)."""
    return SolverOptions.of(args.solver, args.anderson_m, args.anderson_beta, args.tol_backward,
                            args.maxiter_backward, args.anderson_start)


def run_train(args) -> int:
    _train(read_params(args.params), os.fspath(args.params), args.backend, not args.quiet,
           stats=args.stats, checkpoint_every=args.checkpoint_every,
           checkpoint=args.checkpoint, resume=args.resume, solver=solver_of(args))
    return 0


def run_predict(args) -> int:
    """The original's load mode: loaddatas 1, maxiter_grad 0, load_backup from --load."""
    params = read_params(args.params, loaddatas=1, maxiter_grad=0, load_backup=args.load)
    _train(params, os.fspath(args.params), args.backend, not args.quiet, stats=args.stats,
           solver=solver_of(args))
    return 0


__all__ = ["Params", "InputError", "TrainResult", "Model", "PAPER_SETTINGS", "read_params",
           "make_params", "with_overrides", "train", "load_network", "predict"]
