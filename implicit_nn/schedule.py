"""Learning-rate and momentum schedulers of the training loop (driver.md §4.1).

API: ``Scheduler(params, minibatch_num).rates(epoch, k) -> (lr_w, lr_a, beta1_act)`` for epoch
``epoch`` (1-based) and minibatch ``k`` (0-based); ``logged_rate(optimizer, lr_w, lr_a)`` is the LR
column value. All results are float32, rounded at the same points as the original's C expressions
(double where C promotes, float32 where it stores), because the logged LR shows the difference.
"""

import math

import numba
import numpy as np

from implicit_nn.params import scheduler_cut

_U64 = 2**64
f32 = np.float32


def _u64_to_f32(i):
    """C's (float) of an unsigned 64-bit counter (wrapped values included, driver Q7)."""
    return f32(float(i % _U64))


@numba.njit(cache=True)
def _libm_cosf(x):
    return math.cos(x)     # float32 argument: the C library's cosf, as the original's host code


def _cosf(x):
    """The C library's single-precision cosf of f32(x) (glibc's is not correctly rounded: it
    differs from the rounded double cosine on about 1 % of the scheduler's arguments)."""
    return f32(_libm_cosf(f32(x)))


def f_lr_momentum(i, start, end, period):
    """Half-cosine from `start` (i = 0) to `end` (i = period); i and period are u64 counters.

    A period of 0 divides by zero in C's double arithmetic (π/0 = inf, inf·0 = NaN), which
    happens on the last step of lr_scheduler 1 with pcr 1: the rate is NaN there, not a crash."""
    with np.errstate(divide="ignore", invalid="ignore"):
        angle = float(np.float64(math.pi) / np.float64(_u64_to_f32(period))
                      * np.float64(_u64_to_f32(i)))
    half_span = float(f32(f32(start) - f32(end))) * 0.5
    return f32(float(end) + half_span * (1.0 + float(_cosf(angle))))


def logged_rate(optimizer, lr_w, lr_a):
    """LR column: the SGD rate for optimizer 1, the Adam rate for 2/3, else 0 (driver Q10 divergence)."""
    if optimizer == 1:
        return f32(lr_w)
    if optimizer in (2, 3):
        return f32(lr_a)
    return f32(0.0)


class Scheduler:
    """Per-minibatch rates of one run; stateless, so any (epoch, k) can be asked in any order."""

    def __init__(self, params, minibatch_num, source=None):
        """`source` names the parameter file in errors."""
        self.kind = int(params.lr_scheduler)
        self.cyclic = int(params.cyclic_momentum) != 0
        self.M = int(minibatch_num)
        self.total = int(params.maxiter_grad) * self.M
        self.alphas = (f32(params.grad_alpha), f32(params.adam_alpha))
        self.beta1 = f32(params.adam_beta1)
        self.base_momentum = f32(params.base_momentum)
        self.max_momentum = f32(params.max_momentum)
        self.div_factor = f32(params.div_factor)
        self.final_div_factor = f32(params.final_div_factor)
        self.step_size = int(params.step_size)
        self.lr_gamma = f32(params.lr_gamma)
        self.cut = scheduler_cut(params, minibatch_num, source)

    def rates(self, epoch, k):
        """(lr_w, lr_a, beta1_act) for minibatch k (0-based) of epoch `epoch` (1-based).

        Infinite settings give NaN or infinite rates here as in C, without numpy's warnings."""
        with np.errstate(all="ignore"):
            return self._rates(epoch, k)

    def _rates(self, epoch, k):
        step = (k + 1) + (epoch - 1) * self.M
        if self.kind == 1:
            return self._one_cycle(step)
        if self.kind == 2:
            return self._cosine(step)
        if self.kind == 3:
            power = (epoch - 1) // self.step_size
            factor = math.pow(float(self.lr_gamma), float(power))
            lr_w, lr_a = (f32(float(a) * factor) for a in self.alphas)
            return lr_w, lr_a, self.beta1
        return self.alphas[0], self.alphas[1], self.beta1

    def _one_cycle(self, step):
        cut, total = self.cut, self.total
        if step < cut:
            lr_w, lr_a = (f_lr_momentum(step, f32(a / self.div_factor), a, cut) for a in self.alphas)
        else:
            lr_w, lr_a = (f_lr_momentum(step - cut, a, f32(f32(a / self.div_factor) / self.final_div_factor),
                                        total - cut) for a in self.alphas)
        beta1 = self.beta1
        if self.cyclic:
            if step < cut:
                beta1 = f_lr_momentum(step, self.max_momentum, self.base_momentum, cut)
            else:
                beta1 = f_lr_momentum(step - cut, self.base_momentum, self.max_momentum, total - cut)
        return lr_w, lr_a, beta1

    def _cosine(self, step):
        cut = self.cut
        step = step % cut
        cos = float(_cosf(float(f32(f32(step) / f32(cut))) * math.pi))
        rates = []
        for a in self.alphas:
            a_min = f32(a / self.final_div_factor)
            rates.append(f32(float(a_min) + 0.5 * float(f32(a - a_min)) * (1.0 + cos)))
        beta1 = self.beta1
        if self.cyclic:
            # step < cut always, so both differences wrap around as unsigned 64-bit (driver Q7)
            beta1 = f_lr_momentum((step - cut) % _U64, self.base_momentum, self.max_momentum,
                                  (self.total - cut) % _U64)
        return rates[0], rates[1], beta1
