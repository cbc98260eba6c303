"""The training driver: start-up order, epoch loop, validation, best model, end of run.

Implements driver.md §1.4 and §3–§6 (quirks driver Q14–Q18): `train` is `./neural` (and, with
`loaddatas 1`, `maxiter_grad 0`, its load-only mode). Every number that reaches a log is a
float32 computed in the original's order; the engine, metrics, writers and console are called,
never re-implemented here.
"""

import dataclasses
import math
import time

import numpy as np

from . import backup, checkpoint, data, metrics, outputs, rand
from .atomic import remove_stale_temps
from .cformat import cfmt
from .results import FinalMetrics, ValidationRecord
from .compiling import announced
from .console import REDRAW_SECONDS, Console
from .convergence import Unconverged
from .engine import check_solver, ff_levels, make_engine, resolve_backend
from .engine.base import OptimizerState
from .solver import SolverOptions
from .errors import NoFiniteModel
from .network import read_network
from .outpaths import WHOLE_FILES, check_extra_output, check_outputs
from .params import validate
from .runlock import RunLock
from .schedule import Scheduler
from .solver_stats import StatsLog

F32 = np.float32
INF = F32(1e20)


def train(params, backend="auto", quiet=False, source="simulparams.dat", stats=None,
          checkpoint=None, checkpoint_every=0, resume=None, solver=None):
    """The whole run of `./neural` with these parameters; returns the finished Run (its
    `history`, `best`, `final` and `stopped` describe it). `source` names the parameter file in
    error messages; `stats` is the --stats file (None: none); a checkpoint is written to
    `checkpoint` every `checkpoint_every` minibatches (0: never); `resume` continues from a
    checkpoint file; `solver` (--solver: a name of solver.SOLVERS or a solver.SolverOptions,
    None: the original's) solves the fixed points. implicit_nn.train (api.py) is the public way
    in."""
    run = Run(params, backend, quiet, source, stats, checkpoint, checkpoint_every, resume, solver)
    run.execute()
    return run


