"""The training driver: start-up order, epoch loop, validation, best model, end of run.

Implements driver.md §1.4 and §3–§6 (quirks Q14–Q18): `run_train` is `./neural`, `run_predict`
is its load-only mode (`loaddatas 1`, `maxiter_grad 0`). Every number that reaches a log is a
float32 computed in the original's order; the engine, metrics, writers and console are called,
never re-implemented here.
"""

import dataclasses
import math
import os
import time

import numpy as np

from . import backup, data, metrics, outputs, rand
from .console import Console
from .engine import ff_levels, make_engine, resolve_backend
from .errors import InputError
from .engine.losses import LOSS_IDS, check_loss_name
from .network import read_network
from .params import read_params, validate
from .schedule import Scheduler

F32 = np.float32
INF = F32(1e20)
LOSS_LIST = ("The train_lossfunction_type should be:\n - 'multilabeling_crossentropy' or \n"
             " - 'multiclassification_crossentropy' or \n - 'MSE'\n - 'MAE'\n"
             " - 'bce_multilabeling'\n\n")


def run_train(args):
    params = read_params(args.params)
    return train(params, backend=args.backend, quiet=args.quiet, source=args.params)


def run_predict(args):
    params = dataclasses.replace(read_params(args.params), loaddatas=1, maxiter_grad=0,
                                 load_backup=args.load)
    return train(params, backend=args.backend, quiet=args.quiet, source=args.params)


def train(params, backend="auto", quiet=False, source="simulparams.dat"):
    """The whole run of `./neural` with these parameters; returns the exit status (0).

    `source` names the parameter file in error messages."""
    return Run(params, backend, quiet, source).execute()


