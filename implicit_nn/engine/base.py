"""The engine contract: what a backend implements, and the records every backend returns.

An engine is built as `Engine(network, params, levels)`; the base class builds the EnginePlan
(engine/plan.py) once, then calls the backend's `setup()`, then sets zero parameters and a fresh
OptimizerState. A backend implements the four abstract methods below; parameters and optimiser
state are owned one way by every backend (`self.weights`, `self.biases`, `self.state` in the
backend's own arrays: NumPy on the host, CuPy on the device), so the base class moves them to and
from the host for everyone. This module itself uses no numba.
"""
import abc
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from implicit_nn.engine.plan import EnginePlan
from implicit_nn.solver import SolverOptions

f32 = np.float32
FORWARD, ADJOINT = 0, 1     # the two fixed points (Settings.stop_rule, the kernels' direction)


def keep_iterating(residual, iterations, tol, itmax):
    """The one stop rule of every fixed point (engine.md §3.2, §7): go on while the last
    max-norm is above tol (NaN stops, as `err > tol` does in the original) and sweeps remain."""
    return residual > tol and iterations < itmax


BIG = 1e20   # the original's "inf": the residual before the first sweep of a fixed point


def relative_residual(residual, norm):
    """‖f(z) − z‖∞ / ‖f(z)‖∞ from a residual and the last iterate's max-norm: 0 for a residual
    of 0 (the level path, a settled solve), NaN where either is NaN."""
    residual, norm = np.asarray(residual, np.float64), np.asarray(norm, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(residual == 0, 0.0, residual / norm)


@dataclass(frozen=True, eq=False)
class Solve:
    """What one fixed-point solve (forward or adjoint, one minibatch) reports.

    residual is the last sweep's max-norm (max|Δa| forward, max|T| adjoint, NaN-aware as the stop
    test, engine.md §13.3); NaN when no sweep ran (maxiter_fix 0). converged: the stop test ended
    the solve (residual ≤ tol_fixit), not maxiter_fix or a NaN. The level path is exact.
    norm is the max-norm of the last iterate f(z) (A forward, δ adjoint; NaN where not measured),
    which makes the residual relative; it is extra information, not part of the comparison."""
    iterations: int
    converged: bool
    residual: np.float32
    norm: np.float32 = f32(np.nan)

    def __eq__(self, other):
        """Equal reports; two NaN residuals (nothing measured) are the same report."""
        return isinstance(other, Solve) and (self.iterations, self.converged) == \
            (other.iterations, other.converged) and \
            (self.residual == other.residual or (np.isnan(self.residual) and np.isnan(other.residual)))

    __hash__ = None

    @property
    def relative(self):
        """‖f(z) − z‖∞ / ‖f(z)‖∞ (0 for a residual of 0, NaN where not measured)."""
        return float(relative_residual(self.residual, self.norm))

    @classmethod
    def measured(cls, iterations, residual, tol, norm=np.nan):
        return Solves.measured([iterations], [residual], tol, [norm])[0]

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
    norm: np.ndarray           # float32, max-norm of each last iterate (NaN: not measured)

    FIELDS = ("iterations", "converged", "residual", "norm")

    @classmethod
    def measured(cls, iterations, residual, tol, norm=None):
        """From the sweeps run, the last residual and the last iterate's max-norm of each solve
        (the one convergence rule)."""
        iterations = np.asarray(iterations, np.int64)
        residual = np.where(iterations > 0, np.asarray(residual, np.float32), f32(np.nan))
        norm = np.full(iterations.shape, np.nan) if norm is None else norm
        return cls(iterations, residual <= f32(tol), residual.astype(np.float32),
                   np.asarray(norm, np.float32).reshape(iterations.shape))

    @classmethod
    def of(cls, solves):
        """One record of several single solves, in order."""
        solves = list(solves)
        return cls(*(np.array([getattr(s, name) for s in solves], kind) for name, kind in
                     zip(cls.FIELDS, (np.int64, bool, np.float32, np.float32))))

    @classmethod
    def joined(cls, parts):
        """Several Solves one after another."""
        parts = list(parts)
        if not parts:
            return cls.of([])
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in cls.FIELDS))

    @classmethod
    def exact(cls, count, iterations):
        """`count` level-by-level passes of `iterations` sweeps (a number, or one per pass),
        nothing left over."""
        return cls(np.full(count, iterations, np.int64), np.ones(count, bool),
                   np.zeros(count, np.float32), np.full(count, np.nan, np.float32))

    @property
    def relative(self):
        return relative_residual(self.residual, self.norm)

    def __len__(self):
        return self.iterations.size

    def __getitem__(self, index):
        return Solve(int(self.iterations[index]), bool(self.converged[index]),
                     f32(self.residual[index]), f32(self.norm[index]))


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


@dataclass(frozen=True)
class Steps:
    """Results of consecutive training minibatches, one entry each (StepStats as arrays)."""
    loss: np.ndarray          # float32
    maw: np.ndarray           # float32
    mab: np.ndarray           # float32
    forward: Solves
    backward: Solves

    @classmethod
    def of(cls, stats):
        """One record of several StepStats, in order."""
        stats = list(stats)
        return cls(*(np.array([getattr(s, name) for s in stats], np.float32)
                     for name in ("loss", "maw", "mab")),
                   Solves.of(s.forward for s in stats), Solves.of(s.backward for s in stats))

    def __len__(self):
        return self.loss.size

    def __getitem__(self, index):
        return StepStats(f32(self.loss[index]), f32(self.maw[index]), f32(self.mab[index]),
                         self.forward[index], self.backward[index])


class Gradient(NamedTuple):
    """engine.md §9 at given parameters: the loss, G_w, G_b and the two solves behind them."""
    loss: np.float32
    weights: np.ndarray
    biases: np.ndarray
    forward: Solve
    backward: Solve


