"""Fixed-point solvers beyond the original's plain iteration: the options, all opt-in.

`SolverOptions()` is the original's solver (plain iteration, one tol_fixit / maxiter_fix for both
directions); every output file of a run with it is byte-identical to the original's. The options
come from the command line (`--solver`, `--anderson-m`, `--anderson-beta`, `--tol-backward`,
`--maxiter-backward`) or the keyword arguments of `implicit_nn.train`, never from
simulparams.dat (its 58 entries are the original's). docs/solvers.md describes them.

Anderson acceleration (type II, difference form, Walker & Ni 2011) runs per sample of a
minibatch on the engines' own sweeps; the stop rule stays the batch-wide one of
base.keep_iterating (engine Q3). Its arithmetic is written out twice, in the same order (float64,
no library solve), so that the numba engine equals the reference bit for bit:
reference.Anderson and cpu_kernels._anderson_mix.
"""
import numbers
from dataclasses import dataclass
from typing import Optional

from implicit_nn.errors import InputError

SOLVERS = ("faithful", "anderson", "blocks")    # blocks: engine/blocks.py, the numba engine
FAITHFUL, ANDERSON, BLOCKS = 0, 1, 2
# Tikhonov regularisation of the Anderson least squares, relative to the largest diagonal entry
# of the residual differences' Gram matrix: directions of the history below about 1e-4 of its
# largest singular value are damped towards the plain step (float32 iterates carry rounding noise
# that an unregularised solve would amplify).
ANDERSON_REG = 1e-8
MAX_HISTORY = 50
ANDERSON_START = 8      # default plain sweeps before mixing (benchmarks/bench_solvers.py)


@dataclass(frozen=True)
class SolverOptions:
    """How the engines solve the forward and adjoint fixed points.

    method: "faithful" (the original's plain iteration) or "anderson"; anderson_m: history
    length (m residual differences, the last m + 1 iterates); anderson_beta: damping (1:
    undamped); anderson_start: plain sweeps before the mixing starts (the layers outside the
    cycles settle first: a sweep carries the inputs one layer further); tol_backward /
    maxiter_backward: the adjoint's own stop rule (None: tol_fixit / maxiter_fix, as the
    original)."""
    method: str = "faithful"
    anderson_m: int = 5
    anderson_beta: float = 1.0
    anderson_start: int = ANDERSON_START
    tol_backward: Optional[float] = None
    maxiter_backward: Optional[int] = None

    def __post_init__(self):
        if self.method not in SOLVERS:
            raise InputError(f"unknown solver {self.method!r}, expected one of "
                             f"{', '.join(SOLVERS)}", "--solver")
        if not _integer(self.anderson_m) or not 1 <= self.anderson_m <= MAX_HISTORY:
            raise InputError(f"must be an integer from 1 to {MAX_HISTORY}, got "
                             f"{self.anderson_m!r}", "--anderson-m")
        if not _number(self.anderson_beta) or not 0 < self.anderson_beta <= 1:
            raise InputError(f"must be a number in (0, 1], got {self.anderson_beta!r}",
                             "--anderson-beta")
        if not _integer(self.anderson_start) or self.anderson_start < 0:
            raise InputError(f"must be a non-negative integer, got {self.anderson_start!r}",
                             "--anderson-start")
        if self.tol_backward is not None and (not _number(self.tol_backward)
                                              or not self.tol_backward >= 0):
            raise InputError(f"must be a non-negative number, got {self.tol_backward!r}",
                             "--tol-backward")
        if self.maxiter_backward is not None and (not _integer(self.maxiter_backward)
                                                  or self.maxiter_backward < 0):
            raise InputError(f"must be a non-negative integer, got {self.maxiter_backward!r}",
                             "--maxiter-backward")

    @classmethod
    def of(cls, method="faithful", anderson_m=None, anderson_beta=None, tol_backward=None,
           maxiter_backward=None, anderson_start=None):
        """The options as the command line and implicit_nn.train give them (None: not given);
        Anderson's settings without `anderson` are refused rather than ignored."""
        if method != "anderson":
            for name, value in (("--anderson-m", anderson_m), ("--anderson-beta", anderson_beta),
                                ("--anderson-start", anderson_start)):
                if value is not None:
                    raise InputError("needs --solver anderson", name)
        given = {"anderson_m": anderson_m, "anderson_beta": anderson_beta,
                 "anderson_start": anderson_start}
        return cls(method, **{k: v for k, v in given.items() if v is not None},
                   tol_backward=tol_backward, maxiter_backward=maxiter_backward)

    @classmethod
    def coerce(cls, solver):
        """SolverOptions of a method name (str), of None (the original's) or itself."""
        if solver is None:
            return cls()
        return cls(solver) if isinstance(solver, str) else solver

    @property
    def method_id(self):
        return SOLVERS.index(self.method)

    @property
    def is_original(self):
        """The original's solver: nothing about the run changes."""
        return self == SolverOptions()

    def tol_backward_of(self, params):
        return params.tol_fixit if self.tol_backward is None else self.tol_backward

    def maxiter_backward_of(self, params):
        return params.maxiter_fix if self.maxiter_backward is None else self.maxiter_backward

    def describe(self):
        """The phrase the engine's name gets (console, checkpoint record): "" for the faithful
        and block solvers with the original's stop rule (the block solver names itself)."""
        words = []
        if self.method == "anderson":
            words.append(f"Anderson m={self.anderson_m} beta={self.anderson_beta:g} "
                         f"start={self.anderson_start}")
        if self.tol_backward is not None:
            words.append(f"tol_backward {self.tol_backward:g}")
        if self.maxiter_backward is not None:
            words.append(f"maxiter_backward {self.maxiter_backward}")
        return "solver " + ", ".join(words) if words else ""


def _number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _integer(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
