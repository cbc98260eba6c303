"""Learning-rate and momentum schedulers of the training loop (driver.md §4.1).

API: ``Scheduler(params, minibatch_num)`` with ``.rates(epoch, k) -> (lr_w, lr_a, beta1_act)`` for
epoch ``epoch`` (1-based) and minibatch ``k`` (0-based), and ``.steps(epoch, first, end) -> (lr,
beta1)``: the step size the optimiser gets (``logged_rate``: the LR column) and the momentum of
minibatches first … end−1 as float32 arrays, in one compiled call (the driver's per-validation
block). All results are float32, rounded at the same points as the original's C expressions
(double where C promotes, float32 where it stores), because the logged LR shows the difference;
step counters are C's unsigned 64-bit integers (driver Q7 wraps included).
"""

import math

import numba
import numpy as np

from implicit_nn.params import scheduler_cut

f32 = np.float32
f64 = np.float64
u64 = np.uint64
_U64 = 2**64

# the scheduler's settings, packed: integers (uint64) and float32 values, in these orders
_INTS = ("kind", "cyclic", "minibatches", "total", "cut", "step_size", "optimizer")
_FLOATS = ("grad_alpha", "adam_alpha", "beta1", "base_momentum", "max_momentum", "div_factor",
           "final_div_factor", "lr_gamma")
KIND, CYCLIC, MINIBATCHES, TOTAL, CUT, STEP_SIZE, OPTIMIZER = range(len(_INTS))
GRAD_ALPHA, ADAM_ALPHA, BETA1, BASE_MOMENTUM, MAX_MOMENTUM, DIV, FINAL_DIV, GAMMA = range(len(_FLOATS))


@numba.njit(cache=True, error_model="numpy")
def _u64_to_f32(i):
    """C's (float) of an unsigned 64-bit counter, through double as the port has always done."""
    return f32(f64(u64(i)))


@numba.njit(cache=True, error_model="numpy")
def _lr_momentum(i, start, end, period):
    """Half-cosine from `start` (i = 0) to `end` (i = period); i and period are u64 counters.

    cos is the C library's single-precision cosf of a float32 argument (host code in the
    original; glibc's cosf is not the rounded double cosine on about 1 % of the arguments). A
    period of 0 divides by zero in double (π/0 = inf, inf·0 = NaN): the last step of lr_scheduler
    1 with pcr 1 gets a NaN rate there, not a crash."""
    angle = f64(math.pi) / f64(_u64_to_f32(period)) * f64(_u64_to_f32(i))
    half_span = f64(f32(f32(start) - f32(end))) * 0.5
    return f32(f64(end) + half_span * (1.0 + f64(f32(math.cos(f32(angle))))))