def _ceil_div(a, b):
    return -(-a // b)


def _check_output_folders(p, source):
    """The original finds a missing output folder only when it writes there, possibly after
    hours of training; we refuse at start-up, before any file is touched."""
    for entry in ("output_name", "test_log", "test_log_final", "predict_name_valid",
                  "predict_name_test", "save_best_model"):
        folder = os.path.dirname(getattr(p, entry)) or "."
        if not os.path.isdir(folder):
            raise InputError(f"{entry}: folder '{folder}' does not exist", source)


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


class Run:
    """State of one run; `execute` follows the original's order step by step."""

    def __init__(self, params, backend, quiet, source):
        self.params = params
        self.source = source
        self.backend = backend
        self.console = Console(quiet=quiet)

    # ---- start-up (§1.4) -------------------------------------------------------------
    def startup(self):
        p = self.params
        _set_threads(p.thread_num)
        self.rng = rand.GlibcRandom(p.seed)
        validate(p, self.source)
        _check_output_folders(p, self.source)
        self.backend = resolve_backend(self.backend)
        self.minibatch_num = _ceil_div(p.learn_num, p.mini_batch_size)
        self.valid_every = p.sfreq and self.minibatch_num // p.sfreq
        self.network = net = read_network(p)        # includes the bce output check (§4.8)
        self.weights, self.biases = rand.initial_parameters(net, p.initdx, self.rng)
        self.th_best = self.mean_best = self.std_best = F32(0)
        if p.loaddatas == 1:
            w, b, th, mean, std = backup.load_backup(p.load_backup, net)
            self.weights, self.biases = net.apply_fixed(w, b)
            self.th_best, self.mean_best, self.std_best = F32(th), F32(mean), F32(std)
        if p.train_lossfunction_type not in LOSS_IDS:
            self.console.message(LOSS_LIST)
            check_loss_name(p.train_lossfunction_type, self.source)
        self.levels = None
        if p.ff_optimization > 0:
            t0 = time.perf_counter()
            self.levels = ff_levels(net, p)
            self.console.done("Feed forward optimization", time.perf_counter() - t0)
        outputs.append_results_header(p.output_name)
        outputs.append_test_header(p.test_log)
        self.train_x = self._load("Loading the training data", data.read_train,
                                  p.input_name, p.learn_num)
        self.valid_x, self.valid_y = self._load("Loading the validation data", data.read_labeled,
                                                p.input_name_valid, p.valid_num)
        self.test_x, self.test_y = self._load("Loading the test data", data.read_labeled,
                                              p.input_name_test, p.test_num)
        self.engine = make_engine(net, p, backend=self.backend, levels=self.levels)
        self.engine.set_parameters(self.weights, self.biases)
        self.console.message(f"Engine: {self.engine.name}\n")

    def _load(self, label, reader, path, rows):
        t0 = time.perf_counter()
        result = reader(path, rows, self.params.input_num)
        self.console.done(label, time.perf_counter() - t0)
        return result

    # ---- validation (§5) -------------------------------------------------------------
    def _errors(self, x):
        pred = self.engine.predict(x, self.params.mini_batch_size)
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
        else:                                         # Q16: unknown type keeps the old value
            metric = prev_metric
        test = metrics.confusion_metrics(metrics.zscores(err_t, mean, std), self.test_y, th)
        return Validation(metric, th, mean, std, test)

    # ---- the epoch loop (§4, §5.7) ---------------------------------------------------
    def loop(self):
        p, eng, con = self.params, self.engine, self.console
        M, B, N, O = self.minibatch_num, p.mini_batch_size, p.learn_num, p.output_num
        sched = Scheduler(p, M)
        self.best_metric = -INF
        self.corr = metrics.Confusion(-INF, -INF, -INF, -INF, -INF, -INF)
        self.w_best = np.zeros_like(self.weights)
        self.b_best = np.zeros_like(self.biases)
        valid_metric = valid_th = F32(0)
        counter = 0
        self.elapsed = 0.0
        lr = F32(0)                                   # Q10: unknown optimizer logs 0.00E+00
        epoch = 0
        while epoch < p.maxiter_grad:
            epoch += 1
            t_start = time.perf_counter()
            rand.shuffle_rows(self.train_x, p.shuffle_num, self.rng)
            fwd_sum = bwd_sum = loss_sum = F32(0)
            seen = 0
            con.epoch_start()
            stop = False
            for k in range(M):
                x = self.train_x[k * B:min((k + 1) * B, N)]
                n = x.shape[0]
                seen += n
                lr_w, lr_a, beta1 = sched.rates(epoch, k)
                if p.optimizer == 1:
                    lr = lr_w
                elif p.optimizer in (2, 3):
                    lr = lr_a
                st = eng.train_step(x, lr_w if p.optimizer == 1 else lr_a, beta1)
                e = F32(F32(st.loss) * F32(n))
                loss_sum = F32(loss_sum + e)
                fwd_sum = F32(fwd_sum + F32(st.iter_forward))
                bwd_sum = F32(bwd_sum + F32(st.iter_backward))
                t_mb = time.perf_counter() - t_start
                it_f = F32(fwd_sum / F32(k + 1))
                it_b = F32(bwd_sum / F32(k + 1))
                le = F32(loss_sum / F32(seen * O))
                last = k == M - 1
                con.minibatch(epoch, p.maxiter_grad, k, M, F32(e / F32(n * O)), le, t_mb)
                if not ((k + 1) % self.valid_every == 0 or last):
                    continue
                v = self.validate(valid_metric, valid_th)
                valid_metric, valid_th = v.metric, v.th
                if v.metric > self.best_metric:
                    counter = 0
                    self.best_metric = v.metric
                    self.th_best, self.mean_best, self.std_best = v.th, v.mean, v.std
                    self.corr = v.test
                    self.w_best, self.b_best = eng.get_parameters()
                else:
                    counter += 1
                if p.early_stopping > 0 and counter == p.early_stopping:
                    con.early_stop()
                    self._save_best()
                    stop = True
                    break
                et = self.elapsed + t_mb
                con.validation(epoch, p.maxiter_grad, k, M, F32(e / F32(n)), le, t_mb,
                               v.metric, v.test.mcc, v.test.f1, self.best_metric, et)
                outputs.append_results_row(p.output_name, epoch, k + 1, le, v.metric,
                                           self.best_metric, it_f, it_b, st.maw, st.mab, lr, et)
                if abs(float(le)) > float(INF) / 2.0 or math.isnan(le):
                    con.exploding()
                    con.message(f"The training loss is {'NaN' if math.isnan(le) else 'infinite'}"
                                "; training stops and the best model so far is evaluated.\n")
                    self._save_best()
                    stop = True
                    break
                outputs.append_test_row(p.test_log, epoch, k + 1, le, v.metric, v.test.f1,
                                        v.test.mcc, self.best_metric, self.corr, et)
            if stop:
                break
            self.elapsed += t_mb
            con.epoch_end()
            self._save_best()
        self.epochs_run = epoch

    def _save_best(self):
        backup.save_backup(self.params.save_best_model, self.network, self.w_best, self.b_best,
                           self.th_best, self.mean_best, self.std_best)

    # ---- end of run (§6) -------------------------------------------------------------
    def finish(self):
        p, eng = self.params, self.engine
        t0 = time.perf_counter()
        if p.loaddatas == 1:                          # Q14: loaded weights, trained th/mean/std
            w, b = self.weights, self.biases
        else:
            w, b = self.w_best, self.b_best
        backup.save_backup(p.save_best_model, self.network, w, b,
                           self.th_best, self.mean_best, self.std_best)
        eng.set_parameters(w, b)
        pred_v, err_v = self._errors(self.valid_x)
        pred_t, err_t = self._errors(self.test_x)
        outputs.write_predictions(p.predict_name_valid, pred_v)
        outputs.write_predictions(p.predict_name_test, pred_t)
        z_v = metrics.zscores(err_v, self.mean_best, self.std_best)
        z_t = metrics.zscores(err_t, self.mean_best, self.std_best)
        sweep = metrics.threshold_sweep(z_v, self.valid_y, p.range_div)
        vauc = metrics.auc(sweep.fpr, sweep.tpr)
        valid = metrics.confusion_metrics(z_v, self.valid_y, self.th_best)
        test = metrics.confusion_metrics(z_t, self.test_y, self.th_best)
        et = self.elapsed + (time.perf_counter() - t0)
        outputs.append_final(p.test_log_final, self.epochs_run, vauc, valid.mcc, valid.f1,
                             test, et)
        outputs.append_results_closing(p.output_name)
        outputs.append_test_closing(p.test_log)

    def execute(self):
        self.startup()
        self.loop()
        self.finish()
        return 0