@dataclass
class OptimizerState:
    """Everything the optimiser carries between steps (§11), for weights (_w) and biases (_b):
    v (SGD velocity, Adam's second moment), m (first moment), u (Adamax's ∞-norm), and `betas`
    = [β1ᵗ, β2ᵗ], Adam's running β products (float32[2], always on the host). Moments are the
    backend's arrays (NumPy or CuPy), with the same names everywhere."""
    v_w: object
    v_b: object
    m_w: object
    m_b: object
    u_w: object
    u_b: object
    betas: np.ndarray

    MOMENTS = ("v_w", "v_b", "m_w", "m_b", "u_w", "u_b")

    @classmethod
    def zeros(cls, edges, slots):
        """Program start: every moment zero, both β products 1."""
        return cls(**{name: np.zeros(edges if name.endswith("w") else slots, np.float32)
                      for name in cls.MOMENTS}, betas=np.ones(2, np.float32))

    def moved(self, move):
        """A copy with every moment passed through `move` and the β products copied."""
        return replace(self, betas=np.array(self.betas, np.float32),
                       **{name: move(getattr(self, name)) for name in self.MOMENTS})

    @property
    def beta1t(self):
        return self.betas[0]

    @property
    def beta2t(self):
        return self.betas[1]


class Engine(abc.ABC):
    """One backend of engine.md §3-§12. Implement `setup`, `gradient`, `train_step`,
    `predict_chunks`; override `_to_backend` / `_to_host` when arrays live off the host."""

    name = "engine"

    def __init__(self, network, params, levels=None, solver=None):
        self.network, self.params, self.levels = network, params, levels
        self.solver = SolverOptions.coerce(solver)
        self.plan = EnginePlan.build(network, params, levels, self.solver)
        self.predict_solves = None
        self.setup()
        if self.solver.describe():          # the console's engine line, the checkpoint's record
            self.name = f"{self.name}; {self.solver.describe()}"
        plan = self.plan
        self.set_parameters(np.zeros(plan.edge_num, np.float32), np.zeros(plan.slot_num, np.float32))
        self.reset_optimizer()

    # -- what a backend implements -----------------------------------------------------------
    @abc.abstractmethod
    def setup(self):
        """Prepare the backend from `self.plan` (buffers, device copies, compiled kernels).
        Called once by the constructor, before parameters and optimiser state exist."""

    @abc.abstractmethod
    def gradient(self, x, w=None, b=None):
        """engine.md §9 steps 1-6 for the minibatch x (float32[B, I], targets = x) at (w, b),
        default the current parameters; no update. Returns a Gradient with host arrays."""

    @abc.abstractmethod
    def train_step(self, x, lr, beta1):
        """One minibatch, engine.md §10 steps 2-5: Nesterov look-ahead (optimizer 1, nesterov 1,
        BASE adam_beta1), gradient there, MAW/MAB, shared-group sums, optimiser update with step
        size `lr` and momentum `beta1` (scheduled), state in `self.state`. Returns StepStats."""

    def train_steps(self, rows, first, end, batch, lr, beta1):
        """Minibatches first … end−1 of `rows` (minibatch q is rows[q·batch : (q+1)·batch], the
        last one shorter), each a train_step with step size lr[q − first] and momentum
        beta1[q − first]. Returns Steps. A backend may run them in one call (the driver calls
        this once per validation interval, so no Python runs between its minibatches)."""
        return Steps.of(self.train_step(rows[q * batch:(q + 1) * batch], lr[q - first],
                                        beta1[q - first]) for q in range(first, end))

    def compile(self, training=True):
        """Compile now (or load from the compiler's cache) the kernels a run will call: a
        prediction's, and a training's when `training`; never what the run does not call. An
        engine with nothing to compile ahead does nothing."""

    @abc.abstractmethod
    def predict_chunks(self, x, batch_size):
        """Forward pass on consecutive chunks of batch_size rows (the last one shorter), output
        transform of §6: (float32[rows, O], Solves with one entry per chunk)."""

    # -- arrays of the backend (NumPy here) -----------------------------------------------------
    def _to_backend(self, host_array):
        """A private float32 copy in the backend's memory."""
        return np.array(host_array, dtype=np.float32)

    def _to_host(self, array):
        """A host NumPy copy of one of the backend's arrays."""
        return np.array(array, dtype=np.float32)

    # -- provided for every backend ------------------------------------------------------------
    @property
    def loss_kind(self):
        return self.plan.settings.loss

    @property
    def weight_trainable(self):
        return self.plan.graph_logic == 1

    @property
    def bias_trainable(self):
        return self.plan.bias_logic == 1

    def get_parameters(self):
        """(weights, biases) as host float32 copies."""
        return self._to_host(self.weights), self._to_host(self.biases)

    def set_parameters(self, weights, biases):
        """Replace the parameters (the optimiser state is left as it is)."""
        self.weights, self.biases = self._to_backend(weights), self._to_backend(biases)

    def optimizer_state(self):
        """A host copy of the optimiser state (for a checkpoint)."""
        return self.state.moved(self._to_host)

    def set_optimizer_state(self, state):
        """Continue from `state` (host or backend arrays)."""
        self.state = state.moved(self._to_backend)

    def reset_optimizer(self):
        """All moments zero and Adam's running β products 1 (program start, §11)."""
        self.set_optimizer_state(OptimizerState.zeros(self.plan.edge_num, self.plan.slot_num))

    def predict(self, x, batch_size):
        """Outputs of consecutive chunks of batch_size rows (§12); the chunks' forward solves are
        kept in `predict_solves`."""
        out, self.predict_solves = self.predict_chunks(x, batch_size)
        return out