@numba.njit(cache=True, error_model="numpy")
def _rates(ints, floats, epoch, k):
    """(lr_w, lr_a, beta1_act) of minibatch k (0-based) of `epoch` (1-based)."""
    kind, cut, total = ints[KIND], ints[CUT], ints[TOTAL]
    step = u64(k + 1) + u64(epoch - 1) * ints[MINIBATCHES]
    alphas = (floats[GRAD_ALPHA], floats[ADAM_ALPHA])
    beta1 = floats[BETA1]
    low, high = floats[BASE_MOMENTUM], floats[MAX_MOMENTUM]
    lr_w, lr_a = alphas
    if kind == 1:                       # one cycle: warm-up to the cut, then annealing
        if step < cut:
            lr_w = _lr_momentum(step, f32(alphas[0] / floats[DIV]), alphas[0], cut)
            lr_a = _lr_momentum(step, f32(alphas[1] / floats[DIV]), alphas[1], cut)
        else:
            lr_w = _lr_momentum(step - cut, alphas[0],
                                f32(f32(alphas[0] / floats[DIV]) / floats[FINAL_DIV]), total - cut)
            lr_a = _lr_momentum(step - cut, alphas[1],
                                f32(f32(alphas[1] / floats[DIV]) / floats[FINAL_DIV]), total - cut)
        if ints[CYCLIC]:
            if step < cut:
                beta1 = _lr_momentum(step, high, low, cut)
            else:
                beta1 = _lr_momentum(step - cut, low, high, total - cut)
    elif kind == 2:                     # cosine annealing with restarts every `cut` steps
        step = step % cut
        cos = f64(f32(math.cos(f32(f64(f32(f32(step) / f32(cut))) * math.pi))))
        a_min = f32(alphas[0] / floats[FINAL_DIV])
        lr_w = f32(f64(a_min) + 0.5 * f64(f32(alphas[0] - a_min)) * (1.0 + cos))
        a_min = f32(alphas[1] / floats[FINAL_DIV])
        lr_a = f32(f64(a_min) + 0.5 * f64(f32(alphas[1] - a_min)) * (1.0 + cos))
        if ints[CYCLIC]:                # step < cut: both differences wrap around (driver Q7)
            beta1 = _lr_momentum(step - cut, low, high, total - cut)
    elif kind == 3:                     # step decay by lr_gamma every step_size epochs
        factor = math.pow(f64(floats[GAMMA]), f64(u64(epoch - 1) // ints[STEP_SIZE]))
        lr_w = f32(f64(alphas[0]) * factor)
        lr_a = f32(f64(alphas[1]) * factor)
    return lr_w, lr_a, beta1


@numba.njit(cache=True, error_model="numpy")
def _logged_rate(optimizer, lr_w, lr_a):
    if optimizer == 1:
        return f32(lr_w)
    if optimizer == 2 or optimizer == 3:
        return f32(lr_a)
    return f32(0.0)


@numba.njit(cache=True, error_model="numpy")
def _steps(ints, floats, epoch, first, lr, beta1):
    """lr[q], beta1[q] of minibatch first + q of `epoch`, for every q."""
    for q in range(lr.size):
        lr_w, lr_a, momentum = _rates(ints, floats, epoch, first + q)
        lr[q] = _logged_rate(ints[OPTIMIZER], lr_w, lr_a)
        beta1[q] = momentum


def f_lr_momentum(i, start, end, period):
    """The original's f_lr_momentum (i and period: u64 counters, reduced modulo 2^64)."""
    return f32(_lr_momentum(u64(int(i) % _U64), f32(start), f32(end), u64(int(period) % _U64)))


def logged_rate(optimizer, lr_w, lr_a):
    """LR column: the SGD rate for optimizer 1, the Adam rate for 2/3, else 0 (driver Q10 divergence)."""
    return f32(_logged_rate(int(optimizer), f32(lr_w), f32(lr_a)))


class Scheduler:
    """Per-minibatch rates of one run; stateless, so any (epoch, k) can be asked in any order."""

    def __init__(self, params, minibatch_num, source=None):
        """`source` names the parameter file in errors."""
        p = params
        self.cut = scheduler_cut(p, minibatch_num, source)
        ints = dict(kind=p.lr_scheduler, cyclic=int(p.cyclic_momentum) != 0,
                    minibatches=minibatch_num, total=int(p.maxiter_grad) * int(minibatch_num),
                    cut=self.cut, step_size=p.step_size, optimizer=p.optimizer)
        floats = dict(grad_alpha=p.grad_alpha, adam_alpha=p.adam_alpha, beta1=p.adam_beta1,
                      base_momentum=p.base_momentum, max_momentum=p.max_momentum,
                      div_factor=p.div_factor, final_div_factor=p.final_div_factor,
                      lr_gamma=p.lr_gamma)
        self._ints = np.array([int(ints[name]) % _U64 for name in _INTS], np.uint64)
        self._floats = np.array([floats[name] for name in _FLOATS], np.float32)

    def rates(self, epoch, k):
        """(lr_w, lr_a, beta1_act) for minibatch k (0-based) of epoch `epoch` (1-based);
        infinite settings give NaN or infinite rates as in C."""
        return tuple(f32(v) for v in _rates(self._ints, self._floats, int(epoch), int(k)))

    def steps(self, epoch, first, end):
        """(lr, beta1): float32 arrays of the optimiser's step size (the logged rate) and the
        momentum of minibatches first … end−1 (0-based) of `epoch`."""
        lr, beta1 = np.empty(end - first, np.float32), np.empty(end - first, np.float32)
        _steps(self._ints, self._floats, int(epoch), int(first), lr, beta1)
        return lr, beta1
