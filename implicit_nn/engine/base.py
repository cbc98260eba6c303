"""What every engine shares: parameters, optimiser state and the per-minibatch step order.

A backend supplies `gradient(x, w, b)` and `predict(x, batch_size)`; `train_step` below does the
rest of engine.md §10 (look-ahead, MAW/MAB, shared-group sums, optimiser update, §11) on host
float32 arrays, element-wise and vectorised (no order-sensitive arithmetic except the shared
sums). A backend that keeps parameters elsewhere (GPU) overrides the pieces it needs.
"""
from dataclasses import dataclass
from typing import NamedTuple

import numba
import numpy as np

from implicit_nn.engine.lanes import fma
from implicit_nn.engine.lanes import fma64 as _fma64
from implicit_nn.engine.losses import loss_id

f32 = np.float32


BIG = 1e20   # the original's "inf": the residual before the first sweep of a fixed point


@dataclass(frozen=True)
class Solve:
    """What one fixed-point solve (forward or adjoint, one minibatch) reports.

    residual is the last sweep's max-norm (max|Δa| forward, max|T| adjoint, NaN-aware as the stop
    test, engine.md §13.3); NaN when no sweep ran (maxiter_fix 0). converged: the stop test ended
    the solve (residual ≤ tol_fixit), not maxiter_fix or a NaN. The level path is exact."""
    iterations: int
    converged: bool
    residual: np.float32

    @classmethod
    def measured(cls, iterations, residual, tol):
        return Solves.measured([iterations], [residual], tol)[0]

    @classmethod
    def exact(cls, iterations):
        """A level-by-level (PERT) pass: a fixed number of sweeps, nothing left over."""
        return Solves.exact(1, iterations)[0]


@dataclass(frozen=True)
class Solves:
    """Fixed-point solves of one call, one entry per minibatch (a predict call: per chunk)."""
    iterations: np.ndarray     # int64
    converged: np.ndarray      # bool
    residual: np.ndarray       # float32

    @classmethod
    def measured(cls, iterations, residual, tol):
        """From the sweeps run and the last residual of each solve (the one convergence rule)."""
        iterations = np.asarray(iterations, np.int64)
        residual = np.where(iterations > 0, np.asarray(residual, np.float32), f32(np.nan))
        return cls(iterations, residual <= f32(tol), residual.astype(np.float32))

    @classmethod
    def of(cls, solves):
        """One record of several single solves, in order."""
        solves = list(solves)
        return cls(np.array([s.iterations for s in solves], np.int64),
                   np.array([s.converged for s in solves], bool),
                   np.array([s.residual for s in solves], np.float32))

    @classmethod
    def exact(cls, count, iterations):
        return cls(np.full(count, iterations, np.int64), np.ones(count, bool),
                   np.zeros(count, np.float32))

    def __len__(self):
        return self.iterations.size

    def __getitem__(self, index):
        return Solve(int(self.iterations[index]), bool(self.converged[index]),
                     f32(self.residual[index]))


@dataclass(frozen=True)
class StepStats:
    """Result of one training minibatch, as calc_gradient_mini_batch and main report it."""
    loss: np.float32          # f32(loss sum / B)
    maw: np.float32           # max |G_w| after clipping, before the shared sums
    mab: np.float32
    forward: Solve
    backward: Solve

    @property
    def iter_forward(self):
        """IF of this minibatch as the logs count it."""
        return f32(self.forward.iterations)

    @property
    def iter_backward(self):
        return f32(self.backward.iterations)


class Gradient(NamedTuple):
    """engine.md §9 at given parameters: the loss, G_w, G_b and the two solves behind them."""
    loss: np.float32
    weights: np.ndarray
    biases: np.ndarray
    forward: Solve
    backward: Solve


@numba.vectorize(["float32(float32, float32, float32)"], cache=True)
def fma32(a, b, c):
    """Elementwise fma(a, b, c) of float32 values, one rounding: the kernels' own fma, so that the
    reference engine and the numba engine round every chain step alike (a float64 product+sum
    rounded to float32 would round twice and differ in rare ties)."""
    return fma(a, b, c)


@numba.vectorize(["float64(float64, float64, float64)"], cache=True)
def fma64(a, b, c):
    """Elementwise fma of float64 values, one rounding: the original's Adam moments are double
    DFMAs (not a product and a sum rounded twice)."""
    return _fma64(a, b, c)


def max_abs(values):
    """Host max-norm as calc_vector_norm: max |v| ignoring NaN, NaN when everything is NaN (§13.3)."""
    values = np.abs(np.asarray(values, dtype=np.float32))
    if values.size == 0:
        return f32(0.0)
    if np.isnan(values).all():
        return f32(np.nan)
    return f32(np.nanmax(values))


@numba.njit(cache=True)
def _share_sums(grad, members, starts):
    """For each group (members[starts[g]:starts[g+1]]): sequential float32 sum written to all."""
    for g in range(starts.size - 1):
        s = np.float32(0.0)
        for q in range(starts[g], starts[g + 1]):
            s = np.float32(s + grad[members[q]])
        for q in range(starts[g], starts[g + 1]):
            grad[members[q]] = s


def _flatten_groups(groups):
    members = np.concatenate([np.asarray(g, np.int64) for g in groups]) if groups else np.zeros(0, np.int64)
    starts = np.zeros(len(groups) + 1, np.int64)
    starts[1:] = np.cumsum([len(g) for g in groups])
    return members, starts