def _ceil_div(a, b):
    return -(-a // b)


def _exploded(le):
    """The original's explosion test of the epoch's training loss (driver Q6: |LE| > 1e20/2 or NaN)."""
    return abs(float(le)) > float(INF) / 2.0 or math.isnan(le)


def _non_finite(weights, biases):
    """'weights', 'biases', 'weights and biases' for those holding a NaN or inf; '' if none."""
    bad = [name for name, values in (("weights", weights), ("biases", biases))
           if not np.isfinite(values).all()]
    return " and ".join(bad)


def _set_threads(thread_num):
    """thread_num sets the numba pool size, clamped to what this process may use."""
    if thread_num <= 0:
        return
    import numba
    numba.set_num_threads(max(1, min(int(thread_num), numba.config.NUMBA_NUM_THREADS)))


@dataclasses.dataclass
class Validation:
    """One validation's numbers (driver.md §5)."""
    metric: np.float32
    th: np.float32
    mean: np.float32
    std: np.float32
    test: metrics.Confusion          # test-set metrics at th with this mean/std


@dataclasses.dataclass
class Best:
    """The best model so far and the early-stopping counter (§5.7); th/mean/std start as the
    loaded backup's (or 0) and are what the final evaluation uses (driver Q14, Q15)."""
    th: np.float32
    mean: np.float32
    std: np.float32
    weights: np.ndarray
    biases: np.ndarray
    metric: np.float32 = -INF
    test: metrics.Confusion = metrics.Confusion(-INF, -INF, -INF, -INF, -INF, -INF)
    counter: int = 0

    def keep(self, v, weights, biases):
        """Validation `v` is the new best: remember it with these parameters."""
        self.counter = 0
        self.metric = v.metric
        self.th, self.mean, self.std = v.th, v.mean, v.std
        self.test = v.test
        self.weights, self.biases = weights, biases


@dataclasses.dataclass
class StepRecord:
    """One minibatch as the logs see it: the engine's statistics, its rows, its loss sum."""
    stats: object            # engine StepStats
    rows: int
    loss_sum: np.float32     # f32(f32(loss) · rows)
    t_mb: float = 0.0        # seconds since the epoch started, after this minibatch


@dataclasses.dataclass
class EpochTally:
    """Running float32 sums of one epoch in the original's order (§4): loss, IF, IB."""
    loss_sum: np.float32 = F32(0)
    forward_sum: np.float32 = F32(0)
    backward_sum: np.float32 = F32(0)
    rows: int = 0
    minibatches: int = 0

    def add(self, steps, rows):
        """Count minibatches (engine Steps, their row counts), each in the original's float32
        order, without a Python step per minibatch; the record of the last one."""
        with np.errstate(all="ignore"):                  # NaN / inf sums as in C
            e = steps.loss.astype(F32) * rows.astype(F32)   # f32(f32(loss) · rows) each
            self.loss_sum = _running_sum(self.loss_sum, e)
            self.forward_sum = _running_sum(self.forward_sum,
                                            steps.forward.iterations.astype(F32))
            self.backward_sum = _running_sum(self.backward_sum,
                                             steps.backward.iterations.astype(F32))
        self.rows += int(rows.sum())
        self.minibatches += len(steps)
        return StepRecord(steps[-1], int(rows[-1]), e[-1])

    def loss(self, outputs):
        """LE: the mean per-element training loss of the epoch so far."""
        return F32(self.loss_sum / F32(self.rows * outputs))

    def iter_forward(self):
        return F32(self.forward_sum / F32(self.minibatches))

    def iter_backward(self):
        return F32(self.backward_sum / F32(self.minibatches))


def _running_sum(start, values):
    """start + v0 + v1 + …, each addition rounded to float32 in order (C's `s += v`):
    accumulate is sequential, unlike sum."""
    return np.add.accumulate(np.concatenate([[F32(start)], values]), dtype=F32)[-1]


STOP, GO_ON = "stop", "go on"


class Run:
    """State of one run; `execute` follows the original's order step by step."""

    def __init__(self, params, backend, quiet, source, stats=None, checkpoint_path=None,
                 checkpoint_every=0, resume=None, solver=None):
        self.params = params
        self.solver = SolverOptions.coerce(solver)
        self.stats_path = stats
        self.checkpoint_every = int(checkpoint_every)
        self.resume_path = resume
        self.checkpoint_path = checkpoint_path or resume or f"{params.output_name}.ckpt"
        self.position = checkpoint.Position(1, 0)     # where the epoch loop starts
        self.source = source
        self.backend = backend
        self.console = Console(quiet=quiet)
        self.history = []                             # ValidationRecord per logged validation
        self.stopped = "completed"
        self.final = None

    # ---- start-up (§1.4) -------------------------------------------------------------
    def startup(self):
        p = self.params
        _set_threads(p.thread_num)
        self.rng = rand.GlibcRandom(p.seed)
        validate(p, self.source)
        check_outputs(p, self.source)
        self.solver_stats = None
        if self.stats_path is not None:
            check_extra_output(self.stats_path, "--stats", p, self.source)
            self.solver_stats = StatsLog(self.stats_path, p.maxiter_fix,
                                         self.solver.maxiter_backward_of(p))
        if self.checkpoint_every:
            check_extra_output(self.checkpoint_path, "--checkpoint", p, self.source)
        self.resume_from = self.resume_path and checkpoint.load(self.resume_path)
        self.input_digests = (checkpoint.input_digests(p)
                              if self.checkpoint_every or self.resume_path else {})
        self.backend, self.backend_reason = resolve_backend(self.backend)
        check_solver(self.solver, self.backend)
        self.minibatch_num = _ceil_div(p.learn_num, p.mini_batch_size)
        self.valid_every = p.sfreq and self.minibatch_num // p.sfreq
        self.network = net = read_network(p)        # includes the bce output check (§4.8)
        self.weights, self.biases = rand.initial_parameters(net, p.initdx, self.rng)
        th = mean = std = F32(0)
        if p.loaddatas == 1:
            w, b, th, mean, std = backup.load_backup(p.load_backup, net)
            self.weights, self.biases = net.apply_fixed(w, b)
        self.best = Best(F32(th), F32(mean), F32(std), np.zeros_like(self.weights),
                         np.zeros_like(self.biases))
        self.levels = None
        if p.ff_optimization > 0:
            t0 = time.perf_counter()
            self.levels = ff_levels(net, p)
            self.console.done("Feed forward optimization", time.perf_counter() - t0)
        self.train_x = self._load("Loading the training data", data.read_train,
                                  p.input_name, p.learn_num)
        self.valid_x, self.valid_y = self._load("Loading the validation data", data.read_labeled,
                                                p.input_name_valid, p.valid_num)
        self.test_x, self.test_y = self._load("Loading the test data", data.read_labeled,
                                              p.input_name_test, p.test_num)
        self.engine = make_engine(net, p, backend=self.backend, levels=self.levels,
                                  solver=self.solver)
        self.engine.set_parameters(self.weights, self.biases)
        self.console.engine(self.engine.name, self.backend_reason)
        with announced(self.console):        # a first run after an install compiles here
            self.engine.compile(training=p.maxiter_grad > 0)
        self.valid_metric = self.valid_th = F32(0)
        self.elapsed = 0.0
        self.lr = F32(0)                              # driver Q10: unknown optimizer logs 0.00E+00
        self.steps = 0                                # minibatches trained, for checkpoints
        self.redraw_every = 1                         # minibatches per status-line redraw (tty)
        # a model to keep exists from the start only when one was loaded or nothing is trained
        self.finite_model = p.loaddatas == 1 or p.maxiter_grad == 0
        self.unconverged = Unconverged(p, self.solver)  # console warnings only: not in a checkpoint
        self.first_unsound = None
        if self.resume_from:
            self.resume_from.check_matches(p, self.engine.name, self.stats_path,
                                           self.input_digests, self.source)

    def open_outputs(self):
        """The first writes, once every input is read and checked (the original writes the log
        headers before it reads the data, so a bad data file left them behind): the temp files
        of a killed run's atomic writes go, then the two log headers."""
        p = self.params
        for entry in WHOLE_FILES:
            remove_stale_temps(getattr(p, entry))
        if self.checkpoint_every:
            remove_stale_temps(self.checkpoint_path)
        if self.resume_from:                        # the logs as they were at the checkpoint
            checkpoint.rewind_logs(self.resume_from.meta["logs"], self.resume_path)
            self.position = checkpoint.restore(self, self.resume_from, EpochTally,
                                               OptimizerState)
            self.console.resumed(self.resume_path, self.position.epoch, self.position.minibatch)
            return
        outputs.append_results_header(p.output_name)
        outputs.append_test_header(p.test_log)
        if self.solver_stats:
            self.solver_stats.start()

    def _load(self, label, reader, path, rows):
        with announced(self.console):        # fastdata's reader, on a first run after an install
            t0 = time.perf_counter()
            result = reader(path, rows, self.params.input_num, compiled=True)
        self.console.done(label, time.perf_counter() - t0)
        return result

    # ---- validation (§5) -------------------------------------------------------------
    def _errors(self, x):
        pred = self.engine.predict(x, self.params.mini_batch_size)
        if self.solver_stats:
            self.solver_stats.valid(self.engine.predict_solves)
        return pred, metrics.reconstruction_errors(pred, x, self.params.train_lossfunction_type)

    def validate(self, prev_metric, prev_th):
        """§5.1–§5.6 with the engine's current parameters."""
        p = self.params
        _, err_v = self._errors(self.valid_x)
        _, err_t = self._errors(self.test_x)
        mean, std = metrics.zscore_stats(err_v, self.valid_y)
        sweep = metrics.threshold_sweep(metrics.zscores(err_v, mean, std), self.valid_y,
                                        p.range_div)
        best = {name: metrics.best_threshold(getattr(sweep, attr), sweep.th)
                for name, attr in (("F1", "f1"), ("MCC", "mcc"), ("TPR", "tpr"))}
        th = best[p.valid_metric_type_2][1] if p.valid_metric_type_2 in best else prev_th
        if p.valid_metric_type == "AUC":
            metric = metrics.auc(sweep.fpr, sweep.tpr)
        elif p.valid_metric_type in best:
            metric = best[p.valid_metric_type][0]
        else:                                         # driver Q16: unknown type keeps the old value
            metric = prev_metric
        test = metrics.confusion_metrics(metrics.zscores(err_t, mean, std), self.test_y, th)
        return Validation(metric, th, mean, std, test)

    # ---- the epoch loop (§4, §5.7) ---------------------------------------------------
    def loop(self):
        """Epochs of minibatch steps with a validation every `valid_every` minibatches and after
        the last one; ends early on the early-stopping limit or a non-finite training loss."""
        p = self.params
        self.scheduler = Scheduler(p, self.minibatch_num)
        start = self.position
        epoch = start.epoch - 1
        while epoch < p.maxiter_grad:
            epoch += 1
            if not self.epoch(epoch):
                break
            self._save_best()
            self._checkpoint_if_due(checkpoint.Position(epoch + 1, 0))
        self.epochs_run = epoch

    def epoch(self, epoch):
        """One epoch: shuffle, then minibatch steps and validations; False when the run stops.
        A resumed run continues inside the epoch of its checkpoint (after its shuffle)."""
        p, M, start = self.params, self.minibatch_num, self.position
        if start.epoch != epoch or start.minibatch == 0:
            t_start = time.perf_counter()
            rand.shuffle_rows(self.train_x, p.shuffle_num, self.rng)
            tally, first = EpochTally(), 0
        else:
            t_start = time.perf_counter() - start.seconds
            tally, first = start.tally, start.minibatch
        self.console.epoch_start()
        k = first
        while k < M:
            end = self._next_stop(k)
            step = self.train_minibatches(epoch, k, end, tally, t_start)
            k = end
            if k % self.valid_every == 0 or k == M:
                if self.after_validation(epoch, k - 1, tally, step) == STOP:
                    return False
            if k < M:           # the epoch's last one is checkpointed after its backup
                self._checkpoint_if_due(checkpoint.Position(
                    epoch, k, time.perf_counter() - t_start, tally))
        self.elapsed += step.t_mb
        self.console.epoch_end()
        return True

    def _next_stop(self, k):
        """The minibatch before which training next stops for Python: after a validation, at a
        due checkpoint, or (on a terminal) when the status line is due for a redraw."""
        end = min((k // self.valid_every + 1) * self.valid_every, self.minibatch_num)
        if self.checkpoint_every:
            end = min(end, k + self.checkpoint_every - self.steps % self.checkpoint_every)
        if self.console.tty:
            end = min(end, k + self.redraw_every)
        return end

    def _checkpoint_if_due(self, position):
        """Every checkpoint_every minibatches: the state to continue at `position`."""
        if self.checkpoint_every and self.steps % self.checkpoint_every == 0:
            checkpoint.save(self.checkpoint_path, self, position)

    def train_minibatches(self, epoch, first, end, tally, t_start):
        """Minibatches first … end−1 (0-based) of `epoch`: their scheduled rates (one compiled
        call), the engine's steps (one compiled call on the numba engine), the epoch's float32
        bookkeeping (vectorised) and the status line; the record of the last one."""
        p = self.params
        B, O = p.mini_batch_size, p.output_num
        t0 = time.perf_counter()
        lr, beta1 = self.scheduler.steps(epoch, first, end)
        steps = self.engine.train_steps(self.train_x, first, end, B, lr, beta1)
        self.lr = lr[-1]
        self.steps += end - first
        self.unconverged.add(steps.forward, steps.backward)
        if self.solver_stats:
            self.solver_stats.train(steps)
        rows = np.minimum(B, p.learn_num - np.arange(first, end) * B)
        step = tally.add(steps, rows)
        step.t_mb = time.perf_counter() - t_start
        if self.console.tty:    # about REDRAW_SECONDS of training between two redraws
            each = (time.perf_counter() - t0) / (end - first)
            self.redraw_every = max(1, int(REDRAW_SECONDS / max(each, 1e-9)))
        self.console.minibatch(epoch, p.maxiter_grad, end - 1, self.minibatch_num,
                               F32(step.loss_sum / F32(step.rows * O)), tally.loss(O), step.t_mb)
        return step

    def after_validation(self, epoch, k, tally, step):
        """Validate, keep the model if it is the best so far, then stop or go on (§5.7, driver Q17).

        A model whose training loss exploded or whose parameters are not all finite is never
        the best (the original let such a validation beat -INF and saved a backup of NaNs), and
        parameters that went non-finite end the run as an exploding loss does."""
        p, con, best = self.params, self.console, self.best
        warning = self.unconverged.report("the last {units} minibatches")
        if warning:
            con.warning(warning)
        v = self.validate(self.valid_metric, self.valid_th)
        if self.solver_stats:
            self.solver_stats.row("validation", epoch, k + 1)
        self.valid_metric, self.valid_th = v.metric, v.th
        le = tally.loss(p.output_num)
        weights, biases = self.engine.get_parameters()
        blown = _non_finite(weights, biases)
        sound = not _exploded(le) and not blown
        self.finite_model = self.finite_model or sound
        if not sound and self.first_unsound is None:
            self.first_unsound = (epoch, k + 1, le, blown)
        if sound and v.metric > best.metric:
            best.keep(v, weights, biases)
        else:
            best.counter += 1
        if p.early_stopping > 0 and best.counter == p.early_stopping:
            con.early_stop()
            self.stopped = "early stopping"
            self._save_best()
            return STOP
        et = self.elapsed + step.t_mb
        con.validation(epoch, p.maxiter_grad, k, self.minibatch_num, F32(step.loss_sum / F32(step.rows)),
                       le, step.t_mb, v.metric, v.test.mcc, v.test.f1, best.metric, et)
        outputs.append_results_row(p.output_name, epoch, k + 1, le, v.metric, best.metric,
                                   tally.iter_forward(), tally.iter_backward(), step.stats.maw,
                                   step.stats.mab, self.lr, et)
        self.history.append(ValidationRecord(
            epoch, k + 1, float(le), float(v.metric), float(best.metric),
            float(tally.iter_forward()), float(tally.iter_backward()), float(step.stats.maw),
            float(step.stats.mab), float(self.lr), float(et), float(v.test.f1),
            float(v.test.mcc)))
        if not sound:
            con.exploding(le, "" if _exploded(le) else blown)
            self.stopped = "exploding"
            self._save_best()
            return STOP
        outputs.append_test_row(p.test_log, epoch, k + 1, le, v.metric, v.test.f1, v.test.mcc,
                                best.metric, best.test, et)
        return GO_ON

    def _save_best(self):
        """The per-epoch / stopping backup of the best model; none while no model was finite
        (a backup of zeros or NaNs would replace a good one from an earlier run)."""
        best = self.best
        if not self.finite_model:
            return
        backup.save_backup(self.params.save_best_model, self.network, best.weights, best.biases,
                           best.th, best.mean, best.std)

    # ---- end of run (§6) -------------------------------------------------------------
    def finish(self):
        p, eng, best = self.params, self.engine, self.best
        if not self.finite_model:
            outputs.append_results_closing(p.output_name)
            outputs.append_test_closing(p.test_log)
            raise self._no_finite_model()
        t0 = time.perf_counter()
        if p.loaddatas == 1:                          # driver Q14: loaded weights, trained th/mean/std
            w, b = self.weights, self.biases
        else:
            w, b = best.weights, best.biases
        backup.save_backup(p.save_best_model, self.network, w, b, best.th, best.mean, best.std)
        eng.set_parameters(w, b)
        final_solves = Unconverged(p, self.solver)
        pred_v, err_v = self._errors(self.valid_x)
        final_solves.add(eng.predict_solves)
        pred_t, err_t = self._errors(self.test_x)
        final_solves.add(eng.predict_solves)
        warning = final_solves.report("the {units} prediction chunks of the final evaluation")
        if warning:
            self.console.warning(warning)
        outputs.write_predictions(p.predict_name_valid, pred_v)
        outputs.write_predictions(p.predict_name_test, pred_t)
        z_v = metrics.zscores(err_v, best.mean, best.std)
        z_t = metrics.zscores(err_t, best.mean, best.std)
        sweep = metrics.threshold_sweep(z_v, self.valid_y, p.range_div)
        vauc = metrics.auc(sweep.fpr, sweep.tpr)
        valid = metrics.confusion_metrics(z_v, self.valid_y, best.th)
        test = metrics.confusion_metrics(z_t, self.test_y, best.th)
        et = self.elapsed + (time.perf_counter() - t0)
        outputs.append_final(p.test_log_final, self.epochs_run, vauc, valid.mcc, valid.f1,
                             test, et)
        self.final = FinalMetrics(self.epochs_run, *(float(v) for v in (
            vauc, valid.mcc, valid.f1, test.f1, test.mcc, test.accuracy, test.precision,
            test.tpr, et)))
        outputs.append_results_closing(p.output_name)
        outputs.append_test_closing(p.test_log)
        if self.solver_stats:
            self.solver_stats.row("final", self.epochs_run, 0)

    def _no_finite_model(self):
        epoch, mb, le, blown = self.first_unsound
        why = (f"the {blown} went non-finite" if not _exploded(le) else
               f"the training loss exploded (LE {cfmt('%.2E', le)})")
        return NoFiniteModel(f"training never had a finite model: {why} at its first validation "
                             f"(epoch {epoch}, minibatch {mb}); no backup, predictions or final "
                             "metrics were written", self.params.output_name)

    def execute(self):
        self.startup()                              # reads and checks; writes nothing
        with RunLock(self.params.output_name):      # one run at a time on these outputs
            self.open_outputs()
            self.loop()
            self.finish()