class Engine:
    """Parameters (float32 w[E], b[A]) and optimiser state; subclasses add the network maths."""

    name = "engine"

    def __init__(self, network, params, levels=None):
        self.network = network
        self.params = params
        self.levels = levels
        self.loss_kind = loss_id(params.train_lossfunction_type)
        self.weights = np.zeros(network.all_neighbour_num, np.float32)
        self.biases = np.zeros(network.all_input_num, np.float32)
        self.weight_trainable = np.asarray(network.graph_logic) == 1
        self.bias_trainable = np.asarray(network.bias_logic) == 1
        self._weight_groups = _flatten_groups(network.shared_weight_groups)
        self._bias_groups = _flatten_groups(network.shared_bias_groups)
        self.reset_optimizer()

    def reset_optimizer(self):
        """All optimiser state zero and Adam's running β products 1 (program start, §11)."""
        e, a = self.weights.size, self.biases.size
        self.v_w, self.v_b = np.zeros(e, np.float32), np.zeros(a, np.float32)
        self.m_w, self.m_b = np.zeros(e, np.float32), np.zeros(a, np.float32)
        self.u_w, self.u_b = np.zeros(e, np.float32), np.zeros(a, np.float32)
        self.beta1t = f32(1.0)
        self.beta2t = f32(1.0)

    def get_parameters(self):
        return self.weights.copy(), self.biases.copy()

    def set_parameters(self, weights, biases):
        self.weights = np.array(weights, dtype=np.float32)
        self.biases = np.array(biases, dtype=np.float32)

    # -- backend interface -------------------------------------------------------------------
    def gradient(self, x, w=None, b=None):
        raise NotImplementedError

    def predict_chunks(self, x, batch_size):
        raise NotImplementedError

    def predict(self, x, batch_size):
        """Outputs of consecutive chunks of batch_size rows (§12); the chunks' forward solves are
        kept in `predict_solves`."""
        out, self.predict_solves = self.predict_chunks(x, batch_size)
        return out

    # -- §10 ---------------------------------------------------------------------------------
    def lookahead(self):
        """(w̃, b̃): Nesterov look-ahead with the BASE adam_beta1 for SGD+nesterov (Q14), else a copy."""
        p = self.params
        w, b = self.weights.copy(), self.biases.copy()
        if p.optimizer == 1 and p.nesterov == 1:
            beta = f32(p.adam_beta1)
            w[self.weight_trainable] = fma32(beta, self.v_w, w)[self.weight_trainable]
            b[self.bias_trainable] = fma32(beta, self.v_b, b)[self.bias_trainable]
        return w, b

    def share_gradients(self, gw, gb):
        """Shared groups: every member gets the float32 sum of the group (Q16), in place."""
        _share_sums(gw, *self._weight_groups)
        _share_sums(gb, *self._bias_groups)

    def train_step(self, x, lr, beta1):
        """One minibatch: gradient at the look-ahead point, MAW/MAB, shared sums, update."""
        w, b = self.lookahead()
        loss, gw, gb, forward, backward = self.gradient(x, w, b)
        maw, mab = max_abs(gw), max_abs(gb)
        self.share_gradients(gw, gb)
        self.update(gw, gb, f32(lr), f32(beta1))
        return StepStats(f32(loss), maw, mab, forward, backward)

    # -- §11 ---------------------------------------------------------------------------------
    def update(self, gw, gb, lr, beta1):
        """Optimiser step on the current parameters (state of every entry, writes masked)."""
        opt = self.params.optimizer
        if opt in (2, 3):
            self.beta1t = f32(self.beta1t * beta1)
            self.beta2t = f32(self.beta2t * f32(self.params.adam_beta2))
        for grad, param, v, m, u, mask in (
            (gw, self.weights, self.v_w, self.m_w, self.u_w, self.weight_trainable),
            (gb, self.biases, self.v_b, self.m_b, self.u_b, self.bias_trainable),
        ):
            grad = np.asarray(grad, np.float32)
            if opt == 1:
                new = self._sgd(grad, param, v, lr, beta1)
            elif opt == 2:
                new = self._adam(grad, param, v, m, lr, beta1)
            elif opt == 3:
                new = self._adamax(grad, param, m, u, lr, beta1)
            else:
                continue
            param[mask] = new[mask]

    def _sgd(self, g, p, v, lr, beta1):
        """v = fma(β1, v, −(η·g)) as the original's contracted kernel (the product η·g rounded
        first); with Nesterov the step fma(β1, v_new, −(η·g)) is added to p separately."""
        step = lr * g
        v[:] = fma32(beta1, v, -step)
        if self.params.nesterov == 1:
            return p + fma32(beta1, v, -step)
        return p + v

    def _adam(self, g, p, v, m, lr, beta1):
        beta2 = f32(self.params.adam_beta2)
        g64 = g.astype(np.float64)
        m[:] = fma64(1.0 - np.float64(beta1), g64, (beta1 * m).astype(np.float64))
        v[:] = fma64(g64, (1.0 - np.float64(beta2)) * g64, (beta2 * v).astype(np.float64))
        m_hat = (m.astype(np.float64) / (1.0 - np.float64(self.beta1t))).astype(np.float32)
        v_hat = (v.astype(np.float64) / (1.0 - np.float64(self.beta2t))).astype(np.float32)
        with np.errstate(all="ignore"):
            return p - lr * m_hat / (np.sqrt(np.abs(v_hat)) + f32(self.params.adam_eps))

    def _adamax(self, g, p, m, u, lr, beta1):
        beta2 = f32(self.params.adam_beta2)
        m[:] = fma64(1.0 - np.float64(beta1), g.astype(np.float64), (beta1 * m).astype(np.float64))
        u[:] = np.fmax(beta2 * u, np.abs(g))  # fmaxf: a NaN operand is dropped
        denom = (u + f32(self.params.adam_eps)).astype(np.float64)
        with np.errstate(all="ignore"):
            step = np.float64(lr) / (1.0 - np.float64(self.beta1t)) * m.astype(np.float64) / denom
        return (p.astype(np.float64) - step).astype(np.float32)
